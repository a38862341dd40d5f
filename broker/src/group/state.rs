//! The classic consumer-group state machine (Kafka's `GroupMetadata` + the rebalance logic of its
//! `GroupCoordinator`), free of I/O, clocks and channels: callers pass the time in a [`Ctx`], and
//! requests that must wait for a rebalance are parked under a [`WaiterId`] and answered later by
//! the [`Wake`]s the transitions record.
//!
//! States: Empty → PreparingRebalance (members (re)join) → CompletingRebalance (leader computes
//! assignments) → Stable; any membership change in Stable or CompletingRebalance goes back to
//! PreparingRebalance. Assignment itself happens in the clients (the leader), so cooperative
//! protocols such as `cooperative-sticky` work over the same transitions. Joining and syncing
//! live in [`join`]; membership upkeep (heartbeat, leave, expiry) here.

mod join;
#[cfg(test)]
mod tests;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

pub use super::effects::{Answer, WaiterId, Wake};
pub use super::types::{GroupState, JoinArgs, JoinResult, JoinSettings, MemberIds, Reply, SyncResult};

/// Milliseconds of a duration, saturating.
pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// What a transition works with: the time, the join settings and a source of member ids; it
/// records the wake-ups it causes in `wakes`.
pub struct Ctx<'a> {
    /// Wall-clock ms.
    pub now: i64,
    /// Settings of joins.
    pub settings: JoinSettings,
    ids: &'a mut dyn MemberIds,
    last_waiter: &'a mut u64,
    /// Parked requests to answer, in order.
    pub wakes: Vec<Wake>,
}

impl<'a> Ctx<'a> {
    /// A context at `now`; waiter ids continue after `*last_waiter`.
    pub fn new(now: i64, settings: JoinSettings, ids: &'a mut dyn MemberIds, last_waiter: &'a mut u64) -> Ctx<'a> {
        Ctx { now, settings, ids, last_waiter, wakes: Vec::new() }
    }

    fn park(&mut self) -> WaiterId {
        *self.last_waiter += 1;
        WaiterId(*self.last_waiter)
    }

    fn after(&self, d: Duration) -> i64 {
        self.now.saturating_add(ms(d))
    }
}

/// A group member.
pub struct Member {
    /// Coordinator-assigned id.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// Client's `client.id`.
    pub client_id: String,
    /// Client's address.
    pub client_host: String,
    /// Session timeout asked for.
    pub session_timeout: Duration,
    /// Rebalance timeout asked for (the consumer's `max.poll.interval.ms`).
    pub rebalance_timeout: Duration,
    /// Supported protocols in preference order, with their metadata (the subscription).
    pub protocols: Vec<(String, Bytes)>,
    /// Assignment from the current generation.
    pub assignment: Bytes,
    /// Restored from `__consumer_offsets`, whose record keeps only the chosen protocol: until
    /// the member rejoins, `protocols` is that one protocol rather than the member's list.
    restored: bool,
    heartbeat_deadline: i64,
    join_waiter: Option<WaiterId>,
    sync_waiter: Option<WaiterId>,
}

impl Member {
    fn from_join(member_id: String, args: JoinArgs, assignment: Bytes, now: i64) -> Member {
        Member {
            member_id,
            instance_id: args.instance_id,
            client_id: args.client_id,
            client_host: args.client_host,
            heartbeat_deadline: now.saturating_add(ms(args.session_timeout)),
            session_timeout: args.session_timeout,
            rebalance_timeout: args.rebalance_timeout,
            protocols: args.protocols,
            assignment,
            restored: false,
            join_waiter: None,
            sync_waiter: None,
        }
    }

    /// Metadata for `protocol`, empty if the member does not support it.
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(name, _)| name == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }

    /// Whether a rejoin brings the protocols the member has. A restored member knows just the
    /// chosen protocol's metadata: the same metadata for it counts as unchanged, so a moved
    /// coordinator costs no rebalance of a member whose subscription did not change.
    fn same_protocols(&self, protocols: &[(String, Bytes)]) -> bool {
        if self.restored {
            return self.protocols.iter().all(|(name, meta)| protocols.iter().any(|(n, m)| n == name && m == meta));
        }
        self.protocols == protocols
    }

    /// Takes the protocols of a rejoin (the member's full list from now on).
    fn set_protocols(&mut self, protocols: Vec<(String, Bytes)>) {
        self.protocols = protocols;
        self.restored = false;
    }

    fn touch(&mut self, now: i64) {
        self.heartbeat_deadline = now.saturating_add(ms(self.session_timeout));
    }
}

/// One consumer group.
pub struct Group {
    /// Group id.
    pub id: String,
    /// Current state.
    pub state: GroupState,
    /// Generation; bumped by every completed join.
    pub generation: i32,
    /// Protocol type of the members ("consumer").
    pub protocol_type: Option<String>,
    /// Protocol chosen for the current generation.
    pub protocol: Option<String>,
    /// Leader's member id.
    pub leader: Option<String>,
    /// Members by id.
    pub members: BTreeMap<String, Member>,
    /// Static instance id → member id.
    static_members: HashMap<String, String>,
    /// KIP-394 member ids handed out and not yet used, with their expiry (ms).
    pending: HashMap<String, i64>,
    /// When the current join or sync phase gives up on missing members.
    rebalance_deadline: Option<i64>,
    /// The first join of an empty group is held until then (`initial_rebalance_delay`).
    initial_delay_until: Option<i64>,
    /// Whether the group metadata changed in a way worth persisting.
    pub dirty: bool,
}

