//! The `[log]` section: storage defaults of every topic and how appended data reaches the disk.

use crate::units::{ByteSize, DurationMs};
use serde::{Deserialize, Serialize};

/// How appended data reaches the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlushMode {
    /// acks=all produce requests are answered only after an fsync covering them; concurrent
    /// requests share one fsync (group commit). acks=1 is answered after the write to the page
    /// cache, as in Kafka. Nothing acknowledged to an acks=all producer is lost on power failure.
    Fsync,
    /// Data is fsynced every `flush_interval`; acknowledgements never wait. Faster, but a power
    /// failure loses up to one interval of acknowledged writes (a process crash loses nothing).
    Interval,
}

/// Storage defaults; per-topic Kafka keys (`segment.bytes`, `retention.ms`, …) override them.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// Roll the active segment when it reaches this size (Kafka `log.segment.bytes`).
    pub segment_bytes: ByteSize,
    /// Roll the active segment when it is this old (Kafka `log.roll.ms`).
    pub segment_ms: DurationMs,
    /// Delete segments whose newest record is older than this; `-1` keeps forever.
    #[serde(with = "crate::limits::duration")]
    pub retention_ms: Option<DurationMs>,
    /// Delete oldest segments while a partition is larger than this; `-1` is unlimited.
    #[serde(with = "crate::limits::size")]
    pub retention_bytes: Option<ByteSize>,
    /// Bytes of log between two sparse index entries.
    pub index_interval_bytes: ByteSize,
    /// How often retention runs.
    pub retention_check_interval: DurationMs,
    /// How often the log cleaner compacts `cleanup.policy=compact` topics (Kafka `log.cleaner.backoff.ms`).
    pub cleaner_interval: DurationMs,
    /// When appended data is fsynced; see [`FlushMode`].
    pub flush_mode: FlushMode,
    /// Period of the background fsync in `interval` mode (and a safety net in `fsync` mode).
    pub flush_interval: DurationMs,
    /// Refuse a produced record whose creation time is further than this in the past (Kafka
    /// `log.message.timestamp.before.max.ms`); `-1` (the default, as in Kafka) accepts any age,
    /// so an agent can backfill old logs.
    #[serde(with = "crate::limits::duration")]
    pub message_timestamp_before_max: Option<DurationMs>,
    /// Refuse a produced record whose creation time is further than this in the future (Kafka
    /// `log.message.timestamp.after.max.ms`, 1 hour as in Kafka 4): a clock far ahead would
    /// otherwise pin retention and time lookups; `-1` accepts any.
    #[serde(with = "crate::limits::duration")]
    pub message_timestamp_after_max: Option<DurationMs>,
    /// An idempotent producer's state (last sequences, for de-duplication) is dropped from a
    /// partition once it has not written there for this long (Kafka `producer.id.expiration.ms`).
    pub producer_id_expiration: DurationMs,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            segment_bytes: ByteSize(1 << 30),
            segment_ms: DurationMs(7 * 86_400_000),
            retention_ms: Some(DurationMs(7 * 86_400_000)),
            retention_bytes: None,
            index_interval_bytes: ByteSize(4096),
            retention_check_interval: DurationMs(300_000),
            cleaner_interval: DurationMs(15_000),
            flush_mode: FlushMode::Fsync,
            flush_interval: DurationMs(1_000),
            message_timestamp_before_max: None,
            message_timestamp_after_max: Some(DurationMs(3_600_000)),
            producer_id_expiration: DurationMs(86_400_000),
        }
    }
}
