//! The TCP listener: one task per connection — over TLS (RFC 5425) after its handshake — each
//! splitting its stream with a [`Framer`].

use super::{forward, stopped, ServerOptions, SyslogError, WarnLimiter};
use crate::event::LogEvent;
use crate::inputs::syslog::{parse, Framer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// Bytes read from a TCP connection at a time.
const READ_CHUNK: usize = 64 * 1024;
/// Time for a sender's TLS handshake (at most the idle timeout).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds a TCP listener for [`serve_tcp`] (port 0 picks a free port; see `local_addr`).
pub async fn bind_tcp(addr: SocketAddr) -> Result<TcpListener, SyslogError> {
    let error = |source| SyslogError::Bind { transport: "TCP", addr, source };
    let socket = if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.map_err(error)?;
    // A restarted agent can listen again at once, while connections of its previous run linger
    // in TIME_WAIT.
    socket.set_reuseaddr(true).map_err(error)?;
    // Accepted connections inherit keepalive, which eventually notices senders that vanished
    // without closing.
    socket.set_keepalive(true).map_err(error)?;
    socket.bind(addr).map_err(error)?;
    socket.listen(1024).map_err(error)
}

/// Receives syslog over TCP on `addr` until `shutdown` turns true (or its sender is dropped) or
/// `tx`'s receiver is gone; then every connection is closed before it returns. Messages longer
/// than `max_len` are truncated.
pub async fn run_tcp(
    addr: SocketAddr,
    max_len: usize,
    tx: mpsc::Sender<LogEvent>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), SyslogError> {
    serve_tcp(bind_tcp(addr).await?, ServerOptions::new(max_len), None, tx, shutdown).await
}

/// Receives syslog on a bound TCP listener, one task per connection (at most
/// `options.max_connections`), until `shutdown` turns true (or its sender is dropped) or `tx`'s
/// receiver is gone; then it waits for the connections to close. While `tx` is full, connections
/// stop reading, so TCP flow control slows the senders down. With `tls`, every connection
/// first completes a TLS handshake (syslog over TLS, RFC 5425) or is closed.
pub async fn serve_tcp(
    listener: TcpListener,
    options: ServerOptions,
    tls: Option<TlsAcceptor>,
    tx: mpsc::Sender<LogEvent>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), SyslogError> {
    let local = listener.local_addr().map_or_else(|_| "?".to_string(), |addr| addr.to_string());
    tracing::info!(addr = %local, max_connections = options.max_connections, tls = tls.is_some(), "syslog TCP input listening");
    let shared = Arc::new(Shared {
        options,
        truncations: WarnLimiter::new(),
        bad_counts: WarnLimiter::new(),
        handshakes: WarnLimiter::new(),
    });
    let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let at_limit = WarnLimiter::new();
    let mut connections = JoinSet::new();
    loop {
        // Finished connections are collected so the set does not grow with every one ever made.
        while connections.try_join_next().is_some() {}
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if let Some(total) = at_limit.record(1) {
                    tracing::warn!(addr = %local, max_connections = options.max_connections, total,
                        "syslog TCP connection limit reached; new connections wait until one closes");
                }
                tokio::select! {
                    biased;
                    _ = stopped(&mut shutdown) => break,
                    _ = tx.closed() => break,
                    permit = slots.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                }
            }
        };
        let (stream, peer) = tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => break,
            _ = tx.closed() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(addr = %local, %error, "syslog TCP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let shared = shared.clone();
        let tx = tx.clone();
        let shutdown = shutdown.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            let _slot = permit;
            let Some(acceptor) = tls else {
                return handle_connection(stream, peer, &shared, &tx, shutdown).await;
            };
            let limit = shared.options.idle_timeout.map_or(HANDSHAKE_TIMEOUT, |idle| idle.min(HANDSHAKE_TIMEOUT));
            match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => handle_connection(stream, peer, &shared, &tx, shutdown).await,
                Ok(Err(error)) => {
                    if let Some(total) = shared.handshakes.record(1) {
                        tracing::warn!(%peer, %error, total, "syslog TLS handshake failed; connection closed");
                    }
                }
                Err(_) => {
                    if let Some(total) = shared.handshakes.record(1) {
                        tracing::warn!(%peer, total, "syslog sender did not finish its TLS handshake in {limit:?}; connection closed");
                    }
                }
            }
        });
    }
    drop(listener);
    // Connections watch the same signal (or the same closed channel) and end promptly.
    while connections.join_next().await.is_some() {}
    tracing::info!(addr = %local, "syslog TCP input stopped");
    Ok(())
}

/// What the connections of one TCP listener share.
struct Shared {
    options: ServerOptions,
    truncations: WarnLimiter,
    bad_counts: WarnLimiter,
    /// Failed TLS handshakes.
    handshakes: WarnLimiter,
}

async fn handle_connection(
    mut stream: impl AsyncRead + Unpin,
    peer: SocketAddr,
    shared: &Shared,
    tx: &mpsc::Sender<LogEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    tracing::debug!(%peer, "syslog connection opened");
    let max_len = shared.options.max_len;
    let mut framer = Framer::new(max_len);
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let read = tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => {
                tracing::debug!(%peer, "syslog connection closed for shutdown");
                return;
            }
            _ = tx.closed() => return,
            read = read_some(&mut stream, &mut buf, shared.options.idle_timeout) => read,
        };
        let received = SystemTime::now();
        // The connection ends at end of stream, on idleness or on a read error; in every case a
        // last line without its newline is still a message.
        let finish = |framer: &mut Framer, why: &str| {
            let dropped = framer.finish();
            if dropped > 0 {
                tracing::debug!(%peer, dropped, why, "syslog connection closed in the middle of an octet-counted frame");
            }
            true
        };
        let ended = match read {
            Ok(Some(0)) => finish(&mut framer, "closed by the sender"),
            Ok(Some(len)) => {
                let (truncated, malformed) = (framer.truncated(), framer.malformed());
                framer.push(&buf[..len]);
                if framer.truncated() > truncated {
                    if let Some(total) = shared.truncations.record(framer.truncated() - truncated) {
                        tracing::warn!(
                            %peer,
                            max_len,
                            total,
                            "syslog frame longer than the maximum message length truncated, its rest discarded"
                        );
                    }
                }
                if framer.malformed() > malformed {
                    if let Some(total) = shared.bad_counts.record(framer.malformed() - malformed) {
                        tracing::warn!(
                            %peer,
                            total,
                            "syslog frame starts with digits that are no octet count; read up to the next newline"
                        );
                    }
                }
                false
            }
            Ok(None) => {
                tracing::debug!(%peer, "idle syslog connection closed");
                finish(&mut framer, "idle")
            }
            Err(error) => {
                tracing::debug!(%peer, %error, "syslog connection failed");
                finish(&mut framer, "read error")
            }
        };
        while let Some(frame) = framer.next_frame() {
            let event = parse(&frame, received, Some(peer), shared.options.zone);
            if !forward(tx, event, &mut shutdown).await {
                return;
            }
        }
        if ended {
            return;
        }
    }
}

/// One read; None when nothing arrived within `idle`.
async fn read_some(
    stream: &mut (impl AsyncRead + Unpin),
    buf: &mut [u8],
    idle: Option<Duration>,
) -> std::io::Result<Option<usize>> {
    match idle {
        Some(idle) => match tokio::time::timeout(idle, stream.read(buf)).await {
            Ok(read) => read.map(Some),
            Err(_) => Ok(None),
        },
        None => stream.read(buf).await.map(Some),
    }
}
