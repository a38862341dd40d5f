//! Wire-protocol behaviour at the edges: advertised versions, unsupported versions, malformed and
//! oversized frames, corrupt batches and invalid names — none may take the broker down; and a
//! follower's refusals naming the leader (KIP-951).

use anyhow::Context;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, CreateTopicsRequest, FetchRequest, MetadataRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use millrace_tests::{value_batch as batch, BrokerProcess, Cluster, KafkaConn};
use std::time::Duration;

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

fn broker_still_serves(broker: &BrokerProcess) -> anyhow::Result<()> {
    let mut conn = KafkaConn::connect(broker.port)?;
    let response = conn.request(3, &ApiVersionsRequest::default())?;
    anyhow::ensure!(response.error_code == 0, "ApiVersions failed after bad input");
    Ok(())
}

#[test]
fn api_versions_ranges_start_at_zero_and_cover_core_apis() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let mut conn = KafkaConn::connect(broker.port)?;
    for version in [0, 3] {
        let response = conn.request(version, &ApiVersionsRequest::default())?;
        assert_eq!(response.error_code, 0);
        for key in [
            ApiKey::Produce,
            ApiKey::Fetch,
            ApiKey::ListOffsets,
            ApiKey::Metadata,
            ApiKey::InitProducerId,
            ApiKey::FindCoordinator,
        ] {
            let entry = response.api_keys.iter().find(|k| k.api_key == key as i16);
            let entry = entry.unwrap_or_else(|| panic!("{key:?} not advertised"));
            assert_eq!(entry.min_version, 0, "{key:?} range must start at 0");
        }
        let fetch = response.api_keys.iter().find(|k| k.api_key == ApiKey::Fetch as i16).expect("fetch");
        assert!(fetch.max_version >= 12);
    }
    Ok(())
}

#[test]
fn newer_api_versions_request_gets_unsupported_version_and_the_list() -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let broker = BrokerProcess::start("")?;
    // ApiVersions v99 with correlation id 7, as a client from the future probes (KIP-511).
    let body: &[u8] = &[0x00, 0x12, 0x00, 0x63, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00];
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", broker.port))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    stream.write_all(&(body.len() as i32).to_be_bytes())?;
    stream.write_all(body)?;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let mut response = vec![0u8; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut response)?;
    // The answer is ApiVersions v0 (header v0): correlation id, then error 35 and the API list.
    assert_eq!(&response[..4], &7i32.to_be_bytes(), "correlation id");
    assert_eq!(&response[4..6], &35i16.to_be_bytes(), "UNSUPPORTED_VERSION");
    let listed = i32::from_be_bytes([response[6], response[7], response[8], response[9]]);
    assert!(listed >= 10, "the supported API list comes with the error, got {listed} entries");
    broker_still_serves(&broker)
}

#[test]
fn oversized_malformed_and_unknown_frames_close_only_that_connection() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("[server]\nmax_request_bytes = \"2MiB\"\n")?;
    // A client that stays connected throughout must be unaffected.
    let mut bystander = KafkaConn::connect(broker.port)?;
    bystander.request(3, &ApiVersionsRequest::default())?;

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("oversized", (200 * 1024 * 1024i32).to_be_bytes().to_vec()),
        ("negative length", (-5i32).to_be_bytes().to_vec()),
        ("unknown api key", [&12i32.to_be_bytes()[..], &[0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]].concat()),
        (
            "garbage metadata body",
            [&12i32.to_be_bytes()[..], &[0, 3, 0, 9, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0x01]].concat(),
        ),
        ("ancient produce v0", [&12i32.to_be_bytes()[..], &[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]].concat()),
    ];
    for (name, bytes) in cases {
        let mut conn = KafkaConn::connect(broker.port)?;
        conn.send_raw(&bytes)?;
        assert!(conn.is_closed_by_peer(), "{name}: connection left open");
        broker_still_serves(&broker)?;
    }
    // Half a frame and a hang-up.
    let mut conn = KafkaConn::connect(broker.port)?;
    conn.send_raw(&[0, 0, 1, 0, 0, 3])?;
    drop(conn);
    bystander.request(3, &ApiVersionsRequest::default())?;
    broker_still_serves(&broker)?;
    let metrics = broker.admin_get("/metrics")?;
    assert!(metrics.contains("millrace_broker_protocol_errors_total"), "{metrics}");
    Ok(())
}

