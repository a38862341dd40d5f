//! Record validation before a produced batch reaches a log, after Kafka's `LogValidator`.
//!
//! The batch header was checked by [`super::batch::validate`] (v2, whole, CRC, count matches
//! `lastOffsetDelta + 1`). Here the records themselves are walked — in place when uncompressed,
//! streamed through a capped decompressor when not — so that a batch whose header claims 2^31
//! records, or whose CRC covers random bytes, never reaches the log where it would move the log
//! end offset or stop every consumer behind it. Checked per record: the length and every varint
//! in bounds, offset deltas 0, 1, 2…, key and value lengths, header counts and header keys, the
//! key on compacted topics, and the creation time against `message.timestamp.*.max.ms`. The
//! batch must end exactly after its last record.
//!
//! Structural damage rejects the batch with `CORRUPT_MESSAGE`; records that parse but break a
//! rule are listed (KIP-467 `record_errors`: index in the batch and a message) under
//! `INVALID_RECORD` or `INVALID_TIMESTAMP`, so a client fails only those records.

use super::batch::{BatchHeader, HEADER_SIZE};
use super::compression::{self, DecompressError};
use kafka_protocol::error::ResponseError;
use kafka_protocol::records::{Compression, TimestampType};
use std::io::{BufRead, BufReader, Read};

/// Decompressed record bytes a batch may hold, as a multiple of its topic's `max.message.bytes`:
/// generous for text (logs compress 5-20:1), and a hard stop for a decompression bomb.
pub const DECOMPRESSED_BATCH_FACTOR: u64 = 32;

/// At most this many record errors are listed in one response; the message counts the rest.
const MAX_LISTED_RECORD_ERRORS: usize = 100;

/// The topic settings that records are checked against.
#[derive(Debug, Clone, Copy)]
pub struct ValidationConfig {
    /// `cleanup.policy` includes compact: every record needs a key.
    pub compacted: bool,
    /// Most bytes a compressed batch may inflate to.
    pub max_decompressed_bytes: usize,
    /// The broker's clock, ms since the epoch.
    pub now_ms: i64,
    /// `message.timestamp.before.max.ms`; None accepts any age.
    pub timestamp_before_max_ms: Option<u64>,
    /// `message.timestamp.after.max.ms`; None accepts any.
    pub timestamp_after_max_ms: Option<u64>,
}

impl ValidationConfig {
    /// The decompression cap for a topic's `max.message.bytes`.
    pub fn decompression_cap(max_message_bytes: u64) -> usize {
        usize::try_from(max_message_bytes.saturating_mul(DECOMPRESSED_BATCH_FACTOR)).unwrap_or(usize::MAX)
    }
}

/// One record refused, by its index in the batch (KIP-467).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// Index of the record in its batch, from 0.
    pub batch_index: i32,
    /// Why.
    pub message: String,
}

/// Why a batch was refused.
#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    /// The records cannot be parsed as the header describes.
    #[error("corrupt record batch: {0}")]
    Corrupt(String),
    /// The compressed records could not be inflated within the cap, or not at all.
    #[error("record batch cannot be decompressed: {0}")]
    Decompress(#[from] DecompressError),
    /// Clients may not write control batches (transaction markers are the coordinator's).
    #[error("clients may not write control records")]
    ControlBatch,
    /// Records that parse but break a rule; listed per record.
    #[error("{summary}")]
    Records {
        /// INVALID_RECORD, or INVALID_TIMESTAMP when any record's time is out of range.
        code: ResponseError,
        /// The first errors, at most [`MAX_LISTED_RECORD_ERRORS`].
        errors: Vec<RecordError>,
        /// One line for the partition's error message.
        summary: String,
    },
}

