//! Unit tests of the fencing decisions, with instants built from one base (no sleeping).

use super::*;
use crate::controller::state_machine::{BrokerState, PartitionState, TopicState};
use std::collections::BTreeMap;

const TIMEOUT: Duration = Duration::from_secs(9);

fn broker(id: i32, epoch: i64, fenced: bool) -> BrokerState {
    BrokerState { id, host: "localhost".into(), port: 9092, rack: None, epoch, fenced, listeners: vec![] }
}

fn state(brokers: &[BrokerState]) -> MetadataState {
    MetadataState { brokers: brokers.iter().map(|b| (b.id, b.clone())).collect(), ..Default::default() }
}

fn beat(id: i32, epoch: i64, caught_up: bool) -> HeartbeatRequest {
    HeartbeatRequest { broker_id: id, broker_epoch: epoch, caught_up, offline_replicas: vec![] }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn a_silent_broker_is_fenced_after_the_session_timeout_and_not_before() {
    let t0 = Instant::now();
    let state = state(&[broker(1, 10, false), broker(2, 11, false)]);
    let mut leases = Leases::new(TIMEOUT, None);
    leases.observe_term(1);
    assert_eq!(leases.heartbeat(&state, &beat(1, 10, true), t0), HeartbeatVerdict::Renewed { fenced: false });
    assert_eq!(leases.heartbeat(&state, &beat(2, 11, true), t0), HeartbeatVerdict::Renewed { fenced: false });
    // Broker 1 keeps heartbeating, broker 2 goes silent.
    for s in [3, 6, 8] {
        assert_eq!(
            leases.heartbeat(&state, &beat(1, 10, true), t0 + secs(s)),
            HeartbeatVerdict::Renewed { fenced: false }
        );
        assert!(leases.expired(&state, t0 + secs(s)).is_empty(), "nobody expired at {s} s");
    }
    // Exactly at the timeout the session is still alive; just past it, it is over.
    assert!(leases.expired(&state, t0 + TIMEOUT).is_empty());
    assert_eq!(leases.expired(&state, t0 + TIMEOUT + Duration::from_millis(1)), vec![2]);
    // Broker 1 (last heard at 8 s) outlives broker 2.
    assert_eq!(leases.expired(&state, t0 + secs(17)), vec![2]);
    assert_eq!(leases.expired(&state, t0 + secs(17) + Duration::from_millis(1)), vec![1, 2]);
}

#[test]
fn fenced_brokers_are_not_fenced_again() {
    let t0 = Instant::now();
    let state = state(&[broker(1, 10, true)]);
    let mut leases = Leases::new(TIMEOUT, None);
    leases.observe_term(1);
    assert!(leases.expired(&state, t0).is_empty());
    assert!(leases.expired(&state, t0 + secs(60)).is_empty());
}

#[test]
fn a_caught_up_heartbeat_unfences_and_a_lagging_one_does_not() {
    let t0 = Instant::now();
    let state = state(&[broker(1, 10, true)]);
    let mut leases = Leases::new(TIMEOUT, None);
    leases.observe_term(1);
    assert_eq!(leases.heartbeat(&state, &beat(1, 10, false), t0), HeartbeatVerdict::Renewed { fenced: true });
    assert_eq!(leases.heartbeat(&state, &beat(1, 10, true), t0), HeartbeatVerdict::Unfence);
    // Once unfenced (the proposal applied), its lease runs from that last heartbeat.
    let unfenced = MetadataState { brokers: [(1, broker(1, 10, false))].into_iter().collect(), ..state };
    assert!(leases.expired(&unfenced, t0 + TIMEOUT).is_empty());
    assert_eq!(leases.expired(&unfenced, t0 + secs(10)), vec![1]);
}

#[test]
fn unknown_brokers_and_stale_epochs_must_reregister() {
    let t0 = Instant::now();
    let state = state(&[broker(1, 10, false)]);
    let mut leases = Leases::new(TIMEOUT, None);
    leases.observe_term(1);
    assert_eq!(leases.heartbeat(&state, &beat(7, 10, true), t0), HeartbeatVerdict::Reregister);
    assert_eq!(leases.heartbeat(&state, &beat(1, 9, true), t0), HeartbeatVerdict::Reregister);
    // A stale incarnation's heartbeat does not keep the broker alive.
    assert!(leases.expired(&state, t0).is_empty());
    let _ = leases.heartbeat(&state, &beat(1, 9, true), t0 + secs(8));
    assert_eq!(leases.expired(&state, t0 + secs(10)), vec![1]);
}

#[test]
fn a_new_term_gives_every_broker_a_full_session() {
    let t0 = Instant::now();
    let state = state(&[broker(1, 10, false)]);
    let mut leases = Leases::new(TIMEOUT, None);
    leases.observe_term(1);
    let _ = leases.heartbeat(&state, &beat(1, 10, true), t0);
    // Same term again: nothing forgotten, the old lease expires.
    leases.observe_term(1);
    assert_eq!(leases.expired(&state, t0 + secs(10)), vec![1]);
    // A new active controller (new term) starts every session from its first look.
    leases.observe_term(2);
    assert!(leases.expired(&state, t0 + secs(10)).is_empty(), "no false fencing after a controller change");
    assert!(leases.expired(&state, t0 + secs(19)).is_empty());
    assert_eq!(leases.expired(&state, t0 + secs(20)), vec![1]);
}

#[test]
fn a_broker_never_heard_from_gets_a_session_before_being_fenced() {
    let t0 = Instant::now();
    let mut leases = Leases::new(TIMEOUT, None);
    leases.observe_term(1);
    let one = state(&[broker(1, 10, false)]);
    assert!(leases.expired(&one, t0).is_empty());
    // Broker 2 registers later: its session starts when the controller first sees it.
    let two = state(&[broker(1, 10, false), broker(2, 11, false)]);
    let _ = leases.heartbeat(&two, &beat(1, 10, true), t0 + secs(5));
    assert!(leases.expired(&two, t0 + secs(5)).is_empty());
    let _ = leases.heartbeat(&two, &beat(1, 10, true), t0 + secs(12));
    assert!(leases.expired(&two, t0 + secs(14)).is_empty());
    assert_eq!(leases.expired(&two, t0 + secs(15)), vec![2]);
}

#[test]
fn stale_learners_are_the_unregistered_brokers() {
    let mut state = state(&[broker(1, 10, false)]);
    state.removed_brokers = [4, 5].into_iter().collect();
    let stale = stale_learners([1, 4, 6, u64::MAX], &state);
    assert_eq!(stale.into_iter().collect::<Vec<_>>(), vec![4]);
}

#[test]
fn preferred_leaders_return_only_when_live_and_in_sync() {
    let partition = |leader: i32, isr: Vec<i32>| PartitionState {
        replicas: vec![1, 2],
        isr,
        leader,
        leader_epoch: 3,
        partition_epoch: 3,
        adding_replicas: vec![],
        removing_replicas: vec![],
        offline_replicas: vec![],
    };
    let topic = TopicState {
        topic_id: uuid::Uuid::nil(),
        configs: BTreeMap::new(),
        partitions: vec![partition(2, vec![1, 2]), partition(2, vec![2]), partition(1, vec![1, 2])],
    };
    let mut state = state(&[broker(1, 10, false), broker(2, 11, false)]);
    state.topics.insert("t".into(), topic);
    let elections = preferred_leader_elections(&state);
    assert_eq!(elections.len(), 1, "{elections:?}");
    assert!(matches!(
        &elections[0],
        MetadataCommand::ElectLeader { topic, partition: 0, leader: 1, leader_epoch: 3 } if topic == "t"
    ));
    state.brokers.insert(1, broker(1, 10, true));
    assert!(preferred_leader_elections(&state).is_empty(), "a fenced preferred replica does not lead");
}

#[test]
fn a_heartbeat_reports_only_replicas_not_yet_marked_offline_and_its_own() {
    use crate::controller::state_machine::{MetadataCommand, PartitionAssignment};
    let mut state = MetadataState::default();
    for id in 1..=2 {
        state
            .apply(&MetadataCommand::RegisterBroker { id, host: "h".into(), port: 1, rack: None, listeners: vec![] })
            .unwrap();
        state.apply(&MetadataCommand::UnfenceBroker { id }).unwrap();
    }
    state
        .apply(&MetadataCommand::CreateTopic {
            name: "t".into(),
            topic_id: uuid::Uuid::new_v4(),
            partitions: vec![PartitionAssignment { replicas: vec![1, 2] }, PartitionAssignment { replicas: vec![2] }],
            configs: Default::default(),
        })
        .unwrap();
    let mut req = beat(1, state.brokers[&1].epoch, true);
    req.offline_replicas = vec![("t".into(), 0), ("t".into(), 1), ("nope".into(), 0)];
    // Partition 1 is not broker 1's; the unknown topic is ignored.
    assert_eq!(newly_offline(&state, &req), vec![("t".to_string(), 0)]);
    state
        .apply(&MetadataCommand::MarkReplicasOffline {
            id: 1,
            broker_epoch: req.broker_epoch,
            partitions: newly_offline(&state, &req),
        })
        .unwrap();
    assert!(newly_offline(&state, &req).is_empty(), "already recorded: no new proposal");
}

const OVERDUE: Duration = Duration::from_millis(750);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn brokers_not_heard_from_this_term_are_probed_at_once_and_then_only_when_late() {
    let t0 = Instant::now();
    let state = state(&[broker(1, 10, false), broker(2, 11, false), broker(3, 12, true)]);
    let mut leases = Leases::new(TIMEOUT, Some(OVERDUE));
    leases.observe_term(1);
    // A new active controller knows nobody's heartbeat: every unfenced broker is probed (a live
    // one answers the probe, so this costs a connection, not a fencing). Fenced ones are not.
    assert_eq!(leases.to_probe(&state, t0), vec![1, 2]);
    // Not again before the probe interval.
    assert!(leases.to_probe(&state, t0 + ms(100)).is_empty());
    let _ = leases.heartbeat(&state, &beat(1, 10, true), t0 + ms(200));
    let _ = leases.heartbeat(&state, &beat(2, 11, true), t0 + ms(200));
    assert!(leases.to_probe(&state, t0 + ms(400)).is_empty(), "heartbeating brokers are left alone");
    // Broker 2 keeps beating every 500 ms; broker 1 misses its beats.
    for at in [700, 1200] {
        let _ = leases.heartbeat(&state, &beat(2, 11, true), t0 + ms(at));
    }
    assert!(leases.to_probe(&state, t0 + ms(950)).is_empty(), "750 ms late is not yet overdue");
    assert_eq!(leases.to_probe(&state, t0 + ms(951)), vec![1]);
    assert!(leases.to_probe(&state, t0 + ms(1100)).is_empty());
    assert_eq!(leases.to_probe(&state, t0 + ms(1201)), vec![1], "probed again after the interval");
}

#[test]
fn a_closed_heartbeat_connection_makes_a_broker_a_suspect_until_it_beats_again() {
    let t0 = Instant::now();
    let state = state(&[broker(1, 10, false)]);
    let mut leases = Leases::new(TIMEOUT, Some(OVERDUE));
    leases.observe_term(1);
    let _ = leases.heartbeat(&state, &beat(1, 10, true), t0);
    assert!(leases.to_probe(&state, t0 + ms(10)).is_empty());
    leases.connection_lost(1);
    assert_eq!(leases.to_probe(&state, t0 + ms(20)), vec![1], "no need to wait for a missed beat");
    let _ = leases.heartbeat(&state, &beat(1, 10, true), t0 + ms(300));
    assert!(leases.to_probe(&state, t0 + ms(600)).is_empty(), "a heartbeat clears the suspicion");
}

#[test]
fn a_probe_fences_only_a_broker_silent_since_it_started() {
    let t0 = Instant::now();
    let live = state(&[broker(1, 10, false)]);
    let mut leases = Leases::new(TIMEOUT, Some(OVERDUE));
    leases.observe_term(1);
    let _ = leases.heartbeat(&live, &beat(1, 10, true), t0);
    assert!(leases.confirm_gone(&live, 1, t0 + ms(900)));
    // It heartbeated while the probe was out (restarted in between): it stays.
    let _ = leases.heartbeat(&live, &beat(1, 10, true), t0 + ms(950));
    assert!(!leases.confirm_gone(&live, 1, t0 + ms(900)));
    // Fenced already, or unknown: nothing to do.
    assert!(!leases.confirm_gone(&state(&[broker(1, 10, true)]), 1, t0 + ms(2000)));
    assert!(!leases.confirm_gone(&live, 7, t0));
}

#[test]
fn without_a_heartbeat_interval_nobody_is_probed() {
    let t0 = Instant::now();
    let state = state(&[broker(1, 10, false)]);
    let mut leases = Leases::new(TIMEOUT, None);
    leases.observe_term(1);
    leases.connection_lost(1);
    assert!(leases.to_probe(&state, t0 + secs(5)).is_empty());
}
