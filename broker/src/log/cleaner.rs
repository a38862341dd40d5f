//! Log compaction (`cleanup.policy=compact`): [`PartitionLog::compact`](super::PartitionLog::compact)
//! keeps, for every key, only its latest record.
//!
//! A pass first decodes every batch of every segment, the active one included, to map each key
//! to the offset of its latest record (keys are copied out of the batches, so memory is
//! O(distinct keys)). Then each sealed segment holding something removable is rewritten, oldest
//! first: the older values a tombstone deletes are in the same or older segments, so even a pass
//! stopped half-way never drops a tombstone while an older value of its key survives. The active
//! segment is never rewritten.
//!
//! Offsets never change. Control batches and batches losing nothing are copied byte for byte;
//! the others are re-encoded with their codec, timestamp type, producer fields, transactional
//! flag and leader epoch, starting at their first surviving record, whose sequence number becomes
//! the base sequence. A batch left without records is dropped. A segment keeps its base offset
//! (file name) even when emptied, so the log start offset and the chain of segment bases stay.
//!
//! Idempotent producers: replaying batch headers (when the producer snapshots are lost, or after
//! `truncate_to`) must still find each producer's epoch and last sequence number. So when the
//! last batch of a producer loses its final records, an empty batch (no records) covering the
//! removed tail, with the matching sequence numbers, takes their place, as Kafka keeps the header
//! of a producer's last batch. It is dropped once the producer has a later batch.
//!
//! Swapping a cleaned segment in: `<base>.log.cleaned` is written and fsynced, then renamed to
//! `<base>.log.swap` (the name of a complete file); the old indexes are deleted (directory
//! fsync); the swap file is renamed over `<base>.log` (atomic) and new indexes are built from it
//! and fsynced, then the directory. Whenever a crash happens, `<base>.log` is the old or the new
//! segment, whole; recovery deletes the leftovers (completing a swap if `<base>.log` is gone) and
//! rebuilds missing indexes.

use super::batch::{empty_batch, rewrite_header, verify_crc, BatchHeader};
use super::compression;
use super::error::{io_error, LogError};
use super::producer_state::last_sequence;
use super::segment::{segment_path, sync_dir, IndexSettings, Segment};
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::path::Path;

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Settings for compaction (`cleanup.policy=compact` topics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactionConfig {
    /// Tombstones (records with a key and a null value) are kept this long after their timestamp
    /// so readers can see deletes (`delete.retention.ms`, Kafka default 1 day).
    pub delete_retention_ms: u64,
    /// A record younger than this (by its timestamp) is never compacted away
    /// (`min.compaction.lag.ms`, default 0: no protection, even for timestamps in the future).
    pub min_compaction_lag_ms: u64,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        CompactionConfig { delete_retention_ms: DAY_MS, min_compaction_lag_ms: 0 }
    }
}

/// What one cleaning pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Sealed segments rewritten.
    pub segments_cleaned: usize,
    /// Records removed from them.
    pub records_removed: u64,
    /// Total size of the rewritten segments before the pass.
    pub bytes_before: u64,
    /// Their total size after it.
    pub bytes_after: u64,
}

/// Steps of a segment swap after which tests simulate a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SwapStep {
    /// `<base>.log.cleaned` is complete and fsynced.
    Written,
    /// It was renamed to `<base>.log.swap`.
    SwapNamed,
    /// The old indexes are deleted.
    IndexesDeleted,
    /// `<base>.log` is the new file; its indexes are not built yet.
    LogReplaced,
}

#[cfg(test)]
thread_local! {
    static CRASH_AT: std::cell::Cell<Option<(SwapStep, usize)>> = const { std::cell::Cell::new(None) };
}

/// Makes a later swap on this thread stop after `step` as a crash would, once `swaps_before`
/// swaps have gone past that step (tests only; None disarms it).
#[cfg(test)]
pub(crate) fn crash_at(step: Option<SwapStep>, swaps_before: usize) {
    CRASH_AT.with(|at| at.set(step.map(|step| (step, swaps_before))));
}

/// In tests, fails at the step chosen by `crash_at`, leaving the files as they are.
fn crash_point(step: SwapStep, path: &Path) -> Result<(), LogError> {
    #[cfg(test)]
    match CRASH_AT.with(|at| at.get()) {
        Some((armed, 0)) if armed == step => {
            let source = std::io::Error::other(format!("simulated crash after {step:?}"));
            return Err(LogError::Io { op: "simulated crash at", path: path.to_path_buf(), source });
        }
        Some((armed, left)) if armed == step => CRASH_AT.with(|at| at.set(Some((armed, left - 1)))),
        _ => {}
    }
    let _ = (step, path);
    Ok(())
}

