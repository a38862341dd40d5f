//! On-disk storage engine: one [`PartitionLog`] per topic partition, in Kafka's directory
//! layout (`<base offset>.log`, `.index`, `.timeindex`, `.snapshot`).
//!
//! - [`batch`]: record batch v2 headers: parsing, CRC-32C, offset assignment, request splitting.
//! - [`compression`]: streaming decompression with a hard output cap (in the protocol crate,
//!   shared with the clients that read records).
//! - [`validator`]: record validation of produced batches (Kafka's LogValidator).
//! - `index` / `time_index`: the sparse memory-mapped offset and timestamp indexes.
//! - `segment`: one `.log` file with its two indexes.
//! - `recovery`: opening a directory, repairing a torn tail and bad indexes.
//! - `producer_state`: idempotent producer sequence checks and their snapshots.
//! - `cleaner`: log compaction ([`PartitionLog::compact`]) and its crash-safe segment swap.
//! - `leader_epoch`: [`LeaderEpochCache`], the `leader-epoch-checkpoint` file.
//! - `partition_log`: [`PartitionLog`], the public log type.
//! - `error`: [`LogError`].

pub mod batch;
mod cleaner;
pub use millrace_protocol::compression;
mod error;
mod index;
mod leader_epoch;
mod partition_log;
#[cfg(test)]
mod partition_log_tests;
pub(crate) mod producer_state;
mod recovery;
mod segment;
#[cfg(test)]
mod test_support;
mod time_index;
pub mod validator;

pub use batch::{count_records, split_batches, BatchError, BatchHeader};
pub use cleaner::{CompactionConfig, CompactionReport};
pub use error::LogError;
pub use leader_epoch::{EpochEntry, LeaderEpochCache};
pub use partition_log::{
    resolve_max_timestamp, AppendInfo, LogConfig, PartitionLog, ReadResult, TimestampBatch, TimestampLookup,
};
pub use recovery::RecoveryReport;
