//! The UDP listener: one datagram, one message.

use super::{forward, stopped, ServerOptions, SyslogError, WarnLimiter};
use crate::event::LogEvent;
use crate::inputs::syslog::parse;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

/// The largest UDP payload there can be.
const MAX_DATAGRAM: usize = 65_535;

/// Binds a UDP socket for [`serve_udp`] (port 0 picks a free port; see `local_addr`).
///
/// The kernel's receive buffer is raised to 8 MiB (capped by `net.core.rmem_max`); bursts beyond
/// it are dropped by the kernel.
pub async fn bind_udp(addr: SocketAddr) -> Result<UdpSocket, SyslogError> {
    let socket = UdpSocket::bind(addr).await.map_err(|source| SyslogError::Bind { transport: "UDP", addr, source })?;
    // Bursts arrive faster than events are handed on; a larger kernel buffer (capped by
    // net.core.rmem_max) holds them instead of dropping datagrams. Best effort.
    if let Err(e) = rustix::net::sockopt::set_socket_recv_buffer_size(&socket, UDP_RECEIVE_BUFFER) {
        tracing::debug!(%addr, error = %e, "could not enlarge the UDP receive buffer");
    }
    Ok(socket)
}

/// Requested kernel receive buffer of a UDP syslog socket.
const UDP_RECEIVE_BUFFER: usize = 8 << 20;

/// Receives syslog over UDP on `addr` until `shutdown` turns true (or its sender is dropped) or
/// `tx`'s receiver is gone. Messages longer than `max_len` are truncated.
pub async fn run_udp(
    addr: SocketAddr,
    max_len: usize,
    tx: mpsc::Sender<LogEvent>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), SyslogError> {
    serve_udp(bind_udp(addr).await?, ServerOptions::new(max_len), tx, shutdown).await
}

/// Receives syslog on a bound UDP socket, one message per datagram, until `shutdown` turns true
/// (or its sender is dropped) or `tx`'s receiver is gone. While `tx` is full, datagrams wait in
/// the kernel's buffer (and are dropped by it when that overflows).
pub async fn serve_udp(
    socket: UdpSocket,
    options: ServerOptions,
    tx: mpsc::Sender<LogEvent>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), SyslogError> {
    let local = socket.local_addr().map_or_else(|_| "?".to_string(), |addr| addr.to_string());
    tracing::info!(addr = %local, "syslog UDP input listening");
    let max_len = options.max_len.clamp(1, MAX_DATAGRAM);
    // One byte more than kept, to tell a datagram of exactly max_len from a longer one.
    let mut buf = vec![0u8; max_len + 1];
    let truncations = WarnLimiter::new();
    let receive_errors = WarnLimiter::new();
    loop {
        let (len, peer) = tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => break,
            received = socket.recv_from(&mut buf) => match received {
                Ok(received) => received,
                Err(error) => {
                    // Transient (ICMP errors reported on the socket, ENOBUFS): keep receiving.
                    if let Some(total) = receive_errors.record(1) {
                        tracing::warn!(addr = %local, %error, total, "syslog UDP receive failed");
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        if len > max_len {
            if let Some(total) = truncations.record(1) {
                tracing::warn!(
                    %peer,
                    max_len,
                    total,
                    "syslog datagram longer than the maximum message length truncated"
                );
            }
        }
        let event = parse(&buf[..len.min(max_len)], SystemTime::now(), Some(peer), options.zone);
        if !forward(&tx, event, &mut shutdown).await {
            break;
        }
    }
    tracing::info!(addr = %local, "syslog UDP input stopped");
    Ok(())
}
