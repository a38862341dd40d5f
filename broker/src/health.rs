//! What operators alert on, decided from state without I/O or clocks: partition health as Kafka
//! reports it (under-replicated and under-min-ISR partitions this broker leads, offline
//! partitions as the active controller sees them), which way an ISR change went, and whether the
//! broker is ready to serve (the reasons it is not).

use crate::controller::{MetadataState, NO_LEADER};
use std::time::Duration;

/// Partition counts of one broker's view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionHealth {
    /// Led partitions whose ISR is smaller than their replica set (Kafka's
    /// UnderReplicatedPartitions).
    pub under_replicated: i64,
    /// Led partitions whose ISR is below the topic's `min.insync.replicas`: acks=all writes fail
    /// (UnderMinIsrPartitionCount).
    pub under_min_isr: i64,
    /// Partitions without a leader, counted by the active controller only, as Kafka's
    /// OfflinePartitionsCount (every other broker reports 0, so a sum over brokers is the count).
    pub offline: i64,
}

/// Counts from the metadata `md` as broker `node_id` sees it; `min_isr` gives a topic's
/// effective `min.insync.replicas`.
pub fn partition_health(
    md: &MetadataState,
    node_id: i32,
    active_controller: bool,
    min_isr: impl Fn(&str) -> usize,
) -> PartitionHealth {
    let mut health = PartitionHealth::default();
    for (name, topic) in &md.topics {
        let needed = min_isr(name).max(1);
        for partition in &topic.partitions {
            if partition.leader == NO_LEADER {
                health.offline += i64::from(active_controller);
            } else if partition.leader == node_id {
                health.under_replicated += i64::from(partition.isr.len() < partition.replicas.len());
                health.under_min_isr += i64::from(partition.isr.len() < needed);
            }
        }
    }
    health
}

/// Whether an ISR change from `before` to `after` dropped members (a shrink), added members
/// (an expand), or both.
pub fn isr_change(before: &[i32], after: &[i32]) -> (bool, bool) {
    let shrink = before.iter().any(|r| !after.contains(r));
    let expand = after.iter().any(|r| !before.contains(r));
    (shrink, expand)
}

/// ISR shrinks and expands between two metadata states among the partitions `node_id` led in
/// both, under the same leader epoch (a new leader starts a new ISR history).
pub fn isr_changes(before: &MetadataState, after: &MetadataState, node_id: i32) -> (u64, u64) {
    let (mut shrinks, mut expands) = (0, 0);
    for (name, topic) in &after.topics {
        let Some(old) = before.topics.get(name) else { continue };
        for (now, was) in topic.partitions.iter().zip(&old.partitions) {
            if now.leader != node_id || was.leader != node_id || now.leader_epoch != was.leader_epoch {
                continue;
            }
            let (shrink, expand) = isr_change(&was.isr, &now.isr);
            shrinks += u64::from(shrink);
            expands += u64::from(expand);
        }
    }
    (shrinks, expands)
}

/// What readiness looks at.
#[derive(Debug, Clone, Default)]
pub struct ReadinessInputs {
    /// Registered with the controller at the current epoch and not fenced.
    pub registered_unfenced: bool,
    /// Since the active controller last answered a heartbeat; None when it never did.
    pub since_heartbeat: Option<Duration>,
    /// After this long without an answer the controller fences the broker anyway
    /// (`cluster.broker_session_timeout`).
    pub session_timeout: Duration,
    /// Offline log directories and their errors.
    pub offline_log_dirs: Vec<(String, String)>,
}

