//! Metadata: brokers, the controller and topic partitions with leader, replicas and ISR.
//! Asking for an unknown topic creates it when auto-creation is on (Kafka's
//! `auto.create.topics.enable`).

use super::{str_bytes, RequestContext};
use crate::catalog::{Topic, TopicError};
use crate::Broker;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use std::sync::Arc;
use uuid::Uuid;

/// Kafka's value for "authorized operations were not requested".
const OPERATIONS_OMITTED: i32 = i32::MIN;

fn topic_entry(broker: &Broker, topic: &Topic) -> MetadataResponseTopic {
    let node = BrokerId(broker.config.node_id);
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p.index)
                .with_leader_id(node)
                .with_leader_epoch(0)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(topic.name.clone()))))
        .with_topic_id(topic.id)
        .with_is_internal(crate::catalog::is_internal(&topic.name))
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
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: MetadataRequest) -> MetadataResponse {
    // v0 has no null topic list: an empty one means "all topics".
    let all = match &request.topics {
        None => true,
        Some(list) => list.is_empty() && ctx.version() == 0,
    };
    // allow_auto_topic_creation exists from v4; before that clients always allowed it.
    let allow_create = ctx.version() < 4 || request.allow_auto_topic_creation;
    let mut topics = Vec::new();
    if all {
        topics = broker.catalog.all().iter().map(|t| topic_entry(broker, t)).collect();
    } else {
        for wanted in request.topics.unwrap_or_default() {
            let Some(name) = wanted.name.map(|n| n.0.to_string()) else {
                match broker.catalog.get_by_id(&wanted.topic_id) {
                    Some(topic) => topics.push(topic_entry(broker, &topic)),
                    None => topics.push(error_entry(None, wanted.topic_id, ResponseError::UnknownTopicId)),
                }
                continue;
            };
            let found = if allow_create {
                broker.catalog.get_or_auto_create(&name).await
            } else {
                Ok(broker.catalog.get(&name))
            };
            match found {
                Ok(Some(topic)) => topics.push(topic_entry(broker, &topic)),
                Ok(None) => topics.push(error_entry(Some(name), Uuid::nil(), ResponseError::UnknownTopicOrPartition)),
                Err(TopicError::InvalidName(reason)) => {
                    tracing::debug!(topic = %name, %reason, "metadata for an invalid topic name");
                    topics.push(error_entry(Some(name), Uuid::nil(), ResponseError::InvalidTopicException))
                }
                Err(e) => {
                    tracing::warn!(topic = %name, error = %e, "auto-creating topic failed");
                    topics.push(error_entry(Some(name), Uuid::nil(), ResponseError::UnknownServerError))
                }
            }
        }
    }
    let (host, port) = broker.advertised_host_port();
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(broker.config.node_id))
            .with_host(str_bytes(host))
            .with_port(port)])
        .with_cluster_id(Some(str_bytes(broker.cluster_id.clone())))
        .with_controller_id(BrokerId(broker.config.node_id))
        .with_topics(topics)
        .with_cluster_authorized_operations(OPERATIONS_OMITTED)
}
