//! Rules of the metadata model.

#![allow(clippy::unwrap_used)]

use super::*;

fn reg(id: i32) -> MetadataCommand {
    MetadataCommand::RegisterBroker {
        id,
        host: "localhost".into(),
        port: 9092 + id as u16,
        rack: None,
        listeners: vec![],
    }
}

fn cluster() -> MetadataState {
    let mut s = MetadataState::default();
    for id in 1..=3 {
        s.apply(&reg(id)).unwrap();
        s.apply(&MetadataCommand::UnfenceBroker { id }).unwrap();
    }
    let a = |r: Vec<i32>| PartitionAssignment { replicas: r };
    s.apply(&MetadataCommand::CreateTopic {
        name: "t".into(),
        topic_id: Uuid::new_v4(),
        partitions: vec![a(vec![1, 2, 3]), a(vec![2, 3, 1])],
        configs: BTreeMap::new(),
    })
    .unwrap();
    s
}

fn part(s: &MetadataState, p: usize) -> &PartitionState {
    &s.topics["t"].partitions[p]
}

#[test]
fn register_assigns_increasing_epochs() {
    let mut s = MetadataState::default();
    assert_eq!(s.apply(&reg(1)).unwrap(), MetadataResponse::BrokerRegistered { broker_epoch: 0 });
    assert_eq!(s.apply(&reg(1)).unwrap(), MetadataResponse::BrokerRegistered { broker_epoch: 1 });
    assert_eq!(
        s.apply(&MetadataCommand::BrokerHeartbeat { id: 1 }).unwrap(),
        MetadataResponse::Heartbeat { broker_epoch: 1, fenced: true }
    );
    assert_eq!(s.apply(&MetadataCommand::BrokerHeartbeat { id: 9 }), Err(MetadataError::BrokerNotRegistered(9)));
}

#[test]
fn create_topic_validates() {
    let mut s = cluster();
    let p = part(&s, 0);
    assert_eq!((p.leader, p.isr.clone(), p.leader_epoch, p.partition_epoch), (1, vec![1, 2, 3], 0, 0));
    let create = |name: &str, replicas: Vec<i32>| MetadataCommand::CreateTopic {
        name: name.into(),
        topic_id: Uuid::new_v4(),
        partitions: vec![PartitionAssignment { replicas }],
        configs: BTreeMap::new(),
    };
    assert_eq!(s.apply(&create("t", vec![1])), Err(MetadataError::TopicExists("t".into())));
    assert_eq!(s.apply(&create("u", vec![7])), Err(MetadataError::BrokerNotRegistered(7)));
    assert!(matches!(s.apply(&create("u", vec![1, 1])), Err(MetadataError::InvalidRequest(_))));
    assert!(matches!(s.apply(&create("bad/name", vec![1])), Err(MetadataError::InvalidRequest(_))));
    let id = s.topics["t"].topic_id;
    let dup_id = MetadataCommand::CreateTopic {
        name: "v".into(),
        topic_id: id,
        partitions: vec![PartitionAssignment { replicas: vec![1] }],
        configs: BTreeMap::new(),
    };
    assert_eq!(s.apply(&dup_id), Err(MetadataError::TopicIdInUse(id)));
    s.apply(&MetadataCommand::CreatePartitions {
        name: "t".into(),
        new: vec![PartitionAssignment { replicas: vec![3] }],
    })
    .unwrap();
    assert_eq!(s.topics["t"].partitions.len(), 3);
    s.apply(&MetadataCommand::DeleteTopic { name: "t".into() }).unwrap();
    assert_eq!(
        s.apply(&MetadataCommand::DeleteTopic { name: "t".into() }),
        Err(MetadataError::UnknownTopic("t".into()))
    );
}

#[test]
fn change_isr_rejects_stale_partition_epoch() {
    let mut s = cluster();
    let change = |pe: i32, isr: Vec<i32>| MetadataCommand::ChangeIsr {
        topic: "t".into(),
        partition: 0,
        leader_epoch: 0,
        partition_epoch: pe,
        isr,
    };
    let r = s.apply(&change(0, vec![1, 2])).unwrap();
    assert!(matches!(r, MetadataResponse::Partition(PartitionState { partition_epoch: 1, .. })));
    // The same request again carries the now-stale epoch: INVALID_UPDATE_VERSION.
    assert_eq!(s.apply(&change(0, vec![1])), Err(MetadataError::InvalidUpdateVersion { current: 1, got: 0 }));
    // The leader must stay in the ISR, and members must be replicas.
    assert!(matches!(s.apply(&change(1, vec![2])), Err(MetadataError::IneligibleReplica(_))));
    assert!(matches!(s.apply(&change(1, vec![1, 9])), Err(MetadataError::IneligibleReplica(_))));
    let stale_leader = MetadataCommand::ChangeIsr {
        topic: "t".into(),
        partition: 0,
        leader_epoch: 5,
        partition_epoch: 1,
        isr: vec![1],
    };
    assert_eq!(s.apply(&stale_leader), Err(MetadataError::LeaderEpochMismatch { current: 0, got: 5 }));
    let unknown = MetadataCommand::ChangeIsr {
        topic: "t".into(),
        partition: 7,
        leader_epoch: 0,
        partition_epoch: 0,
        isr: vec![1],
    };
    assert!(matches!(s.apply(&unknown), Err(MetadataError::UnknownPartition { .. })));
    assert_eq!(part(&s, 0).isr, vec![1, 2]);
}

