//! Whether this node may call itself the active controller: a Raft leader cut off from the other
//! voters keeps believing it leads (openraft 0.9 has no check-quorum), and brokers on its side
//! would send clients to it as `controller_id`. Kafka's KRaft leader resigns when it has not
//! heard from a majority within its fetch timeout; here the leader confirms its leadership with a
//! round of heartbeats to a majority ([`openraft::Raft::get_read_log_id`]) a few times a second,
//! and names itself only while the last confirmation is recent.

use super::TypeConfig;
use openraft::Raft;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the leader confirms it still reaches a majority.
const CONFIRM_INTERVAL: Duration = Duration::from_millis(250);
/// How long one confirmation may take.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a confirmation counts: a few rounds, longer than an election takes (300–600 ms), so
/// a healthy leader never flickers and a cut-off one stops naming itself within about 1.5 s.
pub const LEASE: Duration = Duration::from_millis(1500);

/// The controller this node names (Metadata's `controller_id`): the Raft leader it knows of,
/// except itself when its lease lapsed (`confirmed_ago` is the time since its last confirmed
/// majority, `None` if never in this term).
pub fn acting_controller(leader: Option<u64>, me: u64, confirmed_ago: Option<Duration>) -> Option<u64> {
    match leader {
        Some(id) if id == me => confirmed_ago.filter(|ago| *ago < LEASE).map(|_| me),
        other => other,
    }
}

/// The time of the last confirmation, per term (a new term starts without one).
#[derive(Default)]
pub struct QuorumLease {
    confirmed: Mutex<Option<(u64, Instant)>>,
}

impl QuorumLease {
    /// Time since the last confirmation in `term`.
    pub fn confirmed_ago(&self, term: u64) -> Option<Duration> {
        let confirmed = *self.confirmed.lock().unwrap_or_else(|p| p.into_inner());
        confirmed.filter(|(t, _)| *t == term).map(|(_, at)| at.elapsed())
    }

    fn record(&self, term: u64, at: Instant) {
        *self.confirmed.lock().unwrap_or_else(|p| p.into_inner()) = Some((term, at));
    }

    /// Confirms leadership while this node leads; runs until the task is aborted.
    pub async fn run(self: std::sync::Arc<Self>, raft: Raft<TypeConfig>) {
        let mut tick = tokio::time::interval(CONFIRM_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let metrics = raft.metrics().borrow().clone();
            if metrics.current_leader != Some(metrics.id) {
                continue;
            }
            // Taken before asking: the majority answered at or after this instant.
            let asked = Instant::now();
            if let Ok(Ok(_)) = tokio::time::timeout(CONFIRM_TIMEOUT, raft.get_read_log_id()).await {
                self.record(metrics.current_term, asked);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_names_itself_only_while_a_majority_confirmed_it_recently() {
        let recent = Some(Duration::from_millis(200));
        let lapsed = Some(LEASE + Duration::from_millis(1));
        assert_eq!(acting_controller(Some(1), 1, recent), Some(1));
        assert_eq!(acting_controller(Some(1), 1, lapsed), None, "cut off from the majority");
        assert_eq!(acting_controller(Some(1), 1, None), None, "not yet confirmed in this term");
        // Another node's leadership is that node's to confirm.
        assert_eq!(acting_controller(Some(2), 1, None), Some(2));
        assert_eq!(acting_controller(None, 1, recent), None);
    }

    #[test]
    fn a_confirmation_counts_only_in_its_term() {
        let lease = QuorumLease::default();
        assert_eq!(lease.confirmed_ago(3), None);
        lease.record(3, Instant::now());
        assert!(lease.confirmed_ago(3).is_some_and(|ago| ago < LEASE));
        assert_eq!(lease.confirmed_ago(4), None, "a new term starts unconfirmed");
    }
}
