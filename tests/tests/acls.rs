//! Kafka ACLs against a real broker: `millrace acl add|list|remove` and confluent-kafka's
//! AdminClient manage them, the broker enforces them on raw requests and on a real producer with
//! Kafka's error codes, and they survive a restart (they are replicated metadata). Until SASL
//! lands every client is `User:ANONYMOUS`, so enforcement is shown with ACLs naming it (and
//! ANONYMOUS is no super user: super users bypass ACLs).

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{BrokerId, FetchRequest, MetadataRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use millrace_tests::kafka::value_batch;
use millrace_tests::{millrace, python, BrokerProcess, KafkaConn};
use std::time::Duration;

const T: Duration = Duration::from_secs(120);
const TOPIC_AUTHORIZATION_FAILED: i16 = 29;

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

/// The error code of producing one record to partition 0 of `topic`.
fn produce(conn: &mut KafkaConn, topic: &str) -> anyhow::Result<i16> {
    let data = PartitionProduceData::default().with_index(0).with_records(Some(value_batch(&["x"])?));
    let request = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default().with_name(name(topic)).with_partition_data(vec![data])]);
    let response = conn.request(9, &request)?;
    Ok(response.responses[0].partition_responses[0].error_code)
}

/// The error code of fetching partition 0 of `topic` as a consumer (-1) or as replica `replica`.
fn fetch(conn: &mut KafkaConn, topic: &str, replica: i32) -> anyhow::Result<i16> {
    let partition = FetchPartition::default().with_partition(0).with_fetch_offset(0).with_partition_max_bytes(1 << 20);
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(replica))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default().with_topic(name(topic)).with_partitions(vec![partition])]);
    Ok(conn.request(12, &request)?.responses[0].partitions[0].error_code)
}

/// The topics a full Metadata listing shows this client.
fn listed_topics(conn: &mut KafkaConn) -> anyhow::Result<Vec<String>> {
    let response = conn.request(12, &MetadataRequest::default().with_topics(None))?;
    Ok(response.topics.iter().filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())).collect())
}

