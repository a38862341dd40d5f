//! Kafka record batch (magic v2) headers: parsing, validation and in-place offset assignment.
//!
//! The 61-byte header, all fields big-endian:
//! `baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 | crc u32 |
//! attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 | maxTimestamp i64 |
//! producerId i64 | producerEpoch i16 | baseSequence i32 | recordsCount i32`.
//! `batchLength` counts the bytes after itself; the CRC-32C covers `attributes` to the end, so
//! the broker can rewrite the base offset and the leader epoch without recomputing it.

use kafka_protocol::records::{Compression, TimestampType};
use std::ops::Range;

/// Size of a v2 batch header.
pub const HEADER_SIZE: usize = 61;
use millrace_protocol::records::{COMPRESSION_MASK, CONTROL_BIT, MAGIC_AT, TIMESTAMP_TYPE_BIT, TRANSACTIONAL_BIT};
pub use millrace_protocol::records::{LOG_OVERHEAD, MAGIC_V2};

const BASE_OFFSET_AT: usize = 0;
const LENGTH_AT: usize = 8;
const LEADER_EPOCH_AT: usize = 12;
const CRC_AT: usize = 17;
/// Where the CRC-32C coverage starts (the attributes field).
pub(crate) const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORDS_COUNT_AT: usize = 57;

/// Why a record batch was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The buffer ends before the batch (or its header) does.
    #[error("record batch truncated: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the batch needs.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// `batchLength` is too small to hold a v2 header.
    #[error("record batch length {0} is invalid: a v2 batch has at least 49 bytes after it")]
    InvalidLength(i32),
    /// Not a v2 batch.
    #[error("unsupported record batch magic {0}: only v2 record batches are accepted")]
    UnsupportedMagic(i8),
    /// The stored checksum does not match the content.
    #[error("record batch CRC mismatch: stored 0x{stored:08x}, computed 0x{computed:08x}")]
    CrcMismatch {
        /// CRC in the header.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// Attribute bits 0-2 name no known codec.
    #[error("record batch uses unknown compression codec {0}")]
    UnknownCompression(i16),
    /// `lastOffsetDelta` is negative.
    #[error("record batch lastOffsetDelta {0} is negative")]
    NegativeOffsetDelta(i32),
    /// `recordsCount` disagrees with `lastOffsetDelta`, or is not positive.
    #[error(
        "record batch holds {records} records but its lastOffsetDelta is {last_offset_delta} \
         (a producer's batch holds lastOffsetDelta + 1 > 0 records)"
    )]
    RecordCountMismatch {
        /// `recordsCount`.
        records: i32,
        /// `lastOffsetDelta`.
        last_offset_delta: i32,
    },
    /// The buffer is not exactly one batch.
    #[error("expected exactly one record batch of {expected} bytes, got {actual} bytes")]
    SizeMismatch {
        /// Size the header announces.
        expected: usize,
        /// Size of the buffer.
        actual: usize,
    },
}

/// A parsed v2 record batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes following this field.
    pub batch_length: i32,
    /// Leader epoch when the batch was appended.
    pub partition_leader_epoch: i32,
    /// Format version, always 2 once parsed.
    pub magic: i8,
    /// CRC-32C of `attributes` to the end.
    pub crc: u32,
    /// Compression, timestamp type, transactional and control flags.
    pub attributes: i16,
    /// Offset of the last record minus `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest record timestamp.
    pub max_timestamp: i64,
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records.
    pub records_count: i32,
}

fn field<const N: usize>(header: &[u8; HEADER_SIZE], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(bytes) = header.get(at..at + N) {
        out.copy_from_slice(bytes);
    }
    out
}

