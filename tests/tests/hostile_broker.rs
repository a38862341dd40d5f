//! Hostile clients against a real broker process (issue 13's findings 1-5, the request-level
//! parts of 7, and 10): each case sends what an attacker or a broken client would, then checks
//! that the broker still serves, that other clients' data is intact and that memory stayed
//! bounded. Connection-level limits and the controller port are in `hostile_connections.rs`.

use anyhow::{ensure, Context};
use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{
    ApiVersionsRequest, BrokerId, CreateTopicsRequest, DeleteTopicsRequest, FetchRequest, InitProducerIdRequest,
    ListOffsetsRequest, MetadataRequest, ProduceRequest, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use millrace_tests::{broker_command, connect_timeout, free_port, BrokerProcess, KafkaConn, LoggedProcess};
use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CORRUPT_MESSAGE: i16 = 2;
const MESSAGE_TOO_LARGE: i16 = 10;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const INVALID_RECORD: i16 = 87;
const UNKNOWN_PRODUCER_ID: i16 = 59;
const POLICY_VIOLATION: i16 = 44;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A v2 batch of `values` from kafka-protocol's encoder (what a real client sends), created now.
fn batch(values: &[&str], key: Option<&str>, producer: Option<(i64, i16, i32)>) -> anyhow::Result<Bytes> {
    millrace_tests::kafka::record_batch(values, key, producer, now_ms())
}

/// A batch header over `payload` claiming `records` records, with a valid CRC-32C: what passes a
/// header-only check.
fn crafted_batch(payload: &[u8], records: i32, attributes: i16) -> Bytes {
    crafted_batch_at(0, now_ms(), payload, records, attributes)
}

/// [`crafted_batch`] with its base offset and timestamps given (to be placed in a log by hand).
fn crafted_batch_at(base_offset: i64, timestamp: i64, payload: &[u8], records: i32, attributes: i16) -> Bytes {
    let mut out = Vec::with_capacity(61 + payload.len());
    out.extend(base_offset.to_be_bytes());
    out.extend(((49 + payload.len()) as i32).to_be_bytes()); // batch length
    out.extend((-1i32).to_be_bytes()); // partition leader epoch
    out.push(2); // magic
    out.extend(0u32.to_be_bytes()); // crc, below
    out.extend(attributes.to_be_bytes());
    out.extend((records - 1).to_be_bytes()); // last offset delta
    out.extend(timestamp.to_be_bytes()); // base timestamp
    out.extend(timestamp.to_be_bytes()); // max timestamp
    out.extend((-1i64).to_be_bytes()); // producer id
    out.extend((-1i16).to_be_bytes()); // producer epoch
    out.extend((-1i32).to_be_bytes()); // base sequence
    out.extend(records.to_be_bytes());
    out.extend_from_slice(payload);
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(out)
}

fn create_topic(conn: &mut KafkaConn, topic: &str, configs: &[(&str, &str)]) -> anyhow::Result<i16> {
    use kafka_protocol::messages::create_topics_request::CreatableTopicConfig;
    let configs = configs
        .iter()
        .map(|(k, v)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(k.to_string()))
                .with_value(Some(StrBytes::from_string(v.to_string())))
        })
        .collect();
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(1)
            .with_replication_factor(1)
            .with_configs(configs)])
        .with_timeout_ms(10_000);
    let response = conn.request(5, &request)?;
    Ok(response.topics.first().map_or(-1, |t| t.error_code))
}

fn produce(conn: &mut KafkaConn, topic: &str, records: Bytes) -> anyhow::Result<PartitionProduceResponse> {
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
        TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(records))]),
    ]);
    let response = conn.request(9, &request)?;
    response
        .responses
        .into_iter()
        .next()
        .and_then(|t| t.partition_responses.into_iter().next())
        .context("no partition in the produce response")
}

fn log_end_offset(conn: &mut KafkaConn, topic: &str) -> anyhow::Result<i64> {
    let request =
        ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![ListOffsetsPartition::default().with_partition_index(0).with_timestamp(-1)])]);
    let response = conn.request(4, &request)?;
    let partition = response.topics.first().and_then(|t| t.partitions.first()).context("no partition")?;
    ensure!(partition.error_code == 0, "ListOffsets error {}", partition.error_code);
    Ok(partition.offset)
}

