//! File tailing, as users of Filebeat expect it to behave.
//!
//! - Files are found by glob `include` patterns minus `exclude`, re-scanned every
//!   `scan_interval`, so new files are picked up while running.
//! - A file's identity is its device and inode plus a fingerprint (CRC-32C) of its first bytes
//!   (up to 1 KiB), so an inode reused by a new file is not mistaken for the old one.
//! - Rename rotation: the open handle is read to its end after the rename, then closed once it
//!   stays quiet; the new file at the path is a new identity, read from its start.
//! - copytruncate / truncation: a file shorter than the read position starts again at 0.
//! - Deleted files are read to their end and closed at once, so their disk space is freed.
//! - Lines longer than `max_line_bytes` are cut (the rest of the line is skipped) and flagged, as
//!   is a line whose record would be larger than the producer may send: it is shipped cut, never
//!   dropped, so its file's checkpoint moves on.
//! - Symbolic links: unless `follow_symlinks`, a path a pattern matched through a link (the file
//!   itself or a directory the pattern's wildcards matched) is skipped with a warning, and files
//!   are opened with `O_NOFOLLOW`, as Filebeat does: whoever can create a link in a watched
//!   directory cannot make an agent running as root ship `/etc/shadow`.
//! - Multiline: with `multiline_start`, lines not matching it are appended to the previous event,
//!   which is sent when the next start line arrives or after `multiline_timeout` of quiet.
//! - Each event carries `log.offset` (the byte offset of its first line) and the file's identity;
//!   the checkpoint advances only over lines the broker acknowledged.
//!
//! The input runs on its own thread: file reads are blocking and it hands each read's events
//! over as one batch, waiting for room (which is what pauses it when the output is saturated).
//! A file that had nothing new is polled less often, from every 100 ms up to every second; a file
//! with more to read than one pass takes is read again without waiting.

mod encode;

use crate::channel::EventSender;
use crate::checkpoint::FileCheckpoint;
use crate::event::LogEvent;
use crate::pipeline::{Ack, Envelope, FileProgress, Processors};
use encode::{FileFields, LineEncoder};
use millrace_config::agent::{FileInput, PartitionKey, StartAt};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Bytes of a file's start covered by its fingerprint.
const FINGERPRINT_BYTES: u64 = 1024;
/// How often open files with recent data are polled for more.
const POLL: Duration = Duration::from_millis(100);
/// The longest wait between polls of a quiet file.
const MAX_POLL: Duration = Duration::from_secs(1);
/// A file no longer reachable under a matched path is closed after this much quiet at its end.
const CLOSE_RENAMED_AFTER: Duration = Duration::from_secs(5);
/// Bytes read from one file per poll before moving to the next (fairness among files).
const READ_CHUNK: usize = 256 << 10;
/// Rounds of cutting a record's message to fit the producer's limit before it is emptied.
const FIT_ROUNDS: usize = 8;

/// (device, inode).
pub type FileKey = (u64, u64);

/// Shared view of the files an input has open, for checkpoints.
#[derive(Default)]
pub struct FileStates {
    files: Mutex<BTreeMap<FileKey, (FileCheckpoint, Arc<FileProgress>)>>,
}

impl FileStates {
    /// Current checkpoints (offset = acknowledged offset).
    pub fn checkpoints(&self) -> Vec<FileCheckpoint> {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        files.values().map(|(c, progress)| FileCheckpoint { offset: progress.committed(), ..c.clone() }).collect()
    }

    fn set(&self, key: FileKey, checkpoint: FileCheckpoint, progress: Arc<FileProgress>) {
        self.files.lock().unwrap_or_else(|p| p.into_inner()).insert(key, (checkpoint, progress));
    }

