//! Per-topic settings under their Kafka names (`retention.ms`, `segment.bytes`, …), as sent by
//! CreateTopics and `millrace topic create --topic-config KEY=VALUE`, resolved against broker defaults.

use crate::broker::{BrokerConfig, FlushMode};
use crate::error::ConfigError;
use std::collections::BTreeMap;

/// One supported topic-level key: its Kafka name and what it means.
pub struct TopicKey {
    /// Kafka's name for the key.
    pub name: &'static str,
    /// One-line description of the key.
    pub doc: &'static str,
}

/// Every topic-level key the broker understands.
pub const TOPIC_KEYS: &[TopicKey] = &[
    TopicKey {
        name: "cleanup.policy",
        doc: "delete (retention removes old segments), compact (keep the latest record per key), or compact,delete",
    },
    TopicKey { name: "delete.retention.ms", doc: "how long tombstones stay readable on compacted topics" },
    TopicKey { name: "min.compaction.lag.ms", doc: "records younger than this are never compacted away" },
    TopicKey {
        name: "retention.ms",
        doc: "delete segments whose newest record is older than this many ms; -1 keeps forever",
    },
    TopicKey {
        name: "retention.bytes",
        doc: "delete oldest segments while a partition exceeds this size; -1 is unlimited",
    },
    TopicKey { name: "segment.bytes", doc: "roll the active segment at this size" },
    TopicKey { name: "segment.ms", doc: "roll the active segment at this age in ms" },
    TopicKey { name: "max.message.bytes", doc: "largest record batch a producer may send" },
    TopicKey { name: "index.interval.bytes", doc: "bytes between two sparse offset-index entries" },
    TopicKey { name: "min.insync.replicas", doc: "replicas that must have a write before acks=all succeeds" },
    TopicKey { name: "flush.mode", doc: "fsync: acks=all waits for fsync (group commit); interval: background fsync" },
    TopicKey {
        name: "message.timestamp.before.max.ms",
        doc: "refuse records whose creation time is more than this many ms in the past; -1 accepts any",
    },
    TopicKey {
        name: "message.timestamp.after.max.ms",
        doc: "refuse records whose creation time is more than this many ms in the future; -1 accepts any",
    },
    TopicKey {
        name: "unclean.leader.election.enable",
        doc: "true lets an out-of-sync replica lead when no in-sync one is left (availability over acknowledged data)",
    },
];

/// Broker settings that may change while the cluster runs (Kafka's dynamic broker configs, set
/// with `kafka-configs --entity-type brokers`): each is the default of a topic setting, as
/// `(broker key, topic key)`. Every other broker setting is static (broker.toml).
pub const DYNAMIC_BROKER_KEYS: &[(&str, &str)] = &[
    ("log.retention.ms", "retention.ms"),
    ("log.retention.bytes", "retention.bytes"),
    ("log.segment.bytes", "segment.bytes"),
    ("log.roll.ms", "segment.ms"),
    ("log.cleanup.policy", "cleanup.policy"),
    ("log.cleaner.delete.retention.ms", "delete.retention.ms"),
    ("log.cleaner.min.compaction.lag.ms", "min.compaction.lag.ms"),
    ("log.index.interval.bytes", "index.interval.bytes"),
    ("message.max.bytes", "max.message.bytes"),
    ("min.insync.replicas", "min.insync.replicas"),
    ("unclean.leader.election.enable", "unclean.leader.election.enable"),
    ("log.message.timestamp.before.max.ms", "message.timestamp.before.max.ms"),
    ("log.message.timestamp.after.max.ms", "message.timestamp.after.max.ms"),
];

/// The topic setting a dynamic broker setting is the default of.
pub fn topic_key_of_broker_key(broker_key: &str) -> Option<&'static str> {
    DYNAMIC_BROKER_KEYS.iter().find(|(b, _)| *b == broker_key).map(|(_, t)| *t)
}

/// Validated per-topic overrides, keyed by Kafka name. Keys absent here take the broker default.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TopicOverrides(pub BTreeMap<String, String>);