/// Records bytes returned by one Fetch of `partitions` (topic, index, partition_max_bytes).
fn fetch_bytes(
    conn: &mut KafkaConn,
    topic: &str,
    copies: usize,
    partition_max: i32,
    max_bytes: i32,
) -> anyhow::Result<(usize, usize)> {
    let partitions = (0..copies)
        .map(|_| {
            FetchPartition::default().with_partition(0).with_fetch_offset(0).with_partition_max_bytes(partition_max)
        })
        .collect();
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(max_bytes)
        .with_topics(vec![FetchTopic::default().with_topic(name(topic)).with_partitions(partitions)]);
    let response = conn.request(11, &request)?;
    let mut total = 0;
    let mut entries = 0;
    for topic in &response.responses {
        for partition in &topic.partitions {
            entries += 1;
            total += partition.records.as_ref().map_or(0, Bytes::len);
        }
    }
    Ok((entries, total))
}

/// The canary every case checks at the end: a topic a well-behaved client wrote before the
/// attack, still readable and unchanged.
struct Canary {
    end: i64,
}

impl Canary {
    fn plant(conn: &mut KafkaConn) -> anyhow::Result<Canary> {
        ensure!(create_topic(conn, "canary", &[])? == 0, "creating the canary topic");
        let response = produce(conn, "canary", batch(&["a", "b", "c"], None, None)?)?;
        ensure!(response.error_code == 0, "canary produce failed: {}", response.error_code);
        Ok(Canary { end: log_end_offset(conn, "canary")? })
    }

    fn check(&self, broker: &BrokerProcess) -> anyhow::Result<()> {
        let mut conn = KafkaConn::connect(broker.port).context("the broker stopped accepting")?;
        ensure!(conn.request(3, &ApiVersionsRequest::default())?.error_code == 0, "ApiVersions failed");
        ensure!(log_end_offset(&mut conn, "canary")? == self.end, "the canary topic changed");
        let (_, bytes) = fetch_bytes(&mut conn, "canary", 1, 1 << 20, 1 << 20)?;
        ensure!(bytes > 0, "the canary records are no longer readable");
        Ok(())
    }
}

