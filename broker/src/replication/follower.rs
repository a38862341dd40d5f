//! Follower fetching, as Kafka's `ReplicaFetcherThread`: one task per leader broker fetches every
//! partition this broker follows from that leader in one Fetch request (v12, with the replica id,
//! the current leader epoch and the last fetched epoch), appends what comes back verbatim, takes
//! the leader's high watermark, and truncates a divergent tail when the leader reports a
//! diverging epoch.

use crate::partition::{Partition, ReplicaError};
use crate::Broker;
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use millrace_protocol::{ClientError, Connection};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Fetch version followers use: topic names (not ids), `replica_id` in the body, diverging epochs.
const FETCH_VERSION: i16 = 12;
/// Back-off after a failed round trip or when no partition progressed and one answered with an
/// error.
const BACKOFF: Duration = Duration::from_millis(100);
/// Shortest time between two fetches that bring nothing (see `next_fetch_delay`).
const IDLE_CYCLE_FLOOR: Duration = Duration::from_millis(10);

/// One followed partition.
#[derive(Clone)]
pub struct FetchTarget {
    /// The local replica.
    pub partition: Arc<Partition>,
    /// The leader epoch the controller gave the leader.
    pub leader_epoch: i32,
}

/// Partitions followed from one leader, keyed by (topic, partition).
pub type Targets = BTreeMap<(String, i32), FetchTarget>;

/// Fetches from `leader_id` at `addr` until `targets` is dropped by the manager.
pub async fn run(broker: Arc<Broker>, leader_id: i32, addr: String, mut targets: watch::Receiver<Targets>) {
    let mut conn: Option<Connection> = None;
    let settings = broker.config.replication.clone();
    let timeout = settings.fetch_max_wait.as_duration() + Duration::from_secs(10);
    tracing::info!(leader = leader_id, %addr, "replica fetcher started");
    loop {
        let current = targets.borrow_and_update().clone();
        if current.is_empty() {
            if targets.changed().await.is_err() {
                break;
            }
            continue;
        }
        let request = build_request(&broker, &current);
        if conn.is_none() {
            match Connection::connect_with(&addr, Duration::from_secs(3), &broker.inter_broker_security())
                .await
                .map(|c| c.with_client_id("millrace-replica-fetcher"))
            {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::debug!(leader = leader_id, error = %e, "replica fetcher cannot connect");
                    if wait_or_closed(&mut targets, BACKOFF * 5).await {
                        break;
                    }
                    continue;
                }
            }
        }
        let Some(connection) = conn.as_mut() else { continue };
        let sent = tokio::time::Instant::now();
        let response = match connection.request(FETCH_VERSION, &request, timeout).await {
            Ok(r) => r,
            Err(e) => {
                log_client_error(leader_id, &e);
                conn = None;
                if wait_or_closed(&mut targets, BACKOFF).await {
                    break;
                }
                continue;
            }
        };
        let mut outcome = Outcome::Idle;
        for topic in response.responses {
            let name = topic.topic.0.to_string();
            for data in topic.partitions {
                let Some(target) = current.get(&(name.clone(), data.partition_index)) else { continue };
                outcome = outcome.max(handle_partition(&broker, leader_id, target, data));
            }
        }
        let delay = next_fetch_delay(outcome, sent.elapsed(), settings.fetch_max_wait.as_duration());
        if !delay.is_zero() && wait_or_closed(&mut targets, delay).await {
            break;
        }
    }
    tracing::info!(leader = leader_id, %addr, "replica fetcher stopped");
}

/// What one partition's answer did. Ordered by what decides the next fetch: a round trip counts
/// as its greatest outcome (progress anywhere, else an error anywhere, else idle).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// Nothing new: the leader held the fetch until its wait ran out.
    Idle,
    /// An error (not the leader, a fenced epoch, a failed append): asking again at once would
    /// most likely get the same answer.
    Failed,
    /// Records appended, or the log truncated or reset to follow the leader.
    Progress,
}

