//! The group coordinator: owns every group's state machine and committed offsets, persists them
//! through [`OffsetStore`], and runs the clock (session expiry, rebalance deadlines, offset
//! retention).

use super::state::{Group, GroupState, JoinArgs, JoinSettings, Reply, SyncResult};
use super::store::{decode_b64, encode_b64, OffsetStore, StoredGroup, StoredKey, StoredMember, StoredOffset};
use crate::error::BrokerError;
use crate::partition::Partition;
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use millrace_config::broker::GroupSettings;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

use super::state::JoinResult;

struct Entry {
    group: Group,
    offsets: HashMap<(String, i32), StoredOffset>,
    /// Wall-clock ms when the group last became empty.
    empty_since: Option<i64>,
}

impl Entry {
    fn new(id: &str) -> Entry {
        Entry { group: Group::new(id), offsets: HashMap::new(), empty_since: None }
    }
}

/// A group as DescribeGroups and `millrace group describe` show it.
pub struct GroupDescription {
    /// State name.
    pub state: &'static str,
    /// Protocol type.
    pub protocol_type: String,
    /// Chosen protocol.
    pub protocol: String,
    /// Generation.
    pub generation: i32,
    /// Members: id, instance id, client id, host, metadata for the chosen protocol, assignment.
    pub members: Vec<MemberDescription>,
}

/// One member in a [`GroupDescription`].
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Subscription metadata.
    pub metadata: Bytes,
    /// Assignment.
    pub assignment: Bytes,
}

/// One partition's committed offset for a group (for lag).
pub struct CommittedOffset {
    /// Group id.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed offset.
    pub offset: i64,
}

/// Committed offsets by topic: (topic, [(partition, offset if committed)]).
pub type TopicOffsets = Vec<(String, Vec<(i32, Option<StoredOffset>)>)>;

/// The coordinator of every group on this broker.
pub struct GroupCoordinator {
    groups: Mutex<HashMap<String, Entry>>,
    store: OffsetStore,
    settings: GroupSettings,
}

fn now_ms() -> i64 {
    crate::clock::now_ms()
}

impl GroupCoordinator {
    /// A coordinator for an offsets topic of `partitions` partitions; it coordinates the groups
    /// of the partitions it is told it leads ([`GroupCoordinator::set_led_partitions`]).
    pub fn new(partitions: usize, settings: GroupSettings) -> GroupCoordinator {
        GroupCoordinator { groups: Mutex::new(HashMap::new()), store: OffsetStore::new(partitions), settings }
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
    pub fn set_led_partitions(&self, led: std::collections::BTreeMap<i32, Arc<Partition>>, count: usize) {
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
        let count = count.max(1);
        {
            let mut groups = self.lock();
            groups.retain(|id, _| {
                let index = super::store::partition_for(id, count) as i32;
                !resigned.contains(&index) && !added.iter().any(|(i, _)| *i == index)
            });
        }
        for index in &resigned {
            tracing::debug!(partition = index, "no longer coordinating the groups of __consumer_offsets-{index}");
        }
        let now = Instant::now();
        let mut loaded_groups = Vec::new();
        for (index, partition) in &added {
            match OffsetStore::load(partition) {
                Ok(loaded) => {
                    let restored = restore_groups(loaded, now);
                    tracing::info!(
                        partition = index,
                        groups = restored.len(),
                        "coordinating the groups of __consumer_offsets-{index}"
                    );
                    loaded_groups.extend(restored);
                }
                Err(e) => tracing::error!(partition = index, error = %e, "loading groups failed"),
            }
        }
        self.lock().extend(loaded_groups);
        self.store.set_led(led, count);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn timing(&self) -> JoinSettings {
        JoinSettings {
            initial_rebalance_delay: self.settings.initial_rebalance_delay.as_duration(),
            max_size: self.settings.max_size as usize,
        }
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

    /// Writes the group's metadata if it changed (not waited for: members rejoin if it is lost).
    fn persist_if_dirty(&self, entry: &mut Entry) {
        if !entry.group.dirty {
            return;
        }
        entry.group.dirty = false;
        if entry.group.state == GroupState::Empty {
            entry.empty_since.get_or_insert_with(now_ms);
        } else {
            entry.empty_since = None;
        }
        let group = &entry.group;
        let stored = StoredGroup {
            protocol_type: group.protocol_type.clone(),
            generation: group.generation,
            protocol: group.protocol.clone(),
            leader: group.leader.clone(),
            members: if group.state == GroupState::Stable {
                group
                    .members
                    .values()
                    .map(|m| StoredMember {
                        member_id: m.member_id.clone(),
                        instance_id: m.instance_id.clone(),
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        session_timeout_ms: m.session_timeout.as_millis() as u64,
                        rebalance_timeout_ms: m.rebalance_timeout.as_millis() as u64,
                        protocols: m.protocols.iter().map(|(n, meta)| (n.clone(), encode_b64(meta))).collect(),
                        assignment: encode_b64(&m.assignment),
                    })
                    .collect()
            } else {
                // Mid-rebalance membership is not worth restoring: members rejoin anyway.
                Vec::new()
            },
            empty_since: entry.empty_since,
        };
        let value = match serde_json::to_vec(&stored) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(group = %group.id, error = %e, "serializing group metadata failed");
                return;
            }
        };
        if let Err(e) =
            self.store.append(&group.id, &[(StoredKey::Group { group: group.id.clone() }, Some(value))], now_ms())
        {
            tracing::error!(group = %group.id, error = %e, "persisting group metadata failed");
        }
    }

    /// Handles JoinGroup.
    pub fn join(&self, group_id: &str, args: JoinArgs) -> Reply<JoinResult> {
        let mut groups = self.lock();
        let entry = groups.entry(group_id.to_string()).or_insert_with(|| Entry::new(group_id));
        let reply = entry.group.join(args, Instant::now(), self.timing());
        self.persist_if_dirty(entry);
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
        let mut groups = self.lock();
        let Some(entry) = groups.get_mut(group_id) else {
            return Reply::Now(SyncResult { error: Some(ResponseError::UnknownMemberId), ..Default::default() });
        };
        let reply = entry.group.sync(member_id, instance_id, generation, assignments, Instant::now());
        self.persist_if_dirty(entry);
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
        let mut groups = self.lock();
        let Some(entry) = groups.get_mut(group_id) else { return Some(ResponseError::UnknownMemberId) };
        entry.group.heartbeat(member_id, instance_id, generation, Instant::now())
    }

    /// Handles LeaveGroup for each (member id, instance id).
    pub fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        let mut groups = self.lock();
        let Some(entry) = groups.get_mut(group_id) else { return Err(ResponseError::UnknownMemberId) };
        let now = Instant::now();
        let results = members.iter().map(|(id, instance)| entry.group.leave(id, instance.as_deref(), now)).collect();
        self.persist_if_dirty(entry);
        Ok(results)
    }