impl ValidationError {
    /// The Kafka error code a producer sees.
    pub fn error_code(&self) -> ResponseError {
        match self {
            ValidationError::Corrupt(_) => ResponseError::CorruptMessage,
            ValidationError::Decompress(DecompressError::TooLarge { .. }) => ResponseError::MessageTooLarge,
            ValidationError::Decompress(DecompressError::Invalid { .. }) => ResponseError::CorruptMessage,
            ValidationError::ControlBatch => ResponseError::InvalidRecord,
            ValidationError::Records { code, .. } => *code,
        }
    }

    /// The per-record errors, if the refusal names records.
    pub fn record_errors(&self) -> &[RecordError] {
        match self {
            ValidationError::Records { errors, .. } => errors,
            _ => &[],
        }
    }
}

/// What validation learned about a valid batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validated {
    /// The largest record creation time, as the header's `maxTimestamp` should say.
    pub max_timestamp: i64,
}

/// Checks every record of the complete batch `batch` (whose header is `header`).
pub fn validate_records(
    batch: &[u8],
    header: &BatchHeader,
    config: &ValidationConfig,
) -> Result<Validated, ValidationError> {
    if header.is_control() {
        return Err(ValidationError::ControlBatch);
    }
    let compression = header.compression().map_err(|e| ValidationError::Corrupt(e.to_string()))?;
    let payload = batch.get(HEADER_SIZE..header.total_size()).unwrap_or_default();
    let mut walker = Walker::new(header, config);
    if compression == Compression::None {
        // In place: a slice is its own buffered reader.
        let mut records: &[u8] = payload;
        walker.walk(&mut records, |_| None)?;
    } else {
        let reader = compression::reader(compression, payload, config.max_decompressed_bytes)?;
        let codec = reader.codec();
        let mut buffered = BufReader::with_capacity(64 * 1024, reader);
        walker.walk(&mut buffered, |e| Some(DecompressError::from_io(e, codec)))?;
    }
    walker.finish()
}

/// Walks the records of one batch, collecting rule violations.
struct Walker<'a> {
    header: &'a BatchHeader,
    config: &'a ValidationConfig,
    errors: Vec<RecordError>,
    error_count: usize,
    timestamp_errors: bool,
    max_timestamp: i64,
    /// Reused for records that straddle the reader's buffer.
    scratch: Vec<u8>,
}

impl<'a> Walker<'a> {
    fn new(header: &'a BatchHeader, config: &'a ValidationConfig) -> Self {
        Walker {
            header,
            config,
            errors: Vec::new(),
            error_count: 0,
            timestamp_errors: false,
            max_timestamp: -1,
            scratch: Vec::new(),
        }
    }

    /// Reads `records_count` records from `reader` and checks that nothing follows. `io_error`
    /// turns a reader's error into a decompression error where it is one.
    fn walk<R: BufRead>(
        &mut self,
        reader: &mut R,
        io_error: impl Fn(std::io::Error) -> Option<DecompressError>,
    ) -> Result<(), ValidationError> {
        let count = self.header.records_count;
        let fail = |index: i32, what: String| ValidationError::Corrupt(format!("record {index} of {count}: {what}"));
        for index in 0..count {
            let length = match read_varint(reader) {
                Ok(Some(length)) => length,
                Ok(None) => return Err(fail(index, "the batch ends before this record".into())),
                Err(ReadError::Io(e)) => {
                    return Err(io_error(e).map_or_else(|| fail(index, "unreadable".into()), Into::into))
                }
                Err(ReadError::Malformed(what)) => return Err(fail(index, format!("length: {what}"))),
            };
            let length = usize::try_from(length).map_err(|_| fail(index, format!("negative length {length}")))?;
            if length > self.config.max_decompressed_bytes {
                return Err(fail(index, format!("length {length} is larger than the whole batch may be")));
            }
            let available = match reader.fill_buf() {
                Ok(buf) => buf.len(),
                Err(e) => return Err(io_error(e).map_or_else(|| fail(index, "unreadable".into()), Into::into)),
            };
            let result = if available >= length {
                let body = reader.fill_buf().map_err(|_| fail(index, "unreadable".into()))?;
                let parsed = parse_record(body.get(..length).unwrap_or_default());
                reader.consume(length);
                parsed
            } else {
                // Grown as bytes arrive: a claimed length is never allocated up front.
                self.scratch.clear();
                let read = reader.take(length as u64).read_to_end(&mut self.scratch);
                match read {
                    Ok(n) if n == length => parse_record(&self.scratch),
                    Ok(n) => return Err(fail(index, format!("length {length} but only {n} bytes follow"))),
                    Err(e) => return Err(io_error(e).map_or_else(|| fail(index, "unreadable".into()), Into::into)),
                }
            };
            let record = result.map_err(|what| fail(index, what))?;
            self.check(index, &record);
        }
        match reader.fill_buf() {
            Ok([]) => Ok(()),
            Ok(rest) => Err(ValidationError::Corrupt(format!(
                "{} bytes follow the last of the batch's {count} records",
                rest.len()
            ))),
            Err(e) => {
                Err(io_error(e).map_or_else(|| ValidationError::Corrupt("unreadable records".into()), Into::into))
            }
        }
    }

