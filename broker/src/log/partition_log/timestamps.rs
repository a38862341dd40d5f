//! Lookups by time (ListOffsets): the first offset at or after a timestamp, and the log's largest
//! timestamp; a batch whose records must be decoded can be copied out and decoded unlocked.

use super::PartitionLog;
use crate::log::compression;
use crate::log::error::LogError;
use crate::log::segment::Segment;
use kafka_protocol::records::TimestampType;
use std::path::{Path, PathBuf};

impl PartitionLog {
    /// First offset whose record timestamp is >= `ts`, and that timestamp. Decodes records under
    /// the caller's borrow; [`crate::partition::Partition`] uses [`Self::timestamp_lookup`] to
    /// decode without holding the log.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, LogError> {
        let mut from = self.log_start_offset;
        loop {
            match self.timestamp_lookup(ts, from)? {
                TimestampLookup::Done(found) => return Ok(found),
                TimestampLookup::InBatch(batch) => match batch.first_record_at_or_after(ts)? {
                    Some(found) => return Ok(Some(found)),
                    None => from = batch.next_offset,
                },
            }
        }
    }

    /// The part of a timestamp lookup that needs the log: the first batch at or after offset
    /// `from` whose max timestamp reaches `ts`. When only its records can tell, the batch is
    /// copied out to be decoded by [`TimestampBatch::first_record_at_or_after`].
    pub fn timestamp_lookup(&self, ts: i64, from: i64) -> Result<TimestampLookup, LogError> {
        let from = from.max(self.log_start_offset);
        for segment in self.segments() {
            if segment.next_offset() <= from || segment.max_timestamp().is_none_or(|(max, _)| max < ts) {
                continue;
            }
            let mut position = segment.position_for_timestamp(ts);
            while let Some(header) = segment.read_header_at(position)? {
                if header.last_offset() >= from && header.max_timestamp >= ts {
                    if header.timestamp_type() == TimestampType::LogAppend {
                        // Every record carries the batch's append time.
                        return Ok(TimestampLookup::Done(Some((header.base_offset.max(from), header.max_timestamp))));
                    }
                    return Ok(TimestampLookup::InBatch(TimestampBatch {
                        bytes: bytes::Bytes::from(segment.read_bytes(position, header.total_size())?),
                        from,
                        next_offset: header.next_offset(),
                        cap: self.config.max_decompressed_bytes,
                        path: segment.log_path().to_path_buf(),
                        position,
                    }));
                }
                position += header.total_size() as u64;
            }
        }
        Ok(TimestampLookup::Done(None))
    }

    /// Largest timestamp in the log and the offset of the first batch carrying it (segments
    /// only know batches; [`Self::max_timestamp`] finds the record).
    pub fn max_timestamp_batch(&self) -> Option<(i64, i64)> {
        let mut best: Option<(i64, i64)> = None;
        for (ts, offset) in self.segments().filter_map(Segment::max_timestamp) {
            if best.is_none_or(|(max, _)| ts > max) {
                best = Some((ts, offset));
            }
        }
        best
    }

    /// Largest timestamp in the log and the offset of the first record carrying it, None if the
    /// log holds no timestamps.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let (ts, batch_offset) = self.max_timestamp_batch()?;
        resolve_max_timestamp(ts, batch_offset, self.offset_for_timestamp(ts), &self.dir)
    }
}

/// A timestamp lookup after the part that needs the log.
pub enum TimestampLookup {
    /// Answered from the headers: the offset and its timestamp, or no record reaches `ts`.
    Done(Option<(i64, i64)>),
    /// The answer is in this batch's records.
    InBatch(TimestampBatch),
}

/// A batch copied out of the log whose records answer a timestamp lookup.
pub struct TimestampBatch {
    bytes: bytes::Bytes,
    /// Records below this offset do not count (the log start, or where the lookup resumed).
    from: i64,
    /// Where to resume should no record of this batch count.
    pub next_offset: i64,
    cap: usize,
    path: PathBuf,
    position: u64,
}

impl TimestampBatch {
    /// The first record at or after `from` with a timestamp >= `ts`, decoding (and inflating, up
    /// to the log's cap) the batch.
    pub fn first_record_at_or_after(&self, ts: i64) -> Result<Option<(i64, i64)>, LogError> {
        let mut bytes = self.bytes.clone();
        let records = compression::decode_batch(&mut bytes, self.cap).map_err(|e| LogError::Corrupt {
            path: self.path.clone(),
            position: self.position,
            reason: format!("cannot decode records: {e}"),
        })?;
        Ok(records.records.iter().find(|r| r.timestamp >= ts && r.offset >= self.from).map(|r| (r.offset, r.timestamp)))
    }
}

/// The max-timestamp answer from the record lookup, falling back to the batch offset.
pub fn resolve_max_timestamp(
    ts: i64,
    batch_offset: i64,
    lookup: Result<Option<(i64, i64)>, LogError>,
    dir: &Path,
) -> Option<(i64, i64)> {
    match lookup {
        Ok(Some((offset, found))) if found == ts => Some((ts, offset)),
        Ok(_) => Some((ts, batch_offset)),
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "max timestamp lookup fell back to the batch offset");
            Some((ts, batch_offset))
        }
    }
}
