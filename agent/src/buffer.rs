//! The disk buffer: where events that cannot be read again (metrics, syslog, stdin) wait while
//! the producer's memory queue is full — the broker is away or slow. File lines never go here:
//! the files themselves are their buffer, and their inputs simply pause.
//!
//! Layout: `<data_dir>/buffer/<20-digit id>.buf` segments of records
//! `[len: u32 LE][crc32c: u32 LE][topic_len: u16 LE][topic][key_len: i32 LE, -1 = none][key][payload]`,
//! appended in order and consumed from the oldest; `head` holds the read position
//! (`<segment id> <offset>`), written every few records and at close, so a restart resumes
//! there (records after the last written position may be sent twice, never lost). A torn or
//! corrupt tail (crash mid-append) is cut at open with a warning.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Bytes per segment file.
const SEGMENT_BYTES: u64 = 8 << 20;
/// The read position is written after this many consumed records.
const HEAD_EVERY: u32 = 256;

/// A buffered record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Destination topic.
    pub topic: String,
    /// Partition key.
    pub key: Option<Vec<u8>>,
    /// Encoded event.
    pub payload: Vec<u8>,
}

/// Disk buffer errors (each names the file).
#[derive(Debug, thiserror::Error)]
#[error("disk buffer {}: {op}: {source}", .path.display())]
pub struct BufferError {
    op: &'static str,
    path: PathBuf,
    source: std::io::Error,
}

impl BufferError {
    /// The kind of the underlying I/O error (a full disk is `StorageFull`).
    pub fn kind(&self) -> std::io::ErrorKind {
        self.source.kind()
    }
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BufferError {
    let path = path.to_path_buf();
    move |source| BufferError { op, path, source }
}

fn encode(record: &Record) -> Vec<u8> {
    let mut body = Vec::with_capacity(record.topic.len() + record.payload.len() + 16);
    body.extend_from_slice(&(record.topic.len().min(u16::MAX as usize) as u16).to_le_bytes());
    body.extend_from_slice(&record.topic.as_bytes()[..record.topic.len().min(u16::MAX as usize)]);
    match &record.key {
        Some(key) => {
            body.extend_from_slice(&(key.len() as i32).to_le_bytes());
            body.extend_from_slice(key);
        }
        None => body.extend_from_slice(&(-1i32).to_le_bytes()),
    }
    body.extend_from_slice(&record.payload);
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

fn decode(body: &[u8]) -> Option<Record> {
    let topic_len = u16::from_le_bytes(body.get(..2)?.try_into().ok()?) as usize;
    let topic = String::from_utf8(body.get(2..2 + topic_len)?.to_vec()).ok()?;
    let at = 2 + topic_len;
    let key_len = i32::from_le_bytes(body.get(at..at + 4)?.try_into().ok()?);
    let mut at = at + 4;
    let key = if key_len < 0 {
        None
    } else {
        let key = body.get(at..at + key_len as usize)?.to_vec();
        at += key_len as usize;
        Some(key)
    };
    Some(Record { topic, key, payload: body.get(at..)?.to_vec() })
}

struct Segment {
    id: u64,
    path: PathBuf,
    len: u64,
}

/// The disk buffer.
pub struct DiskBuffer {
    dir: PathBuf,
    max_bytes: u64,
    segments: VecDeque<Segment>,
    /// Read position in the first segment.
    read_offset: u64,
    writer: Option<File>,
    reader: Option<(u64, File)>,
    /// Bytes not yet consumed.
    pending: u64,
    since_head: u32,
    /// How a record is appended (a test swaps in a disk that fills up mid-write).
    write: fn(&mut File, &[u8]) -> std::io::Result<()>,
    /// Failed position writes (a full disk fails each one).
    head_throttle: crate::throttle::Throttle,
}

impl DiskBuffer {
    /// Opens (recovering) the buffer in `dir`, holding at most `max_bytes`.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<DiskBuffer, BufferError> {
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
        let mut ids: Vec<u64> = std::fs::read_dir(dir)
            .map_err(io("listing", dir))?
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".buf")?.parse().ok())
            .collect();
        ids.sort_unstable();
        let (head_id, head_offset) = std::fs::read_to_string(dir.join("head"))
            .ok()
            .and_then(|t| {
                let mut parts = t.split_whitespace();
                Some((parts.next()?.parse::<u64>().ok()?, parts.next()?.parse::<u64>().ok()?))
            })
            .unwrap_or((0, 0));
        let mut segments = VecDeque::new();
        for id in ids {
            let path = dir.join(format!("{id:020}.buf"));
            if id < head_id {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let len = valid_length(&path)?;
            segments.push_back(Segment { id, path, len });
        }
        let read_offset = match segments.front() {
            Some(first) if first.id == head_id => head_offset.min(first.len),
            _ => 0,
        };
        let pending = segments.iter().map(|s| s.len).sum::<u64>() - read_offset;
        if pending > 0 {
            tracing::info!(dir = %dir.display(), bytes = pending, "disk buffer holds events from before the restart");
        }
        Ok(DiskBuffer {
            dir: dir.to_path_buf(),
            max_bytes,
            segments,
            read_offset,
            writer: None,
            reader: None,
            pending,
            since_head: 0,
            write: |file, bytes| file.write_all(bytes),
            head_throttle: crate::throttle::Throttle::new(crate::throttle::REPEAT_EVERY),
        })
    }

