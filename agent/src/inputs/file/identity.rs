//! Which file is this: its [`FileKey`] (device, inode) and a fingerprint of its first bytes;
//! opening a file where its checkpoint says (or not, when the inode was reused); and
//! [`FileStates`], the checkpoints of the open files that the registry saves.

use super::encode::{FileFields, LineEncoder};
use super::{FileTailer, Tailed, FINGERPRINT_BYTES};
use crate::checkpoint::FileCheckpoint;
use crate::pipeline::FileProgress;
use millrace_config::agent::{PartitionKey, StartAt};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// (device, inode).
pub type FileKey = (u64, u64);

/// Shared view of the files an input has open, for checkpoints.
#[derive(Default)]
pub struct FileStates {
    files: Mutex<BTreeMap<FileKey, (FileCheckpoint, Arc<FileProgress>)>>,
}

impl FileStates {
    /// Current checkpoints (offset = acknowledged offset).
    pub fn checkpoints(&self) -> Vec<FileCheckpoint> {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        files.values().map(|(c, progress)| FileCheckpoint { offset: progress.committed(), ..c.clone() }).collect()
    }

    pub(super) fn set(&self, key: FileKey, checkpoint: FileCheckpoint, progress: Arc<FileProgress>) {
        self.files.lock().unwrap_or_else(|p| p.into_inner()).insert(key, (checkpoint, progress));
    }

    pub(super) fn remove(&self, key: &FileKey) {
        self.files.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

/// CRC-32C of the first `len` bytes of `file`.
fn fingerprint(file: &mut File, len: u64) -> std::io::Result<u32> {
    let mut buf = vec![0u8; len as usize];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut buf)?;
    Ok(crc32c::crc32c(&buf))
}

impl FileTailer {
    pub(super) fn open_file(&mut self, key: FileKey, path: &Path) -> std::io::Result<Option<Tailed>> {
        // O_NOFOLLOW: a file swapped for a link since the scan is refused (ELOOP), not followed.
        // O_NONBLOCK: one swapped for a FIFO does not block the input (regular files ignore it).
        let mut flags = libc::O_NONBLOCK;
        if !self.config.follow_symlinks {
            flags |= libc::O_NOFOLLOW;
        }
        let mut file = std::fs::OpenOptions::new().read(true).custom_flags(flags).open(path)?;
        let meta = file.metadata()?;
        if (meta.dev(), meta.ino()) != key {
            return Ok(None); // Replaced between the scan and the open: next scan.
        }
        let len = meta.len();
        let fingerprint_len = len.min(FINGERPRINT_BYTES);
        let fp = fingerprint(&mut file, fingerprint_len)?;
        let resume = self.known.get(&key).filter(|c| {
            // Same inode and the same first bytes: the same file (inode reuse changes the bytes).
            c.fingerprint_len <= len
                && (c.fingerprint_len == fingerprint_len && c.fingerprint == fp
                    || fingerprint(&mut file, c.fingerprint_len).is_ok_and(|f| f == c.fingerprint))
        });
        let start = match resume {
            Some(c) if c.offset <= len => c.offset,
            Some(c) => {
                tracing::info!(path = %path.display(), checkpoint = c.offset, len, "file shrank since its checkpoint (truncated); reading from the start");
                0
            }
            None if self.first_scan && self.config.start_at == StartAt::End => len,
            None => 0,
        };
        let (fingerprint_value, fingerprint_len) = match resume {
            Some(c) => (c.fingerprint, c.fingerprint_len),
            None => (fp, fingerprint_len),
        };
        let progress = FileProgress::new(start);
        let checkpoint = FileCheckpoint {
            path: path.display().to_string(),
            device: key.0,
            inode: key.1,
            fingerprint: fingerprint_value,
            fingerprint_len,
            offset: start,
        };
        self.states.set(key, checkpoint, progress.clone());
        let partition_key = match self.config.key {
            PartitionKey::File => Some(Arc::from(format!("{}:{}", self.host, path.display()))),
            PartitionKey::Host => Some(Arc::from(self.host.as_str())),
            // Rendered per event.
            PartitionKey::None | PartitionKey::Template(_) => None,
        };
        file.seek(SeekFrom::Start(start))?;
        let encoder = LineEncoder::new(&FileFields {
            host: &self.host,
            input: &self.config.name,
            path: &path.display().to_string(),
            device: key.0,
            inode: key.1,
            fingerprint: fingerprint_value,
        });
        Ok(Some(Tailed {
            key,
            path: path.to_path_buf(),
            file,
            fingerprint: fingerprint_value,
            fingerprint_len,
            read_pos: start,
            partial: Vec::new(),
            skipping: false,
            line_start: None,
            progress,
            pending: None,
            last_data: Instant::now(),
            matched: true,
            partition_key,
            encoder,
            quiet_polls: 0,
            next_poll: Instant::now(),
        }))
    }

    pub(super) fn checkpoint_of(&self, tailed: &Tailed) -> FileCheckpoint {
        FileCheckpoint {
            path: tailed.path.display().to_string(),
            device: tailed.key.0,
            inode: tailed.key.1,
            fingerprint: tailed.fingerprint,
            fingerprint_len: tailed.fingerprint_len,
            offset: tailed.progress.committed(),
        }
    }
}