/// Kafka's zigzag varint.
fn zigzag(v: i64) -> Vec<u8> {
    let mut raw = ((v << 1) ^ (v >> 63)) as u64;
    let mut out = Vec::new();
    loop {
        let byte = (raw & 0x7f) as u8;
        raw >>= 7;
        if raw == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmHWM missing")
}

#[test]
fn a_metadata_frame_claiming_2_pow_31_topics_is_refused_without_allocating() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let mut conn = KafkaConn::connect(broker.port)?;
    let canary = Canary::plant(&mut conn)?;
    // Finding 1: Metadata v1, client id "x", a topic array claiming 2^31 - 1 entries: 19 bytes.
    let body: &[u8] = &[0, 3, 0, 1, 0, 0, 0, 9, 0, 1, b'x', 0x7f, 0xff, 0xff, 0xff];
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    assert_eq!(frame.len(), 19);
    let mut attacker = KafkaConn::connect(broker.port)?;
    attacker.send_raw(&frame)?;
    assert!(attacker.is_closed_by_peer(), "a malformed request must close its connection");
    // The same claim in a compact (flexible) array: Metadata v12, count varint 2^32 - 1.
    let body: &[u8] = &[0, 3, 0, 12, 0, 0, 0, 10, 0, 1, b'x', 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    let mut attacker = KafkaConn::connect(broker.port)?;
    attacker.send_raw(&frame)?;
    assert!(attacker.is_closed_by_peer());
    canary.check(&broker)?;
    let pid = broker.pid().context("broker pid")?;
    assert!(rss_kib(pid)? < 512 * 1024, "peak RSS {} KiB", rss_kib(pid)?);
    Ok(())
}

#[test]
fn batches_that_lie_about_their_records_never_reach_the_log() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let mut conn = KafkaConn::connect(broker.port)?;
    let canary = Canary::plant(&mut conn)?;
    ensure!(create_topic(&mut conn, "compacted", &[("cleanup.policy", "compact")])? == 0);
    ensure!(create_topic(&mut conn, "plain", &[])? == 0);

    // Findings 2 and 3: 61 bytes claiming 2^31 - 1 records, valid CRC.
    let liar = crafted_batch(&[], i32::MAX, 0);
    assert_eq!(liar.len(), 61);
    for topic in ["compacted", "plain"] {
        let response = produce(&mut conn, topic, liar.clone())?;
        assert_eq!(response.error_code, CORRUPT_MESSAGE, "{topic}: {:?}", response.error_message);
        assert_eq!(log_end_offset(&mut conn, topic)?, 0, "{topic}: the log end offset moved");
    }
    // 200 random bytes behind a valid CRC, claiming 3 records.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..200)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let response = produce(&mut conn, "plain", crafted_batch(&noise, 3, 0))?;
    assert!(
        [CORRUPT_MESSAGE, INVALID_RECORD].contains(&response.error_code),
        "random records accepted: {}",
        response.error_code
    );
    assert_eq!(log_end_offset(&mut conn, "plain")?, 0);

    // A keyless record on the compacted topic: refused, and the record named.
    let response = produce(&mut conn, "compacted", batch(&["x"], None, None)?)?;
    assert_eq!(response.error_code, INVALID_RECORD);
    assert_eq!(response.record_errors.first().map(|e| e.batch_index), Some(0), "KIP-467 record_errors");

    // A real client's batch still goes in afterwards.
    let response = produce(&mut conn, "plain", batch(&["ok"], None, None)?)?;
    assert_eq!(response.error_code, 0);
    assert_eq!(log_end_offset(&mut conn, "plain")?, 1);
    let response = produce(&mut conn, "compacted", batch(&["ok"], Some("k"), None)?)?;
    assert_eq!(response.error_code, 0);
    canary.check(&broker)
}

#[test]
fn a_decompression_bomb_is_refused_at_the_cap_with_bounded_memory() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let mut conn = KafkaConn::connect(broker.port)?;
    let canary = Canary::plant(&mut conn)?;
    ensure!(create_topic(&mut conn, "bombed", &[])? == 0);
    // Finding 4: 48 well-formed records of 1 MiB of zeros each, gzipped to ~50 KB: past the cap
    // of 32 x the 1 MiB max.message.bytes, so inflating stops at the cap.
    let bomb = gzip_bomb(48)?;
    ensure!(bomb.len() < 1 << 20, "the bomb must fit max.message.bytes ({} bytes)", bomb.len());
    let pid = broker.pid().context("broker pid")?;
    let before = rss_kib(pid)?;
    let response = produce(&mut conn, "bombed", crafted_batch(&bomb, 48, 1))?;
    assert_eq!(response.error_code, MESSAGE_TOO_LARGE, "bomb answered {:?}", response.error_message);
    assert_eq!(log_end_offset(&mut conn, "bombed")?, 0);
    let after = rss_kib(pid)?;
    assert!(after < before + 64 * 1024, "peak RSS grew from {before} to {after} KiB");
    canary.check(&broker)
}

/// `records` well-formed records of 1 MiB of zeros each, gzipped (~1 KB per record).
fn gzip_bomb(records: i64) -> anyhow::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = vec![0u8; 1 << 20];
    for i in 0..records {
        let mut body = vec![0u8, 0];
        body.extend(zigzag(i));
        body.extend(zigzag(-1));
        body.extend(zigzag(1 << 20));
        let tail = zigzag(0);
        encoder.write_all(&zigzag((body.len() + zeros.len() + tail.len()) as i64))?;
        encoder.write_all(&body)?;
        encoder.write_all(&zeros)?;
        encoder.write_all(&tail)?;
    }
    Ok(encoder.finish()?)
}