/// How long to wait before the next fetch after a round trip that took `round_trip` and came to
/// `outcome`.
///
/// An idle answer is followed by the next fetch at once: the leader held it for up to `max_wait`
/// and answers the next one the moment a batch is appended, and an acks=all write waits for that
/// fetch. (Backing off after every idle answer kept each write arriving in the back-off window
/// after a quiet spell waiting up to 100 ms for its followers.) Only a leader that answers empty
/// without holding the fetch is paced, to one fetch per `max_wait` (at least 10 ms, at most
/// `BACKOFF`), so it cannot make the follower spin.
fn next_fetch_delay(outcome: Outcome, round_trip: Duration, max_wait: Duration) -> Duration {
    match outcome {
        Outcome::Progress => Duration::ZERO,
        Outcome::Failed => BACKOFF,
        Outcome::Idle => max_wait.clamp(IDLE_CYCLE_FLOOR, BACKOFF).saturating_sub(round_trip),
    }
}

/// Sleeps `delay` unless the target set changes; returns true when the manager closed it.
async fn wait_or_closed(targets: &mut watch::Receiver<Targets>, delay: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => false,
        changed = targets.changed() => changed.is_err(),
    }
}

fn log_client_error(leader_id: i32, e: &ClientError) {
    // A leader that went away is routine during failover; the controller will move us on.
    tracing::debug!(leader = leader_id, error = %e, "replica fetch failed");
}

fn build_request(broker: &Broker, targets: &Targets) -> FetchRequest {
    let settings = &broker.config.replication;
    let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
    // A replica on a failed disk takes nothing more; its leadership and ISR place are gone.
    for ((topic, index), target) in targets.iter().filter(|(_, t)| !t.partition.is_offline()) {
        let (fetch_offset, last_fetched_epoch) = target.partition.follower_position();
        let (log_start, _) = target.partition.offsets();
        topics.entry(topic.as_str()).or_default().push(
            FetchPartition::default()
                .with_partition(*index)
                .with_current_leader_epoch(target.leader_epoch)
                .with_fetch_offset(fetch_offset)
                .with_last_fetched_epoch(last_fetched_epoch)
                .with_log_start_offset(log_start)
                .with_partition_max_bytes(settings.fetch_partition_max_bytes.0.min(i32::MAX as u64) as i32),
        );
    }
    let topics = topics
        .into_iter()
        .map(|(name, partitions)| {
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(name.to_string())))
                .with_partitions(partitions)
        })
        .collect();
    FetchRequest::default()
        .with_replica_id(BrokerId(broker.config.node_id))
        .with_max_wait_ms(settings.fetch_max_wait.0.min(i32::MAX as u64) as i32)
        .with_min_bytes(1)
        .with_max_bytes(settings.fetch_response_max_bytes.0.min(i32::MAX as u64) as i32)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(topics)
}

/// Applies one partition's answer.
fn handle_partition(broker: &Broker, leader_id: i32, target: &FetchTarget, data: PartitionData) -> Outcome {
    let partition = &target.partition;
    let error = ResponseError::try_from_code(data.error_code);
    match error {
        None => {}
        Some(ResponseError::OffsetOutOfRange) => return handle_out_of_range(partition, &data),
        Some(e) => {
            // NOT_LEADER / FENCED / UNKNOWN epoch: our metadata or the leader's is behind; the
            // next metadata update re-targets this partition.
            tracing::debug!(partition = %partition.name(), leader = leader_id, error = ?e, "replica fetch error");
            return Outcome::Failed;
        }
    }
    if data.diverging_epoch.epoch >= 0 {
        let leader_end = data.diverging_epoch.end_offset;
        let local_end = partition.end_offset_for_epoch(data.diverging_epoch.epoch).map_or(leader_end, |(_, end)| end);
        let truncate_at = leader_end.min(local_end);
        let (before, _) = partition.follower_position();
        match partition.truncate_to(truncate_at) {
            Ok(end) if end < before => {
                tracing::warn!(
                    partition = %partition.name(), leader = leader_id, epoch = data.diverging_epoch.epoch,
                    from = before, to = end, discarded = before - end,
                    "truncated a divergent log tail to match the new leader"
                );
                return Outcome::Progress;
            }
            // Only epochs without data were dropped; back off in case the leader disagrees again.
            Ok(_) => tracing::debug!(partition = %partition.name(), leader = leader_id, "dropped empty leader epochs"),
            Err(e) => tracing::error!(partition = %partition.name(), error = %e, "truncation failed"),
        }
        return Outcome::Failed;
    }
    let records: Bytes = data.records.unwrap_or_default();
    let had_records = !records.is_empty();
    match partition.append_replicated(&records, data.high_watermark, crate::clock::now_ms()) {
        Ok(_) => {
            if had_records {
                broker.metrics.replication_bytes_in(&partition.topic, records.len());
            }
            // Records the leader deleted (DeleteRecords, retention) go here too.
            if let Err(e) = partition.follow_log_start_offset(data.log_start_offset) {
                tracing::warn!(partition = %partition.name(), leader_start = data.log_start_offset, error = %e, "following the leader's log start failed");
            }
            if had_records {
                Outcome::Progress
            } else {
                Outcome::Idle
            }
        }
        // The role changed while the fetch was in flight: the data is simply not ours to take.
        Err(ReplicaError::NotLeader(_)) => Outcome::Failed,
        Err(e) => {
            tracing::warn!(partition = %partition.name(), leader = leader_id, error = %e, "appending replicated data failed");
            Outcome::Failed
        }
    }
}

