//! KIP-951: Produce and Fetch refused for leadership name the current leader and its endpoint on
//! the listener the request came in on; KIP-320: requests naming a leader epoch other than the
//! leader's are refused.

use super::*;
use crate::cluster::Quorum;
use crate::controller::{BrokerEndpoint, PartitionAssignment};
use kafka_protocol::protocol::{Decodable, Encodable};
use std::time::Duration;

const SECOND: i32 = 2;

fn listener(name: &str, host: &str, port: u16) -> BrokerEndpoint {
    BrokerEndpoint { name: name.into(), host: host.into(), port }
}

/// The fake cluster plus broker 2 (rack `r2`, a PLAINTEXT and an EXTERNAL listener), and topic
/// `moved`: partitions 0 and 1 led by broker 2, partition 2 by this broker, all hosted here.
async fn second_broker_leads() -> Arc<FakeBroker> {
    let ctx = FakeBroker::new();
    let commands = [
        MetadataCommand::RegisterBroker {
            id: SECOND,
            host: "b2.internal".into(),
            port: 9093,
            rack: Some("r2".into()),
            listeners: vec![listener("PLAINTEXT", "b2.plain", 19092), listener("EXTERNAL", "b2.example", 29092)],
        },
        MetadataCommand::UnfenceBroker { id: SECOND },
        MetadataCommand::CreateTopic {
            name: "moved".into(),
            topic_id: uuid::Uuid::new_v4(),
            partitions: vec![
                PartitionAssignment { replicas: vec![SECOND, NODE] },
                PartitionAssignment { replicas: vec![SECOND, NODE] },
                PartitionAssignment { replicas: vec![NODE, SECOND] },
            ],
            configs: Default::default(),
        },
    ];
    for command in commands {
        ctx.propose(command, Duration::from_secs(1)).await.expect("metadata command");
    }
    ctx
}

fn on_listener<R: Request>(version: i16, listener: &str) -> RequestContext {
    let mut rc = rc::<R>(version);
    rc.connection.listener = Arc::from(listener);
    rc
}

async fn answer_on<R: Handler<FakeBroker>>(ctx: &Arc<FakeBroker>, rc: RequestContext, request: R) -> R::Response {
    match R::handle(ctx, &rc, request).await {
        Reply::Now(response) => response,
        Reply::Later(future) => future.await,
        Reply::Silent => panic!("no response"),
    }
}

fn produce_to(topic: &str, id: uuid::Uuid, partitions: &[i32]) -> ProduceRequest {
    let data = partitions
        .iter()
        .map(|&p| PartitionProduceData::default().with_index(p).with_records(Some(Bytes::from(simple(1, now())))))
        .collect();
    ProduceRequest::default().with_acks(1).with_timeout_ms(5_000).with_topic_data(vec![TopicProduceData::default()
        .with_name(topic_name(topic))
        .with_topic_id(id)
        .with_partition_data(data)])
}

fn fetch_from(id: uuid::Uuid, partitions: &[(i32, i32)]) -> FetchRequest {
    let partitions = partitions
        .iter()
        .map(|&(p, epoch)| {
            FetchPartition::default()
                .with_partition(p)
                .with_current_leader_epoch(epoch)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)
        })
        .collect();
    FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default().with_topic_id(id).with_partitions(partitions)])
}

/// (id, epoch) of partition `index` of `topic` in the metadata.
fn leader_in_metadata(ctx: &FakeBroker, topic: &str, index: usize) -> (i32, i32) {
    let metadata = ctx.metadata();
    let p = &metadata.topics[topic].partitions[index];
    (p.leader, p.leader_epoch)
}

/// What a response's encoding at `version` carries back: kafka-protocol's encoder leaves out
/// fields a version lacks, so this checks what a client would really read.
fn on_the_wire<T: Encodable + Decodable>(message: &T, version: i16) -> T {
    let mut buf = bytes::BytesMut::new();
    message.encode(&mut buf, version).expect("encode");
    T::decode(&mut buf.freeze(), version).expect("decode")
}

