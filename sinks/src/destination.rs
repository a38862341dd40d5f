//! The one trait every destination implements: turn a record into the destination's encoding,
//! and write a batch of encoded records, answering per record. The HTTP destinations share their
//! request handling in [`crate::http`].

use crate::record::SourceRecord;
use std::future::Future;
use std::time::Duration;

/// What the destination said about one record of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Stored (or already stored: a replay of the same document).
    Accepted,
    /// Refused for now (overloaded, unavailable): write it again later.
    Retry(String),
    /// Refused for good (a mapping conflict, an invalid point): dead-letter it.
    Reject(String),
}

/// The whole write failed (connection refused, 429, 5xx, timeout): every record is retried.
#[derive(Debug, Clone)]
pub struct WriteFailure {
    /// What happened, for the log.
    pub reason: String,
    /// The destination's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
}

/// A destination of a sink.
pub trait Destination: Send + Sync + 'static {
    /// Short kind name for logs and metrics (`elasticsearch`, `influxdb`).
    fn kind(&self) -> &'static str;

    /// Appends one record's encoding to `out`; an error means it can never be written (it is
    /// dead-lettered), and whatever was appended before the error is discarded by the caller.
    fn encode(&self, record: &SourceRecord<'_>, out: &mut Vec<u8>) -> Result<(), String>;

    /// Writes encoded records, returning one verdict per record in order.
    fn write(&self, items: &[&[u8]]) -> impl Future<Output = Result<Vec<Verdict>, WriteFailure>> + Send;
}