/// What the first pass learnt about one key.
struct KeyState {
    /// Offset of the key's latest record.
    latest: i64,
    /// That record's timestamp (see [`record_timestamp`]).
    latest_timestamp: i64,
    /// That record is a tombstone.
    tombstone: bool,
    /// An older record of the key is too young to be removed: dropping the tombstone would bring
    /// that value back.
    older_kept: bool,
}

/// What to do with one (non-control) batch.
enum Decision {
    /// Copy it unchanged.
    Keep,
    /// Replace it by its surviving records, then an empty batch from `empty_tail` to its last
    /// offset if it is a producer's last batch whose last record goes.
    Rewrite { survivors: Vec<Record>, removed: u64, empty_tail: Option<i64> },
}

/// The decisions of a pass, from the map of the whole log.
struct Plan {
    keys: HashMap<Bytes, KeyState>,
    /// Base offset of the last idempotent batch of each producer id.
    producer_last: HashMap<i64, i64>,
    /// Records stamped after this are younger than `min.compaction.lag.ms` (None: lag 0).
    young_after: Option<i64>,
    /// Latest tombstones stamped before this have been visible long enough.
    tombstones_expire_before: i64,
    /// Most bytes one batch may inflate to.
    decompression_cap: usize,
}

fn is_young(young_after: Option<i64>, timestamp: i64) -> bool {
    young_after.is_some_and(|horizon| timestamp > horizon)
}

/// The timestamp compared with the lag and the tombstone retention: the record's own, or for a
/// LogAppendTime batch the batch's max timestamp, which readers take as every record's.
fn record_timestamp(header: &BatchHeader, record: &Record) -> i64 {
    match header.timestamp_type() {
        TimestampType::LogAppend => header.max_timestamp,
        TimestampType::Creation => record.timestamp,
    }
}

/// Whether a batch's header feeds the idempotent producer state (as in `ProducerStateManager`).
fn is_idempotent(header: &BatchHeader) -> bool {
    header.producer_id >= 0 && header.base_sequence >= 0
}

/// Sequence number of the record at `offset` of the batch of `header`, -1 if it has none.
fn sequence_at(header: &BatchHeader, offset: i64) -> i32 {
    match i32::try_from(offset - header.base_offset) {
        Ok(delta) if header.base_sequence >= 0 => last_sequence(header.base_sequence, delta),
        _ => -1,
    }
}

impl Plan {
    fn new(now_ms: i64, config: &CompactionConfig, decompression_cap: usize) -> Self {
        let ms = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        let lag = config.min_compaction_lag_ms;
        Plan {
            keys: HashMap::new(),
            producer_last: HashMap::new(),
            young_after: (lag > 0).then(|| now_ms.saturating_sub(ms(lag))),
            tombstones_expire_before: now_ms.saturating_sub(ms(config.delete_retention_ms)),
            decompression_cap,
        }
    }

    /// Adds the batches of `segment` (segments must come in offset order) to the maps.
    fn scan(&mut self, segment: &Segment) -> Result<(), LogError> {
        let young_after = self.young_after;
        for_each_batch(segment, |position, header, bytes| {
            if is_idempotent(&header) {
                self.producer_last.insert(header.producer_id, header.base_offset);
            }
            if header.is_control() {
                return Ok(ControlFlow::Continue(()));
            }
            for record in decode(segment, position, bytes, self.decompression_cap)? {
                let Some(key) = &record.key else { continue };
                let timestamp = record_timestamp(&header, &record);
                let tombstone = record.value.is_none();
                if let Some(state) = self.keys.get_mut(key) {
                    state.older_kept |= is_young(young_after, state.latest_timestamp);
                    state.latest = record.offset;
                    state.latest_timestamp = timestamp;
                    state.tombstone = tombstone;
                } else {
                    // A copy: the decoded key points into the whole batch, which must not stay alive.
                    let state =
                        KeyState { latest: record.offset, latest_timestamp: timestamp, tombstone, older_kept: false };
                    self.keys.insert(Bytes::copy_from_slice(key), state);
                }
            }
            Ok(ControlFlow::Continue(()))
        })
    }

    fn removable(&self, header: &BatchHeader, record: &Record) -> bool {
        let Some(key) = &record.key else { return false };
        let timestamp = record_timestamp(header, record);
        if is_young(self.young_after, timestamp) {
            return false;
        }
        let Some(state) = self.keys.get(key) else { return false };
        if record.offset < state.latest {
            return true;
        }
        // The key's latest record goes only if it is a tombstone readers had time to see.
        state.tombstone && !state.older_kept && timestamp < self.tombstones_expire_before
    }

