//! [`StateMachineStore`]: openraft's state machine over [`MetadataState`], with snapshots kept in
//! `snapshot.json` and the applied state published to watchers.

use super::{io, read_json, write_json_atomic, StoreError};
use crate::controller::state_machine::MetadataState;
use crate::controller::{CommandResult, TypeConfig};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

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
