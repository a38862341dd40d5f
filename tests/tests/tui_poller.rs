//! The `millrace top` poller against a real broker process: what it reads, that a steady refresh
//! sends exactly the requests `plan_requests` predicts, and that a poller that found no cluster
//! recovers once a broker answers.

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{CreateTopicsRequest, GroupId, OffsetCommitRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use millrace_protocol::Connection;
use millrace_tests::{value_batch, BrokerProcess};
use millrace_tui::model::Snapshot;
use millrace_tui::poller::{plan_requests, ClusterShape, MetricsSource, Poll, Poller, PollerConfig, Versions};
use std::time::{Duration, SystemTime};

const TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on waiting for the broker to elect itself and create its offsets topic.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// A broker process with default settings (node id 1), started off the async runtime because
/// starting waits for its log to say it is ready.
async fn start_broker() -> anyhow::Result<BrokerProcess> {
    tokio::task::spawn_blocking(|| BrokerProcess::start("")).await?
}

fn config(bootstrap: &str) -> PollerConfig {
    PollerConfig {
        bootstrap: bootstrap.split(',').map(str::to_string).collect(),
        metrics: MetricsSource::Discover,
        request_timeout: TIMEOUT,
        configs_every: Duration::from_secs(3_600),
        security: Default::default(),
    }
}

/// `count` records valued "record 0", "record 1", …
fn batch(count: usize) -> anyhow::Result<bytes::Bytes> {
    value_batch(&(0..count).map(|i| format!("record {i}")).collect::<Vec<_>>())
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// Retries `attempt` until it returns true, failing after [`READY_WITHIN`] or on its error.
async fn eventually<F: std::future::Future<Output = anyhow::Result<bool>>>(
    what: &str,
    mut attempt: impl FnMut() -> F,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + READY_WITHIN;
    while !attempt().await? {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// A topic `t` with 3 partitions holding 5, 2 and 0 records, and group `g1` having committed
/// offset 3 on partition 0.
async fn populate(addr: &str) -> anyhow::Result<()> {
    let mut conn = Connection::connect(addr, TIMEOUT).await?;
    let create = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(name("t"))
            .with_num_partitions(3)
            .with_replication_factor(1)])
        .with_timeout_ms(5_000);
    let created = conn.request(5, &create, TIMEOUT).await?;
    assert_eq!(created.topics[0].error_code, 0, "{created:?}");
    let produce =
        ProduceRequest::default().with_acks(1).with_timeout_ms(5_000).with_topic_data(vec![TopicProduceData::default(
        )
        .with_name(name("t"))
        .with_partition_data(vec![
            PartitionProduceData::default().with_index(0).with_records(Some(batch(5)?)),
            PartitionProduceData::default().with_index(1).with_records(Some(batch(2)?)),
        ])]);
    let mut produced = false;
    for _ in 0..100 {
        let answer = conn.request(8, &produce, TIMEOUT).await?;
        if answer.responses[0].partition_responses.iter().all(|p| p.error_code == 0) {
            produced = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(produced, "producing to t");
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g1")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default().with_name(name("t")).with_partitions(vec![
            OffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(3),
        ])]);
    let conn = tokio::sync::Mutex::new(conn);
    eventually("a committed offset", || async {
        let answer = conn.lock().await.request(8, &commit, TIMEOUT).await?;
        Ok(answer.topics[0].partitions[0].error_code == 0)
    })
    .await
}

