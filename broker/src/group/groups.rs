//! The pure core of the group coordinator: every group this broker coordinates with its
//! committed offsets. Transitions take the time as an argument and return [`Effects`] (records
//! for `__consumer_offsets`, parked requests to answer) instead of writing or waking anything;
//! offset changes reach memory only through [`Groups::apply`] once their records are written.

use super::effects::{AfterWrite, Answer, Append, AppendKind, Effects, Wake};
use super::entry::Entry;
use super::records::{restore_groups, stored_group};
use super::state::{Ctx, Group, GroupState, JoinArgs, JoinResult, JoinSettings, MemberIds, SyncResult};
use super::store::{partition_for, Loaded, StoredKey, StoredOffset, StoredValue};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use std::collections::{BTreeSet, HashMap};

/// Settings of the core.
#[derive(Clone, Copy, Debug)]
pub struct CoreSettings {
    /// Settings of joins.
    pub join: JoinSettings,
    /// How long offsets outlive their (empty) group or their commit (`offsets.retention`), ms.
    pub retention_ms: i64,
}

/// Every group of the led offsets partitions.
pub struct Groups {
    pub(super) entries: HashMap<String, Entry>,
    settings: CoreSettings,
    ids: Box<dyn MemberIds>,
    last_waiter: u64,
    /// Partition count of `__consumer_offsets`.
    partitions: usize,
    /// Indexes of the led offsets partitions.
    led: BTreeSet<i32>,
}

/// A group transition's result and what it asks the runtime to do.
pub type Outcome<T> = (T, Effects);

/// Per-partition results of OffsetDelete: (topic, partition, error if refused).
pub type DeleteResults = Vec<(String, i32, Option<ResponseError>)>;

impl Groups {
    /// No groups yet, for an offsets topic of `partitions` partitions, none of them led.
    pub fn new(partitions: usize, settings: CoreSettings, ids: Box<dyn MemberIds>) -> Groups {
        Groups {
            entries: HashMap::new(),
            settings,
            ids,
            last_waiter: 0,
            partitions: partitions.max(1),
            led: BTreeSet::new(),
        }
    }

    /// Index of the offsets partition holding `group`.
    pub fn partition_of(&self, group: &str) -> i32 {
        partition_for(group, self.partitions) as i32
    }

    /// Runs `f` on the group, then records what changed; None if the group is unknown and
    /// `create` is false.
    fn step<T>(
        &mut self,
        group_id: &str,
        now: i64,
        create: bool,
        f: impl FnOnce(&mut Group, &mut Ctx) -> T,
    ) -> Option<Outcome<T>> {
        let partition = self.partition_of(group_id);
        let entry = if create {
            self.entries.entry(group_id.to_string()).or_insert_with(|| Entry::new(group_id))
        } else {
            self.entries.get_mut(group_id)?
        };
        let mut cx = Ctx::new(now, self.settings.join, self.ids.as_mut(), &mut self.last_waiter);
        let out = f(&mut entry.group, &mut cx);
        let mut effects = Effects { wakes: cx.wakes, ..Effects::default() };
        effects.appends.extend(persist_if_dirty(entry, partition, now));
        Some((out, effects))
    }

    /// JoinGroup.
    pub fn join(&mut self, group_id: &str, args: JoinArgs, now: i64) -> Outcome<Answer<JoinResult>> {
        self.step(group_id, now, true, |group, cx| group.join(args, cx))
            .unwrap_or_else(|| (Answer::Now(JoinResult::error(ResponseError::UnknownMemberId, "")), Effects::default()))
    }

    /// SyncGroup.
    pub fn sync(
        &mut self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
        now: i64,
    ) -> Outcome<Answer<SyncResult>> {
        self.step(group_id, now, false, |group, cx| group.sync(member_id, instance_id, generation, assignments, cx))
            .unwrap_or_else(|| (Answer::Now(SyncResult::error(ResponseError::UnknownMemberId)), Effects::default()))
    }

    /// Heartbeat; it changes nothing worth writing.
    pub fn heartbeat(
        &mut self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: i64,
    ) -> Option<ResponseError> {
        let Some(entry) = self.entries.get_mut(group_id) else { return Some(ResponseError::UnknownMemberId) };
        entry.group.heartbeat(member_id, instance_id, generation, now)
    }

    /// LeaveGroup for each (member id, instance id).
    pub fn leave(
        &mut self,
        group_id: &str,
        members: &[(String, Option<String>)],
        now: i64,
    ) -> Outcome<Result<Vec<Option<ResponseError>>, ResponseError>> {
        let left = self.step(group_id, now, false, |group, cx| {
            members.iter().map(|(id, instance)| group.leave(id, instance.as_deref(), cx)).collect()
        });
        match left {
            Some((results, effects)) => (Ok(results), effects),
            None => (Err(ResponseError::UnknownMemberId), Effects::default()),
        }
    }

