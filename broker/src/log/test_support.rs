//! Setup shared by the log's test files.
#![allow(clippy::unwrap_used)]

use super::{LogConfig, PartitionLog};
use std::path::Path;

/// Small segments and dense indexes, no retention, segments that never roll by age.
pub(crate) fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 20,
        segment_ms: 1 << 40,
        retention_ms: None,
        retention_bytes: None,
        index_interval_bytes: 100,
        max_index_bytes: 4096,
        max_decompressed_bytes: 1 << 20,
        producer_id_expiration_ms: 1 << 40,
    }
}

/// Opens (recovering) the log in `dir`.
pub(crate) fn open(dir: &Path, config: LogConfig) -> PartitionLog {
    PartitionLog::open(dir, config).unwrap().0
}
