//! CreateTopics, DeleteTopics and CreatePartitions.

use super::authorize::Access;
use super::context::{Authorize, Partitions, Reply, RequestContext, Settings};
use super::{str_bytes, Handler};
use crate::catalog::TopicError;
use crate::cluster::topics::NewTopic;
use crate::cluster::Quorum;
use crate::security::acl::{AclOperation, ResourceType, CLUSTER_RESOURCE_NAME};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, TopicName,
};
use std::sync::Arc;
use uuid::Uuid;

/// Kafka `ConfigSource` values.
pub(crate) const SOURCE_DYNAMIC_TOPIC: i8 = 1;
pub(crate) const SOURCE_DEFAULT: i8 = 5;

/// Why a topic is refused for want of an ACL.
fn unauthorized() -> TopicError {
    TopicError::Unauthorized("not authorized for this topic".into())
}

/// Answers CreateTopics: Create on the cluster or on the topic; the configs are returned only
/// to a client that may DescribeConfigs the topic (v5+, as Kafka does).
async fn create<C: Partitions + Quorum + Settings>(
    ctx: &C,
    access: &Access,
    version: i16,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    let mut budget = RequestPartitions::new(ctx);
    let cluster_create = access.allows_quietly(AclOperation::Create, ResourceType::Cluster, CLUSTER_RESOURCE_NAME);
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let configs: Vec<(String, String)> = topic
            .configs
            .iter()
            .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string()).unwrap_or_default()))
            .collect();
        let assignments: Vec<Vec<i32>> =
            topic.assignments.iter().map(|a| a.broker_ids.iter().map(|b| b.0).collect()).collect();
        let new_topic = NewTopic {
            name: &name,
            partitions: topic.num_partitions,
            replication_factor: topic.replication_factor,
            assignments,
            configs: &configs,
        };
        let wanted = if new_topic.assignments.is_empty() {
            if topic.num_partitions == -1 {
                ctx.config().topics.default_partitions
            } else {
                topic.num_partitions
            }
        } else {
            new_topic.assignments.len() as i32
        };
        let outcome = if !cluster_create && !access.topic(AclOperation::Create, &name) {
            Err(unauthorized())
        } else if crate::catalog::is_internal(&name) {
            Err(TopicError::InvalidName(format!("'{name}' is an internal topic; the broker creates it")))
        } else if let Err(e) = budget.take(wanted) {
            Err(e)
        } else if !new_topic.assignments.is_empty() && (topic.num_partitions != -1 || topic.replication_factor != -1) {
            Err(TopicError::InvalidRequest(
                "give either replica assignments or partitions and replication factor, not both".into(),
            ))
        } else {
            crate::cluster::topics::create_topic(ctx, ctx.catalog(), ctx.config(), new_topic, request.validate_only)
                .await
        };
        let result = CreatableTopicResult::default().with_name(topic.name.clone());
        results.push(match outcome {
            Ok(created) if version >= 5 && !access.topic(AclOperation::DescribeConfigs, &name) => result
                .with_topic_id(created.id)
                .with_num_partitions(created.partitions)
                .with_replication_factor(created.replication_factor)
                .with_topic_config_error_code(ResponseError::TopicAuthorizationFailed.code())
                .with_configs(None),
            Ok(created) => {
                let entries = created
                    .config
                    .entries()
                    .into_iter()
                    .map(|(key, value)| {
                        let source =
                            if created.overrides.0.contains_key(key) { SOURCE_DYNAMIC_TOPIC } else { SOURCE_DEFAULT };
                        CreatableTopicConfigs::default()
                            .with_name(str_bytes(key))
                            .with_value(Some(str_bytes(value)))
                            .with_config_source(source)
                    })
                    .collect();
                result
                    .with_topic_id(created.id)
                    .with_num_partitions(created.partitions)
                    .with_replication_factor(created.replication_factor)
                    .with_configs(Some(entries))
            }
            Err(e) => {
                tracing::info!(topic = %name, error = %e, "CreateTopics refused");
                result
                    .with_error_code(e.error_code().code())
                    .with_error_message(Some(str_bytes(e.to_string())))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1)
            }
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

/// Answers DeleteTopics (by name, or by topic id from v6): Delete on each topic.
async fn delete<C: Quorum>(ctx: &C, access: &Access, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let mut wanted: Vec<(Option<String>, Uuid)> =
        request.topic_names.into_iter().map(|n| (Some(n.0.to_string()), Uuid::nil())).collect();
    wanted.extend(request.topics.into_iter().map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id)));
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        let name =
            name.or_else(|| ctx.metadata().topics.iter().find(|(_, t)| t.topic_id == id).map(|(n, _)| n.clone()));
        let result =
            DeletableTopicResult::default().with_name(name.clone().map(|n| TopicName(str_bytes(n)))).with_topic_id(id);
        let Some(name) = name else {
            responses.push(result.with_error_code(ResponseError::UnknownTopicId.code()));
            continue;
        };
        if !access.topic(AclOperation::Delete, &name) {
            let e = unauthorized();
            responses
                .push(result.with_error_code(e.error_code().code()).with_error_message(Some(str_bytes(e.to_string()))));
            continue;
        }
        responses.push(match crate::cluster::topics::delete_topic(ctx, &name).await {
            Ok(deleted_id) => result.with_topic_id(deleted_id),
            Err(e) => result.with_error_code(e.error_code().code()).with_error_message(Some(str_bytes(e.to_string()))),
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

/// Answers CreatePartitions: Alter on each topic.
async fn create_partitions<C: Partitions + Quorum + Settings>(
    ctx: &C,
    access: &Access,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    let mut budget = RequestPartitions::new(ctx);
    for topic in request.topics {
        let current = ctx.metadata().topics.get(topic.name.0.as_str()).map_or(0, |t| t.partitions.len() as i32);
        let explicit: Vec<Vec<i32>> =
            topic.assignments.iter().flatten().map(|a| a.broker_ids.iter().map(|b| b.0).collect()).collect();
        let outcome = if !access.topic(AclOperation::Alter, &topic.name.0) {
            Err(unauthorized())
        } else if crate::catalog::is_internal(&topic.name.0) {
            // Group-to-partition placement hashes over the partition count.
            Err(TopicError::InvalidName(format!("'{}' is an internal topic and cannot grow", topic.name.0)))
        } else if let Err(e) = budget.take(topic.count.saturating_sub(current)) {
            Err(e)
        } else {
            let limit = ctx.config().topics.max_partitions;
            crate::cluster::topics::add_partitions(
                ctx,
                ctx.catalog(),
                &topic.name.0,
                topic.count,
                explicit,
                request.validate_only,
                limit,
            )
            .await
        };
        let result = CreatePartitionsTopicResult::default().with_name(topic.name);
        results.push(match outcome {
            Ok(()) => result,
            Err(e) => result.with_error_code(e.error_code().code()).with_error_message(Some(str_bytes(e.to_string()))),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}

/// Partitions one request may still create (`topics.max_partitions_per_request`): one small
/// request must not open thousands of logs.
pub(crate) struct RequestPartitions {
    left: i64,
    max: u32,
}

impl RequestPartitions {
    pub(crate) fn new(ctx: &impl Settings) -> Self {
        let max = ctx.config().topics.max_partitions_per_request;
        RequestPartitions { left: i64::from(max), max }
    }

    /// Takes `count` partitions from the request's allowance.
    pub(crate) fn take(&mut self, count: i32) -> Result<(), TopicError> {
        let count = i64::from(count.max(0));
        if count > self.left {
            return Err(TopicError::PolicyViolation(format!(
                "one request may create at most {} partitions (topics.max_partitions_per_request)",
                self.max
            )));
        }
        self.left -= count;
        Ok(())
    }
}

impl<C: Partitions + Quorum + Settings + Authorize> Handler<C> for CreateTopicsRequest {
    async fn handle(ctx: &Arc<C>, rc: &RequestContext, request: CreateTopicsRequest) -> Reply<CreateTopicsResponse> {
        Reply::Now(create(&**ctx, &Access::of(&**ctx, rc), rc.version(), request).await)
    }
}

impl<C: Quorum + Authorize> Handler<C> for DeleteTopicsRequest {
    async fn handle(ctx: &Arc<C>, rc: &RequestContext, request: DeleteTopicsRequest) -> Reply<DeleteTopicsResponse> {
        Reply::Now(delete(&**ctx, &Access::of(&**ctx, rc), request).await)
    }
}

impl<C: Partitions + Quorum + Settings + Authorize> Handler<C> for CreatePartitionsRequest {
    async fn handle(
        ctx: &Arc<C>,
        rc: &RequestContext,
        request: CreatePartitionsRequest,
    ) -> Reply<CreatePartitionsResponse> {
        Reply::Now(create_partitions(&**ctx, &Access::of(&**ctx, rc), request).await)
    }
}
