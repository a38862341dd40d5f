//! Unit tests of the group state machine, driven with explicit time (ms) and predictable ids.

use super::*;
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use std::collections::HashMap;
use std::time::Duration;

const SETTINGS: JoinSettings = JoinSettings { initial_rebalance_delay: Duration::from_millis(0), max_size: 1000 };

/// Ids "m1", "m2", … in order.
#[derive(Default)]
struct Counting(u32);

impl MemberIds for Counting {
    fn next_id(&mut self, _client_id: &str) -> String {
        self.0 += 1;
        format!("m{}", self.0)
    }
}

/// Drives one group: the clock, the ids, and the answers of parked requests.
struct World {
    group: Group,
    settings: JoinSettings,
    ids: Counting,
    last_waiter: u64,
    joins: HashMap<WaiterId, JoinResult>,
    syncs: HashMap<WaiterId, SyncResult>,
}

impl World {
    fn new() -> World {
        World {
            group: Group::new("g"),
            settings: SETTINGS,
            ids: Counting::default(),
            last_waiter: 0,
            joins: HashMap::new(),
            syncs: HashMap::new(),
        }
    }

    fn run<T>(&mut self, now: i64, f: impl FnOnce(&mut Group, &mut Ctx) -> T) -> T {
        let mut cx = Ctx::new(now, self.settings, &mut self.ids, &mut self.last_waiter);
        let out = f(&mut self.group, &mut cx);
        for wake in cx.wakes {
            match wake {
                Wake::Join(id, result) => assert!(self.joins.insert(id, result).is_none(), "answered twice"),
                Wake::Sync(id, result) => assert!(self.syncs.insert(id, result).is_none(), "answered twice"),
                Wake::Cancel(_) => {}
            }
        }
        out
    }

    fn join(&mut self, args: JoinArgs, now: i64) -> Answer<JoinResult> {
        self.run(now, |g, cx| g.join(args, cx))
    }

    fn sync(
        &mut self,
        member: &str,
        instance: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now: i64,
    ) -> Answer<SyncResult> {
        let generation = self.group.generation;
        self.run(now, |g, cx| g.sync(member, instance, generation, assignments, cx))
    }

    fn tick(&mut self, now: i64) -> Vec<String> {
        self.run(now, |g, cx| g.tick(cx))
    }

    fn leave(&mut self, member: &str, now: i64) -> Option<ResponseError> {
        self.run(now, |g, cx| g.leave(member, None, cx))
    }

    fn joined(&self, id: WaiterId) -> Option<&JoinResult> {
        self.joins.get(&id)
    }

    fn synced(&self, id: WaiterId) -> Option<&SyncResult> {
        self.syncs.get(&id)
    }
}

fn args(member_id: &str, instance: Option<&str>, protocols: &[&str]) -> JoinArgs {
    JoinArgs {
        member_id: member_id.to_string(),
        instance_id: instance.map(str::to_string),
        client_id: "test".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout: Duration::from_secs(10),
        rebalance_timeout: Duration::from_secs(30),
        protocol_type: "consumer".into(),
        protocols: protocols.iter().map(|p| (p.to_string(), Bytes::from(format!("meta-{p}")))).collect(),
        require_known_member_id: true,
    }
}

fn now_result<T>(answer: Answer<T>) -> T {
    match answer {
        Answer::Now(result) => result,
        Answer::Wait(_) => panic!("expected an immediate answer"),
    }
}

fn later<T>(answer: Answer<T>) -> WaiterId {
    match answer {
        Answer::Wait(id) => id,
        Answer::Now(_) => panic!("expected to wait"),
    }
}

/// A new member: MEMBER_ID_REQUIRED first (KIP-394), then a join that waits.
fn join_new(w: &mut World, protocols: &[&str], now: i64) -> (String, WaiterId) {
    let first = now_result(w.join(args("", None, protocols), now));
    assert_eq!(first.error, Some(ResponseError::MemberIdRequired));
    let waiter = later(w.join(args(&first.member_id, None, protocols), now));
    (first.member_id, waiter)
}

