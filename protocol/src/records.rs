//! A zero-copy reader of Kafka record sets: the `records` bytes of a Fetch response partition.
//!
//! A consumer decodes millions of records a second, so nothing here allocates per record:
//! [`batches`] splits the set into v2 batches in place, [`Batch::records`] checks a batch's CRC
//! and yields its records as slices of the input (or of one caller-owned scratch buffer when the
//! batch is compressed), and a record's [`Headers`] are walked lazily over the same bytes.
//! (kafka-protocol's `RecordBatchDecoder` copies every key, value and header into its own
//! `Bytes` and `IndexMap`.)
//!
//! The bytes come from the network, so the reader never panics, never indexes out of bounds and
//! never sizes an allocation by a length or count read from the input; every mismatch between
//! what a field announces and the bytes present is a [`RecordsError`]. The only allocation is the
//! scratch buffer of a compressed batch, whose output [`crate::compression`] caps.
//!
//! Layout (magic v2, big-endian): `baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 |
//! magic i8 | crc u32 | attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 |
//! maxTimestamp i64 | producerId i64 | producerEpoch i16 | baseSequence i32 | recordsCount i32`,
//! then the records; the CRC-32C covers `attributes` to the end of the batch. A record is
//! `length varint | attributes i8 | timestampDelta varlong | offsetDelta varint |
//! keyLength varint | key | valueLength varint | value | headersCount varint | headers`, a header
//! `keyLength varint | key | valueLength varint | value`; varints are zigzag-encoded.

use crate::compression::{self, DecompressError};
use kafka_protocol::records::Compression;
use std::io::Read;
use std::iter::FusedIterator;

// The v2 layout the broker's batch code shares (it sits above this crate).
/// Bytes before the part `batchLength` counts (baseOffset and batchLength).
pub const LOG_OVERHEAD: usize = 12;
/// The least `batchLength` of a v2 batch: its fixed header after the length field.
const MIN_BATCH_LENGTH: i32 = 49;
/// Where the magic byte sits, readable before the length is trusted.
pub const MAGIC_AT: usize = 16;
/// The only record format read (and stored by the broker).
pub const MAGIC_V2: i8 = 2;

/// Attribute bits: the codec, LogAppendTime, transactional, control.
pub const COMPRESSION_MASK: i16 = 0x07;
pub const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
pub const TRANSACTIONAL_BIT: i16 = 1 << 4;
pub const CONTROL_BIT: i16 = 1 << 5;

/// Errors reading a record set; each says what is wrong (never panics, whatever the bytes).
/// `offset` is always the base offset of the batch concerned, so a consumer can log where it
/// stopped.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// A length, count or field disagrees with the bytes, or offsets overflow.
    #[error("record batch at offset {offset} is corrupt: {reason}")]
    Corrupt {
        /// Base offset of the batch.
        offset: i64,
        /// What is wrong.
        reason: String,
    },
    /// Not a v2 batch (magic 0 and 1 are the pre-0.11 message sets).
    #[error("record batch at offset {offset} has magic {magic}: only v2 record batches are read")]
    UnsupportedMagic {
        /// Base offset of the batch.
        offset: i64,
        /// The magic byte found.
        magic: i8,
    },
    /// The CRC-32C of the batch does not match its content.
    #[error("record batch at offset {offset} fails its CRC-32C: stored 0x{stored:08x}, computed 0x{computed:08x}")]
    CrcMismatch {
        /// Base offset of the batch.
        offset: i64,
        /// CRC in the header.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// Attribute bits 0-2 name no codec Kafka defines (5-7).
    #[error("record batch at offset {offset} uses unknown compression codec {codec}")]
    UnknownCompression {
        /// Base offset of the batch.
        offset: i64,
        /// The codec bits.
        codec: u8,
    },
    /// The compressed records could not be inflated, or inflate past the cap.
    #[error("record batch at offset {offset}: {source}")]
    Decompress {
        /// Base offset of the batch.
        offset: i64,
        /// What the decompressor said.
        source: DecompressError,
    },
}

fn corrupt(offset: i64, reason: impl Into<String>) -> RecordsError {
    RecordsError::Corrupt { offset, reason: reason.into() }
}