#[tokio::test]
async fn produce_refused_for_leadership_names_the_leader_and_its_endpoint_once() {
    let ctx = second_broker_leads().await;
    let id = ctx.metadata().topics["moved"].topic_id;
    let (leader, epoch) = leader_in_metadata(&ctx, "moved", 0);
    assert_eq!(leader, SECOND);

    for version in [10, 11, 13] {
        let response = answer(&ctx, version, produce_to("moved", id, &[0, 1, 2])).await;
        let response = on_the_wire(&response, version);
        let partitions = &response.responses[0].partition_responses;
        for p in partitions.iter().filter(|p| p.index < 2) {
            assert_eq!(p.error_code, ResponseError::NotLeaderOrFollower.code(), "v{version}: {p:?}");
            assert_eq!((p.current_leader.leader_id.0, p.current_leader.leader_epoch), (SECOND, epoch), "v{version}");
        }
        let led_here = partitions.iter().find(|p| p.index == 2).expect("partition 2");
        assert_eq!(led_here.error_code, 0, "v{version}: {led_here:?}");
        assert_eq!(led_here.current_leader, Default::default(), "only refused partitions name a leader");
        // One endpoint for the two partitions it leads: the PLAINTEXT listener's, as Metadata
        // gives it to a client of that listener.
        let endpoints: Vec<_> = response
            .node_endpoints
            .iter()
            .map(|e| (e.node_id.0, e.host.to_string(), e.port, e.rack.as_ref().map(|r| r.to_string())))
            .collect();
        assert_eq!(endpoints, vec![(SECOND, "b2.plain".to_string(), 19092, Some("r2".to_string()))], "v{version}");
    }

    // A client of another listener gets that listener's address.
    let external = answer_on(&ctx, on_listener::<ProduceRequest>(10, "EXTERNAL"), produce_to("moved", id, &[1])).await;
    let hosts: Vec<_> = external.node_endpoints.iter().map(|e| (e.host.to_string(), e.port)).collect();
    assert_eq!(hosts, vec![("b2.example".to_string(), 29092)]);

    // Before v10 there are no such fields: nothing is filled (and the encoder would drop them).
    let old = answer(&ctx, 9, produce_to("moved", id, &[0])).await;
    let p = &old.responses[0].partition_responses[0];
    assert_eq!(p.error_code, ResponseError::NotLeaderOrFollower.code());
    assert_eq!(p.current_leader, Default::default());
    assert!(old.node_endpoints.is_empty());
}

#[tokio::test]
async fn fetch_refused_for_leadership_or_a_stale_epoch_names_the_leader() {
    let ctx = second_broker_leads().await;
    let id = ctx.metadata().topics["moved"].topic_id;
    // Partition 1 moves here: a consumer still on epoch 0 is fenced, and learns the new epoch.
    ctx.propose(
        MetadataCommand::ElectLeader { topic: "moved".into(), partition: 1, leader: NODE, leader_epoch: 0 },
        Duration::from_secs(1),
    )
    .await
    .expect("elect this broker");
    let (second, second_epoch) = leader_in_metadata(&ctx, "moved", 0);
    let (here, here_epoch) = leader_in_metadata(&ctx, "moved", 1);
    assert_eq!((second, here, here_epoch), (SECOND, NODE, 1));

    let response = answer(&ctx, 16, fetch_from(id, &[(0, -1), (1, 0), (2, -1)])).await;
    let response = on_the_wire(&response, 16);
    let partitions = &response.responses[0].partitions;
    let named = |index: i32| {
        let p = partitions.iter().find(|p| p.partition_index == index).expect("partition");
        (p.error_code, p.current_leader.leader_id.0, p.current_leader.leader_epoch)
    };
    assert_eq!(named(0), (ResponseError::NotLeaderOrFollower.code(), SECOND, second_epoch));
    assert_eq!(named(1), (ResponseError::FencedLeaderEpoch.code(), NODE, 1));
    assert_eq!(named(2), (0, -1, -1), "a partition served names no leader");
    let mut endpoints: Vec<_> =
        response.node_endpoints.iter().map(|e| (e.node_id.0, e.host.to_string(), e.port)).collect();
    endpoints.sort();
    // This broker registered without named listeners: its host:port on every listener.
    assert_eq!(endpoints, vec![(NODE, "localhost".to_string(), 9092), (SECOND, "b2.plain".to_string(), 19092)]);

    // Before v16 nothing is filled.
    let old = answer(&ctx, 15, fetch_from(id, &[(0, -1)])).await;
    assert_eq!(old.responses[0].partitions[0].current_leader, Default::default());
    assert!(old.node_endpoints.is_empty());
}