    /// OffsetCommit: validates the committer and asks for the offsets to be written; they are
    /// remembered once written.
    pub fn commit(
        &mut self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        offsets: Vec<(String, i32, StoredOffset)>,
    ) -> Result<Effects, ResponseError> {
        let partition = self.partition_of(group_id);
        let entry = self.entries.entry(group_id.to_string()).or_insert_with(|| Entry::new(group_id));
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
        let records = offsets
            .iter()
            .map(|(topic, partition, value)| {
                let key =
                    StoredKey::Offset { group: group_id.to_string(), topic: topic.clone(), partition: *partition };
                (key, Some(StoredValue::Offset(value.clone())))
            })
            .collect();
        let offsets = offsets.into_iter().map(|(topic, partition, value)| ((topic, partition), value)).collect();
        Ok(Effects {
            appends: vec![Append {
                group: group_id.to_string(),
                partition,
                records,
                kind: AppendKind::Commit,
                then: Some(AfterWrite::StoreOffsets { group: group_id.to_string(), offsets }),
            }],
            wakes: Vec::new(),
        })
    }

    /// DeleteGroups for one group: only an empty group can go; the group and its offsets are
    /// tombstoned and forgotten once written.
    pub fn delete_group(&mut self, group_id: &str) -> Result<Effects, ResponseError> {
        let partition = self.partition_of(group_id);
        let Some(entry) = self.entries.get(group_id) else { return Err(ResponseError::GroupIdNotFound) };
        if entry.group.state != GroupState::Empty {
            return Err(ResponseError::NonEmptyGroup);
        }
        let keys: Vec<(String, i32)> = entry.offsets.keys().cloned().collect();
        let mut records = offset_tombstones(group_id, &keys);
        records.push((StoredKey::Group { group: group_id.to_string() }, None));
        Ok(Effects {
            appends: vec![Append {
                group: group_id.to_string(),
                partition,
                records,
                kind: AppendKind::DeleteGroup,
                then: Some(AfterWrite::DropGroup { group: group_id.to_string(), keys }),
            }],
            wakes: Vec::new(),
        })
    }

    /// OffsetDelete: offsets of topics a live member subscribes to stay (`subscribed` tells
    /// from the members' subscriptions); the others are tombstoned.
    pub fn delete_offsets(
        &mut self,
        group_id: &str,
        partitions: Vec<(String, i32)>,
        subscribed: impl Fn(&[Bytes], &str) -> bool,
    ) -> Result<Outcome<DeleteResults>, ResponseError> {
        let partition = self.partition_of(group_id);
        let Some(entry) = self.entries.get(group_id) else { return Err(ResponseError::GroupIdNotFound) };
        let protocol = entry.group.protocol.clone().unwrap_or_default();
        let subscriptions: Vec<Bytes> = entry.group.members.values().map(|m| m.metadata_for(&protocol)).collect();
        let mut results = Vec::new();
        let mut keys = Vec::new();
        for (topic, index) in partitions {
            if !subscriptions.is_empty() && subscribed(&subscriptions, &topic) {
                results.push((topic, index, Some(ResponseError::GroupSubscribedToTopic)));
                continue;
            }
            if entry.offsets.contains_key(&(topic.clone(), index)) {
                keys.push((topic.clone(), index));
            }
            results.push((topic, index, None));
        }
        let mut effects = Effects::default();
        if !keys.is_empty() {
            effects.appends.push(Append {
                group: group_id.to_string(),
                partition,
                records: offset_tombstones(group_id, &keys),
                kind: AppendKind::DeleteOffsets,
                then: Some(AfterWrite::DropOffsets { group: group_id.to_string(), keys }),
            });
        }
        Ok((results, effects))
    }