impl BatchHeader {
    /// Parses and checks the header at the start of `buf` (the records need not be present):
    /// header length, magic, `batchLength`, codec and `lastOffsetDelta`.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        // Check the magic first: a v0/v1 message set has it at the same place but a shorter header.
        let magic = match buf.get(MAGIC_AT) {
            Some(&byte) => byte as i8,
            None => return Err(BatchError::Truncated { needed: HEADER_SIZE, available: buf.len() }),
        };
        if magic != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic(magic));
        }
        let header: &[u8; HEADER_SIZE] = buf
            .get(..HEADER_SIZE)
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(BatchError::Truncated { needed: HEADER_SIZE, available: buf.len() })?;
        let parsed = BatchHeader {
            base_offset: i64::from_be_bytes(field(header, BASE_OFFSET_AT)),
            batch_length: i32::from_be_bytes(field(header, LENGTH_AT)),
            partition_leader_epoch: i32::from_be_bytes(field(header, LEADER_EPOCH_AT)),
            magic,
            crc: u32::from_be_bytes(field(header, CRC_AT)),
            attributes: i16::from_be_bytes(field(header, ATTRIBUTES_AT)),
            last_offset_delta: i32::from_be_bytes(field(header, LAST_OFFSET_DELTA_AT)),
            base_timestamp: i64::from_be_bytes(field(header, BASE_TIMESTAMP_AT)),
            max_timestamp: i64::from_be_bytes(field(header, MAX_TIMESTAMP_AT)),
            producer_id: i64::from_be_bytes(field(header, PRODUCER_ID_AT)),
            producer_epoch: i16::from_be_bytes(field(header, PRODUCER_EPOCH_AT)),
            base_sequence: i32::from_be_bytes(field(header, BASE_SEQUENCE_AT)),
            records_count: i32::from_be_bytes(field(header, RECORDS_COUNT_AT)),
        };
        if parsed.batch_length < (HEADER_SIZE - LOG_OVERHEAD) as i32 {
            return Err(BatchError::InvalidLength(parsed.batch_length));
        }
        parsed.compression()?;
        if parsed.last_offset_delta < 0 {
            return Err(BatchError::NegativeOffsetDelta(parsed.last_offset_delta));
        }
        Ok(parsed)
    }

    /// Size of the whole batch in bytes, header included.
    pub fn total_size(&self) -> usize {
        // parse() guarantees batch_length >= 49, so the cast cannot wrap.
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// Offset following the batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    /// The codec of the records (attribute bits 0-2).
    pub fn compression(&self) -> Result<Compression, BatchError> {
        match self.attributes & COMPRESSION_MASK {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(BatchError::UnknownCompression(other)),
        }
    }

    /// Whether record timestamps are producer creation time or log append time (bit 3).
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppend
        } else {
            TimestampType::Creation
        }
    }

    /// Part of a transaction (bit 4).
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// Holds control records such as transaction markers (bit 5).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// Checks that `records_count` equals `last_offset_delta + 1` and is positive, as it is for
    /// every batch a producer sends (only compaction may leave holes).
    pub fn check_record_count(&self) -> Result<(), BatchError> {
        if self.records_count <= 0 || i64::from(self.records_count) != i64::from(self.last_offset_delta) + 1 {
            return Err(self.record_count_mismatch());
        }
        Ok(())
    }

    /// The looser check for a batch already in the log: compaction leaves holes between the
    /// offsets of a batch and may keep a producer's last batch with no records at all, so
    /// `0 <= records_count <= last_offset_delta + 1`.
    pub fn check_stored_record_count(&self) -> Result<(), BatchError> {
        if self.records_count < 0 || i64::from(self.records_count) > i64::from(self.last_offset_delta) + 1 {
            return Err(self.record_count_mismatch());
        }
        Ok(())
    }

    fn record_count_mismatch(&self) -> BatchError {
        BatchError::RecordCountMismatch { records: self.records_count, last_offset_delta: self.last_offset_delta }
    }

    /// The 61 header bytes for these fields, the stored `crc` included as it is.
    fn to_bytes(self) -> [u8; HEADER_SIZE] {
        let mut out = [0u8; HEADER_SIZE];
        let fields: [(usize, &[u8]); 13] = [
            (BASE_OFFSET_AT, &self.base_offset.to_be_bytes()),
            (LENGTH_AT, &self.batch_length.to_be_bytes()),
            (LEADER_EPOCH_AT, &self.partition_leader_epoch.to_be_bytes()),
            (MAGIC_AT, &self.magic.to_be_bytes()),
            (CRC_AT, &self.crc.to_be_bytes()),
            (ATTRIBUTES_AT, &self.attributes.to_be_bytes()),
            (LAST_OFFSET_DELTA_AT, &self.last_offset_delta.to_be_bytes()),
            (BASE_TIMESTAMP_AT, &self.base_timestamp.to_be_bytes()),
            (MAX_TIMESTAMP_AT, &self.max_timestamp.to_be_bytes()),
            (PRODUCER_ID_AT, &self.producer_id.to_be_bytes()),
            (PRODUCER_EPOCH_AT, &self.producer_epoch.to_be_bytes()),
            (BASE_SEQUENCE_AT, &self.base_sequence.to_be_bytes()),
            (RECORDS_COUNT_AT, &self.records_count.to_be_bytes()),
        ];
        for (at, bytes) in fields {
            if let Some(target) = out.get_mut(at..at + bytes.len()) {
                target.copy_from_slice(bytes);
            }
        }
        out
    }
}

