//! [`PartitionLog`]: the segmented, indexed log of one topic partition.
//!
//! The type, its settings, opening and the accessors are here; the rest by what it serves:
//! - `append`: the producer's write path and segment rolling ([`AppendInfo`]).
//! - `replicated`: the follower's appends, leader epochs, truncation and reset.
//! - `read`: Fetch reads of whole batches ([`ReadResult`]).
//! - `timestamps`: lookups by time ([`TimestampLookup`], [`TimestampBatch`]).
//! - `retention`: retention, DeleteRecords and compaction, which move the log start.

mod append;
mod read;
mod replicated;
mod retention;
mod timestamps;

pub use append::AppendInfo;
pub use read::ReadResult;
pub use timestamps::{resolve_max_timestamp, TimestampBatch, TimestampLookup};

use super::error::{io_error, LogError};
use super::leader_epoch::LeaderEpochCache;
use super::producer_state::ProducerStateManager;
use super::recovery::{recover, RecoveryReport};
use super::segment::{sync_dir, IndexSettings, Segment};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Storage settings of one partition (Kafka's topic configs of the same names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll when the active segment would exceed this (`segment.bytes`).
    pub segment_bytes: u64,
    /// Roll when the active segment is older than this, checked on append (`segment.ms`).
    pub segment_ms: u64,
    /// Delete whole segments whose max timestamp is older; None keeps forever.
    pub retention_ms: Option<u64>,
    /// Delete oldest whole segments while the log is larger; None is unlimited.
    pub retention_bytes: Option<u64>,
    /// Log bytes between sparse index entries (`index.interval.bytes`).
    pub index_interval_bytes: u32,
    /// Preallocated size of each index file (`segment.index.bytes`).
    pub max_index_bytes: u32,
    /// Most bytes one stored batch may inflate to when the broker itself reads its records
    /// (ListOffsets by time, compaction); see [`super::validator::DECOMPRESSED_BATCH_FACTOR`].
    pub max_decompressed_bytes: usize,
    /// Idempotent producer state not written for this long is dropped (`producer.id.expiration.ms`).
    pub producer_id_expiration_ms: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * DAY_MS,
            retention_ms: Some(7 * DAY_MS),
            retention_bytes: None,
            index_interval_bytes: 4096,
            max_index_bytes: 10 << 20,
            max_decompressed_bytes: 32 << 20,
            producer_id_expiration_ms: DAY_MS,
        }
    }
}

/// The log of one partition: segments, indexes and idempotent producer state. Not thread-safe by
/// itself; the caller wraps it in a mutex.
pub struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    /// Rolled segments, oldest first.
    sealed: Vec<Segment>,
    active: Segment,
    log_start_offset: i64,
    flushed_offset: i64,
    producers: ProducerStateManager,
    epochs: LeaderEpochCache,
}
impl PartitionLog {
    /// Opens (creating if missing) and recovers the log in `dir`.
    pub fn open(dir: &Path, config: LogConfig) -> Result<(PartitionLog, RecoveryReport), LogError> {
        let settings = IndexSettings { interval_bytes: config.index_interval_bytes, max_bytes: config.max_index_bytes };
        let recovered = recover(dir, settings)?;
        let log_start_offset = recovered.sealed.first().unwrap_or(&recovered.active).base_offset();
        let mut log = PartitionLog {
            dir: dir.to_path_buf(),
            config,
            sealed: recovered.sealed,
            flushed_offset: recovered.active.next_offset(),
            active: recovered.active,
            log_start_offset,
            producers: ProducerStateManager::new(dir),
            epochs: LeaderEpochCache::new(dir),
        };
        log.rebuild_producer_state()?;
        let segments: Vec<&Segment> = log.segments().collect();
        log.epochs = LeaderEpochCache::load_for_log(dir, &segments, log.log_start_offset)?;
        Ok((log, recovered.report))
    }

    /// Loads the newest usable producer snapshot and replays the batch headers after it.
    fn rebuild_producer_state(&mut self) -> Result<(), LogError> {
        let (mut producers, from) = ProducerStateManager::load(&self.dir, self.log_end_offset())?;
        let from = from.unwrap_or(self.log_start_offset);
        for segment in self.segments().filter(|s| s.next_offset() > from) {
            let start = segment.find_batch(from)?.map_or(0, |(position, _)| position);
            segment.for_each_batch(start, |_, header| {
                // A batch straddling `from` is already in the snapshot.
                if header.base_offset >= from {
                    producers.update(header, header.max_timestamp);
                }
                ControlFlow::Continue(())
            })?;
        }
        self.producers = producers;
        Ok(())
    }

    fn segments(&self) -> impl Iterator<Item = &Segment> + '_ {
        self.sealed.iter().chain(std::iter::once(&self.active))
    }

    /// The idempotent producers writing to this log.
    pub fn active_producers(&self) -> Vec<crate::log::producer_state::ActiveProducer> {
        self.producers.active()
    }

    /// First offset still readable.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// Offset the next appended record gets.
    pub fn log_end_offset(&self) -> i64 {
        self.active.next_offset()
    }

    /// Bytes in all segment files.
    pub fn size_bytes(&self) -> u64 {
        self.segments().map(Segment::size).sum()
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.sealed.len() + 1
    }

    /// The settings in force.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Changes the settings (e.g. after a topic config change). Index settings apply to
    /// segments created from now on.
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A clone of the active segment's file and the log end offset it covers, to fsync outside
    /// the caller's lock; then call [`PartitionLog::mark_flushed`]. Rolled segments were fsynced
    /// at roll, so syncing this file makes everything below the returned offset durable.
    pub fn flush_handle(&self) -> Result<(std::fs::File, i64), LogError> {
        let file =
            self.active.file().try_clone().map_err(io_error("duplicating the handle of", self.active.log_path()))?;
        Ok((file, self.log_end_offset()))
    }

    /// Records that everything below `offset` is on disk.
    pub fn mark_flushed(&mut self, offset: i64) {
        self.flushed_offset = self.flushed_offset.max(offset.min(self.log_end_offset()));
    }

    /// Offset below which everything is fsynced.
    pub fn flushed_offset(&self) -> i64 {
        self.flushed_offset
    }

    /// Closes cleanly: seals the active segment (fsync, trimmed indexes) and writes a producer
    /// snapshot so the next open replays nothing.
    pub fn close(mut self) -> Result<(), LogError> {
        self.active.seal()?;
        self.producers.take_snapshot(self.log_end_offset())?;
        self.epochs.flush()?;
        sync_dir(&self.dir)
    }

    /// The leader epoch cache.
    pub fn leader_epoch_cache(&self) -> &LeaderEpochCache {
        &self.epochs
    }
}
