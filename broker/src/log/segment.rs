//! One log segment: `<20-digit base offset>.log` with its `.index` and `.timeindex`, Kafka's
//! layout. Only the last (active) segment is appended to; its indexes are preallocated to
//! `max_index_bytes` and trimmed when it is sealed at roll or close.

use super::batch::{BatchError, BatchHeader, ATTRIBUTES_AT, HEADER_SIZE};
use super::error::{io_error, LogError};
use super::index::OffsetIndex;
use super::time_index::TimeIndex;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read};
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// Path of a segment file: `dir/<base offset, 20 digits>.<ext>`.
pub(crate) fn segment_path(dir: &Path, base_offset: i64, ext: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{ext}"))
}

/// fsyncs a directory so that files created, renamed or removed in it stay so after a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_error("fsync of directory", dir))
}

/// Index settings of the segments of one log.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexSettings {
    /// Log bytes between two index entries.
    pub interval_bytes: u32,
    /// Preallocated size of an active segment's index files.
    pub max_bytes: u32,
}

/// How a scan of a segment from its start ended.
pub(crate) enum ScanEnd {
    /// Every byte belongs to a valid batch.
    Clean,
    /// The batch at `position` is torn, corrupt or out of sequence.
    Invalid { position: u64, reason: String },
}

/// One segment of a partition log.
pub(crate) struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    file: File,
    size: u64,
    next_offset: i64,
    index: OffsetIndex,
    time_index: TimeIndex,
    settings: IndexSettings,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    bytes_since_last_index_entry: u64,
    /// Start of the segment's age for time-based rolling: the wall-clock time of its first append,
    /// or for a segment loaded from disk its first batch's max timestamp (as Kafka does).
    rolling_base_ms: Option<i64>,
}

fn open_log(path: &Path, create: bool) -> Result<(File, u64), LogError> {
    let file =
        OpenOptions::new().read(true).write(true).create(create).open(path).map_err(io_error("opening", path))?;
    let size = file.metadata().map_err(io_error("reading metadata of", path))?.len();
    Ok((file, size))
}

impl Segment {
    fn assemble(
        dir: &Path,
        base_offset: i64,
        file: File,
        index: OffsetIndex,
        time_index: TimeIndex,
        settings: IndexSettings,
    ) -> Self {
        Segment {
            base_offset,
            log_path: segment_path(dir, base_offset, "log"),
            file,
            size: 0,
            next_offset: base_offset,
            index,
            time_index,
            settings,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            bytes_since_last_index_entry: 0,
            rolling_base_ms: None,
        }
    }

    fn fresh_indexes(
        dir: &Path,
        base_offset: i64,
        settings: IndexSettings,
    ) -> Result<(OffsetIndex, TimeIndex), LogError> {
        Ok((
            OffsetIndex::create(&segment_path(dir, base_offset, "index"), base_offset, settings.max_bytes)?,
            TimeIndex::create(&segment_path(dir, base_offset, "timeindex"), base_offset, settings.max_bytes)?,
        ))
    }

    /// Creates a new, empty active segment. An existing empty `.log` (left by a roll that failed
    /// half-way) is reused; one holding data is never overwritten.
    pub(crate) fn create(dir: &Path, base_offset: i64, settings: IndexSettings) -> Result<Self, LogError> {
        let path = segment_path(dir, base_offset, "log");
        let (file, size) = open_log(&path, true)?;
        if size != 0 {
            return Err(LogError::Corrupt {
                path,
                position: 0,
                reason: "a new segment's file already holds data".into(),
            });
        }
        let (index, time_index) = Self::fresh_indexes(dir, base_offset, settings)?;
        Ok(Self::assemble(dir, base_offset, file, index, time_index, settings))
    }

