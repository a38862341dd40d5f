//! kcat (librdkafka's command-line client) against a real broker process.

use millrace_tests::{millrace, run, BrokerProcess};
use std::collections::BTreeMap;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

#[test]
fn kcat_produces_keyed_messages_and_consumes_them_back() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    millrace(&["topic", "create", "keyed", "--partitions", "3", "--bootstrap", &bootstrap])?;

    for (round, codec) in ["none", "gzip", "snappy", "lz4", "zstd"].iter().enumerate() {
        let input: String = (0..300).map(|i| format!("user{}:{codec}-{round}-{i:05}\n", i % 13)).collect();
        run("kcat", &["-b", &bootstrap, "-t", "keyed", "-P", "-K", ":", "-z", codec], Some(input.as_bytes()), T)?;
    }
    let out = run("kcat", &["-b", &bootstrap, "-t", "keyed", "-C", "-e", "-q", "-f", "%k %p %o %s\\n"], None, T)?;
    let text = String::from_utf8(out.stdout)?;
    let mut partition_of_key: BTreeMap<String, String> = BTreeMap::new();
    let mut last_offset: BTreeMap<String, i64> = BTreeMap::new();
    let mut values = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 4, "unexpected kcat line {line:?}");
        let (key, partition, offset, value) = (fields[0], fields[1], fields[2].parse::<i64>()?, fields[3]);
        // The client's partitioner hashes the key: one key, one partition.
        let first = partition_of_key.entry(key.to_string()).or_insert_with(|| partition.to_string());
        assert_eq!(first, partition, "key {key} seen on partitions {first} and {partition}");
        if let Some(previous) = last_offset.insert(partition.to_string(), offset) {
            assert!(offset > previous, "partition {partition}: offset {offset} after {previous}");
        }
        values.push(value.to_string());
    }
    let mut expected: Vec<String> = ["none", "gzip", "snappy", "lz4", "zstd"]
        .iter()
        .enumerate()
        .flat_map(|(round, codec)| (0..300).map(move |i| format!("{codec}-{round}-{i:05}")))
        .collect();
    let total = values.len();
    values.sort();
    values.dedup();
    assert_eq!(values.len(), total, "some record was consumed twice");
    expected.sort();
    assert_eq!(values, expected, "consumed records differ from produced ones");
    let used: std::collections::BTreeSet<_> = partition_of_key.values().collect();
    assert_eq!(used.len(), 3, "13 keys should spread over all 3 partitions, got {used:?}");
    Ok(())
}

#[test]
fn kcat_acks_zero_and_acks_all() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    for acks in ["0", "1", "all"] {
        let topic = format!("acks-{acks}");
        let input: String = (0..500).map(|i| format!("{acks}-{i}\n")).collect();
        run("kcat", &["-b", &bootstrap, "-t", &topic, "-P", "-X", &format!("acks={acks}")], Some(input.as_bytes()), T)?;
        let out = run("kcat", &["-b", &bootstrap, "-t", &topic, "-C", "-e", "-q"], None, T)?;
        assert_eq!(String::from_utf8(out.stdout)?, input, "acks={acks}");
    }
    Ok(())
}

#[test]
fn kcat_lists_metadata() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    millrace(&["topic", "create", "listed", "--partitions", "4", "--bootstrap", &bootstrap])?;
    let out = run("kcat", &["-b", &bootstrap, "-L", "-J"], None, T)?;
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let brokers = metadata["brokers"].as_array().expect("brokers array");
    assert_eq!(brokers.len(), 1);
    assert_eq!(brokers[0]["id"], 1);
    assert_eq!(brokers[0]["name"].as_str(), Some(format!("127.0.0.1:{}", broker.port).as_str()));
    let topic = metadata["topics"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["topic"] == "listed"))
        .expect("topic 'listed' in metadata");
    let partitions = topic["partitions"].as_array().expect("partitions");
    assert_eq!(partitions.len(), 4);
    for p in partitions {
        assert_eq!(p["leader"], 1);
        assert_eq!(p["isrs"].as_array().map(|v| v.len()), Some(1));
    }
    Ok(())
}

#[test]
fn producing_to_an_unknown_topic_auto_creates_it() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    run("kcat", &["-b", &bootstrap, "-t", "auto.created", "-P"], Some(b"one\ntwo\n"), T)?;
    let out = run("kcat", &["-b", &bootstrap, "-t", "auto.created", "-C", "-e", "-q"], None, T)?;
    assert_eq!(String::from_utf8(out.stdout)?, "one\ntwo\n");
    Ok(())
}

#[test]
fn auto_creation_can_be_turned_off() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("[topics]\nauto_create = false\n")?;
    let bootstrap = broker.bootstrap();
    let result = run("kcat", &["-b", &bootstrap, "-t", "nope", "-P", "-X", "message.timeout.ms=3000"], Some(b"x\n"), T);
    assert!(result.is_err(), "produce to a missing topic succeeded with auto-creation off");
    let listing = millrace(&["topic", "list", "--bootstrap", &bootstrap])?;
    assert!(!listing.lines().any(|l| l == "nope"), "topic was created: {listing}");
    Ok(())
}

/// Large fetch responses are sent in pieces (the record sets by reference, vectored writes):
/// librdkafka, checking every batch's CRC, must read back exactly what was produced, whether a
/// response carries one partition or several, large or cut small by the fetch limits.
#[test]
fn kcat_reads_back_large_fetch_responses_byte_for_byte() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    millrace(&["topic", "create", "large", "--partitions", "2", "--bootstrap", &bootstrap])?;
    let value = |i: usize| format!("{i:06}-{}", "abcdefghijklmnopqrstuvwxyz".repeat(1 + i % 60));
    let input: String = (0..3000).map(|i| format!("k{}:{}\n", i % 7, value(i))).collect();
    run("kcat", &["-b", &bootstrap, "-t", "large", "-P", "-K", ":"], Some(input.as_bytes()), T)?;
    let mut expected: Vec<String> = (0..3000).map(value).collect();
    expected.sort();
    for fetch_limits in [[1 << 20, 50 << 20], [5_000, 12_000]] {
        let out = run(
            "kcat",
            &[
                "-b",
                &bootstrap,
                "-t",
                "large",
                "-C",
                "-e",
                "-q",
                "-X",
                "check.crcs=true",
                "-X",
                &format!("max.partition.fetch.bytes={}", fetch_limits[0]),
                "-X",
                &format!("fetch.max.bytes={}", fetch_limits[1]),
                // librdkafka raises fetch.max.bytes to at least this.
                "-X",
                &format!("message.max.bytes={}", fetch_limits[1]),
            ],
            None,
            T,
        )?;
        let mut values: Vec<String> = String::from_utf8(out.stdout)?.lines().map(str::to_string).collect();
        values.sort();
        assert_eq!(values, expected, "fetch limits {fetch_limits:?}");
    }
    Ok(())
}
