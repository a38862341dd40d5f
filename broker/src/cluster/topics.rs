//! Topic administration through the metadata quorum: validation, replica placement, the
//! proposal, and waiting until this broker's own catalog shows the result (so a client that
//! creates a topic and then produces through the same broker finds it).

use super::placement;
use super::Quorum;
use crate::catalog::{parse_overrides, validate_topic_name, Catalog, TopicError};
use crate::controller::{ControllerError, MetadataCommand, MetadataError, PartitionAssignment};
use millrace_config::{BrokerConfig, EffectiveTopicConfig, TopicOverrides};
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;

/// How long an admin request waits for the quorum.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Most partitions one topic may have.
const MAX_PARTITIONS: i32 = 100_000;

/// What CreateTopics reports about a (possibly only validated) topic.
pub struct CreatedTopic {
    /// Topic id (nil when only validated).
    pub id: Uuid,
    /// Partition count.
    pub partitions: i32,
    /// Replication factor.
    pub replication_factor: i16,
    /// Settings in force.
    pub config: EffectiveTopicConfig,
    /// Settings given explicitly.
    pub overrides: TopicOverrides,
}

/// A topic creation request.
pub struct NewTopic<'a> {
    /// Name.
    pub name: &'a str,
    /// Partitions, -1 for the default.
    pub partitions: i32,
    /// Replication factor, -1 for the default.
    pub replication_factor: i16,
    /// Explicit replica lists per partition (then `partitions`/`replication_factor` are -1).
    pub assignments: Vec<Vec<i32>>,
    /// Topic-level settings.
    pub configs: &'a [(String, String)],
}

fn from_controller(name: &str, e: ControllerError) -> TopicError {
    match e {
        ControllerError::Rejected(MetadataError::TopicExists(_)) => TopicError::AlreadyExists(name.to_string()),
        ControllerError::Rejected(MetadataError::UnknownTopic(_)) => TopicError::Unknown(name.to_string()),
        ControllerError::Rejected(MetadataError::InvalidRequest(why)) => TopicError::InvalidReplicaAssignment(why),
        ControllerError::Rejected(MetadataError::BrokerNotRegistered(id)) => {
            TopicError::InvalidReplicaAssignment(format!("broker {id} is not registered"))
        }
        ControllerError::Rejected(MetadataError::IneligibleReplica(why)) => TopicError::InvalidReplicaAssignment(why),
        other => TopicError::NotController(other.to_string()),
    }
}

/// Unfenced brokers, sorted.
pub fn live_brokers<Q: Quorum + ?Sized>(q: &Q) -> Vec<i32> {
    q.metadata().brokers.values().filter(|b| !b.fenced).map(|b| b.id).collect()
}

fn placement<Q: Quorum + ?Sized>(
    q: &Q,
    name: &str,
    first_index: i32,
    count: i32,
    replication_factor: usize,
    explicit: Vec<Vec<i32>>,
) -> Result<Vec<PartitionAssignment>, TopicError> {
    if !explicit.is_empty() {
        let metadata = q.metadata();
        for replicas in &explicit {
            if replicas.is_empty() {
                return Err(TopicError::InvalidReplicaAssignment("a partition needs at least one replica".into()));
            }
            if let Some(unknown) = replicas.iter().find(|r| !metadata.brokers.contains_key(r)) {
                return Err(TopicError::InvalidReplicaAssignment(format!("broker {unknown} is not registered")));
            }
        }
        return Ok(explicit.into_iter().map(|replicas| PartitionAssignment { replicas }).collect());
    }
    placement::assign(&live_brokers(q), first_index, count, replication_factor, placement::seed(name))
        .map_err(TopicError::InvalidReplicationFactor)
}