/// The settings in force for one topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EffectiveTopicConfig {
    /// `retention.ms`, None = forever.
    pub retention_ms: Option<u64>,
    /// `retention.bytes`, None = unlimited.
    pub retention_bytes: Option<u64>,
    /// `segment.bytes`.
    pub segment_bytes: u64,
    /// `segment.ms`.
    pub segment_ms: u64,
    /// `max.message.bytes`.
    pub max_message_bytes: u64,
    /// `index.interval.bytes`.
    pub index_interval_bytes: u32,
    /// `min.insync.replicas`.
    pub min_insync_replicas: i32,
    /// `flush.mode`.
    pub flush_mode: FlushMode,
    /// `unclean.leader.election.enable`.
    pub unclean_leader_election: bool,
    /// `cleanup.policy` contains `delete`: retention deletes old segments.
    pub cleanup_delete: bool,
    /// `cleanup.policy` contains `compact`: the cleaner keeps the latest record per key.
    pub cleanup_compact: bool,
    /// `delete.retention.ms`.
    pub delete_retention_ms: u64,
    /// `min.compaction.lag.ms`.
    pub min_compaction_lag_ms: u64,
    /// `message.timestamp.before.max.ms`, None = any age.
    pub message_timestamp_before_max_ms: Option<u64>,
    /// `message.timestamp.after.max.ms`, None = any.
    pub message_timestamp_after_max_ms: Option<u64>,
    /// The broker's `producer.id.expiration.ms` (no topic-level key, as in Kafka).
    pub producer_id_expiration_ms: u64,
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => {
            Err(ConfigError::invalid("topic config", key, format!("`{other}` is not a boolean"), "use true or false"))
        }
    }
}

/// Parses `cleanup.policy` into (delete, compact).
fn parse_cleanup_policy(value: &str) -> Result<(bool, bool), ConfigError> {
    let mut delete = false;
    let mut compact = false;
    for part in value.split(',').map(str::trim) {
        match part {
            "delete" => delete = true,
            "compact" => compact = true,
            other => {
                return Err(ConfigError::invalid(
                    "topic config",
                    "cleanup.policy",
                    format!("`{other}` is not a cleanup policy"),
                    "use delete, compact, or compact,delete",
                ))
            }
        }
    }
    Ok((delete, compact))
}

fn parse_i64(key: &str, value: &str) -> Result<i64, ConfigError> {
    value.trim().parse::<i64>().map_err(|_| {
        ConfigError::invalid(
            "topic config",
            key,
            format!("`{value}` is not an integer"),
            "give a whole number, e.g. 604800000",
        )
    })
}

fn parse_positive(key: &str, value: &str, min: i64, max: i64) -> Result<i64, ConfigError> {
    let n = parse_i64(key, value)?;
    if n < min || n > max {
        return Err(ConfigError::invalid(
            "topic config",
            key,
            format!("{n} is outside {min}..={max}"),
            format!("give a value between {min} and {max}"),
        ));
    }
    Ok(n)
}

fn parse_limit(key: &str, value: &str) -> Result<Option<u64>, ConfigError> {
    let n = parse_i64(key, value)?;
    if n == -1 {
        Ok(None)
    } else if n < 0 {
        Err(ConfigError::invalid(
            "topic config",
            key,
            format!("{n} is negative"),
            "use -1 for no limit or a positive value",
        ))
    } else {
        Ok(Some(n as u64))
    }
}

fn parse_flush_mode(value: &str) -> Result<FlushMode, ConfigError> {
    match value.trim() {
        "fsync" => Ok(FlushMode::Fsync),
        "interval" => Ok(FlushMode::Interval),
        other => Err(ConfigError::invalid(
            "topic config",
            "flush.mode",
            format!("`{other}` is not a flush mode"),
            "use fsync or interval",
        )),
    }
}

