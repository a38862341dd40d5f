//! Produce: validates record batches, appends them in request order, and answers once the
//! requested durability is reached (acks=0: no answer; acks=1: after the write; acks=all: after
//! the group-commit fsync when the topic's `flush.mode` is `fsync`).

use super::authorize::Access;
use super::context::{led_partition, Authorize, Partitions, Reply, RequestContext, Telemetry};
use super::current_leader::{names_leader, Leaders};
use super::{str_bytes, Handler};
use crate::clock::now_ms;
use crate::cluster::Quorum;
use crate::log::batch::{rewrite_header, split_batches, BatchHeader};
use crate::log::validator::{validate_records, RecordError, ValidationConfig, ValidationError};
use crate::partition::{AckWait, Partition};
use crate::security::acl::AclOperation;
use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::records::TimestampType;
use millrace_config::FlushMode;
use std::sync::Arc;
use std::time::Duration;

fn partition_error(index: i32, error: ResponseError, message: Option<String>) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(error.code())
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
        .with_error_message(message.map(str_bytes))
}

/// A partition's append result, possibly still waiting for durability.
struct Appended {
    partition: Arc<Partition>,
    index: i32,
    base_offset: i64,
    durable_offset: i64,
    wait_for_fsync: bool,
    /// acks=all: wait for the in-sync replicas, requiring this many.
    wait_for_replicas: Option<usize>,
}

enum PartitionResult {
    Done(PartitionProduceResponse),
    Appended(Appended),
}

/// Why a partition's data was refused: the code, a message, and the records it names (KIP-467).
struct Refusal {
    error: ResponseError,
    message: String,
    record_errors: Vec<RecordError>,
}

impl Refusal {
    fn new(error: ResponseError, message: impl Into<String>) -> Refusal {
        Refusal { error, message: message.into(), record_errors: Vec::new() }
    }
}

impl From<ValidationError> for Refusal {
    fn from(e: ValidationError) -> Refusal {
        Refusal { error: e.error_code(), message: e.to_string(), record_errors: e.record_errors().to_vec() }
    }
}

/// Splits `records` into batches and validates each one whole — header, CRC, then every record
/// (Kafka's LogValidator) — before any is appended, so a request is applied whole or not at
/// all. Returns the batches ready to append, their `maxTimestamp` set from the records.
fn validate_batches(
    records: &[u8],
    max_message_bytes: u64,
    config: &ValidationConfig,
) -> Result<Vec<Vec<u8>>, Refusal> {
    let ranges = split_batches(records).map_err(|e| Refusal::new(ResponseError::CorruptMessage, e.to_string()))?;
    if ranges.is_empty() {
        return Err(Refusal::new(ResponseError::CorruptMessage, "produce request carries no record batch"));
    }
    let mut batches = Vec::with_capacity(ranges.len());
    for range in ranges {
        let size = range.len() as u64;
        if size > max_message_bytes {
            return Err(Refusal::new(
                ResponseError::MessageTooLarge,
                format!("record batch of {size} bytes exceeds max.message.bytes={max_message_bytes}"),
            ));
        }
        let mut batch = records.get(range).unwrap_or_default().to_vec();
        let header =
            BatchHeader::parse(&batch).map_err(|e| Refusal::new(ResponseError::CorruptMessage, e.to_string()))?;
        let validated = validate_records(&batch, &header, config)?;
        // As Kafka does: the header's maxTimestamp is what the records say, so the time index,
        // retention and ListOffsets are not steered by a claim.
        if header.timestamp_type() == TimestampType::Creation && header.max_timestamp != validated.max_timestamp {
            let fixed = BatchHeader { max_timestamp: validated.max_timestamp, ..header };
            rewrite_header(&mut batch, &fixed)
                .map_err(|e| Refusal::new(ResponseError::CorruptMessage, e.to_string()))?;
        }
        batches.push(batch);
    }
    Ok(batches)
}

/// [`validate_batches`] off the async workers when any batch is compressed: inflating and
/// walking records is CPU work bounded only by the decompression cap.
async fn validate_off_runtime(
    records: bytes::Bytes,
    max_message_bytes: u64,
    config: ValidationConfig,
) -> Result<Vec<Vec<u8>>, Refusal> {
    if !any_compressed(&records) {
        return validate_batches(&records, max_message_bytes, &config);
    }
    match tokio::task::spawn_blocking(move || validate_batches(&records, max_message_bytes, &config)).await {
        Ok(result) => result,
        Err(e) => Err(Refusal::new(ResponseError::UnknownServerError, format!("record validation failed: {e}"))),
    }
}

/// Whether any whole batch in `records` is compressed (headers only; damage is found later).
fn any_compressed(records: &[u8]) -> bool {
    let mut position = 0;
    while let Some(header) = records.get(position..).and_then(|rest| BatchHeader::parse(rest).ok()) {
        if !header.compression().is_ok_and(|c| c == kafka_protocol::records::Compression::None) {
            return true;
        }
        position += header.total_size();
    }
    false
}

