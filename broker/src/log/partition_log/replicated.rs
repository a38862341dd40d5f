//! The follower's side of replication: appending batches copied from the leader, leader-epoch
//! bookkeeping, and cutting or resetting the log to line up with the leader's.

use super::PartitionLog;
use crate::log::batch::{BatchError, BatchHeader};
use crate::log::error::LogError;
use crate::log::segment::{sync_dir, IndexSettings, Segment};

impl PartitionLog {
    /// Appends ONE batch copied from the partition leader (follower side): offsets and leader
    /// epoch stay as the leader wrote them. The batch must start at or after the log end (a
    /// compacted leader log may have gaps) and pass its CRC check.
    pub fn append_replicated(&mut self, batch: &[u8], now_ms: i64) -> Result<(), LogError> {
        let header = BatchHeader::parse(batch)?;
        if header.total_size() != batch.len() {
            return Err(BatchError::SizeMismatch { expected: header.total_size(), actual: batch.len() }.into());
        }
        crate::log::batch::verify_crc(batch)?;
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

    /// OffsetForLeaderEpoch for `epoch`: the epoch to report and its end offset, None for
    /// Kafka's UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET (see [`LeaderEpochCache::end_offset_for`]).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
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
}
