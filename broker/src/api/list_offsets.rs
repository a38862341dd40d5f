//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), and the first offset at or after a
//! timestamp, found through the time index.

use super::authorize::Access;
use super::context::{check_leader_epoch, led_partition, Authorize, Partitions, Reply, RequestContext};
use super::Handler;
use crate::cluster::Quorum;
use crate::security::acl::AclOperation;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_request::ListOffsetsPartition;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use std::sync::Arc;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

impl<C: Partitions + Quorum + Authorize> Handler<C> for ListOffsetsRequest {
    /// Answered later: lookups by time decode records on the blocking pool, without holding the
    /// partition's log.
    async fn handle(ctx: &Arc<C>, rc: &RequestContext, request: ListOffsetsRequest) -> Reply<ListOffsetsResponse> {
        let access = Access::of(&**ctx, rc);
        Reply::Later(Box::pin(list_offsets(ctx.clone(), rc.version(), access, request)))
    }
}

async fn list_offsets<C: Partitions + Quorum>(
    ctx: Arc<C>,
    version: i16,
    access: Access,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let authorized = access.topic(AclOperation::Describe, &topic.name.0);
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for wanted in topic.partitions {
            partitions.push(if authorized {
                lookup(&*ctx, version, &topic.name.0, &wanted).await
            } else {
                ListOffsetsPartitionResponse::default()
                    .with_partition_index(wanted.partition_index)
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                    .with_offset(-1)
                    .with_timestamp(-1)
            });
        }
        topics.push(ListOffsetsTopicResponse::default().with_name(topic.name).with_partitions(partitions));
    }
    ListOffsetsResponse::default().with_topics(topics)
}

async fn lookup<C: Partitions + Quorum>(
    ctx: &C,
    version: i16,
    topic: &str,
    wanted: &ListOffsetsPartition,
) -> ListOffsetsPartitionResponse {
    // leader_epoch exists from v4; the codec refuses to encode it set on older versions.
    let response = ListOffsetsPartitionResponse::default().with_partition_index(wanted.partition_index);
    // A former leader not yet told of its demotion must not answer for the partition: the
    // client's epoch (v4+, -1 before) shows it.
    let led = led_partition(ctx, topic, wanted.partition_index).and_then(|(partition, epoch)| {
        check_leader_epoch(wanted.current_leader_epoch, epoch).map(|()| (partition, epoch))
    });
    let (partition, epoch) = match led {
        Ok(found) => found,
        Err(error) => return response.with_error_code(error.code()).with_offset(-1).with_timestamp(-1),
    };
    let timestamp = wanted.timestamp;
    let leader_epoch = if version >= 4 { epoch } else { -1 };
    let (start, end) = partition.offsets();
    let found = match timestamp {
        LATEST | LATEST_TIERED => Ok(Some((end, -1))),
        EARLIEST | EARLIEST_LOCAL => Ok(Some((start, -1))),
        MAX_TIMESTAMP => Ok(partition.max_timestamp_async().await.map(|(ts, offset)| (offset, ts))),
        ts if ts >= 0 => partition.offset_for_timestamp_async(ts).await,
        other => {
            return response.with_error_code(ResponseError::InvalidRequest.code()).with_offset(-1).with_timestamp(other)
        }
    };
    match found {
        Ok(Some((offset, timestamp))) => {
            response.with_offset(offset).with_timestamp(timestamp).with_leader_epoch(leader_epoch)
        }
        // No record at or after the timestamp: Kafka answers offset -1.
        Ok(None) => response.with_offset(-1).with_timestamp(-1),
        Err(e) => {
            tracing::error!(partition = %partition.name(), error = %e, "offset lookup failed");
            response.with_error_code(e.error_code().code()).with_offset(-1).with_timestamp(-1)
        }
    }
}