/// Creates a topic (or with `validate_only` checks that it could be created).
pub async fn create_topic<Q: Quorum + ?Sized>(
    q: &Q,
    catalog: &Catalog,
    defaults: &BrokerConfig,
    topic: NewTopic<'_>,
    validate_only: bool,
) -> Result<CreatedTopic, TopicError> {
    let name = topic.name;
    validate_topic_name(name)?;
    if q.metadata().topics.contains_key(name) {
        return Err(TopicError::AlreadyExists(name.to_string()));
    }
    let explicit = !topic.assignments.is_empty();
    let partitions = if explicit {
        topic.assignments.len() as i32
    } else if topic.partitions == -1 {
        defaults.topics.default_partitions
    } else {
        topic.partitions
    };
    if !(1..=MAX_PARTITIONS).contains(&partitions) {
        return Err(TopicError::InvalidPartitions(format!(
            "number of partitions must be between 1 and {MAX_PARTITIONS}, got {partitions}"
        )));
    }
    // The broker's own topics count towards the limit but are never refused by it.
    if !crate::catalog::is_internal(name) {
        check_cluster_partitions(q, partitions, defaults.topics.max_partitions)?;
    }
    let replication_factor = if explicit {
        topic.assignments[0].len() as i16
    } else if topic.replication_factor == -1 {
        defaults.default_replication_factor().min(live_brokers(q).len().max(1) as i16)
    } else {
        topic.replication_factor
    };
    if replication_factor < 1 {
        return Err(TopicError::InvalidReplicationFactor(format!(
            "replication factor must be at least 1, got {replication_factor}"
        )));
    }
    let overrides = parse_overrides(topic.configs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let config = catalog.resolve(&q.metadata(), &overrides);
    if config.min_insync_replicas > i32::from(replication_factor) {
        tracing::warn!(
            topic = %name, min_insync = config.min_insync_replicas, replication_factor,
            "min.insync.replicas exceeds the replication factor: acks=all writes will always fail"
        );
    }
    let assignments = placement(q, name, 0, partitions, replication_factor as usize, topic.assignments)?;
    if validate_only {
        return Ok(CreatedTopic { id: Uuid::nil(), partitions, replication_factor, config, overrides });
    }
    let topic_id = Uuid::new_v4();
    let cmd = MetadataCommand::CreateTopic {
        name: name.to_string(),
        topic_id,
        partitions: assignments,
        configs: overrides.0.clone().into_iter().collect::<BTreeMap<_, _>>(),
    };
    match q.propose(cmd, ADMIN_TIMEOUT).await {
        Ok(_) => {}
        // A retried proposal that had in fact been committed comes back as "exists" with our id.
        Err(ControllerError::Rejected(MetadataError::TopicExists(_)))
            if q.metadata().topics.get(name).is_some_and(|t| t.topic_id == topic_id) => {}
        Err(e) => return Err(from_controller(name, e)),
    }
    wait_hosted(q, catalog, name, topic_id).await;
    tracing::info!(topic = %name, partitions, replication_factor, "created topic");
    Ok(CreatedTopic { id: topic_id, partitions, replication_factor, config, overrides })
}

/// Waits (bounded) until this broker's catalog reflects the topic with id `topic_id`.
async fn wait_hosted<Q: Quorum + ?Sized>(q: &Q, catalog: &Catalog, name: &str, topic_id: Uuid) {
    let deadline = tokio::time::Instant::now() + ADMIN_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if hosted_with_roles(q, catalog, name, topic_id) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tracing::warn!(topic = %name, "topic created but not yet visible on this broker");
}

/// Whether the local catalog holds the topic and every partition this broker leads per the
/// metadata has taken the leader role (the catalog is applied before roles, so a produce right
/// after CreateTopics could otherwise see NOT_LEADER_OR_FOLLOWER).
fn hosted_with_roles<Q: Quorum + ?Sized>(q: &Q, catalog: &Catalog, name: &str, topic_id: Uuid) -> bool {
    let Some(topic) = catalog.get(name).filter(|t| t.id == topic_id) else { return false };
    let metadata = q.metadata();
    let Some(meta) = metadata.topics.get(name) else { return false };
    meta.partitions.iter().enumerate().all(|(index, p)| {
        p.leader != q.node_id()
            || topic
                .partition(index as i32)
                .is_some_and(|local| local.leader_epoch_if_leader().is_some_and(|epoch| epoch >= p.leader_epoch))
    })
}

/// Refuses `adding` partitions when the cluster would then hold more than `max`.
fn check_cluster_partitions<Q: Quorum + ?Sized>(q: &Q, adding: i32, max: u32) -> Result<(), TopicError> {
    let existing: usize = q.metadata().topics.values().map(|t| t.partitions.len()).sum();
    let total = existing as u64 + u64::try_from(adding).unwrap_or(0);
    if total > u64::from(max) {
        return Err(TopicError::PolicyViolation(format!(
            "the cluster holds {existing} partitions; {adding} more would pass topics.max_partitions = {max}"
        )));
    }
    Ok(())
}

/// Deletes a topic; returns its id.
pub async fn delete_topic<Q: Quorum + ?Sized>(q: &Q, name: &str) -> Result<Uuid, TopicError> {
    if crate::catalog::is_internal(name) || crate::catalog::is_reserved(name) {
        return Err(TopicError::InvalidName(format!("'{name}' is an internal topic and cannot be deleted")));
    }
    let id = q.metadata().topics.get(name).map(|t| t.topic_id).ok_or_else(|| TopicError::Unknown(name.into()))?;
    q.propose(MetadataCommand::DeleteTopic { name: name.to_string() }, ADMIN_TIMEOUT)
        .await
        .map_err(|e| from_controller(name, e))?;
    tracing::info!(topic = %name, "deleted topic");
    Ok(id)
}

/// Grows a topic to `count` partitions.
pub async fn add_partitions<Q: Quorum + ?Sized>(
    q: &Q,
    catalog: &Catalog,
    name: &str,
    count: i32,
    explicit: Vec<Vec<i32>>,
    validate_only: bool,
    max_partitions: u32,
) -> Result<(), TopicError> {
    let metadata = q.metadata();
    let topic = metadata.topics.get(name).ok_or_else(|| TopicError::Unknown(name.to_string()))?;
    let current = topic.partitions.len() as i32;
    if count <= current {
        return Err(TopicError::InvalidPartitions(format!(
            "topic '{name}' has {current} partitions; the new count {count} must be larger"
        )));
    }
    if count > MAX_PARTITIONS {
        return Err(TopicError::InvalidPartitions(format!(
            "{count} partitions is more than the {MAX_PARTITIONS} allowed"
        )));
    }
    check_cluster_partitions(q, count - current, max_partitions)?;
    if !explicit.is_empty() && explicit.len() as i32 != count - current {
        return Err(TopicError::InvalidReplicaAssignment(format!(
            "{} assignments given for {} new partitions",
            explicit.len(),
            count - current
        )));
    }
    let replication_factor = topic.partitions.first().map_or(1, |p| p.replicas.len());
    let new = placement(q, name, current, count - current, replication_factor, explicit)?;
    if validate_only {
        return Ok(());
    }
    q.propose(MetadataCommand::CreatePartitions { name: name.to_string(), new }, ADMIN_TIMEOUT)
        .await
        .map_err(|e| from_controller(name, e))?;
    wait_hosted(q, catalog, name, topic.topic_id).await;
    tracing::info!(topic = %name, from = current, to = count, "added partitions");
    Ok(())
}