/// Overwrites the header of the complete batch at the start of `batch` with `header` and
/// recomputes the CRC-32C (the compaction cleaner fixes up re-encoded batches this way).
/// `header.batch_length` must describe `batch`.
pub(crate) fn rewrite_header(batch: &mut [u8], header: &BatchHeader) -> Result<(), BatchError> {
    let available = batch.len();
    if header.total_size() != available {
        return Err(BatchError::SizeMismatch { expected: header.total_size(), actual: available });
    }
    overwrite(batch, 0, &header.to_bytes())?;
    let crc = crc32c::crc32c(batch.get(ATTRIBUTES_AT..).unwrap_or_default());
    overwrite(batch, CRC_AT, &crc.to_be_bytes())
}

/// A batch with no records covering `base_offset..=last_offset` (Kafka's "empty batch"), which
/// keeps an idempotent producer's last sequence number in the log after compaction removed its
/// records. Producer fields, leader epoch and the transactional flag come from `original`; it is
/// uncompressed and carries no timestamp, as it holds no record.
pub(crate) fn empty_batch(
    original: &BatchHeader,
    base_offset: i64,
    last_offset: i64,
    base_sequence: i32,
) -> Result<Vec<u8>, BatchError> {
    let last_offset_delta = match i32::try_from(last_offset - base_offset) {
        Ok(delta) if delta >= 0 => delta,
        // Offsets taken from one batch are always in range; refuse rather than wrap if not.
        _ => return Err(BatchError::NegativeOffsetDelta(-1)),
    };
    let header = BatchHeader {
        base_offset,
        batch_length: (HEADER_SIZE - LOG_OVERHEAD) as i32,
        partition_leader_epoch: original.partition_leader_epoch,
        magic: MAGIC_V2,
        crc: 0,
        attributes: original.attributes & TRANSACTIONAL_BIT,
        last_offset_delta,
        base_timestamp: -1,
        max_timestamp: -1,
        producer_id: original.producer_id,
        producer_epoch: original.producer_epoch,
        base_sequence,
        records_count: 0,
    };
    let mut batch = vec![0u8; HEADER_SIZE];
    rewrite_header(&mut batch, &header)?;
    Ok(batch)
}

/// Verifies the CRC-32C of the complete batch at the start of `batch`.
pub fn verify_crc(batch: &[u8]) -> Result<(), BatchError> {
    let header = BatchHeader::parse(batch)?;
    let body = batch
        .get(ATTRIBUTES_AT..header.total_size())
        .ok_or(BatchError::Truncated { needed: header.total_size(), available: batch.len() })?;
    let computed = crc32c::crc32c(body);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch { stored: header.crc, computed });
    }
    Ok(())
}

/// Fully validates the single batch at the start of `buf`: header, completeness, CRC and record
/// count. Returns the header.
pub fn validate(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(buf)?;
    if buf.len() < header.total_size() {
        return Err(BatchError::Truncated { needed: header.total_size(), available: buf.len() });
    }
    verify_crc(buf)?;
    header.check_record_count()?;
    Ok(header)
}

fn overwrite(batch: &mut [u8], at: usize, bytes: &[u8]) -> Result<(), BatchError> {
    let available = batch.len();
    match batch.get_mut(at..at + bytes.len()) {
        Some(target) => {
            target.copy_from_slice(bytes);
            Ok(())
        }
        None => Err(BatchError::Truncated { needed: HEADER_SIZE, available }),
    }
}

/// Rewrites the base offset in place (outside the CRC, so the batch stays valid).
pub fn set_base_offset(batch: &mut [u8], offset: i64) -> Result<(), BatchError> {
    overwrite(batch, BASE_OFFSET_AT, &offset.to_be_bytes())
}

/// Rewrites the partition leader epoch in place (outside the CRC).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) -> Result<(), BatchError> {
    overwrite(batch, LEADER_EPOCH_AT, &epoch.to_be_bytes())
}

