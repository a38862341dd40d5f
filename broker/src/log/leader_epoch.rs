//! [`LeaderEpochCache`]: the first offset written in each leader epoch, persisted as Kafka's
//! `leader-epoch-checkpoint` file in the partition directory. Followers and consumers use it
//! (OffsetForLeaderEpoch) to find where their log diverges from the leader's.
//!
//! The file is Kafka's checkpoint text format, so a Kafka tool reading our directories (or an
//! operator comparing them) sees the same thing:
//!
//! ```text
//! 0                      version
//! 2                      number of entries
//! 0 0                    <epoch> <start offset>, both strictly increasing
//! 3 120
//! ```

use super::error::{io_error, LogError};
use super::segment::{sync_dir, Segment};
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// Name of the checkpoint file in the partition directory (Kafka's).
pub const CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";
/// Temporary name while writing; `.tmp` files are deleted as strays by recovery.
const CHECKPOINT_TMP: &str = "leader-epoch-checkpoint.tmp";
/// The only version of the format Kafka has ever written.
const VERSION: i32 = 0;

/// One leader epoch and the offset of the first record written in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    /// The leader epoch.
    pub epoch: i32,
    /// Offset of its first record.
    pub start_offset: i64,
}

/// The leader epochs of one partition's log, oldest first, with epochs and start offsets
/// strictly increasing. Changes are in memory until [`LeaderEpochCache::flush`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderEpochCache {
    dir: PathBuf,
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// An empty cache for the partition directory `dir` (nothing is written).
    pub fn new(dir: &Path) -> Self {
        LeaderEpochCache { dir: dir.to_path_buf(), entries: Vec::new() }
    }

    /// Reads the checkpoint in `dir`. A missing file is an empty cache. The inner error is the
    /// reason the file is unusable (the caller rebuilds the cache from the log); the outer one
    /// is an I/O failure.
    pub fn load(dir: &Path) -> Result<Result<Self, String>, LogError> {
        let path = dir.join(CHECKPOINT_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ok(Self::new(dir))),
            Err(e) => return Err(io_error("reading", &path)(e)),
        };
        let parsed = std::str::from_utf8(&bytes).map_err(|e| format!("not UTF-8: {e}")).and_then(parse);
        Ok(parsed.map(|entries| LeaderEpochCache { dir: dir.to_path_buf(), entries }))
    }

    /// Loads the checkpoint of the log made of `segments` (oldest first, the active one last),
    /// rebuilding it from the batch headers when it is unreadable or disagrees with the log: a
    /// missing file while the log has epochs, a crash between the log write and the checkpoint
    /// write, recovery cutting a tail the checkpoint saw. Then moves its start to `log_start`.
    /// Writes the file back if anything changed.
    pub(crate) fn load_for_log(dir: &Path, segments: &[&Segment], log_start: i64) -> Result<Self, LogError> {
        let end = segments.last().map_or(log_start, |s| s.next_offset());
        let exists = dir.join(CHECKPOINT_FILE).exists();
        let last_epoch = last_batch_epoch(segments)?;
        let loaded = Self::load(dir)?;
        let problem = match &loaded {
            Err(reason) => Some(reason.clone()),
            Ok(cache) => match (cache.entries.last(), last_epoch) {
                (Some(e), _) if e.start_offset > end => {
                    Some(format!("epoch {} starts beyond the log end {end}", e.epoch))
                }
                // Epochs newer than the last batch's are fine only if nothing was written in them
                // (a leadership that started at the log end and appended nothing).
                (_, Some(last))
                    if !cache.entries.iter().any(|e| e.epoch == last)
                        || cache.entries.iter().any(|e| e.epoch > last && e.start_offset < end) =>
                {
                    Some(format!("the last batch has epoch {last}, which the cache does not end with"))
                }
                _ => None,
            },
        };
        let (mut cache, mut changed) = match (loaded, problem) {
            (Ok(cache), None) => (cache, false),
            (_, reason) => {
                if exists {
                    let file = dir.join(CHECKPOINT_FILE);
                    tracing::warn!(file = %file.display(), ?reason, "rebuilding the leader epoch cache from the log");
                }
                (rebuild(dir, segments)?, true)
            }
        };
        // The start may have moved past early epochs (retention) since the file was written.
        changed |= cache.truncate_from_start(log_start);
        if changed {
            cache.flush()?;
        }
        Ok(cache)
    }

    /// Path of the checkpoint file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(CHECKPOINT_FILE)
    }

    /// Records that `epoch` starts at `start_offset` if it is newer than the latest epoch;
    /// older or equal epochs are ignored (their batches continue an epoch already cached), as
    /// are negative ones (batches without a leader epoch). Like Kafka, entries starting at or
    /// after `start_offset` are dropped first so start offsets stay strictly increasing (an
    /// epoch that never got a record of its own). Returns whether the cache changed.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || self.latest_epoch().is_some_and(|latest| epoch <= latest) {
            return false;
        }
        while self.entries.last().is_some_and(|e| e.start_offset >= start_offset) {
            self.entries.pop();
        }
        self.entries.push(EpochEntry { epoch, start_offset });
        true
    }

    /// The newest epoch, None if the cache is empty.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// All entries, oldest first.
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// Kafka's OffsetForLeaderEpoch answer for `epoch`: the epoch to report and the offset at
    /// which it ended (the start of the next cached epoch; `log_end_offset` for the latest).
    /// As in Kafka's `LeaderEpochFileCache.endOffsetFor`:
    /// - the latest epoch ends at the log end;
    /// - otherwise the largest cached epoch <= `epoch`, ending where the next one starts;
    /// - an epoch below the first cached one reports itself, ending at the first cached epoch's
    ///   start (its data is gone; the follower truncates to where the leader's log begins);
    /// - None (UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET) for a negative epoch, an epoch above
    ///   the latest, or an empty cache.
    pub fn end_offset_for(&self, epoch: i32, log_end_offset: i64) -> Option<(i32, i64)> {
        if epoch < 0 {
            return None;
        }
        if self.latest_epoch() == Some(epoch) {
            return Some((epoch, log_end_offset));
        }
        // First entry with a larger epoch; None means the epoch is above the latest.
        let higher = self.entries.partition_point(|e| e.epoch <= epoch);
        let next = self.entries.get(higher)?;
        match higher.checked_sub(1).and_then(|i| self.entries.get(i)) {
            Some(floor) => Some((floor.epoch, next.start_offset)),
            None => Some((epoch, next.start_offset)),
        }
    }

    /// The log was truncated to end at `end_offset`: drops the epochs that started at or after
    /// it. Returns whether the cache changed.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let keep = self.entries.partition_point(|e| e.start_offset < end_offset);
        let changed = keep < self.entries.len();
        self.entries.truncate(keep);
        changed
    }

    /// The log now starts at `start_offset`: drops the epochs that started at or before it
    /// except the last of them, which still covers the records from `start_offset` on and so
    /// now starts there (Kafka's behaviour). Returns whether the cache changed.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let covered = self.entries.partition_point(|e| e.start_offset <= start_offset);
        let Some(last) = covered.checked_sub(1) else { return false };
        let changed = self.entries.get(last).is_some_and(|e| e.start_offset != start_offset) || last > 0;
        self.entries.drain(..last);
        if let Some(first) = self.entries.first_mut() {
            first.start_offset = start_offset;
        }
        changed
    }

    /// Drops every entry (before a rebuild from the log).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Writes the checkpoint atomically: a temp file, fsync, rename over the old one, fsync of
    /// the directory, so a crash leaves either the old or the new file whole.
    pub fn flush(&self) -> Result<(), LogError> {
        let path = self.path();
        let tmp = self.dir.join(CHECKPOINT_TMP);
        let mut file = std::fs::File::create(&tmp).map_err(io_error("creating", &tmp))?;
        file.write_all(format(&self.entries).as_bytes()).map_err(io_error("writing", &tmp))?;
        file.sync_all().map_err(io_error("fsync of", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_error("renaming", &tmp))?;
        sync_dir(&self.dir)
    }

    /// Replaces the entries (to undo an in-memory change whose flush failed).
    pub(crate) fn restore(&mut self, entries: Vec<EpochEntry>) {
        self.entries = entries;
    }
}