    fn remove(&self, key: &FileKey) {
        self.files.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

/// CRC-32C of the first `len` bytes of `file`.
fn fingerprint(file: &mut File, len: u64) -> std::io::Result<u32> {
    let mut buf = vec![0u8; len as usize];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut buf)?;
    Ok(crc32c::crc32c(&buf))
}

struct Pending {
    text: Vec<u8>,
    offset: u64,
    end: u64,
    truncated: bool,
    since: Instant,
}

struct Tailed {
    key: FileKey,
    path: PathBuf,
    file: File,
    fingerprint: u32,
    fingerprint_len: u64,
    /// Next byte to read.
    read_pos: u64,
    /// Bytes of the current partial line.
    partial: Vec<u8>,
    /// The current line is longer than the maximum: skip to its end.
    skipping: bool,
    /// Offset where the current partial line started.
    line_start: Option<u64>,
    progress: Arc<FileProgress>,
    pending: Option<Pending>,
    last_data: Instant,
    /// Still reachable under a matched path at the last scan.
    matched: bool,
    partition_key: Option<Arc<str>>,
    /// The fields every line of this file shares, encoded.
    encoder: LineEncoder,
    /// Polls in a row that found nothing new (the wait before the next one grows with them).
    quiet_polls: u32,
    next_poll: Instant,
}

/// What one poll of a file found.
struct Polled {
    /// The output is still there (false: shutting down).
    alive: bool,
    /// The file had more than one pass reads: poll again at once.
    more: bool,
}

/// One file input.
pub struct FileTailer {
    config: FileInput,
    host: String,
    input_name: Arc<str>,
    topic: Arc<str>,
    processors: Processors,
    /// No processors and no JSON decoding: lines are encoded directly.
    direct: bool,
    read_buf: Vec<u8>,
    multiline: Option<regex::Regex>,
    /// Patterns, each with the number of its leading path components free of wildcards (links
    /// there were chosen by whoever wrote the pattern; links below are not).
    include: Vec<(String, usize)>,
    exclude: Vec<glob::Pattern>,
    /// Longest line kept: `max_line_bytes`, or less when the producer could not send it.
    max_line: usize,
    /// Largest record (key and value) the producer accepts.
    record_limit: usize,
    /// Links skipped at the last scan: each is warned about once while it stays.
    skipped_links: BTreeSet<PathBuf>,
    open: BTreeMap<FileKey, Tailed>,
    known: BTreeMap<FileKey, FileCheckpoint>,
    states: Arc<FileStates>,
    /// Files found at the first scan follow `start_at`; files appearing later are new and read
    /// from their start.
    first_scan: bool,
}

impl FileTailer {
    /// An input from its settings and the checkpoints loaded from the registry; `record_limit` is
    /// the largest record the producer accepts ([`crate::output::max_record_bytes`]).
    pub fn new(
        config: FileInput,
        host: String,
        known: BTreeMap<FileKey, FileCheckpoint>,
        states: Arc<FileStates>,
        record_limit: usize,
    ) -> Result<FileTailer, String> {
        let processors = Processors::new(&config.processors).map_err(|e| e.to_string())?;
        let multiline =
            config.multiline_start.as_deref().map(regex::Regex::new).transpose().map_err(|e| e.to_string())?;
        let exclude = config
            .exclude
            .iter()
            .map(|p| glob::Pattern::new(p))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        Ok(FileTailer {
            input_name: Arc::from(config.name.as_str()),
            direct: processors.is_empty() && !config.json,
            read_buf: Vec::new(),
            topic: Arc::from(config.topic.as_str()),
            include: config.include.iter().map(|p| (p.clone(), fixed_components(p))).collect(),
            max_line: usize::try_from(config.max_line_bytes.0).unwrap_or(usize::MAX).min(record_limit),
            record_limit,
            skipped_links: BTreeSet::new(),
            processors,
            multiline,
            exclude,
            config,
            host,
            open: BTreeMap::new(),
            known,
            states,
            first_scan: true,
        })
    }