fn append_partition(
    ctx: &impl Telemetry,
    partition: &Arc<Partition>,
    batches: Vec<Vec<u8>>,
    now: i64,
    acks_all: bool,
) -> Result<(i64, i64, usize), Refusal> {
    let mut first_base = None;
    let mut last = -1;
    let mut records_in = 0usize;
    for mut batch in batches {
        let info = partition.append_as_leader(&mut batch, now, acks_all).map_err(|e| {
            let code = e.error_code();
            if code == ResponseError::KafkaStorageError {
                tracing::error!(partition = %format!("{}-{}", partition.topic, partition.index), error = %e, "append failed");
            }
            Refusal::new(code, e.to_string())
        })?;
        first_base.get_or_insert(info.base_offset);
        last = info.last_offset;
        if info.duplicate {
            ctx.metrics().duplicate_batch();
        } else {
            records_in += (info.last_offset - info.base_offset + 1) as usize;
            ctx.metrics().bytes_in(&partition.topic, batch.len());
        }
    }
    Ok((first_base.unwrap_or(-1), last, records_in))
}

impl<C: Partitions + Quorum + Telemetry + Authorize> Handler<C> for ProduceRequest {
    /// Applies a produce request; appends happen before this returns.
    async fn handle(ctx: &Arc<C>, rc: &RequestContext, request: ProduceRequest) -> Reply<ProduceResponse> {
        produce(ctx, rc, request).await
    }
}