#[test]
fn fence_moves_leadership_and_shrinks_isr() {
    let mut s = cluster();
    let r = s.apply(&MetadataCommand::FenceBroker { id: 1 }).unwrap();
    assert_eq!(r, MetadataResponse::BrokerFenceChanged { partitions_changed: 2 });
    let p0 = part(&s, 0);
    assert_eq!((p0.leader, p0.isr.clone(), p0.leader_epoch, p0.partition_epoch), (2, vec![2, 3], 1, 1));
    // Partition 1 was led by 2: only the ISR changes, the leader epoch stays.
    let p1 = part(&s, 1);
    assert_eq!((p1.leader, p1.isr.clone(), p1.leader_epoch, p1.partition_epoch), (2, vec![2, 3], 0, 1));
    s.apply(&MetadataCommand::FenceBroker { id: 2 }).unwrap();
    s.apply(&MetadataCommand::FenceBroker { id: 3 }).unwrap();
    // No unclean election: the last ISR member is kept and the partition goes leaderless.
    let p0 = part(&s, 0);
    assert_eq!((p0.leader, p0.isr.clone()), (NO_LEADER, vec![3]));
    // A fenced broker cannot be elected, and a non-ISR broker neither.
    s.apply(&MetadataCommand::UnfenceBroker { id: 1 }).unwrap();
    let elect = |leader: i32, leader_epoch: i32| MetadataCommand::ElectLeader {
        topic: "t".into(),
        partition: 0,
        leader,
        leader_epoch,
    };
    let epoch = part(&s, 0).leader_epoch;
    assert!(matches!(s.apply(&elect(1, epoch)), Err(MetadataError::IneligibleReplica(_))));
    // The ISR's last member coming back takes leadership again.
    let r = s.apply(&MetadataCommand::UnfenceBroker { id: 3 }).unwrap();
    assert_eq!(r, MetadataResponse::BrokerFenceChanged { partitions_changed: 2 });
    assert_eq!(part(&s, 0).leader, 3);
}

#[test]
fn elect_leader_checks_epoch_and_isr() {
    let mut s = cluster();
    let elect = |leader: i32, leader_epoch: i32| MetadataCommand::ElectLeader {
        topic: "t".into(),
        partition: 0,
        leader,
        leader_epoch,
    };
    assert_eq!(s.apply(&elect(1, 0)), Err(MetadataError::ElectionNotNeeded(1)));
    let r = s.apply(&elect(2, 0)).unwrap();
    assert!(matches!(r, MetadataResponse::Partition(PartitionState { leader: 2, leader_epoch: 1, .. })));
    assert_eq!(s.apply(&elect(3, 0)), Err(MetadataError::LeaderEpochMismatch { current: 1, got: 0 }));
}

#[test]
fn producer_id_blocks_do_not_overlap() {
    let mut s = cluster();
    let alloc = |count| MetadataCommand::AllocateProducerIds { broker: 1, count };
    assert_eq!(s.apply(&alloc(1000)).unwrap(), MetadataResponse::ProducerIds { first: 0, count: 1000 });
    assert_eq!(s.apply(&alloc(10)).unwrap(), MetadataResponse::ProducerIds { first: 1000, count: 10 });
    assert!(matches!(s.apply(&alloc(0)), Err(MetadataError::InvalidRequest(_))));
    let unknown = MetadataCommand::AllocateProducerIds { broker: 42, count: 1 };
    assert_eq!(s.apply(&unknown), Err(MetadataError::BrokerNotRegistered(42)));
    assert_eq!(s.next_producer_id, 1010);
}

#[test]
fn state_round_trips_through_json() {
    let s = cluster();
    let json = serde_json::to_vec(&s).unwrap();
    assert_eq!(serde_json::from_slice::<MetadataState>(&json).unwrap(), s);
}

