//! DeleteRecords: the leader of each partition moves its log start offset up to the given offset
//! (`-1`: the high watermark), so consumers no longer see the records below it, and deletes the
//! whole segments below it. Followers follow the leader's log start on their next fetch; the new
//! start is checkpointed before the answer, so a restart does not bring the records back.

use super::authorize::Access;
use super::context::{led_partition, Authorize, Partitions, Reply, RequestContext};
use super::Handler;
use crate::cluster::Quorum;
use crate::security::acl::AclOperation;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use std::sync::Arc;

/// Moves one partition's log start; the new low watermark or the error the client sees.
fn delete_one<C: Partitions + Quorum>(ctx: &C, topic: &str, index: i32, offset: i64) -> Result<i64, ResponseError> {
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
            Ok(low_watermark)
        }
        Err(e) => Err(e.error_code()),
    }
}

impl<C: Partitions + Quorum + Authorize + 'static> Handler<C> for DeleteRecordsRequest {
    async fn handle(ctx: &Arc<C>, rc: &RequestContext, request: DeleteRecordsRequest) -> Reply<DeleteRecordsResponse> {
        let access = Access::of(&**ctx, rc);
        let mut topics = Vec::with_capacity(request.topics.len());
        let mut moved = false;
        for topic in request.topics {
            let name = topic.name.0.to_string();
            let allowed = access.topic(AclOperation::Delete, &name);
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let outcome = if allowed {
                        delete_one(&**ctx, &name, p.partition_index, p.offset)
                    } else {
                        Err(ResponseError::TopicAuthorizationFailed)
                    };
                    let result = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
                    match outcome {
                        Ok(low_watermark) => {
                            moved = true;
                            result.with_low_watermark(low_watermark)
                        }
                        Err(code) => result.with_low_watermark(-1).with_error_code(code.code()),
                    }
                })
                .collect();
            topics.push(DeleteRecordsTopicResult::default().with_name(topic.name).with_partitions(partitions));
        }
        let response = DeleteRecordsResponse::default().with_topics(topics);
        if !moved {
            return Reply::Now(response);
        }
        let ctx = ctx.clone();
        Reply::Later(Box::pin(async move {
            let catalog = ctx.clone();
            let written = tokio::task::spawn_blocking(move || catalog.catalog().checkpoint_offsets()).await;
            match written {
                Ok(Ok(())) => response,
                // The records are unreadable now but might come back after a restart: say so.
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "checkpointing log start offsets after DeleteRecords failed");
                    with_storage_error(response)
                }
                Err(e) => {
                    tracing::error!(error = %e, "checkpointing log start offsets after DeleteRecords panicked");
                    with_storage_error(response)
                }
            }
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
