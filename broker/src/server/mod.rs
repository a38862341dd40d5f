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

mod frame;
mod limits;

pub(crate) use limits::{ConnectionLimiter, ConnectionSlot, RequestBudget};

use crate::api::{Connection, Pending, Router};
use crate::Broker;
use frame::{Frame, FrameReader};
use futures::stream::{FuturesOrdered, StreamExt};
use limits::BudgetBytes;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Accepts connections until `shutdown` turns true.
pub async fn serve(listener: TcpListener, broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let server = &broker.config.server;
    let limiter = Arc::new(ConnectionLimiter::new(
        "kafka",
        server.max_connections,
        server.max_connections_per_ip,
        broker.metrics.listeners.clone(),
    ));
    let budget = Arc::new(RequestBudget::new(
        usize::try_from(server.queued_max_request_bytes.0).unwrap_or(usize::MAX),
        broker.metrics.listeners.queued_request_bytes.clone(),
    ));
    let router = Arc::new(Router::<Broker>::new());
    let mut next_connection_id = 0u64;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Some(slot) = limiter.admit(peer) else {
                        drop(stream);
                        continue;
                    };
                    let broker = broker.clone();
                    let shutdown = shutdown.clone();
                    let budget = budget.clone();
                    let router = router.clone();
                    next_connection_id += 1;
                    let connection = Connection::plaintext(next_connection_id, peer);
                    tokio::spawn(async move {
                        broker.metrics.connections.inc();
                        if let Err(e) = handle_connection(stream, connection, broker.clone(), router, budget, shutdown).await {
                            tracing::debug!(%peer, error = %e, "connection closed");
                        }
                        broker.metrics.connections.dec();
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

async fn handle_connection(
    stream: TcpStream,
    connection: Connection,
    broker: Arc<Broker>,
    router: Arc<Router<Broker>>,
    budget: Arc<RequestBudget>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ConnectionError> {
    // Small responses go out immediately; large ones are written by the buffered writer in bulk.
    let _ = stream.set_nodelay(true);
    let peer = connection.peer;
    let (reader, writer) = stream.into_split();
    let mut writer = BufWriter::with_capacity(32 * 1024, writer);
    let mut reader = FrameReader::new(reader, peer, broker.config.server.max_request_bytes.0, budget);
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
                if let Some(frame) = response {
                    writer.write_all(&frame).await.map_err(|source| ConnectionError::Io { peer, source })?;
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
                        match router.dispatch(&broker, bytes, &connection).await {
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
