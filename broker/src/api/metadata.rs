//! Metadata: brokers, the controller and topic partitions with leader, replicas and ISR.
//! Asking for an unknown topic creates it when auto-creation is on (Kafka's
//! `auto.create.topics.enable`) and the client may create it. Topics the client may not
//! Describe are left out of a full listing and refused by name, as Kafka does.

use super::authorize::Access;
use super::context::{Authorize, Partitions, Reply, RequestContext, Settings};
use super::{str_bytes, Handler};
use crate::catalog::TopicError;
use crate::cluster::topics::NewTopic;
use crate::cluster::Quorum;
use crate::controller::{MetadataState, TopicState, NO_LEADER};
use crate::security::acl::{AclOperation, ResourceType};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use std::sync::Arc;
use uuid::Uuid;

/// Kafka's value for "authorized operations were not requested".
pub(crate) const OPERATIONS_OMITTED: i32 = i32::MIN;

const CLUSTER: &str = crate::security::acl::CLUSTER_RESOURCE_NAME;

fn topic_entry(name: &str, topic: &TopicState, metadata: &MetadataState) -> MetadataResponseTopic {
    let live = |id: &i32| metadata.brokers.get(id).is_some_and(|b| !b.fenced);
    let partitions = topic
        .partitions
        .iter()
        .enumerate()
        .map(|(index, p)| {
            let error = if p.leader == NO_LEADER { ResponseError::LeaderNotAvailable.code() } else { 0 };
            MetadataResponsePartition::default()
                .with_error_code(error)
                .with_partition_index(index as i32)
                .with_leader_id(BrokerId(p.leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(p.replicas.iter().map(|r| BrokerId(*r)).collect())
                .with_isr_nodes(p.isr.iter().map(|r| BrokerId(*r)).collect())
                .with_offline_replicas(
                    p.replicas
                        .iter()
                        .filter(|r| !live(r) || p.offline_replicas.contains(r))
                        .map(|r| BrokerId(*r))
                        .collect(),
                )
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(name.to_string()))))
        .with_topic_id(topic.topic_id)
        .with_is_internal(crate::catalog::is_internal(name))
        .with_partitions(partitions)
        .with_topic_authorized_operations(OPERATIONS_OMITTED)
}

fn error_entry(name: Option<String>, id: Uuid, error: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(error.code())
        .with_name(name.map(|n| TopicName(str_bytes(n))))
        .with_topic_id(id)
        .with_topic_authorized_operations(OPERATIONS_OMITTED)
}

/// Answers Metadata.
async fn metadata<C: Partitions + Quorum + Settings + Authorize>(
    ctx: &C,
    rc: &RequestContext,
    request: MetadataRequest,
) -> MetadataResponse {
    let access = Access::of(ctx, rc);
    let describe = |name: &str| access.topic(AclOperation::Describe, name);
    let refused = |name: Option<String>, id: Uuid| error_entry(name, id, ResponseError::TopicAuthorizationFailed);
    // v0 has no null topic list: an empty one means "all topics".
    let all = match &request.topics {
        None => true,
        Some(list) => list.is_empty() && rc.version() == 0,
    };
    // allow_auto_topic_creation exists from v4; before that clients always allowed it.
    let allow_create = rc.version() < 4 || request.allow_auto_topic_creation;
    let mut topics = Vec::new();
    let mut budget = super::topics::RequestPartitions::new(ctx);
    if all {
        let metadata = ctx.metadata();
        topics = metadata
            .topics
            .iter()
            .filter(|(name, _)| access.allows_quietly(AclOperation::Describe, ResourceType::Topic, name))
            .map(|(name, t)| topic_entry(name, t, &metadata))
            .collect();
    } else {
        for wanted in request.topics.unwrap_or_default() {
            let metadata = ctx.metadata();
            let Some(name) = wanted.name.map(|n| n.0.to_string()) else {
                match metadata.topics.iter().find(|(_, t)| t.topic_id == wanted.topic_id) {
                    // Topic ids are not secret: the refusal carries the id, not the name.
                    Some((name, _)) if !describe(name) => topics.push(refused(None, wanted.topic_id)),
                    Some((name, topic)) => topics.push(topic_entry(name, topic, &metadata)),
                    None => topics.push(error_entry(None, wanted.topic_id, ResponseError::UnknownTopicId)),
                }
                continue;
            };
            if !describe(&name) {
                topics.push(refused(Some(name), Uuid::nil()));
                continue;
            }
            if let Some(topic) = metadata.topics.get(&name) {
                topics.push(topic_entry(&name, topic, &metadata));
                continue;
            }
            if !allow_create || !ctx.config().topics.auto_create {
                topics.push(error_entry(Some(name), Uuid::nil(), ResponseError::UnknownTopicOrPartition));
                continue;
            }
            let may_create = access.allows_quietly(AclOperation::Create, ResourceType::Cluster, CLUSTER)
                || access.topic(AclOperation::Create, &name);
            if !may_create {
                topics.push(refused(Some(name), Uuid::nil()));
                continue;
            }
            if let Err(e) = budget.take(ctx.config().topics.default_partitions) {
                tracing::debug!(topic = %name, error = %e, "not auto-creating");
                topics.push(error_entry(Some(name), Uuid::nil(), ResponseError::PolicyViolation));
                continue;
            }
            let new_topic =
                NewTopic { name: &name, partitions: -1, replication_factor: -1, assignments: Vec::new(), configs: &[] };
            match crate::cluster::topics::create_topic(ctx, ctx.catalog(), ctx.config(), new_topic, false).await {
                Ok(_) | Err(TopicError::AlreadyExists(_)) => {
                    let metadata = ctx.metadata();
                    match metadata.topics.get(&name) {
                        Some(topic) => topics.push(topic_entry(&name, topic, &metadata)),
                        None => topics.push(error_entry(Some(name), Uuid::nil(), ResponseError::LeaderNotAvailable)),
                    }
                }
                Err(TopicError::InvalidName(reason)) => {
                    tracing::debug!(topic = %name, %reason, "metadata for an invalid topic name");
                    topics.push(error_entry(Some(name), Uuid::nil(), ResponseError::InvalidTopicException))
                }
                Err(TopicError::PolicyViolation(reason)) => {
                    tracing::warn!(topic = %name, %reason, "not auto-creating");
                    topics.push(error_entry(Some(name), Uuid::nil(), ResponseError::PolicyViolation))
                }
                Err(e) => {
                    tracing::warn!(topic = %name, error = %e, "auto-creating topic failed");
                    // Retriable for clients: they ask again.
                    topics.push(error_entry(Some(name), Uuid::nil(), ResponseError::LeaderNotAvailable))
                }
            }
        }
    }
    if request.include_topic_authorized_operations {
        for topic in topics.iter_mut().filter(|t| t.error_code != ResponseError::TopicAuthorizationFailed.code()) {
            if let Some(name) = &topic.name {
                topic.topic_authorized_operations = access.operations(ResourceType::Topic, name);
            }
        }
    }
    // Asked for in v8 to v10 only (later versions ask DescribeCluster); 0 without Describe.
    let cluster_operations = match request.include_cluster_authorized_operations {
        true if access.cluster(AclOperation::Describe) => access.operations(ResourceType::Cluster, CLUSTER),
        true => 0,
        false => OPERATIONS_OMITTED,
    };
    let metadata = ctx.metadata();
    // Every registered broker, fenced ones too (they lead nothing and sit in no ISR, so the
    // partitions above already steer clients away). librdkafka 2.10+ tears down its handle of a
    // broker missing from a Metadata answer, and a group coordinator or queued produce requests
    // on that handle then wait for a reconnect that never comes (confluentinc/librdkafka#5511):
    // a broker killed and fenced for a few seconds left consumers and producers stalled.
    let brokers = metadata
        .brokers
        .values()
        // Each client sees the brokers' endpoints on the listener it came in on.
        .filter_map(|b| {
            let (host, port) = b.endpoint(&rc.connection.listener)?;
            Some(
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(b.id))
                    .with_host(str_bytes(host))
                    .with_port(i32::from(port))
                    .with_rack(b.rack.clone().map(str_bytes)),
            )
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(str_bytes(ctx.cluster_id())))
        .with_controller_id(BrokerId(ctx.controller_id()))
        .with_topics(topics)
        .with_cluster_authorized_operations(cluster_operations)
}

impl<C: Partitions + Quorum + Settings + Authorize> Handler<C> for MetadataRequest {
    async fn handle(ctx: &Arc<C>, rc: &RequestContext, request: MetadataRequest) -> Reply<MetadataResponse> {
        Reply::Now(metadata(&**ctx, rc, request).await)
    }
}
