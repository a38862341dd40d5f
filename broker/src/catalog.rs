//! The topics and partition replicas this broker hosts, materialized from the controller's
//! metadata: [`Catalog::apply`] opens the logs of partitions assigned here, applies config
//! changes, and deletes the data of topics and replicas that went away. Each partition directory
//! carries Kafka's `partition.metadata` file with its topic id, so a topic deleted and re-created
//! under the same name while this broker was down never mixes old data into the new topic.

use crate::controller::MetadataState;
use crate::error::BrokerError;
use crate::fsutil::{io_err, write_atomically};
use crate::log::LogError;
use crate::log_dirs::{LogDir, LogDirs};
use crate::partition::Partition;
use millrace_config::{BrokerConfig, EffectiveTopicConfig, TopicOverrides};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use uuid::Uuid;

/// One topic as hosted here: immutable once built; any change replaces the whole `Topic`.
pub struct Topic {
    /// Name.
    pub name: String,
    /// Kafka topic id (Metadata v10+, Fetch v13+).
    pub id: Uuid,
    /// Settings set on the topic itself.
    pub overrides: TopicOverrides,
    /// Settings in force.
    pub config: EffectiveTopicConfig,
    /// Partitions of the topic in the cluster.
    pub partition_count: i32,
    /// The partitions with a replica on this broker, by index.
    pub partitions: BTreeMap<i32, Arc<Partition>>,
}

impl Topic {
    /// This broker's replica of partition `index`, if it has one.
    pub fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        self.partitions.get(&index)
    }
}

/// Why a topic operation was refused; each maps to a Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// Name not allowed.
    #[error("{0}")]
    InvalidName(String),
    /// Exists already.
    #[error("topic '{0}' already exists")]
    AlreadyExists(String),
    /// Unknown topic.
    #[error("topic '{0}' does not exist")]
    Unknown(String),
    /// Bad partition count.
    #[error("{0}")]
    InvalidPartitions(String),
    /// Refused by a limit of the cluster (`topics.max_partitions`, `topics.max_partitions_per_request`).
    #[error("{0}")]
    PolicyViolation(String),
    /// Bad replication factor.
    #[error("{0}")]
    InvalidReplicationFactor(String),
    /// Bad replica assignment.
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    /// Bad setting.
    #[error("{0}")]
    InvalidConfig(String),
    /// The request contradicts itself.
    #[error("{0}")]
    InvalidRequest(String),
    /// The metadata quorum could not take the change now (no active controller, timeout).
    #[error("{0}")]
    NotController(String),
    /// The client's ACLs do not allow it.
    #[error("{0}")]
    Unauthorized(String),
    /// Storage failed.
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

impl TopicError {
    /// The Kafka error code for a refused topic operation.
    pub fn error_code(&self) -> kafka_protocol::error::ResponseError {
        use kafka_protocol::error::ResponseError;
        match self {
            TopicError::InvalidName(_) => ResponseError::InvalidTopicException,
            TopicError::AlreadyExists(_) => ResponseError::TopicAlreadyExists,
            TopicError::Unknown(_) => ResponseError::UnknownTopicOrPartition,
            TopicError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
            TopicError::PolicyViolation(_) => ResponseError::PolicyViolation,
            TopicError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
            TopicError::InvalidConfig(_) => ResponseError::InvalidConfig,
            TopicError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
            TopicError::InvalidRequest(_) => ResponseError::InvalidRequest,
            TopicError::NotController(_) => ResponseError::NotController,
            TopicError::Unauthorized(_) => ResponseError::TopicAuthorizationFailed,
            TopicError::Broker(e) => e.error_code(),
        }
    }
}

/// Topics the broker itself writes (`__consumer_offsets`); clients may read but not create,
/// write, grow or delete them.
pub fn is_internal(name: &str) -> bool {
    name == crate::group::OFFSETS_TOPIC
}

/// KRaft's name for the metadata log: never a topic, whoever asks.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// Names no topic may take.
pub fn is_reserved(name: &str) -> bool {
    name == METADATA_TOPIC
}

/// Kafka's topic-name rules: 1..=249 characters from `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    if name.is_empty() {
        return Err(TopicError::InvalidName("topic name is empty".into()));
    }
    if is_reserved(name) {
        return Err(TopicError::InvalidName(format!("'{name}' is reserved for the metadata quorum")));
    }
    if name == "." || name == ".." {
        return Err(TopicError::InvalidName(format!("topic name cannot be '{name}'")));
    }
    if name.len() > 249 {
        return Err(TopicError::InvalidName(format!(
            "topic name is {} characters long; the maximum is 249",
            name.len()
        )));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(TopicError::InvalidName(format!(
            "topic name '{name}' contains '{bad}'; only ASCII letters, digits, '.', '_' and '-' are allowed"
        )));
    }
    Ok(())
}

