//! The storage engine's error type.

use super::batch::BatchError;
use std::path::{Path, PathBuf};

/// An error from the on-disk log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file-system operation failed.
    #[error("{op} {}: {source}", .path.display())]
    Io {
        /// What was being done ("reading", "fsync of", ...).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The log is offline on this broker: an I/O error (a failed fsync, a full disk) took its
    /// log directory offline, so what it holds beyond the last good fsync may be gone. Answered
    /// with KAFKA_STORAGE_ERROR until a restart's recovery has re-read the log.
    #[error("the log of {partition} is offline on this broker: its log directory failed ({reason}); restart the broker to recover")]
    Offline {
        /// `<topic>-<partition>`.
        partition: String,
        /// The I/O error that took the directory offline.
        reason: String,
    },
    /// A record batch handed to the log is malformed.
    #[error("invalid record batch: {0}")]
    Batch(#[from] BatchError),
    /// Data already on disk is damaged where it cannot be repaired by cutting a torn tail.
    #[error("corrupt log data in {} at byte {position}: {reason}", .path.display())]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte position of the damaged batch.
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// An index file cannot take the entry asked for (an internal invariant was broken).
    #[error("index {}: {reason}", .path.display())]
    Index {
        /// The index file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The compaction cleaner could not rebuild a batch of the segment it was cleaning; the
    /// segment was left as it was.
    #[error("compaction of {} failed at the batch at byte {position}: {reason}", .path.display())]
    Compaction {
        /// The segment being cleaned.
        path: PathBuf,
        /// Byte position of the batch in the original segment.
        position: u64,
        /// What went wrong.
        reason: String,
    },
    /// The requested offset is not in the log.
    #[error("offset {requested} is out of range: the log holds offsets {start} to {end} (exclusive)")]
    OffsetOutOfRange {
        /// Offset asked for.
        requested: i64,
        /// Log start offset.
        start: i64,
        /// Log end offset.
        end: i64,
    },
    /// An idempotent producer's batch does not carry the next sequence number.
    #[error(
        "out of order sequence number for producer {producer_id} (epoch {epoch}): \
         expected {expected}, received {received}"
    )]
    OutOfOrderSequence {
        /// The producer.
        producer_id: i64,
        /// Its epoch.
        epoch: i16,
        /// The sequence number the log expected.
        expected: i32,
        /// The batch's base sequence.
        received: i32,
    },
    /// The batch comes from an older epoch of the producer (a zombie instance).
    #[error("producer {producer_id} epoch {received} is older than its current epoch {current}")]
    InvalidProducerEpoch {
        /// The producer.
        producer_id: i64,
        /// The epoch the log knows.
        current: i16,
        /// The batch's epoch.
        received: i16,
    },
    /// The log has no state for this producer and the batch does not start its sequence.
    #[error(
        "unknown producer id {producer_id}: the log has no state for it and its first sequence \
         is {sequence}, not 0"
    )]
    UnknownProducerId {
        /// The producer.
        producer_id: i64,
        /// The batch's base sequence.
        sequence: i32,
    },
}

/// Builds a closure wrapping an I/O error with the operation and the path, for `map_err`.
pub(crate) fn io_error(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LogError {
    let path = path.to_path_buf();
    move |source| LogError::Io { op, path, source }
}
