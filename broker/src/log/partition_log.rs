//! [`PartitionLog`]: the segmented, indexed log of one topic partition.

use super::batch::{set_base_offset, set_partition_leader_epoch, BatchError, BatchHeader};
use super::cleaner::{self, CompactionConfig, CompactionReport};
use super::compression;
use super::error::{io_error, LogError};
use super::leader_epoch::LeaderEpochCache;
use super::producer_state::{ProducerStateManager, SequenceCheck};
use super::recovery::{recover, RecoveryReport};
use super::segment::{sync_dir, IndexSettings, Segment};
use kafka_protocol::records::TimestampType;
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

/// Outcome of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the batch's first record.
    pub base_offset: i64,
    /// Offset of its last record.
    pub last_offset: i64,
    /// The batch's timestamp if it uses LogAppendTime, else -1 (Kafka's produce response).
    pub log_append_time_ms: i64,
    /// The batch was a retry already in the log; offsets are the original ones.
    pub duplicate: bool,
    /// Log start offset after the append.
    pub log_start_offset: i64,
}

/// Outcome of a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    /// Whole batches, concatenated.
    pub data: bytes::Bytes,
    /// Log end offset at read time.
    pub high_offset: i64,
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

    /// Appends ONE v2 batch as received from a producer (validated with `batch.rs`): assigns
    /// offsets from the log end and the leader epoch in place, checks idempotence, rolls if
    /// needed and writes without fsync.
    pub fn append(&mut self, batch: &mut [u8], leader_epoch: i32, now_ms: i64) -> Result<AppendInfo, LogError> {
        let mut header = BatchHeader::parse(batch)?;
        if header.total_size() != batch.len() {
            return Err(BatchError::SizeMismatch { expected: header.total_size(), actual: batch.len() }.into());
        }
        if let SequenceCheck::Duplicate(original) = self.producers.check(&header)? {
            return Ok(AppendInfo {
                base_offset: original.first_offset,
                last_offset: original.last_offset,
                log_append_time_ms: -1,
                duplicate: true,
                log_start_offset: self.log_start_offset,
            });
        }
        let base_offset = self.log_end_offset();
        let last_offset = base_offset + i64::from(header.last_offset_delta);
        if self.should_roll(batch.len() as u64, last_offset, now_ms) {
            self.roll()?;
        }
        set_base_offset(batch, base_offset)?;
        set_partition_leader_epoch(batch, leader_epoch)?;
        header.base_offset = base_offset;
        header.partition_leader_epoch = leader_epoch;
        // Checkpointed before the batch is written, as Kafka does: should the write then fail,
        // the next append reuses this base offset, so the entry stays right.
        if self.epochs.latest_epoch().is_none_or(|latest| leader_epoch > latest) {
            let before = self.epochs.entries().to_vec();
            if self.epochs.assign(leader_epoch, base_offset) {
                if let Err(error) = self.epochs.flush() {
                    self.epochs.restore(before);
                    return Err(error);
                }
            }
        }
        self.active.append(batch, &header, now_ms)?;
        self.producers.update(&header, now_ms);
        let log_append_time_ms = match header.timestamp_type() {
            TimestampType::LogAppend => header.max_timestamp,
            TimestampType::Creation => -1,
        };
        Ok(AppendInfo {
            base_offset,
            last_offset,
            log_append_time_ms,
            duplicate: false,
            log_start_offset: self.log_start_offset,
        })
    }

    /// Appends ONE batch copied from the partition leader (follower side): offsets and leader
    /// epoch stay as the leader wrote them. The batch must start at or after the log end (a
    /// compacted leader log may have gaps) and pass its CRC check.
    pub fn append_replicated(&mut self, batch: &[u8], now_ms: i64) -> Result<(), LogError> {
        let header = BatchHeader::parse(batch)?;
        if header.total_size() != batch.len() {
            return Err(BatchError::SizeMismatch { expected: header.total_size(), actual: batch.len() }.into());
        }
        super::batch::verify_crc(batch)?;
        let end = self.log_end_offset();
        if header.base_offset < end {
            return Err(LogError::OffsetOutOfRange {
                requested: header.base_offset,
                start: self.log_start_offset,
                end,
            });
        }
        if self.should_roll(batch.len() as u64, header.last_offset(), now_ms) {
            self.roll()?;
        }
        let epoch = header.partition_leader_epoch;
        if epoch >= 0 && self.epochs.latest_epoch().is_none_or(|latest| epoch > latest) {
            let before = self.epochs.entries().to_vec();
            if self.epochs.assign(epoch, header.base_offset) {
                if let Err(error) = self.epochs.flush() {
                    self.epochs.restore(before);
                    return Err(error);
                }
            }
        }
        self.active.append(batch, &header, now_ms)?;
        self.producers.update(&header, now_ms);
        Ok(())
    }

    /// Records that this replica leads from now on under `epoch`, starting at the log end
    /// (Kafka's `makeLeader` epoch-cache assignment). No-op for an epoch already known.
    pub fn assign_leader_epoch(&mut self, epoch: i32) -> Result<(), LogError> {
        if self.epochs.latest_epoch().is_some_and(|latest| epoch <= latest) {
            return Ok(());
        }
        let before = self.epochs.entries().to_vec();
        if self.epochs.assign(epoch, self.log_end_offset()) {
            if let Err(error) = self.epochs.flush() {
                self.epochs.restore(before);
                return Err(error);
            }
        }
        Ok(())
    }

    /// Drops the whole log and restarts it empty at `offset` (a follower whose log lies wholly
    /// outside the leader's, e.g. below the leader's retention).
    pub fn reset_to(&mut self, offset: i64) -> Result<(), LogError> {
        for segment in self.sealed.drain(..) {
            segment.delete()?;
        }
        let settings =
            IndexSettings { interval_bytes: self.config.index_interval_bytes, max_bytes: self.config.max_index_bytes };
        if self.active.base_offset() == offset {
            // Same file name: empty it in place rather than replacing it.
            self.active.truncate_to(offset)?;
        } else {
            let fresh = Segment::create(&self.dir, offset, settings)?;
            std::mem::replace(&mut self.active, fresh).delete()?;
        }
        sync_dir(&self.dir)?;
        self.log_start_offset = offset;
        self.flushed_offset = offset;
        self.epochs.clear();
        self.epochs.flush()?;
        self.rebuild_producer_state()
    }

    fn should_roll(&self, batch_len: u64, last_offset: i64, now_ms: i64) -> bool {
        let segment = &self.active;
        if segment.size() == 0 {
            return false;
        }
        // Index positions are u32, so a segment can never pass 4 GiB whatever the config says.
        let max_size = self.config.segment_bytes.min(u64::from(u32::MAX));
        let max_age = i64::try_from(self.config.segment_ms).unwrap_or(i64::MAX);
        segment.size() + batch_len > max_size
            || segment.age_ms(now_ms).is_some_and(|age| age > max_age)
            || segment.indexes_full()
            || last_offset - segment.base_offset() > i64::from(i32::MAX)
    }

    /// Seals the active segment (fsync, trimmed indexes) and starts a new one at the log end.
    fn roll(&mut self) -> Result<(), LogError> {
        let base = self.log_end_offset();
        self.active.seal()?;
        let settings =
            IndexSettings { interval_bytes: self.config.index_interval_bytes, max_bytes: self.config.max_index_bytes };
        let next = Segment::create(&self.dir, base, settings)?;
        sync_dir(&self.dir)?;
        self.sealed.push(std::mem::replace(&mut self.active, next));
        // Sealing fsynced everything below `base`.
        self.flushed_offset = self.flushed_offset.max(base);
        if let Err(error) = self.producers.take_snapshot(base) {
            // Only an optimisation: recovery can replay from an older snapshot or the start.
            tracing::warn!(dir = %self.dir.display(), %error, "could not write a producer snapshot");
        }
        Ok(())
    }

    /// Reads whole batches from the one containing `offset`, below `max_offset` (exclusive),
    /// up to `max_bytes`; with `min_one_batch` a first batch larger than `max_bytes` is returned
    /// whole (KIP-74). May cross segments.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<ReadResult, LogError> {
        let end = self.log_end_offset();
        if offset < self.log_start_offset || offset > end {
            return Err(LogError::OffsetOutOfRange { requested: offset, start: self.log_start_offset, end });
        }
        let limit = max_offset.min(end);
        let mut data = Vec::new();
        let segments: Vec<&Segment> = self.segments().collect();
        let first = segments.partition_point(|s| s.base_offset() <= offset).saturating_sub(1);
        if offset >= limit {
            return Ok(ReadResult { data: bytes::Bytes::new(), high_offset: end });
        }
        for (i, segment) in segments.iter().enumerate().skip(first) {
            let start = if i == first {
                match segment.find_batch(offset)? {
                    Some((position, _)) => position,
                    None => continue,
                }
            } else {
                0
            };
            let budget = max_bytes.saturating_sub(data.len());
            let available = segment.size() - start;
            let chunk_len = (budget as u64).min(available) as usize;
            let chunk = segment.read_bytes(start, chunk_len)?;
            let (used, stopped) = whole_batches(&chunk, limit).map_err(|e| LogError::Corrupt {
                path: segment.log_path().to_path_buf(),
                position: start,
                reason: e.to_string(),
            })?;
            if used == 0 && data.is_empty() && !stopped && (chunk_len as u64) < available {
                // The first batch alone exceeds max_bytes: return it whole only if asked to.
                if min_one_batch {
                    if let Some(header) = segment.read_header_at(start)? {
                        if header.base_offset < limit {
                            data = segment.read_bytes(start, header.total_size())?;
                        }
                    }
                }
                break;
            }
            data.extend_from_slice(chunk.get(..used).unwrap_or_default());
            if stopped || (chunk_len as u64) < available || used < chunk.len() {
                break;
            }
        }
        Ok(ReadResult { data: data.into(), high_offset: end })
    }

    /// First offset whose record timestamp is >= `ts`, and that timestamp. Decodes records under
    /// the caller's borrow; [`crate::partition::Partition`] uses [`Self::timestamp_lookup`] to
    /// decode without holding the log.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, LogError> {
        let mut from = self.log_start_offset;
        loop {
            match self.timestamp_lookup(ts, from)? {
                TimestampLookup::Done(found) => return Ok(found),
                TimestampLookup::InBatch(batch) => match batch.first_record_at_or_after(ts)? {
                    Some(found) => return Ok(Some(found)),
                    None => from = batch.next_offset,
                },
            }
        }
    }

    /// The part of a timestamp lookup that needs the log: the first batch at or after offset
    /// `from` whose max timestamp reaches `ts`. When only its records can tell, the batch is
    /// copied out to be decoded by [`TimestampBatch::first_record_at_or_after`].
    pub fn timestamp_lookup(&self, ts: i64, from: i64) -> Result<TimestampLookup, LogError> {
        let from = from.max(self.log_start_offset);
        for segment in self.segments() {
            if segment.next_offset() <= from || segment.max_timestamp().is_none_or(|(max, _)| max < ts) {
                continue;
            }
            let mut position = segment.position_for_timestamp(ts);
            while let Some(header) = segment.read_header_at(position)? {
                if header.last_offset() >= from && header.max_timestamp >= ts {
                    if header.timestamp_type() == TimestampType::LogAppend {
                        // Every record carries the batch's append time.
                        return Ok(TimestampLookup::Done(Some((header.base_offset.max(from), header.max_timestamp))));
                    }
                    return Ok(TimestampLookup::InBatch(TimestampBatch {
                        bytes: bytes::Bytes::from(segment.read_bytes(position, header.total_size())?),
                        from,
                        next_offset: header.next_offset(),
                        cap: self.config.max_decompressed_bytes,
                        path: segment.log_path().to_path_buf(),
                        position,
                    }));
                }
                position += header.total_size() as u64;
            }
        }
        Ok(TimestampLookup::Done(None))
    }

    /// Largest timestamp in the log and the offset of the first batch carrying it (segments
    /// only know batches; [`Self::max_timestamp`] finds the record).
    pub fn max_timestamp_batch(&self) -> Option<(i64, i64)> {
        let mut best: Option<(i64, i64)> = None;
        for (ts, offset) in self.segments().filter_map(Segment::max_timestamp) {
            if best.is_none_or(|(max, _)| ts > max) {
                best = Some((ts, offset));
            }
        }
        best
    }

    /// Largest timestamp in the log and the offset of the first record carrying it, None if the
    /// log holds no timestamps.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let (ts, batch_offset) = self.max_timestamp_batch()?;
        resolve_max_timestamp(ts, batch_offset, self.offset_for_timestamp(ts), &self.dir)
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

    /// Deletes the oldest whole segments past `retention_ms` (segment max timestamp vs `now_ms`)
    /// or beyond `retention_bytes` (keeping at least that many bytes, as Kafka does). An expired
    /// non-empty active segment is rolled first so it can go too; the new empty active segment
    /// keeps the log end offset. Returns the number of segments deleted.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<usize, LogError> {
        self.producers.remove_expired(now_ms, self.config.producer_id_expiration_ms);
        let mut deleted = 0;
        if let Some(retention) = self.config.retention_ms {
            let retention = i64::try_from(retention).unwrap_or(i64::MAX);
            let expired = |s: &Segment| s.retention_timestamp().is_some_and(|ts| now_ms.saturating_sub(ts) > retention);
            let mut count = self.sealed.iter().take_while(|s| expired(s)).count();
            if count == self.sealed.len() && self.active.size() > 0 && expired(&self.active) {
                self.roll()?;
                count += 1;
            }
            deleted += self.delete_oldest(count)?;
        }
        if let Some(retention) = self.config.retention_bytes {
            let mut excess = self.size_bytes().saturating_sub(retention);
            let mut count = 0;
            for segment in &self.sealed {
                if segment.size() > excess {
                    break;
                }
                excess -= segment.size();
                count += 1;
            }
            if count == self.sealed.len() && self.active.size() > 0 && self.active.size() <= excess {
                self.roll()?;
                count += 1;
            }
            deleted += self.delete_oldest(count)?;
        }
        self.move_epoch_cache_start()?;
        Ok(deleted)
    }

    /// Moves the first leader epoch up to the log start offset, persisting if that changed.
    fn move_epoch_cache_start(&mut self) -> Result<(), LogError> {
        if self.epochs.truncate_from_start(self.log_start_offset) {
            self.epochs.flush()?;
        }
        Ok(())
    }

    /// Deletes the `count` oldest sealed segments and moves the log start offset past them.
    fn delete_oldest(&mut self, count: usize) -> Result<usize, LogError> {
        let count = count.min(self.sealed.len());
        if count == 0 {
            return Ok(0);
        }
        let victims: Vec<Segment> = self.sealed.drain(..count).collect();
        let first_kept = self.sealed.first().unwrap_or(&self.active).base_offset();
        // Move the start first: even if a deletion fails, nothing reads the victims any more.
        self.log_start_offset = self.log_start_offset.max(first_kept);
        for segment in victims {
            tracing::info!(segment = %segment.log_path().display(), "deleting a segment past retention");
            segment.delete()?;
        }
        Ok(count)
    }

    /// One compaction pass: for every key, only the record with the highest offset anywhere in
    /// the log (sealed + active) is kept; older records with the same key are removed from
    /// SEALED segments only (the active segment is never rewritten). A tombstone (null value)
    /// that is the latest for its key is removed once its timestamp is older than
    /// `now_ms - delete_retention_ms` (and no older value of its key is kept by the lag). Records
    /// without a key and control batches are kept untouched; records younger than
    /// `min_compaction_lag_ms` are never removed. Offsets never change: retained records keep
    /// their offsets, and reading an offset that was compacted away returns the next retained
    /// batch. The log start and end offsets do not move. See the `cleaner` module for the
    /// on-disk details and crash safety.
    pub fn compact(&mut self, now_ms: i64, config: &CompactionConfig) -> Result<CompactionReport, LogError> {
        // Without a sealed segment there is nothing the cleaner may rewrite.
        if self.sealed.is_empty() {
            return Ok(CompactionReport::default());
        }
        let settings =
            IndexSettings { interval_bytes: self.config.index_interval_bytes, max_bytes: self.config.max_index_bytes };
        let cap = self.config.max_decompressed_bytes;
        cleaner::compact(&self.dir, &mut self.sealed, &self.active, settings, now_ms, config, cap)
    }

    /// Advances the log start offset to `offset` (DeleteRecords) and deletes the sealed segments
    /// entirely below it. Not persisted: after a restart the log starts at its first segment.
    pub fn advance_log_start_offset(&mut self, offset: i64) -> Result<(), LogError> {
        let end = self.log_end_offset();
        if offset > end {
            return Err(LogError::OffsetOutOfRange { requested: offset, start: self.log_start_offset, end });
        }
        if offset <= self.log_start_offset {
            return Ok(());
        }
        self.log_start_offset = offset;
        let count = (0..self.sealed.len())
            .take_while(|&i| self.sealed.get(i + 1).unwrap_or(&self.active).base_offset() <= offset)
            .count();
        self.delete_oldest(count)?;
        self.move_epoch_cache_start()
    }

    /// Truncates the tail so the log ends at or before `offset` (for replication): the batch
    /// containing `offset` and everything after it go. Producer state is rebuilt.
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        let end = self.log_end_offset();
        if offset >= end {
            // No data to cut, but epochs that start at or past `offset` (a leadership under which
            // nothing was written) must go, or the follower keeps claiming them.
            if self.epochs.truncate_from_end(offset) {
                self.epochs.flush()?;
            }
            return Ok(());
        }
        if offset < self.log_start_offset {
            return Err(LogError::OffsetOutOfRange { requested: offset, start: self.log_start_offset, end });
        }
        while self.active.base_offset() > offset {
            let Some(previous) = self.sealed.pop() else { break };
            std::mem::replace(&mut self.active, previous).delete()?;
        }
        let new_end = self.active.truncate_to(offset)?;
        self.flushed_offset = self.flushed_offset.min(new_end);
        self.log_start_offset = self.log_start_offset.min(new_end);
        if self.epochs.truncate_from_end(new_end) {
            self.epochs.flush()?;
        }
        self.rebuild_producer_state()
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

    /// OffsetForLeaderEpoch for `epoch`: the epoch to report and its end offset, None for
    /// Kafka's UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET (see [`LeaderEpochCache::end_offset_for`]).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }
}

