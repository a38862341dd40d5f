//! The classic consumer-group state machine (Kafka's `GroupMetadata` + the rebalance logic of its
//! `GroupCoordinator`), free of I/O: callers pass the current time, and responses that must wait
//! for a rebalance are delivered through oneshot channels held by the members.
//!
//! States: Empty → PreparingRebalance (members (re)join) → CompletingRebalance (leader computes
//! assignments) → Stable; any membership change in Stable or CompletingRebalance goes back to
//! PreparingRebalance. Assignment itself happens in the clients (the leader), so cooperative
//! protocols such as `cooperative-sticky` work over the same transitions.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

pub use super::types::{GroupState, JoinArgs, JoinResult, JoinSettings, Reply, SyncResult};

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
    heartbeat_deadline: Instant,
    join_waiter: Option<oneshot::Sender<JoinResult>>,
    sync_waiter: Option<oneshot::Sender<SyncResult>>,
}

impl Member {
    fn from_join(member_id: String, args: JoinArgs, assignment: Bytes, now: Instant) -> Member {
        Member {
            member_id,
            instance_id: args.instance_id,
            client_id: args.client_id,
            client_host: args.client_host,
            heartbeat_deadline: now + args.session_timeout,
            session_timeout: args.session_timeout,
            rebalance_timeout: args.rebalance_timeout,
            protocols: args.protocols,
            assignment,
            join_waiter: None,
            sync_waiter: None,
        }
    }

    /// Metadata for `protocol`, empty if the member does not support it.
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(name, _)| name == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
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
    /// KIP-394 member ids handed out and not yet used, with their expiry.
    pending: HashMap<String, Instant>,
    /// When the current join or sync phase gives up on missing members.
    rebalance_deadline: Option<Instant>,
    /// The first join of an empty group is held until then (`initial_rebalance_delay`).
    initial_delay_until: Option<Instant>,
    /// Whether the group metadata changed in a way worth persisting.
    pub dirty: bool,
}

