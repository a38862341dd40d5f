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
//!
//! Map: the input's life ([`FileTailer::new`], [`FileTailer::run`], `--once`) and its per-file
//! state are here; then
//! - `scan`: finding files by pattern, skipping links, noticing renames.
//! - `identity`: [`FileKey`] and fingerprints, opening a file where its checkpoint says, and
//!   [`FileStates`], the checkpoints shared with the registry.
//! - `read`: polling a file, splitting lines, joining multiline events.
//! - `record`: turning a line into the record sent (direct encoding or processors, cut to fit).
//! - `encode`: the direct JSON encoder of lines without processors.

mod encode;
mod identity;
mod read;
mod record;
mod scan;

pub use identity::{FileKey, FileStates};

use crate::channel::EventSender;
use crate::checkpoint::FileCheckpoint;
use crate::pipeline::{FileProgress, Processors};
use crate::route::TopicRoute;
use encode::LineEncoder;
use millrace_config::agent::{FileInput, PartitionKey};
use millrace_config::template::Template;
use scan::fixed_components;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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
    topic: TopicRoute,
    /// A partition key rendered from each event's fields.
    key_template: Option<Template>,
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
        let module = config.module.map(|m| (m, config.keep_original, config.timezone.as_deref()));
        let processors = Processors::with_transforms(&config.processors, module, &config.transforms)?;
        // The module's multiline start unless the input sets its own.
        let multiline_start = config
            .multiline_start
            .as_deref()
            .or_else(|| config.module.and_then(crate::transform::modules::multiline_start));
        let multiline = multiline_start.map(regex::Regex::new).transpose().map_err(|e| e.to_string())?;
        let topic = TopicRoute::new(&config.topic)?;
        let key_template = match &config.key {
            PartitionKey::Template(text) => Some(Template::parse(text)?),
            _ => None,
        };
        let exclude = config
            .exclude
            .iter()
            .map(|p| glob::Pattern::new(p))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        Ok(FileTailer {
            input_name: Arc::from(config.name.as_str()),
            direct: processors.is_empty() && !config.json && !topic.needs_fields() && key_template.is_none(),
            read_buf: Vec::new(),
            topic,
            key_template,
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

#[cfg(test)]
mod tests;
