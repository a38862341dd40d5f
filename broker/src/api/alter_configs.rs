//! IncrementalAlterConfigs and AlterConfigs: a topic's settings, and the broker settings that may
//! change while the cluster runs (the topic defaults: retention, segments, cleaner, limits), for
//! one broker or, with an empty name, every broker (Kafka's `--entity-default`). A change is
//! checked here, then committed through the metadata quorum; every broker applies it from there.

use super::authorize::Access;
use super::configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::context::{Authorize, Reply, RequestContext};
use super::{str_bytes, Handler};
use crate::cluster::Quorum;
use crate::controller::{MetadataCommand, MetadataState};
use crate::security::acl::AclOperation;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest, AlterConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use millrace_config::TopicOverrides;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// How long a change may wait for the metadata quorum.
const PROPOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most settings one resource of a request may name (Kafka has about 40 topic settings).
const MAX_OPS_PER_RESOURCE: usize = 256;
/// Most resources one request may change: each is a metadata quorum write.
const MAX_RESOURCES: usize = 1000;
/// Longest setting (name and value) there may be: every broker keeps every value in its metadata.
const MAX_VALUE_BYTES: usize = 4096;

/// IncrementalAlterConfigs operations (Kafka's `AlterConfigOp.OpType`).
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// Settings whose values are lists (APPEND and SUBTRACT apply to them), with their default.
const LIST_KEYS: &[(&str, &str)] = &[("cleanup.policy", "delete"), ("log.cleanup.policy", "delete")];

/// Why one resource's change was refused.
#[derive(Debug, thiserror::Error)]
enum AlterError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    #[error("not authorized to alter the configs of {0}")]
    TopicUnauthorized(String),
    #[error("not authorized to alter broker configs")]
    ClusterUnauthorized,
    #[error("{0}")]
    Quorum(#[from] crate::controller::ControllerError),
}

impl AlterError {
    fn code(&self) -> ResponseError {
        match self {
            AlterError::InvalidRequest(_) => ResponseError::InvalidRequest,
            AlterError::InvalidConfig(_) => ResponseError::InvalidConfig,
            AlterError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition,
            AlterError::TopicUnauthorized(_) => ResponseError::TopicAuthorizationFailed,
            AlterError::ClusterUnauthorized => ResponseError::ClusterAuthorizationFailed,
            AlterError::Quorum(e) => e.error_code(),
        }
    }
}

/// One resource's change, as the metadata command takes it.
#[derive(Debug, Default, PartialEq)]
struct Change {
    replace: bool,
    delete: Vec<String>,
    set: BTreeMap<String, String>,
}

impl Change {
    /// The settings after the change.
    fn applied_to(&self, current: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut next = if self.replace { BTreeMap::new() } else { current.clone() };
        for key in &self.delete {
            next.remove(key);
        }
        next.extend(self.set.iter().map(|(k, v)| (k.clone(), v.clone())));
        next
    }
}

/// One IncrementalAlterConfigs operation, decoded.
struct Op<'a> {
    key: &'a str,
    op: i8,
    value: Option<&'a str>,
}

