//! Unit tests of the group state machine, driven with explicit time.

use super::state::*;
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

const SETTINGS: JoinSettings = JoinSettings { initial_rebalance_delay: Duration::from_millis(0), max_size: 1000 };

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

fn now_result<T>(reply: Reply<T>) -> T {
    match reply {
        Reply::Now(result) => result,
        Reply::Later(_) => panic!("expected an immediate answer"),
    }
}

fn later<T>(reply: Reply<T>) -> oneshot::Receiver<T> {
    match reply {
        Reply::Later(rx) => rx,
        Reply::Now(_) => panic!("expected to wait"),
    }
}

/// A new member: MEMBER_ID_REQUIRED first (KIP-394), then a join that waits.
fn join_new(group: &mut Group, protocols: &[&str], now: Instant) -> (String, oneshot::Receiver<JoinResult>) {
    let first = now_result(group.join(args("", None, protocols), now, SETTINGS));
    assert_eq!(first.error, Some(ResponseError::MemberIdRequired));
    let rx = later(group.join(args(&first.member_id, None, protocols), now, SETTINGS));
    (first.member_id, rx)
}

#[test]
fn two_members_join_sync_and_get_their_assignments() {
    let now = Instant::now();
    let mut group = Group::new("g");
    let (a, mut rx_a) = join_new(&mut group, &["range"], now);
    // With no initial delay, a lone member completes the join at once.
    let ja = rx_a.try_recv().expect("join completed");
    assert_eq!((ja.generation, ja.leader.as_str()), (1, a.as_str()));
    let (b, mut rx_b) = join_new(&mut group, &["range"], now);
    assert_eq!(group.state, GroupState::PreparingRebalance);
    assert!(rx_b.try_recv().is_err(), "b waits for a to rejoin");
    let mut rx_a = later(group.join(args(&a, None, &["range"]), now, SETTINGS));
    let (ja, jb) = (rx_a.try_recv().expect("a joined"), rx_b.try_recv().expect("b joined"));
    assert_eq!((ja.generation, jb.generation), (2, 2));
    assert_eq!(ja.leader, a);
    assert_eq!(ja.members.len(), 2, "the leader gets every member's metadata");
    assert!(jb.members.is_empty());
    let mut sync_b = later(group.sync(&b, None, 2, vec![], now));
    let assignments = vec![(a.clone(), Bytes::from_static(b"A")), (b.clone(), Bytes::from_static(b"B"))];
    let mut sync_a = later(group.sync(&a, None, 2, assignments, now));
    assert_eq!(sync_a.try_recv().expect("a synced").assignment, Bytes::from_static(b"A"));
    assert_eq!(sync_b.try_recv().expect("b synced").assignment, Bytes::from_static(b"B"));
    assert_eq!(group.state, GroupState::Stable);
}

#[test]
fn fencing_errors() {
    let now = Instant::now();
    let mut group = Group::new("g");
    let (a, _rx) = join_new(&mut group, &["range"], now);
    assert_eq!(group.heartbeat(&a, None, 99, now), Some(ResponseError::IllegalGeneration));
    assert_eq!(group.heartbeat("nobody", None, 1, now), Some(ResponseError::UnknownMemberId));
    assert_eq!(group.heartbeat(&a, None, 1, now), None);
    // Checked before anything else, as Kafka does: no protocol in common with the group.
    let err = now_result(group.join(args("", None, &["roundrobin"]), now, SETTINGS));
    assert_eq!(err.error, Some(ResponseError::InconsistentGroupProtocol));
}

#[test]
fn session_expiry_removes_a_silent_member_and_rebalances() {
    let start = Instant::now();
    let mut group = Group::new("g");
    let (a, _) = join_new(&mut group, &["range"], start);
    let (b, _) = join_new(&mut group, &["range"], start);
    let _ = group.join(args(&a, None, &["range"]), start, SETTINGS);
    now_result_sync(&mut group, &a, &b, start);
    // a keeps heartbeating, b goes silent.
    let later_time = start + Duration::from_secs(8);
    assert_eq!(group.heartbeat(&a, None, group.generation, later_time), None);
    let expired = group.tick(start + Duration::from_secs(11));
    assert_eq!(expired, vec![b.clone()]);
    assert_eq!(group.state, GroupState::PreparingRebalance);
    assert_eq!(
        group.heartbeat(&a, None, group.generation, start + Duration::from_secs(11)),
        Some(ResponseError::RebalanceInProgress)
    );
}

