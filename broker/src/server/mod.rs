//! The Kafka protocol listener: one task per connection; requests are read ahead (pipelined),
//! started in arrival order and answered in that order.
//!
//! Limits (`[server]`): open connections in total and per client address (more are accepted and
//! closed at once, as Kafka does), an idle timeout, and a broker-wide memory budget for request
//! bytes. A request's buffer grows from that budget only as its bytes arrive — never from the
//! length a client announces — and its bytes return to the budget once its response is written.
//!
//! - [`limits`]: connection limits (total, per address), the request-bytes budget, rate-limited
//!   refusal logs; shared with the controller and admin listeners.
//! - [`frame`]: the request frame reader, growing buffers only as bytes arrive.

//! - [`tls`]: the broker's certificate (reloaded when renewed) and client-certificate principals.
//! - [`sasl`]: the SaslHandshake / SaslAuthenticate login a SASL listener requires first.
//!
//! Each listener speaks one of Kafka's security protocols. A connection first finishes what its
//! protocol asks — the TLS handshake, the SASL login, both within
//! `server.authentication_timeout` — and only then is anything but ApiVersions answered; its
//! principal (the SASL user, the client certificate's subject on SSL, else `User:ANONYMOUS`)
//! goes with every request to the handlers.

mod frame;
mod limits;
pub(crate) mod sasl;
pub mod tls;

pub(crate) use limits::{ConnectionLimiter, ConnectionSlot, RequestBudget};

use crate::api::{Connection, Pending, Principal, ResponseFrame, Router};
use crate::Broker;
use bytes::Bytes;
use frame::{Frame, FrameReader};
use futures::stream::{FuturesOrdered, StreamExt};
use kafka_protocol::messages::ApiKey;
use limits::BudgetBytes;
use millrace_config::{ClientAuth, ListenerSettings, SecurityProtocol};
use sasl::{Authenticator, SaslSettings, Step};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tls::TlsIdentity;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A bound Kafka listener: its settings (with the port actually bound) and its socket.
pub struct KafkaListener {
    /// Name, protocol, addresses.
    pub settings: ListenerSettings,
    /// The bound socket.
    pub socket: TcpListener,
}

/// What every connection of one listener shares.
struct ListenerShared {
    name: Arc<str>,
    protocol: SecurityProtocol,
    client_auth: ClientAuth,
    tls: Option<Arc<TlsIdentity>>,
    sasl: Option<Arc<SaslSettings>>,
    broker: Arc<Broker>,
    router: Arc<Router<Broker>>,
    budget: Arc<RequestBudget>,
}

/// Serves every Kafka listener until `shutdown` turns true; the connection limits and the
/// request-memory budget are shared by all of them.
pub async fn serve(
    listeners: Vec<KafkaListener>,
    broker: Arc<Broker>,
    tls: Option<Arc<TlsIdentity>>,
    shutdown: watch::Receiver<bool>,
) {
    let server = &broker.config.server;
    let limiter = Arc::new(ConnectionLimiter::new(
        "kafka",
        server.max_connections,
        server.max_connections_per_ip,
        broker.metrics.listeners.clone(),
    ));
    let budget = Arc::new(RequestBudget::new(
        usize::try_from(server.queued_max_request_bytes.0).unwrap_or(usize::MAX),
        &broker.metrics.listeners,
    ));
    let router = Arc::new(Router::<Broker>::new());
    let mut tasks = Vec::new();
    for listener in listeners {
        let protocol = listener.settings.protocol();
        let sasl = if protocol.uses_sasl() {
            match SaslSettings::new(listener.settings.mechanisms()) {
                Ok(settings) => Some(Arc::new(settings)),
                Err(e) => {
                    tracing::error!(listener = %listener.settings.name, error = %e, "cannot set up SASL; listener not served");
                    continue;
                }
            }
        } else {
            None
        };
        let shared = Arc::new(ListenerShared {
            name: Arc::from(listener.settings.name.as_str()),
            protocol,
            client_auth: listener.settings.ssl_client_auth,
            tls: if protocol.uses_tls() { tls.clone() } else { None },
            sasl,
            broker: broker.clone(),
            router: router.clone(),
            budget: budget.clone(),
        });
        if protocol.uses_tls() && shared.tls.is_none() {
            tracing::error!(listener = %shared.name, "a TLS listener without a certificate; listener not served");
            continue;
        }
        tasks.push(tokio::spawn(accept_loop(listener.socket, shared, limiter.clone(), shutdown.clone())));
    }
    for task in tasks {
        let _ = task.await;
    }
}

