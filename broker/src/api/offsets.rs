//! Committed offsets: OffsetCommit, OffsetFetch (single group, and batched from v8) and
//! OffsetDelete. As in Kafka: committing needs Read on the group and the topic, fetching
//! Describe on both, deleting Delete on the group and Read on the topic.

use super::authorize::Access;
use super::context::{Authorize, Groups, Reply, RequestContext};
use super::{str_bytes, Handler};
use crate::cluster::Quorum;
use crate::group::coordinator::TopicOffsets;
use crate::group::store::StoredOffset;
use crate::security::acl::AclOperation;
use bytes::{Buf, Bytes};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    ConsumerProtocolSubscription, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse,
    OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Message};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Topics a consumer-protocol subscription names; empty when the metadata is not one.
pub fn subscribed_topics(metadata: &Bytes) -> Vec<String> {
    let mut buf = metadata.clone();
    if buf.remaining() < 2 {
        return Vec::new();
    }
    // Newer subscription versions only append fields, so decode with the newest we know.
    let version = buf.get_i16().clamp(0, ConsumerProtocolSubscription::VERSIONS.max);
    ConsumerProtocolSubscription::decode(&mut buf, version)
        .map(|s| s.topics.into_iter().map(|t| t.to_string()).collect())
        .unwrap_or_default()
}

/// A partition by topic name and index.
type TopicPartition = (String, i32);

/// Per partition: an error decided before writing, or None when it is part of the commit.
type PartitionErrors = Vec<(i32, Option<ResponseError>)>;