/// The whole batches of `record_set`, in order.
pub fn batches(record_set: &[u8]) -> Batches<'_> {
    Batches { rest: record_set, done: false }
}

/// Splits a record set into whole batches. A trailing partial batch (a Fetch response may end
/// mid-batch, cut at the partition's byte limit) ends the iteration without error, as Kafka's
/// consumer treats it. After an error the iterator ends: the framing past a corrupt batch cannot
/// be trusted.
#[derive(Debug, Clone)]
pub struct Batches<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> Batches<'a> {
    fn next_batch(&mut self) -> Result<Option<Batch<'a>>, RecordsError> {
        let mut cursor = Cursor::new(self.rest);
        let (Some(base_offset), Some(batch_length)) = (cursor.i64(), cursor.i32()) else {
            return Ok(None);
        };
        if batch_length < MIN_BATCH_LENGTH {
            // An old message set is shorter than a v2 header: say so rather than "corrupt".
            return Err(match self.rest.get(MAGIC_AT).map(|&m| m as i8) {
                Some(magic) if magic != MAGIC_V2 => RecordsError::UnsupportedMagic { offset: base_offset, magic },
                _ => corrupt(
                    base_offset,
                    format!("batch length {batch_length} is shorter than a v2 batch header ({MIN_BATCH_LENGTH} bytes)"),
                ),
            });
        }
        let Some(total) = usize::try_from(batch_length).ok().and_then(|length| length.checked_add(LOG_OVERHEAD)) else {
            return Err(corrupt(base_offset, format!("batch length {batch_length} does not fit in memory")));
        };
        let Some((bytes, rest)) = self.rest.split_at_checked(total) else {
            // The batch runs past the end of the set: the partial batch a Fetch may end with.
            return Ok(None);
        };
        let batch = Batch::parse(base_offset, bytes)?;
        self.rest = rest;
        Ok(Some(batch))
    }
}

impl<'a> Iterator for Batches<'a> {
    type Item = Result<Batch<'a>, RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_batch() {
            Ok(Some(batch)) => Some(Ok(batch)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}

impl FusedIterator for Batches<'_> {}

/// One v2 record batch, header parsed, body not yet read. The CRC is NOT checked here but by
/// [`Batch::records`], so that a consumer skipping a batch (below its fetch offset, or a control
/// batch) does not pay for it.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    base_offset: i64,
    last_offset_delta: i32,
    attributes: i16,
    base_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    records_count: i32,
    crc: u32,
    /// The whole batch's size, `batchLength` + 12.
    encoded_len: usize,
    /// `attributes` to the end of the batch: what the CRC covers.
    checked: &'a [u8],
    /// The records, compressed or not.
    body: &'a [u8],
}