    /// Tails until `stop` is set, sending events to `tx`. Pending partial lines are not sent at
    /// stop: their bytes are read again after a restart.
    pub fn run(mut self, tx: EventSender, stop: Arc<AtomicBool>) {
        let scan_every = Duration::from_millis(self.config.scan_interval.0);
        let mut last_scan: Option<Instant> = None;
        while !stop.load(Ordering::Relaxed) {
            if last_scan.is_none_or(|at| at.elapsed() >= scan_every) {
                self.scan();
                last_scan = Some(Instant::now());
            }
            let now = Instant::now();
            let due: Vec<FileKey> = self.open.iter().filter(|(_, t)| t.next_poll <= now).map(|(k, _)| *k).collect();
            let mut more = false;
            for key in due {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let polled = self.poll_file(key, &tx);
                if !polled.alive {
                    return;
                }
                more |= polled.more;
            }
            if !more {
                std::thread::sleep(POLL);
            }
        }
    }

    /// One pass for `--once`: reads every matched file from its start position to its current
    /// end (ignoring checkpoints' advancement), sending every event including a last
    /// unterminated line and pending multiline events.
    pub fn run_once(mut self, tx: &EventSender) {
        self.scan();
        let keys: Vec<FileKey> = self.open.keys().copied().collect();
        for key in keys {
            loop {
                let before = self.open.get(&key).map(|t| t.read_pos);
                if !self.poll_file(key, tx).alive {
                    return;
                }
                if self.open.get(&key).map(|t| t.read_pos) == before {
                    break;
                }
            }
            let Some(mut tailed) = self.open.remove(&key) else { continue };
            let mut events = Vec::new();
            let now = crate::event::format_timestamp(SystemTime::now());
            if !tailed.partial.is_empty() {
                let line = std::mem::take(&mut tailed.partial);
                let end = tailed.read_pos;
                let start = tailed.line_start.take().unwrap_or(end.saturating_sub(line.len() as u64));
                self.push_line(&mut tailed, line, start, end, false, &now, &mut events);
            }
            if let Some(p) = tailed.pending.take() {
                events.extend(self.event_from(&tailed, p, &now));
            }
            if tx.blocking_send_batch(events).is_err() {
                return;
            }
        }
    }

    fn excluded(&self, path: &Path) -> bool {
        self.exclude.iter().any(|p| p.matches_path(path))
    }

    /// Finds files, opens new ones, notices rotated-away and truncated ones.
    fn scan(&mut self) {
        let mut seen = BTreeMap::new();
        let mut links = BTreeSet::new();
        for (pattern, fixed) in &self.include {
            let Ok(paths) = glob::glob(pattern) else { continue };
            for path in paths.flatten() {
                if self.excluded(&path) {
                    continue;
                }
                if !self.config.follow_symlinks && through_link(&path, *fixed) {
                    if !self.skipped_links.contains(&path) {
                        tracing::warn!(input = %self.config.name, path = %path.display(), "skipping a symbolic link (set follow_symlinks = true to read files through links)");
                    }
                    links.insert(path);
                    continue;
                }
                let Ok(meta) = std::fs::metadata(&path) else { continue };
                if !meta.is_file() {
                    continue;
                }
                seen.insert((meta.dev(), meta.ino()), path);
            }
        }
        self.skipped_links = links;
        for tailed in self.open.values_mut() {
            tailed.matched = seen.contains_key(&tailed.key);
            if let Some(path) = seen.get(&tailed.key).filter(|p| **p != tailed.path) {
                tailed.path = path.clone();
                tailed.encoder = LineEncoder::new(&FileFields {
                    host: &self.host,
                    input: &self.config.name,
                    path: &path.display().to_string(),
                    device: tailed.key.0,
                    inode: tailed.key.1,
                    fingerprint: tailed.fingerprint,
                });
            }
        }
        for (key, path) in seen {
            if self.open.contains_key(&key) {
                continue;
            }
            match self.open_file(key, &path) {
                Ok(Some(tailed)) => {
                    tracing::info!(input = %self.config.name, path = %path.display(), offset = tailed.read_pos, "tailing file");
                    self.open.insert(key, tailed);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(input = %self.config.name, path = %path.display(), error = %e, "cannot open file")
                }
            }
        }
        self.first_scan = false;
    }

