//! The group coordinator's runtime: reads the clock, runs a transition of the pure core
//! ([`Groups`]) under one short lock, then performs its effects outside it — answering parked
//! JoinGroup/SyncGroup requests and appending to `__consumer_offsets`.
//!
//! Appends are queued while the lock is held and written by one writer at a time in queue order,
//! so the log (and memory, updated after each write) sees changes in transition order even
//! though the writes happen after the lock is gone.

use super::effects::{AfterWrite, Answer, Append, AppendKind, Effects, WaiterId, Wake};
use super::groups::{CoreSettings, Groups};
use super::state::{JoinArgs, JoinResult, JoinSettings, Reply, SyncResult};
use super::store::{OffsetStore, StoredOffset};
use super::types::RandomMemberIds;
use crate::error::BrokerError;
use crate::partition::Partition;
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use millrace_config::broker::GroupSettings;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::oneshot;

pub use super::view::{CommittedOffset, GroupDescription, MemberDescription, TopicOffsets};

/// Where an append landed: the partition and the offset to wait for.
type Written = Result<(Arc<Partition>, i64), BrokerError>;

/// The core and the channels of the requests it parked.
struct Inner {
    core: Groups,
    joins: HashMap<WaiterId, oneshot::Sender<JoinResult>>,
    syncs: HashMap<WaiterId, oneshot::Sender<SyncResult>>,
}

/// An answer taken out of [`Inner`] under the lock, sent after it is released.
enum Ready {
    Join(oneshot::Sender<JoinResult>, JoinResult),
    Sync(oneshot::Sender<SyncResult>, SyncResult),
}

/// A queued append and who wants to know how it went.
struct Job {
    append: Append,
    done: oneshot::Sender<Written>,
}

/// What is left to do once the lock is released.
#[derive(Default)]
struct Work {
    ready: Vec<Ready>,
    written: Vec<(AppendKind, oneshot::Receiver<Written>)>,
}

impl Inner {
    fn park_join(&mut self, answer: Answer<JoinResult>) -> Reply<JoinResult> {
        match answer {
            Answer::Now(result) => Reply::Now(result),
            Answer::Wait(id) => {
                let (tx, rx) = oneshot::channel();
                self.joins.insert(id, tx);
                Reply::Later(rx)
            }
        }
    }

    fn park_sync(&mut self, answer: Answer<SyncResult>) -> Reply<SyncResult> {
        match answer {
            Answer::Now(result) => Reply::Now(result),
            Answer::Wait(id) => {
                let (tx, rx) = oneshot::channel();
                self.syncs.insert(id, tx);
                Reply::Later(rx)
            }
        }
    }

    /// Takes the channels the wakes answer (a cancelled one is dropped right here).
    fn take(&mut self, wakes: Vec<Wake>) -> Vec<Ready> {
        let mut ready = Vec::new();
        for wake in wakes {
            match wake {
                Wake::Join(id, result) => ready.extend(self.joins.remove(&id).map(|tx| Ready::Join(tx, result))),
                Wake::Sync(id, result) => ready.extend(self.syncs.remove(&id).map(|tx| Ready::Sync(tx, result))),
                Wake::Cancel(id) => {
                    self.joins.remove(&id);
                    self.syncs.remove(&id);
                }
            }
        }
        ready
    }
}

/// The coordinator of every group on this broker.
pub struct GroupCoordinator {
    inner: Mutex<Inner>,
    /// Appends in transition order, pushed under `inner`'s lock.
    outbox: Mutex<VecDeque<Job>>,
    /// Held while writing the outbox, so batches reach the log in queue order.
    writer: Mutex<()>,
    store: OffsetStore,
    settings: GroupSettings,
}