impl<'a> Batch<'a> {
    /// Parses the header of the whole batch `bytes` (its length already checked to be at least
    /// [`MIN_BATCH_LENGTH`]) and checks what the accessors rely on.
    fn parse(base_offset: i64, bytes: &'a [u8]) -> Result<Batch<'a>, RecordsError> {
        let truncated = || corrupt(base_offset, "batch shorter than its header");
        let mut cursor = Cursor::new(bytes.get(LOG_OVERHEAD..).ok_or_else(truncated)?);
        let _partition_leader_epoch = cursor.i32().ok_or_else(truncated)?;
        let magic = cursor.i8().ok_or_else(truncated)?;
        if magic != MAGIC_V2 {
            return Err(RecordsError::UnsupportedMagic { offset: base_offset, magic });
        }
        let crc = cursor.u32().ok_or_else(truncated)?;
        let checked = cursor.rest();
        let attributes = cursor.i16().ok_or_else(truncated)?;
        let last_offset_delta = cursor.i32().ok_or_else(truncated)?;
        let base_timestamp = cursor.i64().ok_or_else(truncated)?;
        let max_timestamp = cursor.i64().ok_or_else(truncated)?;
        let producer_id = cursor.i64().ok_or_else(truncated)?;
        let _producer_epoch = cursor.i16().ok_or_else(truncated)?;
        let _base_sequence = cursor.i32().ok_or_else(truncated)?;
        let records_count = cursor.i32().ok_or_else(truncated)?;
        if records_count < 0 {
            return Err(corrupt(base_offset, format!("negative records count {records_count}")));
        }
        if last_offset_delta < 0 {
            // The next fetch would start at or before this batch: a consumer would loop.
            return Err(corrupt(base_offset, format!("negative lastOffsetDelta {last_offset_delta}")));
        }
        if base_offset.checked_add(i64::from(last_offset_delta)).and_then(|last| last.checked_add(1)).is_none() {
            return Err(corrupt(base_offset, format!("lastOffsetDelta {last_offset_delta} overflows the offset")));
        }
        Ok(Batch {
            base_offset,
            last_offset_delta,
            attributes,
            base_timestamp,
            max_timestamp,
            producer_id,
            records_count,
            crc,
            encoded_len: bytes.len(),
            checked,
            body: cursor.rest(),
        })
    }

    /// Offset of the first record.
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// The batch's size in the record set, baseOffset and batchLength included (`batchLength +
    /// 12`): the whole batches of a set are the sum of these, from its start.
    pub fn encoded_len(&self) -> usize {
        self.encoded_len
    }

    /// Offset of the last record (`base_offset + lastOffsetDelta`); compaction may have removed
    /// it, so it is not always the offset of the last record read.
    pub fn last_offset(&self) -> i64 {
        // Checked when the batch was parsed; saturating only keeps the arithmetic panic-free.
        self.base_offset.saturating_add(i64::from(self.last_offset_delta))
    }

    /// Where the next fetch starts: `last_offset + 1`, even when the batch's last records were
    /// compacted away or the batch is a control batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// A transaction marker (attributes bit 5): its records are not the application's data.
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// Part of a transaction (attributes bit 4), for consumers that honour read_committed.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// The codec of the records (attributes bits 0-2). An unknown codec (5-7) reads as
    /// [`Compression::None`] here, and [`Batch::records`] refuses it with
    /// [`RecordsError::UnknownCompression`].
    pub fn compression(&self) -> Compression {
        self.codec().unwrap_or(Compression::None)
    }

    fn codec(&self) -> Result<Compression, RecordsError> {
        match self.attributes & COMPRESSION_MASK {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(RecordsError::UnknownCompression { offset: self.base_offset, codec: other as u8 }),
        }
    }

    /// The broker stamped the batch (attributes bit 3): every record's timestamp is the batch's
    /// maxTimestamp, whatever its delta says.
    pub fn log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }

    /// The number of records the batch announces (never negative); [`Records`] yields exactly
    /// this many or fails.
    pub fn records_count(&self) -> i32 {
        self.records_count
    }

    /// The idempotent producer's id, or -1.
    pub fn producer_id(&self) -> i64 {
        self.producer_id
    }

    /// Checks the CRC-32C (over attributes to the end, as Kafka defines it) and returns the
    /// records. Uncompressed batches are read in place and `scratch` is untouched; compressed
    /// ones are inflated into `scratch` (cleared first, its capacity kept for the next batch)
    /// with at most `cap` bytes of output, so a decompression bomb costs at most `cap`.
    pub fn records<'s>(&self, scratch: &'s mut Vec<u8>, cap: usize) -> Result<Records<'s>, RecordsError>
    where
        'a: 's,
    {
        let computed = crc32c::crc32c(self.checked);
        if computed != self.crc {
            return Err(RecordsError::CrcMismatch { offset: self.base_offset, stored: self.crc, computed });
        }
        let data: &'s [u8] = match self.codec()? {
            Compression::None => self.body,
            codec => {
                let offset = self.base_offset;
                scratch.clear();
                let mut reader = compression::reader(codec, self.body, cap)
                    .map_err(|source| RecordsError::Decompress { offset, source })?;
                reader.read_to_end(scratch).map_err(|error| RecordsError::Decompress {
                    offset,
                    source: DecompressError::from_io(error, compression::codec_name(codec)),
                })?;
                scratch.as_slice()
            }
        };
        Ok(Records {
            data,
            remaining: self.records_count.unsigned_abs(),
            count: self.records_count.unsigned_abs(),
            base_offset: self.base_offset,
            last_offset_delta: self.last_offset_delta,
            base_timestamp: self.base_timestamp,
            max_timestamp: self.max_timestamp,
            log_append_time: self.log_append_time(),
            done: false,
        })
    }
}