#[tokio::test]
async fn a_partition_without_a_leader_or_hosted_elsewhere_is_named_as_far_as_known() {
    let ctx = second_broker_leads().await;
    ctx.propose(
        MetadataCommand::CreateTopic {
            name: "far".into(),
            topic_id: uuid::Uuid::new_v4(),
            partitions: vec![PartitionAssignment { replicas: vec![SECOND] }],
            configs: Default::default(),
        },
        Duration::from_secs(1),
    )
    .await
    .expect("create far");
    let id = ctx.metadata().topics["far"].topic_id;
    assert!(ctx.catalog.partition("far", 0).is_none(), "no replica of far here");

    // Not hosted here, by name and by id alike: NOT_LEADER_OR_FOLLOWER naming broker 2.
    for version in [10, 13] {
        let response = answer(&ctx, version, produce_to("far", id, &[0])).await;
        let p = &response.responses[0].partition_responses[0];
        assert_eq!(p.error_code, ResponseError::NotLeaderOrFollower.code(), "v{version}: {p:?}");
        assert_eq!(p.current_leader.leader_id.0, SECOND, "v{version}");
        assert_eq!(response.node_endpoints.len(), 1, "v{version}");
    }

    // Broker 2 fenced: `far` has no leader, which is said as -1/-1 with no endpoint.
    ctx.propose(MetadataCommand::FenceBroker { id: SECOND }, Duration::from_secs(1)).await.expect("fence");
    let response = answer(&ctx, 10, produce_to("far", id, &[0])).await;
    let p = &response.responses[0].partition_responses[0];
    assert_eq!(p.error_code, ResponseError::NotLeaderOrFollower.code());
    assert_eq!((p.current_leader.leader_id.0, p.current_leader.leader_epoch), (-1, -1));
    assert!(response.node_endpoints.is_empty());
}

#[tokio::test]
async fn list_offsets_refuses_a_leader_epoch_other_than_the_leaders() {
    let ctx = second_broker_leads().await;
    // Partition 1 moves here at epoch 1.
    ctx.propose(
        MetadataCommand::ElectLeader { topic: "moved".into(), partition: 1, leader: NODE, leader_epoch: 0 },
        Duration::from_secs(1),
    )
    .await
    .expect("elect this broker");
    assert_eq!(leader_in_metadata(&ctx, "moved", 1), (NODE, 1));
    let ask = |epoch: i32| {
        ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name("moved"))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(1)
                .with_current_leader_epoch(epoch)
                .with_timestamp(-1)])])
    };
    let answered = |r: ListOffsetsResponse| {
        let p = &r.topics[0].partitions[0];
        (p.error_code, p.offset, p.leader_epoch)
    };
    assert_eq!(answered(answer(&ctx, 4, ask(1)).await), (0, 0, 1));
    assert_eq!(answered(answer(&ctx, 7, ask(-1)).await), (0, 0, 1), "no epoch named");
    // A client that missed the leader change is fenced; one ahead of this broker is told so.
    assert_eq!(answered(answer(&ctx, 7, ask(0)).await), (ResponseError::FencedLeaderEpoch.code(), -1, -1));
    assert_eq!(answered(answer(&ctx, 7, ask(2)).await), (ResponseError::UnknownLeaderEpoch.code(), -1, -1));
}
