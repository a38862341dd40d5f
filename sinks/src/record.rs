//! What a sink reads from the broker: one record with its origin (topic, partition, offset),
//! borrowed from the consumer's message or from a batch's copy of it.

/// One record consumed from the broker.
#[derive(Debug, Clone, Copy)]
pub struct SourceRecord<'a> {
    /// Topic it came from.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// Record key.
    pub key: Option<&'a [u8]>,
    /// Record value (the agent's JSON document).
    pub payload: &'a [u8],
    /// The record's timestamp (ms), when it has one.
    pub timestamp_ms: Option<i64>,
}

impl SourceRecord<'_> {
    /// `topic/partition@offset`, for logs and dead letters.
    pub fn origin(&self) -> String {
        format!("{}/{}@{}", self.topic, self.partition, self.offset)
    }
}
