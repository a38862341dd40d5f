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
/// Back-off after a failed round trip or when every partition answered with an error.
const BACKOFF: Duration = Duration::from_millis(100);

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
        let mut progressed = false;
        for topic in response.responses {
            let name = topic.topic.0.to_string();
            for data in topic.partitions {
                let Some(target) = current.get(&(name.clone(), data.partition_index)) else { continue };
                progressed |= handle_partition(&broker, leader_id, target, data);
            }
        }
        if !progressed && wait_or_closed(&mut targets, BACKOFF).await {
            break;
        }
    }
    tracing::info!(leader = leader_id, %addr, "replica fetcher stopped");
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

/// Applies one partition's answer; returns whether it made progress (data or truncation).
fn handle_partition(broker: &Broker, leader_id: i32, target: &FetchTarget, data: PartitionData) -> bool {
    let partition = &target.partition;
    let error = ResponseError::try_from_code(data.error_code);
    match error {
        None => {}
        Some(ResponseError::OffsetOutOfRange) => return handle_out_of_range(partition, &data),
        Some(e) => {
            // NOT_LEADER / FENCED / UNKNOWN epoch: our metadata or the leader's is behind; the
            // next metadata update re-targets this partition.
            tracing::debug!(partition = %partition.name(), leader = leader_id, error = ?e, "replica fetch error");
            return false;
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
                return true;
            }
            // Only epochs without data were dropped; back off in case the leader disagrees again.
            Ok(_) => tracing::debug!(partition = %partition.name(), leader = leader_id, "dropped empty leader epochs"),
            Err(e) => tracing::error!(partition = %partition.name(), error = %e, "truncation failed"),
        }
        return false;
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
            had_records
        }
        // The role changed while the fetch was in flight: the data is simply not ours to take.
        Err(ReplicaError::NotLeader(_)) => false,
        Err(e) => {
            tracing::warn!(partition = %partition.name(), leader = leader_id, error = %e, "appending replicated data failed");
            false
        }
    }
}

fn handle_out_of_range(partition: &Partition, data: &PartitionData) -> bool {
    let (offset, _) = partition.follower_position();
    if offset < data.log_start_offset {
        // Everything we have is below the leader's log start (retention ran meanwhile).
        tracing::warn!(partition = %partition.name(), local_end = offset, leader_start = data.log_start_offset, "log is behind the leader's retention; restarting it at the leader's log start");
        if let Err(e) = partition.reset_to(data.log_start_offset) {
            tracing::error!(partition = %partition.name(), error = %e, "resetting the log failed");
            return false;
        }
        return true;
    }
    // Ahead of the leader without epoch information to find the divergence: everything above
    // the leader's high watermark is uncommitted, so cut back to it.
    let target = data.high_watermark.max(0);
    match partition.truncate_to(target) {
        Ok(end) => {
            tracing::warn!(partition = %partition.name(), from = offset, to = end, "log ahead of the leader; truncated to its high watermark");
            true
        }
        Err(e) => {
            tracing::error!(partition = %partition.name(), error = %e, "truncation failed");
            false
        }
    }
}
