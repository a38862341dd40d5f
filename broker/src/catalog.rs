//! The topics this broker hosts: names, ids, per-topic settings and partitions, persisted in
//! `<data-dir>/meta/topics.json` (written atomically) so they survive restarts.

use crate::error::BrokerError;
use crate::fsutil::{io_err, write_atomically};
use crate::partition::Partition;
use millrace_config::{BrokerConfig, EffectiveTopicConfig, TopicOverrides};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use uuid::Uuid;

/// One topic: immutable once built; adding partitions replaces the whole `Topic`.
pub struct Topic {
    /// Name.
    pub name: String,
    /// Kafka topic id (Metadata v10+, Fetch v13+).
    pub id: Uuid,
    /// Settings set on the topic itself.
    pub overrides: TopicOverrides,
    /// Settings in force.
    pub config: EffectiveTopicConfig,
    /// Partitions by index.
    pub partitions: Vec<Arc<Partition>>,
}

/// What CreateTopics reports about a (possibly only validated) topic.
pub struct CreatedTopic {
    /// Topic id (nil when only validated).
    pub id: Uuid,
    /// Partition count.
    pub partitions: i32,
    /// Settings in force.
    pub config: EffectiveTopicConfig,
    /// Settings given explicitly.
    pub overrides: TopicOverrides,
}

#[derive(Serialize, Deserialize)]
struct StoredTopic {
    id: Uuid,
    partitions: i32,
    configs: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Default)]
struct StoredCatalog {
    topics: BTreeMap<String, StoredTopic>,
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
    /// Bad replication factor.
    #[error("{0}")]
    InvalidReplicationFactor(String),
    /// Bad setting.
    #[error("{0}")]
    InvalidConfig(String),
    /// Storage failed.
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

/// Topics the broker itself writes (`__consumer_offsets`); clients may read but not write or delete them.
pub fn is_internal(name: &str) -> bool {
    name == crate::group::OFFSETS_TOPIC
}

/// Kafka's topic-name rules: 1..=249 characters from `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    if name.is_empty() {
        return Err(TopicError::InvalidName("topic name is empty".into()));
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

/// The set of topics, shared by every connection.
pub struct Catalog {
    data_dir: PathBuf,
    broker: BrokerConfig,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Serializes create/delete/alter so the persisted file matches memory.
    admin: tokio::sync::Mutex<()>,
}

fn partition_dir(data_dir: &Path, topic: &str, index: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{index}"))
}

impl Catalog {
    fn meta_file(data_dir: &Path) -> PathBuf {
        data_dir.join("meta").join("topics.json")
    }