    /// Opens a non-tail segment ending at `end_offset` (the next segment's base). Its indexes
    /// are used if they pass the sanity checks, else rebuilt from the log; the bool says which.
    /// A damaged batch found while rebuilding is an error, not a truncation: this is history.
    pub(crate) fn open_sealed(
        dir: &Path,
        base_offset: i64,
        end_offset: i64,
        settings: IndexSettings,
    ) -> Result<(Self, bool), LogError> {
        let path = segment_path(dir, base_offset, "log");
        let (file, size) = open_log(&path, false)?;
        match Self::load_indexes(dir, base_offset, &file, size, end_offset) {
            Ok((index, time_index)) => {
                let mut segment = Self::assemble(dir, base_offset, file, index, time_index, settings);
                segment.size = size;
                segment.next_offset = end_offset;
                if let Some(last) = segment.time_index.last_entry() {
                    segment.max_timestamp = last.timestamp;
                    segment.offset_of_max_timestamp = last.offset;
                }
                Ok((segment, false))
            }
            Err(reason) => {
                tracing::warn!(segment = %path.display(), %reason, "rebuilding the indexes of a segment");
                drop(file);
                Ok((Self::open_rebuilt(dir, base_offset, end_offset, settings)?, true))
            }
        }
    }

    /// Opens a non-tail segment ending at `end_offset` with new indexes built from its log, then
    /// seals it (the compaction cleaner uses this for the segment it has just rewritten). A
    /// damaged batch is an error.
    pub(crate) fn open_rebuilt(
        dir: &Path,
        base_offset: i64,
        end_offset: i64,
        settings: IndexSettings,
    ) -> Result<Self, LogError> {
        let path = segment_path(dir, base_offset, "log");
        let (file, _) = open_log(&path, false)?;
        let (index, time_index) = Self::fresh_indexes(dir, base_offset, settings)?;
        let mut segment = Self::assemble(dir, base_offset, file, index, time_index, settings);
        if let ScanEnd::Invalid { position, reason } = segment.rebuild()? {
            return Err(LogError::Corrupt { path, position, reason });
        }
        // Compaction may have removed the last batches (or all of them): the segment still
        // covers every offset up to the next one, which is what `next_offset` means for it.
        segment.next_offset = segment.next_offset.max(end_offset);
        segment.seal()?;
        Ok(segment)
    }

    /// Opens and checks the indexes of a sealed segment; the error says why they are unusable.
    fn load_indexes(
        dir: &Path,
        base_offset: i64,
        file: &File,
        size: u64,
        end_offset: i64,
    ) -> Result<(OffsetIndex, TimeIndex), String> {
        let index_path = segment_path(dir, base_offset, "index");
        let time_path = segment_path(dir, base_offset, "timeindex");
        if !index_path.exists() || !time_path.exists() {
            return Err("index file missing".into());
        }
        let index = OffsetIndex::open(&index_path, base_offset).map_err(|e| e.to_string())?;
        let time_index = TimeIndex::open(&time_path, base_offset).map_err(|e| e.to_string())?;
        index.sanity_check(size, end_offset).map_err(|e| format!("{}: {e}", index_path.display()))?;
        time_index.sanity_check(end_offset).map_err(|e| format!("{}: {e}", time_path.display()))?;
        // Cheap spot check that the last entry really points at the batch it names.
        if let Some(last) = index.last_entry() {
            let mut header = [0u8; HEADER_SIZE];
            file.read_exact_at(&mut header, last.position).map_err(|e| e.to_string())?;
            let parsed = BatchHeader::parse(&header).map_err(|e| e.to_string())?;
            if parsed.last_offset() != last.offset {
                return Err(format!("{}: last entry {last:?} does not match the batch there", index_path.display()));
            }
        }
        Ok((index, time_index))
    }

