//! DescribeConfigs for topics (every setting in force, marking where each comes from: the topic,
//! a dynamic broker setting, or the defaults) and for this broker (static and dynamic settings).

use super::authorize::Access;
use super::context::{Authorize, Partitions, Reply, RequestContext, Settings};
use super::topics::{SOURCE_DEFAULT, SOURCE_DYNAMIC_TOPIC};
use super::{str_bytes, Handler};
use crate::cluster::Quorum;
use crate::controller::MetadataState;
use crate::security::acl::AclOperation;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use millrace_config::{BrokerConfig, ListenerSettings, TopicOverrides, DYNAMIC_BROKER_KEYS};
use std::sync::Arc;

pub(crate) const RESOURCE_TOPIC: i8 = 2;
pub(crate) const RESOURCE_BROKER: i8 = 4;
/// Kafka `ConfigSource` values a broker setting can have.
const SOURCE_DYNAMIC_BROKER: i8 = 2;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
const SOURCE_STATIC_BROKER: i8 = 4;
/// Kafka `ConfigType.STRING`.
const TYPE_STRING: i8 = 2;

/// Kafka's `NAME://ADDRESS,…` form of the listeners.
fn listener_list(config: &BrokerConfig, address: impl Fn(&ListenerSettings) -> String) -> String {
    let listeners = config.effective_listeners();
    listeners.iter().map(|l| format!("{}://{}", l.name, address(l))).collect::<Vec<_>>().join(",")
}

fn broker_entries(ctx: &impl Settings) -> Vec<(&'static str, String)> {
    let config = ctx.config();
    vec![
        ("broker.id", config.node_id.to_string()),
        ("node.id", config.node_id.to_string()),
        ("log.dirs", config.data_dir.display().to_string()),
        ("listeners", listener_list(config, |l| l.listen.to_string())),
        ("advertised.listeners", listener_list(config, |l| l.advertised_address())),
        ("listener.security.protocol.map", listener_list(config, |l| l.protocol().to_string()).replace("://", ":")),
        ("inter.broker.listener.name", config.inter_broker_listener().name),
        ("auto.create.topics.enable", config.topics.auto_create.to_string()),
        ("auto.leader.rebalance.enable", config.controller.auto_leader_rebalance.to_string()),
        ("num.partitions", config.topics.default_partitions.to_string()),
        ("socket.request.max.bytes", config.server.max_request_bytes.0.to_string()),
        ("log.retention.check.interval.ms", config.log.retention_check_interval.0.to_string()),
        // Not a Kafka setting: tells `millrace top` (or any tool) where this broker's /metrics is.
        ("millrace.admin.listeners", format!("http://{}", config.admin_listen)),
    ]
}

/// The dynamic broker settings in force on this broker (topic defaults under their broker
/// names), each with where it comes from: set for this broker, for the cluster, or static.
fn dynamic_broker_entries<C: Partitions + Quorum + Settings>(ctx: &C) -> Vec<(&'static str, String, i8)> {
    let metadata = ctx.metadata();
    let node = ctx.config().node_id.to_string();
    let defaults = ctx.catalog().resolve(&metadata, &TopicOverrides::default()).entries();
    DYNAMIC_BROKER_KEYS
        .iter()
        .filter_map(|(broker_key, topic_key)| {
            let value = defaults.iter().find(|(k, _)| k == topic_key)?.1.clone();
            let set_in =
                |entity: &str| metadata.broker_configs.get(entity).is_some_and(|c| c.contains_key(*broker_key));
            let source = if set_in(&node) {
                SOURCE_DYNAMIC_BROKER
            } else if set_in("") {
                SOURCE_DYNAMIC_DEFAULT_BROKER
            } else {
                SOURCE_STATIC_BROKER
            };
            Some((*broker_key, value, source))
        })
        .collect()
}