#[test]
fn a_bomb_already_in_a_log_is_inflated_only_to_the_cap_by_list_offsets() -> anyhow::Result<()> {
    // Finding 4's read side: a bomb stored before validation existed (or written to disk by
    // hand) is inflated by ListOffsets by time. With max.message.bytes = 64 KiB the cap is
    // 2 MiB; the bomb holds 64 MiB.
    let mut broker = BrokerProcess::start("")?;
    let mut conn = KafkaConn::connect(broker.port)?;
    let canary = Canary::plant(&mut conn)?;
    ensure!(create_topic(&mut conn, "stored", &[("max.message.bytes", "65536")])? == 0);
    let before_bomb = now_ms();
    ensure!(produce(&mut conn, "stored", batch(&["first"], None, None)?)?.error_code == 0);
    drop(conn);
    broker.stop()?;
    let segment = broker.data_dir.join("stored-0").join(format!("{:020}.log", 0));
    let bomb = crafted_batch_at(1, before_bomb + 60_000, &gzip_bomb(64)?, 64, 1);
    std::fs::OpenOptions::new().append(true).open(&segment)?.write_all(&bomb)?;
    broker.restart()?;
    let pid = broker.pid().context("broker pid")?;
    let before = rss_kib(pid)?;
    let mut conn = KafkaConn::connect(broker.port)?;
    let request =
        ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![ListOffsetsTopic::default()
            .with_name(name("stored"))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(before_bomb + 30_000)])]);
    let response = conn.request(4, &request)?;
    let partition = response.topics.first().and_then(|t| t.partitions.first()).context("no partition")?;
    assert_ne!(partition.error_code, 0, "the bomb's records were decoded: offset {}", partition.offset);
    let after = rss_kib(pid)?;
    assert!(after < before + 32 * 1024, "peak RSS grew from {before} to {after} KiB");
    canary.check(&broker)
}

#[test]
fn clients_cannot_create_or_delete_the_metadata_quorum_or_internal_topics() -> anyhow::Result<()> {
    let mut broker = BrokerProcess::start("")?;
    let mut conn = KafkaConn::connect(broker.port)?;
    let canary = Canary::plant(&mut conn)?;
    // Finding 5.
    assert_eq!(create_topic(&mut conn, "__cluster_metadata", &[])?, INVALID_TOPIC_EXCEPTION);
    assert_eq!(create_topic(&mut conn, "__consumer_offsets", &[])?, INVALID_TOPIC_EXCEPTION);
    let metadata = conn.request(
        9,
        &MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(name("__cluster_metadata")))]))
            .with_allow_auto_topic_creation(true),
    )?;
    assert_ne!(metadata.topics.first().map(|t| t.error_code), Some(0), "auto-created __cluster_metadata");
    for victim in ["__cluster_metadata", "__consumer_offsets"] {
        let request = DeleteTopicsRequest::default()
            .with_topics(vec![DeleteTopicState::default().with_name(Some(name(victim)))])
            .with_timeout_ms(10_000);
        let response = conn.request(6, &request)?;
        assert_ne!(response.responses.first().map(|r| r.error_code), Some(0), "deleted {victim}");
    }
    drop(conn);
    // Everything is still known after a restart: the quorum's store was not touched.
    broker.stop()?;
    broker.restart()?;
    canary.check(&broker)?;
    assert!(broker.data_dir.join("meta").join("__cluster_metadata-0").is_dir());
    assert!(!broker.data_dir.join("__cluster_metadata-0").exists());
    Ok(())
}

#[test]
fn fetch_responses_are_clamped_and_duplicate_partitions_read_once() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("[server]\nfetch_max_bytes = \"256KiB\"\n")?;
    let mut conn = KafkaConn::connect(broker.port)?;
    let canary = Canary::plant(&mut conn)?;
    ensure!(create_topic(&mut conn, "big", &[])? == 0);
    let value = "v".repeat(60_000);
    for _ in 0..16 {
        let response = produce(&mut conn, "big", batch(&[value.as_str()], None, None)?)?;
        ensure!(response.error_code == 0, "produce failed: {}", response.error_code);
    }
    // Finding 7: one partition listed 100 times, max_bytes = 0 (no limit before the fix).
    let (entries, bytes) = fetch_bytes(&mut conn, "big", 100, 1 << 20, 0)?;
    assert_eq!(entries, 1, "a partition listed 100 times is answered once");
    assert!(bytes <= 256 * 1024 + 61_000, "{bytes} bytes past fetch.max.bytes = 256 KiB");
    let (_, bytes) = fetch_bytes(&mut conn, "big", 1, 1 << 20, i32::MAX)?;
    assert!(bytes <= 256 * 1024 + 61_000, "a huge max_bytes is clamped too ({bytes} bytes)");
    assert!(bytes >= 4 * 60_000, "the clamp still returns data ({bytes} bytes)");
    canary.check(&broker)
}

