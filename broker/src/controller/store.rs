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

use crate::controller::state_machine::MetadataState;
use crate::controller::{CommandResult, TypeConfig};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, RaftLogReader, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership, Vote,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{Cursor, Read, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// Record header: length + CRC.
const HEADER: usize = 8;
/// Refuse absurd record lengths (a torn length field) instead of allocating them.
const MAX_RECORD: usize = 64 << 20;

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

fn encode_record(entry: &Entry<TypeConfig>, out: &mut Vec<u8>) -> Result<(), StoreError> {
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

struct LogInner {
    log_path: PathBuf,
    file: File,
    /// index -> (file offset of the record, entry)
    entries: BTreeMap<u64, (u64, Entry<TypeConfig>)>,
    vote: Option<Vote<u64>>,
    purged: Option<LogId<u64>>,
    committed: Option<LogId<u64>>,
    dir: PathBuf,
}

impl LogInner {
    fn file_len(&self) -> Result<u64, StoreError> {
        self.file.metadata().map(|m| m.len()).map_err(io("stat", &self.log_path))
    }

    fn append(&mut self, entries: Vec<Entry<TypeConfig>>) -> Result<(), StoreError> {
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
        let inner = LogInner { log_path, file, entries, vote, purged, committed, dir: dir.to_path_buf() };
        Ok(LogStore { inner: Arc::new(Mutex::new(inner)) })
    }

    fn lock(&self) -> MutexGuard<'_, LogInner> {
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
        write_json_atomic(&g.dir.join("vote.json"), vote).map_err(|e| sio(e, StorageIOError::write_vote))?;
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

/// Snapshot as stored in `snapshot.json`.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<u64, BasicNode>,
    /// Serialized [`MetadataState`].
    data: Vec<u8>,
}

struct SmInner {
    last_applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, BasicNode>,
    state: MetadataState,
    snapshot: Option<StoredSnapshot>,
}

/// The Raft state machine: [`MetadataState`] plus the bookkeeping openraft needs. Cloning
/// shares it (the controller reads the state through a clone).
#[derive(Clone)]
pub struct StateMachineStore {
    inner: Arc<RwLock<SmInner>>,
    snapshot_path: PathBuf,
    /// Last log id of the snapshot on disk. Held while writing, because openraft may build a
    /// snapshot concurrently with installing one, and an older snapshot must never replace a
    /// newer one: the log may already be purged up to the newer one.
    persisted: Arc<Mutex<Option<LogId<u64>>>>,
    /// The applied metadata, republished after every applied batch of entries and every
    /// installed snapshot, so brokers react to changes without polling.
    published: Arc<tokio::sync::watch::Sender<Arc<MetadataState>>>,
}

impl StateMachineStore {
    /// Opens the state machine in `dir`, starting from the stored snapshot if there is one.
    pub fn open(dir: &Path) -> Result<StateMachineStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(io("creating dir", dir))?;
        let snapshot_path = dir.join("snapshot.json");
        let snapshot: Option<StoredSnapshot> = read_json(&snapshot_path)?;
        let mut inner = SmInner {
            last_applied: None,
            membership: StoredMembership::default(),
            state: MetadataState::default(),
            snapshot: None,
        };
        if let Some(s) = snapshot {
            inner.state = serde_json::from_slice(&s.data)
                .map_err(|source| StoreError::Decode { path: snapshot_path.clone(), source })?;
            inner.last_applied = s.meta.last_log_id;
            inner.membership = s.meta.last_membership.clone();
            inner.snapshot = Some(s);
        }
        let persisted = Arc::new(Mutex::new(inner.last_applied));
        let published = Arc::new(tokio::sync::watch::Sender::new(Arc::new(inner.state.clone())));
        Ok(StateMachineStore { inner: Arc::new(RwLock::new(inner)), snapshot_path, persisted, published })
    }

    /// Watch of the applied metadata.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Arc<MetadataState>> {
        self.published.subscribe()
    }

    /// The applied metadata, shared (no copy).
    pub fn shared_state(&self) -> Arc<MetadataState> {
        self.published.borrow().clone()
    }

    fn publish(&self, state: &MetadataState) {
        self.published.send_replace(Arc::new(state.clone()));
    }

    /// A copy of the current metadata.
    pub fn state(&self) -> MetadataState {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).state.clone()
    }

    /// Index of the last applied entry.
    pub fn last_applied_index(&self) -> Option<u64> {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).last_applied.map(|l| l.index)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, SmInner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Persists `snap`; the error is already openraft's (boxed: `StorageError` is large).
    fn store_snapshot(&self, snap: &StoredSnapshot) -> Result<(), Box<StorageError<u64>>> {
        let mut persisted = self.persisted.lock().unwrap_or_else(|p| p.into_inner());
        if *persisted > snap.meta.last_log_id {
            return Ok(());
        }
        write_json_atomic(&self.snapshot_path, snap).map_err(|e| {
            Box::new(StorageIOError::write_snapshot(Some(snap.meta.signature()), AnyError::new(&e)).into())
        })?;
        *persisted = snap.meta.last_log_id;
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<u64>> {
        let (meta, data) = {
            let g = self.inner.read().unwrap_or_else(|p| p.into_inner());
            let data = serde_json::to_vec(&g.state).map_err(|e| StorageIOError::read_state_machine(&e))?;
            let id = match g.last_applied {
                Some(l) => format!("{}-{}", l.leader_id, l.index),
                None => "empty".to_string(),
            };
            (SnapshotMeta { last_log_id: g.last_applied, last_membership: g.membership.clone(), snapshot_id: id }, data)
        };
        let snap = StoredSnapshot { meta: meta.clone(), data: data.clone() };
        self.store_snapshot(&snap).map_err(|e| *e)?;
        let mut g = self.write();
        if g.snapshot.as_ref().is_none_or(|s| s.meta.last_log_id <= snap.meta.last_log_id) {
            g.snapshot = Some(snap);
        }
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = StateMachineStore;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>), StorageError<u64>> {
        let g = self.inner.read().unwrap_or_else(|p| p.into_inner());
        Ok((g.last_applied, g.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResult>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut g = self.write();
        let mut out = Vec::new();
        for entry in entries {
            g.last_applied = Some(entry.log_id);
            let res = match entry.payload {
                EntryPayload::Blank => Ok(crate::controller::MetadataResponse::Ok),
                EntryPayload::Normal(cmd) => {
                    let r = g.state.apply(&cmd);
                    if let Err(e) = &r {
                        tracing::debug!(index = entry.log_id.index, error = %e, "metadata command rejected");
                    }
                    r
                }
                EntryPayload::Membership(m) => {
                    g.membership = StoredMembership::new(Some(entry.log_id), m);
                    Ok(crate::controller::MetadataResponse::Ok)
                }
            };
            out.push(res);
        }
        self.publish(&g.state);
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let data = snapshot.into_inner();
        let state: MetadataState = serde_json::from_slice(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), AnyError::new(&e)))?;
        let snap = StoredSnapshot { meta: meta.clone(), data };
        self.store_snapshot(&snap).map_err(|e| *e)?;
        let mut g = self.write();
        g.state = state;
        g.last_applied = meta.last_log_id;
        g.membership = meta.last_membership.clone();
        g.snapshot = Some(snap);
        self.publish(&g.state);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<u64>> {
        let g = self.inner.read().unwrap_or_else(|p| p.into_inner());
        Ok(g.snapshot
            .as_ref()
            .map(|s| Snapshot { meta: s.meta.clone(), snapshot: Box::new(Cursor::new(s.data.clone())) }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, Entry};

    fn entry(term: u64, index: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Normal(crate::controller::MetadataCommand::BrokerHeartbeat { id: index as i32 }),
        }
    }

    fn append(store: &mut LogStore, entries: Vec<Entry<TypeConfig>>) {
        // Bypass the callback (its constructor is crate-private in openraft) but exercise the same path.
        store.lock().append(entries).unwrap();
    }

    #[tokio::test]
    async fn restart_keeps_log_and_vote() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = LogStore::open(dir.path()).unwrap();
            assert!(s.is_pristine());
            append(&mut s, (1..=5).map(|i| entry(1, i)).collect());
            s.save_vote(&Vote::new(3, 2)).await.unwrap();
            s.truncate(LogId::new(CommittedLeaderId::new(1, 1), 4)).await.unwrap();
            append(&mut s, vec![entry(2, 4)]);
            s.purge(LogId::new(CommittedLeaderId::new(1, 1), 1)).await.unwrap();
        }
        let mut s = LogStore::open(dir.path()).unwrap();
        assert_eq!(s.read_vote().await.unwrap(), Some(Vote::new(3, 2)));
        let got: Vec<_> = s.try_get_log_entries(0..).await.unwrap().iter().map(|e| e.log_id).collect();
        let want: Vec<_> =
            [(1, 2), (1, 3), (2, 4)].iter().map(|(t, i)| LogId::new(CommittedLeaderId::new(*t, 1), *i)).collect();
        assert_eq!(got, want);
        let st = s.get_log_state().await.unwrap();
        assert_eq!(st.last_purged_log_id.map(|l| l.index), Some(1));
        assert_eq!(st.last_log_id, Some(want[2]));
    }

    #[tokio::test]
    async fn torn_tail_is_cut_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = LogStore::open(dir.path()).unwrap();
            append(&mut s, (1..=3).map(|i| entry(1, i)).collect());
        }
        let path = dir.path().join("raft.log");
        let good_len = std::fs::metadata(&path).unwrap().len();
        // Half a record: a crash in the middle of an append.
        let mut rec = Vec::new();
        encode_record(&entry(1, 4), &mut rec).unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&rec[..rec.len() / 2]).unwrap();
        drop(f);
        let mut s = LogStore::open(dir.path()).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
        assert_eq!(s.get_log_state().await.unwrap().last_log_id.map(|l| l.index), Some(3));
        // A flipped byte in the last record is also a torn tail.
        append(&mut s, vec![entry(1, 4)]);
        drop(s);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let mut s = LogStore::open(dir.path()).unwrap();
        assert_eq!(s.get_log_state().await.unwrap().last_log_id.map(|l| l.index), Some(3));
        append(&mut s, vec![entry(1, 4)]);
        assert_eq!(s.try_get_log_entries(4..5).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn snapshot_survives_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = StateMachineStore::open(dir.path()).unwrap();
        let reg = crate::controller::MetadataCommand::RegisterBroker { id: 1, host: "h".into(), port: 1, rack: None };
        let e = Entry { log_id: LogId::new(CommittedLeaderId::new(1, 1), 1), payload: EntryPayload::Normal(reg) };
        let res = sm.apply(vec![e]).await.unwrap();
        assert!(res[0].is_ok());
        sm.build_snapshot().await.unwrap();
        let mut sm2 = StateMachineStore::open(dir.path()).unwrap();
        assert_eq!(sm2.state(), sm.state());
        assert_eq!(sm2.applied_state().await.unwrap().0.map(|l| l.index), Some(1));
        assert!(sm2.get_current_snapshot().await.unwrap().is_some());
    }
}