/// The records of one batch, borrowed from the record set or the scratch buffer. Yields exactly
/// the batch's `recordsCount` records: running out of bytes first, or bytes left after the last
/// record, is an error (the last item), and so is any record whose length varint does not match
/// its content. After an error the iterator ends.
#[derive(Debug, Clone)]
pub struct Records<'s> {
    data: &'s [u8],
    remaining: u32,
    count: u32,
    base_offset: i64,
    last_offset_delta: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    log_append_time: bool,
    done: bool,
}

impl<'s> Records<'s> {
    fn record(&self) -> Result<(Record<'s>, &'s [u8]), &'static str> {
        let mut cursor = Cursor::new(self.data);
        let length = cursor.varint()?;
        let length = usize::try_from(length).map_err(|_| "negative record length")?;
        let body = cursor.take(length).ok_or("record length runs past the end of the batch's records")?;
        let mut record = Cursor::new(body);
        let _attributes = record.i8().ok_or("record ends before its attributes")?;
        let timestamp_delta = record.varlong()?;
        let offset_delta = record.varint()?;
        let key = record.nullable("negative key length", "key runs past the record's length")?;
        let value = record.nullable("negative value length", "value runs past the record's length")?;
        let header_count = record.varint()?;
        let header_count = usize::try_from(header_count).map_err(|_| "negative header count")?;
        // Walked once here so that iterating the headers cannot fail; each header takes at least
        // two bytes, so a huge count fails as soon as the bytes run out.
        let header_bytes = record.rest();
        let mut check = Cursor::new(header_bytes);
        for _ in 0..header_count {
            header(&mut check)?;
        }
        if !check.rest().is_empty() {
            return Err("record length is longer than its content");
        }
        // Within the batch's offsets, so that `offset + 1` (the next to consume) cannot overflow and
        // a consumer never commits past the batch; Kafka writes no other.
        if !(0..=self.last_offset_delta).contains(&offset_delta) {
            return Err("record offset delta outside the batch's [0, lastOffsetDelta]");
        }
        let offset = self.base_offset.checked_add(i64::from(offset_delta)).ok_or("record offset overflows")?;
        let timestamp_ms = if self.log_append_time {
            self.max_timestamp
        } else {
            self.base_timestamp.checked_add(timestamp_delta).ok_or("record timestamp overflows")?
        };
        let headers = Headers { bytes: header_bytes, remaining: header_count };
        Ok((Record { offset, timestamp_ms, key, value, headers }, cursor.rest()))
    }
}

impl<'s> Iterator for Records<'s> {
    type Item = Result<Record<'s>, RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let index = self.count - self.remaining;
        if self.remaining == 0 {
            self.done = true;
            if self.data.is_empty() {
                return None;
            }
            let reason = format!("{} bytes left over after the batch's {} records", self.data.len(), self.count);
            return Some(Err(corrupt(self.base_offset, reason)));
        }
        match self.record() {
            Ok((record, rest)) => {
                self.data = rest;
                self.remaining -= 1;
                Some(Ok(record))
            }
            Err(reason) => {
                self.done = true;
                Some(Err(corrupt(self.base_offset, format!("record {index} of {}: {reason}", self.count))))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            return (0, Some(0));
        }
        // One more for the error a malformed batch ends with.
        let remaining = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        (0, Some(remaining.saturating_add(1)))
    }
}

impl FusedIterator for Records<'_> {}

/// One record, its key, value and headers borrowed.
#[derive(Debug, Clone)]
pub struct Record<'s> {
    /// `base_offset + offsetDelta`, between the batch's base and last offsets (others are
    /// corrupt), so `offset + 1` never overflows.
    pub offset: i64,
    /// The batch's maxTimestamp if it has log-append time, else `baseTimestamp +
    /// timestampDelta` (milliseconds since the epoch).
    pub timestamp_ms: i64,
    /// None for a null key (length -1).
    pub key: Option<&'s [u8]>,
    /// None for a null value (a tombstone).
    pub value: Option<&'s [u8]>,
    /// Parsed lazily; their structure was checked against the record's bytes already.
    pub headers: Headers<'s>,
}