impl TopicOverrides {
    /// Validates Kafka-style `KEY=VALUE` pairs. Unknown keys and bad values are errors naming the key.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, ConfigError> {
        let mut map = BTreeMap::new();
        for (key, value) in pairs {
            let key = key.trim();
            match key {
                "cleanup.policy" => {
                    parse_cleanup_policy(value)?;
                }
                "delete.retention.ms" | "min.compaction.lag.ms" => {
                    parse_positive(key, value, 0, i64::MAX)?;
                }
                "retention.ms"
                | "retention.bytes"
                | "message.timestamp.before.max.ms"
                | "message.timestamp.after.max.ms" => {
                    parse_limit(key, value)?;
                }
                "segment.bytes" => {
                    parse_positive(key, value, 1024, i32::MAX as i64)?;
                }
                "segment.ms" => {
                    parse_positive(key, value, 1, i64::MAX)?;
                }
                "max.message.bytes" => {
                    parse_positive(key, value, 64, i32::MAX as i64)?;
                }
                "index.interval.bytes" => {
                    parse_positive(key, value, 1, i32::MAX as i64)?;
                }
                "min.insync.replicas" => {
                    parse_positive(key, value, 1, i32::MAX as i64)?;
                }
                "flush.mode" => {
                    parse_flush_mode(value)?;
                }
                "unclean.leader.election.enable" => {
                    parse_bool(key, value)?;
                }
                _ => {
                    let known: Vec<&str> = TOPIC_KEYS.iter().map(|k| k.name).collect();
                    return Err(ConfigError::invalid(
                        "topic config",
                        key,
                        "is not a topic setting this broker knows",
                        format!("use one of: {}", known.join(", ")),
                    ));
                }
            }
            map.insert(key.to_string(), value.trim().to_string());
        }
        Ok(TopicOverrides(map))
    }

    /// Validates dynamic broker settings (`log.retention.ms=…`) and returns them as the topic
    /// defaults they set. A key that is not dynamic is an error naming the keys that are.
    pub fn from_broker_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, ConfigError> {
        let mut topic_pairs = Vec::new();
        for (key, value) in pairs {
            let Some(topic_key) = topic_key_of_broker_key(key.trim()) else {
                let known: Vec<&str> = DYNAMIC_BROKER_KEYS.iter().map(|(b, _)| *b).collect();
                return Err(ConfigError::invalid(
                    "broker config",
                    key,
                    "cannot be changed while the broker runs (set it in the broker's configuration file)",
                    format!("the settings that can: {}", known.join(", ")),
                ));
            };
            topic_pairs.push((topic_key, value));
        }
        // Errors name the topic key; the broker key is in the message's context anyway.
        Self::from_pairs(topic_pairs)
    }

    /// These overrides laid over `defaults` (a topic's own settings over the dynamic defaults).
    pub fn over(&self, defaults: &TopicOverrides) -> TopicOverrides {
        let mut merged = defaults.0.clone();
        merged.extend(self.0.iter().map(|(k, v)| (k.clone(), v.clone())));
        TopicOverrides(merged)
    }

    /// Settings in force: overrides over the broker's defaults.
    pub fn resolve(&self, broker: &BrokerConfig) -> EffectiveTopicConfig {
        let log = &broker.log;
        let mut effective = EffectiveTopicConfig {
            retention_ms: log.retention_ms.map(|d| d.0),
            retention_bytes: log.retention_bytes.map(|b| b.0),
            segment_bytes: log.segment_bytes.0,
            segment_ms: log.segment_ms.0,
            max_message_bytes: broker.topics.max_message_bytes.0,
            index_interval_bytes: log.index_interval_bytes.0.min(u32::MAX as u64) as u32,
            min_insync_replicas: broker.replication.min_insync_replicas,
            flush_mode: log.flush_mode,
            unclean_leader_election: false,
            cleanup_delete: true,
            cleanup_compact: false,
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            message_timestamp_before_max_ms: log.message_timestamp_before_max.map(|d| d.0),
            message_timestamp_after_max_ms: log.message_timestamp_after_max.map(|d| d.0),
            producer_id_expiration_ms: log.producer_id_expiration.0,
        };
        // Values were validated in from_pairs; a value that no longer parses keeps the default.
        for (key, value) in &self.0 {
            match key.as_str() {
                "retention.ms" => effective.retention_ms = parse_limit(key, value).unwrap_or(effective.retention_ms),
                "retention.bytes" => {
                    effective.retention_bytes = parse_limit(key, value).unwrap_or(effective.retention_bytes)
                }
                "segment.bytes" => {
                    effective.segment_bytes = parse_i64(key, value).map_or(effective.segment_bytes, |v| v as u64)
                }
                "segment.ms" => effective.segment_ms = parse_i64(key, value).map_or(effective.segment_ms, |v| v as u64),
                "max.message.bytes" => {
                    effective.max_message_bytes =
                        parse_i64(key, value).map_or(effective.max_message_bytes, |v| v as u64)
                }
                "index.interval.bytes" => {
                    effective.index_interval_bytes =
                        parse_i64(key, value).map_or(effective.index_interval_bytes, |v| v as u32)
                }
                "min.insync.replicas" => {
                    effective.min_insync_replicas =
                        parse_i64(key, value).map_or(effective.min_insync_replicas, |v| v as i32)
                }
                "flush.mode" => effective.flush_mode = parse_flush_mode(value).unwrap_or(effective.flush_mode),
                "unclean.leader.election.enable" => {
                    effective.unclean_leader_election = parse_bool(key, value).unwrap_or(false)
                }
                "cleanup.policy" => {
                    (effective.cleanup_delete, effective.cleanup_compact) =
                        parse_cleanup_policy(value).unwrap_or((effective.cleanup_delete, effective.cleanup_compact))
                }
                "delete.retention.ms" => {
                    effective.delete_retention_ms =
                        parse_i64(key, value).map_or(effective.delete_retention_ms, |v| v as u64)
                }
                "min.compaction.lag.ms" => {
                    effective.min_compaction_lag_ms =
                        parse_i64(key, value).map_or(effective.min_compaction_lag_ms, |v| v as u64)
                }
                "message.timestamp.before.max.ms" => {
                    effective.message_timestamp_before_max_ms =
                        parse_limit(key, value).unwrap_or(effective.message_timestamp_before_max_ms)
                }
                "message.timestamp.after.max.ms" => {
                    effective.message_timestamp_after_max_ms =
                        parse_limit(key, value).unwrap_or(effective.message_timestamp_after_max_ms)
                }
                _ => {}
            }
        }
        effective
    }
}