    /// Loads the catalog and opens (recovering) every partition.
    pub fn open(broker: &BrokerConfig) -> Result<Catalog, BrokerError> {
        let data_dir = broker.data_dir.clone();
        let path = Self::meta_file(&data_dir);
        let stored: StoredCatalog = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| BrokerError::Metadata(format!("{} is not valid topic metadata: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StoredCatalog::default(),
            Err(e) => return Err(io_err(format!("reading {}", path.display()), e)),
        };
        remove_deleted_dirs(&data_dir);
        let mut topics = BTreeMap::new();
        for (name, stored) in stored.topics {
            let overrides = TopicOverrides::from_pairs(stored.configs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .map_err(|e| BrokerError::Metadata(format!("topic '{name}' in {}: {e}", path.display())))?;
            let config = overrides.resolve(broker);
            let mut partitions = Vec::with_capacity(stored.partitions.max(0) as usize);
            for index in 0..stored.partitions {
                let dir = partition_dir(&data_dir, &name, index);
                partitions.push(Arc::new(Partition::open(&name, index, dir, &config)?));
            }
            tracing::info!(topic = %name, partitions = stored.partitions, "opened topic");
            topics.insert(name.clone(), Arc::new(Topic { name, id: stored.id, overrides, config, partitions }));
        }
        Ok(Catalog {
            data_dir,
            broker: broker.clone(),
            topics: RwLock::new(topics),
            admin: tokio::sync::Mutex::new(()),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Topic>>> {
        self.topics.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Topic>>> {
        self.topics.write().unwrap_or_else(|p| p.into_inner())
    }

    /// A topic by name.
    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.read().get(name).cloned()
    }

    /// A topic by id.
    pub fn get_by_id(&self, id: &Uuid) -> Option<Arc<Topic>> {
        self.read().values().find(|t| &t.id == id).cloned()
    }

    /// A partition by topic name and index.
    pub fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        let topics = self.read();
        let topic = topics.get(topic)?;
        usize::try_from(index).ok().and_then(|i| topic.partitions.get(i)).cloned()
    }

    /// All topics, sorted by name.
    pub fn all(&self) -> Vec<Arc<Topic>> {
        self.read().values().cloned().collect()
    }

    fn persist(&self) -> Result<(), BrokerError> {
        let stored = StoredCatalog {
            topics: self
                .read()
                .values()
                .map(|t| {
                    (
                        t.name.clone(),
                        StoredTopic { id: t.id, partitions: t.partitions.len() as i32, configs: t.overrides.0.clone() },
                    )
                })
                .collect(),
        };
        let bytes = serde_json::to_vec_pretty(&stored).map_err(|e| BrokerError::Internal(e.to_string()))?;
        write_atomically(&Self::meta_file(&self.data_dir), &bytes)
    }

    /// Validates a creation request without creating anything; returns the resolved settings.
    pub fn check_create(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(String, String)],
    ) -> Result<(i32, TopicOverrides), TopicError> {
        validate_topic_name(name)?;
        if self.read().contains_key(name) {
            return Err(TopicError::AlreadyExists(name.to_string()));
        }
        let partitions = if partitions == -1 { self.broker.topics.default_partitions } else { partitions };
        if !(1..=100_000).contains(&partitions) {
            return Err(TopicError::InvalidPartitions(format!(
                "number of partitions must be between 1 and 100000, got {partitions}"
            )));
        }
        if replication_factor != -1 && replication_factor != 1 {
            return Err(TopicError::InvalidReplicationFactor(format!(
                "replication factor {replication_factor} is larger than the 1 available broker"
            )));
        }
        let overrides = TopicOverrides::from_pairs(configs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|e| TopicError::InvalidConfig(e.to_string()))?;
        Ok((partitions, overrides))
    }

    /// Creates a topic.
    pub async fn create(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(String, String)],
    ) -> Result<Arc<Topic>, TopicError> {
        let _admin = self.admin.lock().await;
        self.create_locked(name, partitions, replication_factor, configs)
    }

    /// Creates the topic if it does not exist; for internal topics at start-up, before any
    /// client can race with it.
    pub fn ensure_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: &[(String, String)],
    ) -> Result<Arc<Topic>, TopicError> {
        match self.get(name) {
            Some(topic) => Ok(topic),
            None => self.create_locked(name, partitions, -1, configs),
        }
    }

    /// Creation proper; the caller holds the admin lock (or runs before the server starts).
    fn create_locked(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(String, String)],
    ) -> Result<Arc<Topic>, TopicError> {
        let (partitions, overrides) = self.check_create(name, partitions, replication_factor, configs)?;
        let config = overrides.resolve(&self.broker);
        let mut opened = Vec::with_capacity(partitions as usize);
        for index in 0..partitions {
            let dir = partition_dir(&self.data_dir, name, index);
            // Leftovers from an older topic of the same name must not leak into the new one.
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(|e| io_err(format!("removing stale {}", dir.display()), e))?;
            }
            opened.push(Arc::new(Partition::open(name, index, dir, &config)?));
        }
        let topic =
            Arc::new(Topic { name: name.to_string(), id: Uuid::new_v4(), overrides, config, partitions: opened });
        self.write().insert(name.to_string(), topic.clone());
        self.persist()?;
        tracing::info!(topic = %name, partitions, "created topic");
        Ok(topic)
    }

