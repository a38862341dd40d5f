//! Replays every committed fuzz input — the seed corpora under `fuzz/corpus/<target>/` and the
//! crash reproducers under `fuzz/regressions/<target>/` — through the fuzz targets' entry points
//! (`millrace_tests::fuzz_entry`), so a stable `cargo test` keeps checking what the fuzzers found.
//! `write_seed_corpora` (ignored) regenerates the generated seeds; see docs/fuzzing.md.

#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use millrace_tests::fuzz_entry::TARGETS;
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    millrace_tests::workspace_root().join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

#[test]
fn committed_corpora_and_regressions_replay() {
    for (target, entry) in TARGETS {
        let seeds: Vec<PathBuf> = files(&fuzz_dir().join("corpus").join(target))
            .into_iter()
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("seed-")))
            .collect();
        assert!(!seeds.is_empty(), "no committed seeds for fuzz target {target}");
        let regressions = files(&fuzz_dir().join("regressions").join(target));
        for path in seeds.iter().chain(&regressions) {
            let data = std::fs::read(path).unwrap();
            let outcome = std::panic::catch_unwind(|| entry(&data));
            assert!(outcome.is_ok(), "{target}: {} panics", path.display());
        }
    }
}

// ---- seed generation -------------------------------------------------------------------------

const NOW_MS: i64 = 1_700_000_000_000;

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn records(compression: Compression, with_headers: bool) -> Vec<u8> {
    let records: Vec<Record> = (0..3)
        .map(|i| {
            let mut headers = indexmap_default();
            if with_headers {
                headers.insert(s("trace"), Some(Bytes::from_static(b"abc")));
                headers.insert(s("empty"), None);
            }
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: if with_headers { 1000 } else { -1 },
                producer_epoch: if with_headers { 0 } else { -1 },
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: if with_headers { i as i32 } else { -1 },
                timestamp: NOW_MS + i,
                key: Some(Bytes::from(format!("key-{i}"))),
                value: Some(Bytes::from(format!(r#"{{"message":"line {i}","host":{{"name":"h1"}}}}"#))),
                headers,
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression }).unwrap();
    buf.to_vec()
}

fn indexmap_default<K: std::hash::Hash + Eq, V>() -> kafka_protocol::indexmap::IndexMap<K, V> {
    Default::default()
}

/// `[key index, version - min]` then the header from the correlation id on, then the body.
fn request_seed<R: Encodable>(api_key: ApiKey, version: i16, body: &R) -> Vec<u8> {
    let key_index = ApiKey::iter().position(|k| k == api_key).unwrap() as u8;
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(s("seed-client")));
    let mut buf = BytesMut::new();
    header.encode(&mut buf, api_key.request_header_version(version)).unwrap();
    body.encode(&mut buf, version).unwrap();
    let mut seed = vec![key_index, (version - api_key.valid_versions().min) as u8];
    seed.extend_from_slice(&buf[4..]);
    seed
}

#[test]
#[ignore = "writes fuzz/corpus/*/seed-*; run by hand when the seeds change"]
fn write_seed_corpora() {
    // Kafka requests.
    let topic = TopicName(s("logs"));
    let produce = ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![
        produce_request::TopicProduceData::default().with_name(topic.clone()).with_partition_data(vec![
            produce_request::PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(records(Compression::None, true)))),
        ]),
    ]);
    write("kafka_request", "produce-v3", &request_seed(ApiKey::Produce, 3, &produce));
    write("kafka_request", "produce-v9", &request_seed(ApiKey::Produce, 9, &produce));
    let produce_lz4 = ProduceRequest::default().with_acks(1).with_timeout_ms(5000).with_topic_data(vec![
        produce_request::TopicProduceData::default().with_name(topic.clone()).with_partition_data(vec![
            produce_request::PartitionProduceData::default()
                .with_index(1)
                .with_records(Some(Bytes::from(records(Compression::Lz4, false)))),
        ]),
    ]);
    write("kafka_request", "produce-v7-lz4", &request_seed(ApiKey::Produce, 7, &produce_lz4));
    write("kafka_request", "api-versions-v0", &request_seed(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default()));
    let api_versions = ApiVersionsRequest::default()
        .with_client_software_name(s("librdkafka"))
        .with_client_software_version(s("2.6.0"));
    write("kafka_request", "api-versions-v3", &request_seed(ApiKey::ApiVersions, 3, &api_versions));
    let metadata = MetadataRequest::default()
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default().with_name(Some(topic.clone()))]))
        .with_allow_auto_topic_creation(true);
    write("kafka_request", "metadata-v4", &request_seed(ApiKey::Metadata, 4, &metadata));
    write("kafka_request", "metadata-v12", &request_seed(ApiKey::Metadata, 12, &metadata));
    let fetch = FetchRequest::default().with_max_wait_ms(500).with_max_bytes(1 << 20).with_topics(vec![
        fetch_request::FetchTopic::default().with_topic(topic.clone()).with_partitions(vec![
            fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(10)
                .with_partition_max_bytes(1 << 20),
        ]),
    ]);
    write("kafka_request", "fetch-v4", &request_seed(ApiKey::Fetch, 4, &fetch));
    write("kafka_request", "fetch-v12", &request_seed(ApiKey::Fetch, 12, &fetch));
    let list_offsets = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
        list_offsets_request::ListOffsetsTopic::default().with_name(topic.clone()).with_partitions(vec![
            list_offsets_request::ListOffsetsPartition::default().with_partition_index(0).with_timestamp(-1),
        ]),
    ]);
    write("kafka_request", "list-offsets-v7", &request_seed(ApiKey::ListOffsets, 7, &list_offsets));
    let create = CreateTopicsRequest::default().with_timeout_ms(5000).with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(topic.clone())
            .with_num_partitions(3)
            .with_replication_factor(1)
            .with_configs(vec![create_topics_request::CreatableTopicConfig::default()
                .with_name(s("cleanup.policy"))
                .with_value(Some(s("compact")))]),
    ]);
    write("kafka_request", "create-topics-v5", &request_seed(ApiKey::CreateTopics, 5, &create));
    let find = FindCoordinatorRequest::default().with_key_type(0).with_coordinator_keys(vec![s("sinks")]);
    write("kafka_request", "find-coordinator-v4", &request_seed(ApiKey::FindCoordinator, 4, &find));
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(s("sinks")))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(30_000)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(b"\x00\x01\x00\x00\x00\x01\x00\x04logs"))]);
    write("kafka_request", "join-group-v7", &request_seed(ApiKey::JoinGroup, 7, &join));
    let commit = OffsetCommitRequest::default().with_group_id(GroupId(s("sinks"))).with_topics(vec![
        offset_commit_request::OffsetCommitRequestTopic::default().with_name(topic.clone()).with_partitions(vec![
            offset_commit_request::OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(42),
        ]),
    ]);
    write("kafka_request", "offset-commit-v8", &request_seed(ApiKey::OffsetCommit, 8, &commit));
    let offset_fetch = OffsetFetchRequest::default().with_group_id(GroupId(s("sinks"))).with_topics(Some(vec![
        offset_fetch_request::OffsetFetchRequestTopic::default()
            .with_name(topic.clone())
            .with_partition_indexes(vec![0]),
    ]));
    write("kafka_request", "offset-fetch-v5", &request_seed(ApiKey::OffsetFetch, 5, &offset_fetch));
    let init = InitProducerIdRequest::default().with_transaction_timeout_ms(60_000).with_producer_id(ProducerId(-1));
    write("kafka_request", "init-producer-id-v4", &request_seed(ApiKey::InitProducerId, 4, &init));
    let describe = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("logs")),
    ]);
    write("kafka_request", "describe-configs-v4", &request_seed(ApiKey::DescribeConfigs, 4, &describe));

    // Record batches, one per codec; flag byte 0 = as encoded (CRC valid).
    for (name, compression) in [
        ("none", Compression::None),
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ] {
        let mut seed = vec![0u8];
        seed.extend(records(compression, name == "none"));
        write("record_batch", name, &seed);
        // Fetched record sets, one batch per codec (flag byte 0: CRC valid, as encoded).
        let mut fetched = vec![0u8];
        fetched.extend(records(compression, true));
        write("fetched_records", name, &fetched);
    }
    let mut two = vec![3u8];
    two.extend(records(Compression::None, false));
    two.extend(records(Compression::Zstd, true));
    write("record_batch", "two-batches-compacted", &two);

    // A fetched record set of several batches ending mid-batch, as a Fetch response may.
    let mut partial = vec![0u8];
    partial.extend(records(Compression::None, false));
    partial.extend(records(Compression::Lz4, true));
    let last = records(Compression::None, true);
    partial.extend(&last[..last.len() / 2]);
    write("fetched_records", "partial-last-batch", &partial);

    // Syslog: the first byte picks the time zone and the piece size.
    let syslog: &[(&str, &str)] = &[
        ("rfc3164", "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8\n"),
        ("rfc3164-pid", "<13>Nov 23 11:00:00 host1 sshd[4242]: Accepted publickey for deploy\n"),
        (
            "rfc5424",
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] An application event log entry\n",
        ),
        ("rfc5424-nil", "<14>1 2026-11-23T11:00:00.123456+01:00 - - - - - \u{feff}bom message\n"),
        ("octet-counted", "71 <34>1 2026-11-23T11:00:00Z h app 1 - [a b=\"c\\\"d\\]\"] msg\n59 <13>Nov  3 01:02:03 h tag: second frame"),
        ("no-priority", "plain line without priority\r\n\n<999>bad priority\0"),
    ];
    for (i, (name, text)) in syslog.iter().enumerate() {
        let mut seed = vec![(i * 7) as u8];
        seed.extend_from_slice(text.as_bytes());
        write("syslog", name, &seed);
    }

    // Prometheus text exposition.
    write(
        "prometheus",
        "counter-gauge",
        b"# HELP http_requests_total The total number of HTTP requests.\n# TYPE http_requests_total counter\nhttp_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\nhttp_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n\n# TYPE temperature gauge\ntemperature{room=\"a\\\\b \\\"c\\\"\\n\"} -12.5e-3\nmissing_type NaN\nplus_inf +Inf\nminus_inf -Inf\n",
    );
    write(
        "prometheus",
        "histogram-summary",
        b"# TYPE rpc_duration_seconds summary\nrpc_duration_seconds{quantile=\"0.01\"} 3102\nrpc_duration_seconds{quantile=\"0.99\"} 76656\nrpc_duration_seconds_sum 1.7560473e+07\nrpc_duration_seconds_count 2693\n# TYPE http_request_duration_seconds histogram\nhttp_request_duration_seconds_bucket{le=\"0.05\"} 24054\nhttp_request_duration_seconds_bucket{le=\"+Inf\"} 144320\nhttp_request_duration_seconds_sum 53423\nhttp_request_duration_seconds_count 144320\n",
    );
    write(
        "prometheus",
        "untyped-comments",
        b"# a comment\n#TYPE not_a_type\nmetric_without_labels 12\nmetric_empty_labels{} 3\nmetric_trailing_comma{a=\"1\",} 4 -5\n# EOF\n",
    );

    // Sink records: the first byte picks precision (bits 0-1), bulk action (bit 2), record
    // timestamp (bit 3).
    let sink: &[(&str, &str)] = &[
        (
            "metric",
            r#"{"@timestamp":"2026-11-23T11:00:00.123Z","name":"cpu_seconds_total","kind":"counter","fields":{"value":12.5,"count":3},"tags":{"mode":"idle","cpu":"0"},"host":{"name":"h1"}}"#,
        ),
        (
            "metric-escapes",
            r#"{"@timestamp":"2026-11-23T11:00:00Z","name":"a b,c","fields":{"s":"x\"y\\z","b":true,"n":-9223372036854775808,"e":6.02E+23},"tags":{"k=1":"v 2","\u0061":"\u00e9"}}"#,
        ),
        (
            "log",
            r#"{"@timestamp":"2026-11-23T11:00:00.123Z","message":"GET /index.html 200","host":{"name":"h1"},"log":{"file":{"path":"/var/log/nginx/access.log"},"offset":1234},"event":{"id":"abc"}}"#,
        ),
        ("log-newline", "{\"message\":\"two\\nlines\",\n\"@timestamp\":\"2026-11-23T11:00:00Z\"}"),
        (
            "bulk-response",
            r#"{"took":3,"errors":true,"items":[{"index":{"status":201}},{"index":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"busy"}}},{"create":{"status":409}}]}"#,
        ),
    ];
    for (i, (name, text)) in sink.iter().enumerate() {
        let mut seed = vec![(i * 5) as u8];
        seed.extend_from_slice(text.as_bytes());
        write("sink_records", name, &seed);
    }

    // Agent lines: each module's kinds, odd clients and agents, and the transform chain's input.
    let lines: &[(&str, u8, &str)] = &[
        ("nginx-access", 0, r#"2001:db8::1 - - [03/Dec/2026:10:15:32 +0000] "GET /a?b=1 HTTP/1.1" 404 153 "-" "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0 \"q\"""#),
        ("nginx-error", 0, r#"2026/12/03 10:15:32 [error] 1234#1234: *5678 open() "/x" failed (2: No such file or directory), client: 10.0.0.5"#),
        ("nginx-junk-request", 0, r#"198.51.100.2 - - [03/Dec/2026:10:15:33 +0000] "\x16\x03\x01" 400 157 "-" "-""#),
        ("apache-error", 1, "[Thu Dec 03 10:15:32.123456 2026] [core:error] [pid 4242:tid 140000] [client 192.0.2.7:50000] AH00126: Invalid URI"),
        ("apache-common", 1, r#"client.example.org - - [03/Dec/2026:10:15:34 -0500] "GET / HTTP/1.0" 200 2326"#),
        ("syslog-bsd", 2, "Dec  3 10:15:32 web1 sshd[812]: Accepted publickey for deploy"),
        ("syslog-iso", 2, "<13>2026-12-03T10:15:32.123456+00:00 web1 kernel: [ 12.345] eth0: link up"),
        ("chain-kv", 3, r#"x y [Dec 31 23:59:59] status=503 ms=12.5 ok=yes ip=::1 tenant=a/b user="q \"u\"""#),
        ("chain-json", 3, r#"{"@timestamp": 253402300799, "event": {"dataset": "Nginx Access!"}, "ts": "1700000000000"}"#),
    ];
    for (name, pick, line) in lines {
        let mut seed = vec![*pick];
        seed.extend_from_slice(line.as_bytes());
        write("agent_lines", name, &seed);
    }

    // Config: the annotated examples.
    let examples = millrace_tests::workspace_root().join("config/examples");
    for name in ["broker", "agent", "sink"] {
        let text = std::fs::read(examples.join(format!("{name}.toml"))).unwrap();
        write("config", name, &text);
    }
}
