//! Joining and syncing: JoinGroup (new, known and static members), the rebalance phases and
//! SyncGroup, as transitions of [`Group`] that park and wake requests through the [`Ctx`].

use super::{Ctx, Group, Member};
use crate::group::effects::{Answer, Wake};
use crate::group::types::{GroupState, JoinArgs, JoinResult, SyncResult};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use std::collections::HashMap;
use std::time::Duration;

impl Group {
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
    pub fn join(&mut self, args: JoinArgs, cx: &mut Ctx) -> Answer<JoinResult> {
        // A member of a non-empty group must share the protocol type and at least one protocol.
        if !self.members.is_empty() {
            let type_matches = self.protocol_type.as_deref() == Some(args.protocol_type.as_str());
            let common = self.common_protocols().unwrap_or_default();
            let shares = args.protocols.iter().any(|(n, _)| common.contains(n));
            let only_member = self.members.len() == 1 && self.members.contains_key(&args.member_id);
            if !only_member && (!type_matches || !shares) {
                return Answer::Now(JoinResult::error(ResponseError::InconsistentGroupProtocol, &args.member_id));
            }
        }
        if args.protocols.is_empty() {
            return Answer::Now(JoinResult::error(ResponseError::InconsistentGroupProtocol, &args.member_id));
        }
        if args.member_id.is_empty() {
            self.join_unknown(args, cx)
        } else {
            self.join_known(args, cx)
        }
    }

    fn join_unknown(&mut self, args: JoinArgs, cx: &mut Ctx) -> Answer<JoinResult> {
        // Pending ids count too: each holds memory until its session timeout passes.
        let replaces_static = args.instance_id.as_ref().is_some_and(|i| self.static_members.contains_key(i));
        if !replaces_static && self.members.len() + self.pending.len() >= cx.settings.max_size {
            return Answer::Now(JoinResult::error(ResponseError::GroupMaxSizeReached, &args.member_id));
        }
        let new_id = cx.ids.next_id(&args.client_id);
        if let Some(instance) = args.instance_id.clone() {
            if let Some(old_id) = self.static_members.get(&instance).cloned() {
                return self.replace_static_member(&old_id, new_id, args, cx);
            }
            self.static_members.insert(instance, new_id.clone());
            return self.add_and_join(new_id, args, cx);
        }
        if args.require_known_member_id {
            // KIP-394: remember the id; the member must come back with it.
            self.pending.insert(new_id.clone(), cx.after(args.session_timeout));
            return Answer::Now(JoinResult::error(ResponseError::MemberIdRequired, &new_id));
        }
        self.add_and_join(new_id, args, cx)
    }