#[test]
fn reassignment_adds_then_switches_once_caught_up() {
    let mut s = cluster();
    s.apply(&reg(4)).unwrap();
    s.apply(&MetadataCommand::UnfenceBroker { id: 4 }).unwrap();
    // Partition 0: replicas [1,2,3], leader 1. Move to [4,2,3].
    let start = MetadataCommand::AlterReassignment { topic: "t".into(), partition: 0, target: Some(vec![4, 2, 3]) };
    s.apply(&start).unwrap();
    let p = part(&s, 0).clone();
    assert_eq!(p.replicas, vec![4, 2, 3, 1]);
    assert_eq!((p.adding_replicas.clone(), p.removing_replicas.clone()), (vec![4], vec![1]));
    assert_eq!(p.leader, 1, "the old leader keeps leading while data moves");
    // The new replica catches up: the leader adds it to the ISR, which completes the move.
    let grow = MetadataCommand::ChangeIsr {
        topic: "t".into(),
        partition: 0,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        isr: vec![1, 2, 3, 4],
    };
    s.apply(&grow).unwrap();
    let p = part(&s, 0);
    assert_eq!(p.replicas, vec![4, 2, 3]);
    assert!(!p.reassigning());
    assert_eq!(p.isr, vec![2, 3, 4]);
    assert_eq!(p.leader, 4, "leadership left the removed replica for the first in-sync target");
    assert_eq!(p.leader_epoch, 1);
}

#[test]
fn reassignment_can_be_cancelled_and_validates() {
    let mut s = cluster();
    s.apply(&reg(4)).unwrap();
    let cancel = MetadataCommand::AlterReassignment { topic: "t".into(), partition: 1, target: None };
    assert!(matches!(s.apply(&cancel), Err(MetadataError::NoReassignmentInProgress { .. })));
    let bad = MetadataCommand::AlterReassignment { topic: "t".into(), partition: 1, target: Some(vec![9]) };
    assert_eq!(s.apply(&bad), Err(MetadataError::BrokerNotRegistered(9)));
    let start = MetadataCommand::AlterReassignment { topic: "t".into(), partition: 1, target: Some(vec![2, 3, 4]) };
    s.apply(&start).unwrap();
    assert!(part(&s, 1).reassigning());
    s.apply(&cancel).unwrap();
    let p = part(&s, 1);
    assert_eq!(p.replicas, vec![2, 3, 1]);
    assert!(!p.reassigning());
    assert_eq!(p.leader, 2);
    // A pure reorder or shrink completes at once.
    let shrink = MetadataCommand::AlterReassignment { topic: "t".into(), partition: 1, target: Some(vec![3, 2]) };
    s.apply(&shrink).unwrap();
    let p = part(&s, 1);
    assert_eq!((p.replicas.clone(), p.isr.clone(), p.leader), (vec![3, 2], vec![2, 3], 2));
}

#[test]
fn unclean_election_only_when_the_topic_allows_it() {
    let mut s = MetadataState::default();
    for id in 1..=2 {
        s.apply(&reg(id)).unwrap();
        s.apply(&MetadataCommand::UnfenceBroker { id }).unwrap();
    }
    for (name, unclean) in [("clean", "false"), ("dirty", "true")] {
        s.apply(&MetadataCommand::CreateTopic {
            name: name.into(),
            topic_id: Uuid::new_v4(),
            partitions: vec![PartitionAssignment { replicas: vec![1, 2] }],
            configs: BTreeMap::from([("unclean.leader.election.enable".to_string(), unclean.to_string())]),
        })
        .unwrap();
    }
    // 2 falls out of the ISR (lagging), then the leader 1 dies.
    for name in ["clean", "dirty"] {
        let isr = MetadataCommand::ChangeIsr {
            topic: name.into(),
            partition: 0,
            leader_epoch: 0,
            partition_epoch: 0,
            isr: vec![1],
        };
        s.apply(&isr).unwrap();
    }
    s.apply(&MetadataCommand::FenceBroker { id: 1 }).unwrap();
    let clean = &s.topics["clean"].partitions[0];
    assert_eq!((clean.leader, clean.isr.clone()), (NO_LEADER, vec![1]), "waits for the in-sync replica");
    let dirty = &s.topics["dirty"].partitions[0];
    assert_eq!((dirty.leader, dirty.isr.clone()), (2, vec![2]), "out-of-sync replica elected");
}

