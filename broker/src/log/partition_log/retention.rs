//! Housekeeping that moves the log start: time and size retention, DeleteRecords, and the
//! compaction pass over sealed segments.

use super::PartitionLog;
use crate::log::cleaner::{self, CompactionConfig, CompactionReport};
use crate::log::error::LogError;
use crate::log::segment::{IndexSettings, Segment};

impl PartitionLog {
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
}
