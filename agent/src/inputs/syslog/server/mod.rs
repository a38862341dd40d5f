//! The syslog listeners (UDP in `udp`, TCP in `tcp`), their settings and errors, and what they
//! share: handing events on with backpressure, shutdown, rate-limited warnings.

mod tcp;
mod udp;

#[cfg(test)]
mod tests;

pub use tcp::{bind_tcp, run_tcp, serve_tcp};
pub use udp::{bind_udp, run_udp, serve_udp};

use super::TimeZoneHint;
use crate::event::LogEvent;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Default bound on concurrent TCP connections (`max_connections`); further clients wait in the
/// listen backlog.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Default time a TCP connection may stay silent before it is closed (`idle_timeout`). Long,
/// because senders such as rsyslog keep one connection open for hours and a quiet host is not a
/// dead one; it exists to free the slots of peers that vanished without closing — or that hold
/// them on purpose, where a shorter setting frees them sooner.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// At most one warning of each kind per listener in this interval.
const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Why a syslog listener could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyslogError {
    /// The listening socket could not be set up (address in use, a port below 1024 without the
    /// privilege, an address not on this host…).
    #[error("cannot listen for syslog over {transport} on {addr}: {source}")]
    Bind {
        /// `UDP` or `TCP`.
        transport: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

/// Settings of a syslog listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerOptions {
    /// Longest message kept, in bytes; longer ones are truncated (and counted, and warned about).
    pub max_len: usize,
    /// TCP: connections served at once; further ones wait to be accepted.
    pub max_connections: usize,
    /// TCP: a connection silent this long is closed; None keeps it open forever.
    pub idle_timeout: Option<Duration>,
    /// The zone of timestamps that carry no UTC offset.
    pub zone: TimeZoneHint,
}

impl ServerOptions {
    /// Defaults: [`DEFAULT_MAX_CONNECTIONS`], [`DEFAULT_IDLE_TIMEOUT`], the local time zone.
    pub fn new(max_len: usize) -> ServerOptions {
        ServerOptions {
            max_len,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            zone: TimeZoneHint::Local,
        }
    }
}

/// Hands `event` to the pipeline, waiting while its queue is full (that wait is the
/// backpressure). False when the pipeline is gone or shutdown was asked for meanwhile.
async fn forward(tx: &mpsc::Sender<LogEvent>, event: LogEvent, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        biased;
        sent = tx.send(event) => sent.is_ok(),
        _ = stopped(shutdown) => false,
    }
}

/// Completes once shutdown is asked for. A dropped sender can never ask any more, so it counts
/// as asking.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Counts occurrences of a problem and allows a warning about it at most once per
/// [`WARN_INTERVAL`], so a misbehaving sender cannot flood the agent's own log.
struct WarnLimiter {
    origin: Instant,
    /// Milliseconds since `origin` before which no warning is due.
    next_ms: AtomicU64,
    total: AtomicU64,
}

impl WarnLimiter {
    fn new() -> WarnLimiter {
        WarnLimiter { origin: Instant::now(), next_ms: AtomicU64::new(0), total: AtomicU64::new(0) }
    }

    /// Counts `n` more occurrences; the running total when a warning is due now.
    fn record(&self, n: u64) -> Option<u64> {
        let total = self.total.fetch_add(n, Ordering::Relaxed) + n;
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        let next = self.next_ms.load(Ordering::Relaxed);
        let interval = u64::try_from(WARN_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        let due = now >= next
            && self
                .next_ms
                .compare_exchange(next, now.saturating_add(interval), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        due.then_some(total)
    }
}
