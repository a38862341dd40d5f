//! The Elasticsearch sink against a real broker and the Elasticsearch contract server
//! (`tests/python/es_test_server.py`, which follows the documented `_bulk` API because no
//! Elasticsearch can be installed here), through the failures a real cluster produces.
//!
//! Proves: a per-item 403 for a missing privilege is dead-lettered with its reason while a 403
//! write block and per-item 500/503 are retried until accepted, nothing written twice and nothing
//! committed before acceptance, and once the privilege is granted `millrace dlq replay` brings the
//! dead letters back with their first document ids; a node refusing connections mid-stream stalls the sink (with
//! backoff, offsets held) and everything arrives once it is back; two nodes share the writes and
//! one of them down loses nothing; wrong basic-auth credentials are reported, commit nothing and
//! are not hammered; a batch over `http.max_content_length` is split and delivered; a data stream
//! rolled over mid-stream keeps every document.

use millrace_tests::component::Component;
use millrace_tests::es::EsTestServer;
use millrace_tests::{
    committed_everything, free_port, group_offsets, http_get, millrace, read_with_headers, run, wait_for, BrokerProcess,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

fn produce(bootstrap: &str, topic: &str, records: &[String]) -> anyhow::Result<()> {
    let input = records.join("\n") + "\n";
    let out = run("kcat", &["-P", "-b", bootstrap, "-t", topic], Some(input.as_bytes()), Duration::from_secs(60))?;
    anyhow::ensure!(out.status.success(), "kcat failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

fn topics(bootstrap: &str, list: &[(&str, u32)]) -> anyhow::Result<()> {
    for (topic, partitions) in list {
        millrace(&["topic", "create", topic, "--partitions", &partitions.to_string(), "--bootstrap", bootstrap])?;
    }
    Ok(())
}

fn describe(bootstrap: &str, group: &str) -> anyhow::Result<String> {
    millrace(&["group", "describe", group, "--bootstrap", bootstrap])
}

/// The sum of `group`'s committed offsets: the records it has let go of.
fn committed(bootstrap: &str, group: &str) -> anyhow::Result<u64> {
    Ok(group_offsets(&describe(bootstrap, group)?, group).iter().filter_map(|(c, _)| c.parse::<u64>().ok()).sum())
}

fn wait_committed_everything(bootstrap: &str, group: &str, sink: &Component) -> anyhow::Result<()> {
    wait_for(&format!("{group} to commit everything"), Duration::from_secs(60), || {
        Ok(committed_everything(&describe(bootstrap, group)?, group))
    })
    .map_err(|e| anyhow::anyhow!("{e}; sink log:\n{}", sink.log()))
}

/// One sink of `[[elasticsearch]]` named `name` (also its group) reading `topic`, plus `rest`
/// (backoff from 100 ms to 1 s unless `rest` sets `retry_max`).
fn es_sink(name: &str, topic: &str, endpoints: &[String], index: &str, rest: &str) -> String {
    let endpoints: Vec<String> = endpoints.iter().map(|e| format!("{e:?}")).collect();
    let retry_max = if rest.contains("retry_max") { "" } else { "retry_max = \"1s\"\n" };
    format!(
        "[[elasticsearch]]\nname = \"{name}\"\ntopics = [\"{topic}\"]\ngroup = \"{name}\"\nendpoints = [{}]\n\
         index = \"{index}\"\nbatch_timeout = \"100ms\"\nretry_initial = \"100ms\"\n{retry_max}\
         request_timeout = \"5s\"\n{rest}\n",
        endpoints.join(", ")
    )
}

fn start_sink(dir: &Path, bootstrap: &str, sinks: &str) -> anyhow::Result<(Component, u16)> {
    let metrics_port = free_port();
    let toml = format!(
        "[sink]\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n\n[source]\nbootstrap = \"{bootstrap}\"\n\n{sinks}"
    );
    Ok((Component::start("sink", dir, "sink", &toml)?, metrics_port))
}

/// A sink metric's value for `sink`, 0 when absent.
fn metric(port: u16, name: &str, sink: &str) -> anyhow::Result<u64> {
    let text = http_get(port, "/metrics")?;
    let prefix = format!("millrace_sink_{name}{{sink=\"{sink}\"}} ");
    Ok(text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok()).unwrap_or(0))
}

/// How many stored documents hold each `message`.
fn messages(docs: &[Value]) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for doc in docs {
        if let Some(message) = doc["source"]["message"].as_str() {
            *seen.entry(message.to_string()).or_default() += 1;
        }
    }
    seen
}

/// `count` events `{prefix}-NNN` (from `from`), at `@timestamp` in `year`.
fn events(prefix: &str, from: usize, count: usize) -> Vec<String> {
    (from..from + count)
        .map(|i| format!(r#"{{"@timestamp":"2026-11-23T11:00:00Z","message":"{prefix}-{i:04}"}}"#))
        .collect()
}

fn lines_with(log: &str, parts: &[&str]) -> usize {
    log.lines().filter(|l| parts.iter().all(|p| l.contains(p))).count()
}

#[test]
fn per_item_403_and_5xx_dead_letter_or_retry_and_commit_only_after_acceptance() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    topics(&bootstrap, &[("events", 2), ("dead-letters", 1)])?;
    let es = EsTestServer::start(&[])?;
    // logs-2026 exists with a write block (403 cluster_block_exception per item, to be retried);
    // logs-2025 is an index the user may not write (403 security_exception, refused for good).
    // Every 5th item meets an unavailable shard (503), every 7th of the rest a shard failure (500).
    es.configure(r#"{"forbidden_indices": ["logs-2025"], "item_503_every": 5, "item_500_every": 7}"#)?;
    for (method, path, body) in
        [("PUT", "/logs-2026", &b""[..]), ("PUT", "/logs-2026/_settings", br#"{"index":{"blocks":{"write":true}}}"#)]
    {
        let (status, answer) = es.request(method, path, body)?;
        anyhow::ensure!(status == 200, "{method} {path}: {status} {answer}");
    }
    // 300 events; the 10 at i % 30 == 15 are from 2025. The first ones of every partition are
    // from 2026, so every first batch holds blocked documents and nothing can be committed.
    let records: Vec<String> = (0..300)
        .map(|i| {
            let year = if i % 30 == 15 { 2025 } else { 2026 };
            format!(r#"{{"@timestamp":"{year}-11-23T11:00:00Z","message":"ev-{i:03}"}}"#)
        })
        .collect();
    produce(&bootstrap, "events", &records)?;
    let dir = tempfile::tempdir()?;
    let (sink, metrics_port) = start_sink(
        dir.path(),
        &bootstrap,
        &es_sink(
            "items",
            "events",
            &[es.url()],
            "logs-%Y",
            "batch_max_events = 500\ndead_letter_topic = \"dead-letters\"",
        ),
    )?;
    wait_for("blocked items refused and retried", Duration::from_secs(60), || {
        Ok(es.counter("blocked_items_403")? >= 580 && sink.log().contains("records refused for now; retrying them"))
    })
    .map_err(|e| anyhow::anyhow!("{e}; sink log:\n{}", sink.log()))?;
    assert_eq!(committed(&bootstrap, "items")?, 0, "offsets committed while documents were refused for now");
    assert!(es.docs(Some("logs-2026"))?.is_empty());
    assert!(sink.log().contains("FORBIDDEN/8/index write"), "the block is named in the log:\n{}", sink.log());

    let (status, answer) = es.request("PUT", "/logs-2026/_settings", br#"{"index.blocks.write":false}"#)?;
    anyhow::ensure!(status == 200, "lifting the block: {status} {answer}");
    wait_committed_everything(&bootstrap, "items", &sink)?;
    let docs = es.docs(Some("logs-2026"))?;
    let seen = messages(&docs);
    assert_eq!((docs.len(), seen.len()), (290, 290), "every 2026 event once");
    assert!(seen.values().all(|n| *n == 1));
    let stats = es.stats()?;
    eprintln!("test server counters: {stats}");
    assert!(
        stats["injected_items_503"].as_u64() > Some(0) && stats["injected_items_500"].as_u64() > Some(0),
        "{stats}"
    );
    // A retry re-sends only the refused documents: none was written over an accepted one.
    assert_eq!(stats["items_by_status"]["200"], Value::Null, "a document was written twice: {stats}");
    assert!(metric(metrics_port, "records_retried_total", "items")? > 0);

    let dead = read_with_headers(&bootstrap, "dead-letters")?;
    assert_eq!(dead.len(), 10, "{dead:#?}");
    for (headers, value) in &dead {
        assert!(value.contains("\"@timestamp\":\"2025-"), "{value}");
        assert!(
            headers.contains("403 security_exception") && headers.contains("is unauthorized for user"),
            "{headers}"
        );
    }
    assert!(es.docs(Some("logs-2025"))?.is_empty());

    // The permission is granted: `millrace dlq replay` sends the dead letters back to `events`,
    // and the running sink writes them with the ids they would have had the first time.
    let first_ids: std::collections::BTreeSet<String> = dead.iter().map(|(headers, _)| origin_id(headers)).collect();
    assert_eq!(first_ids.len(), 10, "{dead:#?}");
    es.configure(r#"{"forbidden_indices": []}"#)?;
    let dry = millrace(&["dlq", "replay", "--topic", "dead-letters", "--dry-run", "--bootstrap", &bootstrap])?;
    assert!(dry.contains("would replay 10 dead letters") && dry.contains("\tevents\t10"), "{dry}");
    let replayed = millrace(&["dlq", "replay", "--topic", "dead-letters", "--bootstrap", &bootstrap])?;
    assert!(replayed.contains("replayed 10 dead letters"), "{replayed}");
    wait_for("the replayed dead letters indexed", Duration::from_secs(60), || {
        Ok(es.docs(Some("logs-2025"))?.len() >= 10)
    })
    .map_err(|e| anyhow::anyhow!("{e}; sink log:\n{}", sink.log()))?;
    let docs = es.docs(Some("logs-2025"))?;
    let ids: std::collections::BTreeSet<String> =
        docs.iter().filter_map(|d| d["id"].as_str().map(str::to_string)).collect();
    assert_eq!(ids, first_ids, "replayed documents keep their first ids");
    // A second run has nothing left to send.
    let again = millrace(&["dlq", "replay", "--topic", "dead-letters", "--bootstrap", &bootstrap])?;
    assert!(again.contains("replayed 0 dead letters"), "{again}");
    Ok(())
}

/// The document id a dead letter's record had (`topic:partition:offset`), from kcat's `%h`.
fn origin_id(headers: &str) -> String {
    let get = |key: &str| {
        headers.split(',').find_map(|h| h.strip_prefix(key).and_then(|v| v.strip_prefix('='))).unwrap_or("?")
    };
    format!("{}:{}:{}", get("millrace.origin.topic"), get("millrace.origin.partition"), get("millrace.origin.offset"))
}

#[test]
fn a_node_refusing_connections_stalls_the_sink_and_nothing_is_lost() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    topics(&bootstrap, &[("events", 2)])?;
    let es = EsTestServer::start(&[])?;
    let dir = tempfile::tempdir()?;
    produce(&bootstrap, "events", &events("a", 0, 200))?;
    let (sink, metrics_port) = start_sink(
        dir.path(),
        &bootstrap,
        &es_sink("down", "events", &[es.url()], "events", "batch_max_events = 100\naction = \"create\""),
    )?;
    wait_committed_everything(&bootstrap, "down", &sink)?;
    assert_eq!(committed(&bootstrap, "down")?, 200);

    // The node goes away (its port refuses connections) while records keep coming.
    es.stop_node(0)?;
    let failures_before = metric(metrics_port, "write_failures_total", "down")?;
    let outage = Instant::now();
    produce(&bootstrap, "events", &events("b", 0, 200))?;
    wait_for("the sink to meet the refused connection", Duration::from_secs(30), || {
        Ok(lines_with(&sink.log(), &["write failed; retrying", "onnection refused"]) >= 3)
    })
    .map_err(|e| anyhow::anyhow!("{e}; sink log:\n{}", sink.log()))?;
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(committed(&bootstrap, "down")?, 200, "offsets committed past what Elasticsearch accepted");
    let failures = metric(metrics_port, "write_failures_total", "down")? - failures_before;
    let seconds = outage.elapsed().as_secs_f64();
    es.start_node(0)?;
    eprintln!("{failures} failed writes in {seconds:.1} s of refused connections");
    // With backoff (100 ms doubling to 1 s) a few seconds hold a dozen attempts per partition's
    // batch; a retry loop without backoff would make hundreds.
    assert!(failures >= 3 && (failures as f64) < 6.0 * (seconds + 2.0), "{failures} failures in {seconds:.1} s");

    wait_committed_everything(&bootstrap, "down", &sink)?;
    let seen = messages(&es.docs(Some("events"))?);
    assert_eq!(seen.len(), 400, "every event");
    assert!(seen.values().all(|n| *n == 1), "stored twice: {seen:?}");
    Ok(())
}

#[test]
fn two_nodes_share_the_writes_and_one_refusing_loses_nothing() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    topics(&bootstrap, &[("events", 2)])?;
    let es = EsTestServer::start_nodes(2, &[])?;
    let dir = tempfile::tempdir()?;
    let endpoints = [es.node_url(0), es.node_url(1)];
    let (sink, _) = start_sink(
        dir.path(),
        &bootstrap,
        &es_sink("nodes", "events", &endpoints, "events", "batch_max_events = 20\naction = \"create\""),
    )?;
    let by_node = |es: &EsTestServer| -> anyhow::Result<(u64, u64)> {
        Ok((es.counter("bulk_requests_by_node/0")?, es.counter("bulk_requests_by_node/1")?))
    };
    let stored = |es: &EsTestServer| es.docs(Some("events")).map(|d| d.len()).unwrap_or(0);
    produce(&bootstrap, "events", &events("a", 0, 300))?;
    wait_for("300 documents", Duration::from_secs(60), || Ok(stored(&es) >= 300))
        .map_err(|e| anyhow::anyhow!("{e}; sink log:\n{}", sink.log()))?;
    let (first, second) = by_node(&es)?;
    assert!(first > 0 && second > 0, "requests rotate over both nodes: {first} and {second}");

    es.stop_node(1)?;
    produce(&bootstrap, "events", &events("b", 0, 300))?;
    wait_for("600 documents with node 1 refusing connections", Duration::from_secs(60), || Ok(stored(&es) >= 600))
        .map_err(|e| anyhow::anyhow!("{e}; sink log:\n{}", sink.log()))?;
    let refused = lines_with(&sink.log(), &["write failed; retrying", &endpoints[1], "onnection refused"]);
    assert!(refused > 0, "the refusing node is named in the log:\n{}", sink.log());
    assert_eq!(by_node(&es)?.1, second, "a stopped node served requests");

    es.start_node(1)?;
    produce(&bootstrap, "events", &events("c", 0, 300))?;
    wait_committed_everything(&bootstrap, "nodes", &sink)?;
    let seen = messages(&es.docs(Some("events"))?);
    assert_eq!(seen.len(), 900, "every event");
    assert!(seen.values().all(|n| *n == 1));
    assert!(by_node(&es)?.1 > second, "node 1 serves again once back");
    Ok(())
}

#[test]
fn basic_auth_right_credentials_write_wrong_ones_are_reported_and_not_hammered() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    topics(&bootstrap, &[("events", 2)])?;
    let es = EsTestServer::start(&["--basic", "writer:s3cret-pw"])?;
    produce(&bootstrap, "events", &events("a", 0, 100))?;
    let dir = tempfile::tempdir()?;
    let url = [es.url()];
    let sinks = [
        es_sink("right", "events", &url, "right", "username = \"writer\"\npassword = \"s3cret-pw\""),
        // Backoff up to 2 s: a refused password must not turn into a request storm.
        es_sink("wrong", "events", &url, "wrong", "username = \"writer\"\npassword = \"guess\"\nretry_max = \"2s\""),
    ];
    let (sink, metrics_port) = start_sink(dir.path(), &bootstrap, &sinks.join("\n"))?;
    wait_committed_everything(&bootstrap, "right", &sink)?;
    assert_eq!(es.docs(Some("right"))?.len(), 100);
    wait_for("the refusal to be reported", Duration::from_secs(30), || {
        Ok(lines_with(&sink.log(), &["wrong", "credentials refused (check username and password)", "HTTP 401"]) > 0)
    })
    .map_err(|e| anyhow::anyhow!("{e}; sink log:\n{}", sink.log()))?;
    let refused_before = es.counter("unauthorized_401")?;
    std::thread::sleep(Duration::from_secs(6));
    let refused = es.counter("unauthorized_401")? - refused_before;
    // A few batches in flight, each waiting up to 2 s between attempts: a handful of requests
    // each, where a retry loop without backoff would make hundreds.
    assert!(refused <= 30, "{refused} refused requests in 6 s");
    assert!(metric(metrics_port, "write_failures_total", "wrong")? > 0);
    assert_eq!(committed(&bootstrap, "wrong")?, 0, "offsets committed for refused writes");
    assert!(es.docs(Some("wrong"))?.is_empty());
    assert!(!sink.log().contains("s3cret-pw") && !sink.log().contains("guess"), "a password in the log");
    Ok(())
}

#[test]
fn a_batch_over_the_body_limit_is_split_and_delivered() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    topics(&bootstrap, &[("events", 1), ("dead-letters", 1)])?;
    // http.max_content_length of 20 kB: a 500-document batch (about 60 kB) is refused with 413.
    let es = EsTestServer::start(&["--max-body-bytes", "20000"])?;
    let mut records = events("big-batch", 0, 500);
    // One document larger than the limit on its own: refused alone, dead-lettered.
    records.insert(250, format!(r#"{{"message":"huge","pad":"{}"}}"#, "x".repeat(25_000)));
    produce(&bootstrap, "events", &records)?;
    let dir = tempfile::tempdir()?;
    let (sink, _) = start_sink(
        dir.path(),
        &bootstrap,
        &es_sink(
            "split",
            "events",
            &[es.url()],
            "events",
            "batch_max_events = 500\ndead_letter_topic = \"dead-letters\"",
        ),
    )?;
    wait_committed_everything(&bootstrap, "split", &sink)?;
    let seen = messages(&es.docs(Some("events"))?);
    assert_eq!(seen.len(), 500, "every document but the huge one");
    assert!(seen.values().all(|n| *n == 1) && !seen.contains_key("huge"));
    let stats = es.stats()?;
    eprintln!("test server counters: {stats}");
    // Isolating the huge document in a batch of hundreds takes several refused halves.
    assert!(stats["too_large_413"].as_u64() >= Some(5), "{stats}");
    let largest = stats["max_items_in_a_request"].as_u64().unwrap_or(0);
    assert!(largest > 0 && largest < 250, "the batch was split: {largest} items in one request");
    let dead = read_with_headers(&bootstrap, "dead-letters")?;
    assert_eq!(dead.len(), 1, "{dead:#?}");
    assert!(dead[0].0.contains("http.max_content_length") && dead[0].1.contains("\"huge\""), "{:?}", dead[0].0);
    Ok(())
}

#[test]
fn a_data_stream_rolled_over_mid_stream_keeps_every_document() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    topics(&bootstrap, &[("events", 2)])?;
    let es = EsTestServer::start(&[])?;
    // Slow answers keep the sink writing while the stream rolls over.
    es.configure(r#"{"latency_ms": 10}"#)?;
    produce(&bootstrap, "events", &events("ds", 0, 500))?;
    let dir = tempfile::tempdir()?;
    let (sink, _) = start_sink(
        dir.path(),
        &bootstrap,
        &es_sink(
            "stream",
            "events",
            &[es.url()],
            "logs-app-default",
            "batch_max_events = 20\ndata_stream = true\naction = \"create\"",
        ),
    )?;
    let stored = |es: &EsTestServer| es.docs(Some("logs-app-default")).map(|d| d.len()).unwrap_or(0);
    wait_for("the first documents in the stream", Duration::from_secs(60), || Ok(stored(&es) >= 100))
        .map_err(|e| anyhow::anyhow!("{e}; sink log:\n{}", sink.log()))?;
    let (status, rolled) = es.request("POST", "/logs-app-default/_rollover", b"")?;
    anyhow::ensure!(status == 200, "rollover: {status} {rolled}");
    let rolled: Value = serde_json::from_str(&rolled)?;
    let new_index = rolled["new_index"].as_str().unwrap_or_default().to_string();
    assert!(new_index.starts_with(".ds-logs-app-default-") && new_index.ends_with("-000002"), "{rolled}");
    produce(&bootstrap, "events", &events("ds", 500, 500))?;
    wait_committed_everything(&bootstrap, "stream", &sink)?;

    let docs = es.docs(Some("logs-app-default"))?;
    let seen = messages(&docs);
    assert_eq!(seen.len(), 1000, "every document");
    assert!(seen.values().all(|n| *n == 1), "a document in both backing indices");
    let in_new = docs.iter().filter(|d| d["index"] == new_index.as_str()).count();
    eprintln!("{in_new} of 1000 documents in the new write index {new_index}");
    assert!((500..1000).contains(&in_new), "writes continued into the new backing index: {in_new}");
    let (_, stream) = es.request("GET", "/_data_stream/logs-app-default", b"")?;
    let stream: Value = serde_json::from_str(&stream)?;
    assert_eq!(stream["data_streams"][0]["generation"], 2, "{stream}");
    Ok(())
}
