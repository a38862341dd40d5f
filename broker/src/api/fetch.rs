//! Fetch: whole record batches from a fetch offset, with long-polling (max_wait_ms / min_bytes),
//! per-partition and per-response byte limits. Fetch sessions (KIP-227) are declined by
//! answering session id 0, which tells clients to send full fetch requests.
//!
//! Consumers read below the high watermark from the leader. Followers (a `replica_id`) read up
//! to the log end; their fetch offset tells the leader what they have (moving the high
//! watermark), and a follower whose last fetched epoch disagrees with the leader's log gets a
//! diverging epoch to truncate to instead of data.

use super::authorize::Access;
use super::context::{
    check_leader_epoch, led_partition, Authorize, Partitions, Reply, RequestContext, Settings, Telemetry,
};
use super::current_leader::{names_leader, Leaders};
use super::{str_bytes, Handler};
use crate::cluster::Quorum;
use crate::partition::{FollowerFetch, Partition};
use crate::security::acl::AclOperation;
use bytes::Bytes;
use futures::future::select_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

struct Wanted {
    index: i32,
    partition: Result<Arc<Partition>, ResponseError>,
    fetch_offset: i64,
    max_bytes: usize,
    /// Set for a follower whose log diverges: (epoch, end offset) to truncate to.
    diverging: Option<(i32, i64)>,
}

struct WantedTopic {
    name: TopicName,
    id: Uuid,
    unknown: ResponseError,
    partitions: Vec<Wanted>,
}

fn empty_partition(index: i32, error: ResponseError) -> PartitionData {
    PartitionData::default()
        .with_partition_index(index)
        .with_error_code(error.code())
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_log_start_offset(-1)
        .with_records(Some(Bytes::new()))
}

/// One pass over every requested partition. Returns the response, the bytes it carries and
/// whether any partition had an error (which answers the request at once, as Kafka does).
fn read_once(
    ctx: &impl Telemetry,
    topics: &[WantedTopic],
    response_max_bytes: usize,
    follower: bool,
) -> (Vec<FetchableTopicResponse>, usize, bool) {
    let mut total = 0usize;
    let mut any_error = false;
    let mut out = Vec::with_capacity(topics.len());
    for topic in topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for wanted in &topic.partitions {
            let partition = match &wanted.partition {
                Ok(partition) => partition,
                Err(error) => {
                    any_error = true;
                    let error = if *error == ResponseError::UnknownTopicOrPartition { topic.unknown } else { *error };
                    partitions.push(empty_partition(wanted.index, error));
                    continue;
                }
            };
            let (log_start, high_watermark) = partition.offsets();
            if let Some((epoch, end_offset)) = wanted.diverging {
                any_error = true;
                partitions.push(
                    empty_partition(wanted.index, ResponseError::UnknownServerError)
                        .with_error_code(0)
                        .with_high_watermark(high_watermark)
                        .with_log_start_offset(log_start)
                        .with_diverging_epoch(EpochEndOffset::default().with_epoch(epoch).with_end_offset(end_offset)),
                );
                continue;
            }
            let readable_end = if follower { partition.log_end_offset() } else { high_watermark };
            let budget = wanted.max_bytes.min(response_max_bytes.saturating_sub(total));
            let data = if wanted.fetch_offset == readable_end || budget == 0 {
                Ok(Bytes::new())
            } else if follower {
                partition.read_to_end(wanted.fetch_offset, budget, total == 0).map(|r| r.data)
            } else {
                // KIP-74: the first batch with data is returned whole even above the limits, so a
                // consumer can always make progress.
                partition.read(wanted.fetch_offset, budget, total == 0).map(|r| r.data)
            };
            match data {
                Ok(records) => {
                    total += records.len();
                    if !records.is_empty() && !follower {
                        ctx.metrics().bytes_out(&partition.topic, &records);
                    }
                    partitions.push(
                        PartitionData::default()
                            .with_partition_index(wanted.index)
                            .with_high_watermark(high_watermark)
                            .with_last_stable_offset(high_watermark)
                            .with_log_start_offset(log_start)
                            .with_preferred_read_replica(BrokerId(-1))
                            .with_records(Some(records)),
                    );
                }
                Err(e) => {
                    any_error = true;
                    let code = e.error_code();
                    if code == ResponseError::KafkaStorageError {
                        tracing::error!(partition = %format!("{}-{}", partition.topic, partition.index), error = %e, "read failed");
                    }
                    partitions.push(
                        empty_partition(wanted.index, code)
                            .with_high_watermark(high_watermark)
                            .with_last_stable_offset(high_watermark)
                            .with_log_start_offset(log_start),
                    );
                }
            }
        }
        out.push(
            FetchableTopicResponse::default()
                .with_topic(topic.name.clone())
                .with_topic_id(topic.id)
                .with_partitions(partitions),
        );
    }
    (out, total, any_error)
}