#[test]
fn corrupt_batch_is_refused_without_harming_other_partitions() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let mut conn = KafkaConn::connect(broker.port)?;
    let create = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name("crc"))
            .with_num_partitions(2)
            .with_replication_factor(1)])
        .with_timeout_ms(5000);
    let created = conn.request(5, &create)?;
    assert_eq!(created.topics[0].error_code, 0);

    let good = batch(&["fine-1", "fine-2"])?;
    let mut bad = batch(&["evil"])?.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0xff; // flips a bit covered by the CRC
    let produce =
        ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default(
        )
        .with_name(topic_name("crc"))
        .with_partition_data(vec![
            PartitionProduceData::default().with_index(0).with_records(Some(bad.into())),
            PartitionProduceData::default().with_index(1).with_records(Some(good)),
        ])]);
    let response = conn.request(8, &produce)?;
    let partitions = &response.responses[0].partition_responses;
    let p0 = partitions.iter().find(|p| p.index == 0).expect("partition 0");
    let p1 = partitions.iter().find(|p| p.index == 1).expect("partition 1");
    assert_eq!(p0.error_code, 2, "CORRUPT_MESSAGE for the bad batch: {p0:?}");
    assert!(p0.error_message.as_ref().is_some_and(|m| m.contains("CRC")), "{p0:?}");
    assert_eq!(p1.error_code, 0, "{p1:?}");
    assert_eq!(p1.base_offset, 0);
    // The same connection keeps working.
    let again = conn.request(8, &produce)?;
    assert_eq!(again.responses[0].partition_responses.iter().find(|p| p.index == 1).map(|p| p.base_offset), Some(2));
    Ok(())
}

#[test]
fn invalid_topic_names_are_refused_with_kafka_error_codes() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let mut conn = KafkaConn::connect(broker.port)?;
    let long = "x".repeat(250);
    for name in ["bad/name", "..", long.as_str(), "spaces are bad"] {
        let create = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(1)
            .with_replication_factor(1)]);
        let response = conn.request(5, &create)?;
        assert_eq!(response.topics[0].error_code, 17, "INVALID_TOPIC_EXCEPTION for {name:?}");
        let metadata = MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(topic_name(name)))]))
            .with_allow_auto_topic_creation(true);
        let response = conn.request(9, &metadata)?;
        assert_eq!(response.topics[0].error_code, 17, "metadata for {name:?}");
    }
    let dup = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
        .with_name(topic_name("twice"))
        .with_num_partitions(1)
        .with_replication_factor(1)]);
    assert_eq!(conn.request(5, &dup)?.topics[0].error_code, 0);
    assert_eq!(conn.request(5, &dup)?.topics[0].error_code, 36, "TOPIC_ALREADY_EXISTS");
    let rf3 = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
        .with_name(topic_name("rf3"))
        .with_num_partitions(1)
        .with_replication_factor(3)]);
    assert_eq!(conn.request(5, &rf3)?.topics[0].error_code, 38, "INVALID_REPLICATION_FACTOR");
    Ok(())
}