/// Splits a produce request's `records` into its batches, validating each one completely
/// (v2, whole, CRC-valid, `recordsCount == lastOffsetDelta + 1 > 0`). An empty buffer gives no
/// batches; any invalid batch rejects the whole buffer.
pub fn split_batches(buf: &[u8]) -> Result<Vec<Range<usize>>, BatchError> {
    let mut ranges = Vec::new();
    let mut position = 0;
    while position < buf.len() {
        let rest = buf.get(position..).unwrap_or_default();
        let header = validate(rest)?;
        let end = position + header.total_size();
        ranges.push(position..end);
        position = end;
    }
    Ok(ranges)
}

/// Counts the records of the whole batches in `data` (e.g. a fetch response), stopping at the
/// first incomplete or unparsable batch. Used for metrics only, so it never fails.
pub fn count_records(data: &[u8]) -> u64 {
    let mut position = 0;
    let mut records = 0u64;
    while let Some(rest) = data.get(position..) {
        match BatchHeader::parse(rest) {
            Ok(header) if header.total_size() <= rest.len() => {
                records += u64::try_from(header.records_count).unwrap_or(0);
                position += header.total_size();
            }
            _ => break,
        }
    }
    records
}

#[cfg(test)]
pub(crate) mod test_batches {
    //! Builds real batches with kafka-protocol's encoder, shared by the log's tests.
    #![allow(clippy::unwrap_used)]
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

    /// Idempotent producer fields of a test batch.
    #[derive(Clone, Copy)]
    pub struct Producer {
        pub id: i64,
        pub epoch: i16,
        pub sequence: i32,
    }

    /// One v2 batch of records with the given timestamps, values `"{prefix}-{i}"`.
    pub fn batch_with(
        timestamps: &[i64],
        prefix: &str,
        compression: Compression,
        producer: Option<Producer>,
    ) -> Vec<u8> {
        let values: Vec<String> = (0..timestamps.len()).map(|i| format!("{prefix}-{i}")).collect();
        let entries: Vec<_> = timestamps.iter().zip(&values).map(|(&ts, v)| (None, Some(v.as_str()), ts)).collect();
        keyed(&entries, compression, producer)
    }

    /// An uncompressed, non-idempotent batch of `count` records at timestamp `ts`.
    pub fn simple(count: usize, ts: i64) -> Vec<u8> {
        batch_with(&vec![ts; count], "v", Compression::None, None)
    }

