//! Connection limits (in total and per client address), the broker-wide budget of request
//! bytes, and refusal logs that do not flood: shared by the Kafka, controller and admin listeners.

use crate::metrics::ListenerMetrics;
use prometheus::IntGauge;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// At most one refusal warning per listener in this interval; the rest are counted.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Counts the open connections of one listener, in total and per client address, and refuses
/// those over the limits (counted, with a rate-limited warning).
pub(crate) struct ConnectionLimiter {
    listener: &'static str,
    max_total: usize,
    max_per_ip: usize,
    open: Mutex<OpenConnections>,
    metrics: ListenerMetrics,
    refusal_log: RateLimitedLog,
}

#[derive(Default)]
struct OpenConnections {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it frees its place.
pub(crate) struct ConnectionSlot {
    limiter: Arc<ConnectionLimiter>,
    ip: IpAddr,
}

impl ConnectionLimiter {
    pub(crate) fn new(
        listener: &'static str,
        max_total: usize,
        max_per_ip: usize,
        metrics: ListenerMetrics,
    ) -> ConnectionLimiter {
        ConnectionLimiter {
            listener,
            max_total,
            max_per_ip,
            open: Mutex::new(OpenConnections::default()),
            metrics,
            refusal_log: RateLimitedLog::new(REFUSAL_LOG_INTERVAL),
        }
    }

    /// A place for a connection from `peer`, or None (counted and logged) when a limit is reached.
    pub(crate) fn admit(self: &Arc<Self>, peer: SocketAddr) -> Option<ConnectionSlot> {
        let ip = peer.ip().to_canonical();
        let refused = {
            let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let from_ip = open.per_ip.get(&ip).copied().unwrap_or(0);
            if open.total >= self.max_total {
                Some("max_connections")
            } else if from_ip >= self.max_per_ip {
                Some("max_connections_per_ip")
            } else {
                open.total += 1;
                open.per_ip.insert(ip, from_ip + 1);
                None
            }
        };
        match refused {
            None => Some(ConnectionSlot { limiter: self.clone(), ip }),
            Some(reason) => {
                let limit = if reason == "max_connections" { self.max_total } else { self.max_per_ip };
                self.refuse(peer, reason, &format!("{reason} ({limit}) reached"));
                None
            }
        }
    }

    /// Counts a refused connection and logs it, at most once per interval per listener.
    pub(crate) fn refuse(&self, peer: SocketAddr, reason: &'static str, why: &str) {
        self.metrics.refused.with_label_values(&[self.listener, reason]).inc();
        if let Some(suppressed) = self.refusal_log.should_log() {
            tracing::warn!(
                listener = self.listener,
                %peer,
                suppressed,
                "closing a new connection: {why} (further refusals in the next {REFUSAL_LOG_INTERVAL:?} are only counted in connections_refused_total)"
            );
        }
    }

    /// Counts a connection the broker closes after admitting it.
    pub(crate) fn closed(&self, reason: &'static str) {
        self.metrics.closed.with_label_values(&[self.listener, reason]).inc();
    }

    /// Open connections (total, from `ip`).
    #[cfg(test)]
    fn open(&self, ip: IpAddr) -> (usize, usize) {
        let open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        (open.total, open.per_ip.get(&ip).copied().unwrap_or(0))
    }
}

impl ConnectionSlot {
    /// The listener's limiter, to count how the connection ends.
    pub(crate) fn limiter(&self) -> &ConnectionLimiter {
        &self.limiter
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.limiter.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.per_ip.remove(&self.ip);
            }
        }
    }
}

