//! Three-controller integration test over real TCP on 127.0.0.1.

#![allow(clippy::unwrap_used)]

use super::*;
use std::future::Future;
use std::time::Duration;
use std::time::Instant;

const WAIT: Duration = Duration::from_secs(15);

/// Polls `check` until it returns `Some`, failing the test with `what` after [`WAIT`].
async fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {WAIT:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Retries while there is no usable leader (elections, forwarding races).
async fn propose_retrying<F, Fut>(what: &str, mut f: F) -> MetadataResponse
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<MetadataResponse, ControllerError>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        match f().await {
            Ok(r) => return r,
            Err(
                e @ (ControllerError::NotLeader { .. } | ControllerError::Forward { .. } | ControllerError::Raft(_)),
            ) => {
                assert!(Instant::now() < deadline, "timed out proposing {what}: last error {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("proposing {what}: {e}"),
        }
    }
}

fn agreed_leader(nodes: &[&Controller]) -> Option<u64> {
    let leader = nodes.first()?.leader()?;
    nodes.iter().all(|n| n.leader() == Some(leader)).then_some(leader)
}

fn register(id: i32) -> MetadataCommand {
    MetadataCommand::RegisterBroker {
        id,
        host: "127.0.0.1".into(),
        port: 9000 + id as u16,
        rack: None,
        listeners: vec![],
    }
}

/// Three voters on loopback with fresh data directories: the nodes (ids 1..=3), their voter map
/// and the directories (kept alive by the caller).
async fn start_three() -> (Vec<Controller>, BTreeMap<u64, String>, Vec<tempfile::TempDir>) {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut listeners = Vec::new();
    let mut voters = BTreeMap::new();
    for id in 1..=3u64 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        voters.insert(id, l.local_addr().unwrap().to_string());
        listeners.push(l);
    }
    let mut nodes: Vec<Controller> = Vec::new();
    for (i, l) in listeners.into_iter().enumerate() {
        nodes.push(Controller::start_with_listener(i as u64 + 1, l, voters.clone(), dirs[i].path()).await.unwrap());
    }
    (nodes, voters, dirs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_controllers_replicate_fail_over_and_catch_up() {
    let (mut nodes, voters, dirs) = start_three().await;

    let leader = wait_for("a leader all 3 agree on", || agreed_leader(&nodes.iter().collect::<Vec<_>>())).await;

    // Propose through a follower too, to exercise forwarding.
    let follower = nodes.iter().find(|n| n.node_id() != leader).unwrap();
    for b in 1..=3 {
        let r = propose_retrying("RegisterBroker", || follower.propose(register(b))).await;
        assert!(matches!(r, MetadataResponse::BrokerRegistered { .. }), "{r:?}");
        let unfence = MetadataCommand::UnfenceBroker { id: b };
        propose_retrying("UnfenceBroker", || follower.propose(unfence.clone())).await;
    }
    let topic_id = uuid::Uuid::new_v4();
    let create = MetadataCommand::CreateTopic {
        name: "events".into(),
        topic_id,
        partitions: vec![
            PartitionAssignment { replicas: vec![1, 2, 3] },
            PartitionAssignment { replicas: vec![2, 3, 1] },
        ],
        configs: BTreeMap::from([("retention.ms".to_string(), "60000".to_string())]),
    };
    let leader_node = nodes.iter().find(|n| n.node_id() == leader).unwrap();
    let r = propose_retrying("CreateTopic", || leader_node.propose(create.clone())).await;
    assert_eq!(r, MetadataResponse::TopicCreated { topic_id });
    // A committed-but-invalid command is rejected with the rule's error, identically everywhere.
    match leader_node.propose(create.clone()).await {
        Err(ControllerError::Rejected(MetadataError::TopicExists(t))) => assert_eq!(t, "events"),
        other => panic!("duplicate CreateTopic: {other:?}"),
    }

    let converged = |nodes: &[Controller]| {
        let first = nodes[0].metadata();
        (first.topics.contains_key("events") && nodes.iter().all(|n| n.metadata() == first)).then_some(first)
    };
    let state = wait_for("3 state machines to converge", || converged(&nodes)).await;
    assert_eq!(state.brokers.len(), 3);
    assert_eq!(state.topics["events"].partitions[1].leader, 2);

    // Stop the leader; the survivors elect a new one and keep committing.
    let idx = nodes.iter().position(|n| n.node_id() == leader).unwrap();
    let stopped = nodes.remove(idx);
    let stopped_addr: SocketAddr = voters[&leader].parse().unwrap();
    stopped.shutdown().await.unwrap();
    let new_leader = wait_for("a new leader among the survivors", || {
        agreed_leader(&nodes.iter().collect::<Vec<_>>()).filter(|l| *l != leader)
    })
    .await;
    assert_ne!(new_leader, leader);
    let fence = MetadataCommand::FenceBroker { id: 1 };
    let r = propose_retrying("FenceBroker", || nodes[0].propose(fence.clone())).await;
    assert_eq!(r, MetadataResponse::BrokerFenceChanged { partitions_changed: 2 });
    let r = propose_retrying("RegisterBroker 4", || nodes[1].propose(register(4))).await;
    assert!(matches!(r, MetadataResponse::BrokerRegistered { .. }), "{r:?}");
    let state = wait_for("survivors to converge", || {
        let s = nodes[0].metadata();
        (s.brokers.contains_key(&4) && nodes[1].metadata() == s).then_some(s)
    })
    .await;
    assert_eq!(state.topics["events"].partitions[0].leader, 2);

    // Restart the stopped node from its data dir on the same address: it catches up.
    let restarted = Controller::start(leader, stopped_addr, voters.clone(), dirs[idx].path()).await.unwrap();
    wait_for("the restarted node to catch up", || (restarted.metadata() == state).then_some(())).await;
    nodes.push(restarted);
    wait_for("all 3 to agree on a leader again", || agreed_leader(&nodes.iter().collect::<Vec<_>>())).await;
    for n in nodes {
        n.shutdown().await.unwrap();
    }
}

/// A follower that missed entries the leader already purged is caught up by snapshot transfer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lagging_follower_catches_up_by_snapshot() {
    let config = Config {
        snapshot_policy: SnapshotPolicy::LogsSinceLast(5),
        max_in_snapshot_log_to_keep: 0,
        purge_batch_size: 1,
        ..raft_config()
    };
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut listeners = Vec::new();
    let mut voters = BTreeMap::new();
    for id in 1..=3u64 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        voters.insert(id, l.local_addr().unwrap().to_string());
        listeners.push(l);
    }
    let mut nodes: Vec<Controller> = Vec::new();
    for (i, l) in listeners.into_iter().enumerate() {
        let c = Controller::start_with_config(
            i as u64 + 1,
            l,
            voters.clone(),
            dirs[i].path(),
            config.clone(),
            Duration::from_secs(3600),
        );
        nodes.push(c.await.unwrap());
    }
    let leader = wait_for("a leader", || agreed_leader(&nodes.iter().collect::<Vec<_>>())).await;
    propose_retrying("RegisterBroker", || nodes[0].propose(register(1))).await;
    wait_for("broker 1 everywhere", || nodes.iter().all(|n| n.metadata().brokers.contains_key(&1)).then_some(())).await;

    let idx = nodes.iter().position(|n| n.node_id() != leader).unwrap();
    let lagging = nodes.remove(idx);
    let (lag_id, lag_addr) = (lagging.node_id(), voters[&lagging.node_id()].parse::<SocketAddr>().unwrap());
    let lag_applied = lagging.applied_index().unwrap();
    lagging.shutdown().await.unwrap();

    let alloc = MetadataCommand::AllocateProducerIds { broker: 1, count: 10 };
    for _ in 0..30 {
        propose_retrying("AllocateProducerIds", || nodes[0].propose(alloc.clone())).await;
    }
    let leader_node = nodes.iter().find(|n| n.node_id() == leader).unwrap();
    wait_for("the leader to purge past the lagging node", || {
        let purged = leader_node.raft.metrics().borrow().purged;
        purged.filter(|p| p.index > lag_applied).map(|_| ())
    })
    .await;

    let restarted = Controller::start_with_config(
        lag_id,
        TcpListener::bind(lag_addr).await.unwrap(),
        voters.clone(),
        dirs[idx].path(),
        config.clone(),
        Duration::from_secs(3600),
    )
    .await
    .unwrap();
    wait_for("the lagging node to install the snapshot", || {
        (restarted.metadata().next_producer_id == 300).then_some(())
    })
    .await;
    assert!(restarted.raft.metrics().borrow().snapshot.is_some());
    assert!(dirs[idx].path().join("snapshot.json").exists());
    nodes.push(restarted);
    for n in nodes {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn raft_ending_on_its_own_is_fatal_but_a_shutdown_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let c = Controller::start_with_listener(1, listener, BTreeMap::from([(1, addr)]), dir.path()).await.unwrap();
    wait_for("a leader", || c.leader()).await;
    // What a panic of Raft's core task looks like from outside: the task is gone, unasked.
    c.raft.shutdown().await.unwrap();
    let fatal = tokio::time::timeout(WAIT, c.fatal_error()).await.expect("the end of Raft was not noticed");
    assert!(fatal.contains("ended unexpectedly"), "{fatal}");

    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let c =
        Arc::new(Controller::start_with_listener(1, listener, BTreeMap::from([(1, addr)]), dir.path()).await.unwrap());
    wait_for("a leader", || c.leader()).await;
    c.stopping.store(true, std::sync::atomic::Ordering::Release);
    c.raft.shutdown().await.unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(500), c.fatal_error()).await;
    assert!(quiet.is_err(), "a requested stop was taken for a failure: {quiet:?}");
}

/// A leader whose followers are gone keeps believing it leads (openraft 0.9 has no check-quorum),
/// but stops naming itself the active controller once its quorum lease lapses.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_cut_off_from_the_majority_stops_naming_itself_controller() {
    let (mut nodes, _voters, _dirs) = start_three().await;
    let leader = wait_for("a leader all 3 agree on", || agreed_leader(&nodes.iter().collect::<Vec<_>>())).await;
    let idx = nodes.iter().position(|n| n.node_id() == leader).unwrap();
    let alone = nodes.remove(idx);
    wait_for("the leader to confirm its majority", || (alone.active_controller() == Some(leader)).then_some(())).await;
    for follower in nodes {
        follower.shutdown().await.unwrap();
    }
    wait_for("the cut-off leader to stop naming itself", || (alone.active_controller().is_none()).then_some(())).await;
    assert_eq!(alone.leader(), Some(leader), "openraft still believes it leads (the case the lease covers)");
    alone.shutdown().await.unwrap();
}