    /// Creates a topic, or with `validate_only` only checks that it could be created.
    pub async fn create_or_check(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(String, String)],
        validate_only: bool,
    ) -> Result<CreatedTopic, TopicError> {
        if validate_only {
            let (partitions, overrides) = self.check_create(name, partitions, replication_factor, configs)?;
            let config = overrides.resolve(&self.broker);
            return Ok(CreatedTopic { id: Uuid::nil(), partitions, config, overrides });
        }
        let topic = self.create(name, partitions, replication_factor, configs).await?;
        Ok(CreatedTopic {
            id: topic.id,
            partitions: topic.partitions.len() as i32,
            config: topic.config.clone(),
            overrides: topic.overrides.clone(),
        })
    }

    /// Returns the topic, creating it with defaults when `auto_create` allows.
    pub async fn get_or_auto_create(&self, name: &str) -> Result<Option<Arc<Topic>>, TopicError> {
        if let Some(topic) = self.get(name) {
            return Ok(Some(topic));
        }
        if !self.broker.topics.auto_create {
            return Ok(None);
        }
        match self.create(name, -1, -1, &[]).await {
            Ok(topic) => Ok(Some(topic)),
            // Another connection created it first.
            Err(TopicError::AlreadyExists(_)) => Ok(self.get(name)),
            Err(e) => Err(e),
        }
    }

    /// Deletes a topic and, in the background, its data.
    pub async fn delete(&self, name: &str) -> Result<Uuid, TopicError> {
        if is_internal(name) {
            return Err(TopicError::InvalidName(format!("'{name}' is an internal topic and cannot be deleted")));
        }
        let _admin = self.admin.lock().await;
        let topic = self.write().remove(name).ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        self.persist()?;
        // Rename first (Kafka's `-delete` suffix) so a crash mid-delete never resurrects the data.
        let mut doomed = Vec::new();
        for partition in &topic.partitions {
            let target = self.data_dir.join(format!("{}-{}.{}-delete", name, partition.index, topic.id.simple()));
            match std::fs::rename(&partition.dir, &target) {
                Ok(()) => doomed.push(target),
                Err(e) => {
                    tracing::warn!(dir = %partition.dir.display(), error = %e, "could not rename partition for deletion")
                }
            }
        }
        tokio::task::spawn_blocking(move || {
            for dir in doomed {
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    tracing::warn!(dir = %dir.display(), error = %e, "could not remove deleted partition");
                }
            }
        });
        tracing::info!(topic = %name, "deleted topic");
        Ok(topic.id)
    }

    /// Grows a topic to `count` partitions.
    pub async fn add_partitions(&self, name: &str, count: i32, validate_only: bool) -> Result<(), TopicError> {
        let _admin = self.admin.lock().await;
        let topic = self.get(name).ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        let current = topic.partitions.len() as i32;
        if count <= current {
            return Err(TopicError::InvalidPartitions(format!(
                "topic '{name}' has {current} partitions; the new count {count} must be larger"
            )));
        }
        if count > 100_000 {
            return Err(TopicError::InvalidPartitions(format!("{count} partitions is more than the 100000 allowed")));
        }
        if validate_only {
            return Ok(());
        }
        let mut partitions = topic.partitions.clone();
        for index in current..count {
            let dir = partition_dir(&self.data_dir, name, index);
            partitions.push(Arc::new(Partition::open(name, index, dir, &topic.config)?));
        }
        let grown = Arc::new(Topic {
            name: topic.name.clone(),
            id: topic.id,
            overrides: topic.overrides.clone(),
            config: topic.config.clone(),
            partitions,
        });
        self.write().insert(name.to_string(), grown);
        self.persist()?;
        tracing::info!(topic = %name, from = current, to = count, "added partitions");
        Ok(())
    }

    /// Empties the catalog and closes every log cleanly (shutdown).
    pub fn close_all(&self) {
        let topics = std::mem::take(&mut *self.write());
        for (_, topic) in topics {
            let Ok(topic) = Arc::try_unwrap(topic) else {
                tracing::warn!("topic still in use at shutdown; its logs recover on next start");
                continue;
            };
            for partition in topic.partitions {
                match Arc::try_unwrap(partition) {
                    Ok(partition) => {
                        let name = format!("{}-{}", partition.topic, partition.index);
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
    }
}
