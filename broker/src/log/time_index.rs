//! The sparse time index of a segment (`.timeindex`): entries of timestamp i64 BE and relative
//! offset u32 BE, Kafka's layout. An entry (t, o) says that the largest timestamp among the
//! batches up to offset `o` is `t`; entries are added only when that maximum grows, so both
//! columns are sorted and lookups are binary searches.

use super::error::LogError;
use super::index::IndexFile;
use std::path::Path;

/// Size of one time index entry.
pub const TIME_ENTRY_SIZE: usize = 12;

/// One time index entry, absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    /// Largest timestamp so far in the segment.
    pub timestamp: i64,
    /// Offset (last offset of the batch) where that timestamp was seen.
    pub offset: i64,
}

/// Sparse, memory-mapped `.timeindex` of one segment.
pub struct TimeIndex {
    file: IndexFile,
    base_offset: i64,
}

impl TimeIndex {
    /// Creates an empty index preallocated to `max_bytes`.
    pub fn create(path: &Path, base_offset: i64, max_bytes: u32) -> Result<Self, LogError> {
        Ok(TimeIndex { file: IndexFile::create(path, TIME_ENTRY_SIZE, max_bytes)?, base_offset })
    }

    /// Opens an existing index without checking it (see [`TimeIndex::sanity_check`]).
    pub fn open(path: &Path, base_offset: i64) -> Result<Self, LogError> {
        Ok(TimeIndex { file: IndexFile::open(path, TIME_ENTRY_SIZE)?, base_offset })
    }

    fn decode(&self, bytes: &[u8]) -> TimestampOffset {
        let mut timestamp = [0u8; 8];
        let mut relative = [0u8; 4];
        timestamp.copy_from_slice(bytes.get(..8).unwrap_or(&[0; 8]));
        relative.copy_from_slice(bytes.get(8..12).unwrap_or(&[0; 4]));
        TimestampOffset {
            timestamp: i64::from_be_bytes(timestamp),
            offset: self.base_offset + i64::from(u32::from_be_bytes(relative)),
        }
    }

    /// Entry `i`, if used.
    pub fn entry(&self, i: usize) -> Option<TimestampOffset> {
        self.file.entry(i).map(|bytes| self.decode(bytes))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.file.len()
    }

    /// Whether the segment must roll. One slot stays free for the entry written at roll, as in
    /// Kafka, so the final maximum always makes it into the index.
    pub fn is_full(&self) -> bool {
        self.file.len() + 1 >= self.file.capacity()
    }

    /// The newest entry: the segment's largest timestamp once the segment is sealed.
    pub fn last_entry(&self) -> Option<TimestampOffset> {
        self.len().checked_sub(1).and_then(|i| self.entry(i))
    }

    /// The entry with the largest timestamp <= `timestamp`, or None if all are larger.
    pub fn lookup(&self, timestamp: i64) -> Option<TimestampOffset> {
        let count = self.file.partition_point(|bytes| self.decode(bytes).timestamp <= timestamp);
        count.checked_sub(1).and_then(|i| self.entry(i))
    }

    /// Adds (timestamp, offset) if `timestamp` is larger than the last entry's, keeping the index
    /// monotonic. `skip_full_check` uses the slot reserved for the final entry.
    pub fn maybe_append(&mut self, timestamp: i64, offset: i64, skip_full_check: bool) -> Result<(), LogError> {
        // A sealed (trimmed) index has no slot left at all, not even the reserved one.
        if (!skip_full_check && self.is_full()) || self.file.len() >= self.file.capacity() {
            return Ok(());
        }
        if let Some(last) = self.last_entry() {
            if timestamp <= last.timestamp {
                return Ok(());
            }
            if offset < last.offset {
                return Err(self.error(format!("offset {offset} is below the last entry's {}", last.offset)));
            }
        }
        let relative = offset - self.base_offset;
        if !(0..=i64::from(i32::MAX)).contains(&relative) {
            return Err(self.error(format!("offset {offset} is out of the segment's range")));
        }
        let mut bytes = [0u8; TIME_ENTRY_SIZE];
        bytes[..8].copy_from_slice(&timestamp.to_be_bytes());
        bytes[8..].copy_from_slice(&(relative as u32).to_be_bytes());
        self.file.push(&bytes)
    }

    fn error(&self, reason: String) -> LogError {
        LogError::Index { path: self.file.path().to_path_buf(), reason }
    }

    /// Checks an index read from disk: whole entries, timestamps strictly increasing, offsets
    /// non-decreasing within `[base, end_offset)`. Returns why it is unusable.
    pub fn sanity_check(&self, end_offset: i64) -> Result<(), String> {
        if !self.file.opened_len().is_multiple_of(TIME_ENTRY_SIZE as u64) {
            return Err(format!("size {} is not a multiple of {TIME_ENTRY_SIZE}", self.file.opened_len()));
        }
        let mut previous: Option<TimestampOffset> = None;
        for i in 0..self.len() {
            let Some(entry) = self.entry(i) else { break };
            if entry.offset >= end_offset {
                return Err(format!("entry {i} ({entry:?}) points outside the segment"));
            }
            if previous.is_some_and(|p| p.timestamp >= entry.timestamp || p.offset > entry.offset) {
                return Err(format!("entry {i} ({entry:?}) does not follow the previous one"));
            }
            previous = Some(entry);
        }
        Ok(())
    }

    /// Empties the index and preallocates it to `max_bytes` again.
    pub fn reset(&mut self, max_bytes: u32) -> Result<(), LogError> {
        self.file.reset(max_bytes)
    }

    /// Shrinks the file to its entries.
    pub fn trim(&mut self) -> Result<(), LogError> {
        self.file.trim()
    }

    /// Flushes the mapping and fsyncs the file.
    pub fn sync(&self) -> Result<(), LogError> {
        self.file.sync()
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_growing_timestamps_and_looks_up_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000050.timeindex");
        let mut index = TimeIndex::create(&path, 50, 12 * 10).unwrap();
        index.maybe_append(1_000, 52, false).unwrap();
        index.maybe_append(900, 55, false).unwrap(); // not larger: ignored
        index.maybe_append(2_000, 60, false).unwrap();
        assert_eq!(index.len(), 2);
        assert_eq!(index.lookup(999), None);
        assert_eq!(index.lookup(1_500), Some(TimestampOffset { timestamp: 1_000, offset: 52 }));
        assert_eq!(index.lookup(5_000).unwrap().offset, 60);
        assert!(index.maybe_append(3_000, 55, false).is_err(), "offsets may not go back");

        index.trim().unwrap();
        drop(index);
        let index = TimeIndex::open(&path, 50).unwrap();
        assert_eq!(index.last_entry(), Some(TimestampOffset { timestamp: 2_000, offset: 60 }));
        assert!(index.sanity_check(61).is_ok());
        assert!(index.sanity_check(60).is_err());
    }

    #[test]
    fn full_leaves_room_for_the_final_entry() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = TimeIndex::create(&dir.path().join("t"), 0, 36).unwrap();
        index.maybe_append(1, 1, false).unwrap();
        index.maybe_append(2, 2, false).unwrap();
        assert!(index.is_full());
        index.maybe_append(3, 3, false).unwrap(); // skipped: full
        assert_eq!(index.len(), 2);
        index.maybe_append(3, 3, true).unwrap();
        assert_eq!(index.len(), 3);
    }
}