    /// Bytes waiting.
    pub fn pending_bytes(&self) -> u64 {
        self.pending
    }

    /// Nothing waits.
    pub fn is_empty(&self) -> bool {
        self.pending == 0
    }

    /// Appends a record; false when the buffer is full.
    pub fn push(&mut self, record: &Record) -> Result<bool, BufferError> {
        let bytes = encode(record);
        if self.pending + bytes.len() as u64 > self.max_bytes {
            return Ok(false);
        }
        let need_new = self.segments.back().is_none_or(|s| s.len + bytes.len() as u64 > SEGMENT_BYTES && s.len > 0);
        if need_new || self.writer.is_none() {
            if need_new {
                let id = self.segments.back().map_or(0, |s| s.id + 1);
                let path = self.dir.join(format!("{id:020}.buf"));
                self.segments.push_back(Segment { id, path, len: 0 });
            }
            let Some(last) = self.segments.back() else { return Ok(false) };
            let file =
                OpenOptions::new().create(true).append(true).open(&last.path).map_err(io("opening", &last.path))?;
            self.writer = Some(file);
        }
        let (Some(writer), Some(last)) = (self.writer.as_mut(), self.segments.back_mut()) else { return Ok(false) };
        if let Err(e) = (self.write)(writer, &bytes) {
            // A full disk may have taken part of the record: cut it, or the records appended
            // after it would be read as its remainder. If even that fails, this segment takes
            // no more (the next record opens a new one; a restart cuts the torn tail).
            let cut = writer.set_len(last.len).is_ok();
            let (id, error) = (last.id, io("appending to", &last.path)(e));
            if !cut {
                let path = self.dir.join(format!("{:020}.buf", id + 1));
                self.segments.push_back(Segment { id: id + 1, path, len: 0 });
                self.writer = None;
            }
            return Err(error);
        }
        last.len += bytes.len() as u64;
        self.pending += bytes.len() as u64;
        Ok(true)
    }

    /// The oldest record, without consuming it.
    pub fn front(&mut self) -> Result<Option<Record>, BufferError> {
        loop {
            let Some(first) = self.segments.front() else { return Ok(None) };
            if self.read_offset >= first.len {
                if self.segments.len() == 1 {
                    return Ok(None);
                }
                // Fully consumed and no longer written: gone.
                let done = self.segments.pop_front();
                self.read_offset = 0;
                self.reader = None;
                if let Some(done) = done {
                    let _ = std::fs::remove_file(&done.path);
                }
                self.write_head();
                continue;
            }
            let (id, path) = (first.id, first.path.clone());
            if self.reader.as_ref().is_none_or(|(rid, _)| *rid != id) {
                let file = File::open(&path).map_err(io("opening", &path))?;
                self.reader = Some((id, file));
            }
            let Some((_, file)) = self.reader.as_mut() else { return Ok(None) };
            file.seek(SeekFrom::Start(self.read_offset)).map_err(io("seeking in", &path))?;
            let mut header = [0u8; 8];
            file.read_exact(&mut header).map_err(io("reading", &path))?;
            let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
            let mut body = vec![0u8; len];
            file.read_exact(&mut body).map_err(io("reading", &path))?;
            return Ok(decode(&body));
        }
    }

    /// Consumes the oldest record.
    pub fn pop(&mut self) {
        let Some(first) = self.segments.front() else { return };
        let Some((_, file)) = self.reader.as_mut() else { return };
        let Ok(position) = file.stream_position() else { return };
        let consumed = position.saturating_sub(self.read_offset);
        self.read_offset = position.min(first.len);
        self.pending = self.pending.saturating_sub(consumed);
        self.since_head += 1;
        if self.since_head >= HEAD_EVERY {
            self.write_head();
        }
    }

    fn write_head(&mut self) {
        self.since_head = 0;
        let id = self.segments.front().map_or(0, |s| s.id);
        let (path, temp) = (self.dir.join("head"), self.dir.join("head.tmp"));
        // Written aside and renamed: on a full disk the write fails and the previous position
        // stays (events may be sent again), where writing in place would truncate it to nothing
        // (the whole buffer sent again).
        let written =
            std::fs::write(&temp, format!("{id} {}\n", self.read_offset)).and_then(|()| std::fs::rename(&temp, &path));
        match written {
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                if let Some(left_out) = self.head_throttle.failure(std::time::Instant::now()) {
                    tracing::warn!(path = %path.display(), error = %e, left_out, "writing the disk buffer position failed; the previous one stays (events after it may be sent twice)");
                }
            }
            Ok(()) => {
                self.head_throttle.success();
            }
        }
    }

    /// Writes the read position and syncs the segment being written.
    pub fn close(&mut self) {
        self.write_head();
        if let Some(writer) = &self.writer {
            let _ = writer.sync_all();
        }
    }
}