/// Where a topic setting in force comes from: the topic, a dynamic broker setting, or defaults.
fn topic_source(metadata: &MetadataState, node_id: i32, overrides: &TopicOverrides, key: &str) -> i8 {
    if overrides.0.contains_key(key) {
        return SOURCE_DYNAMIC_TOPIC;
    }
    let dynamic = |entity: &str| {
        metadata
            .broker_configs
            .get(entity)
            .is_some_and(|c| c.keys().any(|b| millrace_config::topic_key_of_broker_key(b) == Some(key)))
    };
    if dynamic(&node_id.to_string()) {
        SOURCE_DYNAMIC_BROKER
    } else if dynamic("") {
        SOURCE_DYNAMIC_DEFAULT_BROKER
    } else {
        SOURCE_DEFAULT
    }
}

/// Answers DescribeConfigs: DescribeConfigs on the topic, or on the cluster for the broker.
fn describe<C: Partitions + Quorum + Settings>(
    ctx: &C,
    access: &Access,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let wanted = |key: &str| {
                resource.configuration_keys.as_ref().is_none_or(|keys| keys.iter().any(|k| k.as_str() == key))
            };
            let refused = match resource.resource_type {
                RESOURCE_TOPIC if !access.topic(AclOperation::DescribeConfigs, &resource.resource_name) => {
                    Some(ResponseError::TopicAuthorizationFailed)
                }
                RESOURCE_BROKER if !access.cluster(AclOperation::DescribeConfigs) => {
                    Some(ResponseError::ClusterAuthorizationFailed)
                }
                _ => None,
            };
            if let Some(error) = refused {
                return result.with_error_code(error.code()).with_error_message(Some(str_bytes("not authorized")));
            }
            let entries: Vec<(&'static str, String, i8)> = match resource.resource_type {
                // From the metadata, so any broker answers, hosting a replica or not.
                RESOURCE_TOPIC => match ctx.metadata().topics.get(resource.resource_name.as_str()) {
                    Some(topic) => {
                        let overrides = millrace_config::TopicOverrides::from_pairs(
                            topic.configs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                        )
                        .unwrap_or_default();
                        let metadata = ctx.metadata();
                        let node_id = ctx.config().node_id;
                        ctx.catalog()
                            .resolve(&metadata, &overrides)
                            .entries()
                            .into_iter()
                            .map(|(key, value)| (key, value, topic_source(&metadata, node_id, &overrides, key)))
                            .collect()
                    }
                    None => {
                        return result
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(Some(str_bytes(format!(
                                "topic '{}' does not exist",
                                resource.resource_name
                            ))))
                    }
                },
                RESOURCE_BROKER => {
                    let name = resource.resource_name.as_str();
                    if !name.is_empty() && name != ctx.config().node_id.to_string() {
                        return result.with_error_code(ResponseError::InvalidRequest.code()).with_error_message(Some(
                            str_bytes(format!("this is broker {}, not '{name}'", ctx.config().node_id)),
                        ));
                    }
                    let mut entries: Vec<_> =
                        broker_entries(ctx).into_iter().map(|(k, v)| (k, v, SOURCE_STATIC_BROKER)).collect();
                    entries.extend(dynamic_broker_entries(ctx));
                    entries
                }
                other => {
                    return result.with_error_code(ResponseError::InvalidRequest.code()).with_error_message(Some(
                        str_bytes(format!("resource type {other} is not supported; use 2 (topic) or 4 (broker)")),
                    ))
                }
            };
            let configs = entries
                .into_iter()
                .filter(|(key, _, _)| wanted(key))
                .map(|(key, value, source)| {
                    DescribeConfigsResourceResult::default()
                        .with_name(str_bytes(key))
                        .with_value(Some(str_bytes(value)))
                        .with_read_only(
                            resource.resource_type == RESOURCE_BROKER
                                && millrace_config::topic_key_of_broker_key(key).is_none(),
                        )
                        .with_config_source(source)
                        .with_config_type(TYPE_STRING)
                })
                .collect();
            result.with_configs(configs)
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

impl<C: Partitions + Quorum + Settings + Authorize> Handler<C> for DescribeConfigsRequest {
    async fn handle(
        ctx: &Arc<C>,
        rc: &RequestContext,
        request: DescribeConfigsRequest,
    ) -> Reply<DescribeConfigsResponse> {
        Reply::Now(describe(&**ctx, &Access::of(&**ctx, rc), request))
    }
}