#[test]
fn restarted_broker_is_fenced_until_it_catches_up() {
    let mut s = cluster();
    // Broker 1 leads partition 0; it restarts and registers again.
    let r = s.apply(&reg(1)).unwrap();
    assert!(matches!(r, MetadataResponse::BrokerRegistered { .. }));
    assert!(s.brokers[&1].fenced);
    let p0 = part(&s, 0);
    assert_eq!((p0.leader, p0.isr.clone()), (2, vec![2, 3]), "leadership moved off the restarted broker");
    s.apply(&MetadataCommand::UnfenceBroker { id: 1 }).unwrap();
    assert!(!s.brokers[&1].fenced);
    // Unregistering needs the broker fenced (stopped) first.
    assert!(matches!(s.apply(&MetadataCommand::UnregisterBroker { id: 1 }), Err(MetadataError::InvalidRequest(_))));
    s.apply(&MetadataCommand::FenceBroker { id: 1 }).unwrap();
    s.apply(&MetadataCommand::UnregisterBroker { id: 1 }).unwrap();
    assert!(!s.brokers.contains_key(&1) && s.removed_brokers.contains(&1));
}

#[test]
fn offline_replicas_lose_leadership_and_isr_until_their_broker_registers_again() {
    let mut s = cluster();
    let epoch_of = |s: &MetadataState, id: i32| s.brokers[&id].epoch;
    let offline = |id: i32, epoch: i64| MetadataCommand::MarkReplicasOffline {
        id,
        broker_epoch: epoch,
        partitions: vec![("t".into(), 0), ("t".into(), 1), ("gone".into(), 0), ("t".into(), 7)],
    };
    // A report from an older incarnation of broker 1 changes nothing.
    assert!(s.apply(&offline(1, epoch_of(&s, 1) - 1)).is_err());
    assert_eq!(part(&s, 0).leader, 1);

    let before = part(&s, 0).clone();
    s.apply(&offline(1, epoch_of(&s, 1))).unwrap();
    let p0 = part(&s, 0);
    assert_eq!((p0.leader, p0.isr.clone(), p0.offline_replicas.clone()), (2, vec![2, 3], vec![1]));
    assert_eq!((p0.leader_epoch, p0.partition_epoch), (before.leader_epoch + 1, before.partition_epoch + 1));
    let p1 = part(&s, 1);
    assert_eq!((p1.leader, p1.isr.clone()), (2, vec![2, 3]), "a follower replica only leaves the ISR");
    // Reported again (every heartbeat does): nothing more changes.
    let again = s.clone();
    s.apply(&offline(1, epoch_of(&s, 1))).unwrap();
    assert_eq!(s, again);

    // Its leader may not put it back, nor may it be elected, nor take leadership when
    // another replica goes away.
    let p = part(&s, 0).clone();
    let back = MetadataCommand::ChangeIsr {
        topic: "t".into(),
        partition: 0,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        isr: vec![2, 3, 1],
    };
    assert!(matches!(s.apply(&back), Err(MetadataError::IneligibleReplica(_))));
    s.apply(&MetadataCommand::FenceBroker { id: 2 }).unwrap();
    s.apply(&MetadataCommand::FenceBroker { id: 3 }).unwrap();
    assert_eq!(part(&s, 0).leader, NO_LEADER, "the offline replica is never elected");
    assert!(crate::controller::liveness::preferred_leader_elections(&s)
        .iter()
        .all(|c| !matches!(c, MetadataCommand::ElectLeader { leader: 1, .. })));

    // Broker 1 restarts (its recovery re-read the disk): its replicas may serve again.
    s.apply(&reg(1)).unwrap();
    s.apply(&MetadataCommand::UnfenceBroker { id: 1 }).unwrap();
    assert!(part(&s, 0).offline_replicas.is_empty());
}

#[test]
fn the_last_in_sync_replica_going_offline_leaves_the_partition_leaderless() {
    let mut s = cluster();
    s.apply(&MetadataCommand::FenceBroker { id: 2 }).unwrap();
    s.apply(&MetadataCommand::FenceBroker { id: 3 }).unwrap();
    assert_eq!((part(&s, 0).leader, part(&s, 0).isr.clone()), (1, vec![1]));
    let epoch = s.brokers[&1].epoch;
    s.apply(&MetadataCommand::MarkReplicasOffline { id: 1, broker_epoch: epoch, partitions: vec![("t".into(), 0)] })
        .unwrap();
    // Like fencing: it stays the ISR (nobody else is known to hold every committed record).
    assert_eq!((part(&s, 0).leader, part(&s, 0).isr.clone()), (NO_LEADER, vec![1]));
}

