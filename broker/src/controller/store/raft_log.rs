//! [`LogStore`]: the Raft log as CRC-checked records in `raft.log` (mirrored in memory), plus the
//! vote, purge point and commit index in their small JSON files.

use super::{io, read_json, sio, sync_dir, write_json_atomic, StoreError};
use crate::controller::TypeConfig;
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, RaftLogReader, StorageError, StorageIOError, Vote};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Record header: length + CRC.
const HEADER: usize = 8;
/// Refuse absurd record lengths (a torn length field) instead of allocating them.
const MAX_RECORD: usize = 64 << 20;

pub(super) fn encode_record(entry: &Entry<TypeConfig>, out: &mut Vec<u8>) -> Result<(), StoreError> {
    let json = serde_json::to_vec(entry).map_err(|source| StoreError::Encode { what: "log entry", source })?;
    let len = u32::try_from(json.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&json).to_le_bytes());
    out.extend_from_slice(&json);
    Ok(())
}

/// Parses records from `buf`; returns the entries with their offsets and the length of the valid prefix.
fn decode_records(buf: &[u8]) -> (Vec<(u64, Entry<TypeConfig>)>, usize) {
    let mut out: Vec<(u64, Entry<TypeConfig>)> = Vec::new();
    let mut pos = 0;
    while buf.len() - pos >= HEADER {
        let len = u32::from_le_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]) as usize;
        let crc = u32::from_le_bytes([buf[pos + 4], buf[pos + 5], buf[pos + 6], buf[pos + 7]]);
        let Some(body) = buf.get(pos + HEADER..pos + HEADER + len).filter(|_| len <= MAX_RECORD) else { break };
        if crc32c::crc32c(body) != crc {
            break;
        }
        let Ok(entry) = serde_json::from_slice::<Entry<TypeConfig>>(body) else { break };
        // A gap in indexes cannot come from our own appends/truncates: treat it as corruption.
        if out.last().is_some_and(|(_, prev)| prev.log_id.index + 1 != entry.log_id.index) {
            break;
        }
        out.push((pos as u64, entry));
        pos += HEADER + len;
    }
    (out, pos)
}

pub(super) struct LogInner {
    log_path: PathBuf,
    file: File,
    /// index -> (file offset of the record, entry)
    entries: BTreeMap<u64, (u64, Entry<TypeConfig>)>,
    vote: Option<Vote<u64>>,
    purged: Option<LogId<u64>>,
    committed: Option<LogId<u64>>,
    dir: PathBuf,
    /// Set at the first failed write or fsync: the file may hold bytes the index does not know
    /// and a later fsync proves nothing for them, so no write is attempted again (Raft stops on
    /// the error and the broker halts; the next start's recovery re-reads the file).
    failed: Option<String>,
}

impl LogInner {
    fn file_len(&self) -> Result<u64, StoreError> {
        self.file.metadata().map(|m| m.len()).map_err(io("stat", &self.log_path))
    }

    /// Swaps the log file for a read-only handle, so the next write fails as on a broken disk.
    #[cfg(test)]
    pub(super) fn break_file_for_test(&mut self) {
        if let Ok(file) = File::open(&self.log_path) {
            self.file = file;
        }
    }

    /// Restores a writable handle (the disk "recovers").
    #[cfg(test)]
    pub(super) fn repair_file_for_test(&mut self) {
        if let Ok(file) = std::fs::OpenOptions::new().append(true).open(&self.log_path) {
            self.file = file;
        }
    }

    /// Refuses once a write failed; see `failed`.
    fn check_writable(&self) -> Result<(), StoreError> {
        match &self.failed {
            Some(reason) => Err(io("writing", &self.log_path)(std::io::Error::other(format!(
                "the metadata log refused writes after an earlier failure: {reason}"
            )))),
            None => Ok(()),
        }
    }

    /// Records a failed write, so no later one is attempted.
    fn poison<T>(&mut self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(e) = &result {
            self.failed.get_or_insert_with(|| e.to_string());
        }
        result
    }

    pub(super) fn append(&mut self, entries: Vec<Entry<TypeConfig>>) -> Result<(), StoreError> {
        self.check_writable()?;
        let result = self.append_unchecked(entries);
        self.poison(result)
    }

    fn append_unchecked(&mut self, entries: Vec<Entry<TypeConfig>>) -> Result<(), StoreError> {
        // An append replaces whatever the log holds from its first index on. openraft truncates
        // conflicting entries itself first; if it ever did not, records written behind stale
        // higher-index ones would read as a gap at the next open and be cut off with everything
        // after them, losing entries this node has acknowledged.
        if let Some(first) = entries.first().map(|e| e.log_id.index) {
            if let Some(last) = self.entries.keys().next_back().copied().filter(|last| *last >= first) {
                tracing::warn!(first, last, "raft log append overlaps stored entries; truncating them first");
                self.truncate_unchecked(first)?;
            }
        }
        let start = self.file_len()?;
        let mut offset = start;
        let mut buf = Vec::new();
        let mut placed = Vec::with_capacity(entries.len());
        for e in entries {
            let before = buf.len();
            encode_record(&e, &mut buf)?;
            placed.push((offset, e));
            offset += (buf.len() - before) as u64;
        }
        if let Err(e) = self.file.write_all(&buf) {
            // Do not leave a partial record in the middle of the log: later appends would land
            // behind it and be cut off as a "torn tail" on the next open.
            let _ = self.file.set_len(start);
            return Err(io("appending to", &self.log_path)(e));
        }
        self.file.sync_data().map_err(io("fsyncing", &self.log_path))?;
        for (off, e) in placed {
            self.entries.insert(e.log_id.index, (off, e));
        }
        Ok(())
    }