/// Lets one message through per interval and counts the ones it holds back.
pub(crate) struct RateLimitedLog {
    interval: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimitedLog {
    pub(crate) fn new(interval: Duration) -> RateLimitedLog {
        RateLimitedLog { interval, state: Mutex::new((None, 0)) }
    }

    /// Some(messages held back since the last one) when this one may be logged.
    pub(crate) fn should_log(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        match state.0 {
            Some(last) if now.duration_since(last) < self.interval => {
                state.1 += 1;
                None
            }
            _ => {
                let suppressed = state.1;
                *state = (Some(now), 0);
                Some(suppressed)
            }
        }
    }
}

/// The broker-wide memory budget for request bytes (`server.queued_max_request_bytes`).
pub(crate) struct RequestBudget {
    pub(super) semaphore: Arc<Semaphore>,
    pub(super) total: usize,
    pub(super) in_use: IntGauge,
    /// Observes how long a request waited for bytes (only when it had to).
    waited: prometheus::Histogram,
}

/// Bytes taken from the budget; they return when this is dropped.
pub(crate) struct BudgetBytes {
    permit: Option<OwnedSemaphorePermit>,
    in_use: IntGauge,
}

impl RequestBudget {
    pub(crate) fn new(total: usize, metrics: &crate::metrics::ListenerMetrics) -> RequestBudget {
        // tokio's semaphore holds at most usize::MAX >> 3 permits.
        let total = total.min(Semaphore::MAX_PERMITS);
        RequestBudget {
            semaphore: Arc::new(Semaphore::new(total)),
            total,
            in_use: metrics.queued_request_bytes.clone(),
            waited: metrics.request_queue_wait.clone(),
        }
    }

    pub(super) fn empty(&self) -> BudgetBytes {
        BudgetBytes { permit: None, in_use: self.in_use.clone() }
    }

    /// Adds `bytes` to `held`, waiting while the budget is used up. Cancel-safe: nothing is
    /// taken unless it completes.
    pub(super) async fn grow(&self, held: &mut BudgetBytes, bytes: usize) {
        let mut left = bytes;
        while left > 0 {
            // Acquisitions are counted in u32; large steps are taken in pieces.
            let step = left.min(u32::MAX as usize);
            let permit = match self.semaphore.clone().try_acquire_many_owned(step as u32) {
                Ok(permit) => permit,
                Err(_) => {
                    // Observed when the wait ends, also by cancellation (the connection's select
                    // moves on to write a response and reads again later).
                    let _timer = self.waited.start_timer();
                    let Ok(permit) = self.semaphore.clone().acquire_many_owned(step as u32).await else {
                        // The semaphore is never closed.
                        return;
                    };
                    permit
                }
            };
            held.in_use.add(step as i64);
            match &mut held.permit {
                Some(existing) => existing.merge(permit),
                None => held.permit = Some(permit),
            }
            left -= step;
        }
    }
}

impl BudgetBytes {
    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.permit.as_ref().map_or(0, OwnedSemaphorePermit::num_permits)
    }
}

impl Drop for BudgetBytes {
    fn drop(&mut self) {
        self.in_use.sub(self.bytes() as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> ListenerMetrics {
        ListenerMetrics::new().unwrap()
    }

    fn addr(ip: &str, port: u16) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), port)
    }

    #[test]
    fn limiter_counts_in_total_and_per_address() {
        let limiter = Arc::new(ConnectionLimiter::new("test", 3, 2, metrics()));
        let a1 = limiter.admit(addr("10.0.0.1", 1)).unwrap();
        let _a2 = limiter.admit(addr("10.0.0.1", 2)).unwrap();
        assert!(limiter.admit(addr("10.0.0.1", 3)).is_none(), "third from one address");
        // An IPv4-mapped IPv6 peer is the same address.
        assert!(limiter.admit(addr("::ffff:10.0.0.1", 4)).is_none());
        let _b1 = limiter.admit(addr("10.0.0.2", 1)).unwrap();
        assert!(limiter.admit(addr("10.0.0.3", 1)).is_none(), "over the total");
        drop(a1);
        assert_eq!(limiter.open("10.0.0.1".parse().unwrap()), (2, 1));
        let _c1 = limiter.admit(addr("10.0.0.3", 1)).unwrap();
        let refused = &limiter.metrics.refused;
        assert_eq!(refused.with_label_values(&["test", "max_connections_per_ip"]).get(), 2);
        assert_eq!(refused.with_label_values(&["test", "max_connections"]).get(), 1);
    }

    #[test]
    fn rate_limited_log_counts_what_it_holds_back() {
        let log = RateLimitedLog::new(Duration::from_secs(3600));
        assert_eq!(log.should_log(), Some(0));
        assert_eq!(log.should_log(), None);
        assert_eq!(log.should_log(), None);
        let log = RateLimitedLog { interval: Duration::ZERO, state: Mutex::new((Some(Instant::now()), 2)) };
        assert_eq!(log.should_log(), Some(2));
    }
}