/// The change `ops` make to `current` (a topic's or broker entity's settings): SET and DELETE as
/// given; APPEND and SUBTRACT edit a list setting's value in force (`default` when unset).
fn incremental_change(
    current: &BTreeMap<String, String>,
    in_force: impl Fn(&str) -> Option<String>,
    ops: &[Op<'_>],
) -> Result<Change, AlterError> {
    if ops.len() > MAX_OPS_PER_RESOURCE {
        return Err(AlterError::InvalidRequest(format!(
            "{} settings in one resource; at most {MAX_OPS_PER_RESOURCE}",
            ops.len()
        )));
    }
    let mut seen = BTreeSet::new();
    let mut change = Change::default();
    for op in ops {
        if !seen.insert(op.key) {
            return Err(AlterError::InvalidRequest(format!("'{}' is named twice in one resource", op.key)));
        }
        match op.op {
            OP_SET => {
                let value = op
                    .value
                    .ok_or_else(|| AlterError::InvalidRequest(format!("SET of '{}' without a value", op.key)))?;
                change.set.insert(op.key.to_string(), value.to_string());
            }
            OP_DELETE => change.delete.push(op.key.to_string()),
            OP_APPEND | OP_SUBTRACT => {
                let Some((_, default)) = LIST_KEYS.iter().find(|(k, _)| *k == op.key) else {
                    return Err(AlterError::InvalidConfig(format!(
                        "'{}' is not a list setting; APPEND and SUBTRACT apply to cleanup.policy only",
                        op.key
                    )));
                };
                let value = op.value.unwrap_or_default();
                let base = current.get(op.key).cloned().or_else(|| in_force(op.key)).unwrap_or(default.to_string());
                let mut items: Vec<String> =
                    base.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
                for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let present = items.iter().any(|i| i == item);
                    if op.op == OP_APPEND && !present {
                        items.push(item.to_string());
                    } else if op.op == OP_SUBTRACT {
                        items.retain(|i| i != item);
                    }
                }
                if items.is_empty() {
                    change.delete.push(op.key.to_string());
                } else {
                    change.set.insert(op.key.to_string(), items.join(","));
                }
            }
            other => {
                return Err(AlterError::InvalidRequest(format!("unknown operation {other} on '{}'", op.key)));
            }
        }
    }
    Ok(change)
}

/// The resource a change is for, checked against the metadata and the client's ACLs.
enum Target {
    Topic(String),
    /// A broker id, or "" for the cluster default.
    Broker(String),
}

fn target(metadata: &MetadataState, access: &Access, resource_type: i8, name: &str) -> Result<Target, AlterError> {
    match resource_type {
        RESOURCE_TOPIC => {
            if !access.topic(AclOperation::AlterConfigs, name) {
                return Err(AlterError::TopicUnauthorized(format!("topic '{name}'")));
            }
            if !metadata.topics.contains_key(name) {
                return Err(AlterError::UnknownTopic(name.to_string()));
            }
            Ok(Target::Topic(name.to_string()))
        }
        RESOURCE_BROKER => {
            if !access.cluster(AclOperation::AlterConfigs) {
                return Err(AlterError::ClusterUnauthorized);
            }
            if !name.is_empty() {
                let known = name.parse::<i32>().is_ok_and(|id| metadata.brokers.contains_key(&id));
                if !known {
                    return Err(AlterError::InvalidRequest(format!(
                        "'{name}' is not a registered broker id (an empty name sets the cluster default)"
                    )));
                }
            }
            Ok(Target::Broker(name.to_string()))
        }
        other => Err(AlterError::InvalidRequest(format!(
            "resource type {other} cannot be altered here; use 2 (topic) or 4 (broker)"
        ))),
    }
}

impl Target {
    fn current(&self, metadata: &MetadataState) -> BTreeMap<String, String> {
        match self {
            Target::Topic(name) => metadata.topics.get(name).map(|t| t.configs.clone()).unwrap_or_default(),
            Target::Broker(entity) => metadata.broker_configs.get(entity).cloned().unwrap_or_default(),
        }
    }

    /// Checks the settings a change would leave, with the rules of this broker's version.
    fn validate(&self, next: &BTreeMap<String, String>) -> Result<(), AlterError> {
        if let Some((key, value)) = next.iter().find(|(k, v)| k.len() + v.len() > MAX_VALUE_BYTES) {
            return Err(AlterError::InvalidConfig(format!(
                "'{key}' with a {}-byte value: at most {MAX_VALUE_BYTES} bytes",
                value.len()
            )));
        }
        let pairs = next.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let checked = match self {
            Target::Topic(_) => TopicOverrides::from_pairs(pairs),
            Target::Broker(_) => TopicOverrides::from_broker_pairs(pairs),
        };
        checked.map(drop).map_err(|e| AlterError::InvalidConfig(e.to_string()))
    }

    fn command(self, change: Change) -> MetadataCommand {
        let Change { replace, delete, set } = change;
        match self {
            Target::Topic(name) => MetadataCommand::AlterTopicConfigs { name, replace, delete, set },
            Target::Broker(entity) => MetadataCommand::AlterBrokerConfigs { entity, replace, delete, set },
        }
    }
}