/// Both members synced, the leader with (empty) assignments for both.
fn sync_both(w: &mut World, leader: &str, other: &str, now: i64) {
    let _ = w.sync(other, None, vec![], now);
    let _ = w.sync(leader, None, vec![(leader.to_string(), Bytes::new()), (other.to_string(), Bytes::new())], now);
    assert_eq!(w.group.state, GroupState::Stable);
}

/// a and b in a Stable group of generation 2, a leading.
fn stable_pair(w: &mut World, now: i64) -> (String, String) {
    let (a, _) = join_new(w, &["range"], now);
    let (b, _) = join_new(w, &["range"], now);
    let _ = w.join(args(&a, None, &["range"]), now);
    sync_both(w, &a, &b, now);
    (a, b)
}

const T0: i64 = 1_000_000;

#[test]
fn two_members_join_sync_and_get_their_assignments() {
    let mut w = World::new();
    let (a, ja) = join_new(&mut w, &["range"], T0);
    assert_eq!(a, "m1", "ids come from the injected generator");
    // With no initial delay, a lone member completes the join at once.
    let first = w.joined(ja).expect("join completed").clone();
    assert_eq!((first.generation, first.leader.as_str()), (1, "m1"));
    let (b, jb) = join_new(&mut w, &["range"], T0);
    assert_eq!(w.group.state, GroupState::PreparingRebalance);
    assert!(w.joined(jb).is_none(), "b waits for a to rejoin");
    let ja = later(w.join(args(&a, None, &["range"]), T0));
    let (ra, rb) = (w.joined(ja).expect("a joined").clone(), w.joined(jb).expect("b joined").clone());
    assert_eq!((ra.generation, rb.generation), (2, 2));
    assert_eq!(ra.leader, a);
    assert_eq!(rb.leader, a);
    assert_eq!(ra.members.len(), 2, "the leader gets every member's metadata");
    assert!(rb.members.is_empty());
    let sb = later(w.sync(&b, None, vec![], T0));
    assert!(w.synced(sb).is_none(), "followers wait for the leader's assignments");
    let assignments = vec![(a.clone(), Bytes::from_static(b"A")), (b.clone(), Bytes::from_static(b"B"))];
    let sa = later(w.sync(&a, None, assignments, T0));
    assert_eq!(w.synced(sa).expect("a synced").assignment, Bytes::from_static(b"A"));
    assert_eq!(w.synced(sb).expect("b synced").assignment, Bytes::from_static(b"B"));
    assert_eq!(w.group.state, GroupState::Stable);
}

#[test]
fn a_member_joining_during_a_rebalance_is_in_the_next_generation() {
    let mut w = World::new();
    let (a, b) = stable_pair(&mut w, T0);
    // c joins: the group goes back to PreparingRebalance; nobody is answered until a and b rejoin.
    let (c, jc) = join_new(&mut w, &["range"], T0);
    assert_eq!(w.group.state, GroupState::PreparingRebalance);
    let ja = later(w.join(args(&a, None, &["range"]), T0));
    // d arrives while the rebalance is still waiting for b.
    let (d, jd) = join_new(&mut w, &["range"], T0);
    assert!(w.joined(jc).is_none() && w.joined(ja).is_none() && w.joined(jd).is_none());
    let jb = later(w.join(args(&b, None, &["range"]), T0));
    for id in [ja, jb, jc, jd] {
        let result = w.joined(id).expect("everyone answered once all rejoined");
        assert_eq!(result.error, None);
        assert_eq!(result.generation, 3, "one generation for the whole rebalance");
        assert_eq!(result.leader, a, "the leader stays while it is a member");
    }
    assert_eq!(w.joined(ja).map(|r| r.members.len()), Some(4));
    assert_eq!(w.group.members.keys().cloned().collect::<Vec<_>>(), vec![a, b, c, d]);
    assert_eq!(w.group.state, GroupState::CompletingRebalance);
}