#[test]
fn alter_topic_configs_sets_deletes_and_replaces() {
    let mut s = cluster();
    let set = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let alter = |replace, delete: &[&str], set| MetadataCommand::AlterTopicConfigs {
        name: "t".into(),
        replace,
        delete: delete.iter().map(|k| k.to_string()).collect(),
        set,
    };
    s.apply(&alter(false, &[], set(&[("retention.ms", "1000"), ("segment.bytes", "2048")]))).unwrap();
    s.apply(&alter(false, &["segment.bytes"], set(&[("retention.bytes", "10")]))).unwrap();
    let configs: Vec<_> = s.topics["t"].configs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(configs, vec![("retention.bytes", "10"), ("retention.ms", "1000")]);
    s.apply(&alter(true, &[], set(&[("cleanup.policy", "compact")]))).unwrap();
    assert_eq!(s.topics["t"].configs.len(), 1);
    let unknown =
        MetadataCommand::AlterTopicConfigs { name: "nope".into(), replace: false, delete: vec![], set: set(&[]) };
    assert!(matches!(s.apply(&unknown), Err(MetadataError::UnknownTopic(_))));
}

#[test]
fn unclean_elections_only_for_leaderless_partitions() {
    let mut s = cluster();
    let elect = MetadataCommand::ElectUncleanLeader { topic: "t".into(), partition: 0 };
    assert!(matches!(s.apply(&elect), Err(MetadataError::ElectionNotNeeded(1))));
    // Partition 0 (replicas 1,2,3) loses 1 and 2: 3 leads, alone in the ISR; then 3 goes too.
    for id in [1, 2, 3] {
        s.apply(&MetadataCommand::FenceBroker { id }).unwrap();
    }
    assert_eq!(part(&s, 0).leader, NO_LEADER);
    assert_eq!(part(&s, 0).isr, vec![3]);
    assert!(matches!(s.apply(&elect), Err(MetadataError::NoEligibleLeader { .. })));
    // Broker 1 comes back out of sync: only an unclean election makes it leader.
    s.apply(&reg(1)).unwrap();
    s.apply(&MetadataCommand::UnfenceBroker { id: 1 }).unwrap();
    assert_eq!(part(&s, 0).leader, NO_LEADER);
    let epoch = part(&s, 0).leader_epoch;
    s.apply(&elect).unwrap();
    assert_eq!((part(&s, 0).leader, part(&s, 0).isr.clone()), (1, vec![1]));
    assert_eq!(part(&s, 0).leader_epoch, epoch + 1);
}

#[test]
fn turning_on_unclean_election_elects_leaderless_partitions() {
    let mut s = cluster();
    for id in [1, 2, 3] {
        s.apply(&MetadataCommand::FenceBroker { id }).unwrap();
    }
    s.apply(&reg(2)).unwrap();
    s.apply(&MetadataCommand::UnfenceBroker { id: 2 }).unwrap();
    // Partition 1 (replicas 2,3,1) was last in sync on 3: 2 is out of sync.
    assert_eq!(part(&s, 1).leader, NO_LEADER);
    let set = BTreeMap::from([("unclean.leader.election.enable".to_string(), "true".to_string())]);
    s.apply(&MetadataCommand::AlterTopicConfigs { name: "t".into(), replace: false, delete: vec![], set }).unwrap();
    assert_eq!(part(&s, 1).leader, 2);
    assert_eq!(part(&s, 1).isr, vec![2]);
}

#[test]
fn dynamic_broker_configs_layer_a_broker_over_the_cluster_default() {
    let mut s = cluster();
    let alter = |entity: &str, set: &[(&str, &str)]| MetadataCommand::AlterBrokerConfigs {
        entity: entity.into(),
        replace: false,
        delete: vec![],
        set: set.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    };
    s.apply(&alter("", &[("log.retention.ms", "100"), ("log.segment.bytes", "4096")])).unwrap();
    s.apply(&alter("2", &[("log.retention.ms", "200")])).unwrap();
    assert_eq!(s.dynamic_broker_configs(1).get("log.retention.ms").map(String::as_str), Some("100"));
    assert_eq!(s.dynamic_broker_configs(2).get("log.retention.ms").map(String::as_str), Some("200"));
    assert_eq!(s.dynamic_broker_configs(2).get("log.segment.bytes").map(String::as_str), Some("4096"));
    assert!(matches!(s.apply(&alter("x", &[])), Err(MetadataError::InvalidRequest(_))));
    let clear =
        MetadataCommand::AlterBrokerConfigs { entity: "2".into(), replace: true, delete: vec![], set: BTreeMap::new() };
    s.apply(&clear).unwrap();
    assert!(!s.broker_configs.contains_key("2"));
}