#[test]
fn auto_creation_is_bounded_per_request_and_in_the_cluster() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("[topics]\nmax_partitions = 120\nmax_partitions_per_request = 40\n")?;
    let mut conn = KafkaConn::connect(broker.port)?;
    let count_topics = |conn: &mut KafkaConn| -> anyhow::Result<usize> {
        let all = conn.request(9, &MetadataRequest::default().with_topics(None))?;
        Ok(all.topics.iter().filter(|t| t.name.as_ref().is_some_and(|n| n.0.starts_with("auto-"))).count())
    };
    // Finding 7: one Metadata request naming 2,000 unknown topics.
    let wanted = |round: usize| -> MetadataRequest {
        MetadataRequest::default()
            .with_topics(Some(
                (0..2_000)
                    .map(|i| MetadataRequestTopic::default().with_name(Some(name(&format!("auto-{round}-{i}")))))
                    .collect(),
            ))
            .with_allow_auto_topic_creation(true)
    };
    let response = conn.request(9, &wanted(0))?;
    let refused = response.topics.iter().filter(|t| t.error_code == POLICY_VIOLATION).count();
    assert_eq!(count_topics(&mut conn)?, 40, "one request creates at most max_partitions_per_request");
    assert_eq!(refused, 2_000 - 40);
    for round in 1..5 {
        conn.request(9, &wanted(round))?;
    }
    // __consumer_offsets holds 50 of the 120, the pipeline's status topic 1.
    assert_eq!(count_topics(&mut conn)?, 69, "the cluster holds at most max_partitions");
    let canary_code = create_topic(&mut conn, "one-more", &[])?;
    assert_eq!(canary_code, POLICY_VIOLATION);
    Ok(())
}

#[test]
fn a_client_cannot_fence_another_producer() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let mut victim = KafkaConn::connect(broker.port)?;
    ensure!(create_topic(&mut victim, "idem", &[])? == 0);
    let init = victim
        .request(4, &InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(-1))?;
    let (id, epoch) = (init.producer_id.0, init.producer_epoch);
    ensure!(init.error_code == 0 && id >= 0, "InitProducerId: {init:?}");
    assert_eq!(produce(&mut victim, "idem", batch(&["1"], None, Some((id, epoch, 0)))?)?.error_code, 0);
    // Finding 7: InitProducerId naming the victim's id and epoch (KIP-360's re-initialisation).
    let mut attacker = KafkaConn::connect(broker.port)?;
    let stolen = attacker.request(
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(-1)
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch),
    )?;
    assert_ne!(stolen.producer_id.0, id, "the attacker was handed the victim's id");
    assert_eq!(produce(&mut victim, "idem", batch(&["2"], None, Some((id, epoch, 1)))?)?.error_code, 0);
    Ok(())
}

#[test]
fn idle_producer_state_expires() -> anyhow::Result<()> {
    let broker =
        BrokerProcess::start("[log]\nproducer_id_expiration = \"1s\"\nretention_check_interval = \"200ms\"\n")?;
    let mut conn = KafkaConn::connect(broker.port)?;
    ensure!(create_topic(&mut conn, "expiring", &[])? == 0);
    let init =
        conn.request(4, &InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(-1))?;
    let (id, epoch) = (init.producer_id.0, init.producer_epoch);
    ensure!(init.error_code == 0 && id >= 0, "InitProducerId: {init:?}");
    assert_eq!(produce(&mut conn, "expiring", batch(&["1"], None, Some((id, epoch, 0)))?)?.error_code, 0);
    assert_eq!(produce(&mut conn, "expiring", batch(&["2"], None, Some((id, epoch, 1)))?)?.error_code, 0);
    std::thread::sleep(Duration::from_millis(2_500));
    // The state is gone: a sequence in the middle is unknown, as in Kafka after expiry.
    let response = produce(&mut conn, "expiring", batch(&["3"], None, Some((id, epoch, 2)))?)?;
    assert_eq!(response.error_code, UNKNOWN_PRODUCER_ID);
    Ok(())
}