/// Validates topic-level settings given as Kafka key/value pairs.
pub fn parse_overrides<'a>(
    configs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<TopicOverrides, TopicError> {
    TopicOverrides::from_pairs(configs).map_err(|e| TopicError::InvalidConfig(e.to_string()))
}

/// What one [`Catalog::apply`] changed.
#[derive(Default)]
pub struct Applied {
    /// Partitions whose replica was opened here.
    pub opened: Vec<Arc<Partition>>,
    /// Partitions whose replica was removed from here (data being deleted).
    pub removed: Vec<Arc<Partition>>,
}

/// The hosted topics, shared by every connection.
pub struct Catalog {
    log_dirs: Arc<LogDirs>,
    broker: BrokerConfig,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Serializes [`Catalog::apply`] calls.
    applying: std::sync::Mutex<()>,
}

fn partition_dir(data_dir: &Path, topic: &str, index: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{index}"))
}

pub(crate) const PARTITION_METADATA: &str = "partition.metadata";
/// Kafka's high-watermark checkpoint file, one per log directory.
const HW_CHECKPOINT: &str = "replication-offset-checkpoint";
/// Kafka's log-start-offset checkpoint file (moved by DeleteRecords), one per log directory.
const LOG_START_CHECKPOINT: &str = "log-start-offset-checkpoint";

/// Reads the topic id from a partition directory's `partition.metadata`, if present.
/// Whether `dir` holds nothing, or only the temporary file of a `partition.metadata` this broker
/// was writing when it was killed: a partition whose creation never finished, safe to take up.
fn is_empty_dir(dir: &Path) -> bool {
    let unfinished = dir.join(PARTITION_METADATA).with_extension("tmp");
    std::fs::read_dir(dir).is_ok_and(|entries| entries.filter_map(Result::ok).all(|e| e.path() == unfinished))
}

fn stored_topic_id(dir: &Path) -> Option<Uuid> {
    let text = std::fs::read_to_string(dir.join(PARTITION_METADATA)).ok()?;
    text.lines().find_map(|l| l.strip_prefix("topic_id:")).and_then(|id| Uuid::parse_str(id.trim()).ok())
}