fn now_ms() -> i64 {
    crate::clock::now_ms()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl GroupCoordinator {
    /// A coordinator for an offsets topic of `partitions` partitions; it coordinates the groups
    /// of the partitions it is told it leads ([`GroupCoordinator::set_led_partitions`]).
    pub fn new(partitions: usize, settings: GroupSettings) -> GroupCoordinator {
        let core_settings = CoreSettings {
            join: JoinSettings {
                initial_rebalance_delay: settings.initial_rebalance_delay.as_duration(),
                max_size: settings.max_size as usize,
            },
            retention_ms: i64::try_from(settings.offsets_retention.0).unwrap_or(i64::MAX),
        };
        let core = Groups::new(partitions, core_settings, Box::new(RandomMemberIds));
        GroupCoordinator {
            inner: Mutex::new(Inner { core, joins: HashMap::new(), syncs: HashMap::new() }),
            outbox: Mutex::new(VecDeque::new()),
            writer: Mutex::new(()),
            store: OffsetStore::new(partitions),
            settings,
        }
    }

    /// Whether this broker coordinates `group` (leads its offsets partition); NOT_COORDINATOR
    /// tells clients to look the coordinator up again.
    pub fn check_coordinator(&self, group: &str) -> Result<(), ResponseError> {
        if self.store.partition(group).is_some() {
            Ok(())
        } else {
            Err(ResponseError::NotCoordinator)
        }
    }

    /// Whether this broker coordinates any offsets partition.
    pub fn coordinates_any(&self) -> bool {
        !self.store.led().is_empty()
    }

    /// Index of the offsets partition of `group`.
    pub fn partition_index(&self, group: &str) -> i32 {
        self.store.partition_index(group)
    }

    /// Takes over the groups of newly led offsets partitions (loading them from the log) and
    /// drops those of partitions now led elsewhere — the coordinator fails over with its
    /// partition, as in Kafka.
    pub fn set_led_partitions(&self, led: BTreeMap<i32, Arc<Partition>>, count: usize) {
        let current = self.store.led();
        let same = current.len() == led.len()
            && current.iter().zip(&led).all(|((a, pa), (b, pb))| a == b && Arc::ptr_eq(pa, pb));
        if same {
            return;
        }
        let resigned: Vec<i32> = current.keys().filter(|i| !led.contains_key(i)).copied().collect();
        let added: Vec<(i32, Arc<Partition>)> = led
            .iter()
            .filter(|(i, p)| current.get(i).is_none_or(|c| !Arc::ptr_eq(c, p)))
            .map(|(i, p)| (*i, p.clone()))
            .collect();
        let gone: Vec<i32> = resigned.iter().copied().chain(added.iter().map(|(i, _)| *i)).collect();
        // Cancelled requests are dropped with `released`, after the lock.
        let released = {
            let mut inner = lock(&self.inner);
            let effects = inner.core.release(&gone, count);
            inner.take(effects.wakes)
        };
        drop(released);
        for index in &resigned {
            tracing::debug!(partition = index, "no longer coordinating the groups of __consumer_offsets-{index}");
        }
        // Loading reads the log: no lock is held meanwhile.
        let mut loaded = Vec::new();
        for (index, partition) in &added {
            match OffsetStore::load_and_migrate(partition, now_ms()) {
                Ok(groups) => {
                    tracing::info!(
                        partition = index,
                        groups = groups.groups.len(),
                        skipped = groups.skipped,
                        "coordinating the groups of __consumer_offsets-{index}"
                    );
                    loaded.push(groups);
                }
                Err(e) => tracing::error!(partition = index, error = %e, "loading groups failed"),
            }
        }
        let now = now_ms();
        let replaced = {
            let mut inner = lock(&self.inner);
            let mut effects = Effects::default();
            for groups in loaded {
                effects.extend(inner.core.restore(groups, now));
            }
            inner.core.set_led(led.keys().copied(), count);
            inner.take(effects.wakes)
        };
        drop(replaced);
        self.store.set_led(led, count);
    }

    /// Session timeouts outside the configured bounds are refused (INVALID_SESSION_TIMEOUT).
    pub fn session_timeout_allowed(&self, timeout: Duration) -> bool {
        timeout >= self.settings.min_session_timeout.as_duration()
            && timeout <= self.settings.max_session_timeout.as_duration()
    }

    /// Largest metadata string accepted with an offset commit.
    pub fn max_metadata_bytes(&self) -> usize {
        self.settings.offset_metadata_max_bytes.0 as usize
    }

    /// Under the lock: takes the channels to answer and queues the appends (queueing here keeps
    /// them in transition order).
    fn stage(&self, inner: &mut Inner, effects: Effects) -> Work {
        let ready = inner.take(effects.wakes);
        let mut written = Vec::new();
        if !effects.appends.is_empty() {
            let mut outbox = lock(&self.outbox);
            for append in effects.appends {
                let (done, result) = oneshot::channel();
                written.push((append.kind, result));
                outbox.push_back(Job { append, done });
            }
        }
        Work { ready, written }
    }

    /// After the lock: answers the parked requests, writes the queued appends, and returns how
    /// this transition's own appends went.
    fn perform(&self, work: Work) -> Vec<(AppendKind, Written)> {
        for ready in work.ready {
            // A receiver gone means the client went away; nothing to answer.
            match ready {
                Ready::Join(tx, result) => drop(tx.send(result)),
                Ready::Sync(tx, result) => drop(tx.send(result)),
            }
        }
        if work.written.is_empty() {
            return Vec::new();
        }
        self.flush();
        // Our jobs were queued before `flush` took the writer, so they are done by now.
        work.written
            .into_iter()
            .map(|(kind, mut rx)| {
                let written = rx
                    .try_recv()
                    .unwrap_or_else(|_| Err(BrokerError::Internal("an offsets write was lost from the queue".into())));
                (kind, written)
            })
            .collect()
    }

    /// Writes every queued append in order, applying each one's in-memory change once written.
    fn flush(&self) {
        let _writer = lock(&self.writer);
        loop {
            let Some(job) = lock(&self.outbox).pop_front() else { break };
            let Append { group, partition, records, kind, then } = job.append;
            let written = self.store.append_at(partition, &records, now_ms());
            match &written {
                Ok(_) => {
                    if let Some(change) = then {
                        if let AfterWrite::DropOffsets { keys, .. } = &change {
                            if kind == AppendKind::Expiration {
                                tracing::info!(group = %group, partitions = keys.len(), "expired committed offsets");
                            }
                        }
                        lock(&self.inner).core.apply(change);
                    }
                }
                Err(e) => match kind {
                    AppendKind::GroupMetadata => {
                        tracing::error!(group = %group, error = %e, "persisting group metadata failed")
                    }
                    AppendKind::Expiration => {
                        tracing::error!(group = %group, error = %e, "writing offset expirations failed")
                    }
                    AppendKind::ForgetGroup => {
                        tracing::debug!(group = %group, error = %e, "writing a forgotten group's tombstone failed")
                    }
                    // The callers of these report the error to their client.
                    AppendKind::Commit | AppendKind::DeleteGroup | AppendKind::DeleteOffsets => {}
                },
            }
            let _ = job.done.send(written);
        }
    }

    /// The result of this transition's append of `kind`.
    fn written(results: Vec<(AppendKind, Written)>, kind: AppendKind) -> Option<Written> {
        results.into_iter().find(|(k, _)| *k == kind).map(|(_, w)| w)
    }

    /// Handles JoinGroup.
    pub fn join(&self, group_id: &str, args: JoinArgs) -> Reply<JoinResult> {
        let now = now_ms();
        let (reply, work) = {
            let mut inner = lock(&self.inner);
            let (answer, effects) = inner.core.join(group_id, args, now);
            // Parked before the wakes are taken: this transition may already answer it.
            let reply = inner.park_join(answer);
            (reply, self.stage(&mut inner, effects))
        };
        self.perform(work);
        reply
    }

    /// Handles SyncGroup.
    pub fn sync(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> Reply<SyncResult> {
        let now = now_ms();
        let (reply, work) = {
            let mut inner = lock(&self.inner);
            let (answer, effects) = inner.core.sync(group_id, member_id, instance_id, generation, assignments, now);
            let reply = inner.park_sync(answer);
            (reply, self.stage(&mut inner, effects))
        };
        self.perform(work);
        reply
    }

    /// Handles Heartbeat.
    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Option<ResponseError> {
        let now = now_ms();
        lock(&self.inner).core.heartbeat(group_id, member_id, instance_id, generation, now)
    }

    /// Handles LeaveGroup for each (member id, instance id).
    pub fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        let now = now_ms();
        let (results, work) = {
            let mut inner = lock(&self.inner);
            let (results, effects) = inner.core.leave(group_id, members, now);
            (results, self.stage(&mut inner, effects))
        };
        self.perform(work);
        results
    }

    /// Validates and writes an offset commit; returns once the commit is on disk and on the
    /// in-sync replicas.
    pub async fn commit(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        offsets: Vec<(String, i32, StoredOffset)>,
    ) -> Result<(), ResponseError> {
        let work = {
            let mut inner = lock(&self.inner);
            let effects = inner.core.commit(group_id, generation, member_id, instance_id, offsets)?;
            self.stage(&mut inner, effects)
        };
        let Some(written) = Self::written(self.perform(work), AppendKind::Commit) else { return Ok(()) };
        let (partition, durable) = written.map_err(|e| {
            tracing::error!(group = %group_id, error = %e, "writing offsets failed");
            e.error_code()
        })?;
        wait_written(&partition, durable).await.map_err(|e| {
            tracing::warn!(group = %group_id, error = %e, "committed offsets not confirmed");
            e.error_code()
        })
    }

    /// Committed offsets; `wanted` None means every partition the group has offsets for.
    pub fn fetch_offsets(&self, group_id: &str, wanted: Option<Vec<(String, Vec<i32>)>>) -> TopicOffsets {
        lock(&self.inner).core.fetch_offsets(group_id, wanted)
    }

    /// (group id, protocol type, state) of every group.
    pub fn list(&self) -> Vec<(String, String, &'static str)> {
        lock(&self.inner).core.list()
    }

    /// A group's description, None if unknown.
    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        lock(&self.inner).core.describe(group_id)
    }

    /// Deletes an empty group and its offsets (DeleteGroups).
    pub async fn delete_group(&self, group_id: &str) -> Result<(), ResponseError> {
        let work = {
            let mut inner = lock(&self.inner);
            let effects = inner.core.delete_group(group_id)?;
            self.stage(&mut inner, effects)
        };
        let Some(written) = Self::written(self.perform(work), AppendKind::DeleteGroup) else { return Ok(()) };
        let (partition, durable) = written.map_err(|e| e.error_code())?;
        wait_written(&partition, durable).await.map_err(|e| e.error_code())
    }

    /// Deletes committed offsets of partitions the group does not consume (OffsetDelete).
    /// `subscribed` tells whether a live member subscribes to a topic.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: Vec<(String, i32)>,
        subscribed: impl Fn(&[Bytes], &str) -> bool,
    ) -> Result<Vec<(String, i32, Option<ResponseError>)>, ResponseError> {
        let (results, work) = {
            let mut inner = lock(&self.inner);
            let (results, effects) = inner.core.delete_offsets(group_id, partitions, subscribed)?;
            (results, self.stage(&mut inner, effects))
        };
        if let Some(written) = Self::written(self.perform(work), AppendKind::DeleteOffsets) {
            let (partition, durable) = written.map_err(|e| e.error_code())?;
            wait_written(&partition, durable).await.map_err(|e| e.error_code())?;
        }
        Ok(results)
    }

    /// Committed offsets of every group (for lag gauges and tools).
    pub fn committed(&self) -> Vec<CommittedOffset> {
        lock(&self.inner).core.committed()
    }

    /// Advances the clock: session expiry, rebalance deadlines, and offset retention.
    pub fn tick(&self) {
        let now = now_ms();
        let (expired, work) = {
            let mut inner = lock(&self.inner);
            let (expired, effects) = inner.core.tick(now);
            (expired, self.stage(&mut inner, effects))
        };
        for (group, member) in expired {
            tracing::info!(group = %group, member = %member, "member session expired");
        }
        self.perform(work);
    }
}

/// How long an offsets write may take to reach the disk and the in-sync replicas.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits until an offsets-partition write below `offset` is fsynced here and on every in-sync
/// replica (Kafka writes offsets with acks=all).
async fn wait_written(partition: &Partition, offset: i64) -> Result<(), BrokerError> {
    match tokio::time::timeout(WRITE_TIMEOUT, partition.wait_durable(offset)).await {
        Ok(Ok(())) => {}
        // The offsets partition moved while the write waited: so did the coordinator.
        Ok(Err(BrokerError::Truncated { .. } | BrokerError::ShuttingDown)) => return Err(BrokerError::NotCoordinator),
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(BrokerError::Replication(format!("{} did not reach the disk in time", partition.name()))),
    }
    match partition.wait_for_ack(offset, 1, WRITE_TIMEOUT).await {
        crate::partition::AckWait::Done | crate::partition::AckWait::NotEnoughReplicasAfterAppend => Ok(()),
        crate::partition::AckWait::NotLeader => Err(BrokerError::NotCoordinator),
        crate::partition::AckWait::Waiting => {
            Err(BrokerError::Replication(format!("{} did not replicate the write in time", partition.name())))
        }
    }
}