fn handle_out_of_range(partition: &Partition, data: &PartitionData) -> Outcome {
    let (offset, _) = partition.follower_position();
    if offset < data.log_start_offset {
        // Everything we have is below the leader's log start (retention ran meanwhile).
        tracing::warn!(partition = %partition.name(), local_end = offset, leader_start = data.log_start_offset, "log is behind the leader's retention; restarting it at the leader's log start");
        if let Err(e) = partition.reset_to(data.log_start_offset) {
            tracing::error!(partition = %partition.name(), error = %e, "resetting the log failed");
            return Outcome::Failed;
        }
        return Outcome::Progress;
    }
    // Ahead of the leader without epoch information to find the divergence: everything above
    // the leader's high watermark is uncommitted, so cut back to it.
    let target = data.high_watermark.max(0);
    match partition.truncate_to(target) {
        Ok(end) => {
            tracing::warn!(partition = %partition.name(), from = offset, to = end, "log ahead of the leader; truncated to its high watermark");
            Outcome::Progress
        }
        Err(e) => {
            tracing::error!(partition = %partition.name(), error = %e, "truncation failed");
            Outcome::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A round trip's outcome from its partitions', as the fetch loop folds them.
    fn outcomes(list: &[Outcome]) -> Outcome {
        list.iter().fold(Outcome::Idle, |all, o| all.max(*o))
    }

    const MAX_WAIT: Duration = Duration::from_millis(500);

    #[test]
    fn an_idle_answer_to_a_held_fetch_is_followed_by_the_next_fetch_at_once() {
        // The leader held the fetch until its wait ran out, or nearly.
        for round_trip in [MAX_WAIT, BACKOFF, MAX_WAIT + Duration::from_millis(3)] {
            let delay = next_fetch_delay(outcomes(&[Outcome::Idle, Outcome::Idle]), round_trip, MAX_WAIT);
            assert_eq!(delay, Duration::ZERO, "after {round_trip:?}");
        }
        // No partition in the answer at all is idle too.
        assert_eq!(next_fetch_delay(outcomes(&[]), MAX_WAIT, MAX_WAIT), Duration::ZERO);
    }

    #[test]
    fn a_leader_answering_empty_without_holding_the_fetch_is_paced() {
        let quick = Duration::from_millis(1);
        let idle = outcomes(&[Outcome::Idle]);
        assert_eq!(next_fetch_delay(idle, quick, MAX_WAIT), BACKOFF - quick);
        // A shorter max wait paces to it, but never below the floor.
        assert_eq!(next_fetch_delay(idle, quick, Duration::from_millis(20)), Duration::from_millis(19));
        assert_eq!(next_fetch_delay(idle, quick, Duration::ZERO), IDLE_CYCLE_FLOOR - quick);
    }

    #[test]
    fn progress_anywhere_fetches_at_once_and_errors_alone_back_off() {
        let quick = Duration::from_millis(1);
        for list in [
            &[Outcome::Progress][..],
            &[Outcome::Idle, Outcome::Progress],
            &[Outcome::Failed, Outcome::Progress, Outcome::Idle],
        ] {
            assert_eq!(next_fetch_delay(outcomes(list), quick, MAX_WAIT), Duration::ZERO, "{list:?}");
        }
        for list in [&[Outcome::Failed][..], &[Outcome::Idle, Outcome::Failed]] {
            // However long the round trip took: the same error would most likely come back.
            assert_eq!(next_fetch_delay(outcomes(list), MAX_WAIT, MAX_WAIT), BACKOFF, "{list:?}");
        }
    }
}