    fn reject(&mut self, index: i32, message: String, timestamp: bool) {
        self.error_count += 1;
        self.timestamp_errors |= timestamp;
        if self.errors.len() < MAX_LISTED_RECORD_ERRORS {
            self.errors.push(RecordError { batch_index: index, message });
        }
    }

    /// The rules a parsed record must follow.
    fn check(&mut self, index: i32, record: &ParsedRecord) {
        if i64::from(record.offset_delta) != i64::from(index) {
            self.reject(index, format!("offset delta {} where {index} was expected", record.offset_delta), false);
        }
        if self.config.compacted && !record.has_key {
            self.reject(index, "a compacted topic cannot accept a record without a key".into(), false);
        }
        let Some(timestamp) = self.header.base_timestamp.checked_add(record.timestamp_delta) else {
            self.reject(index, format!("timestamp delta {} overflows", record.timestamp_delta), true);
            return;
        };
        self.max_timestamp = self.max_timestamp.max(timestamp);
        if self.header.timestamp_type() == TimestampType::Creation && timestamp >= 0 {
            let now = self.config.now_ms;
            let too_old =
                self.config.timestamp_before_max_ms.is_some_and(|max| now.saturating_sub(timestamp) > max as i64);
            let too_new =
                self.config.timestamp_after_max_ms.is_some_and(|max| timestamp.saturating_sub(now) > max as i64);
            if too_old || too_new {
                let bound = |v: Option<u64>| v.map_or("unlimited".to_string(), |v| format!("{v} ms"));
                self.reject(
                    index,
                    format!(
                        "timestamp {timestamp} is out of range: the broker's time is {now}, and records may be at most {} older (message.timestamp.before.max.ms) and {} newer (message.timestamp.after.max.ms)",
                        bound(self.config.timestamp_before_max_ms),
                        bound(self.config.timestamp_after_max_ms)
                    ),
                    true,
                );
            }
        }
    }

    fn finish(self) -> Result<Validated, ValidationError> {
        if self.error_count == 0 {
            return Ok(Validated { max_timestamp: self.max_timestamp });
        }
        let first = self.errors.first().map(|e| format!("record {}: {}", e.batch_index, e.message)).unwrap_or_default();
        let summary = if self.error_count == 1 {
            first
        } else {
            format!("{} of {} records refused; first: {first}", self.error_count, self.header.records_count)
        };
        let code = if self.timestamp_errors { ResponseError::InvalidTimestamp } else { ResponseError::InvalidRecord };
        Err(ValidationError::Records { code, errors: self.errors, summary })
    }
}

/// The fields of one record that the rules look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ParsedRecord {
    timestamp_delta: i64,
    offset_delta: i32,
    has_key: bool,
}