#[test]
fn oversized_batch_gets_message_too_large() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let mut conn = KafkaConn::connect(broker.port)?;
    let create = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
        .with_name(topic_name("limited"))
        .with_num_partitions(1)
        .with_replication_factor(1)
        .with_configs(vec![kafka_protocol::messages::create_topics_request::CreatableTopicConfig::default()
            .with_name(StrBytes::from_static_str("max.message.bytes"))
            .with_value(Some(StrBytes::from_static_str("1000")))])]);
    assert_eq!(conn.request(5, &create)?.topics[0].error_code, 0);
    let big = "z".repeat(2000);
    let produce =
        ProduceRequest::default().with_acks(1).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name("limited"))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(&[&big])?))])]);
    let response = conn.request(8, &produce)?;
    assert_eq!(response.responses[0].partition_responses[0].error_code, 10, "MESSAGE_TOO_LARGE");
    let small =
        ProduceRequest::default().with_acks(1).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name("limited"))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(&["ok"])?))])]);
    assert_eq!(conn.request(8, &small)?.responses[0].partition_responses[0].error_code, 0);
    Ok(())
}

#[test]
fn a_frame_split_across_a_pending_response_is_read_whole() -> anyhow::Result<()> {
    // A long-polling fetch completes while the next request is only half received; the broker
    // must keep the half frame it has read (a cancelled read once dropped it and lost framing).
    let broker = BrokerProcess::start("")?;
    let mut conn = KafkaConn::connect(broker.port)?;
    let create = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
        .with_name(topic_name("idle"))
        .with_num_partitions(1)
        .with_replication_factor(1)]);
    assert_eq!(conn.request(5, &create)?.topics[0].error_code, 0);
    let fetch = FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(300)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default().with_topic(topic_name("idle")).with_partitions(vec![
            FetchPartition::default().with_partition(0).with_fetch_offset(0).with_partition_max_bytes(1 << 20),
        ])]);
    let (fetch_id, fetch_frame) = conn.encode_request(11, &fetch)?;
    let (versions_id, versions_frame) = conn.encode_request(3, &ApiVersionsRequest::default())?;
    conn.send_raw(&fetch_frame)?;
    conn.send_raw(&versions_frame[..7])?;
    std::thread::sleep(std::time::Duration::from_millis(700));
    conn.send_raw(&versions_frame[7..])?;
    let fetched = conn.read_response::<FetchRequest>(11, fetch_id)?;
    assert_eq!(fetched.responses[0].partitions[0].error_code, 0);
    let versions = conn.read_response::<ApiVersionsRequest>(3, versions_id)?;
    assert_eq!(versions.error_code, 0);
    Ok(())
}

#[test]
fn offset_for_leader_epoch_answers_from_the_epoch_cache() -> anyhow::Result<()> {
    use kafka_protocol::messages::offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
    use kafka_protocol::messages::OffsetForLeaderEpochRequest;
    let broker = BrokerProcess::start("")?;
    let mut conn = KafkaConn::connect(broker.port)?;
    let produce =
        ProduceRequest::default().with_acks(1).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name("epochs"))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(&["a", "b", "c"])?))])]);
    let metadata = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(topic_name("epochs")))]))
        .with_allow_auto_topic_creation(true);
    assert_eq!(conn.request(9, &metadata)?.topics[0].error_code, 0);
    assert_eq!(conn.request(8, &produce)?.responses[0].partition_responses[0].error_code, 0);
    let ask = |topic: &str, epoch: i32, current: i32| {
        OffsetForLeaderEpochRequest::default().with_replica_id(kafka_protocol::messages::BrokerId(-1)).with_topics(
            vec![OffsetForLeaderTopic::default().with_topic(topic_name(topic)).with_partitions(vec![
                OffsetForLeaderPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(current)
                    .with_leader_epoch(epoch),
            ])],
        )
    };
    let answer = conn.request(4, &ask("epochs", 0, 0))?;
    let p = &answer.topics[0].partitions[0];
    assert_eq!((p.error_code, p.leader_epoch, p.end_offset), (0, 0, 3), "epoch 0 ends at the log end");
    // Records of epoch 7 exist only if a newer leader wrote them: this broker is behind, and
    // says so with a retriable error rather than "undefined" (which resets librdkafka consumers).
    let p = conn.request(4, &ask("epochs", 7, -1))?.topics[0].partitions[0].clone();
    assert_eq!((p.error_code, p.leader_epoch, p.end_offset), (75, -1, -1), "UNKNOWN_LEADER_EPOCH above ours");
    let p = conn.request(4, &ask("epochs", 0, 1))?.topics[0].partitions[0].clone();
    assert_eq!(p.error_code, 75, "UNKNOWN_LEADER_EPOCH for a newer current epoch");
    let p = conn.request(4, &ask("missing", 0, -1))?.topics[0].partitions[0].clone();
    assert_eq!(p.error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    Ok(())
}