fn new_member_id(client_id: &str) -> String {
    format!("{}-{}", if client_id.is_empty() { "member" } else { client_id }, uuid::Uuid::new_v4())
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
    /// assignment; members get a fresh session.
    pub fn restore(
        id: &str,
        generation: i32,
        protocol_type: Option<String>,
        protocol: Option<String>,
        leader: Option<String>,
        members: Vec<(JoinArgs, Bytes)>,
        now: Instant,
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
            let member = Member::from_join(args.member_id.clone(), args, assignment, now);
            group.members.insert(member.member_id.clone(), member);
        }
        group.state = if group.members.is_empty() { GroupState::Empty } else { GroupState::Stable };
        group
    }

    /// Protocols every current member supports.
    fn common_protocols(&self) -> Option<Vec<String>> {
        let mut members = self.members.values();
        let first = members.next()?;
        let mut common: Vec<String> = first.protocols.iter().map(|(n, _)| n.clone()).collect();
        for member in members {
            common.retain(|name| member.protocols.iter().any(|(n, _)| n == name));
        }
        Some(common)
    }

    fn max_rebalance_timeout(&self) -> Duration {
        self.members.values().map(|m| m.rebalance_timeout).max().unwrap_or(Duration::from_secs(60))
    }

    /// Handles JoinGroup.
    pub fn join(&mut self, args: JoinArgs, now: Instant, settings: JoinSettings) -> Reply<JoinResult> {
        // A member of a non-empty group must share the protocol type and at least one protocol.
        if !self.members.is_empty() {
            let type_matches = self.protocol_type.as_deref() == Some(args.protocol_type.as_str());
            let common = self.common_protocols().unwrap_or_default();
            let shares = args.protocols.iter().any(|(n, _)| common.contains(n));
            let only_member = self.members.len() == 1 && self.members.contains_key(&args.member_id);
            if !only_member && (!type_matches || !shares) {
                return Reply::Now(JoinResult::error(ResponseError::InconsistentGroupProtocol, &args.member_id));
            }
        }
        if args.protocols.is_empty() {
            return Reply::Now(JoinResult::error(ResponseError::InconsistentGroupProtocol, &args.member_id));
        }
        if args.member_id.is_empty() {
            self.join_unknown(args, now, settings)
        } else {
            self.join_known(args, now, settings)
        }
    }

    fn join_unknown(&mut self, args: JoinArgs, now: Instant, settings: JoinSettings) -> Reply<JoinResult> {
        // Pending ids count too: each holds memory until its session timeout passes.
        let replaces_static = args.instance_id.as_ref().is_some_and(|i| self.static_members.contains_key(i));
        if !replaces_static && self.members.len() + self.pending.len() >= settings.max_size {
            return Reply::Now(JoinResult::error(ResponseError::GroupMaxSizeReached, &args.member_id));
        }
        let new_id = new_member_id(&args.client_id);
        if let Some(instance) = args.instance_id.clone() {
            if let Some(old_id) = self.static_members.get(&instance).cloned() {
                return self.replace_static_member(&old_id, new_id, args, now, settings);
            }
            self.static_members.insert(instance, new_id.clone());
            return self.add_and_join(new_id, args, now, settings);
        }
        if args.require_known_member_id {
            // KIP-394: remember the id; the member must come back with it.
            let session = args.session_timeout;
            self.pending.insert(new_id.clone(), now + session);
            return Reply::Now(JoinResult::error(ResponseError::MemberIdRequired, &new_id));
        }
        self.add_and_join(new_id, args, now, settings)
    }

    fn replace_static_member(
        &mut self,
        old_id: &str,
        new_id: String,
        args: JoinArgs,
        now: Instant,
        settings: JoinSettings,
    ) -> Reply<JoinResult> {
        let Some(mut member) = self.members.remove(old_id) else {
            return self.add_and_join(new_id, args, now, settings);
        };
        // The previous incarnation is fenced: whatever it is waiting for fails.
        if let Some(waiter) = member.join_waiter.take() {
            let _ = waiter.send(JoinResult::error(ResponseError::FencedInstanceId, old_id));
        }
        if let Some(waiter) = member.sync_waiter.take() {
            let _ = waiter.send(SyncResult::error(ResponseError::FencedInstanceId));
        }
        let protocols_unchanged = member.protocols == args.protocols;
        member.member_id = new_id.clone();
        member.client_id = args.client_id.clone();
        member.client_host = args.client_host.clone();
        member.session_timeout = args.session_timeout;
        member.rebalance_timeout = args.rebalance_timeout;
        member.protocols = args.protocols.clone();
        member.heartbeat_deadline = now + args.session_timeout;
        let was_leader = self.leader.as_deref() == Some(old_id);
        if was_leader {
            self.leader = Some(new_id.clone());
        }
        if let Some(instance) = &args.instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        self.members.insert(new_id.clone(), member);
        self.dirty = true;
        // A restarted static follower with the same subscription gets its old assignment back
        // without a rebalance — the point of static membership.
        if self.state == GroupState::Stable && protocols_unchanged && !was_leader {
            return Reply::Now(self.current_join_result(&new_id, false));
        }
        self.join_known(JoinArgs { member_id: new_id, ..args }, now, settings)
    }

    fn add_and_join(
        &mut self,
        member_id: String,
        args: JoinArgs,
        now: Instant,
        settings: JoinSettings,
    ) -> Reply<JoinResult> {
        let protocol_type = args.protocol_type.clone();
        self.members.insert(member_id.clone(), Member::from_join(member_id.clone(), args, Bytes::new(), now));
        if self.protocol_type.is_none() || self.members.len() == 1 {
            self.protocol_type = Some(protocol_type);
        }
        let (tx, rx) = oneshot::channel();
        if let Some(member) = self.members.get_mut(&member_id) {
            member.join_waiter = Some(tx);
        }
        self.start_or_continue_rebalance(now, settings);
        self.try_complete_join(now);
        Reply::Later(rx)
    }

    fn join_known(&mut self, args: JoinArgs, now: Instant, settings: JoinSettings) -> Reply<JoinResult> {
        let member_id = args.member_id.clone();
        if self.pending.remove(&member_id).is_some() {
            return self.add_and_join(member_id, args, now, settings);
        }
        if let Some(instance) = &args.instance_id {
            if self.static_members.get(instance).is_some_and(|id| id != &member_id) {
                return Reply::Now(JoinResult::error(ResponseError::FencedInstanceId, &member_id));
            }
        }
        let state = self.state;
        let is_leader = self.leader.as_deref() == Some(member_id.as_str());
        let Some(member) = self.members.get_mut(&member_id) else {
            return Reply::Now(JoinResult::error(ResponseError::UnknownMemberId, &member_id));
        };
        let protocols_unchanged = member.protocols == args.protocols;
        member.protocols = args.protocols;
        member.session_timeout = args.session_timeout;
        member.rebalance_timeout = args.rebalance_timeout;
        member.client_id = args.client_id;
        member.client_host = args.client_host;
        member.heartbeat_deadline = now + member.session_timeout;
        // A member that missed its JoinGroup response asks again: answer from the current generation.
        let replay = match state {
            GroupState::CompletingRebalance => protocols_unchanged,
            GroupState::Stable => protocols_unchanged && !is_leader,
            _ => false,
        };
        if replay {
            return Reply::Now(self.current_join_result(&member_id, is_leader));
        }
        let (tx, rx) = oneshot::channel();
        if let Some(waiting) = member.join_waiter.replace(tx) {
            let _ = waiting.send(JoinResult::error(ResponseError::RebalanceInProgress, &member_id));
        }
        self.start_or_continue_rebalance(now, settings);
        self.try_complete_join(now);
        Reply::Later(rx)
    }

    fn current_join_result(&self, member_id: &str, with_members: bool) -> JoinResult {
        let protocol = self.protocol.clone().unwrap_or_default();
        JoinResult {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if with_members {
                self.members
                    .values()
                    .map(|m| (m.member_id.clone(), m.instance_id.clone(), m.metadata_for(&protocol)))
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    fn start_or_continue_rebalance(&mut self, now: Instant, settings: JoinSettings) {
        match self.state {
            GroupState::PreparingRebalance => {}
            GroupState::Empty => {
                self.state = GroupState::PreparingRebalance;
                let delay = settings.initial_rebalance_delay.min(self.max_rebalance_timeout());
                self.initial_delay_until = Some(now + delay);
                self.rebalance_deadline = Some(now + self.max_rebalance_timeout());
            }
            GroupState::CompletingRebalance | GroupState::Stable => self.prepare_rebalance(now),
        }
    }

    /// Moves to PreparingRebalance: every member must rejoin within the rebalance timeout.
    fn prepare_rebalance(&mut self, now: Instant) {
        if self.state == GroupState::CompletingRebalance {
            for member in self.members.values_mut() {
                if let Some(waiter) = member.sync_waiter.take() {
                    let _ = waiter.send(SyncResult::error(ResponseError::RebalanceInProgress));
                }
            }
        }
        if self.members.is_empty() {
            self.become_empty();
            return;
        }
        self.state = GroupState::PreparingRebalance;
        self.initial_delay_until = None;
        self.rebalance_deadline = Some(now + self.max_rebalance_timeout());
    }

    fn become_empty(&mut self) {
        self.state = GroupState::Empty;
        self.protocol = None;
        self.leader = None;
        self.rebalance_deadline = None;
        self.initial_delay_until = None;
        self.dirty = true;
    }

    /// Completes the join phase once every member has rejoined (after the initial delay for a
    /// new group), or the rebalance timeout passed.
    fn try_complete_join(&mut self, now: Instant) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let everyone = !self.members.is_empty() && self.members.values().all(|m| m.join_waiter.is_some());
        let delay_over = self.initial_delay_until.is_none_or(|until| now >= until);
        let timed_out = self.rebalance_deadline.is_some_and(|deadline| now >= deadline);
        let ready = (everyone && delay_over) || timed_out;
        if !ready {
            return;
        }
        // Members that did not rejoin in time leave the group.
        let missing: Vec<String> =
            self.members.values().filter(|m| m.join_waiter.is_none()).map(|m| m.member_id.clone()).collect();
        for id in missing {
            self.remove_member_entry(&id);
        }
        self.generation += 1;
        self.dirty = true;
        if self.members.is_empty() {
            self.become_empty();
            return;
        }
        let protocol = self.select_protocol();
        self.protocol = Some(protocol.clone());
        if !self.leader.as_ref().is_some_and(|l| self.members.contains_key(l)) {
            self.leader = self.members.keys().next().cloned();
        }
        self.state = GroupState::CompletingRebalance;
        self.initial_delay_until = None;
        self.rebalance_deadline = Some(now + self.max_rebalance_timeout());
        let leader = self.leader.clone().unwrap_or_default();
        let all: Vec<(String, Option<String>, Bytes)> = self
            .members
            .values()
            .map(|m| (m.member_id.clone(), m.instance_id.clone(), m.metadata_for(&protocol)))
            .collect();
        let (generation, protocol_type) = (self.generation, self.protocol_type.clone());
        for member in self.members.values_mut() {
            member.assignment = Bytes::new();
            member.heartbeat_deadline = now + member.session_timeout;
            if let Some(waiter) = member.join_waiter.take() {
                let _ = waiter.send(JoinResult {
                    error: None,
                    generation,
                    protocol_type: protocol_type.clone(),
                    protocol_name: Some(protocol.clone()),
                    leader: leader.clone(),
                    member_id: member.member_id.clone(),
                    members: if member.member_id == leader { all.clone() } else { Vec::new() },
                });
            }
        }
    }

    /// The protocol most members prefer among those all of them support.
    fn select_protocol(&self) -> String {
        let common = self.common_protocols().unwrap_or_default();
        let mut votes: Vec<(String, usize)> = common.iter().map(|p| (p.clone(), 0)).collect();
        for member in self.members.values() {
            if let Some((name, _)) = member.protocols.iter().find(|(n, _)| common.contains(n)) {
                if let Some(vote) = votes.iter_mut().find(|(p, _)| p == name) {
                    vote.1 += 1;
                }
            }
        }
        // Ties go to the earlier protocol in the (first member's) preference order.
        votes.iter().rev().max_by_key(|(_, count)| *count).map(|(p, _)| p.clone()).unwrap_or_default()
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

    /// Handles SyncGroup; `assignments` are only read from the leader.
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Reply<SyncResult> {
        if let Err(e) = self.validate_member(member_id, instance_id, generation) {
            return Reply::Now(SyncResult::error(e));
        }
        match self.state {
            GroupState::Empty => Reply::Now(SyncResult::error(ResponseError::UnknownMemberId)),
            GroupState::PreparingRebalance => Reply::Now(SyncResult::error(ResponseError::RebalanceInProgress)),
            GroupState::Stable => {
                let assignment = self.members.get(member_id).map(|m| m.assignment.clone()).unwrap_or_default();
                if let Some(member) = self.members.get_mut(member_id) {
                    member.heartbeat_deadline = now + member.session_timeout;
                }
                Reply::Now(self.sync_result(assignment))
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(member) = self.members.get_mut(member_id) {
                    member.heartbeat_deadline = now + member.session_timeout;
                    member.sync_waiter = Some(tx);
                }
                if self.leader.as_deref() == Some(member_id) {
                    let mut by_member: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for member in self.members.values_mut() {
                        member.assignment = by_member.remove(&member.member_id).unwrap_or_default();
                    }
                    self.state = GroupState::Stable;
                    self.rebalance_deadline = None;
                    self.dirty = true;
                    let result = self.sync_result(Bytes::new());
                    for member in self.members.values_mut() {
                        if let Some(waiter) = member.sync_waiter.take() {
                            let _ = waiter.send(SyncResult { assignment: member.assignment.clone(), ..result.clone() });
                        }
                    }
                }
                Reply::Later(rx)
            }
        }
    }

    fn sync_result(&self, assignment: Bytes) -> SyncResult {
        SyncResult {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment,
        }
    }

    /// Handles Heartbeat.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Option<ResponseError> {
        if self.state == GroupState::Empty {
            return Some(ResponseError::UnknownMemberId);
        }
        if let Err(e) = self.validate_member(member_id, instance_id, generation) {
            return Some(e);
        }
        if let Some(member) = self.members.get_mut(member_id) {
            member.heartbeat_deadline = now + member.session_timeout;
        }
        match self.state {
            GroupState::PreparingRebalance => Some(ResponseError::RebalanceInProgress),
            _ => None,
        }
    }

    /// Handles one member of a LeaveGroup; the group rebalances at once.
    pub fn leave(&mut self, member_id: &str, instance_id: Option<&str>, now: Instant) -> Option<ResponseError> {
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
        self.remove_member(&member_id, now);
        None
    }

    fn remove_member_entry(&mut self, member_id: &str) -> Option<Member> {
        let mut member = self.members.remove(member_id)?;
        if let Some(instance) = &member.instance_id {
            if self.static_members.get(instance).is_some_and(|id| id == member_id) {
                self.static_members.remove(instance);
            }
        }
        if let Some(waiter) = member.join_waiter.take() {
            let _ = waiter.send(JoinResult::error(ResponseError::UnknownMemberId, member_id));
        }
        if let Some(waiter) = member.sync_waiter.take() {
            let _ = waiter.send(SyncResult::error(ResponseError::UnknownMemberId));
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = None;
        }
        self.dirty = true;
        Some(member)
    }

    /// Removes a member (leave or expiry) and rebalances the rest.
    fn remove_member(&mut self, member_id: &str, now: Instant) {
        if self.remove_member_entry(member_id).is_none() {
            return;
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(now),
            GroupState::PreparingRebalance => {
                if self.members.is_empty() {
                    self.generation += 1;
                    self.become_empty();
                } else {
                    self.try_complete_join(now);
                }
            }
            GroupState::Empty => {}
        }
    }

    /// Expires sessions and enforces rebalance deadlines. Returns the members expired.
    pub fn tick(&mut self, now: Instant) -> Vec<String> {
        self.pending.retain(|_, deadline| *deadline > now);
        // Members waiting in a join or sync are alive by definition; the phase deadline covers them.
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none() && m.sync_waiter.is_none() && now >= m.heartbeat_deadline)
            .map(|m| m.member_id.clone())
            .collect();
        for id in &expired {
            self.remove_member(id, now);
        }
        match self.state {
            GroupState::PreparingRebalance => self.try_complete_join(now),
            GroupState::CompletingRebalance if self.rebalance_deadline.is_some_and(|d| now >= d) => {
                // The leader (or others) never synced: drop those and start over.
                let stalled: Vec<String> =
                    self.members.values().filter(|m| m.sync_waiter.is_none()).map(|m| m.member_id.clone()).collect();
                for id in stalled {
                    self.remove_member_entry(&id);
                }
                self.prepare_rebalance(now);
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