#[test]
fn a_new_leader_is_elected_when_the_leader_leaves() {
    let mut w = World::new();
    let (a, b) = stable_pair(&mut w, T0);
    assert_eq!(w.group.leader.as_deref(), Some(a.as_str()));
    assert_eq!(w.leave(&a, T0), None);
    // b alone remains; its rejoin completes the rebalance with b leading.
    let jb = later(w.join(args(&b, None, &["range"]), T0));
    let result = w.joined(jb).expect("joined").clone();
    assert_eq!((result.generation, result.leader.as_str()), (3, b.as_str()));
    assert_eq!(result.members.len(), 1);
}

#[test]
fn a_sync_waiting_when_a_rebalance_starts_gets_rebalance_in_progress() {
    let mut w = World::new();
    let (a, _) = join_new(&mut w, &["range"], T0);
    let (b, _) = join_new(&mut w, &["range"], T0);
    let _ = w.join(args(&a, None, &["range"]), T0);
    let sb = later(w.sync(&b, None, vec![], T0));
    // A third member joins before the leader synced.
    let _ = join_new(&mut w, &["range"], T0);
    assert_eq!(w.synced(sb).and_then(|r| r.error), Some(ResponseError::RebalanceInProgress));
}

#[test]
fn initial_rebalance_delay_holds_the_first_join() {
    let mut w = World::new();
    w.settings = JoinSettings { initial_rebalance_delay: Duration::from_secs(3), ..SETTINGS };
    let (_, ja) = join_new(&mut w, &["range"], T0);
    assert!(w.joined(ja).is_none(), "held for the initial delay");
    assert!(w.tick(T0 + 2_999).is_empty());
    assert!(w.joined(ja).is_none());
    w.tick(T0 + 3_000);
    assert_eq!(w.joined(ja).map(|r| r.generation), Some(1));
}

#[test]
fn fencing_errors() {
    let mut w = World::new();
    let (a, _) = join_new(&mut w, &["range"], T0);
    assert_eq!(w.group.heartbeat(&a, None, 99, T0), Some(ResponseError::IllegalGeneration));
    assert_eq!(w.group.heartbeat("nobody", None, 1, T0), Some(ResponseError::UnknownMemberId));
    assert_eq!(w.group.heartbeat(&a, None, 1, T0), None);
    // Checked before anything else, as Kafka does: no protocol in common with the group.
    let err = now_result(w.join(args("", None, &["roundrobin"]), T0));
    assert_eq!(err.error, Some(ResponseError::InconsistentGroupProtocol));
}

#[test]
fn session_expiry_removes_a_silent_member_and_rebalances() {
    let mut w = World::new();
    let (a, b) = stable_pair(&mut w, T0);
    // a keeps heartbeating, b goes silent; sessions are 10 s.
    assert_eq!(w.group.heartbeat(&a, None, w.group.generation, T0 + 8_000), None);
    assert!(w.tick(T0 + 9_999).is_empty(), "not before the session timeout");
    assert_eq!(w.tick(T0 + 10_000), vec![b.clone()]);
    assert_eq!(w.group.state, GroupState::PreparingRebalance);
    assert!(!w.group.members.contains_key(&b));
    assert_eq!(w.group.heartbeat(&a, None, w.group.generation, T0 + 10_000), Some(ResponseError::RebalanceInProgress));
    // a's own session runs from its last heartbeat (T0 + 10 s).
    assert!(w.tick(T0 + 19_999).is_empty());
    assert_eq!(w.tick(T0 + 20_000), vec![a]);
}

#[test]
fn the_last_expiring_member_empties_the_group() {
    let mut w = World::new();
    let (a, b) = stable_pair(&mut w, T0);
    let mut expired = w.tick(T0 + 10_000);
    expired.sort();
    assert_eq!(expired, vec![a, b]);
    assert_eq!(w.group.state, GroupState::Empty);
    assert!(w.group.members.is_empty());
}

