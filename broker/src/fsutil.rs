//! Small file-system helpers shared by the broker's metadata files.

use crate::error::BrokerError;
use std::io::Write;
use std::path::Path;

/// Wraps an I/O error with what was being done.
pub fn io_err(context: impl Into<String>, source: std::io::Error) -> BrokerError {
    BrokerError::Io { context: context.into(), source }
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new content:
/// temp file, fsync, rename, fsync of the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), BrokerError> {
    let dir =
        path.parent().ok_or_else(|| BrokerError::Internal(format!("{} has no parent directory", path.display())))?;
    std::fs::create_dir_all(dir).map_err(|e| io_err(format!("creating {}", dir.display()), e))?;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(|e| io_err(format!("creating {}", tmp.display()), e))?;
    file.write_all(bytes).map_err(|e| io_err(format!("writing {}", tmp.display()), e))?;
    file.sync_all().map_err(|e| io_err(format!("fsync of {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err(format!("renaming {} to {}", tmp.display(), path.display()), e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(format!("fsync of directory {}", dir.display()), e))
}

/// `create_dir_all` whose result survives power loss: every directory it creates is made durable
/// in its parent (an fsync of the parent), so a first start's data directory cannot vanish with
/// everything acknowledged inside it.
pub fn create_dir_all_durably(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    create_dir_all_durably(parent)?;
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(e) => return Err(e),
    }
    std::fs::File::open(parent).and_then(|d| d.sync_all())
}