fn now_result_sync(group: &mut Group, leader: &str, other: &str, now: Instant) {
    let generation = group.generation;
    let _ = group.sync(other, None, generation, vec![], now);
    let _ = group.sync(
        leader,
        None,
        generation,
        vec![(leader.to_string(), Bytes::new()), (other.to_string(), Bytes::new())],
        now,
    );
    assert_eq!(group.state, GroupState::Stable);
}

#[test]
fn leave_rebalances_at_once_and_last_leave_empties() {
    let now = Instant::now();
    let mut group = Group::new("g");
    let (a, _) = join_new(&mut group, &["range"], now);
    let (b, _) = join_new(&mut group, &["range"], now);
    let _ = group.join(args(&a, None, &["range"]), now, SETTINGS);
    now_result_sync(&mut group, &a, &b, now);
    assert_eq!(group.leave(&b, None, now), None);
    assert_eq!(group.state, GroupState::PreparingRebalance);
    assert_eq!(group.leave(&b, None, now), Some(ResponseError::UnknownMemberId));
    assert_eq!(group.leave(&a, None, now), None);
    assert_eq!(group.state, GroupState::Empty);
}

#[test]
fn static_member_restart_keeps_its_assignment_without_rebalance() {
    let now = Instant::now();
    let mut group = Group::new("g");
    let mut rx = later(group.join(args("", Some("web-1"), &["range"]), now, SETTINGS));
    let first = rx.try_recv().expect("static members skip MEMBER_ID_REQUIRED");
    let mut other = later(group.join(args("", Some("web-2"), &["range"]), now, SETTINGS));
    let _ = group.join(args(&first.member_id, Some("web-1"), &["range"]), now, SETTINGS);
    let second = other.try_recv().expect("joined");
    let (leader, follower) = (first.member_id.clone(), second.member_id.clone());
    let generation = group.generation;
    let _ = group.sync(&follower, Some("web-2"), generation, vec![], now);
    let _ = group.sync(
        &leader,
        Some("web-1"),
        generation,
        vec![(leader.clone(), Bytes::from_static(b"L")), (follower.clone(), Bytes::from_static(b"F"))],
        now,
    );
    assert_eq!(group.state, GroupState::Stable);
    // web-2 restarts: it rejoins with no member id and gets the same generation back.
    let rejoined = now_result(group.join(args("", Some("web-2"), &["range"]), now, SETTINGS));
    assert_eq!(rejoined.error, None);
    assert_eq!(rejoined.generation, generation, "no rebalance for a static restart");
    assert_eq!(group.state, GroupState::Stable);
    let sync = now_result(group.sync(&rejoined.member_id, Some("web-2"), generation, vec![], now));
    assert_eq!(sync.assignment, Bytes::from_static(b"F"));
    // The old incarnation is fenced.
    assert_eq!(group.heartbeat(&follower, Some("web-2"), generation, now), Some(ResponseError::FencedInstanceId));
}

#[test]
fn rebalance_timeout_drops_members_that_do_not_rejoin() {
    let now = Instant::now();
    let mut group = Group::new("g");
    let (a, _) = join_new(&mut group, &["range"], now);
    let (b, _) = join_new(&mut group, &["range"], now);
    let _ = group.join(args(&a, None, &["range"]), now, SETTINGS);
    now_result_sync(&mut group, &a, &b, now);
    // b triggers a rebalance by rejoining with new protocols; a never rejoins.
    let mut rx_b = later(group.join(args(&b, None, &["range", "roundrobin"]), now, SETTINGS));
    let _ = group.heartbeat(&a, None, group.generation, now + Duration::from_secs(5));
    group.tick(now + Duration::from_secs(31));
    let joined = rx_b.try_recv().expect("join completes at the rebalance deadline");
    assert_eq!(joined.error, None);
    assert_eq!(joined.leader, b);
    assert!(!group.members.contains_key(&a));
}

#[test]
fn a_full_group_refuses_new_members_but_keeps_its_own() {
    let now = Instant::now();
    let mut group = Group::new("g");
    let small = JoinSettings { max_size: 2, ..SETTINGS };
    let first = now_result(group.join(args("", None, &["range"]), now, small));
    assert_eq!(first.error, Some(ResponseError::MemberIdRequired));
    let second = now_result(group.join(args("", None, &["range"]), now, small));
    assert_eq!(second.error, Some(ResponseError::MemberIdRequired));
    // Two ids handed out (pending): a third client is refused, as Kafka's group.max.size does.
    let third = now_result(group.join(args("", None, &["range"]), now, small));
    assert_eq!(third.error, Some(ResponseError::GroupMaxSizeReached));
    // The pending ones still join with their ids.
    let _rx = later(group.join(args(&first.member_id, None, &["range"]), now, small));
    assert!(group.members.contains_key(&first.member_id));
}