    fn replace_static_member(
        &mut self,
        old_id: &str,
        new_id: String,
        args: JoinArgs,
        cx: &mut Ctx,
    ) -> Answer<JoinResult> {
        let Some(mut member) = self.members.remove(old_id) else {
            return self.add_and_join(new_id, args, cx);
        };
        // The previous incarnation is fenced: whatever it is waiting for fails.
        if let Some(waiter) = member.join_waiter.take() {
            cx.wakes.push(Wake::Join(waiter, JoinResult::error(ResponseError::FencedInstanceId, old_id)));
        }
        if let Some(waiter) = member.sync_waiter.take() {
            cx.wakes.push(Wake::Sync(waiter, SyncResult::error(ResponseError::FencedInstanceId)));
        }
        let protocols_unchanged = member.same_protocols(&args.protocols);
        member.member_id = new_id.clone();
        member.client_id = args.client_id.clone();
        member.client_host = args.client_host.clone();
        member.session_timeout = args.session_timeout;
        member.rebalance_timeout = args.rebalance_timeout;
        member.set_protocols(args.protocols.clone());
        member.touch(cx.now);
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
            return Answer::Now(self.current_join_result(&new_id, false));
        }
        self.join_known(JoinArgs { member_id: new_id, ..args }, cx)
    }

    fn add_and_join(&mut self, member_id: String, args: JoinArgs, cx: &mut Ctx) -> Answer<JoinResult> {
        let protocol_type = args.protocol_type.clone();
        let mut member = Member::from_join(member_id.clone(), args, Bytes::new(), cx.now);
        let waiter = cx.park();
        member.join_waiter = Some(waiter);
        self.members.insert(member_id, member);
        if self.protocol_type.is_none() || self.members.len() == 1 {
            self.protocol_type = Some(protocol_type);
        }
        self.start_or_continue_rebalance(cx);
        self.try_complete_join(cx);
        Answer::Wait(waiter)
    }

    fn join_known(&mut self, args: JoinArgs, cx: &mut Ctx) -> Answer<JoinResult> {
        let member_id = args.member_id.clone();
        if self.pending.remove(&member_id).is_some() {
            return self.add_and_join(member_id, args, cx);
        }
        if let Some(instance) = &args.instance_id {
            if self.static_members.get(instance).is_some_and(|id| id != &member_id) {
                return Answer::Now(JoinResult::error(ResponseError::FencedInstanceId, &member_id));
            }
        }
        let state = self.state;
        let is_leader = self.leader.as_deref() == Some(member_id.as_str());
        let Some(member) = self.members.get_mut(&member_id) else {
            return Answer::Now(JoinResult::error(ResponseError::UnknownMemberId, &member_id));
        };
        let protocols_unchanged = member.same_protocols(&args.protocols);
        member.set_protocols(args.protocols);
        member.session_timeout = args.session_timeout;
        member.rebalance_timeout = args.rebalance_timeout;
        member.client_id = args.client_id;
        member.client_host = args.client_host;
        member.touch(cx.now);
        // A member that missed its JoinGroup response asks again: answer from the current generation.
        let replay = match state {
            GroupState::CompletingRebalance => protocols_unchanged,
            GroupState::Stable => protocols_unchanged && !is_leader,
            _ => false,
        };
        if replay {
            return Answer::Now(self.current_join_result(&member_id, is_leader));
        }
        let waiter = cx.park();
        if let Some(waiting) = member.join_waiter.replace(waiter) {
            cx.wakes.push(Wake::Join(waiting, JoinResult::error(ResponseError::RebalanceInProgress, &member_id)));
        }
        self.start_or_continue_rebalance(cx);
        self.try_complete_join(cx);
        Answer::Wait(waiter)
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

    fn start_or_continue_rebalance(&mut self, cx: &mut Ctx) {
        match self.state {
            GroupState::PreparingRebalance => {}
            GroupState::Empty => {
                self.state = GroupState::PreparingRebalance;
                let delay = cx.settings.initial_rebalance_delay.min(self.max_rebalance_timeout());
                self.initial_delay_until = Some(cx.after(delay));
                self.rebalance_deadline = Some(cx.after(self.max_rebalance_timeout()));
            }
            GroupState::CompletingRebalance | GroupState::Stable => self.prepare_rebalance(cx),
        }
    }

    /// Moves to PreparingRebalance: every member must rejoin within the rebalance timeout.
    pub(super) fn prepare_rebalance(&mut self, cx: &mut Ctx) {
        if self.state == GroupState::CompletingRebalance {
            for member in self.members.values_mut() {
                if let Some(waiter) = member.sync_waiter.take() {
                    cx.wakes.push(Wake::Sync(waiter, SyncResult::error(ResponseError::RebalanceInProgress)));
                }
            }
        }
        if self.members.is_empty() {
            self.become_empty();
            return;
        }
        self.state = GroupState::PreparingRebalance;
        self.initial_delay_until = None;
        self.rebalance_deadline = Some(cx.after(self.max_rebalance_timeout()));
    }

    pub(super) fn become_empty(&mut self) {
        self.state = GroupState::Empty;
        self.protocol = None;
        self.leader = None;
        self.rebalance_deadline = None;
        self.initial_delay_until = None;
        self.dirty = true;
    }

    /// Completes the join phase once every member has rejoined (after the initial delay for a
    /// new group), or the rebalance timeout passed.
    pub(super) fn try_complete_join(&mut self, cx: &mut Ctx) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let now = cx.now;
        let everyone = !self.members.is_empty() && self.members.values().all(|m| m.join_waiter.is_some());
        let delay_over = self.initial_delay_until.is_none_or(|until| now >= until);
        let timed_out = self.rebalance_deadline.is_some_and(|deadline| now >= deadline);
        if !((everyone && delay_over) || timed_out) {
            return;
        }
        // Members that did not rejoin in time leave the group.
        let missing: Vec<String> =
            self.members.values().filter(|m| m.join_waiter.is_none()).map(|m| m.member_id.clone()).collect();
        for id in missing {
            self.remove_member_entry(&id, cx);
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
        self.rebalance_deadline = Some(cx.after(self.max_rebalance_timeout()));
        let leader = self.leader.clone().unwrap_or_default();
        let all: Vec<(String, Option<String>, Bytes)> = self
            .members
            .values()
            .map(|m| (m.member_id.clone(), m.instance_id.clone(), m.metadata_for(&protocol)))
            .collect();
        let (generation, protocol_type) = (self.generation, self.protocol_type.clone());
        for member in self.members.values_mut() {
            member.assignment = Bytes::new();
            member.touch(now);
            if let Some(waiter) = member.join_waiter.take() {
                let result = JoinResult {
                    error: None,
                    generation,
                    protocol_type: protocol_type.clone(),
                    protocol_name: Some(protocol.clone()),
                    leader: leader.clone(),
                    member_id: member.member_id.clone(),
                    members: if member.member_id == leader { all.clone() } else { Vec::new() },
                };
                cx.wakes.push(Wake::Join(waiter, result));
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

    /// Handles SyncGroup; `assignments` are only read from the leader.
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
        cx: &mut Ctx,
    ) -> Answer<SyncResult> {
        if let Err(e) = self.validate_member(member_id, instance_id, generation) {
            return Answer::Now(SyncResult::error(e));
        }
        match self.state {
            GroupState::Empty => Answer::Now(SyncResult::error(ResponseError::UnknownMemberId)),
            GroupState::PreparingRebalance => Answer::Now(SyncResult::error(ResponseError::RebalanceInProgress)),
            GroupState::Stable => {
                let assignment = self.members.get(member_id).map(|m| m.assignment.clone()).unwrap_or_default();
                if let Some(member) = self.members.get_mut(member_id) {
                    member.touch(cx.now);
                }
                Answer::Now(self.sync_result(assignment))
            }
            GroupState::CompletingRebalance => {
                let waiter = cx.park();
                if let Some(member) = self.members.get_mut(member_id) {
                    member.touch(cx.now);
                    // A second SyncGroup from the same member replaces the first, whose channel
                    // is dropped (the handler answers it as an unknown member).
                    if let Some(old) = member.sync_waiter.replace(waiter) {
                        cx.wakes.push(Wake::Cancel(old));
                    }
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
                            let answer = SyncResult { assignment: member.assignment.clone(), ..result.clone() };
                            cx.wakes.push(Wake::Sync(waiter, answer));
                        }
                    }
                }
                Answer::Wait(waiter)
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
}