    /// Validates and writes an offset commit; returns per-partition errors (None = stored) once
    /// the commit is on disk.
    pub async fn commit(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        offsets: Vec<(String, i32, StoredOffset)>,
    ) -> Result<(), ResponseError> {
        let pending = {
            let mut groups = self.lock();
            let entry = groups.entry(group_id.to_string()).or_insert_with(|| Entry::new(group_id));
            let group = &entry.group;
            let simple = generation < 0 && member_id.is_empty() && instance_id.is_none();
            if simple {
                // Offsets-only use of a group (no membership): allowed while nobody is a member.
                if group.state != GroupState::Empty {
                    return Err(ResponseError::UnknownMemberId);
                }
            } else {
                if group.state == GroupState::CompletingRebalance {
                    return Err(ResponseError::RebalanceInProgress);
                }
                group.validate_member(member_id, instance_id, generation)?;
            }
            let records: Vec<(StoredKey, Option<Vec<u8>>)> = offsets
                .iter()
                .map(|(topic, partition, value)| {
                    let key =
                        StoredKey::Offset { group: group_id.to_string(), topic: topic.clone(), partition: *partition };
                    (key, serde_json::to_vec(value).ok())
                })
                .collect();
            let written = self.store.append(group_id, &records, now_ms()).map_err(|e| {
                tracing::error!(group = %group_id, error = %e, "writing offsets failed");
                e.response_error()
            })?;
            for (topic, partition, value) in offsets {
                entry.offsets.insert((topic, partition), value);
            }
            written
        };
        let (partition, durable) = pending;
        wait_written(&partition, durable).await.map_err(|e| {
            tracing::warn!(group = %group_id, error = %e, "committed offsets not confirmed");
            e.response_error()
        })
    }