impl EffectiveTopicConfig {
    /// Every key with its value in force, in Kafka's string form (for DescribeConfigs).
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let limit = |v: Option<u64>| v.map_or("-1".to_string(), |v| v.to_string());
        vec![
            (
                "cleanup.policy",
                match (self.cleanup_delete, self.cleanup_compact) {
                    (true, true) => "compact,delete",
                    (false, true) => "compact",
                    _ => "delete",
                }
                .to_string(),
            ),
            ("delete.retention.ms", self.delete_retention_ms.to_string()),
            ("min.compaction.lag.ms", self.min_compaction_lag_ms.to_string()),
            ("retention.ms", limit(self.retention_ms)),
            ("retention.bytes", limit(self.retention_bytes)),
            ("segment.bytes", self.segment_bytes.to_string()),
            ("segment.ms", self.segment_ms.to_string()),
            ("max.message.bytes", self.max_message_bytes.to_string()),
            ("index.interval.bytes", self.index_interval_bytes.to_string()),
            ("min.insync.replicas", self.min_insync_replicas.to_string()),
            (
                "flush.mode",
                match self.flush_mode {
                    FlushMode::Fsync => "fsync".to_string(),
                    FlushMode::Interval => "interval".to_string(),
                },
            ),
            ("message.timestamp.before.max.ms", limit(self.message_timestamp_before_max_ms)),
            ("message.timestamp.after.max.ms", limit(self.message_timestamp_after_max_ms)),
            ("unclean.leader.election.enable", self.unclean_leader_election.to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_resolve_over_defaults() {
        let overrides = TopicOverrides::from_pairs([("retention.ms", "1000"), ("retention.bytes", "-1")]).unwrap();
        let effective = overrides.resolve(&BrokerConfig::default());
        assert_eq!(effective.retention_ms, Some(1000));
        assert_eq!(effective.retention_bytes, None);
        assert_eq!(effective.segment_bytes, 1 << 30);
    }

    #[test]
    fn dynamic_broker_settings_are_topic_defaults() {
        let dynamic =
            TopicOverrides::from_broker_pairs([("log.retention.ms", "5000"), ("message.max.bytes", "2048")]).unwrap();
        assert_eq!(dynamic.0.get("retention.ms").map(String::as_str), Some("5000"));
        let topic = TopicOverrides::from_pairs([("retention.ms", "1000")]).unwrap();
        let effective = topic.over(&dynamic).resolve(&BrokerConfig::default());
        assert_eq!((effective.retention_ms, effective.max_message_bytes), (Some(1000), 2048));
        let err = TopicOverrides::from_broker_pairs([("listeners", "x")]).unwrap_err().to_string();
        assert!(err.contains("listeners") && err.contains("log.retention.ms"), "{err}");
        assert!(TopicOverrides::from_broker_pairs([("log.segment.bytes", "1")]).is_err());
    }

    #[test]
    fn bad_keys_and_values_name_the_key() {
        let err = TopicOverrides::from_pairs([("retention.mss", "1")]).unwrap_err().to_string();
        assert!(err.contains("retention.mss") && err.contains("retention.ms"), "{err}");
        let err = TopicOverrides::from_pairs([("segment.bytes", "12")]).unwrap_err().to_string();
        assert!(err.contains("segment.bytes") && err.contains("1024"), "{err}");
        let err = TopicOverrides::from_pairs([("flush.mode", "sometimes")]).unwrap_err().to_string();
        assert!(err.contains("fsync or interval"), "{err}");
    }
}
