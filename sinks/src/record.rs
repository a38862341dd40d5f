//! What a sink reads from the broker: one record with its origin (topic, partition, offset).

use std::sync::Arc;

/// One record consumed from the broker.
#[derive(Debug, Clone)]
pub struct SourceRecord {
    /// Topic it came from.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Record value (the agent's JSON document).
    pub payload: Vec<u8>,
    /// The record's timestamp (ms), when it has one.
    pub timestamp_ms: Option<i64>,
}

impl SourceRecord {
    /// `topic/partition@offset`, for logs and dead letters.
    pub fn origin(&self) -> String {
        format!("{}/{}@{}", self.topic, self.partition, self.offset)
    }
}