    /// Committed offsets; `wanted` None means every partition the group has offsets for.
    pub fn fetch_offsets(&self, group_id: &str, wanted: Option<Vec<(String, Vec<i32>)>>) -> TopicOffsets {
        let groups = self.lock();
        let offsets = groups.get(group_id).map(|e| &e.offsets);
        match wanted {
            Some(topics) => topics
                .into_iter()
                .map(|(topic, partitions)| {
                    let found = partitions
                        .into_iter()
                        .map(|p| (p, offsets.and_then(|o| o.get(&(topic.clone(), p))).cloned()))
                        .collect();
                    (topic, found)
                })
                .collect(),
            None => {
                let mut by_topic: HashMap<String, Vec<(i32, Option<StoredOffset>)>> = HashMap::new();
                for ((topic, partition), value) in offsets.into_iter().flatten() {
                    by_topic.entry(topic.clone()).or_default().push((*partition, Some(value.clone())));
                }
                let mut out: Vec<_> = by_topic.into_iter().collect();
                out.sort_by(|a, b| a.0.cmp(&b.0));
                for (_, partitions) in &mut out {
                    partitions.sort_by_key(|(p, _)| *p);
                }
                out
            }
        }
    }

    /// (group id, protocol type, state) of every group.
    pub fn list(&self) -> Vec<(String, String, &'static str)> {
        let groups = self.lock();
        let mut out: Vec<_> = groups
            .values()
            .map(|e| (e.group.id.clone(), e.group.protocol_type.clone().unwrap_or_default(), e.group.state.name()))
            .collect();
        out.sort();
        out
    }

    /// A group's description, None if unknown.
    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let groups = self.lock();
        let group = &groups.get(group_id)?.group;
        let protocol = group.protocol.clone().unwrap_or_default();
        Some(GroupDescription {
            state: group.state.name(),
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol: group.protocol_data(),
            generation: group.generation,
            members: group
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        })
    }

    fn tombstones(group_id: &str, entry: &Entry) -> Vec<(StoredKey, Option<Vec<u8>>)> {
        let mut records: Vec<(StoredKey, Option<Vec<u8>>)> = entry
            .offsets
            .keys()
            .map(|(topic, partition)| {
                (StoredKey::Offset { group: group_id.to_string(), topic: topic.clone(), partition: *partition }, None)
            })
            .collect();
        records.push((StoredKey::Group { group: group_id.to_string() }, None));
        records
    }

    /// Deletes an empty group and its offsets (DeleteGroups).
    pub async fn delete_group(&self, group_id: &str) -> Result<(), ResponseError> {
        let (partition, durable) = {
            let mut groups = self.lock();
            let Some(entry) = groups.get(group_id) else { return Err(ResponseError::GroupIdNotFound) };
            if entry.group.state != GroupState::Empty {
                return Err(ResponseError::NonEmptyGroup);
            }
            let records = Self::tombstones(group_id, entry);
            let written = self.store.append(group_id, &records, now_ms()).map_err(|e| e.response_error())?;
            groups.remove(group_id);
            written
        };
        wait_written(&partition, durable).await.map_err(|e| e.response_error())
    }

    /// Deletes committed offsets of partitions the group does not consume (OffsetDelete).
    /// `subscribed` tells whether a live member subscribes to a topic.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: Vec<(String, i32)>,
        subscribed: impl Fn(&[Bytes], &str) -> bool,
    ) -> Result<Vec<(String, i32, Option<ResponseError>)>, ResponseError> {
        let (results, pending) = {
            let mut groups = self.lock();
            let Some(entry) = groups.get_mut(group_id) else { return Err(ResponseError::GroupIdNotFound) };
            let protocol = entry.group.protocol.clone().unwrap_or_default();
            let subscriptions: Vec<Bytes> = entry.group.members.values().map(|m| m.metadata_for(&protocol)).collect();
            let mut results = Vec::new();
            let mut records = Vec::new();
            for (topic, partition) in partitions {
                if !subscriptions.is_empty() && subscribed(&subscriptions, &topic) {
                    results.push((topic, partition, Some(ResponseError::GroupSubscribedToTopic)));
                    continue;
                }
                if entry.offsets.remove(&(topic.clone(), partition)).is_some() {
                    records.push((
                        StoredKey::Offset { group: group_id.to_string(), topic: topic.clone(), partition },
                        None,
                    ));
                }
                results.push((topic, partition, None));
            }
            let pending = if records.is_empty() {
                None
            } else {
                Some(self.store.append(group_id, &records, now_ms()).map_err(|e| e.response_error())?)
            };
            (results, pending)
        };
        if let Some((partition, durable)) = pending {
            wait_written(&partition, durable).await.map_err(|e| e.response_error())?;
        }
        Ok(results)
    }

    /// Committed offsets of every group (for lag gauges and tools).
    pub fn committed(&self) -> Vec<CommittedOffset> {
        let groups = self.lock();
        let mut out = Vec::new();
        for (id, entry) in groups.iter() {
            for ((topic, partition), value) in &entry.offsets {
                out.push(CommittedOffset {
                    group: id.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                    offset: value.offset,
                });
            }
        }
        out
    }

    /// Advances the clock: session expiry, rebalance deadlines, and offset retention.
    pub fn tick(&self) {
        let now = Instant::now();
        let wall = now_ms();
        let retention = self.settings.offsets_retention.0 as i64;
        let mut groups = self.lock();
        let mut forget = Vec::new();
        for (id, entry) in groups.iter_mut() {
            for member in entry.group.tick(now) {
                tracing::info!(group = %id, member = %member, "member session expired");
            }
            self.persist_if_dirty(entry);
            if entry.group.state != GroupState::Empty {
                continue;
            }
            // Offset retention: a group that had members keeps its offsets for `offsets_retention`
            // after it became empty; an offsets-only group keeps each offset that long after its commit.
            let expired: Vec<(String, i32)> = if entry.group.protocol_type.is_some() {
                if entry.empty_since.is_some_and(|since| wall - since > retention) {
                    entry.offsets.keys().cloned().collect()
                } else {
                    Vec::new()
                }
            } else {
                entry
                    .offsets
                    .iter()
                    .filter(|(_, v)| wall - v.commit_timestamp > retention)
                    .map(|(k, _)| k.clone())
                    .collect()
            };
            if !expired.is_empty() {
                let records: Vec<_> = expired
                    .iter()
                    .map(|(t, p)| (StoredKey::Offset { group: id.clone(), topic: t.clone(), partition: *p }, None))
                    .collect();
                if let Err(e) = self.store.append(id, &records, wall) {
                    tracing::error!(group = %id, error = %e, "writing offset expirations failed");
                    continue;
                }
                for key in &expired {
                    entry.offsets.remove(key);
                }
                tracing::info!(group = %id, partitions = expired.len(), "expired committed offsets");
            }
            if entry.offsets.is_empty() && !entry.group.has_pending() {
                forget.push(id.clone());
            }
        }
        for id in forget {
            if let Some(entry) = groups.remove(&id) {
                if entry.group.protocol_type.is_some() || entry.group.generation > 0 {
                    let _ = self.store.append(&id, &[(StoredKey::Group { group: id.clone() }, None)], wall);
                }
            }
        }
    }
}

