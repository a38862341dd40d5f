//! Fetch: whole record batches from a fetch offset, with long-polling (max_wait_ms / min_bytes),
//! per-partition and per-response byte limits. Fetch sessions (KIP-227) are declined by
//! answering session id 0, which tells clients to send full fetch requests.

use super::str_bytes;
use crate::error::log_error_code;
use crate::partition::Partition;
use crate::Broker;
use bytes::Bytes;
use futures::future::select_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

struct Wanted {
    index: i32,
    partition: Option<Arc<Partition>>,
    fetch_offset: i64,
    max_bytes: usize,
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
    broker: &Broker,
    topics: &[WantedTopic],
    response_max_bytes: usize,
) -> (Vec<FetchableTopicResponse>, usize, bool) {
    let mut total = 0usize;
    let mut any_error = false;
    let mut out = Vec::with_capacity(topics.len());
    for topic in topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for wanted in &topic.partitions {
            let Some(partition) = &wanted.partition else {
                any_error = true;
                partitions.push(empty_partition(wanted.index, topic.unknown));
                continue;
            };
            let (log_start, high_watermark) = partition.offsets();
            let budget = wanted.max_bytes.min(response_max_bytes.saturating_sub(total));
            let data = if wanted.fetch_offset == high_watermark || budget == 0 {
                Ok(Bytes::new())
            } else {
                // KIP-74: the first batch with data is returned whole even above the limits, so a
                // consumer can always make progress.
                partition.read(wanted.fetch_offset, budget, total == 0).map(|r| r.data)
            };
            match data {
                Ok(records) => {
                    total += records.len();
                    if !records.is_empty() {
                        broker.metrics.bytes_out(&partition.topic, &records);
                    }
                    partitions.push(
                        PartitionData::default()
                            .with_partition_index(wanted.index)
                            .with_high_watermark(high_watermark)
                            .with_last_stable_offset(high_watermark)
                            .with_log_start_offset(log_start)
                            .with_preferred_read_replica(kafka_protocol::messages::BrokerId(-1))
                            .with_records(Some(records)),
                    );
                }
                Err(e) => {
                    any_error = true;
                    let code = log_error_code(&e);
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

/// Answers Fetch, waiting up to `max_wait_ms` for `min_bytes` of data.
pub async fn handle(broker: Arc<Broker>, version: i16, request: FetchRequest) -> FetchResponse {
    let by_id = version >= 13;
    let topics: Vec<WantedTopic> = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = if by_id { broker.catalog.get_by_id(&t.topic_id) } else { broker.catalog.get(&t.topic.0) };
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| Wanted {
                    index: p.partition,
                    partition: topic.as_ref().and_then(|topic| {
                        usize::try_from(p.partition).ok().and_then(|i| topic.partitions.get(i)).cloned()
                    }),
                    fetch_offset: p.fetch_offset,
                    max_bytes: p.partition_max_bytes.max(0) as usize,
                })
                .collect();
            WantedTopic {
                name: topic.as_ref().map_or(t.topic, |topic| TopicName(str_bytes(topic.name.clone()))),
                id: t.topic_id,
                unknown: if by_id { ResponseError::UnknownTopicId } else { ResponseError::UnknownTopicOrPartition },
                partitions,
            }
        })
        .collect();
    // max_bytes exists from v3; 0 or less would starve the client, so treat it as "no limit".
    let response_max_bytes = if request.max_bytes > 0 { request.max_bytes as usize } else { usize::MAX };
    let min_bytes = request.min_bytes.max(0) as usize;
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    loop {
        // Subscribe before reading so an append between the read and the wait still wakes us.
        let mut watches: Vec<_> = topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .filter_map(|w| w.partition.as_ref().map(|p| p.subscribe_end_offset()))
            .collect();
        let (responses, total, any_error) = read_once(&broker, &topics, response_max_bytes);
        // min_bytes = 0 asks for an immediate answer, even an empty one.
        if total >= min_bytes || any_error || watches.is_empty() || Instant::now() >= deadline {
            return FetchResponse::default().with_session_id(0).with_responses(responses);
        }
        let changed = select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            let (responses, _, _) = read_once(&broker, &topics, response_max_bytes);
            return FetchResponse::default().with_session_id(0).with_responses(responses);
        }
    }
}