    fn truncate(&mut self, index: u64) -> Result<(), StoreError> {
        self.check_writable()?;
        let result = self.truncate_unchecked(index);
        self.poison(result)
    }

    fn truncate_unchecked(&mut self, index: u64) -> Result<(), StoreError> {
        let cut = match self.entries.range(index..).next() {
            Some((_, (off, _))) => *off,
            None => return Ok(()),
        };
        self.file.set_len(cut).map_err(io("truncating", &self.log_path))?;
        self.file.sync_data().map_err(io("fsyncing", &self.log_path))?;
        self.entries.split_off(&index);
        Ok(())
    }

    fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StoreError> {
        self.check_writable()?;
        let result = self.purge_unchecked(log_id);
        self.poison(result)
    }

    fn purge_unchecked(&mut self, log_id: LogId<u64>) -> Result<(), StoreError> {
        // Record the purge point first: if we crash before the rewrite, open() skips the
        // leftover entries, so the log never appears to start below `purged`.
        write_json_atomic(&self.dir.join("purged.json"), &log_id)?;
        self.purged = Some(log_id);
        let keep = self.entries.split_off(&(log_id.index + 1));
        let tmp = self.log_path.with_extension("log.tmp");
        let mut buf = Vec::new();
        let mut rebuilt = BTreeMap::new();
        for (idx, (_, e)) in keep {
            let off = buf.len() as u64;
            encode_record(&e, &mut buf)?;
            rebuilt.insert(idx, (off, e));
        }
        let mut f = File::create(&tmp).map_err(io("creating", &tmp))?;
        f.write_all(&buf).map_err(io("writing", &tmp))?;
        f.sync_all().map_err(io("fsyncing", &tmp))?;
        std::fs::rename(&tmp, &self.log_path).map_err(io("renaming to", &self.log_path))?;
        sync_dir(&self.log_path)?;
        self.file = open_log(&self.log_path)?;
        self.entries = rebuilt;
        Ok(())
    }
}

fn open_log(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new().read(true).append(true).create(true).open(path).map_err(io("opening", path))
}

/// The Raft log and vote, persisted under a directory. Cloning shares the same store (used as
/// the log reader).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<LogInner>>,
}

impl LogStore {
    /// Opens (or creates) the log in `dir`, cutting off a torn tail.
    pub fn open(dir: &Path) -> Result<LogStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(io("creating dir", dir))?;
        let log_path = dir.join("raft.log");
        let mut file = open_log(&log_path)?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf).map_err(io("reading", &log_path))?;
        let (records, valid) = decode_records(&buf);
        if valid < buf.len() {
            tracing::warn!(path = %log_path.display(), valid, len = buf.len(), "cutting torn tail of raft log");
            file.set_len(valid as u64).map_err(io("truncating", &log_path))?;
            file.sync_data().map_err(io("fsyncing", &log_path))?;
        }
        let vote = read_json(&dir.join("vote.json"))?;
        let purged: Option<LogId<u64>> = read_json(&dir.join("purged.json"))?;
        let committed = read_json(&dir.join("committed.json"))?;
        let floor = purged.map(|p| p.index + 1).unwrap_or(0);
        let entries = records
            .into_iter()
            .filter(|(_, e)| e.log_id.index >= floor)
            .map(|(o, e)| (e.log_id.index, (o, e)))
            .collect();
        let inner = LogInner { log_path, file, entries, vote, purged, committed, dir: dir.to_path_buf(), failed: None };
        Ok(LogStore { inner: Arc::new(Mutex::new(inner)) })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, LogInner> {
        // A panic while holding the lock cannot leave the in-memory map ahead of the file
        // (we update it only after a successful write), so the data is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether nothing was ever logged or voted here (used to decide cluster initialization).
    pub fn is_pristine(&self) -> bool {
        let g = self.lock();
        g.entries.is_empty() && g.purged.is_none() && g.vote.is_none()
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<u64>> {
        Ok(self.lock().entries.range(range).map(|(_, (_, e))| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<u64>> {
        let g = self.lock();
        let last = g.entries.values().next_back().map(|(_, e)| e.log_id).or(g.purged);
        Ok(LogState { last_purged_log_id: g.purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError<u64>> {
        let mut g = self.lock();
        g.check_writable().map_err(|e| sio(e, StorageIOError::write_vote))?;
        let written = write_json_atomic(&g.dir.join("vote.json"), vote);
        g.poison(written).map_err(|e| sio(e, StorageIOError::write_vote))?;
        g.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        Ok(self.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> Result<(), StorageError<u64>> {
        // Lets a restarted node re-apply committed entries at once instead of waiting for a leader.
        let mut g = self.lock();
        write_json_atomic(&g.dir.join("committed.json"), &committed).map_err(|e| sio(e, StorageIOError::write))?;
        g.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError<u64>> {
        Ok(self.lock().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let res = self.lock().append(entries.into_iter().collect());
        match res {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(sio(e, StorageIOError::write_logs))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        self.lock().truncate(log_id.index).map_err(|e| sio(e, StorageIOError::write_logs))
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        self.lock().purge(log_id).map_err(|e| sio(e, StorageIOError::write_logs))
    }
}