/// Checks and (unless `validate_only`) commits one resource's change.
async fn alter_one<C: Quorum>(
    ctx: &C,
    access: &Access,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    build: impl FnOnce(&Target, &MetadataState) -> Result<Change, AlterError>,
) -> Result<(), AlterError> {
    let metadata = ctx.metadata();
    let target = target(&metadata, access, resource_type, name)?;
    let change = build(&target, &metadata)?;
    target.validate(&change.applied_to(&target.current(&metadata)))?;
    if validate_only {
        return Ok(());
    }
    let what = match &target {
        Target::Topic(t) => format!("topic {t}"),
        Target::Broker(b) if b.is_empty() => "the cluster default".to_string(),
        Target::Broker(b) => format!("broker {b}"),
    };
    tracing::info!(resource = %what, set = ?change.set, delete = ?change.delete, replace = change.replace, "altering configs");
    ctx.propose(target.command(change), PROPOSE_TIMEOUT).await?;
    Ok(())
}

/// The value a list setting has on `target` when the entity itself does not set it.
fn list_default(target: &Target, metadata: &MetadataState, key: &str) -> Option<String> {
    match target {
        // A topic without its own cleanup.policy follows the dynamic cluster default, if any.
        Target::Topic(_) => metadata.broker_configs.get("").and_then(|c| c.get("log.cleanup.policy")).cloned(),
        Target::Broker(entity) if !entity.is_empty() => {
            metadata.broker_configs.get("").and_then(|c| c.get(key)).cloned()
        }
        Target::Broker(_) => None,
    }
}

fn too_many_message() -> String {
    format!("more than {MAX_RESOURCES} resources in one request; send them in several")
}

fn error_fields(result: &Result<(), AlterError>) -> (i16, Option<StrBytes>) {
    match result {
        Ok(()) => (0, None),
        Err(e) => (e.code().code(), Some(str_bytes(e.to_string()))),
    }
}

/// Answers IncrementalAlterConfigs.
async fn incremental<C: Quorum>(
    ctx: &C,
    access: &Access,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    let too_many = request.resources.len() > MAX_RESOURCES;
    for resource in request.resources {
        let result = if too_many {
            Err(AlterError::InvalidRequest(too_many_message()))
        } else {
            let ops: Vec<Op<'_>> = resource
                .configs
                .iter()
                .map(|c| Op { key: c.name.as_str(), op: c.config_operation, value: c.value.as_deref() })
                .collect();
            alter_one(
                ctx,
                access,
                resource.resource_type,
                &resource.resource_name,
                request.validate_only,
                |target, metadata| {
                    incremental_change(&target.current(metadata), |key| list_default(target, metadata, key), &ops)
                },
            )
            .await
        };
        let (code, message) = error_fields(&result);
        responses.push(
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone()),
        );
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// Answers AlterConfigs: the given settings replace all of the resource's own.
async fn replace<C: Quorum>(ctx: &C, access: &Access, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    let too_many = request.resources.len() > MAX_RESOURCES;
    for resource in request.resources {
        let result = if too_many {
            Err(AlterError::InvalidRequest(too_many_message()))
        } else {
            alter_one(ctx, access, resource.resource_type, &resource.resource_name, request.validate_only, |_, _| {
                if resource.configs.len() > MAX_OPS_PER_RESOURCE {
                    return Err(AlterError::InvalidRequest(format!(
                        "{} settings in one resource; at most {MAX_OPS_PER_RESOURCE}",
                        resource.configs.len()
                    )));
                }
                let mut set = BTreeMap::new();
                for c in &resource.configs {
                    let value = c
                        .value
                        .as_ref()
                        .ok_or_else(|| AlterError::InvalidRequest(format!("'{}' without a value", c.name.as_str())))?;
                    if set.insert(c.name.to_string(), value.to_string()).is_some() {
                        return Err(AlterError::InvalidRequest(format!("'{}' is named twice", c.name.as_str())));
                    }
                }
                Ok(Change { replace: true, delete: Vec::new(), set })
            })
            .await
        };
        let (code, message) = error_fields(&result);
        responses.push(
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone()),
        );
    }
    AlterConfigsResponse::default().with_responses(responses)
}

