//! The checkpoint registry: how far each tailed file has been shipped, by file identity.
//!
//! `<data_dir>/registry.json` is written atomically (temp file, fsync, rename, directory fsync;
//! the first save of a process also fsyncs the data directory's parent, for a new data directory),
//! so a crash leaves either the old or the new version. A registry that cannot be parsed is moved
//! aside (`registry.json.corrupt-<unix-ms>`) with a warning and the agent starts from an empty
//! one: files are then read according to `start_at`, so lines may be sent again, never lost.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Registry format version.
const VERSION: u32 = 1;

/// Errors writing the registry (reading never fails: see the module docs).
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", .path.display())]
pub struct CheckpointError {
    op: &'static str,
    path: PathBuf,
    source: std::io::Error,
}

/// What is known about one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCheckpoint {
    /// Last path it was read under.
    pub path: String,
    /// Device id.
    pub device: u64,
    /// Inode number.
    pub inode: u64,
    /// Fingerprint (CRC-32C) of its first `fingerprint_len` bytes: tells inode reuse apart.
    pub fingerprint: u32,
    /// Bytes the fingerprint covers.
    pub fingerprint_len: u64,
    /// Everything before this byte offset was acknowledged by the broker.
    pub offset: u64,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    version: u32,
    files: Vec<FileCheckpoint>,
}

/// The registry file.
pub struct Registry {
    path: PathBuf,
    /// Whether this process has made the data directory's own entry durable (once is enough).
    dir_entry_synced: AtomicBool,
}

impl Registry {
    /// The registry in `data_dir`.
    pub fn new(data_dir: &Path) -> Registry {
        Registry { path: data_dir.join("registry.json"), dir_entry_synced: AtomicBool::new(false) }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the checkpoints, keyed by (device, inode). Missing → empty; corrupt → moved aside,
    /// warned about, empty.
    pub fn load(&self) -> BTreeMap<(u64, u64), FileCheckpoint> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return BTreeMap::new(),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot read the checkpoint registry; starting without it");
                return BTreeMap::new();
            }
        };
        match serde_json::from_slice::<Stored>(&bytes) {
            Ok(stored) if stored.version == VERSION => {
                stored.files.into_iter().map(|f| ((f.device, f.inode), f)).collect()
            }
            Ok(stored) => {
                self.set_aside(&format!("unknown registry version {}", stored.version));
                BTreeMap::new()
            }
            Err(e) => {
                self.set_aside(&e.to_string());
                BTreeMap::new()
            }
        }
    }

    fn set_aside(&self, why: &str) {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let aside = self.path.with_extension(format!("json.corrupt-{millis}"));
        let moved = std::fs::rename(&self.path, &aside);
        tracing::warn!(
            path = %self.path.display(), reason = why, moved_to = %aside.display(), moved = moved.is_ok(),
            "the checkpoint registry is corrupt; starting without it (files are read per start_at, lines may repeat)"
        );
    }

    /// Writes `files` atomically.
    pub fn save<'a>(&self, files: impl IntoIterator<Item = &'a FileCheckpoint>) -> Result<(), CheckpointError> {
        let stored = Stored { version: VERSION, files: files.into_iter().cloned().collect() };
        let body = serde_json::to_vec_pretty(&stored).map_err(|e| CheckpointError {
            op: "encoding",
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fn err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError {
            let path = path.to_path_buf();
            move |source| CheckpointError { op, path, source }
        }
        std::fs::create_dir_all(dir).map_err(err("creating", dir))?;
        let tmp = self.path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&tmp).map_err(err("creating", &tmp))?;
        file.write_all(&body).map_err(err("writing", &tmp))?;
        file.sync_all().map_err(err("fsync of", &tmp))?;
        drop(file);
        std::fs::rename(&tmp, &self.path).map_err(err("renaming into", &self.path))?;
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(err("fsync of", dir))?;
        // The data directory may be new (created at start-up): until its name is durable in its
        // parent, a power cut takes the whole registry with it and every file is read again.
        if !self.dir_entry_synced.load(Ordering::Relaxed) {
            let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            std::fs::File::open(parent).and_then(|d| d.sync_all()).map_err(err("fsync of", parent))?;
            self.dir_entry_synced.store(true, Ordering::Relaxed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entry(inode: u64, offset: u64) -> FileCheckpoint {
        FileCheckpoint {
            path: format!("/var/log/{inode}.log"),
            device: 1,
            inode,
            fingerprint: 7,
            fingerprint_len: 10,
            offset,
        }
    }

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::new(dir.path());
        assert!(registry.load().is_empty());
        registry.save(&[entry(1, 10), entry(2, 20)]).unwrap();
        let loaded = registry.load();
        assert_eq!(loaded[&(1, 2)].offset, 20);
        // A half-written file (crash before the atomic rename existed) is set aside, not fatal.
        std::fs::write(registry.path(), b"{\"version\":1,\"files\":[{\"pa").unwrap();
        assert!(registry.load().is_empty());
        assert!(!registry.path().exists());
        let aside = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("registry.json.corrupt-"));
        assert!(aside, "the corrupt registry is kept for inspection");
        registry.save(&[entry(3, 30)]).unwrap();
        assert_eq!(registry.load().len(), 1);
    }

    #[test]
    fn a_failed_save_leaves_the_last_good_checkpoint_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::new(dir.path());
        registry.save(&[entry(1, 10)]).unwrap();
        // The temp file cannot be written (as on a full or failing disk).
        std::fs::create_dir(registry.path().with_extension("json.tmp")).unwrap();
        let err = registry.save(&[entry(1, 99)]).unwrap_err();
        assert!(err.to_string().contains("registry.json.tmp"), "{err}");
        // The agent resumes from the older position: lines are re-sent, never skipped.
        assert_eq!(registry.load()[&(1, 1)].offset, 10);
    }
}