/// KIP-951: a follower refusing Produce (v10+) and Fetch (v16+) names the partition's leader and
/// epoch and where to reach it, exactly as its Metadata would, so librdkafka ≥ 2.4 moves the
/// partition without a metadata round trip.
#[test]
fn a_follower_names_the_leader_when_refusing_produce_and_fetch() -> anyhow::Result<()> {
    use kafka_protocol::messages::BrokerId;
    let cluster = Cluster::start(3, "")?;
    cluster.create_topic("moved", 1, 3, &[])?;
    let leader = cluster.leader_of("moved", 0)?;
    let follower = cluster.ids().into_iter().find(|&id| id != leader).context("a follower")?;
    let mut conn = KafkaConn::connect_addr(&cluster.broker(follower).kafka_addr(), Duration::from_secs(15))?;

    // What the follower's Metadata says: the leader, its epoch and its advertised endpoint.
    let metadata = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(topic_name("moved")))]))
        .with_allow_auto_topic_creation(false);
    let metadata = conn.request(12, &metadata)?;
    let topic = &metadata.topics[0];
    let partition = &topic.partitions[0];
    assert_eq!(partition.leader_id.0, leader, "{metadata:?}");
    let expected_leader = (leader, partition.leader_epoch);
    let advertised = metadata.brokers.iter().find(|b| b.node_id.0 == leader).context("leader in Metadata")?;
    let expected_endpoint = (leader, advertised.host.to_string(), advertised.port, advertised.rack.clone());
    assert_eq!(
        format!("{}:{}", expected_endpoint.1, expected_endpoint.2),
        cluster.broker(leader).kafka_addr(),
        "Metadata advertises the leader's listener"
    );

    for version in [10, 13] {
        let produce = ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![
            TopicProduceData::default()
                .with_name(topic_name("moved"))
                .with_topic_id(topic.topic_id)
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch(&["to-a-follower"])?))]),
        ]);
        let response = conn.request(version, &produce)?;
        let p = &response.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 6, "Produce v{version}: NOT_LEADER_OR_FOLLOWER from a follower: {p:?}");
        assert_eq!((p.current_leader.leader_id.0, p.current_leader.leader_epoch), expected_leader, "v{version}");
        let endpoints: Vec<_> =
            response.node_endpoints.iter().map(|e| (e.node_id.0, e.host.to_string(), e.port, e.rack.clone())).collect();
        assert_eq!(endpoints, vec![expected_endpoint.clone()], "Produce v{version}");
    }

    for version in [16, 17] {
        let fetch = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default().with_topic_id(topic.topic_id).with_partitions(vec![
                FetchPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(partition.leader_epoch)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(1 << 20),
            ])]);
        let response = conn.request(version, &fetch)?;
        let p = &response.responses[0].partitions[0];
        assert_eq!(p.error_code, 6, "Fetch v{version}: NOT_LEADER_OR_FOLLOWER from a follower: {p:?}");
        assert_eq!((p.current_leader.leader_id.0, p.current_leader.leader_epoch), expected_leader, "v{version}");
        let endpoints: Vec<_> =
            response.node_endpoints.iter().map(|e| (e.node_id.0, e.host.to_string(), e.port, e.rack.clone())).collect();
        assert_eq!(endpoints, vec![expected_endpoint.clone()], "Fetch v{version}");
    }
    Ok(())
}