impl<C: Quorum + Authorize + 'static> Handler<C> for IncrementalAlterConfigsRequest {
    async fn handle(
        ctx: &Arc<C>,
        rc: &RequestContext,
        request: IncrementalAlterConfigsRequest,
    ) -> Reply<IncrementalAlterConfigsResponse> {
        let (ctx, access) = (ctx.clone(), Access::of(&**ctx, rc));
        Reply::Later(Box::pin(async move { incremental(&*ctx, &access, request).await }))
    }
}

impl<C: Quorum + Authorize + 'static> Handler<C> for AlterConfigsRequest {
    async fn handle(ctx: &Arc<C>, rc: &RequestContext, request: AlterConfigsRequest) -> Reply<AlterConfigsResponse> {
        let (ctx, access) = (ctx.clone(), Access::of(&**ctx, rc));
        Reply::Later(Box::pin(async move { replace(&*ctx, &access, request).await }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ops<'a>(list: &'a [(&'a str, i8, Option<&'a str>)]) -> Vec<Op<'a>> {
        list.iter().map(|(key, op, value)| Op { key, op: *op, value: *value }).collect()
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn set_delete_append_and_subtract() {
        let current = map(&[("retention.ms", "1000"), ("segment.bytes", "4096")]);
        let change = incremental_change(
            &current,
            |_| None,
            &ops(&[
                ("retention.ms", OP_SET, Some("2000")),
                ("segment.bytes", OP_DELETE, None),
                ("cleanup.policy", OP_APPEND, Some("compact")),
            ]),
        )
        .unwrap();
        assert_eq!(change.applied_to(&current), map(&[("cleanup.policy", "delete,compact"), ("retention.ms", "2000")]));
        let current = map(&[("cleanup.policy", "delete,compact")]);
        let change =
            incremental_change(&current, |_| None, &ops(&[("cleanup.policy", OP_SUBTRACT, Some("delete"))])).unwrap();
        assert_eq!(change.applied_to(&current), map(&[("cleanup.policy", "compact")]));
    }

    #[test]
    fn refuses_duplicates_missing_values_and_lists_of_scalars() {
        let none = BTreeMap::new();
        let dup = ops(&[("retention.ms", OP_SET, Some("1")), ("retention.ms", OP_DELETE, None)]);
        assert!(matches!(incremental_change(&none, |_| None, &dup), Err(AlterError::InvalidRequest(_))));
        let no_value = ops(&[("retention.ms", OP_SET, None)]);
        assert!(matches!(incremental_change(&none, |_| None, &no_value), Err(AlterError::InvalidRequest(_))));
        let scalar = ops(&[("retention.ms", OP_APPEND, Some("1"))]);
        assert!(matches!(incremental_change(&none, |_| None, &scalar), Err(AlterError::InvalidConfig(_))));
        let unknown = ops(&[("retention.ms", 9, Some("1"))]);
        assert!(matches!(incremental_change(&none, |_| None, &unknown), Err(AlterError::InvalidRequest(_))));
    }

    #[test]
    fn validation_uses_the_setting_rules() {
        let topic = Target::Topic("t".into());
        assert!(topic.validate(&map(&[("retention.ms", "1000")])).is_ok());
        assert!(matches!(topic.validate(&map(&[("retention.ms", "soon")])), Err(AlterError::InvalidConfig(_))));
        let huge = "compact,".repeat(1000);
        assert!(matches!(topic.validate(&map(&[("cleanup.policy", &huge)])), Err(AlterError::InvalidConfig(_))));
        let broker = Target::Broker(String::new());
        assert!(broker.validate(&map(&[("log.retention.ms", "1000")])).is_ok());
        assert!(matches!(broker.validate(&map(&[("listeners", "x")])), Err(AlterError::InvalidConfig(_))));
    }
}