/// Why the broker should not get traffic now; empty when ready.
pub fn not_ready_reasons(inputs: &ReadinessInputs) -> Vec<String> {
    let mut reasons = Vec::new();
    match inputs.since_heartbeat {
        None => reasons.push("the metadata quorum has not answered a heartbeat yet".to_string()),
        Some(age) if age > inputs.session_timeout => reasons.push(format!(
            "the metadata quorum has not answered a heartbeat for {:.1} s (session timeout {:.1} s): its metadata may be stale",
            age.as_secs_f64(),
            inputs.session_timeout.as_secs_f64()
        )),
        Some(_) => {}
    }
    if !inputs.registered_unfenced {
        reasons.push("not registered with the controller, or fenced: it leads nothing and is in no ISR".to_string());
    }
    for (path, error) in &inputs.offline_log_dirs {
        reasons.push(format!("log directory {path} is offline: {error}"));
    }
    reasons
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::controller::{PartitionState, TopicState};

    fn partition(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionState {
        PartitionState {
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader,
            leader_epoch: 0,
            partition_epoch: 0,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
            offline_replicas: Vec::new(),
        }
    }

    fn topic(partitions: Vec<PartitionState>) -> TopicState {
        TopicState { topic_id: uuid::Uuid::nil(), configs: Default::default(), partitions }
    }

    #[test]
    fn led_partitions_count_under_replicated_and_under_min_isr_and_the_controller_counts_offline() {
        let mut md = MetadataState::default();
        md.topics.insert(
            "logs".into(),
            topic(vec![
                partition(&[1, 2, 3], &[1, 2, 3], 1),  // healthy
                partition(&[1, 2, 3], &[1, 2], 1),     // under-replicated, min ISR 2 met
                partition(&[1, 2, 3], &[1], 1),        // both
                partition(&[2, 1, 3], &[2], 2),        // led elsewhere: not counted here
                partition(&[3, 1, 2], &[], NO_LEADER), // offline
            ]),
        );
        md.topics.insert("single".into(), topic(vec![partition(&[1], &[1], 1)]));
        let min_isr = |topic: &str| if topic == "logs" { 2 } else { 1 };
        assert_eq!(
            partition_health(&md, 1, false, min_isr),
            PartitionHealth { under_replicated: 2, under_min_isr: 1, offline: 0 }
        );
        assert_eq!(partition_health(&md, 1, true, min_isr).offline, 1, "the active controller reports offline ones");
        assert_eq!(
            partition_health(&md, 2, false, min_isr),
            PartitionHealth { under_replicated: 1, under_min_isr: 1, offline: 0 }
        );
    }

    #[test]
    fn isr_changes_are_shrinks_expands_or_both() {
        assert_eq!(isr_change(&[1, 2, 3], &[1, 2]), (true, false));
        assert_eq!(isr_change(&[1, 2], &[1, 2, 3]), (false, true));
        assert_eq!(isr_change(&[1, 2], &[1, 3]), (true, true));
        assert_eq!(isr_change(&[1, 2], &[2, 1]), (false, false));
    }

    #[test]
    fn isr_changes_are_counted_for_partitions_led_here_under_one_leader_epoch() {
        let state = |partitions: Vec<PartitionState>| {
            let mut md = MetadataState::default();
            md.topics.insert("t".into(), topic(partitions));
            md
        };
        let with_epoch = |mut p: PartitionState, epoch: i32| {
            p.leader_epoch = epoch;
            p
        };
        let before = state(vec![partition(&[1, 2, 3], &[1, 2, 3], 1), partition(&[2, 1, 3], &[2, 1, 3], 2)]);
        let after = state(vec![partition(&[1, 2, 3], &[1, 2], 1), partition(&[2, 1, 3], &[2, 1], 2)]);
        assert_eq!(isr_changes(&before, &after, 1), (1, 0), "only the partition led here");
        assert_eq!(isr_changes(&after, &before, 1), (0, 1));
        let new_leader =
            state(vec![with_epoch(partition(&[1, 2, 3], &[1, 3], 1), 1), partition(&[2, 1, 3], &[2, 1], 2)]);
        assert_eq!(isr_changes(&after, &new_leader, 1), (0, 0), "a new leader epoch is no change");
    }

    #[test]
    fn readiness_names_every_reason() {
        let ready = ReadinessInputs {
            registered_unfenced: true,
            since_heartbeat: Some(Duration::from_millis(400)),
            session_timeout: Duration::from_secs(3),
            offline_log_dirs: Vec::new(),
        };
        assert!(not_ready_reasons(&ready).is_empty());
        let stale = ReadinessInputs { since_heartbeat: Some(Duration::from_secs(10)), ..ready.clone() };
        assert!(not_ready_reasons(&stale)[0].contains("for 10.0 s"));
        let never = ReadinessInputs { since_heartbeat: None, registered_unfenced: false, ..ready.clone() };
        assert_eq!(not_ready_reasons(&never).len(), 2);
        let disk = ReadinessInputs { offline_log_dirs: vec![("/data/a".into(), "EIO".into())], ..ready };
        assert_eq!(not_ready_reasons(&disk), vec!["log directory /data/a is offline: EIO".to_string()]);
    }
}