impl Catalog {
    /// An empty catalog over the broker's log directories; finishes deletions a crash
    /// interrupted. A directory that cannot be created or read starts offline.
    pub fn new(broker: &BrokerConfig) -> Catalog {
        let log_dirs = Arc::new(LogDirs::new(broker.partition_dirs()));
        for dir in log_dirs.all() {
            match std::fs::create_dir_all(dir.path()).and_then(|()| std::fs::read_dir(dir.path()).map(drop)) {
                Ok(()) => remove_deleted_dirs(dir.path()),
                Err(e) => {
                    dir.mark_offline(format!("opening {}: {e}", dir.path().display()));
                }
            }
        }
        Catalog {
            log_dirs,
            broker: broker.clone(),
            topics: RwLock::new(BTreeMap::new()),
            applying: std::sync::Mutex::new(()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Topic>>> {
        self.topics.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Topic>>> {
        self.topics.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The log directories and their health.
    pub fn log_dirs(&self) -> &Arc<LogDirs> {
        &self.log_dirs
    }

    /// The directory holding (or to hold) a replica: the one already holding its data, else
    /// the emptiest online one. Checked in every directory, offline ones too, so a replica on a
    /// failed disk is reported offline rather than started empty on another disk.
    fn locate(&self, topic: &str, index: i32) -> Option<Arc<LogDir>> {
        let existing = self.log_dirs.all().iter().find(|d| {
            let dir = partition_dir(d.path(), topic, index);
            dir.exists() && (stored_topic_id(&dir).is_some() || d.failure().is_some())
        });
        existing.or_else(|| self.log_dirs.place()).cloned()
    }

    /// Opens one replica assigned here in `log_dir`: checks its directory, writes its
    /// `partition.metadata`, recovers its log, restores its high watermark. `None` when it is
    /// not opened (a foreign directory in the way).
    fn open_replica(
        &self,
        name: &str,
        index: i32,
        topic_id: Uuid,
        log_dir: &Arc<LogDir>,
        config: &EffectiveTopicConfig,
    ) -> Result<Option<Partition>, BrokerError> {
        let dir = partition_dir(log_dir.path(), name, index);
        if dir.exists() && stored_topic_id(&dir).is_none() && !is_empty_dir(&dir) {
            // Not a partition directory (no partition.metadata): never adopt or delete
            // what some other part of the broker, or an operator, keeps there.
            tracing::error!(dir = %dir.display(), "a directory without partition.metadata is in the way of a partition; not opening it");
            return Ok(None);
        }
        if dir.exists() && stored_topic_id(&dir).is_some_and(|id| id != topic_id) {
            tracing::warn!(dir = %dir.display(), "partition data belongs to an older topic of the same name; removing it");
            std::fs::remove_dir_all(&dir).map_err(|e| io_err(format!("removing stale {}", dir.display()), e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| io_err(format!("creating {}", dir.display()), e))?;
        if stored_topic_id(&dir).is_none() {
            let text = format!("version: 0\ntopic_id: {topic_id}\n");
            write_atomically(&dir.join(PARTITION_METADATA), text.as_bytes())?;
        }
        let partition = Partition::open(name, index, dir, log_dir.clone(), config)?;
        if let Some(hw) = checkpointed_offset(log_dir.path(), HW_CHECKPOINT, name, index) {
            partition.restore_high_watermark(hw);
        }
        if let Some(start) = checkpointed_offset(log_dir.path(), LOG_START_CHECKPOINT, name, index) {
            partition.restore_log_start_offset(start)?;
        }
        Ok(Some(partition))
    }

    /// A topic by name.
    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.read().get(name).cloned()
    }

    /// A topic by id.
    pub fn get_by_id(&self, id: &Uuid) -> Option<Arc<Topic>> {
        self.read().values().find(|t| &t.id == id).cloned()
    }

    /// This broker's replica of a partition.
    pub fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.read().get(topic)?.partition(index).cloned()
    }

    /// All topics, sorted by name.
    pub fn all(&self) -> Vec<Arc<Topic>> {
        self.read().values().cloned().collect()
    }

    /// Every hosted partition replica.
    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.read().values().flat_map(|t| t.partitions.values().cloned()).collect()
    }

    /// Settings a topic with `overrides` has on this broker under `state`'s dynamic broker
    /// configs.
    pub fn resolve(&self, state: &MetadataState, overrides: &TopicOverrides) -> EffectiveTopicConfig {
        overrides.over(&self.dynamic_defaults(state)).resolve(&self.broker)
    }

    /// The topic defaults `state`'s dynamic broker configs set on this broker (`log.retention.ms`
    /// as `retention.ms`, …).
    pub fn dynamic_defaults(&self, state: &MetadataState) -> TopicOverrides {
        let configs = state.dynamic_broker_configs(self.broker.node_id);
        TopicOverrides::from_broker_pairs(configs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap_or_else(|e| {
            tracing::error!(error = %e, "dynamic broker settings in the metadata are invalid; using the static ones");
            TopicOverrides::default()
        })
    }

    /// Brings the hosted replicas in line with `state` for broker `node_id`: opens (recovering)
    /// the logs of partitions assigned here, applies changed settings, and deletes the data of
    /// replicas no longer assigned here. Blocking (file I/O).
    pub fn apply(&self, state: &MetadataState, node_id: i32) -> Result<Applied, BrokerError> {
        let _serial = self.applying.lock().unwrap_or_else(|p| p.into_inner());
        let mut applied = Applied::default();
        let current = self.read().clone();
        let mut next = BTreeMap::new();
        let dynamic = self.dynamic_defaults(state);
        for (name, meta) in &state.topics {
            let old = current.get(name).filter(|t| t.id == meta.topic_id);
            let overrides = match TopicOverrides::from_pairs(meta.configs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            {
                Ok(o) => o,
                Err(e) => {
                    tracing::error!(topic = %name, error = %e, "topic settings in the metadata are invalid; using defaults");
                    TopicOverrides::default()
                }
            };
            let config = overrides.over(&dynamic).resolve(&self.broker);
            let mut partitions = BTreeMap::new();
            for (index, p) in meta.partitions.iter().enumerate() {
                let index = index as i32;
                if !p.replicas.contains(&node_id) {
                    continue;
                }
                if let Some(existing) = old.and_then(|t| t.partitions.get(&index)) {
                    if old.is_some_and(|t| t.config != config) {
                        existing.set_log_config(&config);
                    }
                    partitions.insert(index, existing.clone());
                    continue;
                }
                let Some(log_dir) = self.locate(name, index) else {
                    // Every directory is offline: the replica is offline here (reported as such).
                    if let Some(first) = self.log_dirs.all().first() {
                        first.add_replica(name, index);
                    }
                    continue;
                };
                log_dir.add_replica(name, index);
                if log_dir.failure().is_some() {
                    continue;
                }
                let partition = match self.open_replica(name, index, meta.topic_id, &log_dir, &config) {
                    Ok(Some(partition)) => partition,
                    Ok(None) => {
                        log_dir.remove_replica(name, index);
                        continue;
                    }
                    // One replica failing to open must not stop the others: a storage error
                    // takes its directory offline (reported, leadership moves), anything else
                    // leaves that replica closed.
                    Err(e) => {
                        match &e {
                            BrokerError::Io { .. } | BrokerError::Log(LogError::Io { .. }) => {
                                log_dir.mark_offline(format!("opening {name}-{index}: {e}"));
                            }
                            _ => {
                                tracing::error!(partition = %format!("{name}-{index}"), error = %e, "could not open partition replica");
                                log_dir.remove_replica(name, index);
                            }
                        }
                        continue;
                    }
                };
                let partition = Arc::new(partition);
                applied.opened.push(partition.clone());
                partitions.insert(index, partition);
            }
            if let Some(old) = old {
                applied
                    .removed
                    .extend(old.partitions.iter().filter(|(i, _)| !partitions.contains_key(i)).map(|(_, p)| p.clone()));
            }
            let topic = Topic {
                name: name.clone(),
                id: meta.topic_id,
                overrides,
                config,
                partition_count: meta.partitions.len() as i32,
                partitions,
            };
            next.insert(name.clone(), Arc::new(topic));
        }
        for (name, old) in &current {
            if next.get(name).is_none_or(|t| t.id != old.id) {
                applied.removed.extend(old.partitions.values().cloned());
            }
        }
        *self.write() = next;
        for partition in &applied.removed {
            self.delete_replica(partition);
        }
        for partition in &applied.opened {
            tracing::info!(partition = %partition.name(), "opened partition replica");
        }
        Ok(applied)
    }

    /// Writes each online log directory's `replication-offset-checkpoint` with the high
    /// watermarks of its partitions and `log-start-offset-checkpoint` with their log start
    /// offsets (Kafka's files and format), so a restarted replica does not start from 0 (consumers
    /// of a partition it then leads keep seeing what was committed before) and records removed
    /// by DeleteRecords stay removed. A directory that cannot take the write goes offline.
    pub fn checkpoint_offsets(&self) -> Result<(), BrokerError> {
        let partitions = self.all_partitions();
        let mut first_error = None;
        for dir in self.log_dirs.all().iter().filter(|d| d.failure().is_none()) {
            let here: Vec<&Arc<Partition>> = partitions.iter().filter(|p| Arc::ptr_eq(p.log_dir(), dir)).collect();
            let mut high_watermarks = read_checkpoint(dir.path(), HW_CHECKPOINT);
            let mut log_starts = read_checkpoint(dir.path(), LOG_START_CHECKPOINT);
            // Replicas not opened (yet: they open as the metadata arrives after a start) keep
            // their entries while their directory is there.
            let kept = |(topic, index): &(String, i32), _: &mut i64| partition_dir(dir.path(), topic, *index).is_dir();
            high_watermarks.retain(kept);
            log_starts.retain(kept);
            for p in here {
                high_watermarks.insert((p.topic.clone(), p.index), p.high_watermark());
                log_starts.insert((p.topic.clone(), p.index), p.offsets().0);
            }
            let written =
                write_atomically(&dir.path().join(HW_CHECKPOINT), checkpoint_text(&high_watermarks).as_bytes())
                    .and_then(|()| {
                        write_atomically(
                            &dir.path().join(LOG_START_CHECKPOINT),
                            checkpoint_text(&log_starts).as_bytes(),
                        )
                    });
            if let Err(e) = written {
                dir.mark_offline(format!("writing offset checkpoints: {e}"));
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Renames the replica's directory aside (Kafka's `-delete` suffix, so a crash mid-delete
    /// never resurrects it) and removes it in the background.
    fn delete_replica(&self, partition: &Partition) {
        partition.log_dir().remove_replica(&partition.topic, partition.index);
        if partition.is_offline() {
            // A failed disk gets no more writes; the data goes when the broker restarts and
            // the replica is no longer assigned here.
            return;
        }
        let suffix = Uuid::new_v4().simple();
        let target =
            partition.log_dir().path().join(format!("{}-{}.{suffix}-delete", partition.topic, partition.index));
        match std::fs::rename(&partition.dir, &target) {
            Ok(()) => {
                tracing::info!(partition = %partition.name(), "deleting partition replica");
                std::thread::spawn(move || {
                    if let Err(e) = std::fs::remove_dir_all(&target) {
                        tracing::warn!(dir = %target.display(), error = %e, "could not remove deleted partition");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(dir = %partition.dir.display(), error = %e, "could not rename partition for deletion")
            }
        }
    }

    /// Empties the catalog and closes every log cleanly (shutdown).
    pub fn close_all(&self) {
        let topics = std::mem::take(&mut *self.write());
        for (_, topic) in topics {
            let Ok(topic) = Arc::try_unwrap(topic) else {
                tracing::warn!("topic still in use at shutdown; its logs recover on next start");
                continue;
            };
            for (_, partition) in topic.partitions {
                match Arc::try_unwrap(partition) {
                    Ok(partition) => {
                        let name = partition.name();
                        if let Err(e) = partition.close() {
                            tracing::warn!(partition = %name, error = %e, "closing partition failed");
                        }
                    }
                    Err(_) => tracing::warn!("partition still in use at shutdown; it recovers on next start"),
                }
            }
        }
    }
}

/// The high watermark `<log-dir>/replication-offset-checkpoint` recorded for a partition.
/// The entries of a Kafka offset checkpoint file (`0`, a count, then `topic partition offset`
/// lines); empty when the file is missing or unreadable.
fn read_checkpoint(log_dir: &Path, file: &str) -> BTreeMap<(String, i32), i64> {
    let Ok(text) = std::fs::read_to_string(log_dir.join(file)) else { return BTreeMap::new() };
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (t, p, offset) = (fields.next()?, fields.next()?, fields.next()?);
            Some(((t.to_string(), p.parse().ok()?), offset.parse().ok()?))
        })
        .collect()
}

fn checkpoint_text(entries: &BTreeMap<(String, i32), i64>) -> String {
    let mut text = format!("0\n{}\n", entries.len());
    for ((topic, index), offset) in entries {
        text.push_str(&format!("{topic} {index} {offset}\n"));
    }
    text
}

fn checkpointed_offset(log_dir: &Path, file: &str, topic: &str, index: i32) -> Option<i64> {
    read_checkpoint(log_dir, file).get(&(topic.to_string(), index)).copied()
}

/// Finishes deletions a crash interrupted.
fn remove_deleted_dirs(data_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(data_dir) else { return };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().ends_with("-delete") {
            if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                tracing::warn!(dir = %entry.path().display(), error = %e, "could not remove deleted partition");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("web-logs.v1_a").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a/b").is_err());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
        assert!(validate_topic_name(&"x".repeat(249)).is_ok());
        assert!(validate_topic_name("__cluster_metadata").is_err());
    }

    #[test]
    fn a_checkpoint_keeps_the_offsets_of_replicas_not_opened_yet() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let config = BrokerConfig { data_dir: dir.path().to_path_buf(), ..BrokerConfig::default() };
        let catalog = Catalog::new(&config);
        // Written before a restart: t-0 is still on disk, gone-0 was deleted meanwhile.
        std::fs::create_dir_all(dir.path().join("t-0")).unwrap_or_default();
        let before = BTreeMap::from([(("t".to_string(), 0), 40), (("gone".to_string(), 0), 7)]);
        write_atomically(&dir.path().join(LOG_START_CHECKPOINT), checkpoint_text(&before).as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        // The first checkpoint after the start runs before the metadata opened t-0.
        catalog.checkpoint_offsets().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(checkpointed_offset(dir.path(), LOG_START_CHECKPOINT, "t", 0), Some(40));
        assert_eq!(checkpointed_offset(dir.path(), LOG_START_CHECKPOINT, "gone", 0), None);
    }

    #[test]
    fn a_partition_directory_whose_creation_was_cut_short_is_taken_up_and_others_are_not() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path();
        assert!(is_empty_dir(path));
        // Killed while writing partition.metadata (seen in a cluster test): only its temp file.
        std::fs::write(path.join(PARTITION_METADATA).with_extension("tmp"), b"version: 0\n").unwrap_or_default();
        assert!(is_empty_dir(path), "our own unfinished creation");
        std::fs::write(path.join("notes.txt"), b"an operator's").unwrap_or_default();
        assert!(!is_empty_dir(path), "anything else is not ours to take");
    }
}