    /// Advances the clock to `now`: session expiry, rebalance deadlines, offset retention, and
    /// forgetting groups left with nothing. Returns the effects and the (group, member) pairs
    /// whose session expired.
    pub fn tick(&mut self, now: i64) -> Outcome<Vec<(String, String)>> {
        let retention = self.settings.retention_ms;
        let count = self.partitions;
        let mut effects = Effects::default();
        let mut expired_members = Vec::new();
        let mut forget = Vec::new();
        for (id, entry) in self.entries.iter_mut() {
            let partition = partition_for(id, count) as i32;
            let mut cx = Ctx::new(now, self.settings.join, self.ids.as_mut(), &mut self.last_waiter);
            expired_members.extend(entry.group.tick(&mut cx).into_iter().map(|m| (id.clone(), m)));
            effects.wakes.extend(cx.wakes);
            effects.appends.extend(persist_if_dirty(entry, partition, now));
            if entry.group.state != GroupState::Empty {
                continue;
            }
            // A group that had members keeps its offsets for the retention after it became
            // empty; an offsets-only group keeps each offset that long after its commit.
            let expired: Vec<(String, i32)> = if entry.group.protocol_type.is_some() {
                if entry.empty_since.is_some_and(|since| now - since > retention) {
                    entry.offsets.keys().cloned().collect()
                } else {
                    Vec::new()
                }
            } else {
                entry
                    .offsets
                    .iter()
                    .filter(|(_, v)| now - v.commit_timestamp > retention)
                    .map(|(k, _)| k.clone())
                    .collect()
            };
            if !expired.is_empty() {
                // The group itself goes on a later tick, once the tombstones are written.
                effects.appends.push(Append {
                    group: id.clone(),
                    partition,
                    records: offset_tombstones(id, &expired),
                    kind: AppendKind::Expiration,
                    then: Some(AfterWrite::DropOffsets { group: id.clone(), keys: expired }),
                });
                continue;
            }
            if entry.offsets.is_empty() && !entry.group.has_pending() {
                forget.push((id.clone(), partition));
            }
        }
        for (id, partition) in forget {
            let Some(entry) = self.entries.remove(&id) else { continue };
            if entry.group.protocol_type.is_some() || entry.group.generation > 0 {
                effects.appends.push(Append {
                    group: id.clone(),
                    partition,
                    records: vec![(StoredKey::Group { group: id }, None)],
                    kind: AppendKind::ForgetGroup,
                    then: None,
                });
            }
        }
        (expired_members, effects)
    }

    /// Applies what a written batch changes in memory.
    pub fn apply(&mut self, change: AfterWrite) {
        match change {
            AfterWrite::StoreOffsets { group, offsets } => {
                // The (still empty) group may have been forgotten since the commit was accepted;
                // it comes back unless its partition moved away meanwhile.
                let led = self.led.contains(&self.partition_of(&group));
                let entry = match self.entries.get_mut(&group) {
                    Some(entry) => entry,
                    None if led => self.entries.entry(group.clone()).or_insert_with(|| Entry::new(&group)),
                    None => return,
                };
                entry.offsets.extend(offsets);
            }
            AfterWrite::DropOffsets { group, keys } => {
                if let Some(entry) = self.entries.get_mut(&group) {
                    for key in &keys {
                        entry.offsets.remove(key);
                    }
                }
            }
            AfterWrite::DropGroup { group, keys } => {
                let Some(entry) = self.entries.get_mut(&group) else { return };
                for key in &keys {
                    entry.offsets.remove(key);
                }
                // Offsets committed after the delete was accepted keep the group.
                if entry.group.state == GroupState::Empty && entry.offsets.is_empty() {
                    self.entries.remove(&group);
                }
            }
        }
    }

    /// Drops the groups of offsets partitions `gone` (with `count` partitions in all); their
    /// parked requests are cancelled.
    pub fn release(&mut self, gone: &[i32], count: usize) -> Effects {
        let count = count.max(1);
        let mut effects = Effects::default();
        self.entries.retain(|id, entry| {
            let keep = !gone.contains(&(partition_for(id, count) as i32));
            if !keep {
                effects.wakes.extend(entry.group.waiters().into_iter().map(Wake::Cancel));
            }
            keep
        });
        effects
    }

    /// Takes over the groups read back from an offsets partition; members get a fresh session
    /// from `now`. Returns the cancellations of requests parked in groups it replaces.
    pub fn restore(&mut self, loaded: Loaded, now: i64) -> Effects {
        let mut effects = Effects::default();
        for (id, entry) in restore_groups(loaded, now) {
            if let Some(old) = self.entries.insert(id, entry) {
                effects.wakes.extend(old.group.waiters().into_iter().map(Wake::Cancel));
            }
        }
        effects
    }

    /// Records which offsets partitions are led, out of `count`.
    pub fn set_led(&mut self, led: impl IntoIterator<Item = i32>, count: usize) {
        self.led = led.into_iter().collect();
        self.partitions = count.max(1);
    }
}

fn offset_tombstones(group_id: &str, keys: &[(String, i32)]) -> Vec<(StoredKey, Option<StoredValue>)> {
    keys.iter()
        .map(|(topic, partition)| {
            (StoredKey::Offset { group: group_id.to_string(), topic: topic.clone(), partition: *partition }, None)
        })
        .collect()
}

/// The group's metadata record if it changed since last written.
fn persist_if_dirty(entry: &mut Entry, partition: i32, now: i64) -> Option<Append> {
    if !entry.group.dirty {
        return None;
    }
    entry.group.dirty = false;
    if entry.group.state == GroupState::Empty {
        entry.empty_since.get_or_insert(now);
    } else {
        entry.empty_since = None;
    }
    let id = entry.group.id.clone();
    Some(Append {
        group: id.clone(),
        partition,
        records: vec![(StoredKey::Group { group: id }, Some(StoredValue::Group(stored_group(entry))))],
        kind: AppendKind::GroupMetadata,
        then: None,
    })
}

#[cfg(test)]
mod tests;