/// Parses one record body (after its length): `attributes i8, timestampDelta varlong,
/// offsetDelta varint, key, value, headers`. Every length is checked against the bytes left
/// and the body must be used exactly.
fn parse_record(body: &[u8]) -> Result<ParsedRecord, String> {
    let mut cursor = Cursor { bytes: body, at: 0 };
    cursor.take(1, "attributes")?;
    let timestamp_delta = cursor.varlong("timestamp delta")?;
    let offset_delta = cursor.varint("offset delta")?;
    let key_length = cursor.varint("key length")?;
    let has_key = key_length >= 0;
    cursor.nullable_bytes(key_length, "key")?;
    let value_length = cursor.varint("value length")?;
    cursor.nullable_bytes(value_length, "value")?;
    let headers = cursor.varint("header count")?;
    if headers < 0 {
        return Err(format!("header count {headers} is negative"));
    }
    // Each header takes at least two bytes; the loop below would stop anyway, this says why.
    if headers as usize > cursor.remaining() / 2 {
        return Err(format!("header count {headers} cannot fit in the {} bytes left", cursor.remaining()));
    }
    for header in 0..headers {
        let key_length = cursor.varint("header key length")?;
        if key_length < 0 {
            return Err(format!("header {header} has a null key"));
        }
        let key = cursor.take(key_length as usize, "header key")?;
        if std::str::from_utf8(key).is_err() {
            return Err(format!("header {header} key is not UTF-8"));
        }
        let value_length = cursor.varint("header value length")?;
        cursor.nullable_bytes(value_length, "header value")?;
    }
    if cursor.remaining() != 0 {
        return Err(format!("{} bytes follow the record's last header", cursor.remaining()));
    }
    Ok(ParsedRecord { timestamp_delta, offset_delta, has_key })
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return Err(format!("{what} of {n} bytes runs past the record's end ({} bytes left)", self.remaining()));
        };
        let slice = self.bytes.get(self.at..end).unwrap_or_default();
        self.at = end;
        Ok(slice)
    }

    fn nullable_bytes(&mut self, length: i32, what: &str) -> Result<(), String> {
        match length {
            -1 => Ok(()),
            n if n < -1 => Err(format!("{what} length {n} is invalid")),
            n => self.take(n as usize, what).map(|_| ()),
        }
    }

    fn unsigned(&mut self, max_bytes: usize, what: &str) -> Result<u64, String> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let byte = *self.bytes.get(self.at).ok_or_else(|| format!("{what} runs past the record's end"))?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("{what} is a varint longer than {max_bytes} bytes"))
    }

    fn varint(&mut self, what: &str) -> Result<i32, String> {
        let raw = self.unsigned(5, what)?;
        let raw = u32::try_from(raw).map_err(|_| format!("{what} overflows 32 bits"))?;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    fn varlong(&mut self, what: &str) -> Result<i64, String> {
        let raw = self.unsigned(10, what)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }
}

enum ReadError {
    Io(std::io::Error),
    Malformed(&'static str),
}

/// A zigzag varint from a buffered reader; None at a clean end of input.
fn read_varint<R: BufRead>(reader: &mut R) -> Result<Option<i32>, ReadError> {
    let mut raw = 0u32;
    for i in 0..5 {
        let byte = match reader.fill_buf().map_err(ReadError::Io)?.first() {
            Some(&byte) => byte,
            None if i == 0 => return Ok(None),
            None => return Err(ReadError::Malformed("ends inside a varint")),
        };
        reader.consume(1);
        if i == 4 && byte > 0x0f {
            return Err(ReadError::Malformed("varint overflows 32 bits"));
        }
        raw |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some(((raw >> 1) as i32) ^ -((raw & 1) as i32)));
        }
    }
    Err(ReadError::Malformed("varint longer than 5 bytes"))
}

#[cfg(test)]
mod tests;