    fn open_file(&mut self, key: FileKey, path: &Path) -> std::io::Result<Option<Tailed>> {
        // O_NOFOLLOW: a file swapped for a link since the scan is refused (ELOOP), not followed.
        // O_NONBLOCK: one swapped for a FIFO does not block the input (regular files ignore it).
        let mut flags = libc::O_NONBLOCK;
        if !self.config.follow_symlinks {
            flags |= libc::O_NOFOLLOW;
        }
        let mut file = std::fs::OpenOptions::new().read(true).custom_flags(flags).open(path)?;
        let meta = file.metadata()?;
        if (meta.dev(), meta.ino()) != key {
            return Ok(None); // Replaced between the scan and the open: next scan.
        }
        let len = meta.len();
        let fingerprint_len = len.min(FINGERPRINT_BYTES);
        let fp = fingerprint(&mut file, fingerprint_len)?;
        let resume = self.known.get(&key).filter(|c| {
            // Same inode and the same first bytes: the same file (inode reuse changes the bytes).
            c.fingerprint_len <= len
                && (c.fingerprint_len == fingerprint_len && c.fingerprint == fp
                    || fingerprint(&mut file, c.fingerprint_len).is_ok_and(|f| f == c.fingerprint))
        });
        let start = match resume {
            Some(c) if c.offset <= len => c.offset,
            Some(c) => {
                tracing::info!(path = %path.display(), checkpoint = c.offset, len, "file shrank since its checkpoint (truncated); reading from the start");
                0
            }
            None if self.first_scan && self.config.start_at == StartAt::End => len,
            None => 0,
        };
        let (fingerprint_value, fingerprint_len) = match resume {
            Some(c) => (c.fingerprint, c.fingerprint_len),
            None => (fp, fingerprint_len),
        };
        let progress = FileProgress::new(start);
        let checkpoint = FileCheckpoint {
            path: path.display().to_string(),
            device: key.0,
            inode: key.1,
            fingerprint: fingerprint_value,
            fingerprint_len,
            offset: start,
        };
        self.states.set(key, checkpoint, progress.clone());
        let partition_key = match self.config.key {
            PartitionKey::File => Some(Arc::from(format!("{}:{}", self.host, path.display()))),
            PartitionKey::Host => Some(Arc::from(self.host.as_str())),
            PartitionKey::None => None,
        };
        file.seek(SeekFrom::Start(start))?;
        let encoder = LineEncoder::new(&FileFields {
            host: &self.host,
            input: &self.config.name,
            path: &path.display().to_string(),
            device: key.0,
            inode: key.1,
            fingerprint: fingerprint_value,
        });
        Ok(Some(Tailed {
            key,
            path: path.to_path_buf(),
            file,
            fingerprint: fingerprint_value,
            fingerprint_len,
            read_pos: start,
            partial: Vec::new(),
            skipping: false,
            line_start: None,
            progress,
            pending: None,
            last_data: Instant::now(),
            matched: true,
            partition_key,
            encoder,
            quiet_polls: 0,
            next_poll: Instant::now(),
        }))
    }