#[test]
fn a_request_right_after_start_is_answered_with_this_broker_listed() -> anyhow::Result<()> {
    // Finding 10: librdkafka's CreateTopics timed out 1 start in 8 when its first Metadata
    // came before the broker had registered (no broker listed, so no controller to send to).
    for round in 0..20 {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let config = dir.path().join("broker.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = {:?}\nlisten = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:{}\"\n",
                dir.path().join("data").display().to_string(),
                free_port()
            ),
        )?;
        let mut process = LoggedProcess::new(dir.path().join("broker.log"));
        process.spawn(broker_command(&config, &[]))?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while connect_timeout(&format!("127.0.0.1:{port}"), Duration::from_millis(200)).is_err() {
            ensure!(Instant::now() < deadline, "round {round}: the broker never listened\n{}", process.log());
            std::thread::sleep(Duration::from_millis(2));
        }
        let mut conn = KafkaConn::connect(port)?;
        let metadata = conn.request(1, &MetadataRequest::default().with_topics(Some(Vec::new())))?;
        assert!(!metadata.brokers.is_empty(), "round {round}: Metadata listed no broker");
        process.terminate(Duration::from_secs(10))?;
    }
    Ok(())
}

/// The broker's `duplicate_batches_total`.
fn duplicates_absorbed(broker: &BrokerProcess) -> anyhow::Result<f64> {
    let metrics = broker.admin_get("/metrics")?;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("millrace_broker_duplicate_batches_total ")?.trim().parse().ok())
        .context("no duplicate_batches_total in /metrics")
}

#[test]
fn a_resent_idempotent_batch_is_acknowledged_again_not_written_twice_even_after_a_crash() -> anyhow::Result<()> {
    let mut broker = BrokerProcess::start("")?;
    let mut conn = KafkaConn::connect(broker.port)?;
    ensure!(create_topic(&mut conn, "dedup", &[])? == 0);
    let init =
        conn.request(4, &InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(-1))?;
    let (id, epoch) = (init.producer_id.0, init.producer_epoch);
    ensure!(init.error_code == 0 && id >= 0, "InitProducerId: {init:?}");
    let first = produce(&mut conn, "dedup", batch(&["a", "b"], None, Some((id, epoch, 0)))?)?;
    assert_eq!((first.error_code, first.base_offset), (0, 0));
    // The answer was "lost": the client sends the very same batch again.
    let resent = produce(&mut conn, "dedup", batch(&["a", "b"], None, Some((id, epoch, 0)))?)?;
    assert_eq!((resent.error_code, resent.base_offset), (0, 0), "the retry is acknowledged at the first offset");
    assert_eq!(log_end_offset(&mut conn, "dedup")?, 2, "the retry was written again");
    assert_eq!(duplicates_absorbed(&broker)?, 1.0);

    // After a crash the producer state is rebuilt from the log: the same retry is still absorbed.
    broker.kill9();
    broker.restart()?;
    let mut conn = KafkaConn::connect(broker.port)?;
    let after_crash = produce(&mut conn, "dedup", batch(&["a", "b"], None, Some((id, epoch, 0)))?)?;
    assert_eq!((after_crash.error_code, after_crash.base_offset), (0, 0));
    assert_eq!(log_end_offset(&mut conn, "dedup")?, 2, "the retry after the crash was written again");
    assert_eq!(duplicates_absorbed(&broker)?, 1.0);
    let next = produce(&mut conn, "dedup", batch(&["c"], None, Some((id, epoch, 2)))?)?;
    assert_eq!((next.error_code, next.base_offset), (0, 2));
    Ok(())
}
