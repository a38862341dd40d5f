//! Durable Raft storage for the controller (openraft storage-v2).
//!
//! Files under the controller data directory:
//! - `raft.log`: append-only records `[len: u32 LE][crc32c: u32 LE][JSON Entry]`. A torn or corrupt
//!   tail (crash mid-append) is cut off on open; everything before it was fsynced and acknowledged.
//! - `vote.json`, `purged.json`, `committed.json`: small state written atomically (tmp + fsync +
//!   rename + directory fsync).
//! - `snapshot.json`: the latest state-machine snapshot, so a restart does not need purged entries.
//!
//! The whole (small) metadata log is also kept in memory for reads. File I/O is synchronous: the
//! log is tiny, openraft serialises storage calls anyway, and an fsync must finish before we
//! acknowledge, so there is nothing to overlap.
//!
//! Map:
//! - `raft_log`: [`LogStore`], the Raft log and vote (`raft.log`, `vote.json`, `purged.json`,
//!   `committed.json`).
//! - `machine`: [`StateMachineStore`], the applied [`MetadataState`](crate::controller::MetadataState)
//!   and its snapshot (`snapshot.json`).
//! - here: [`StoreError`] and the atomic JSON state-file helpers both use.

mod machine;
mod raft_log;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

pub use machine::StateMachineStore;
pub use raft_log::LogStore;

use openraft::{AnyError, StorageError, StorageIOError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Errors of the controller's storage files.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O call on `path` failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// File or directory involved.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A file could not be decoded.
    #[error("decoding {path}: {source}")]
    Decode {
        /// File involved.
        path: PathBuf,
        /// Underlying error.
        source: serde_json::Error,
    },
    /// A value could not be encoded.
    #[error("encoding {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// Underlying error.
        source: serde_json::Error,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io { op, path: path.to_path_buf(), source }
}

fn sio(e: StoreError, f: fn(AnyError) -> StorageIOError<u64>) -> StorageError<u64> {
    f(AnyError::new(&e)).into()
}

/// Writes `value` as JSON to `path` so that a crash leaves either the old or the new file.
fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(value).map_err(|source| StoreError::Encode { what: "state file", source })?;
    let tmp = path.with_extension("json.tmp");
    let mut f = File::create(&tmp).map_err(io("creating", &tmp))?;
    f.write_all(&bytes).map_err(io("writing", &tmp))?;
    f.sync_all().map_err(io("fsyncing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("renaming to", path))?;
    sync_dir(path)
}

fn sync_dir(path: &Path) -> Result<(), StoreError> {
    // The rename is only durable once the directory entry is.
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir).and_then(|d| d.sync_all()).map_err(io("fsyncing dir", dir))
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, StoreError> {
    match std::fs::read(path) {
        Ok(b) => {
            serde_json::from_slice(&b).map(Some).map_err(|source| StoreError::Decode { path: path.into(), source })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("reading", path)(e)),
    }
}