/// A wanted partition: the led replica (or the error to report) and, for a divergent follower,
/// the (epoch, end offset) to truncate to.
type Resolved = (Result<Arc<Partition>, ResponseError>, Option<(i32, i64)>);

/// Resolves one wanted partition: the led replica, epoch checks, and for a follower the
/// leader-side bookkeeping of its position.
fn resolve<C: Partitions + Quorum + ?Sized>(
    ctx: &C,
    topic: &str,
    p: &kafka_protocol::messages::fetch_request::FetchPartition,
    replica_id: i32,
) -> Resolved {
    let (partition, epoch) = match led_partition(ctx, topic, p.partition) {
        Ok(found) => found,
        Err(e) => return (Err(e), None),
    };
    if replica_id < 0 {
        return (check_leader_epoch(p.current_leader_epoch, epoch).map(|()| partition), None);
    }
    let outcome = partition.on_follower_fetch(
        replica_id,
        p.fetch_offset,
        p.current_leader_epoch,
        p.last_fetched_epoch,
        crate::clock::now_ms(),
        p.log_start_offset,
    );
    match outcome {
        Ok(FollowerFetch::Read { .. }) => (Ok(partition), None),
        Ok(FollowerFetch::Diverging { epoch, end_offset }) => (Ok(partition), Some((epoch, end_offset))),
        Err(e) => (Err(e.error_code()), None),
    }
}

impl<C: Partitions + Quorum + Settings + Telemetry + Authorize> Handler<C> for FetchRequest {
    /// All of it runs in the reply: nothing in a fetch depends on request order, and it may
    /// long-poll.
    async fn handle(ctx: &Arc<C>, rc: &RequestContext, request: FetchRequest) -> Reply<FetchResponse> {
        let access = Access::of(&**ctx, rc);
        let (ctx, listener) = (ctx.clone(), rc.connection.listener.clone());
        let version = rc.version();
        Reply::Later(Box::pin(async move {
            let response = fetch(ctx.clone(), version, access, request).await;
            // KIP-951 fields exist from v16.
            if version >= 16 {
                name_leaders(&*ctx, &listener, response)
            } else {
                response
            }
        }))
    }
}

/// Fills `current_leader` of every partition refused for leadership (not led here, or a stale
/// leader epoch) and the response's `node_endpoints` with those leaders' endpoints on
/// `listener` (KIP-951, Fetch v16+).
fn name_leaders<C: Quorum + ?Sized>(ctx: &C, listener: &str, mut response: FetchResponse) -> FetchResponse {
    // The usual answer refuses nothing: no metadata snapshot for it.
    if !response.responses.iter().flat_map(|t| &t.partitions).any(|p| names_leader(p.error_code)) {
        return response;
    }
    let mut leaders = Leaders::new(ctx.metadata(), listener);
    for topic in &mut response.responses {
        // By id too the topic carries its name: fetch() fills it from the metadata.
        for partition in topic.partitions.iter_mut().filter(|p| names_leader(p.error_code)) {
            let leader = leaders.name(&topic.topic.0, partition.partition_index);
            partition.current_leader =
                LeaderIdAndEpoch::default().with_leader_id(BrokerId(leader.id)).with_leader_epoch(leader.epoch);
        }
    }
    response.node_endpoints = leaders
        .endpoints()
        .iter()
        .map(|e| {
            NodeEndpoint::default()
                .with_node_id(BrokerId(e.node_id))
                .with_host(str_bytes(e.host.clone()))
                .with_port(i32::from(e.port))
                .with_rack(e.rack.clone().map(str_bytes))
        })
        .collect();
    response
}