#[test]
fn leave_rebalances_at_once_and_last_leave_empties() {
    let mut w = World::new();
    let (a, b) = stable_pair(&mut w, T0);
    assert_eq!(w.leave(&b, T0), None);
    assert_eq!(w.group.state, GroupState::PreparingRebalance);
    assert_eq!(w.leave(&b, T0), Some(ResponseError::UnknownMemberId));
    assert_eq!(w.leave(&a, T0), None);
    assert_eq!(w.group.state, GroupState::Empty);
}

#[test]
fn static_member_restart_keeps_its_assignment_without_rebalance() {
    let mut w = World::new();
    let j1 = later(w.join(args("", Some("web-1"), &["range"]), T0));
    let first = w.joined(j1).expect("static members skip MEMBER_ID_REQUIRED").clone();
    let j2 = later(w.join(args("", Some("web-2"), &["range"]), T0));
    let _ = w.join(args(&first.member_id, Some("web-1"), &["range"]), T0);
    let second = w.joined(j2).expect("joined").clone();
    let (leader, follower) = (first.member_id.clone(), second.member_id.clone());
    let generation = w.group.generation;
    let _ = w.sync(&follower, Some("web-2"), vec![], T0);
    let assignments = vec![(leader.clone(), Bytes::from_static(b"L")), (follower.clone(), Bytes::from_static(b"F"))];
    let _ = w.sync(&leader, Some("web-1"), assignments, T0);
    assert_eq!(w.group.state, GroupState::Stable);
    // web-2 restarts: it rejoins with no member id and gets the same generation back.
    let rejoined = now_result(w.join(args("", Some("web-2"), &["range"]), T0));
    assert_eq!(rejoined.error, None);
    assert_eq!(rejoined.generation, generation, "no rebalance for a static restart");
    assert_eq!(w.group.state, GroupState::Stable);
    let sync = now_result(w.sync(&rejoined.member_id, Some("web-2"), vec![], T0));
    assert_eq!(sync.assignment, Bytes::from_static(b"F"));
    // The old incarnation is fenced.
    assert_eq!(w.group.heartbeat(&follower, Some("web-2"), generation, T0), Some(ResponseError::FencedInstanceId));
}

#[test]
fn rebalance_timeout_drops_members_that_do_not_rejoin() {
    let mut w = World::new();
    let (a, b) = stable_pair(&mut w, T0);
    // b triggers a rebalance by rejoining with new protocols; a never rejoins.
    let jb = later(w.join(args(&b, None, &["range", "roundrobin"]), T0));
    // a stays alive (heartbeats) but never rejoins.
    for at in [5_000, 14_000, 23_000] {
        let _ = w.group.heartbeat(&a, None, w.group.generation, T0 + at);
        assert!(w.tick(T0 + at).is_empty());
    }
    w.tick(T0 + 29_999);
    assert!(w.joined(jb).is_none(), "not before the rebalance timeout");
    w.tick(T0 + 30_000);
    let joined = w.joined(jb).expect("join completes at the rebalance deadline");
    assert_eq!(joined.error, None);
    assert_eq!(joined.leader, b);
    assert!(!w.group.members.contains_key(&a));
}

#[test]
fn a_full_group_refuses_new_members_but_keeps_its_own() {
    let mut w = World::new();
    w.settings = JoinSettings { max_size: 2, ..SETTINGS };
    let first = now_result(w.join(args("", None, &["range"]), T0));
    assert_eq!(first.error, Some(ResponseError::MemberIdRequired));
    let second = now_result(w.join(args("", None, &["range"]), T0));
    assert_eq!(second.error, Some(ResponseError::MemberIdRequired));
    // Two ids handed out (pending): a third client is refused, as Kafka's group.max.size does.
    let third = now_result(w.join(args("", None, &["range"]), T0));
    assert_eq!(third.error, Some(ResponseError::GroupMaxSizeReached));
    // The pending ones still join with their ids.
    let _ = later(w.join(args(&first.member_id, None, &["range"]), T0));
    assert!(w.group.members.contains_key(&first.member_id));
}
