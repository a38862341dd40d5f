//! DeleteRecords: the leader of each partition moves its log start offset up to the given offset
//! (`-1`: the high watermark), so consumers no longer see the records below it, and deletes the
//! whole segments below it. The new start is checkpointed, and followers take it on their next
//! fetch; the answer waits (up to the request's timeout, as Kafka's delayed DeleteRecords) until
//! every in-sync follower reported it, so no replica that could lead next still holds the
//! records. A partition whose followers did not follow in time answers REQUEST_TIMED_OUT.

use super::authorize::Access;
use super::context::{led_partition, Authorize, Partitions, Reply, RequestContext};
use super::Handler;
use crate::cluster::Quorum;
use crate::partition::Partition;
use crate::security::acl::AclOperation;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use std::sync::Arc;
use std::time::Duration;

/// The longest a request may ask the followers' wait to last.
const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// Moves one partition's log start; the partition and its new low watermark, or the error the
/// client sees.
fn delete_one<C: Partitions + Quorum>(
    ctx: &C,
    topic: &str,
    index: i32,
    offset: i64,
) -> Result<(Arc<Partition>, i64), ResponseError> {
    if crate::catalog::is_internal(topic) {
        return Err(ResponseError::InvalidTopicException);
    }
    let (partition, _) = led_partition(ctx, topic, index)?;
    let compacted_only = ctx.topic(topic).is_some_and(|t| !t.config.cleanup_delete);
    if compacted_only {
        // As Kafka: a compacted topic's records are removed by the cleaner, not by offset.
        return Err(ResponseError::PolicyViolation);
    }
    if offset < -1 {
        return Err(ResponseError::OffsetOutOfRange);
    }
    match partition.delete_records_before(offset) {
        Ok(low_watermark) => {
            tracing::info!(partition = %partition.name(), requested = offset, low_watermark, "records deleted");
            Ok((partition, low_watermark))
        }
        Err(e) => Err(e.error_code()),
    }
}

impl<C: Partitions + Quorum + Authorize + 'static> Handler<C> for DeleteRecordsRequest {
    async fn handle(ctx: &Arc<C>, rc: &RequestContext, request: DeleteRecordsRequest) -> Reply<DeleteRecordsResponse> {
        let access = Access::of(&**ctx, rc);
        let mut topics = Vec::with_capacity(request.topics.len());
        // Where each moved partition's result is in `topics`, and what its followers must reach.
        let mut moved = Vec::new();
        for (t, topic) in request.topics.into_iter().enumerate() {
            let name = topic.name.0.to_string();
            let allowed = access.topic(AclOperation::Delete, &name);
            let mut partitions = Vec::with_capacity(topic.partitions.len());
            for (i, p) in topic.partitions.iter().enumerate() {
                let outcome = if allowed {
                    delete_one(&**ctx, &name, p.partition_index, p.offset)
                } else {
                    Err(ResponseError::TopicAuthorizationFailed)
                };
                let result = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
                partitions.push(match outcome {
                    Ok((partition, low_watermark)) => {
                        moved.push((t, i, partition, low_watermark));
                        result.with_low_watermark(low_watermark)
                    }
                    Err(code) => result.with_low_watermark(-1).with_error_code(code.code()),
                });
            }
            topics.push(DeleteRecordsTopicResult::default().with_name(topic.name).with_partitions(partitions));
        }
        let mut response = DeleteRecordsResponse::default().with_topics(topics);
        if moved.is_empty() {
            return Reply::Now(response);
        }
        let timeout = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0)).min(MAX_TIMEOUT);
        let ctx = ctx.clone();
        Reply::Later(Box::pin(async move {
            let catalog = ctx.clone();
            let written = tokio::task::spawn_blocking(move || catalog.catalog().checkpoint_offsets()).await;
            let failure = match written {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) => Some(format!("the task panicked: {e}")),
            };
            if let Some(error) = failure {
                // The records are unreadable now but might come back after a restart: say so.
                tracing::error!(%error, "checkpointing log start offsets after DeleteRecords failed");
                return with_storage_error(response);
            }
            // One deadline for all: the waits overlap, so the whole answer takes at most `timeout`.
            let waits = moved
                .iter()
                .map(|(_, _, partition, low_watermark)| partition.wait_isr_log_start(*low_watermark, timeout));
            let followed = futures::future::join_all(waits).await;
            for ((t, i, partition, low_watermark), followed) in moved.iter().zip(followed) {
                if !followed {
                    tracing::warn!(partition = %partition.name(), low_watermark, ?timeout, "DeleteRecords: the in-sync followers did not take the new log start in time");
                    let result = &mut response.topics[*t].partitions[*i];
                    result.error_code = ResponseError::RequestTimedOut.code();
                    result.low_watermark = -1;
                }
            }
            response
        }))
    }
}

/// Marks every partition that moved as failed with KAFKA_STORAGE_ERROR.
fn with_storage_error(mut response: DeleteRecordsResponse) -> DeleteRecordsResponse {
    for topic in &mut response.topics {
        for p in &mut topic.partitions {
            if p.error_code == 0 {
                p.error_code = ResponseError::KafkaStorageError.code();
            }
        }
    }
    response
}