/// Leader epoch of the last batch of the log; None if the log is empty or that batch has none.
/// Starts from the index entry nearest each segment's end rather than scanning it whole.
fn last_batch_epoch(segments: &[&Segment]) -> Result<Option<i32>, LogError> {
    for segment in segments.iter().rev().filter(|s| s.size() > 0) {
        let start = segment.find_batch(segment.next_offset() - 1)?.map_or(0, |(position, _)| position);
        let mut last = None;
        segment.for_each_batch(start, |_, header| {
            last = Some(header.partition_leader_epoch);
            ControlFlow::Continue(())
        })?;
        if let Some(epoch) = last {
            return Ok(Some(epoch).filter(|e| *e >= 0));
        }
    }
    Ok(None)
}

/// A cache built from every batch header's partitionLeaderEpoch.
fn rebuild(dir: &Path, segments: &[&Segment]) -> Result<LeaderEpochCache, LogError> {
    let mut cache = LeaderEpochCache::new(dir);
    for segment in segments {
        segment.for_each_batch(0, |_, header| {
            cache.assign(header.partition_leader_epoch, header.base_offset);
            ControlFlow::Continue(())
        })?;
    }
    Ok(cache)
}

/// The checkpoint file's content for `entries`.
pub(crate) fn format(entries: &[EpochEntry]) -> String {
    let mut text = format!("{VERSION}\n{}\n", entries.len());
    for e in entries {
        text.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
    }
    text
}

/// Parses a checkpoint file's content, rejecting anything Kafka's reader would reject plus
/// entries that are not strictly increasing (the cache's invariant).
pub(crate) fn parse(text: &str) -> Result<Vec<EpochEntry>, String> {
    let mut lines = text.lines();
    let mut next_line = |what: &str| lines.next().ok_or_else(|| format!("missing {what}"));
    let version: i32 = next_line("version")?.trim().parse().map_err(|e| format!("bad version: {e}"))?;
    if version != VERSION {
        return Err(format!("unsupported version {version}"));
    }
    let count: usize = next_line("entry count")?.trim().parse().map_err(|e| format!("bad entry count: {e}"))?;
    // Not `with_capacity(count)`: the count is untrusted input.
    let mut entries: Vec<EpochEntry> = Vec::new();
    for i in 0..count {
        let line = next_line("an entry")?;
        let mut fields = line.split_whitespace();
        let (Some(epoch), Some(offset), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(format!("entry {i} is not `<epoch> <offset>`: {line:?}"));
        };
        let epoch: i32 = epoch.parse().map_err(|e| format!("entry {i}: bad epoch: {e}"))?;
        let start_offset: i64 = offset.parse().map_err(|e| format!("entry {i}: bad offset: {e}"))?;
        if epoch < 0 || start_offset < 0 {
            return Err(format!("entry {i} is negative: {line:?}"));
        }
        if entries.last().is_some_and(|last| last.epoch >= epoch || last.start_offset >= start_offset) {
            return Err(format!("entry {i} does not follow the previous one: {line:?}"));
        }
        entries.push(EpochEntry { epoch, start_offset });
    }
    if lines.any(|line| !line.trim().is_empty()) {
        return Err(format!("more than the {count} entries announced"));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests;