    fn decide(&self, header: &BatchHeader, records: Vec<Record>) -> Decision {
        let total = records.len();
        let survivors: Vec<Record> = records.into_iter().filter(|r| !self.removable(header, r)).collect();
        let removed = (total - survivors.len()) as u64;
        let producer_last =
            is_idempotent(header) && self.producer_last.get(&header.producer_id) == Some(&header.base_offset);
        // An empty batch stays only as the last one of its producer.
        if removed == 0 && (total > 0 || producer_last) {
            return Decision::Keep;
        }
        let kept_last = survivors.last().map(|r| r.offset);
        let empty_tail = (producer_last && kept_last != Some(header.last_offset()))
            .then(|| kept_last.map_or(header.base_offset, |offset| offset + 1));
        Decision::Rewrite { survivors, removed, empty_tail }
    }
}

/// Calls `f` with the position, header and bytes of each batch of `segment`, in order.
fn for_each_batch(
    segment: &Segment,
    mut f: impl FnMut(u64, BatchHeader, Bytes) -> Result<ControlFlow<()>, LogError>,
) -> Result<(), LogError> {
    let mut position = 0;
    while let Some(header) = segment.read_header_at(position)? {
        let bytes = Bytes::from(segment.read_bytes(position, header.total_size())?);
        if f(position, header, bytes)?.is_break() {
            break;
        }
        position += header.total_size() as u64;
    }
    Ok(())
}

/// The records of the batch `bytes` (any codec, inflated to at most `cap` bytes; the decoder
/// checks the CRC).
fn decode(segment: &Segment, position: u64, mut bytes: Bytes, cap: usize) -> Result<Vec<Record>, LogError> {
    compression::decode_batch(&mut bytes, cap).map(|set| set.records).map_err(|e| LogError::Corrupt {
        path: segment.log_path().to_path_buf(),
        position,
        reason: format!("cannot decode records: {e}"),
    })
}

/// The batches replacing the batch of `header`: its survivors re-encoded, then the empty tail.
fn rebuild_batch(header: &BatchHeader, survivors: &[Record], empty_tail: Option<i64>) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    if let (Some(first), Some(last)) = (survivors.first(), survivors.last()) {
        let compression = header.compression().map_err(|e| e.to_string())?;
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(&mut buf, survivors, &RecordEncodeOptions { version: 2, compression })
            .map_err(|e| format!("cannot re-encode the surviving records: {e}"))?;
        let mut new = BatchHeader::parse(&buf).map_err(|e| e.to_string())?;
        if (new.base_offset, new.last_offset(), new.records_count as usize)
            != (first.offset, last.offset, survivors.len())
        {
            return Err(format!("the re-encoded batch covers {}..={} instead", new.base_offset, new.last_offset()));
        }
        // The encoder ignores the timestamp type and does not wrap sequences to 0 after
        // i32::MAX as Kafka does, and a batch without sequences must keep -1: restore them.
        new.attributes = header.attributes;
        new.partition_leader_epoch = header.partition_leader_epoch;
        new.base_sequence = sequence_at(header, first.offset);
        if header.timestamp_type() == TimestampType::LogAppend {
            new.max_timestamp = header.max_timestamp;
        }
        // Also fails if the encoder split the records into several batches.
        rewrite_header(&mut buf, &new).map_err(|e| e.to_string())?;
        out.extend_from_slice(&buf);
    }
    if let Some(from) = empty_tail {
        let empty = empty_batch(header, from, header.last_offset(), sequence_at(header, from));
        out.extend(empty.map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// Checks the batches about to be written as recovery will check them, so that a cleaner bug
/// cannot produce a segment the next open rejects.
fn check_batches(mut data: &[u8], next_offset: &mut i64) -> Result<(), String> {
    while !data.is_empty() {
        let header = BatchHeader::parse(data).map_err(|e| e.to_string())?;
        verify_crc(data).map_err(|e| e.to_string())?;
        header.check_stored_record_count().map_err(|e| e.to_string())?;
        if header.base_offset < *next_offset {
            return Err(format!("batch at {} would follow offset {}", header.base_offset, *next_offset - 1));
        }
        *next_offset = header.next_offset();
        data = data.get(header.total_size()..).unwrap_or_default();
    }
    Ok(())
}

/// Whether cleaning would change `segment` at all; this dry run spares rewriting segments that
/// an earlier pass already cleaned.
fn needs_cleaning(segment: &Segment, plan: &Plan) -> Result<bool, LogError> {
    let mut needed = false;
    for_each_batch(segment, |position, header, bytes| {
        if !header.is_control() {
            let records = decode(segment, position, bytes, plan.decompression_cap)?;
            needed = !matches!(plan.decide(&header, records), Decision::Keep);
        }
        Ok(if needed { ControlFlow::Break(()) } else { ControlFlow::Continue(()) })
    })?;
    Ok(needed)
}

/// Writes the cleaned copy of `segment` to `path` and fsyncs it; returns the records removed.
fn write_cleaned(segment: &Segment, plan: &Plan, path: &Path) -> Result<u64, LogError> {
    let file =
        OpenOptions::new().write(true).create(true).truncate(true).open(path).map_err(io_error("creating", path))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let (mut removed, mut written, mut next_offset) = (0, 0u64, segment.base_offset());
    for_each_batch(segment, |position, header, bytes| {
        let failed = |reason: String| LogError::Compaction { path: segment.log_path().to_path_buf(), position, reason };
        if written > u64::from(u32::MAX) {
            return Err(failed("the cleaned segment would outgrow the 4 GiB its indexes can address".into()));
        }
        let decision = if header.is_control() {
            Decision::Keep
        } else {
            plan.decide(&header, decode(segment, position, bytes.clone(), plan.decompression_cap)?)
        };
        let replacement = match decision {
            Decision::Keep => None,
            Decision::Rewrite { survivors, removed: count, empty_tail } => {
                removed += count;
                Some(rebuild_batch(&header, &survivors, empty_tail).map_err(failed)?)
            }
        };
        let data = replacement.as_deref().unwrap_or(&bytes);
        check_batches(data, &mut next_offset).map_err(failed)?;
        out.write_all(data).map_err(io_error("writing", path))?;
        written += data.len() as u64;
        Ok(ControlFlow::Continue(()))
    })?;
    let file = out.into_inner().map_err(|e| io_error("writing", path)(e.into_error()))?;
    // Time-based retention falls back to the file's mtime for a segment without timestamps (an
    // emptied one, say): cleaning must not postpone it.
    let modified = segment
        .file()
        .metadata()
        .and_then(|m| m.modified())
        .map_err(io_error("reading metadata of", segment.log_path()))?;
    file.set_modified(modified).map_err(io_error("setting the modification time of", path))?;
    file.sync_all().map_err(io_error("fsync of", path))?;
    Ok(removed)
}

/// Replaces `old` on disk by the complete, fsynced file `cleaned` and opens the result with new
/// indexes. `old` stays readable throughout: its handles keep the replaced files alive.
fn swap_in(dir: &Path, old: &Segment, cleaned: &Path, settings: IndexSettings) -> Result<Segment, LogError> {
    let base = old.base_offset();
    let swap = segment_path(dir, base, "log.swap");
    std::fs::rename(cleaned, &swap).map_err(io_error("renaming", cleaned))?;
    crash_point(SwapStep::SwapNamed, &swap)?;
    // Unlinked rather than overwritten: creating the new indexes in place would truncate files
    // `old` has mapped (SIGBUS), and the old entries must never sit next to the new log.
    for ext in ["index", "timeindex"] {
        let path = segment_path(dir, base, ext);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_error("deleting", &path)(e)),
            _ => {}
        }
    }
    // Durable before the new log takes the name, so no crash pairs it with the old indexes.
    sync_dir(dir)?;
    crash_point(SwapStep::IndexesDeleted, dir)?;
    std::fs::rename(&swap, old.log_path()).map_err(io_error("renaming", &swap))?;
    crash_point(SwapStep::LogReplaced, old.log_path())?;
    let segment = Segment::open_rebuilt(dir, base, old.next_offset(), settings)?;
    sync_dir(dir)?;
    Ok(segment)
}