/// How long an offsets write may take to reach the disk and the in-sync replicas.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits until an offsets-partition write below `offset` is fsynced here and on every in-sync
/// replica (Kafka writes offsets with acks=all).
async fn wait_written(partition: &Partition, offset: i64) -> Result<(), BrokerError> {
    partition.wait_durable(offset).await?;
    match partition.wait_for_ack(offset, 1, WRITE_TIMEOUT).await {
        crate::partition::AckWait::Done | crate::partition::AckWait::NotEnoughReplicasAfterAppend => Ok(()),
        crate::partition::AckWait::NotLeader => Err(BrokerError::NotCoordinator),
        crate::partition::AckWait::Waiting => {
            Err(BrokerError::Replication(format!("{} did not replicate the write in time", partition.name())))
        }
    }
}

/// Rebuilds group entries from what was read from an offsets partition.
fn restore_groups(loaded: super::store::Loaded, now: Instant) -> HashMap<String, Entry> {
    let mut groups: HashMap<String, Entry> = HashMap::new();
    for (id, stored) in &loaded.groups {
        let members = stored
            .members
            .iter()
            .map(|m| {
                let joined = JoinArgs {
                    member_id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout: Duration::from_millis(m.session_timeout_ms),
                    rebalance_timeout: Duration::from_millis(m.rebalance_timeout_ms),
                    protocol_type: stored.protocol_type.clone().unwrap_or_default(),
                    protocols: m.protocols.iter().map(|(n, meta)| (n.clone(), decode_b64(meta))).collect(),
                    require_known_member_id: false,
                };
                (joined, decode_b64(&m.assignment))
            })
            .collect();
        let group = Group::restore(
            id,
            stored.generation,
            stored.protocol_type.clone(),
            stored.protocol.clone(),
            stored.leader.clone(),
            members,
            now,
        );
        groups.insert(id.clone(), Entry { group, offsets: HashMap::new(), empty_since: stored.empty_since });
    }
    for (id, offsets) in loaded.offsets {
        groups.entry(id.clone()).or_insert_with(|| Entry::new(&id)).offsets = offsets;
    }
    groups
}