/// Fills `current_leader` of every partition refused for leadership and the response's
/// `node_endpoints` with those leaders' endpoints on `listener` (KIP-951, Produce v10+).
fn name_leaders<C: Quorum + ?Sized>(ctx: &C, listener: &str, mut response: ProduceResponse) -> ProduceResponse {
    // The usual answer refuses nothing: no metadata snapshot for it.
    if !response.responses.iter().flat_map(|t| &t.partition_responses).any(|p| names_leader(p.error_code)) {
        return response;
    }
    let mut leaders = Leaders::new(ctx.metadata(), listener);
    for topic in &mut response.responses {
        for partition in topic.partition_responses.iter_mut().filter(|p| names_leader(p.error_code)) {
            let leader = leaders.name(&topic.name.0, partition.index);
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

async fn produce<C: Partitions + Quorum + Telemetry + Authorize>(
    ctx: &Arc<C>,
    rc: &RequestContext,
    request: ProduceRequest,
) -> Reply<ProduceResponse> {
    let acks = request.acks;
    let version = rc.version();
    // KIP-951 fields exist from v10. They are filled once the answer is final, so a partition
    // whose leadership moved while its write waited for the ISR names the new leader too.
    let leaders_for = (version >= 10).then(|| (ctx.clone(), rc.connection.listener.clone()));
    let ctx = &**ctx;
    let access = Access::of(ctx, rc);
    let mut topics = Vec::new();
    for topic_data in request.topic_data {
        let by_id = version >= 13;
        let topic = if by_id { ctx.topic_by_id(&topic_data.topic_id) } else { ctx.topic(&topic_data.name.0) };
        let unknown = if by_id { ResponseError::UnknownTopicId } else { ResponseError::UnknownTopicOrPartition };
        // Checked before existence so a refused client learns nothing about which topics exist;
        // an unknown topic id names no topic to check and is answered as unknown.
        let authorized = match (&topic, by_id) {
            (Some(topic), _) => access.topic(AclOperation::Write, &topic.name),
            (None, false) => access.topic(AclOperation::Write, &topic_data.name.0),
            (None, true) => true,
        };
        let mut partitions = Vec::new();
        for data in topic_data.partition_data {
            let index = data.index;
            let result = if !(-1..=1).contains(&acks) {
                PartitionResult::Done(partition_error(
                    index,
                    ResponseError::InvalidRequiredAcks,
                    Some(format!("acks={acks} is not 0, 1 or -1")),
                ))
            } else if request.transactional_id.is_some() {
                PartitionResult::Done(partition_error(
                    index,
                    ResponseError::TransactionalIdAuthorizationFailed,
                    Some("transactions are not supported by this broker".into()),
                ))
            } else if !authorized {
                PartitionResult::Done(partition_error(index, ResponseError::TopicAuthorizationFailed, None))
            } else {
                let name = topic.as_ref().map(|t| t.name.clone()).unwrap_or_else(|| topic_data.name.0.to_string());
                match (topic.as_ref(), led_partition(ctx, &name, index)) {
                    (_, Err(ResponseError::UnknownTopicOrPartition)) => {
                        PartitionResult::Done(partition_error(index, unknown, None))
                    }
                    (_, Err(error)) => PartitionResult::Done(partition_error(index, error, None)),
                    (None, Ok(_)) => PartitionResult::Done(partition_error(index, unknown, None)),
                    (Some(topic), Ok(_)) if crate::catalog::is_internal(&topic.name) => {
                        PartitionResult::Done(partition_error(
                            index,
                            ResponseError::InvalidTopicException,
                            Some(format!("{} is written only by the broker", topic.name)),
                        ))
                    }
                    (Some(topic), Ok((partition, _))) => {
                        let records = data.records.unwrap_or_default();
                        let now = now_ms();
                        let config = ValidationConfig {
                            compacted: topic.config.cleanup_compact,
                            max_decompressed_bytes: ValidationConfig::decompression_cap(topic.config.max_message_bytes),
                            now_ms: now,
                            timestamp_before_max_ms: topic.config.message_timestamp_before_max_ms,
                            timestamp_after_max_ms: topic.config.message_timestamp_after_max_ms,
                        };
                        let appended = match validate_off_runtime(records, topic.config.max_message_bytes, config).await
                        {
                            Ok(batches) => append_partition(ctx, &partition, batches, now, acks == -1),
                            Err(refusal) => Err(refusal),
                        };
                        match appended {
                            Ok((base_offset, last_offset, records_in)) => {
                                ctx.metrics().records_in(&topic.name, records_in);
                                PartitionResult::Appended(Appended {
                                    partition: partition.clone(),
                                    index,
                                    base_offset,
                                    durable_offset: last_offset + 1,
                                    wait_for_fsync: acks == -1 && topic.config.flush_mode == FlushMode::Fsync,
                                    wait_for_replicas: (acks == -1)
                                        .then_some(topic.config.min_insync_replicas.max(1) as usize),
                                })
                            }
                            Err(refusal) => {
                                ctx.metrics().produce_errors(&topic.name, refusal.error);
                                let record_errors = refusal
                                    .record_errors
                                    .into_iter()
                                    .map(|e| {
                                        BatchIndexAndErrorMessage::default()
                                            .with_batch_index(e.batch_index)
                                            .with_batch_index_error_message(Some(str_bytes(e.message)))
                                    })
                                    .collect();
                                PartitionResult::Done(
                                    partition_error(index, refusal.error, Some(refusal.message))
                                        .with_record_errors(record_errors),
                                )
                            }
                        }
                    }
                }
            };
            partitions.push(result);
        }
        let name = topic.as_ref().map_or(topic_data.name.clone(), |t| TopicName(str_bytes(t.name.clone())));
        topics.push((name, topic_data.topic_id, partitions));
    }
    if acks == 0 {
        return Reply::Silent;
    }
    let timeout = Duration::from_millis(request.timeout_ms.max(0) as u64);
    Reply::Later(Box::pin(async move {
        let mut responses = Vec::with_capacity(topics.len());
        for (name, topic_id, partitions) in topics {
            let finished = join_all(partitions.into_iter().map(|result| finish(result, timeout))).await;
            responses.push(
                TopicProduceResponse::default()
                    .with_name(name)
                    .with_topic_id(topic_id)
                    .with_partition_responses(finished),
            );
        }
        let response = ProduceResponse::default().with_responses(responses);
        match leaders_for {
            Some((ctx, listener)) => name_leaders(&*ctx, &listener, response),
            None => response,
        }
    }))
}

async fn finish(result: PartitionResult, timeout: Duration) -> PartitionProduceResponse {
    let appended = match result {
        PartitionResult::Done(response) => return response,
        PartitionResult::Appended(appended) => appended,
    };
    // The local fsync and the followers' copies are awaited together, not one after the other:
    // an acks=all write costs the slower of the two, and needs both.
    let fsync = async {
        if !appended.wait_for_fsync {
            return None;
        }
        match tokio::time::timeout(timeout, appended.partition.wait_durable(appended.durable_offset)).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => {
                tracing::error!(partition = %format!("{}-{}", appended.partition.topic, appended.index), error = %e, "fsync failed");
                Some((e.error_code(), e.to_string()))
            }
            Err(_) => Some((
                ResponseError::RequestTimedOut,
                "the write did not reach the disk within the request timeout".into(),
            )),
        }
    };
    let replicas = async {
        let min_insync = appended.wait_for_replicas?;
        let failure = match appended.partition.wait_for_ack(appended.durable_offset, min_insync, timeout).await {
            AckWait::Done => None,
            AckWait::NotEnoughReplicasAfterAppend => Some((
                ResponseError::NotEnoughReplicasAfterAppend,
                "written, but the ISR shrank below min.insync.replicas",
            )),
            AckWait::NotLeader => {
                Some((ResponseError::NotLeaderOrFollower, "leadership moved before the write was replicated"))
            }
            AckWait::Waiting => {
                Some((ResponseError::RequestTimedOut, "the in-sync replicas did not confirm the write in time"))
            }
        };
        failure.map(|(error, message)| (error, message.to_string()))
    };
    // A failed fsync is answered at once (the followers may never get the data from a failed
    // disk), and is the one reported when both went wrong.
    tokio::pin!(fsync);
    tokio::pin!(replicas);
    let failure = tokio::select! {
        disk = &mut fsync => match disk {
            Some(failed) => Some(failed),
            None => replicas.await,
        },
        copies = &mut replicas => fsync.await.or(copies),
    };
    if let Some((error, message)) = failure {
        return partition_error(appended.index, error, Some(message));
    }
    let (log_start, _) = appended.partition.offsets();
    PartitionProduceResponse::default()
        .with_index(appended.index)
        .with_base_offset(appended.base_offset)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(log_start)
}
