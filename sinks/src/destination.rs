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

/// Most bytes of a destination's response read for the request itself; a batch's answer may add
/// [`RESPONSE_BYTES_PER_ITEM`] per record (an Elasticsearch bulk answer lists every item).
pub const RESPONSE_BASE_BYTES: usize = 4 << 20;
/// Room per record in a response, on top of [`RESPONSE_BASE_BYTES`]: an Elasticsearch item
/// result is a few hundred bytes, with an error reason around a kilobyte.
pub const RESPONSE_BYTES_PER_ITEM: usize = 2 << 10;
/// Bytes of a response body quoted in logs and dead-letter reasons.
pub const EXCERPT_BYTES: usize = 300;

/// The largest response body accepted for a write of `items` records.
pub fn response_limit(items: usize) -> usize {
    RESPONSE_BASE_BYTES.saturating_add(items.saturating_mul(RESPONSE_BYTES_PER_ITEM))
}

/// A response body could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Longer than the limit: the rest was not read (the connection is dropped).
    #[error("the response body is larger than {limit} bytes; not read further")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The connection failed while reading.
    #[error("reading the response: {0}")]
    Read(String),
}

/// Reads `response`'s body, giving up as soon as it passes `limit` bytes: a destination (or a
/// proxy in front of it) answering with an endless body must not grow the sink's memory.
pub async fn read_body(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|len| len > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| BodyError::Read(describe_reqwest(&e)))? {
        if body.len().saturating_add(chunk.len()) > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The start of a response body for a log line or an error reason: at most `max` bytes of it,
/// trimmed, cut at a character boundary (never inside a multi-byte character), `…` when cut.
pub fn excerpt(body: &[u8], max: usize) -> String {
    // A few bytes past `max` so a character straddling it is seen whole (and then left out).
    let head = &body[..body.len().min(max.saturating_add(4))];
    let text = String::from_utf8_lossy(head);
    let text = text.trim();
    if text.len() <= max && head.len() == body.len() {
        return text.to_string();
    }
    let mut cut = max.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", text[..cut].trim_end())
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn excerpt_never_cuts_inside_a_character() {
        // 299 ASCII bytes, then a two-byte character at bytes 299 and 300: cut before it.
        let body = format!("{}é{}", "x".repeat(299), "y".repeat(50));
        let cut = excerpt(body.as_bytes(), EXCERPT_BYTES);
        assert_eq!(cut, format!("{}…", "x".repeat(299)));
        // Four-byte characters all the way: the cut lands on a boundary below the limit.
        let emoji = "🦀".repeat(200);
        let cut = excerpt(emoji.as_bytes(), EXCERPT_BYTES);
        assert_eq!(cut, format!("{}…", "🦀".repeat(75)));
        // Every cut position of a mixed text, including the limit inside each character.
        let mixed = "aé€🦀".repeat(40);
        for max in 0..mixed.len() + 2 {
            let cut = excerpt(mixed.as_bytes(), max);
            assert!(cut.trim_end_matches('…').len() <= max, "{max}: {cut}");
        }
    }

    #[test]
    fn excerpt_keeps_short_bodies_and_survives_invalid_utf8() {
        assert_eq!(excerpt(b"  database not found\n", EXCERPT_BYTES), "database not found");
        assert_eq!(excerpt(b"", EXCERPT_BYTES), "");
        let mut bytes = vec![b'a'; 298];
        bytes.extend_from_slice(&[0xe2, 0x82]); // a character cut short by the destination
        bytes.extend_from_slice(&[0xff; 20]);
        let cut = excerpt(&bytes, EXCERPT_BYTES);
        assert!(cut.starts_with(&"a".repeat(298)) && cut.ends_with('…') && cut.len() <= EXCERPT_BYTES + 3, "{cut}");
    }

    #[test]
    fn response_limit_grows_with_the_batch() {
        assert_eq!(response_limit(0), RESPONSE_BASE_BYTES);
        assert_eq!(response_limit(1000), RESPONSE_BASE_BYTES + 1000 * RESPONSE_BYTES_PER_ITEM);
        assert_eq!(response_limit(usize::MAX), usize::MAX);
    }
}