    /// Opens the tail segment: scans every batch (header, CRC-32C, offset continuity), cuts the
    /// file at the first invalid one and rebuilds both indexes. Returns the bytes cut and why.
    pub(crate) fn open_tail(
        dir: &Path,
        base_offset: i64,
        settings: IndexSettings,
    ) -> Result<(Self, Option<(u64, String)>), LogError> {
        let path = segment_path(dir, base_offset, "log");
        let (file, file_size) = open_log(&path, false)?;
        let (index, time_index) = Self::fresh_indexes(dir, base_offset, settings)?;
        let mut segment = Self::assemble(dir, base_offset, file, index, time_index, settings);
        let cut = match segment.rebuild()? {
            ScanEnd::Clean => None,
            ScanEnd::Invalid { position, reason } => {
                segment.file.set_len(position).map_err(io_error("truncating", &path))?;
                Some((file_size - position, reason))
            }
        };
        // Whatever survives recovery is made durable, so the log may report it as flushed.
        segment.file.sync_all().map_err(io_error("fsync of", &path))?;
        Ok((segment, cut))
    }

    /// Recreates both indexes from the log, scanning from the start up to the first invalid
    /// batch. Resets the in-memory state to what the valid prefix holds. Offsets must increase
    /// from batch to batch but may skip: a compacted segment has holes, and one can become the
    /// tail again through `truncate_to`.
    fn rebuild(&mut self) -> Result<ScanEnd, LogError> {
        self.index.reset(self.settings.max_bytes)?;
        self.time_index.reset(self.settings.max_bytes)?;
        self.size = 0;
        self.next_offset = self.base_offset;
        self.max_timestamp = -1;
        self.offset_of_max_timestamp = -1;
        self.bytes_since_last_index_entry = 0;
        self.rolling_base_ms = None;

        let path = self.log_path.clone();
        let file_len = self.file.metadata().map_err(io_error("reading metadata of", &path))?.len();
        let reader_file = File::open(&path).map_err(io_error("opening", &path))?;
        let mut reader = BufReader::with_capacity(1 << 20, reader_file);
        let mut header_bytes = [0u8; HEADER_SIZE];
        let mut chunk = vec![0u8; 64 * 1024];
        let mut position = 0u64;
        loop {
            let remaining = file_len - position;
            if remaining == 0 {
                return Ok(ScanEnd::Clean);
            }
            let invalid = |reason: String| Ok(ScanEnd::Invalid { position, reason });
            if remaining < HEADER_SIZE as u64 {
                return invalid(format!("incomplete batch header: {remaining} bytes left at the end of the file"));
            }
            reader.read_exact(&mut header_bytes).map_err(io_error("reading", &path))?;
            let header = match BatchHeader::parse(&header_bytes) {
                Ok(header) => header,
                Err(e) => return invalid(e.to_string()),
            };
            let total = header.total_size() as u64;
            if total > remaining {
                return invalid(format!("incomplete batch: {total} bytes announced, {remaining} left in the file"));
            }
            // Stream the CRC so a garbage length cannot make us allocate gigabytes.
            let mut crc = crc32c::crc32c(header_bytes.get(ATTRIBUTES_AT..).unwrap_or_default());
            let mut left = total - HEADER_SIZE as u64;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                let part = chunk.get_mut(..n).unwrap_or_default();
                reader.read_exact(part).map_err(io_error("reading", &path))?;
                crc = crc32c::crc32c_append(crc, part);
                left -= n as u64;
            }
            if crc != header.crc {
                return invalid(BatchError::CrcMismatch { stored: header.crc, computed: crc }.to_string());
            }
            if header.base_offset < self.next_offset {
                return invalid(format!(
                    "batch base offset {} is below the end of the previous batch ({})",
                    header.base_offset, self.next_offset
                ));
            }
            if let Err(e) = header.check_stored_record_count() {
                return invalid(e.to_string());
            }
            if position == 0 && header.max_timestamp >= 0 {
                self.rolling_base_ms = Some(header.max_timestamp);
            }
            self.on_batch_appended(&header, position, total)?;
            position += total;
        }
    }

    /// Updates sizes, timestamps and the sparse indexes for a batch now at `position`.
    fn on_batch_appended(&mut self, header: &BatchHeader, position: u64, size: u64) -> Result<(), LogError> {
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = header.last_offset();
        }
        if self.bytes_since_last_index_entry >= u64::from(self.settings.interval_bytes) {
            // A full index (possible after max_index_bytes shrank) just gets sparser.
            if !self.index.is_full() {
                self.index.append(header.last_offset(), position)?;
            }
            if self.max_timestamp >= 0 {
                self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp, false)?;
            }
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += size;
        self.size = position + size;
        self.next_offset = header.next_offset();
        Ok(())
    }

    /// Appends one batch (offsets already assigned) with a positioned write; no fsync.
    pub(crate) fn append(&mut self, batch: &[u8], header: &BatchHeader, now_ms: i64) -> Result<(), LogError> {
        let position = self.size;
        if let Err(e) = self.file.write_all_at(batch, position) {
            // Best effort: drop a partial write. Even if this fails, the next append overwrites
            // from `position`, and recovery cuts anything invalid past the last whole batch.
            let _ = self.file.set_len(position);
            return Err(io_error("appending to", &self.log_path)(e));
        }
        self.rolling_base_ms.get_or_insert(now_ms);
        self.on_batch_appended(header, position, batch.len() as u64)
    }

    fn corrupt(&self, position: u64, reason: String) -> LogError {
        LogError::Corrupt { path: self.log_path.clone(), position, reason }
    }

    /// The header of the batch at `position`, None at the end of the segment.
    pub(crate) fn read_header_at(&self, position: u64) -> Result<Option<BatchHeader>, LogError> {
        if position >= self.size {
            return Ok(None);
        }
        if position + HEADER_SIZE as u64 > self.size {
            return Err(self.corrupt(position, "batch header runs past the end of the segment".into()));
        }
        let mut bytes = [0u8; HEADER_SIZE];
        self.file.read_exact_at(&mut bytes, position).map_err(io_error("reading", &self.log_path))?;
        let header = BatchHeader::parse(&bytes).map_err(|e| self.corrupt(position, e.to_string()))?;
        if position + header.total_size() as u64 > self.size {
            return Err(self.corrupt(position, "batch runs past the end of the segment".into()));
        }
        Ok(Some(header))
    }

    /// Calls `f` with each batch header from `position` on, until it breaks or the segment ends.
    pub(crate) fn for_each_batch(
        &self,
        mut position: u64,
        mut f: impl FnMut(u64, &BatchHeader) -> ControlFlow<()>,
    ) -> Result<(), LogError> {
        while let Some(header) = self.read_header_at(position)? {
            if f(position, &header).is_break() {
                break;
            }
            position += header.total_size() as u64;
        }
        Ok(())
    }

    /// Position and header of the batch containing `offset` (or the first after it), through the
    /// offset index and a short forward scan. None if the segment ends before `offset`.
    pub(crate) fn find_batch(&self, offset: i64) -> Result<Option<(u64, BatchHeader)>, LogError> {
        let start = self.index.lookup(offset).map_or(0, |entry| entry.position);
        let mut found = None;
        self.for_each_batch(start, |position, header| {
            if header.last_offset() >= offset {
                found = Some((position, *header));
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        })?;
        Ok(found)
    }

    /// Where to start scanning for the first batch with max timestamp >= `timestamp`.
    pub(crate) fn position_for_timestamp(&self, timestamp: i64) -> u64 {
        self.time_index
            .lookup(timestamp)
            .and_then(|entry| self.index.lookup(entry.offset))
            .map_or(0, |entry| entry.position)
    }

    /// Reads `len` bytes at `position`.
    pub(crate) fn read_bytes(&self, position: u64, len: usize) -> Result<Vec<u8>, LogError> {
        let mut buf = Vec::with_capacity(len);
        self.read_append(position, len, &mut buf)?;
        Ok(buf)
    }

    /// Appends the `len` bytes at `position` to `buf`, read straight into its spare capacity (no
    /// zero-filling first). Positioned reads, never a mapping: a file cut short behind our back
    /// is a read error, not a SIGBUS. Only bytes within the segment's recorded size are returned.
    pub(crate) fn read_append(&self, position: u64, len: usize, buf: &mut Vec<u8>) -> Result<(), LogError> {
        if position + len as u64 > self.size {
            return Err(self.corrupt(position, format!("read of {len} bytes past the end of the segment")));
        }
        let start = buf.len();
        let end = start + len;
        buf.reserve_exact(len);
        let failed = |e: std::io::Error| io_error("reading", &self.log_path)(e);
        while buf.len() < end {
            let at = position + (buf.len() - start) as u64;
            match rustix::io::pread(&self.file, rustix::buffer::spare_capacity(buf), at) {
                Ok(0) => return Err(failed(std::io::ErrorKind::UnexpectedEof.into())),
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(failed(e.into())),
            }
        }
        // Spare capacity beyond `len` may have been filled too: not ours to return.
        buf.truncate(end);
        Ok(())
    }
    /// Makes the segment read-only: records its final max timestamp in the time index, trims
    /// both indexes to their entries and fsyncs all three files.
    pub(crate) fn seal(&mut self) -> Result<(), LogError> {
        if self.max_timestamp >= 0 {
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp, true)?;
        }
        self.index.trim()?;
        self.time_index.trim()?;
        self.file.sync_all().map_err(io_error("fsync of", &self.log_path))?;
        self.index.sync()?;
        self.time_index.sync()
    }

    /// Cuts the segment before the batch containing `offset` and rebuilds its indexes as an
    /// active segment's. Returns the new next offset (the cut batch's base offset).
    pub(crate) fn truncate_to(&mut self, offset: i64) -> Result<i64, LogError> {
        let cut = self.find_batch(offset)?.map_or(self.size, |(position, _)| position);
        self.file.set_len(cut).map_err(io_error("truncating", &self.log_path))?;
        self.file.sync_all().map_err(io_error("fsync of", &self.log_path))?;
        if let ScanEnd::Invalid { position, reason } = self.rebuild()? {
            return Err(self.corrupt(position, reason));
        }
        Ok(self.next_offset)
    }

    /// Removes the segment's three files.
    pub(crate) fn delete(self) -> Result<(), LogError> {
        let Segment { log_path, index, time_index, file, .. } = self;
        let paths = [log_path, index.path().to_path_buf(), time_index.path().to_path_buf()];
        // Unmap and close before unlinking.
        drop((index, time_index, file));
        for path in paths {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_error("deleting", &path)(e)),
                _ => {}
            }
        }
        Ok(())
    }

    /// First offset of the segment.
    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// Offset after the segment's last batch.
    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Bytes in the `.log` file.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The `.log` file.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Path of the `.log` file.
    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Largest timestamp and the (last) offset of the batch holding it.
    pub(crate) fn max_timestamp(&self) -> Option<(i64, i64)> {
        (self.max_timestamp >= 0).then_some((self.max_timestamp, self.offset_of_max_timestamp))
    }

    /// Timestamp compared with retention.ms: the largest record timestamp, or the file's
    /// modification time if records carry none (Kafka's rule).
    pub(crate) fn retention_timestamp(&self) -> Option<i64> {
        if self.max_timestamp >= 0 {
            return Some(self.max_timestamp);
        }
        let modified = self.file.metadata().and_then(|m| m.modified()).ok()?;
        i64::try_from(modified.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()
    }

    /// Milliseconds since the segment's age started, None if it has never held data.
    pub(crate) fn age_ms(&self, now_ms: i64) -> Option<i64> {
        self.rolling_base_ms.map(|start| now_ms.saturating_sub(start))
    }

    /// Whether an index is full, which forces a roll.
    pub(crate) fn indexes_full(&self) -> bool {
        self.index.is_full() || self.time_index.is_full()
    }

    #[cfg(test)]
    pub(crate) fn index_entries(&self) -> (usize, usize) {
        (self.index.len(), self.time_index.len())
    }
}