impl Group {
    /// A new empty group.
    pub fn new(id: &str) -> Group {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending: HashMap::new(),
            rebalance_deadline: None,
            initial_delay_until: None,
            dirty: false,
        }
    }

    /// Restores a group from its persisted metadata: each member as it last joined, with its
    /// assignment; members get a fresh session from `now`.
    pub fn restore(
        id: &str,
        generation: i32,
        protocol_type: Option<String>,
        protocol: Option<String>,
        leader: Option<String>,
        members: Vec<(JoinArgs, Bytes)>,
        now: i64,
    ) -> Group {
        let mut group = Group::new(id);
        group.generation = generation;
        group.protocol_type = protocol_type;
        group.protocol = protocol;
        group.leader = leader;
        for (args, assignment) in members {
            if let Some(instance) = &args.instance_id {
                group.static_members.insert(instance.clone(), args.member_id.clone());
            }
            let mut member = Member::from_join(args.member_id.clone(), args, assignment, now);
            member.restored = true;
            group.members.insert(member.member_id.clone(), member);
        }
        group.state = if group.members.is_empty() { GroupState::Empty } else { GroupState::Stable };
        group
    }

    /// Ids of every parked request (for cancelling them when the group goes away).
    pub fn waiters(&self) -> Vec<WaiterId> {
        self.members.values().flat_map(|m| m.join_waiter.into_iter().chain(m.sync_waiter)).collect()
    }

    /// Checks member id, static instance id and generation.
    pub fn validate_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        if let Some(instance) = instance_id {
            match self.static_members.get(instance) {
                Some(id) if id != member_id => return Err(ResponseError::FencedInstanceId),
                _ => {}
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        if generation != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    }

    /// Handles Heartbeat.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: i64,
    ) -> Option<ResponseError> {
        if self.state == GroupState::Empty {
            return Some(ResponseError::UnknownMemberId);
        }
        if let Err(e) = self.validate_member(member_id, instance_id, generation) {
            return Some(e);
        }
        if let Some(member) = self.members.get_mut(member_id) {
            member.touch(now);
        }
        match self.state {
            GroupState::PreparingRebalance => Some(ResponseError::RebalanceInProgress),
            _ => None,
        }
    }

    /// Handles one member of a LeaveGroup; the group rebalances at once.
    pub fn leave(&mut self, member_id: &str, instance_id: Option<&str>, cx: &mut Ctx) -> Option<ResponseError> {
        let member_id = match (member_id, instance_id) {
            // Batched leave by instance id alone (KIP-345 admin removal).
            ("", Some(instance)) => match self.static_members.get(instance) {
                Some(id) => id.clone(),
                None => return Some(ResponseError::UnknownMemberId),
            },
            (id, Some(instance)) => {
                if self.static_members.get(instance).is_some_and(|known| known != id) {
                    return Some(ResponseError::FencedInstanceId);
                }
                id.to_string()
            }
            (id, None) => id.to_string(),
        };
        if self.pending.remove(&member_id).is_some() {
            return None;
        }
        if !self.members.contains_key(&member_id) {
            return Some(ResponseError::UnknownMemberId);
        }
        self.remove_member(&member_id, cx);
        None
    }

    fn remove_member_entry(&mut self, member_id: &str, cx: &mut Ctx) -> Option<Member> {
        let mut member = self.members.remove(member_id)?;
        if let Some(instance) = &member.instance_id {
            if self.static_members.get(instance).is_some_and(|id| id == member_id) {
                self.static_members.remove(instance);
            }
        }
        if let Some(waiter) = member.join_waiter.take() {
            cx.wakes.push(Wake::Join(waiter, JoinResult::error(ResponseError::UnknownMemberId, member_id)));
        }
        if let Some(waiter) = member.sync_waiter.take() {
            cx.wakes.push(Wake::Sync(waiter, SyncResult::error(ResponseError::UnknownMemberId)));
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = None;
        }
        self.dirty = true;
        Some(member)
    }

    /// Removes a member (leave or expiry) and rebalances the rest.
    fn remove_member(&mut self, member_id: &str, cx: &mut Ctx) {
        if self.remove_member_entry(member_id, cx).is_none() {
            return;
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(cx),
            GroupState::PreparingRebalance => {
                if self.members.is_empty() {
                    self.generation += 1;
                    self.become_empty();
                } else {
                    self.try_complete_join(cx);
                }
            }
            GroupState::Empty => {}
        }
    }

    /// Expires sessions and enforces rebalance deadlines. Returns the members expired.
    pub fn tick(&mut self, cx: &mut Ctx) -> Vec<String> {
        let now = cx.now;
        self.pending.retain(|_, deadline| *deadline > now);
        // Members waiting in a join or sync are alive by definition; the phase deadline covers them.
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none() && m.sync_waiter.is_none() && now >= m.heartbeat_deadline)
            .map(|m| m.member_id.clone())
            .collect();
        for id in &expired {
            self.remove_member(id, cx);
        }
        match self.state {
            GroupState::PreparingRebalance => self.try_complete_join(cx),
            GroupState::CompletingRebalance if self.rebalance_deadline.is_some_and(|d| now >= d) => {
                // The leader (or others) never synced: drop those and start over.
                let stalled: Vec<String> =
                    self.members.values().filter(|m| m.sync_waiter.is_none()).map(|m| m.member_id.clone()).collect();
                for id in stalled {
                    self.remove_member_entry(&id, cx);
                }
                self.prepare_rebalance(cx);
            }
            _ => {}
        }
        expired
    }

    /// Whether member ids were handed out (KIP-394) and not yet used.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Protocol data for DescribeGroups: the chosen protocol in Stable, else empty.
    pub fn protocol_data(&self) -> String {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.protocol.clone().unwrap_or_default(),
            _ => String::new(),
        }
    }
}