/// A record's headers, `(key, value)` in wire order (duplicates kept), read lazily over bytes
/// already checked when the record was produced, so iterating cannot fail. Clone it to walk the
/// headers more than once.
#[derive(Debug, Clone)]
pub struct Headers<'s> {
    bytes: &'s [u8],
    remaining: usize,
}

impl<'s> Headers<'s> {
    /// Headers not yet iterated.
    pub fn len(&self) -> usize {
        self.remaining
    }

    /// No headers left.
    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }
}

impl<'s> Iterator for Headers<'s> {
    type Item = (&'s [u8], Option<&'s [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let mut cursor = Cursor::new(self.bytes);
        match header(&mut cursor) {
            Ok(pair) => {
                self.bytes = cursor.rest();
                self.remaining -= 1;
                Some(pair)
            }
            // Checked by Records::next; never reached, but ends rather than panics.
            Err(_) => {
                self.remaining = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Headers<'_> {}
impl FusedIterator for Headers<'_> {}

/// One header: a key (never null) and a nullable value.
fn header<'s>(cursor: &mut Cursor<'s>) -> Result<(&'s [u8], Option<&'s [u8]>), &'static str> {
    let key_length = cursor.varint()?;
    let key_length = usize::try_from(key_length).map_err(|_| "negative header key length")?;
    let key = cursor.take(key_length).ok_or("header key runs past the record's length")?;
    let value = cursor.nullable("negative header value length", "header value runs past the record's length")?;
    Ok((key, value))
}

/// A forward-only reader over borrowed bytes; every read is bounds-checked and a failed read
/// leaves it where it was (callers stop at the first failure anyway).
#[derive(Debug, Clone, Copy)]
struct Cursor<'s> {
    bytes: &'s [u8],
}

impl<'s> Cursor<'s> {
    fn new(bytes: &'s [u8]) -> Self {
        Cursor { bytes }
    }

    fn rest(&self) -> &'s [u8] {
        self.bytes
    }

    fn take(&mut self, n: usize) -> Option<&'s [u8]> {
        let (head, rest) = self.bytes.split_at_checked(n)?;
        self.bytes = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.bytes.split_first_chunk::<N>()?;
        self.bytes = rest;
        Some(*head)
    }

    fn i8(&mut self) -> Option<i8> {
        self.array().map(i8::from_be_bytes)
    }

    fn i16(&mut self) -> Option<i16> {
        self.array().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> Option<i32> {
        self.array().map(i32::from_be_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    fn i64(&mut self) -> Option<i64> {
        self.array().map(i64::from_be_bytes)
    }

    /// A zigzag varint of at most 5 bytes. As in Kafka's `ByteUtils.readVarint`, bits of the
    /// fifth byte beyond 32 are dropped.
    #[inline]
    fn varint(&mut self) -> Result<i32, &'static str> {
        let mut value: u32 = 0;
        for shift in [0u32, 7, 14, 21, 28] {
            let (&byte, rest) = self.bytes.split_first().ok_or("varint runs past the end")?;
            self.bytes = rest;
            value |= u32::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(((value >> 1) as i32) ^ -((value & 1) as i32));
            }
        }
        Err("varint longer than 5 bytes")
    }

    /// A zigzag varlong of at most 10 bytes (bits of the tenth beyond 64 dropped, as in Kafka).
    #[inline]
    fn varlong(&mut self) -> Result<i64, &'static str> {
        let mut value: u64 = 0;
        for shift in [0u32, 7, 14, 21, 28, 35, 42, 49, 56, 63] {
            let (&byte, rest) = self.bytes.split_first().ok_or("varlong runs past the end")?;
            self.bytes = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        Err("varlong longer than 10 bytes")
    }

    /// A varint length and that many bytes; -1 is null, any other negative length an error.
    fn nullable(&mut self, negative: &'static str, truncated: &'static str) -> Result<Option<&'s [u8]>, &'static str> {
        match self.varint()? {
            -1 => Ok(None),
            length => {
                let length = usize::try_from(length).map_err(|_| negative)?;
                self.take(length).map(Some).ok_or(truncated)
            }
        }
    }
}

#[cfg(test)]
mod tests;
