//! One partition as the server sees it: the on-disk log behind a mutex, a watch of its log end
//! offset (wakes long-polling fetches) and group-commit fsync (many acks=all requests share one).

mod role;

pub use role::{AckWait, FollowerFetch, ReplicaError, Role};

use crate::error::BrokerError;
use crate::log::{CompactionConfig, CompactionReport, LogConfig, LogError, PartitionLog, ReadResult, TimestampLookup};
use crate::log_dirs::LogDir;
use millrace_config::EffectiveTopicConfig;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::sync::watch;

/// How many appended bytes of a follower start their writeback (see `start_writeback_if_due`).
const WRITEBACK_EVERY: u64 = 256 * 1024;

/// A topic partition hosted by this broker.
pub struct Partition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub index: i32,
    /// Directory holding its segments.
    pub dir: PathBuf,
    /// Fetches share the read side; appends, retention and compaction take the write side.
    log: RwLock<PartitionLog>,
    end_offset: watch::Sender<i64>,
    flushed_offset: watch::Sender<i64>,
    flush_in_progress: AtomicBool,
    /// Bytes a follower appended since it last started their writeback.
    unwritten_bytes: AtomicU64,
    /// A writeback start is running on the blocking pool (one at a time: on a disk too slow to
    /// take them, they would pile up there).
    writeback_running: Arc<AtomicBool>,
    /// (log end offset, wall-clock ms) of the last compaction pass.
    last_compaction: std::sync::Mutex<Option<(i64, i64)>>,
    /// Leader or follower, per the controller's metadata. Appends hold it so leadership cannot
    /// change under a write.
    role: std::sync::Mutex<Role>,
    /// Records below the high watermark are on every in-sync replica; consumers see only them.
    high_watermark: watch::Sender<i64>,
    /// Bumped when a follower reports a new log start (a DeleteRecords waits for the ISR's).
    follower_log_starts: watch::Sender<u64>,
    /// The log directory holding it. Once an I/O error hits the directory (here or in another
    /// of its replicas) it is offline: Linux may drop the dirty pages of a failed fsync and
    /// report a later fsync as a success without them ("fsyncgate"), and a full or failing disk
    /// cannot be trusted with the next write either, so nothing here is served or made durable
    /// again until a restart's recovery re-reads the log.
    log_dir: Arc<LogDir>,
    /// How the active segment is synced (a test swaps in a failing one).
    sync: fn(&std::fs::File) -> std::io::Result<()>,
}

/// Translates topic settings to the storage engine's.
pub fn log_config(config: &EffectiveTopicConfig) -> LogConfig {
    LogConfig {
        segment_bytes: config.segment_bytes,
        segment_ms: config.segment_ms,
        // Compact-only topics are never trimmed by time or size.
        retention_ms: config.retention_ms.filter(|_| config.cleanup_delete),
        retention_bytes: config.retention_bytes.filter(|_| config.cleanup_delete),
        index_interval_bytes: config.index_interval_bytes,
        max_decompressed_bytes: crate::log::validator::ValidationConfig::decompression_cap(config.max_message_bytes),
        producer_id_expiration_ms: config.producer_id_expiration_ms,
        ..LogConfig::default()
    }
}

impl Partition {
    /// Opens (recovering if needed) the partition's log in `log_dir`; an I/O error takes the
    /// directory offline.
    pub fn open(
        topic: &str,
        index: i32,
        dir: PathBuf,
        log_dir: Arc<LogDir>,
        config: &EffectiveTopicConfig,
    ) -> Result<Partition, BrokerError> {
        let opened = PartitionLog::open(&dir, log_config(config));
        if let Err(e @ LogError::Io { .. }) = &opened {
            log_dir.mark_offline(format!("opening {topic}-{index}: {e}"));
        }
        let (log, report) = opened?;
        if report.truncated_bytes > 0 {
            tracing::warn!(
                partition = %format!("{topic}-{index}"),
                truncated_bytes = report.truncated_bytes,
                truncated_at_offset = ?report.truncated_at_offset,
                reason = report.reason.as_deref().unwrap_or("torn write"),
                "recovery cut an invalid tail from the log"
            );
        }
        if report.rebuilt_indexes > 0 {
            tracing::info!(partition = %format!("{topic}-{index}"), rebuilt = report.rebuilt_indexes, "rebuilt segment indexes");
        }
        let end = log.log_end_offset();
        Ok(Partition {
            topic: topic.to_string(),
            index,
            dir,
            end_offset: watch::Sender::new(end),
            // Whatever survived recovery is on disk already.
            flushed_offset: watch::Sender::new(end),
            log: RwLock::new(log),
            flush_in_progress: AtomicBool::new(false),
            unwritten_bytes: AtomicU64::new(0),
            writeback_running: Arc::new(AtomicBool::new(false)),
            last_compaction: std::sync::Mutex::new(None),
            role: std::sync::Mutex::new(Role::None),
            // Nothing is known committed until leadership or a leader's fetch response says so.
            high_watermark: watch::Sender::new(0),
            follower_log_starts: watch::Sender::new(0),
            log_dir,
            sync: std::fs::File::sync_data,
        })
    }