/// Length of the valid prefix of a segment; a torn or corrupt tail is cut.
fn valid_length(path: &Path) -> Result<u64, BufferError> {
    let data = std::fs::read(path).map_err(io("reading", path))?;
    let mut at = 0usize;
    while let Some(header) = data.get(at..at + 8) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        match data.get(at + 8..at + 8 + len) {
            Some(body) if crc32c::crc32c(body) == crc && decode(body).is_some() => at += 8 + len,
            _ => break,
        }
    }
    if at < data.len() {
        tracing::warn!(path = %path.display(), cut = data.len() - at, "disk buffer segment had a torn or corrupt tail; cut");
        let file = OpenOptions::new().write(true).open(path).map_err(io("opening", path))?;
        file.set_len(at as u64).map_err(io("truncating", path))?;
    }
    Ok(at as u64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record(i: usize) -> Record {
        Record {
            topic: "metrics".into(),
            key: i.is_multiple_of(2).then(|| b"web-1".to_vec()),
            payload: format!("{{\"n\":{i}}}").into_bytes(),
        }
    }

    #[test]
    fn fifo_across_segments_restarts_and_torn_tails() {
        let dir = tempfile::tempdir().unwrap();
        let mut buffer = DiskBuffer::open(dir.path(), 1 << 30).unwrap();
        for i in 0..10 {
            assert!(buffer.push(&record(i)).unwrap());
        }
        for i in 0..4 {
            assert_eq!(buffer.front().unwrap(), Some(record(i)));
            buffer.pop();
        }
        buffer.close();
        drop(buffer);
        // A torn append at the end (crash mid-write) is cut on open.
        let segment = dir.path().join(format!("{:020}.buf", 0));
        let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
        file.write_all(&[200, 0, 0, 0, 1, 2]).unwrap();
        let mut buffer = DiskBuffer::open(dir.path(), 1 << 30).unwrap();
        for i in 4..10 {
            assert_eq!(buffer.front().unwrap(), Some(record(i)), "resumes after the consumed records");
            buffer.pop();
        }
        assert_eq!(buffer.front().unwrap(), None);
        assert!(buffer.is_empty());
        assert!(buffer.push(&record(10)).unwrap());
        assert_eq!(buffer.front().unwrap(), Some(record(10)));
    }

    #[test]
    fn a_record_cut_short_by_a_full_disk_is_removed_and_later_records_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut buffer = DiskBuffer::open(dir.path(), 1 << 30).unwrap();
        assert!(buffer.push(&record(0)).unwrap());
        // The disk fills up halfway through the next record.
        buffer.write = |file, bytes| {
            file.write_all(&bytes[..bytes.len() / 2])?;
            Err(std::io::Error::from_raw_os_error(28))
        };
        assert!(buffer.push(&record(1)).is_err());
        buffer.write = |file, bytes| file.write_all(bytes);
        assert!(buffer.push(&record(2)).unwrap());
        assert_eq!(buffer.front().unwrap(), Some(record(0)));
        buffer.pop();
        assert_eq!(buffer.front().unwrap(), Some(record(2)), "the half record was not cut");
        buffer.pop();
        assert!(buffer.is_empty());
        // And after a restart.
        assert!(buffer.push(&record(3)).unwrap());
        buffer.close();
        drop(buffer);
        let mut buffer = DiskBuffer::open(dir.path(), 1 << 30).unwrap();
        assert_eq!(buffer.front().unwrap(), Some(record(3)));
    }

    #[test]
    fn full_buffer_refuses_and_segments_roll() {
        let dir = tempfile::tempdir().unwrap();
        let big = Record { topic: "t".into(), key: None, payload: vec![7u8; 1 << 20] };
        let mut buffer = DiskBuffer::open(dir.path(), 20 << 20).unwrap();
        let mut stored = 0;
        while buffer.push(&big).unwrap() {
            stored += 1;
        }
        assert_eq!(stored, 19, "20 MiB hold 19 records of 1 MiB plus headers");
        let segments = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "buf"))
            .count();
        assert!(segments >= 3, "8 MiB segments: {segments}");
        for _ in 0..stored {
            assert_eq!(buffer.front().unwrap().map(|r| r.payload.len()), Some(1 << 20));
            buffer.pop();
        }
        assert!(buffer.is_empty());
        assert!(buffer.push(&big).unwrap(), "room again once consumed");
    }
}