/// Connection ids are unique across the broker's listeners.
static NEXT_CONNECTION_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<ListenerShared>,
    limiter: Arc<ConnectionLimiter>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Some(slot) = limiter.admit(peer) else {
                        drop(stream);
                        continue;
                    };
                    let shared = shared.clone();
                    let shutdown = shutdown.clone();
                    let id = NEXT_CONNECTION_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tokio::spawn(async move {
                        shared.broker.metrics.connections.inc();
                        if let Err(e) = open_connection(stream, peer, id, &shared, shutdown).await {
                            tracing::debug!(%peer, listener = %shared.name, error = %e, "connection closed");
                        }
                        shared.broker.metrics.connections.dec();
                        drop(slot);
                    });
                }
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

/// Shakes hands if the listener is TLS, then serves the connection.
async fn open_connection(
    stream: TcpStream,
    peer: SocketAddr,
    id: u64,
    shared: &ListenerShared,
    shutdown: watch::Receiver<bool>,
) -> Result<(), ConnectionError> {
    // Small responses go out immediately; large ones are written by the buffered writer in bulk.
    let _ = stream.set_nodelay(true);
    let deadline = tokio::time::Instant::now() + shared.broker.config.server.authentication_timeout.as_duration();
    let mut connection =
        Connection { id, peer, listener: shared.name.clone(), principal: Arc::new(Principal::anonymous()) };
    let Some(identity) = &shared.tls else {
        let (reader, writer) = stream.into_split();
        return handle_connection(reader, writer, connection, shared, deadline, shutdown).await;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(identity.server_config(shared.client_auth));
    let tls = match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            shared.broker.metrics.listeners.closed.with_label_values(&["kafka", "tls_handshake"]).inc();
            tracing::info!(%peer, listener = %shared.name, error = %e, "TLS handshake failed");
            return Ok(());
        }
        Err(_) => {
            shared.broker.metrics.listeners.closed.with_label_values(&["kafka", "authentication_timeout"]).inc();
            tracing::info!(%peer, listener = %shared.name, "TLS handshake not finished in time (server.authentication_timeout)");
            return Ok(());
        }
    };
    // On SSL the certificate names the client; on SASL_SSL the SASL login does.
    if shared.protocol == SecurityProtocol::Ssl {
        let subject = tls.get_ref().1.peer_certificates().and_then(|chain| chain.first());
        if let Some(principal) = subject.and_then(|cert| tls::certificate_principal(cert)) {
            connection.principal = Arc::new(principal);
        }
    }
    let (reader, writer) = tokio::io::split(tls);
    handle_connection(reader, writer, connection, shared, deadline, shutdown).await
}

/// Why a connection ended abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// Socket error.
    #[error("i/o with {peer}: {source}")]
    Io {
        /// The client.
        peer: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The client sent something that cannot be answered; Kafka closes the connection then too.
    #[error("protocol error from {peer}: {message}")]
    Protocol {
        /// The client.
        peer: SocketAddr,
        /// What was wrong.
        message: String,
    },
}