    /// One v2 batch of `(key, value, timestamp)` records; None is a null key or value.
    pub fn keyed(
        entries: &[(Option<&str>, Option<&str>, i64)],
        compression: Compression,
        producer: Option<Producer>,
    ) -> Vec<u8> {
        let (id, epoch, sequence) = producer.map_or((-1, -1, -1), |p| (p.id, p.epoch, p.sequence));
        let records: Vec<Record> = entries
            .iter()
            .enumerate()
            .map(|(i, &(key, value, timestamp))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: id,
                producer_epoch: epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // The encoder derives baseSequence from the first record; -1 + i keeps
                // "no sequence" batches in one batch.
                sequence: sequence.wrapping_add(i as i32),
                timestamp,
                key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
                value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
                headers: Default::default(),
            })
            .collect();
        encode(&records, compression)
    }

    fn encode(records: &[Record], compression: Compression) -> Vec<u8> {
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression };
        RecordBatchEncoder::encode(&mut buf, records, &options).unwrap();
        buf.to_vec()
    }

    /// A transaction marker (control batch) of producer `id`: one control record whose key is
    /// the marker type (0 = abort, 1 = commit) and whose value is version 0 plus a coordinator
    /// epoch.
    pub fn control_marker(id: i64, epoch: i16, commit: bool, timestamp: i64) -> Vec<u8> {
        let record = Record {
            transactional: true,
            control: true,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: id,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp,
            key: Some(Bytes::copy_from_slice(&[0, 0, 0, u8::from(commit)])),
            value: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0])),
            headers: Default::default(),
        };
        encode(&[record], Compression::None)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::test_batches::*;
    use super::*;

    #[test]
    fn parses_an_encoded_batch() {
        let batch = batch_with(&[10, 30, 20], "x", Compression::None, None);
        let header = validate(&batch).unwrap();
        assert_eq!(header.total_size(), batch.len());
        assert_eq!(header.records_count, 3);
        assert_eq!(header.last_offset_delta, 2);
        assert_eq!(header.base_timestamp, 10);
        assert_eq!(header.max_timestamp, 30);
        assert_eq!(header.producer_id, -1);
        assert_eq!(header.base_sequence, -1);
        assert_eq!(header.compression().unwrap(), Compression::None);
        assert_eq!(header.timestamp_type(), TimestampType::Creation);
        assert!(!header.is_transactional() && !header.is_control());
        let compressed = batch_with(&[1, 2], "x", Compression::Zstd, None);
        assert_eq!(validate(&compressed).unwrap().compression().unwrap(), Compression::Zstd);
    }

    #[test]
    fn offset_and_epoch_rewrites_keep_the_crc_valid() {
        let mut batch = simple(2, 5);
        set_base_offset(&mut batch, 1234).unwrap();
        set_partition_leader_epoch(&mut batch, 7).unwrap();
        let header = validate(&batch).unwrap();
        assert_eq!(header.base_offset, 1234);
        assert_eq!(header.last_offset(), 1235);
        assert_eq!(header.partition_leader_epoch, 7);
        assert!(set_base_offset(&mut [0u8; 4], 1).is_err());
    }

    #[test]
    fn detects_crc_mismatch_bad_magic_and_truncation() {
        let mut batch = simple(2, 5);
        let last = batch.len() - 1;
        batch[last] ^= 0xff;
        let err = validate(&batch).unwrap_err();
        assert!(matches!(err, BatchError::CrcMismatch { .. }), "{err}");
        assert!(err.to_string().starts_with("record batch CRC mismatch: stored 0x"));

        let mut batch = simple(2, 5);
        batch[MAGIC_AT] = 1;
        assert_eq!(validate(&batch).unwrap_err(), BatchError::UnsupportedMagic(1));

        let batch = simple(2, 5);
        assert!(matches!(validate(&batch[..30]), Err(BatchError::Truncated { .. })));
        assert!(matches!(validate(&batch[..batch.len() - 1]), Err(BatchError::Truncated { .. })));

        let mut batch = simple(2, 5);
        batch[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&10i32.to_be_bytes());
        assert_eq!(validate(&batch).unwrap_err(), BatchError::InvalidLength(10));
    }

    #[test]
    fn record_count_must_match_last_offset_delta() {
        let mut batch = simple(3, 5);
        batch[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&2i32.to_be_bytes());
        let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
        batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(validate(&batch), Err(BatchError::RecordCountMismatch { .. })));
    }

    #[test]
    fn rewritten_headers_and_empty_batches_are_valid() {
        let mut batch = batch_with(&[1, 2, 3], "x", Compression::Lz4, None);
        let mut header = validate(&batch).unwrap();
        header.base_sequence = 40;
        header.attributes |= TIMESTAMP_TYPE_BIT;
        rewrite_header(&mut batch, &header).unwrap();
        let reparsed = validate(&batch).unwrap();
        assert_eq!((reparsed.base_sequence, reparsed.timestamp_type()), (40, TimestampType::LogAppend));
        assert_eq!(reparsed.compression().unwrap(), Compression::Lz4);
        assert!(rewrite_header(&mut batch[..70], &header).is_err());

        let original = BatchHeader { producer_id: 9, producer_epoch: 2, attributes: header.attributes, ..header };
        let empty = empty_batch(&original, 100, 104, 7).unwrap();
        let parsed = BatchHeader::parse(&empty).unwrap();
        verify_crc(&empty).unwrap();
        assert_eq!((parsed.base_offset, parsed.last_offset(), parsed.records_count), (100, 104, 0));
        assert_eq!((parsed.producer_id, parsed.producer_epoch, parsed.base_sequence), (9, 2, 7));
        assert_eq!(parsed.compression().unwrap(), Compression::None);
        assert!(parsed.check_record_count().is_err());
        parsed.check_stored_record_count().unwrap();
        assert!(empty_batch(&original, 100, 99, 7).is_err());
    }

    #[test]
    fn splits_several_batches_and_rejects_a_partial_one() {
        let mut buf = simple(2, 1);
        let first = buf.len();
        buf.extend(batch_with(&[1, 2, 3], "y", Compression::Lz4, None));
        let ranges = split_batches(&buf).unwrap();
        assert_eq!(ranges, vec![0..first, first..buf.len()]);
        assert_eq!(count_records(&buf), 5);
        assert!(split_batches(&buf[..buf.len() - 3]).is_err());
        assert_eq!(count_records(&buf[..buf.len() - 3]), 2);
        assert!(split_batches(&[]).unwrap().is_empty());
    }
}
