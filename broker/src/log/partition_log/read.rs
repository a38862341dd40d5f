//! The read path of Fetch: [`PartitionLog::read`] returns whole batches from an offset, across
//! segments, within a byte budget.

use super::PartitionLog;
use crate::log::batch::{BatchError, BatchHeader};
use crate::log::error::LogError;
use crate::log::segment::Segment;

/// Unused room in a read's buffer worth giving back before it is sent.
const SHRINK_AT: usize = 64 * 1024;

/// Outcome of a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    /// Whole batches, concatenated.
    pub data: bytes::Bytes,
    /// Log end offset at read time.
    pub high_offset: i64,
}

impl PartitionLog {
    /// Reads whole batches from the one containing `offset`, below `max_offset` (exclusive),
    /// up to `max_bytes`; with `min_one_batch` a first batch larger than `max_bytes` is returned
    /// whole (KIP-74). May cross segments.
    ///
    /// The batches are read from the files straight into the buffer that is returned (one
    /// positioned read per segment, no zero-filling, no intermediate copy). Reads are bounded by
    /// each segment's recorded size, and the caller's lock keeps truncation out while they run.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<ReadResult, LogError> {
        let end = self.log_end_offset();
        if offset < self.log_start_offset || offset > end {
            return Err(LogError::OffsetOutOfRange { requested: offset, start: self.log_start_offset, end });
        }
        let limit = max_offset.min(end);
        let empty = || Ok(ReadResult { data: bytes::Bytes::new(), high_offset: end });
        if offset >= limit {
            return empty();
        }
        let segments: Vec<&Segment> = self.segments().collect();
        let from = segments.partition_point(|s| s.base_offset() <= offset).saturating_sub(1);
        // The batch holding `offset`, or the first after it (a later segment, past a hole).
        let mut found = None;
        for (i, segment) in segments.iter().enumerate().skip(from) {
            if let Some((position, header)) = segment.find_batch(offset)? {
                found = Some((i, position, header));
                break;
            }
        }
        let Some((first, start, header)) = found else { return empty() };
        if header.base_offset >= limit {
            return empty();
        }
        let rest = segments.get(first..).unwrap_or_default();
        if header.total_size() > max_bytes {
            // The first batch alone exceeds max_bytes: return it whole only if asked to. Its
            // size was checked against the segment's by `find_batch`.
            if !min_one_batch {
                return empty();
            }
            let data = rest.first().map_or(Ok(Vec::new()), |s| s.read_bytes(start, header.total_size()))?;
            return Ok(ReadResult { data: data.into(), high_offset: end });
        }
        // Never more than the segments hold from `start` on, whatever `max_bytes` says.
        let available: u64 = rest.iter().map(|s| s.size()).sum::<u64>() - start;
        let total = (max_bytes as u64).min(available) as usize;
        let mut data = Vec::with_capacity(total);
        let mut used = 0;
        for (i, segment) in rest.iter().enumerate() {
            let position = if i == 0 { start } else { 0 };
            let in_segment = segment.size() - position;
            let len = ((total - used) as u64).min(in_segment) as usize;
            segment.read_append(position, len, &mut data)?;
            let chunk = data.get(used..).unwrap_or_default();
            let (whole, stopped) = whole_batches(chunk, limit).map_err(|e| LogError::Corrupt {
                path: segment.log_path().to_path_buf(),
                position,
                reason: e.to_string(),
            })?;
            // A batch cut by the budget was read for nothing (at most one batch's worth); it is
            // dropped, and a next segment's data goes after the last whole batch.
            data.truncate(used + whole);
            used += whole;
            // Stop at `limit`, at the budget, or at a batch cut by it.
            if stopped || (len as u64) < in_segment || whole < len {
                break;
            }
        }
        if data.capacity() - data.len() >= SHRINK_AT {
            // Stopped well short of the budget (at the high watermark): hold only what is sent
            // until the response is written, not the whole budget (the allocator may move the
            // bytes once to do so).
            data.shrink_to_fit();
        }
        Ok(ReadResult { data: data.into(), high_offset: end })
    }
}

/// Length of the whole batches at the start of `chunk` whose base offset is below `limit`, and
/// whether the scan stopped at `limit` (rather than at the end of the chunk).
fn whole_batches(chunk: &[u8], limit: i64) -> Result<(usize, bool), BatchError> {
    let mut used = 0;
    while let Some(rest) = chunk.get(used..) {
        if rest.len() < crate::log::batch::HEADER_SIZE {
            break;
        }
        let header = BatchHeader::parse(rest)?;
        if header.base_offset >= limit {
            return Ok((used, true));
        }
        if header.total_size() > rest.len() {
            break;
        }
        used += header.total_size();
    }
    Ok((used, false))
}

#[cfg(test)]
mod tests;