    /// Refuses with [`LogError::Offline`] once its log directory is offline.
    pub fn check_online(&self) -> Result<(), LogError> {
        match self.log_dir.failure() {
            Some(reason) => Err(LogError::Offline { partition: self.name(), reason: reason.to_string() }),
            None => Ok(()),
        }
    }

    /// Whether its log directory is offline.
    pub fn is_offline(&self) -> bool {
        self.log_dir.failure().is_some()
    }

    /// The log directory holding it.
    pub fn log_dir(&self) -> &Arc<LogDir> {
        &self.log_dir
    }

    /// Passes `result` on; an I/O error in it takes the log directory offline first, so no later
    /// request reads or writes a log whose disk just failed.
    fn storage<T>(&self, result: Result<T, LogError>) -> Result<T, LogError> {
        if let Err(e @ LogError::Io { .. }) = &result {
            self.log_dir.mark_offline(format!("{}: {e}", self.name()));
        }
        result
    }

    // A panic while holding the lock leaves the log in a state the next append validates anyway,
    // so poisoning is ignored.
    fn lock(&self) -> RwLockWriteGuard<'_, PartitionLog> {
        self.log.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn read_lock(&self) -> RwLockReadGuard<'_, PartitionLog> {
        self.log.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads whole batches from `offset` below the high watermark (what consumers may see).
    pub fn read(&self, offset: i64, max_bytes: usize, min_one_batch: bool) -> Result<ReadResult, LogError> {
        self.check_online()?;
        let high_watermark = *self.high_watermark.borrow();
        self.storage(self.read_lock().read(offset, max_bytes, high_watermark, min_one_batch))
    }

    /// Reads whole batches from `offset` up to the log end (for followers and the coordinator's
    /// own loading).
    pub fn read_to_end(&self, offset: i64, max_bytes: usize, min_one_batch: bool) -> Result<ReadResult, LogError> {
        self.check_online()?;
        self.storage(self.read_lock().read(offset, max_bytes, i64::MAX, min_one_batch))
    }

    /// (log start offset, high watermark).
    pub fn offsets(&self) -> (i64, i64) {
        let log = self.read_lock();
        (log.log_start_offset(), (*self.high_watermark.borrow()).min(log.log_end_offset()))
    }

    /// Log end offset (next offset to be written).
    pub fn log_end_offset(&self) -> i64 {
        self.read_lock().log_end_offset()
    }

    /// The idempotent producers writing to this replica (DescribeProducers).
    pub fn active_producers(&self) -> Vec<crate::log::producer_state::ActiveProducer> {
        self.read_lock().active_producers()
    }

    /// `<topic>-<partition>`, for logs.
    pub fn name(&self) -> String {
        format!("{}-{}", self.topic, self.index)
    }

    /// Bytes on disk and segment count.
    pub fn size(&self) -> (u64, usize) {
        let log = self.read_lock();
        (log.size_bytes(), log.segment_count())
    }

    /// First offset with timestamp >= `ts`. Records are decoded (and inflated) without holding
    /// the log, so appends and fetches go on meanwhile; blocking, see [`Self::offset_for_timestamp_async`].
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, LogError> {
        let mut from = i64::MIN;
        loop {
            // The guard is a temporary: the lock is released before the batch is decoded.
            let lookup = self.read_lock().timestamp_lookup(ts, from)?;
            match lookup {
                TimestampLookup::Done(found) => return Ok(found),
                TimestampLookup::InBatch(batch) => match batch.first_record_at_or_after(ts)? {
                    Some(found) => return Ok(Some(found)),
                    None => from = batch.next_offset,
                },
            }
        }
    }

    /// [`Self::offset_for_timestamp`] on the blocking pool, off the async workers.
    pub async fn offset_for_timestamp_async(self: &Arc<Self>, ts: i64) -> Result<Option<(i64, i64)>, LogError> {
        let partition = self.clone();
        match tokio::task::spawn_blocking(move || partition.offset_for_timestamp(ts)).await {
            Ok(result) => result,
            Err(e) => Err(LogError::Io {
                op: "looking up a timestamp in",
                path: self.read_lock().dir().to_path_buf(),
                source: std::io::Error::other(e.to_string()),
            }),
        }
    }