    /// Reads what is new in one file and hands its events over as one batch.
    fn poll_file(&mut self, key: FileKey, tx: &EventSender) -> Polled {
        let still = Polled { alive: true, more: false };
        let Some(mut tailed) = self.open.remove(&key) else { return still };
        let meta = match tailed.file.metadata() {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(path = %tailed.path.display(), error = %e, "cannot stat open file; closing it");
                return still;
            }
        };
        if meta.len() < tailed.read_pos {
            tracing::info!(input = %self.config.name, path = %tailed.path.display(), from = tailed.read_pos, to = meta.len(), "file truncated; reading it again from the start");
            tailed.read_pos = 0;
            tailed.partial.clear();
            tailed.skipping = false;
            tailed.line_start = None;
            tailed.pending = None;
            // A new generation: acknowledgements of the old one no longer move the checkpoint.
            tailed.progress = FileProgress::new(0);
            let checkpoint = self.checkpoint_of(&tailed);
            self.states.set(key, checkpoint, tailed.progress.clone());
            if tailed.file.seek(SeekFrom::Start(0)).is_err() {
                return still;
            }
        }
        let now = crate::event::format_timestamp(SystemTime::now());
        // One buffer for every file and pass (taken out while `self` is borrowed for splitting).
        let mut chunk = std::mem::take(&mut self.read_buf);
        chunk.resize(64 << 10, 0);
        let mut read_now = 0usize;
        let mut events = Vec::new();
        while read_now < READ_CHUNK {
            let n = match tailed.file.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(path = %tailed.path.display(), error = %e, "read failed");
                    break;
                }
            };
            read_now += n;
            tailed.last_data = Instant::now();
            self.split_lines(&mut tailed, &chunk[..n], &now, &mut events);
        }
        self.read_buf = chunk;
        let at_end = read_now < READ_CHUNK;
        let deleted = meta.nlink() == 0;
        let gone = deleted || (!tailed.matched && tailed.last_data.elapsed() >= CLOSE_RENAMED_AFTER);
        if at_end && gone && !tailed.partial.is_empty() {
            // The writer moved on: the unterminated last line is complete.
            let line = std::mem::take(&mut tailed.partial);
            let end = tailed.read_pos;
            let start = tailed.line_start.take().unwrap_or(end.saturating_sub(line.len() as u64));
            let truncated = std::mem::take(&mut tailed.skipping);
            self.push_line(&mut tailed, line, start, end, truncated, &now, &mut events);
        }
        let quiet = tailed
            .pending
            .as_ref()
            .is_some_and(|p| p.since.elapsed() >= Duration::from_millis(self.config.multiline_timeout.0));
        if (at_end && gone) || quiet {
            if let Some(p) = tailed.pending.take() {
                events.extend(self.event_from(&tailed, p, &now));
            }
        }
        if tx.blocking_send_batch(events).is_err() {
            return Polled { alive: false, more: false };
        }
        if at_end && gone {
            tracing::info!(input = %self.config.name, path = %tailed.path.display(), deleted, "closing file");
            if deleted {
                // Nothing can read it again; the checkpoint entry goes once all of it is acked.
                let states = self.states.clone();
                let progress = tailed.progress.clone();
                std::thread::spawn(move || {
                    while progress.in_flight() > 0 {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    states.remove(&key);
                });
            } else {
                self.known.insert(key, FileCheckpoint { offset: tailed.read_pos, ..self.checkpoint_of(&tailed) });
            }
            return still;
        }
        // Quiet files are polled less and less often; pending multiline events still time out.
        tailed.quiet_polls = if read_now == 0 { tailed.quiet_polls.saturating_add(1) } else { 0 };
        let mut wait = POLL.saturating_mul(1 << tailed.quiet_polls.min(4)).min(MAX_POLL);
        if tailed.pending.is_some() || !tailed.partial.is_empty() {
            wait = POLL;
        }
        tailed.next_poll = Instant::now() + wait.saturating_sub(POLL);
        self.open.insert(key, tailed);
        Polled { alive: true, more: !at_end }
    }

    fn checkpoint_of(&self, tailed: &Tailed) -> FileCheckpoint {
        FileCheckpoint {
            path: tailed.path.display().to_string(),
            device: tailed.key.0,
            inode: tailed.key.1,
            fingerprint: tailed.fingerprint,
            fingerprint_len: tailed.fingerprint_len,
            offset: tailed.progress.committed(),
        }
    }

    /// Splits `data` into lines (LF, with a trailing CR removed) and turns them into events.
    fn split_lines(&self, tailed: &mut Tailed, mut data: &[u8], now: &str, events: &mut Vec<Envelope>) {
        let max = self.max_line;
        while !data.is_empty() {
            let newline = data.iter().position(|&b| b == b'\n');
            let (piece, rest, complete) = match newline {
                Some(i) => (&data[..i], &data[i + 1..], true),
                None => (data, &data[data.len()..], false),
            };
            let consumed = piece.len() + usize::from(complete);
            if !tailed.skipping {
                let room = max.saturating_sub(tailed.partial.len());
                if piece.len() > room {
                    // Cut between characters, not inside one.
                    tailed.partial.extend_from_slice(&piece[..char_boundary_at_or_before(piece, room)]);
                    tailed.skipping = true;
                } else {
                    tailed.partial.extend_from_slice(piece);
                }
            }
            tailed.read_pos += consumed as u64;
            if complete {
                let mut line = std::mem::take(&mut tailed.partial);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                let truncated = std::mem::take(&mut tailed.skipping);
                let end = tailed.read_pos;
                // The line started where its bytes (all of them, cut or not) began.
                let start = tailed.line_start.take().unwrap_or(end - consumed as u64);
                self.push_line(tailed, line, start, end, truncated, now, events);
            } else if tailed.line_start.is_none() {
                tailed.line_start = Some(tailed.read_pos - consumed as u64);
            }
            data = rest;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push_line(
        &self,
        tailed: &mut Tailed,
        line: Vec<u8>,
        start: u64,
        end: u64,
        truncated: bool,
        now: &str,
        events: &mut Vec<Envelope>,
    ) {
        match &self.multiline {
            None => {
                let p = Pending { text: line, offset: start, end, truncated, since: Instant::now() };
                events.extend(self.event_from(tailed, p, now));
            }
            Some(start_re) => {
                let starts = start_re.is_match(&String::from_utf8_lossy(&line));
                match tailed.pending.as_mut() {
                    Some(p) if !starts => {
                        if p.text.len() < self.max_line {
                            p.text.push(b'\n');
                            p.text.extend_from_slice(&line);
                        } else {
                            p.truncated = true;
                        }
                        p.end = end;
                        p.truncated |= truncated;
                    }
                    _ => {
                        let next = Pending { text: line, offset: start, end, truncated, since: Instant::now() };
                        if let Some(previous) = tailed.pending.replace(next) {
                            events.extend(self.event_from(tailed, previous, now));
                        }
                    }
                }
            }
        }
    }

    /// Builds the event, registered as in flight for the file's checkpoint; None when a processor
    /// dropped it (the checkpoint then moves over it with the records around it). A record larger
    /// than the producer accepts has its message cut until it fits, and is flagged `truncated`.
    fn event_from(&self, tailed: &Tailed, p: Pending, now: &str) -> Option<Envelope> {
        let end = p.end;
        let room = self.record_limit.saturating_sub(tailed.partition_key.as_ref().map_or(0, |k| k.len()));
        let Some(payload) = self.fit(tailed, p, now, room) else {
            tailed.progress.skip_to(end);
            return None;
        };
        Some(Envelope {
            payload,
            input: self.input_name.clone(),
            topic: self.topic.clone(),
            key: tailed.partition_key.clone(),
            ack: Some(Ack::new(tailed.progress.clone(), end)),
        })
    }

    /// The record of `p`, its message cut (at a character boundary, flagged `truncated`) until
    /// the record is at most `room` bytes; None when a processor dropped it.
    fn fit(&self, tailed: &Tailed, mut p: Pending, now: &str, room: usize) -> Option<Vec<u8>> {
        let payload = self.encode(tailed, &p, now)?;
        if payload.len() <= room {
            return Some(payload);
        }
        // What the record costs without its message; the message gets the rest.
        p.truncated = true;
        let text = std::mem::take(&mut p.text);
        let bare = self.encode(tailed, &p, now)?;
        let available = room.saturating_sub(bare.len());
        let mut keep = text.len().min(available);
        for _ in 0..FIT_ROUNDS {
            keep = char_boundary_at_or_before(&text, keep);
            if keep == 0 {
                break;
            }
            p.text.clear();
            p.text.extend_from_slice(&text[..keep]);
            let payload = self.encode(tailed, &p, now)?;
            if payload.len() <= room {
                tracing::debug!(path = %tailed.path.display(), offset = p.offset, kept = keep, of = text.len(), "line cut to fit the producer's message.max.bytes");
                return Some(payload);
            }
            // JSON escapes made the message longer than its bytes: shrink in proportion.
            let used = payload.len().saturating_sub(bare.len()).max(1);
            let scaled = u64::try_from(keep).unwrap_or(u64::MAX).saturating_mul(available as u64) / used as u64;
            keep = usize::try_from(scaled).unwrap_or(0).min(keep - 1);
        }
        // Not even an empty message fits (processors adding much): the producer refuses the
        // record loudly and the file goes on (see `output`).
        Some(bare)
    }

    /// The record of an event: encoded directly, or built, decoded and processed; None when a
    /// processor dropped it.
    fn encode(&self, tailed: &Tailed, p: &Pending, now: &str) -> Option<Vec<u8>> {
        let message = String::from_utf8_lossy(&p.text);
        let mut flags: Vec<&str> = Vec::new();
        if p.truncated {
            flags.push("truncated");
        }
        if self.multiline.is_some() && p.text.contains(&b'\n') {
            flags.push("multiline");
        }
        let payload = if self.direct {
            tailed.encoder.encode(now, &message, p.offset, &flags)
        } else {
            let mut event = LogEvent::with_timestamp(message.into_owned(), now.to_string());
            event.set("host.name", Value::from(self.host.as_str()));
            event.set("input.type", Value::from("file"));
            event.set("input.name", Value::from(self.config.name.as_str()));
            event.set("log.file.path", Value::from(tailed.path.display().to_string()));
            event.set("log.file.device", Value::from(tailed.key.0));
            event.set("log.file.inode", Value::from(tailed.key.1));
            event.set("log.file.fingerprint", Value::from(format!("{:08x}", tailed.fingerprint)));
            event.set("log.offset", Value::from(p.offset));
            let mut flags: Vec<Value> = flags.into_iter().map(Value::from).collect();
            if self.config.json {
                match serde_json::from_slice::<Value>(&p.text) {
                    Ok(Value::Object(fields)) => {
                        for (k, v) in fields {
                            // The agent's own fields win; the line's are kept under `json` then.
                            if matches!(k.as_str(), "@timestamp" | "host" | "input" | "log" | "event") {
                                event.set(&format!("json.{k}"), v);
                            } else {
                                event.doc.insert(k, v);
                            }
                        }
                    }
                    _ => flags.push(Value::from("json_error")),
                }
            }
            if !flags.is_empty() {
                event.set("log.flags", Value::Array(flags));
            }
            let mut doc = event.doc;
            if !self.processors.apply(&mut doc) {
                return None;
            }
            serde_json::to_vec(&doc).unwrap_or_else(|_| b"{}".to_vec())
        };
        Some(payload)
    }
}

/// The largest index at most `at` that does not split a UTF-8 character of `text` (bytes that
/// are not UTF-8 are cut anywhere; the message shows them as U+FFFD either way).
fn char_boundary_at_or_before(text: &[u8], at: usize) -> usize {
    let mut at = at.min(text.len());
    // At most three continuation bytes precede a character's end.
    for _ in 0..3 {
        match text.get(at) {
            Some(&b) if at > 0 && (b & 0b1100_0000) == 0b1000_0000 => at -= 1,
            _ => break,
        }
    }
    at
}

/// How many leading components of `pattern` hold no wildcard: links there were written into the
/// pattern by whoever configured it, so they are followed; links in components the wildcards
/// matched (and the file itself) are what a writer of the watched directory controls.
fn fixed_components(pattern: &str) -> usize {
    Path::new(pattern).components().take_while(|c| !c.as_os_str().to_string_lossy().contains(['*', '?', '['])).count()
}

/// Whether `path` (matched by a pattern with `fixed` wildcard-free leading components) is a link
/// or lies below a link among the components the pattern's wildcards matched.
fn through_link(path: &Path, fixed: usize) -> bool {
    // The file itself is checked even when the pattern names it exactly.
    let first_checked = fixed.min(path.components().count().saturating_sub(1));
    let mut prefix = PathBuf::new();
    for (i, component) in path.components().enumerate() {
        prefix.push(component);
        if i < first_checked {
            continue;
        }
        // Unreadable: not a link as far as can be told; opening it decides.
        if std::fs::symlink_metadata(&prefix).is_ok_and(|m| m.file_type().is_symlink()) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests;