/// Length of the whole batches at the start of `chunk` whose base offset is below `limit`, and
/// whether the scan stopped at `limit` (rather than at the end of the chunk).
fn whole_batches(chunk: &[u8], limit: i64) -> Result<(usize, bool), BatchError> {
    let mut used = 0;
    while let Some(rest) = chunk.get(used..) {
        if rest.len() < super::batch::HEADER_SIZE {
            break;
        }
        let header = BatchHeader::parse(rest)?;
        if header.base_offset >= limit {
            return Ok((used, true));
        }
        if header.total_size() > rest.len() {
            break;
        }
        used += header.total_size();
    }
    Ok((used, false))
}

/// A timestamp lookup after the part that needs the log.
pub enum TimestampLookup {
    /// Answered from the headers: the offset and its timestamp, or no record reaches `ts`.
    Done(Option<(i64, i64)>),
    /// The answer is in this batch's records.
    InBatch(TimestampBatch),
}

/// A batch copied out of the log whose records answer a timestamp lookup.
pub struct TimestampBatch {
    bytes: bytes::Bytes,
    /// Records below this offset do not count (the log start, or where the lookup resumed).
    from: i64,
    /// Where to resume should no record of this batch count.
    pub next_offset: i64,
    cap: usize,
    path: PathBuf,
    position: u64,
}

impl TimestampBatch {
    /// The first record at or after `from` with a timestamp >= `ts`, decoding (and inflating, up
    /// to the log's cap) the batch.
    pub fn first_record_at_or_after(&self, ts: i64) -> Result<Option<(i64, i64)>, LogError> {
        let mut bytes = self.bytes.clone();
        let records = compression::decode_batch(&mut bytes, self.cap).map_err(|e| LogError::Corrupt {
            path: self.path.clone(),
            position: self.position,
            reason: format!("cannot decode records: {e}"),
        })?;
        Ok(records.records.iter().find(|r| r.timestamp >= ts && r.offset >= self.from).map(|r| (r.offset, r.timestamp)))
    }
}

/// The max-timestamp answer from the record lookup, falling back to the batch offset.
pub fn resolve_max_timestamp(
    ts: i64,
    batch_offset: i64,
    lookup: Result<Option<(i64, i64)>, LogError>,
    dir: &Path,
) -> Option<(i64, i64)> {
    match lookup {
        Ok(Some((offset, found))) if found == ts => Some((ts, offset)),
        Ok(_) => Some((ts, batch_offset)),
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "max timestamp lookup fell back to the batch offset");
            Some((ts, batch_offset))
        }
    }
}
