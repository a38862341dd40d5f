//! The sparse offset index of a segment (`.index`), and the memory-mapped file of fixed-size
//! entries it shares with the time index.
//!
//! Entries are Kafka's: relative offset u32 BE, file position u32 BE. As in Kafka, an entry is
//! keyed by the LAST offset of the batch that starts at the position, so the batch containing an
//! offset is found by looking up the largest entry <= it and scanning forward from there.

use super::error::{io_error, LogError};
use memmap2::Mmap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Size of one offset index entry.
pub const OFFSET_ENTRY_SIZE: usize = 8;

/// Maps `file` for reading. Entries are written with `pwrite`, not through the mapping: a store
/// into a mapped page of a sparse file on a full disk raises SIGBUS and kills the process, while
/// `pwrite` answers ENOSPC, which takes the log directory offline like any other I/O error.
#[allow(unsafe_code)]
fn map_file(file: &File) -> std::io::Result<Mmap> {
    // SAFETY: a file mapping is unsound only if the file is changed or truncated behind the
    // mapping's back. Index files belong to this broker alone: this process is their only writer
    // (through `IndexFile`, whose writes land in the same page cache the mapping shows), one
    // PartitionLog owns a directory, and IndexFile drops the mapping before it changes the
    // file's length.
    unsafe { Mmap::map(file) }
}

/// A memory-mapped file of fixed-size entries, preallocated while its segment is active.
pub(crate) struct IndexFile {
    path: PathBuf,
    file: File,
    mmap: Option<Mmap>,
    entry_size: usize,
    entries: usize,
    /// Length of the file when it was opened, kept for sanity checks.
    opened_len: u64,
}

impl IndexFile {
    /// Creates the file, or empties an existing one, with room for `max_bytes` of entries.
    pub(crate) fn create(path: &Path, entry_size: usize, max_bytes: u32) -> Result<Self, LogError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(io_error("creating", path))?;
        let mut index = IndexFile { path: path.to_path_buf(), file, mmap: None, entry_size, entries: 0, opened_len: 0 };
        index.resize(capacity_bytes(entry_size, max_bytes))?;
        Ok(index)
    }

    /// Opens an existing file as it is; every whole entry in it counts as used.
    pub(crate) fn open(path: &Path, entry_size: usize) -> Result<Self, LogError> {
        let file = OpenOptions::new().read(true).write(true).open(path).map_err(io_error("opening", path))?;
        let len = file.metadata().map_err(io_error("reading metadata of", path))?.len();
        let mmap = map_file(&file).map_err(io_error("memory-mapping", path))?;
        Ok(IndexFile {
            path: path.to_path_buf(),
            file,
            entries: mmap.len() / entry_size,
            mmap: Some(mmap),
            entry_size,
            opened_len: len,
        })
    }

    fn resize(&mut self, len: u64) -> Result<(), LogError> {
        // Unmap first: touching a mapped page past the end of a shrunk file raises SIGBUS.
        self.mmap = None;
        self.file.set_len(len).map_err(io_error("resizing", &self.path))?;
        self.mmap = Some(map_file(&self.file).map_err(io_error("memory-mapping", &self.path))?);
        Ok(())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn len(&self) -> usize {
        self.entries
    }

    pub(crate) fn opened_len(&self) -> u64 {
        self.opened_len
    }

    /// Entries the mapped area can hold.
    pub(crate) fn capacity(&self) -> usize {
        self.mmap.as_ref().map_or(0, |m| m.len() / self.entry_size)
    }

    /// The bytes of entry `i`, if it is used.
    pub(crate) fn entry(&self, i: usize) -> Option<&[u8]> {
        if i >= self.entries {
            return None;
        }
        self.mmap.as_ref()?.get(i * self.entry_size..(i + 1) * self.entry_size)
    }

    /// Appends one entry (a positioned write; see [`map_file`] for why not a store).
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<(), LogError> {
        let start = self.entries * self.entry_size;
        if bytes.len() != self.entry_size || start + bytes.len() > self.mmap.as_ref().map_or(0, |m| m.len()) {
            return Err(LogError::Index { path: self.path.clone(), reason: "index is full".into() });
        }
        self.file.write_all_at(bytes, start as u64).map_err(io_error("writing an entry to", &self.path))?;
        self.entries += 1;
        Ok(())
    }

    /// Number of leading entries for which `pred` holds (entries are sorted, so `pred` is
    /// true then false): a binary search.
    pub(crate) fn partition_point(&self, pred: impl Fn(&[u8]) -> bool) -> usize {
        let (mut low, mut high) = (0, self.entries);
        while low < high {
            let mid = low + (high - low) / 2;
            match self.entry(mid) {
                Some(entry) if pred(entry) => low = mid + 1,
                _ => high = mid,
            }
        }
        low
    }

    /// Drops every entry and preallocates the file again to `max_bytes`.
    pub(crate) fn reset(&mut self, max_bytes: u32) -> Result<(), LogError> {
        self.entries = 0;
        // Shrinking to 0 first zero-fills the whole preallocated area.
        self.resize(0)?;
        self.resize(capacity_bytes(self.entry_size, max_bytes))
    }

    /// Shrinks the file to the used entries (the segment stops growing).
    pub(crate) fn trim(&mut self) -> Result<(), LogError> {
        self.resize((self.entries * self.entry_size) as u64)
    }

    /// Writes the entries and the file length to disk.
    pub(crate) fn sync(&self) -> Result<(), LogError> {
        self.file.sync_all().map_err(io_error("fsync of", &self.path))
    }
}

