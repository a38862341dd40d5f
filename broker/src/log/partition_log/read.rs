//! The read path of Fetch: [`PartitionLog::read`] returns whole batches from an offset, across
//! segments, within a byte budget.

use super::PartitionLog;
use crate::log::batch::{BatchError, BatchHeader};
use crate::log::error::LogError;
use crate::log::segment::Segment;

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
        let mut data = Vec::new();
        let segments: Vec<&Segment> = self.segments().collect();
        let first = segments.partition_point(|s| s.base_offset() <= offset).saturating_sub(1);
        if offset >= limit {
            return Ok(ReadResult { data: bytes::Bytes::new(), high_offset: end });
        }
        for (i, segment) in segments.iter().enumerate().skip(first) {
            let start = if i == first {
                match segment.find_batch(offset)? {
                    Some((position, _)) => position,
                    None => continue,
                }
            } else {
                0
            };
            let budget = max_bytes.saturating_sub(data.len());
            let available = segment.size() - start;
            let chunk_len = (budget as u64).min(available) as usize;
            let chunk = segment.read_bytes(start, chunk_len)?;
            let (used, stopped) = whole_batches(&chunk, limit).map_err(|e| LogError::Corrupt {
                path: segment.log_path().to_path_buf(),
                position: start,
                reason: e.to_string(),
            })?;
            if used == 0 && data.is_empty() && !stopped && (chunk_len as u64) < available {
                // The first batch alone exceeds max_bytes: return it whole only if asked to.
                if min_one_batch {
                    if let Some(header) = segment.read_header_at(start)? {
                        if header.base_offset < limit {
                            data = segment.read_bytes(start, header.total_size())?;
                        }
                    }
                }
                break;
            }
            data.extend_from_slice(chunk.get(..used).unwrap_or_default());
            if stopped || (chunk_len as u64) < available || used < chunk.len() {
                break;
            }
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