/// One compaction pass over the segments of a log (see [`PartitionLog::compact`](super::PartitionLog::compact)).
pub(crate) fn compact(
    dir: &Path,
    sealed: &mut [Segment],
    active: &Segment,
    settings: IndexSettings,
    now_ms: i64,
    config: &CompactionConfig,
    decompression_cap: usize,
) -> Result<CompactionReport, LogError> {
    let mut plan = Plan::new(now_ms, config, decompression_cap);
    for segment in sealed.iter().chain(std::iter::once(active)) {
        plan.scan(segment)?;
    }
    let mut report = CompactionReport::default();
    // Oldest first: see the module documentation.
    for slot in sealed.iter_mut() {
        if !needs_cleaning(slot, &plan)? {
            continue;
        }
        let cleaned = segment_path(dir, slot.base_offset(), "log.cleaned");
        let removed = match write_cleaned(slot, &plan, &cleaned) {
            Ok(removed) => removed,
            Err(error) => {
                // Best effort: recovery deletes it anyway, and the next pass overwrites it.
                let _ = std::fs::remove_file(&cleaned);
                return Err(error);
            }
        };
        crash_point(SwapStep::Written, &cleaned)?;
        let segment = swap_in(dir, slot, &cleaned, settings)?;
        tracing::info!(
            segment = %segment.log_path().display(),
            records_removed = removed,
            bytes_before = slot.size(),
            bytes_after = segment.size(),
            "compacted a segment"
        );
        report.segments_cleaned += 1;
        report.records_removed += removed;
        report.bytes_before += slot.size();
        report.bytes_after += segment.size();
        *slot = segment;
    }
    Ok(report)
}

#[cfg(test)]
mod tests;