/// File size for `max_bytes` rounded down to whole entries (at least two, so the time index
/// always has room for the final entry written at roll).
fn capacity_bytes(entry_size: usize, max_bytes: u32) -> u64 {
    let entries = (max_bytes as usize / entry_size).max(2);
    (entries * entry_size) as u64
}

/// One offset index entry, absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetPosition {
    /// Last offset of the batch at `position`.
    pub offset: i64,
    /// Byte position of that batch in the `.log` file.
    pub position: u64,
}

/// Sparse, memory-mapped `.index` of one segment.
pub struct OffsetIndex {
    file: IndexFile,
    base_offset: i64,
}

impl OffsetIndex {
    /// Creates an empty index preallocated to `max_bytes` (an active segment's).
    pub fn create(path: &Path, base_offset: i64, max_bytes: u32) -> Result<Self, LogError> {
        Ok(OffsetIndex { file: IndexFile::create(path, OFFSET_ENTRY_SIZE, max_bytes)?, base_offset })
    }

    /// Opens an existing index without checking it (see [`OffsetIndex::sanity_check`]).
    pub fn open(path: &Path, base_offset: i64) -> Result<Self, LogError> {
        Ok(OffsetIndex { file: IndexFile::open(path, OFFSET_ENTRY_SIZE)?, base_offset })
    }

    fn decode(&self, bytes: &[u8]) -> OffsetPosition {
        let mut relative = [0u8; 4];
        let mut position = [0u8; 4];
        relative.copy_from_slice(bytes.get(..4).unwrap_or(&[0; 4]));
        position.copy_from_slice(bytes.get(4..8).unwrap_or(&[0; 4]));
        OffsetPosition {
            offset: self.base_offset + i64::from(u32::from_be_bytes(relative)),
            position: u64::from(u32::from_be_bytes(position)),
        }
    }

    /// Entry `i`, if used.
    pub fn entry(&self, i: usize) -> Option<OffsetPosition> {
        self.file.entry(i).map(|bytes| self.decode(bytes))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.file.len()
    }

    /// Whether no more entries fit (the segment must roll).
    pub fn is_full(&self) -> bool {
        self.file.len() >= self.file.capacity()
    }

    /// The newest entry.
    pub fn last_entry(&self) -> Option<OffsetPosition> {
        self.len().checked_sub(1).and_then(|i| self.entry(i))
    }