    /// [`Self::max_timestamp`] on the blocking pool.
    pub async fn max_timestamp_async(self: &Arc<Self>) -> Option<(i64, i64)> {
        let partition = self.clone();
        tokio::task::spawn_blocking(move || partition.max_timestamp()).await.unwrap_or(None)
    }

    /// The leader epoch this replica appends with: the latest in its epoch cache (0 on a single
    /// broker, whose leadership never changes).
    pub fn leader_epoch(&self) -> i32 {
        self.read_lock().leader_epoch_cache().latest_epoch().unwrap_or(0)
    }

    /// The leader epoch at or below `epoch` and the offset where it ended (OffsetForLeaderEpoch).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.read_lock().end_offset_for_epoch(epoch)
    }

    /// Largest timestamp and its offset; the record is found as in [`Self::offset_for_timestamp`].
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let (ts, batch_offset) = self.read_lock().max_timestamp_batch()?;
        let dir = self.read_lock().dir().to_path_buf();
        crate::log::resolve_max_timestamp(ts, batch_offset, self.offset_for_timestamp(ts), &dir)
    }

    /// Moves the log start up to `offset` as the leader answering DeleteRecords (`-1`: the high
    /// watermark): records below it are no longer readable, whole segments below it are deleted.
    /// Only committed records may go. Returns the log start offset after the move.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, ReplicaError> {
        self.check_online()?;
        if self.leader_epoch_if_leader().is_none() {
            return Err(ReplicaError::NotLeader(self.name()));
        }
        let high_watermark = *self.high_watermark.borrow();
        let offset = if offset == -1 { high_watermark } else { offset };
        let mut log = self.lock();
        if offset < 0 || offset > high_watermark {
            return Err(ReplicaError::Log(LogError::OffsetOutOfRange {
                requested: offset,
                start: log.log_start_offset(),
                end: high_watermark,
            }));
        }
        self.storage(log.advance_log_start_offset(offset))?;
        Ok(log.log_start_offset())
    }

    /// Follows the leader's log start offset (moved by DeleteRecords or retention there), up to
    /// what this replica knows is committed.
    pub fn follow_log_start_offset(&self, leader_log_start: i64) -> Result<(), LogError> {
        let high_watermark = *self.high_watermark.borrow();
        let mut log = self.lock();
        let target = leader_log_start.min(high_watermark).min(log.log_end_offset());
        if target > log.log_start_offset() {
            self.storage(log.advance_log_start_offset(target))?;
        }
        Ok(())
    }

    /// Sets the log start offset from its checkpoint at start-up (capped at the log end).
    pub fn restore_log_start_offset(&self, offset: i64) -> Result<(), LogError> {
        let mut log = self.lock();
        let target = offset.min(log.log_end_offset());
        self.storage(log.advance_log_start_offset(target))
    }

    /// Applies retention; returns segments deleted.
    pub fn apply_retention(&self, now_ms: i64) -> Result<usize, LogError> {
        self.check_online()?;
        self.storage(self.lock().apply_retention(now_ms))
    }

    /// One compaction pass over the sealed segments (compacted topics). A pass decodes the
    /// whole log under the write lock, so a log with no appends since its last pass is only
    /// cleaned again once a tombstone or lag-protected record may have become removable
    /// (at most `delete.retention.ms` / `min.compaction.lag.ms` later, and at least every minute).
    pub fn compact(&self, now_ms: i64, config: &CompactionConfig) -> Result<CompactionReport, LogError> {
        let end = self.offsets().1;
        let mut last = self.last_compaction.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((last_end, at)) = *last {
            let mut wait = config.delete_retention_ms.min(60_000);
            if config.min_compaction_lag_ms > 0 {
                wait = wait.min(config.min_compaction_lag_ms);
            }
            if last_end == end && now_ms.saturating_sub(at) < wait as i64 {
                return Ok(CompactionReport::default());
            }
        }
        *last = Some((end, now_ms));
        drop(last);
        self.check_online()?;
        self.storage(self.lock().compact(now_ms, config))
    }

    /// Watch of the log end offset, for long-polling follower fetches.
    pub fn subscribe_end_offset(&self) -> watch::Receiver<i64> {
        self.end_offset.subscribe()
    }

    /// Watch of the high watermark, for long-polling consumer fetches and acks=all waits.
    pub fn subscribe_high_watermark(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    /// Applies new storage settings (topic config changed).
    pub fn set_log_config(&self, config: &EffectiveTopicConfig) {
        self.lock().set_config(log_config(config));
    }

    /// Returns once everything below `offset` is fsynced. Concurrent callers share fsyncs: one
    /// caller syncs while the others wait for its result, and a sync covers every append made
    /// before it started, which is what makes this group commit.
    pub async fn wait_durable(&self, offset: i64) -> Result<(), BrokerError> {
        loop {
            self.check_online()?;
            // Callers wait for their own append, so the log reached `offset`; below it now means a
            // follower's truncation took the write away, and no fsync will ever cover it.
            // The end-offset watch follows every append and truncation; no need to lock the log.
            let end = *self.end_offset.borrow();
            if end < offset {
                return Err(BrokerError::Truncated { partition: self.name(), offset, end });
            }
            let mut flushed = self.flushed_offset.subscribe();
            if *flushed.borrow_and_update() >= offset {
                return Ok(());
            }
            if self.flush_in_progress.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                let result = self.flush_once().await;
                // Clear the flag before publishing, so a waiter that sees the flag set is sure to
                // see the publication that follows.
                self.flush_in_progress.store(false, Ordering::Release);
                match result {
                    // Always publish, even when nothing advanced, so every waiter re-checks.
                    Ok(covered) => self.flushed_offset.send_modify(|current| *current = (*current).max(covered)),
                    Err(e) => {
                        self.flushed_offset.send_modify(|_| {});
                        return Err(e);
                    }
                }
            } else if flushed.changed().await.is_err() {
                return Err(BrokerError::ShuttingDown);
            }
        }
    }

    /// fsyncs outside the mutex so appends continue meanwhile; returns the offset it covers.
    async fn flush_once(&self) -> Result<i64, BrokerError> {
        let (file, covered) = self.storage(self.read_lock().flush_handle())?;
        let sync = self.sync;
        let (synced, took) = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            (sync(&file), started.elapsed())
        })
        .await
        .map_err(|e| BrokerError::Internal(format!("fsync task failed: {e}")))?;
        self.log_dir.observe_flush(took);
        if let Err(e) = synced {
            self.log_dir.mark_offline(format!("fsync of the active segment in {}: {e}", self.dir.display()));
        }
        // After a failure (this one, or one recorded meanwhile) nothing is marked durable again.
        self.check_online()?;
        self.lock().mark_flushed(covered);
        Ok(covered)
    }

    /// Starts the writeback of the active segment once `WRITEBACK_EVERY` bytes were appended
    /// since the last start. Followers are fsynced only by the background flush; without this, a
    /// `flush_interval` worth of their appends reached the disk at once, and the leaders'
    /// group-commit fsyncs (on the same disk, in production often the same brokers) queued
    /// behind it: RocksDB's `bytes_per_sync` for the same reason.
    fn start_writeback_if_due(&self, appended: u64) {
        let unwritten = self.unwritten_bytes.fetch_add(appended, Ordering::Relaxed).saturating_add(appended);
        if unwritten < WRITEBACK_EVERY || self.is_offline() {
            return;
        }
        // The running one covers these bytes too if it has not reached them yet; if it has,
        // the next start will (each covers the whole file).
        if self.writeback_running.swap(true, Ordering::AcqRel) {
            return;
        }
        self.unwritten_bytes.store(0, Ordering::Relaxed);
        let handle = self.read_lock().flush_handle();
        let running = self.writeback_running.clone();
        let dir = self.dir.clone();
        let start = move || {
            // Nothing is lost by a failure here: the fsync that follows reports it.
            if let Err(e) =
                handle.map_err(std::io::Error::other).and_then(|(file, _)| crate::fsutil::start_writeback(&file))
            {
                tracing::debug!(dir = %dir.display(), error = %e, "starting the writeback of a follower's appends failed");
            }
            running.store(false, Ordering::Release);
        };
        // It may block while the disk's queue is full: not on a runtime worker.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(start)),
            Err(_) => start(),
        }
    }

    /// Background flush (interval mode, and as a safety net): syncs if anything is unsynced.
    pub async fn flush_if_dirty(&self) -> Result<(), BrokerError> {
        // An offline log was reported once when it went offline; syncing it proves nothing now.
        if self.is_offline() {
            return Ok(());
        }
        let end = *self.end_offset.borrow();
        if *self.flushed_offset.borrow() < end {
            self.wait_durable(end).await?;
        }
        Ok(())
    }

    /// Closes the log cleanly (fsync, trimmed indexes, producer-state snapshot). Called at shutdown
    /// once no request can reach the partition any more.
    pub fn close(self) -> Result<(), LogError> {
        // A failed disk gets no more writes: recovery at the next start judges what it holds.
        self.check_online()?;
        let log = self.log.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
        log.close()
    }
}