/// Answers OffsetCommit; the response is sent once the offsets are on disk.
async fn commit<C: Quorum + Groups>(ctx: &C, access: &Access, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let group_id = request.group_id.0.to_string();
    let group_authorized = access.group(AclOperation::Read, &group_id);
    let now = crate::clock::now_ms();
    let max_metadata = ctx.groups().max_metadata_bytes();
    // Per partition: Some(error) decided up front, or None = part of the commit.
    let mut decided: Vec<(TopicName, PartitionErrors)> = Vec::new();
    let mut to_commit = Vec::new();
    let coordinator = ctx.groups().check_coordinator(&group_id).err();
    let metadata = ctx.metadata();
    for topic in &request.topics {
        let known = metadata.topics.get(topic.name.0.as_str());
        let topic_authorized = group_authorized && access.topic(AclOperation::Read, &topic.name.0);
        let mut partitions = Vec::new();
        for p in &topic.partitions {
            let exists = known.is_some_and(|t| (0..t.partitions.len() as i32).contains(&p.partition_index));
            let metadata_len = p.committed_metadata.as_ref().map_or(0, |m| m.len());
            let error = if !group_authorized {
                Some(ResponseError::GroupAuthorizationFailed)
            } else if !topic_authorized {
                Some(ResponseError::TopicAuthorizationFailed)
            } else if group_id.is_empty() {
                Some(ResponseError::InvalidGroupId)
            } else if coordinator.is_some() {
                coordinator
            } else if !exists {
                Some(ResponseError::UnknownTopicOrPartition)
            } else if metadata_len > max_metadata {
                Some(ResponseError::OffsetMetadataTooLarge)
            } else {
                to_commit.push((
                    topic.name.0.to_string(),
                    p.partition_index,
                    StoredOffset {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                        commit_timestamp: now,
                    },
                ));
                None
            };
            partitions.push((p.partition_index, error));
        }
        decided.push((topic.name.clone(), partitions));
    }
    let commit_error = if to_commit.is_empty() {
        None
    } else {
        ctx.groups()
            .commit(
                &group_id,
                request.generation_id_or_member_epoch,
                &request.member_id,
                request.group_instance_id.as_deref(),
                to_commit,
            )
            .await
            .err()
    };
    let topics = decided
        .into_iter()
        .map(|(name, partitions)| {
            OffsetCommitResponseTopic::default().with_name(name).with_partitions(
                partitions
                    .into_iter()
                    .map(|(index, error)| {
                        let error = error.or(commit_error);
                        OffsetCommitResponsePartition::default()
                            .with_partition_index(index)
                            .with_error_code(error.map_or(0, |e| e.code()))
                    })
                    .collect(),
            )
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// A partition's committed offset as (offset, leader epoch, metadata, error).
type Fetched = (i64, i32, String, i16);

/// A group's committed offsets as the client may see them: topics it may not Describe are left
/// out when it asked for all of them, and refused per partition when it named them.
fn fetch_group(
    ctx: &impl Groups,
    access: &Access,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Vec<(String, Vec<(i32, Fetched)>)> {
    let named = topics.is_some();
    let fetched: TopicOffsets = ctx.groups().fetch_offsets(group, topics);
    fetched
        .into_iter()
        .filter_map(|(topic, partitions)| {
            let authorized = if named {
                access.topic(AclOperation::Describe, &topic)
            } else if access.allows_quietly(AclOperation::Describe, crate::security::acl::ResourceType::Topic, &topic) {
                true
            } else {
                return None;
            };
            let partitions = partitions
                .into_iter()
                .map(|(index, found)| {
                    let fetched = match found {
                        _ if !authorized => (-1, -1, String::new(), ResponseError::TopicAuthorizationFailed.code()),
                        Some(o) => (o.offset, o.leader_epoch, o.metadata.unwrap_or_default(), 0),
                        None => (-1, -1, String::new(), 0),
                    };
                    (index, fetched)
                })
                .collect();
            Some((topic, partitions))
        })
        .collect()
}

/// Answers OffsetFetch. Partitions without a commit get offset -1 and no error, as in Kafka.
fn fetch(ctx: &impl Groups, access: &Access, version: i16, request: OffsetFetchRequest) -> OffsetFetchResponse {
    if version >= 8 {
        let groups = request
            .groups
            .into_iter()
            .map(|g| {
                if !access.group(AclOperation::Describe, &g.group_id.0) {
                    let error = ResponseError::GroupAuthorizationFailed.code();
                    return OffsetFetchResponseGroup::default().with_group_id(g.group_id).with_error_code(error);
                }
                if let Err(error) = ctx.groups().check_coordinator(&g.group_id.0) {
                    return OffsetFetchResponseGroup::default().with_group_id(g.group_id).with_error_code(error.code());
                }
                let wanted =
                    g.topics.map(|ts| ts.into_iter().map(|t| (t.name.0.to_string(), t.partition_indexes)).collect());
                let fetched = fetch_group(ctx, access, &g.group_id.0, wanted);
                let topics = fetched
                    .into_iter()
                    .map(|(topic, partitions)| {
                        OffsetFetchResponseTopics::default().with_name(TopicName(str_bytes(topic))).with_partitions(
                            partitions
                                .into_iter()
                                .map(|(index, (offset, epoch, metadata, error))| {
                                    OffsetFetchResponsePartitions::default()
                                        .with_partition_index(index)
                                        .with_committed_offset(offset)
                                        .with_committed_leader_epoch(epoch)
                                        .with_metadata(Some(str_bytes(metadata)))
                                        .with_error_code(error)
                                })
                                .collect(),
                        )
                    })
                    .collect();
                OffsetFetchResponseGroup::default().with_group_id(g.group_id).with_topics(topics)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let group_refused = if access.group(AclOperation::Describe, &request.group_id.0) {
        None
    } else {
        Some(ResponseError::GroupAuthorizationFailed.code())
    };
    if let Some(error) = group_refused {
        // The top-level error code exists from v2; older clients see it per partition.
        if version >= 2 {
            return OffsetFetchResponse::default().with_error_code(error);
        }
    } else if let Err(error) = ctx.groups().check_coordinator(&request.group_id.0) {
        if version >= 2 {
            return OffsetFetchResponse::default().with_error_code(error.code());
        }
    }
    let wanted: Option<Vec<(String, Vec<i32>)>> =
        request.topics.map(|ts| ts.into_iter().map(|t| (t.name.0.to_string(), t.partition_indexes)).collect());
    let fetched = match (group_refused, wanted) {
        // v0/v1: the group's refusal on every partition asked about, nothing read.
        (Some(error), wanted) => wanted
            .unwrap_or_default()
            .into_iter()
            .map(|(topic, indexes)| (topic, indexes.into_iter().map(|i| (i, (-1, -1, String::new(), error))).collect()))
            .collect(),
        (None, wanted) => fetch_group(ctx, access, &request.group_id.0, wanted),
    };
    let topics = fetched
        .into_iter()
        .map(|(topic, partitions)| {
            OffsetFetchResponseTopic::default().with_name(TopicName(str_bytes(topic))).with_partitions(
                partitions
                    .into_iter()
                    .map(|(index, (offset, epoch, metadata, error))| {
                        OffsetFetchResponsePartition::default()
                            .with_partition_index(index)
                            .with_committed_offset(offset)
                            // The leader epoch exists from v5; the codec refuses it set earlier.
                            .with_committed_leader_epoch(if version >= 5 { epoch } else { -1 })
                            .with_metadata(Some(str_bytes(metadata)))
                            .with_error_code(error)
                    })
                    .collect(),
            )
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}

/// Answers OffsetDelete: refused for topics a live member subscribes to.
async fn delete(ctx: &impl Groups, access: &Access, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    if !access.group(AclOperation::Delete, &request.group_id.0) {
        return OffsetDeleteResponse::default().with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    // Partitions of topics the client may not Read are refused on their own, not deleted.
    let (partitions, refused): (Vec<TopicPartition>, Vec<TopicPartition>) = request
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.0.to_string(), p.partition_index)))
        .partition(|(topic, _)| access.topic(AclOperation::Read, topic));
    let subscribed = |subscriptions: &[Bytes], topic: &str| {
        subscriptions.iter().any(|s| subscribed_topics(s).iter().any(|t| t == topic))
    };
    if let Err(error) = ctx.groups().check_coordinator(&request.group_id.0) {
        return OffsetDeleteResponse::default().with_error_code(error.code());
    }
    match ctx.groups().delete_offsets(&request.group_id.0, partitions, subscribed).await {
        Err(error) => OffsetDeleteResponse::default().with_error_code(error.code()),
        Ok(mut results) => {
            results.extend(refused.into_iter().map(|(t, p)| (t, p, Some(ResponseError::TopicAuthorizationFailed))));
            let mut by_topic: BTreeMap<String, Vec<OffsetDeleteResponsePartition>> = BTreeMap::new();
            for (topic, partition, error) in results {
                by_topic.entry(topic).or_default().push(
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(partition)
                        .with_error_code(error.map_or(0, |e| e.code())),
                );
            }
            OffsetDeleteResponse::default().with_topics(
                by_topic
                    .into_iter()
                    .map(|(topic, partitions)| {
                        OffsetDeleteResponseTopic::default()
                            .with_name(TopicName(str_bytes(topic)))
                            .with_partitions(partitions)
                    })
                    .collect(),
            )
        }
    }
}

impl<C: Quorum + Groups + Authorize> Handler<C> for OffsetCommitRequest {
    /// Answered once the offsets are on disk.
    async fn handle(ctx: &Arc<C>, rc: &RequestContext, request: OffsetCommitRequest) -> Reply<OffsetCommitResponse> {
        let ctx = ctx.clone();
        let access = Access::of(&*ctx, rc);
        Reply::Later(Box::pin(async move { commit(&*ctx, &access, request).await }))
    }
}

impl<C: Groups + Authorize> Handler<C> for OffsetFetchRequest {
    async fn handle(ctx: &Arc<C>, rc: &RequestContext, request: OffsetFetchRequest) -> Reply<OffsetFetchResponse> {
        Reply::Now(fetch(&**ctx, &Access::of(&**ctx, rc), rc.version(), request))
    }
}

impl<C: Groups + Authorize> Handler<C> for OffsetDeleteRequest {
    /// Answered once the tombstones are on disk.
    async fn handle(ctx: &Arc<C>, rc: &RequestContext, request: OffsetDeleteRequest) -> Reply<OffsetDeleteResponse> {
        let ctx = ctx.clone();
        let access = Access::of(&*ctx, rc);
        Reply::Later(Box::pin(async move { delete(&*ctx, &access, request).await }))
    }
}