    /// The entry with the largest offset <= `offset`, or None if all are larger.
    pub fn lookup(&self, offset: i64) -> Option<OffsetPosition> {
        let count = self.file.partition_point(|bytes| self.decode(bytes).offset <= offset);
        count.checked_sub(1).and_then(|i| self.entry(i))
    }

    /// Adds an entry; offsets and positions must increase.
    pub fn append(&mut self, offset: i64, position: u64) -> Result<(), LogError> {
        let relative = offset - self.base_offset;
        let fits = (0..=i64::from(i32::MAX)).contains(&relative) && position <= u64::from(u32::MAX);
        let increasing = self.last_entry().is_none_or(|last| last.offset < offset && last.position < position);
        if !fits || !increasing {
            return Err(LogError::Index {
                path: self.file.path().to_path_buf(),
                reason: format!("entry (offset {offset}, position {position}) is out of order or out of range"),
            });
        }
        let mut bytes = [0u8; OFFSET_ENTRY_SIZE];
        bytes[..4].copy_from_slice(&(relative as u32).to_be_bytes());
        bytes[4..].copy_from_slice(&(position as u32).to_be_bytes());
        self.file.push(&bytes)
    }

    /// Checks an index read from disk against its segment: whole entries, offsets in
    /// `[base, end_offset)` and strictly increasing, positions strictly increasing and inside
    /// the log. Returns why it is unusable.
    pub fn sanity_check(&self, log_size: u64, end_offset: i64) -> Result<(), String> {
        if !self.file.opened_len().is_multiple_of(OFFSET_ENTRY_SIZE as u64) {
            return Err(format!("size {} is not a multiple of {OFFSET_ENTRY_SIZE}", self.file.opened_len()));
        }
        let mut previous: Option<OffsetPosition> = None;
        for i in 0..self.len() {
            let Some(entry) = self.entry(i) else { break };
            if entry.offset >= end_offset || entry.position >= log_size {
                return Err(format!("entry {i} ({entry:?}) points outside the segment"));
            }
            if previous.is_some_and(|p| p.offset >= entry.offset || p.position >= entry.position) {
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
    fn lookup_finds_the_largest_entry_at_or_below() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000100.index");
        let mut index = OffsetIndex::create(&path, 100, 80).unwrap();
        assert_eq!(index.lookup(150), None);
        for (offset, position) in [(104, 50), (109, 120), (130, 400)] {
            index.append(offset, position).unwrap();
        }
        assert!(index.append(120, 500).is_err(), "offsets must increase");
        assert_eq!(index.lookup(103), None);
        assert_eq!(index.lookup(104), Some(OffsetPosition { offset: 104, position: 50 }));
        assert_eq!(index.lookup(129), Some(OffsetPosition { offset: 109, position: 120 }));
        assert_eq!(index.lookup(10_000).unwrap().position, 400);
        assert!(!index.is_full());

        index.trim().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 24);
        assert!(index.is_full());
        drop(index);

        let index = OffsetIndex::open(&path, 100).unwrap();
        assert_eq!(index.len(), 3);
        assert!(index.sanity_check(1000, 131).is_ok());
        assert!(index.sanity_check(300, 131).is_err(), "position beyond the log");
        assert!(index.sanity_check(1000, 120).is_err(), "offset beyond the segment");
    }

    #[test]
    fn sanity_check_rejects_odd_sizes_and_disorder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.index");
        std::fs::write(&path, [0u8; 12]).unwrap();
        assert!(OffsetIndex::open(&path, 0).unwrap().sanity_check(100, 10).is_err());
        // A preallocated index left by a crash: zero entries after real ones.
        let mut bytes = Vec::new();
        bytes.extend(5u32.to_be_bytes());
        bytes.extend(10u32.to_be_bytes());
        bytes.extend([0u8; 8]);
        std::fs::write(&path, bytes).unwrap();
        assert!(OffsetIndex::open(&path, 0).unwrap().sanity_check(100, 10).is_err());
    }
}
