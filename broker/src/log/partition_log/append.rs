//! The producer's write path: [`PartitionLog::append`] assigns offsets and the leader epoch,
//! checks idempotence, and rolls the active segment when it is full or old.

use super::PartitionLog;
use crate::log::batch::{set_base_offset, set_partition_leader_epoch, BatchError, BatchHeader};
use crate::log::error::LogError;
use crate::log::producer_state::SequenceCheck;
use crate::log::segment::{sync_dir, IndexSettings, Segment};
use kafka_protocol::records::TimestampType;

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

impl PartitionLog {
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

    pub(super) fn should_roll(&self, batch_len: u64, last_offset: i64, now_ms: i64) -> bool {
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
    pub(super) fn roll(&mut self) -> Result<(), LogError> {
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
}