#[tokio::test]
async fn reads_a_broker_and_a_steady_refresh_costs_what_the_plan_says() -> anyhow::Result<()> {
    let broker = start_broker().await?;
    let kafka = broker.bootstrap();
    eventually("the broker to register", || async {
        let mut probe = Poller::new(config(&kafka)).map_err(anyhow::Error::msg)?;
        Ok(matches!(probe.poll().await, Poll::Answered(raw) if !raw.brokers.is_empty()))
    })
    .await?;
    populate(&kafka).await?;

    let mut poller = Poller::new(config(&kafka)).map_err(anyhow::Error::msg)?;
    let Poll::Answered(first) = poller.poll().await else { panic!("first refresh failed") };
    assert_eq!(first.requests.get("DescribeConfigs"), 1, "asked once for the admin address");
    assert!(first.requests.get("ApiVersions") >= 1, "new connections negotiate versions");
    let snapshot = Snapshot::next(&Snapshot::waiting(&kafka), first, SystemTime::now());
    // A second refresh: connections and coordinators cached, configuration not due.
    let Poll::Answered(raw) = poller.poll().await else { panic!("second refresh failed") };
    let steady = raw.requests.clone();
    let snapshot = Snapshot::next(&snapshot, raw, SystemTime::now());

    let broker_row = &snapshot.brokers[0];
    assert_eq!((broker_row.id, broker_row.is_controller), (1, true));
    let expected_url = format!("http://127.0.0.1:{}/metrics", broker.admin_port);
    assert_eq!(broker_row.metrics_url.as_deref(), Some(expected_url.as_str()));
    let sample = broker_row.metrics.as_ref().expect("a metrics scrape");
    assert!(sample.topics.get("t").is_some_and(|(bytes_in, _)| *bytes_in > 0.0), "{sample:?}");
    assert!(broker_row.bytes_in_rate.is_some(), "two scrapes give a rate");

    let t = snapshot.topic("t").expect("topic t");
    let ends: Vec<Option<i64>> = t.partitions.iter().map(|p| p.log_end).collect();
    assert_eq!(ends, vec![Some(5), Some(2), Some(0)]);
    assert_eq!(t.partitions[0].log_start, Some(0));
    assert!(t.partitions[0].size_bytes.is_some_and(|s| s > 0), "size from /metrics");

    let g1 = snapshot.group("g1").expect("group g1");
    assert_eq!(g1.coordinator, Some(1));
    assert_eq!(g1.error, None);
    assert_eq!((g1.partitions[0].committed, g1.partitions[0].lag), (Some(3), Some(2)));
    assert_eq!(g1.total_lag, 2);

    // What the plan predicts for this shape is exactly what was sent.
    let mut shape = ClusterShape { brokers: vec![1], metrics_endpoints: 1, ..ClusterShape::default() };
    for topic in &snapshot.topics {
        for p in &topic.partitions {
            shape.partitions_by_leader.entry(p.leader).or_default().push((p.topic.clone(), p.partition));
        }
    }
    shape.groups_by_coordinator.insert(1, snapshot.groups.iter().map(|g| g.id.clone()).collect());
    // The broker creates the pipeline's status topic; one Fetch a refresh reads what is new.
    shape.status_topic = snapshot.topic(millrace_status::STATUS_TOPIC).is_some();
    assert!(shape.status_topic, "the status topic was not created");
    assert_eq!(steady.get("Fetch"), 1);
    assert_eq!(steady, plan_requests(&shape, &Versions::latest()));
    assert_eq!(steady.get("ListOffsets"), 2);
    Ok(())
}

#[tokio::test]
async fn an_unreachable_cluster_is_reported_and_retried() -> anyhow::Result<()> {
    // Bind then drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr = format!("127.0.0.1:{port}");
    let mut poller = Poller::new(config(&format!("{addr},127.0.0.1:{port}"))).map_err(anyhow::Error::msg)?;
    match poller.poll().await {
        Poll::Unreachable { error, .. } => assert!(error.contains(&addr), "{error}"),
        Poll::Answered(_) => panic!("nothing listens on {addr}"),
    }
    // The same poller recovers once a broker answers at a bootstrap address.
    let broker = start_broker().await?;
    poller.add_bootstrap(broker.bootstrap());
    let deadline = tokio::time::Instant::now() + READY_WITHIN;
    while !matches!(poller.poll().await, Poll::Answered(_)) {
        assert!(tokio::time::Instant::now() < deadline, "the poller did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
