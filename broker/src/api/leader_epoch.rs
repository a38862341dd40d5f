//! OffsetForLeaderEpoch: where a leader epoch ended in this log, from the leader-epoch cache
//! (`leader-epoch-checkpoint`). Clients use it to detect log truncation (KIP-320); followers use it
//! to find where their log diverges from the leader's.

use super::authorize::Access;
use super::context::{check_leader_epoch, led_partition, Authorize, Partitions, Reply, RequestContext};
use super::Handler;
use crate::cluster::Quorum;
use crate::security::acl::{AclOperation, ResourceType, CLUSTER_RESOURCE_NAME};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use std::sync::Arc;

/// Answers OffsetForLeaderEpoch: followers (ClusterAction on the cluster) may ask about every
/// topic, clients about those they may Describe.
fn end_offsets<C: Partitions + Quorum>(
    ctx: &C,
    access: &Access,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let replica = access.allows_quietly(AclOperation::ClusterAction, ResourceType::Cluster, CLUSTER_RESOURCE_NAME);
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let authorized = replica || access.topic(AclOperation::Describe, &topic.topic.0);
            let partitions = topic
                .partitions
                .into_iter()
                .map(|wanted| {
                    let undefined = EpochEndOffset::default()
                        .with_partition(wanted.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    if !authorized {
                        return undefined.with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    let (partition, current) = match led_partition(ctx, &topic.topic.0, wanted.partition) {
                        Ok(found) => found,
                        Err(error) => return undefined.with_error_code(error.code()),
                    };
                    if let Err(error) = check_leader_epoch(wanted.current_leader_epoch, current) {
                        return undefined.with_error_code(error.code());
                    }
                    // Records written under an epoch newer than ours: this broker's view is behind
                    // (restarted, still catching up with the quorum). Kafka would answer
                    // "undefined", which makes librdkafka reset the consumer to
                    // auto.offset.reset (offset 0 with `earliest`); the retriable error makes it
                    // refresh its metadata and ask the real leader.
                    if wanted.leader_epoch > current {
                        return undefined.with_error_code(ResponseError::UnknownLeaderEpoch.code());
                    }
                    match partition.end_offset_for_epoch(wanted.leader_epoch) {
                        Some((epoch, end_offset)) => EpochEndOffset::default()
                            .with_partition(wanted.partition)
                            .with_leader_epoch(epoch)
                            .with_end_offset(end_offset),
                        None => undefined,
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default().with_topic(topic.topic).with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

impl<C: Partitions + Quorum + Authorize> Handler<C> for OffsetForLeaderEpochRequest {
    async fn handle(
        ctx: &Arc<C>,
        rc: &RequestContext,
        request: OffsetForLeaderEpochRequest,
    ) -> Reply<OffsetForLeaderEpochResponse> {
        Reply::Now(end_offsets(&**ctx, &Access::of(&**ctx, rc), request))
    }
}