async fn handle_connection<R, W>(
    reader: R,
    writer: W,
    mut connection: Connection,
    shared: &ListenerShared,
    login_deadline: tokio::time::Instant,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ConnectionError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (broker, router) = (&shared.broker, &shared.router);
    let peer = connection.peer;
    let mut writer = BufWriter::with_capacity(32 * 1024, writer);
    let mut reader = FrameReader::new(reader, peer, broker.config.server.max_request_bytes.0, shared.budget.clone());
    // Until a SASL listener's login succeeds, frames go to the authenticator first.
    let mut login = shared.sasl.clone().map(Authenticator::new);
    let max_inflight = broker.config.server.max_inflight_requests_per_connection;
    let max_idle = broker.config.server.connections_max_idle.as_duration();
    let mut inflight: FuturesOrdered<Pending> = FuturesOrdered::new();
    // The budget bytes of each in-flight request, in the same order; freed once its response is written.
    let mut held: VecDeque<BudgetBytes> = VecDeque::new();
    let mut last_request = tokio::time::Instant::now();
    let mut reading = true;
    loop {
        tokio::select! {
            // Responses complete in request order; write each as soon as it is ready.
            Some(response) = inflight.next(), if !inflight.is_empty() => {
                if let Some(mut frame) = response {
                    // Vectored: a large Fetch response's record sets go out from the buffers the
                    // log was read into, and past the BufWriter when they outgrow it.
                    writer.write_all_buf(&mut frame).await.map_err(|source| ConnectionError::Io { peer, source })?;
                }
                writer.flush().await.map_err(|source| ConnectionError::Io { peer, source })?;
                held.pop_front();
                last_request = tokio::time::Instant::now();
                if !reading && inflight.is_empty() {
                    return Ok(());
                }
            }
            frame = reader.next_frame(), if reading && inflight.len() < max_inflight => {
                match frame {
                    Ok(Some(Frame { bytes, budget })) => {
                        last_request = tokio::time::Instant::now();
                        if let Some(authenticator) = login.as_mut() {
                            match log_in(authenticator, &bytes, broker, &mut connection) {
                                Ok(LoginStep::Answer(pending, done)) => {
                                    inflight.push_back(pending);
                                    held.push_back(budget);
                                    match done {
                                        LoginOutcome::Pending => {}
                                        LoginOutcome::LoggedIn => login = None,
                                        // Answered after the delay, then closed.
                                        LoginOutcome::Failed => reading = false,
                                    }
                                    continue;
                                }
                                Ok(LoginStep::Route) => {}
                                Err(message) => {
                                    tracing::warn!(%peer, listener = %connection.listener, "{message}");
                                    broker.metrics.protocol_errors.inc();
                                    return Err(ConnectionError::Protocol { peer, message });
                                }
                            }
                        }
                        match router.dispatch(broker, bytes, &connection).await {
                            Ok(pending) => {
                                inflight.push_back(pending);
                                held.push_back(budget);
                            }
                            Err(refused) => {
                                let message = refused.to_string();
                                // Answer what came before, then close: the stream cannot be trusted any more.
                                tracing::warn!(%peer, "{message}");
                                reading = false;
                                broker.metrics.protocol_errors.inc();
                                if inflight.is_empty() {
                                    return Err(ConnectionError::Protocol { peer, message });
                                }
                            }
                        }
                    }
                    Ok(None) => {
                        reading = false;
                        if inflight.is_empty() {
                            return Ok(());
                        }
                    }
                    Err(e) => {
                        if matches!(e, ConnectionError::Protocol { .. }) {
                            tracing::warn!("{e}");
                            broker.metrics.protocol_errors.inc();
                        }
                        return Err(e);
                    }
                }
            }
            // A partly received frame does not count as a request: a client trickling bytes is
            // closed too.
            _ = tokio::time::sleep_until(login_deadline), if login.is_some() && reading => {
                broker.metrics.listeners.closed.with_label_values(&["kafka", "authentication_timeout"]).inc();
                tracing::info!(%peer, listener = %connection.listener, "SASL login not finished in time (server.authentication_timeout)");
                return Ok(());
            }
            _ = tokio::time::sleep_until(last_request + max_idle), if inflight.is_empty() => {
                broker.metrics.listeners.closed.with_label_values(&["kafka", "idle"]).inc();
                tracing::debug!(%peer, idle = ?max_idle, "closing an idle connection (server.connections_max_idle)");
                return Ok(());
            }
            _ = shutdown.changed(), if reading => {
                reading = false;
                if inflight.is_empty() {
                    return Ok(());
                }
            }
        }
    }
}

enum LoginOutcome {
    Pending,
    LoggedIn,
    Failed,
}

enum LoginStep {
    /// The authenticator answered the frame.
    Answer(Pending, LoginOutcome),
    /// ApiVersions: answered by the router as on any connection.
    Route,
}

/// Runs one frame of a connection that has not logged in yet. `Err` closes the connection.
fn log_in(
    authenticator: &mut Authenticator,
    frame: &Bytes,
    broker: &Broker,
    connection: &mut Connection,
) -> Result<LoginStep, String> {
    let metadata = broker.cluster.metadata();
    let lookup = |user: &str, mechanism| metadata.scram_credentials.get(user)?.get(&mechanism).cloned();
    let ready = |frame: Bytes| -> Pending { Box::pin(async move { Some(ResponseFrame::from(frame)) }) };
    let peer = connection.peer;
    match authenticator.step(frame, lookup)? {
        Step::NotSasl => {
            let api = millrace_protocol::message::RequestPrelude::read(frame).map_err(|e| e.to_string())?.api_key;
            if api == ApiKey::ApiVersions as i16 {
                return Ok(LoginStep::Route);
            }
            let name = ApiKey::try_from(api).map(|k| format!("{k:?}")).unwrap_or_else(|_| format!("key {api}"));
            Err(format!(
                "{name} request before SASL authentication on listener {}; closing connection",
                connection.listener
            ))
        }
        Step::Continue(response) => Ok(LoginStep::Answer(ready(response), LoginOutcome::Pending)),
        Step::Authenticated(response, principal) => {
            tracing::info!(%peer, listener = %connection.listener, %principal, "authenticated");
            broker.metrics.listeners.authentications.with_label_values(&["success"]).inc();
            connection.principal = Arc::new(principal);
            Ok(LoginStep::Answer(ready(response), LoginOutcome::LoggedIn))
        }
        Step::Failed(response, reason) => {
            tracing::warn!(%peer, listener = %connection.listener, reason, "authentication failed");
            broker.metrics.listeners.authentications.with_label_values(&["failure"]).inc();
            let delay = broker.config.server.failed_authentication_delay.as_duration();
            let answer: Pending = Box::pin(async move {
                tokio::time::sleep(delay).await;
                Some(ResponseFrame::from(response))
            });
            Ok(LoginStep::Answer(answer, LoginOutcome::Failed))
        }
    }
}
