//! The one trait every destination implements (as Vector's sinks do): turn a record into the
//! destination's encoding, and write a batch of encoded records, answering per record.

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

/// Parses an HTTP `Retry-After` given in seconds (the form InfluxDB and proxies send).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(|s| Duration::from_secs(s.min(300)))
}

/// gzip-compresses a request body.
pub fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}

/// A reqwest error with its cause chain (the top level alone says little).
pub fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