#[test]
fn acls_are_managed_enforced_and_survive_a_restart() -> anyhow::Result<()> {
    // Resources without ACLs stay open, so ANONYMOUS may manage ACLs (no ACL on the cluster
    // resource) while the ACLs below govern the topics they name.
    let mut broker = BrokerProcess::start("[authorization]\nenabled = true\nallow_everyone_if_no_acl_found = true\n")?;
    let bootstrap = broker.bootstrap();
    for topic in ["orders", "secret", "open"] {
        millrace(&["topic", "create", topic, "--partitions", "1", "--bootstrap", &bootstrap])?;
    }
    let acl = |args: &[&str]| {
        let mut all = vec!["acl"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--bootstrap-server", &bootstrap]);
        millrace(&all)
    };
    let added = acl(&[
        "add",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Read",
        "--operation",
        "Describe",
        "--topic",
        "orders",
    ])?;
    assert_eq!(added, "Added 2 ACLs.\n");
    // Once the cluster has an ACL it is governed by ACLs: ANONYMOUS keeps managing them by an ALLOW.
    acl(&[
        "add",
        "--allow-principal",
        "User:ANONYMOUS",
        "--operation",
        "Alter",
        "--operation",
        "Describe",
        "--cluster",
    ])?;
    acl(&["add", "--deny-principal", "User:ANONYMOUS", "--operation", "Write", "--topic", "secret"])?;
    acl(&["add", "--deny-principal", "User:ANONYMOUS", "--operation", "ClusterAction", "--cluster"])?;
    acl(&[
        "add",
        "--allow-principal",
        "User:sink",
        "--operation",
        "Read",
        "--group",
        "sink-",
        "--resource-pattern-type",
        "prefixed",
        "--allow-host",
        "10.0.0.9",
    ])?;
    let refused = acl(&["add", "--allow-principal", "alice", "--operation", "Read", "--topic", "orders"])
        .expect_err("a principal without a type");
    assert!(refused.to_string().contains("InvalidRequest"), "{refused}");
    let denied_cluster_action = "CLUSTER\tkafka-cluster\tLITERAL\tUser:ANONYMOUS\t*\tCLUSTER_ACTION\tDENY\n";
    let expected = [
        "CLUSTER\tkafka-cluster\tLITERAL\tUser:ANONYMOUS\t*\tALTER\tALLOW\n",
        denied_cluster_action,
        "CLUSTER\tkafka-cluster\tLITERAL\tUser:ANONYMOUS\t*\tDESCRIBE\tALLOW\n",
        "GROUP\tsink-\tPREFIXED\tUser:sink\t10.0.0.9\tREAD\tALLOW\n",
        "TOPIC\torders\tLITERAL\tUser:alice\t*\tDESCRIBE\tALLOW\n",
        "TOPIC\torders\tLITERAL\tUser:alice\t*\tREAD\tALLOW\n",
        "TOPIC\tsecret\tLITERAL\tUser:ANONYMOUS\t*\tWRITE\tDENY\n",
    ];
    assert_eq!(acl(&["list"])?, expected.concat());
    assert_eq!(acl(&["list", "--topic", "orders", "--principal", "User:alice"])?.lines().count(), 2);

    // A real client library manages the same ACLs and meets the DENY as Kafka reports it.
    let args = ["--bootstrap", bootstrap.as_str(), "--expect-principal", "User:alice", "--denied-topic", "secret"];
    let out = python("acl_admin_check.py", &args, T)?;
    assert!(out.contains("acl admin ok"), "{out}");

    let enforced = |port: u16| -> anyhow::Result<()> {
        let mut conn = KafkaConn::connect(port)?;
        assert_eq!(produce(&mut conn, "secret")?, TOPIC_AUTHORIZATION_FAILED, "DENY Write");
        assert_eq!(produce(&mut conn, "orders")?, TOPIC_AUTHORIZATION_FAILED, "ACLs only for alice");
        assert_eq!(produce(&mut conn, "open")?, 0, "no ACL on the topic: allowed by the setting");
        assert_eq!(fetch(&mut conn, "orders", -1)?, TOPIC_AUTHORIZATION_FAILED);
        assert_eq!(fetch(&mut conn, "open", -1)?, 0);
        let topics = listed_topics(&mut conn)?;
        assert!(
            topics.contains(&"open".to_string()) && !topics.iter().any(|t| t == "orders" || t == "secret"),
            "{topics:?}"
        );
        Ok(())
    };
    enforced(broker.port)?;
    // Posing as a follower (replica id 1) needs ClusterAction, denied to ANONYMOUS here.
    let mut conn = KafkaConn::connect(broker.port)?;
    assert_eq!(fetch(&mut conn, "open", 1)?, TOPIC_AUTHORIZATION_FAILED);
    let removed = acl(&["remove", "--deny-principal", "User:ANONYMOUS", "--operation", "ClusterAction", "--cluster"])?;
    assert!(removed.ends_with("Removed 1 ACLs.\n"), "{removed}");
    // Still refused: the cluster has ACLs, and none allows ANONYMOUS ClusterAction.
    assert_eq!(fetch(&mut conn, "open", 1)?, TOPIC_AUTHORIZATION_FAILED);
    acl(&["add", "--allow-principal", "User:ANONYMOUS", "--operation", "ClusterAction", "--cluster"])?;
    assert_ne!(fetch(&mut conn, "open", 1)?, TOPIC_AUTHORIZATION_FAILED);
    drop(conn);

    broker.stop()?;
    broker.restart()?;
    let allowed_cluster_action = denied_cluster_action.replace("DENY", "ALLOW");
    let now: String =
        expected.iter().map(|l| if *l == denied_cluster_action { &allowed_cluster_action } else { *l }).collect();
    assert_eq!(acl(&["list"])?, now);
    enforced(broker.port)
}

#[test]
fn with_no_acl_nothing_is_allowed_and_without_an_authorizer_acls_are_refused() -> anyhow::Result<()> {
    let denying = BrokerProcess::start("[authorization]\nenabled = true\n")?;
    let mut conn = KafkaConn::connect(denying.port)?;
    assert_eq!(produce(&mut conn, "anything")?, TOPIC_AUTHORIZATION_FAILED);
    assert!(listed_topics(&mut conn)?.is_empty());
    let refused = millrace(&["acl", "list", "--bootstrap", &denying.bootstrap()]).expect_err("listed without Describe");
    assert!(refused.to_string().contains("ClusterAuthorizationFailed"), "{refused}");

    let open = BrokerProcess::start("")?;
    let refused =
        millrace(&["acl", "list", "--bootstrap", &open.bootstrap()]).expect_err("listed without an authorizer");
    assert!(refused.to_string().contains("SecurityDisabled"), "{refused}");
    Ok(())
}
