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

/// Starts writing `file`'s dirty pages to disk without waiting for them (Linux's
/// `sync_file_range(SYNC_FILE_RANGE_WRITE)`), and without the journal commit an fsync costs. It
/// makes nothing durable: an fsync still must follow, and it is what reports a failed write
/// (a writeback error stays recorded for it). A no-op elsewhere.
#[cfg(target_os = "linux")]
pub fn start_writeback(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is borrowed from an open `File` that outlives the call; the other
    // arguments are plain integers (offset 0 and length 0: the whole file) and no memory of
    // ours is read or written.
    #[allow(unsafe_code)]
    let result = unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Starts writing `file`'s dirty pages to disk without waiting for them; a no-op here.
#[cfg(not(target_os = "linux"))]
pub fn start_writeback(_file: &std::fs::File) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_writeback_starts_on_a_file_and_is_refused_on_a_pipe() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = std::fs::File::create(dir.path().join("log")).unwrap();
        file.write_all(&[7; 8192]).unwrap();
        assert!(start_writeback(&file).is_ok());
        // A pipe has no pages to write back: the error reaches the caller.
        if cfg!(target_os = "linux") {
            let (reader, _writer) = std::io::pipe().unwrap();
            let pipe = std::fs::File::from(std::os::fd::OwnedFd::from(reader));
            assert_eq!(start_writeback(&pipe).unwrap_err().raw_os_error(), Some(libc::ESPIPE));
        }
    }
}