/// Answers Fetch, waiting up to `max_wait_ms` for `min_bytes` of data.
async fn fetch<C: Partitions + Quorum + Settings + Telemetry>(
    ctx: Arc<C>,
    version: i16,
    access: Access,
    request: FetchRequest,
) -> FetchResponse {
    let by_id = version >= 13;
    let replica_id = if version >= 15 { request.replica_state.replica_id.0 } else { request.replica_id.0 };
    let follower = replica_id >= 0;
    // A follower's fetch moves the high watermark and reads uncommitted data: it needs
    // ClusterAction, and without it every partition is refused before anything is touched (as
    // Kafka answers a client posing as a replica). Consumers need Read on each topic.
    let cluster_action = follower && access.cluster(AclOperation::ClusterAction);
    // A partition listed twice is read once, as Kafka's request parsing keeps one entry per
    // partition: otherwise one small request could ask for the same data a hundred times.
    let mut seen = std::collections::HashSet::new();
    let topics: Vec<WantedTopic> = request
        .topics
        .into_iter()
        .map(|t| {
            let name = if by_id {
                ctx.metadata().topics.iter().find(|(_, m)| m.topic_id == t.topic_id).map(|(n, _)| n.clone())
            } else {
                Some(t.topic.0.to_string())
            };
            let authorized = match &name {
                _ if follower => cluster_action,
                Some(name) => access.topic(AclOperation::Read, name),
                // An unknown topic id names nothing to check; it is answered as unknown.
                None => true,
            };
            let partitions = t
                .partitions
                .iter()
                // The request's own name and id: cloning them shares their bytes, no allocation.
                .filter(|p| seen.insert((t.topic.clone(), t.topic_id, p.partition)))
                .map(|p| {
                    let (partition, diverging) = match &name {
                        _ if !authorized => (Err(ResponseError::TopicAuthorizationFailed), None),
                        Some(name) => resolve(&*ctx, name, p, replica_id),
                        None => (Err(ResponseError::UnknownTopicOrPartition), None),
                    };
                    Wanted {
                        index: p.partition,
                        partition,
                        fetch_offset: p.fetch_offset,
                        max_bytes: p.partition_max_bytes.max(0) as usize,
                        diverging,
                    }
                })
                .collect();
            WantedTopic {
                name: name.map_or(t.topic, |n| TopicName(str_bytes(n))),
                id: t.topic_id,
                unknown: if by_id { ResponseError::UnknownTopicId } else { ResponseError::UnknownTopicOrPartition },
                partitions,
            }
        })
        .collect();
    // max_bytes exists from v3 (older clients send 0); 0 or less would starve the client, so it
    // means the broker's fetch.max.bytes, which also caps any larger ask.
    let clamp = usize::try_from(ctx.config().server.fetch_max_bytes.0).unwrap_or(usize::MAX);
    let response_max_bytes = if request.max_bytes > 0 { (request.max_bytes as usize).min(clamp) } else { clamp };
    let min_bytes = request.min_bytes.max(0) as usize;
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    loop {
        // Subscribe before reading so an append between the read and the wait still wakes us.
        // Followers wait for new data, consumers for newly committed data.
        let mut watches: Vec<_> = topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .filter_map(|w| w.partition.as_ref().ok())
            .map(|p| if follower { p.subscribe_end_offset() } else { p.subscribe_high_watermark() })
            .collect();
        let (responses, total, any_error) = read_once(&*ctx, &topics, response_max_bytes, follower);
        // min_bytes = 0 asks for an immediate answer, even an empty one.
        if total >= min_bytes || any_error || watches.is_empty() || Instant::now() >= deadline {
            return FetchResponse::default().with_session_id(0).with_responses(responses);
        }
        let changed = select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            let (responses, _, _) = read_once(&*ctx, &topics, response_max_bytes, follower);
            return FetchResponse::default().with_session_id(0).with_responses(responses);
        }
    }
}
