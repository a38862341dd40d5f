//! The whole pipeline with real processes: `millrace agent` tailing files and sampling host
//! metrics → `millrace broker` → `millrace sink` → the Elasticsearch test server
//! (`tests/python/es_test_server.py`, a test double that follows the documented `_bulk` contract,
//! since no Elasticsearch can be installed here) and a real InfluxDB.
//!
//! Proves: every log line becomes exactly one document and every metric record exactly one point,
//! through `kill -9` of the sink and of the agent, two bulk answers lost after Elasticsearch wrote
//! the documents (re-sent, answered 409 and absorbed) and 30 s of Elasticsearch answering 503; a
//! document Elasticsearch can never index lands in the dead-letter topic with its error; workers
//! of one group share the partitions and a third one joining takes its share.

use millrace_tests::component::Component;
use millrace_tests::es::EsTestServer;
use millrace_tests::influx::InfluxProcess;
use millrace_tests::{free_port, millrace, read_with_headers, run, wait_for, BrokerProcess};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

fn append(path: &Path, lines: &[String]) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all((lines.join("\n") + "\n").as_bytes())?;
    Ok(())
}

/// Records of a topic as JSON documents.
fn topic_records(bootstrap: &str, topic: &str) -> anyhow::Result<Vec<Value>> {
    let out =
        run("kcat", &["-C", "-b", bootstrap, "-t", topic, "-e", "-q", "-f", "%s\\n"], None, Duration::from_secs(60))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).map_err(Into::into))
        .collect()
}

/// How many documents hold each message.
fn messages(es: &EsTestServer) -> anyhow::Result<HashMap<String, usize>> {
    let mut seen = HashMap::new();
    for doc in es.docs(None)? {
        if let Some(message) = doc["source"]["message"].as_str() {
            *seen.entry(message.to_string()).or_default() += 1;
        }
    }
    Ok(seen)
}

fn group_lag_is_zero(bootstrap: &str, group: &str) -> anyhow::Result<bool> {
    Ok(millrace(&["group", "describe", group, "--bootstrap", bootstrap])?.contains("TotalLag: 0"))
}

#[test]
fn pipeline_end_to_end_through_kills_and_an_outage() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    let es = EsTestServer::start(&[])?;
    let influx = InfluxProcess::start()?;
    influx.create_database("metrics")?;
    for (topic, partitions) in [("app-logs", "4"), ("metrics", "2"), ("dead-letters", "1")] {
        millrace(&["topic", "create", topic, "--partitions", partitions, "--bootstrap", &bootstrap])?;
    }
    let dir = tempfile::tempdir()?;
    let (logs, json_logs) = (dir.path().join("logs"), dir.path().join("json"));
    std::fs::create_dir_all(&logs)?;
    std::fs::create_dir_all(&json_logs)?;
    let agent_toml = format!(
        "[agent]\ndata_dir = {:?}\nhost_name = \"web-e2e\"\ncheckpoint_interval = \"200ms\"\n\n\
         [output]\nbootstrap = \"{bootstrap}\"\n\n\
         [[inputs.file]]\nname = \"app\"\ntopic = \"app-logs\"\ninclude = [{:?}]\nscan_interval = \"200ms\"\n\n\
         [[inputs.file]]\nname = \"json\"\ntopic = \"app-logs\"\ninclude = [{:?}]\njson = true\nscan_interval = \"200ms\"\n\n\
         [[inputs.host_metrics]]\nname = \"host\"\ntopic = \"metrics\"\ninterval = \"1s\"\n",
        dir.path().join("agent-data").display().to_string(),
        logs.join("*.log").display().to_string(),
        json_logs.join("*.log").display().to_string(),
    );
    let sink_toml = format!(
        "[source]\nbootstrap = \"{bootstrap}\"\n\n\
         [[elasticsearch]]\nname = \"logs\"\ntopics = [\"app-logs\"]\ngroup = \"e2e-es\"\nendpoints = [\"{}\"]\n\
         index = \"logs-%Y.%m.%d\"\naction = \"create\"\nbatch_max_events = 500\nbatch_timeout = \"200ms\"\ngzip = true\n\
         retry_initial = \"100ms\"\nretry_max = \"2s\"\nrequest_timeout = \"5s\"\ndead_letter_topic = \"dead-letters\"\n\n\
         [[influxdb]]\nname = \"metrics\"\ntopics = [\"metrics\"]\ngroup = \"e2e-influx\"\nurl = \"{}\"\n\
         database = \"metrics\"\nbatch_timeout = \"200ms\"\nretry_initial = \"100ms\"\nretry_max = \"2s\"\n\
         dead_letter_topic = \"dead-letters\"\n",
        es.url(),
        influx.url()
    );
    let mut agent = Component::start("agent", dir.path(), "agent", &agent_toml)?;
    let mut sink = Component::start("sink", dir.path(), "sink", &sink_toml)?;

    // A JSON line fixes `status` as a number; a later one makes it a string: a mapping conflict.
    append(&json_logs.join("api.log"), &[r#"{"status": 200, "message": "json-ok"}"#.into()])?;

    // Three files grow in rounds while the sink and the agent are killed and ES goes down.
    let mut expected = Vec::new();
    let mut round = 0usize;
    let mut write_round = |expected: &mut Vec<String>| -> anyhow::Result<()> {
        for f in 0..3 {
            let lines: Vec<String> = (0..100).map(|n| format!("file{f}-{round:03}-{n:03}")).collect();
            append(&logs.join(format!("app{f}.log")), &lines)?;
            expected.extend(lines);
        }
        round += 1;
        Ok(())
    };
    let during =
        |seconds: u64, expected: &mut Vec<String>, write: &mut dyn FnMut(&mut Vec<String>) -> anyhow::Result<()>| {
            let until = Instant::now() + Duration::from_secs(seconds);
            while Instant::now() < until {
                write(expected)?;
                std::thread::sleep(Duration::from_millis(250));
            }
            anyhow::Ok(())
        };
    during(3, &mut expected, &mut write_round)?;
    sink.kill9();
    during(2, &mut expected, &mut write_round)?;
    sink.spawn()?;
    during(2, &mut expected, &mut write_round)?;
    // Once the restarted sink is writing, the next two bulk requests are written but their answers
    // are lost (the connection is closed): the sink cannot tell and must send the same documents
    // again, which `create` of their deterministic ids answers with 409. Lines keep coming so
    // that there are requests to lose.
    es.configure(r#"{"drop_response_next": 2}"#)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while es.counter("dropped_responses")? < 2 {
        anyhow::ensure!(Instant::now() < deadline, "no bulk answer withheld within 30 s; sink log:\n{}", sink.log());
        write_round(&mut expected)?;
        std::thread::sleep(Duration::from_millis(250));
    }
    agent.kill9();
    during(1, &mut expected, &mut write_round)?;
    agent.spawn()?;
    append(&json_logs.join("api.log"), &[r#"{"status": "OK", "message": "json-conflict"}"#.into()])?;
    during(2, &mut expected, &mut write_round)?;
    // Elasticsearch answers 503 to everything for 30 s; lines keep coming.
    es.configure(r#"{"down": true}"#)?;
    during(30, &mut expected, &mut write_round)?;
    es.configure(r#"{"down": false}"#)?;
    eprintln!("{} lines written in {round} rounds", expected.len());

    wait_for("every line in Elasticsearch", Duration::from_secs(120), || {
        let seen = messages(&es)?;
        Ok(expected.iter().all(|l| seen.contains_key(l)))
    })
    .map_err(|e| anyhow::anyhow!("{e}; sink log:\n{}\nagent log:\n{}", sink.log(), agent.log()))?;
    assert!(sink.log().contains("write failed; retrying"), "the outage was noticed");

    // Stop the agent, let the sinks catch up, then count.
    agent.stop(Duration::from_secs(60))?;
    wait_for("both groups caught up", Duration::from_secs(60), || {
        Ok(group_lag_is_zero(&bootstrap, "e2e-es")? && group_lag_is_zero(&bootstrap, "e2e-influx")?)
    })
    .map_err(|e| anyhow::anyhow!("{e}; sink log:\n{}", sink.log()))?;
    let seen = messages(&es)?;
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "documents stored twice: {repeated:?}");
    // Duplicates were produced and absorbed: every document of a withheld answer came again and
    // met itself (409), and the kills may have added more.
    let (dropped, conflicts) = (es.counter("dropped_items")?, es.counter("items_by_status/409")?);
    eprintln!("{dropped} documents written with their answer lost; {conflicts} re-sent documents answered 409");
    assert!(dropped > 0 && conflicts >= dropped, "re-sent documents: {dropped} dropped, {conflicts} conflicts");
    assert_eq!(seen.get("json-ok"), Some(&1));
    assert_eq!(seen.len(), expected.len() + 1, "one document per line, plus json-ok");
    let records = topic_records(&bootstrap, "app-logs")?.len();
    eprintln!(
        "{records} records in app-logs for {} lines: the agent re-sent {}",
        expected.len() + 2,
        records - expected.len() - 2
    );

    let dead = read_with_headers(&bootstrap, "dead-letters")?;
    assert_eq!(dead.len(), 1, "{dead:#?}");
    assert!(dead[0].1.contains("json-conflict") && dead[0].0.contains("failed to parse field [status]"), "{dead:#?}");

    // Every metric record is one point: points are unique by measurement, tags and time.
    let mut expected_points: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for doc in topic_records(&bootstrap, "metrics")? {
        let name = doc["name"].as_str().unwrap_or_default().to_string();
        let mut tags: BTreeMap<String, String> = doc["tags"]
            .as_object()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
            .unwrap_or_default();
        tags.entry("host".into()).or_insert_with(|| doc["host"]["name"].as_str().unwrap_or_default().to_string());
        tags.retain(|_, v| !v.is_empty());
        expected_points.entry(name).or_default().insert(format!("{tags:?}@{}", doc["@timestamp"]));
    }
    anyhow::ensure!(expected_points.len() >= 5, "host metrics produced only {:?}", expected_points.keys());
    for (measurement, points) in &expected_points {
        let stored = influx.count_points("metrics", measurement)?;
        assert_eq!(stored, points.len() as u64, "points of {measurement}");
    }
    eprintln!(
        "{} metric points in {} measurements, each stored once",
        expected_points.values().map(BTreeSet::len).sum::<usize>(),
        expected_points.len()
    );
    sink.stop(Duration::from_secs(30))?;
    Ok(())
}

#[test]
fn workers_of_one_group_share_partitions_and_a_third_takes_its_share() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    let es = EsTestServer::start(&[])?;
    // Slow bulk answers keep every worker busy while the group changes.
    es.configure(r#"{"latency_ms": 30}"#)?;
    millrace(&["topic", "create", "events", "--partitions", "6", "--bootstrap", &bootstrap])?;
    let produce = |from: usize, count: usize| -> anyhow::Result<()> {
        let input: String = (from..from + count).map(|i| format!("{{\"message\":\"event-{i:05}\"}}\n")).collect();
        let out =
            run("kcat", &["-P", "-b", &bootstrap, "-t", "events"], Some(input.as_bytes()), Duration::from_secs(60))?;
        anyhow::ensure!(out.status.success(), "kcat: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    };
    produce(0, 3000)?;
    let dir = tempfile::tempdir()?;
    let toml = |n: usize| {
        format!(
            "[sink]\nmetrics_listen = \"127.0.0.1:{}\"\n\n[source]\nbootstrap = \"{bootstrap}\"\n\n\
             [[elasticsearch]]\nname = \"worker{n}\"\ntopics = [\"events\"]\ngroup = \"shared\"\nendpoints = [\"{}\"]\n\
             index = \"events\"\nbatch_max_events = 50\nbatch_timeout = \"100ms\"\n",
            free_port(),
            es.url()
        )
    };
    let mut workers = Vec::new();
    for n in 0..2 {
        workers.push(Component::start("sink", dir.path(), &format!("worker{n}"), &toml(n))?);
    }
    let members = |bootstrap: &str| -> anyhow::Result<usize> {
        let described = millrace(&["group", "describe", "shared", "--bootstrap", bootstrap])?;
        Ok(described
            .lines()
            .filter_map(|l| l.split_whitespace().nth(6))
            .filter(|id| id.starts_with("millrace-sink"))
            .collect::<BTreeSet<_>>()
            .len())
    };
    wait_for("two workers owning partitions", Duration::from_secs(60), || Ok(members(&bootstrap)? == 2))?;
    workers.push(Component::start("sink", dir.path(), "worker2", &toml(2))?);
    produce(3000, 3000)?;
    wait_for("three workers owning partitions", Duration::from_secs(60), || Ok(members(&bootstrap)? == 3))?;
    let described = millrace(&["group", "describe", "shared", "--bootstrap", &bootstrap])?;
    eprintln!("{described}");
    wait_for("every event indexed", Duration::from_secs(120), || Ok(es.docs(Some("events"))?.len() >= 6000)).map_err(
        |e| anyhow::anyhow!("{e}; worker logs:\n{}", workers.iter().map(Component::log).collect::<String>()),
    )?;
    let docs = es.docs(Some("events"))?;
    let distinct: BTreeSet<&str> = docs.iter().filter_map(|d| d["source"]["message"].as_str()).collect();
    assert_eq!((docs.len(), distinct.len()), (6000, 6000), "one document per event");
    for worker in &workers {
        assert!(worker.log().contains("partitions assigned"), "a worker never got partitions:\n{}", worker.log());
    }
    wait_for("the group's lag to reach 0", Duration::from_secs(30), || group_lag_is_zero(&bootstrap, "shared"))?;
    for worker in &mut workers {
        worker.stop(Duration::from_secs(30))?;
    }
    Ok(())
}

#[test]
fn data_stream_with_api_key_absorbs_throttling_and_replays() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    // Every 5th bulk request is refused with 429 and every 7th document with a per-item 429.
    let es = EsTestServer::start(&["--api-key", "c2luazpzZWNyZXQ=", "--reject-every", "5", "--item-429-every", "7"])?;
    millrace(&["topic", "create", "app", "--partitions", "2", "--bootstrap", &bootstrap])?;
    // Created up front, so reading it below can only succeed: an empty answer means "nothing
    // was dead-lettered", never "the topic was not there".
    millrace(&["topic", "create", "dead-letters", "--partitions", "1", "--bootstrap", &bootstrap])?;
    // File lines as the agent writes them: their identity (host, file, offset) makes the _id.
    let lines: String = (0..1000)
        .map(|i| {
            format!(
                "{{\"@timestamp\":\"2026-11-23T11:00:00.000Z\",\"message\":\"line-{i:04}\",\"host\":{{\"name\":\"web-1\"}},\
                 \"log\":{{\"file\":{{\"device\":1,\"inode\":2,\"fingerprint\":\"0000abcd\",\"path\":\"/var/log/a.log\"}},\"offset\":{}}}}}\n",
                i * 64
            )
        })
        .collect();
    let produce = || -> anyhow::Result<()> {
        let out = run("kcat", &["-P", "-b", &bootstrap, "-t", "app"], Some(lines.as_bytes()), Duration::from_secs(60))?;
        anyhow::ensure!(out.status.success(), "kcat: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    };
    produce()?;
    let dir = tempfile::tempdir()?;
    let metrics_port = free_port();
    let toml = format!(
        "[sink]\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n\n[source]\nbootstrap = \"{bootstrap}\"\n\n\
         [[elasticsearch]]\nname = \"stream\"\ntopics = [\"app\"]\ngroup = \"stream\"\nendpoints = [\"{}\"]\n\
         index = \"logs-app-default\"\ndata_stream = true\naction = \"create\"\napi_key = \"c2luazpzZWNyZXQ=\"\n\
         gzip = true\nbatch_max_events = 100\nbatch_timeout = \"100ms\"\nretry_initial = \"50ms\"\nretry_max = \"500ms\"\n\
         dead_letter_topic = \"dead-letters\"\n",
        es.url()
    );
    let mut sink = Component::start("sink", dir.path(), "sink", &toml)?;
    let in_stream = |es: &EsTestServer| -> anyhow::Result<BTreeSet<String>> {
        Ok(es
            .docs(None)?
            .iter()
            .filter(|d| d["data_stream"] == "logs-app-default")
            .filter_map(|d| d["source"]["message"].as_str().map(str::to_string))
            .collect())
    };
    wait_for("1000 documents in the data stream", Duration::from_secs(60), || Ok(in_stream(&es)?.len() >= 1000))
        .map_err(|e| anyhow::anyhow!("{e}; sink log:\n{}", sink.log()))?;
    // The same lines again, at new broker offsets (an agent re-sending after a crash): `create`
    // of existing ids answers 409, which the sink counts as done.
    produce()?;
    wait_for("the replay consumed", Duration::from_secs(60), || group_lag_is_zero(&bootstrap, "stream"))
        .map_err(|e| anyhow::anyhow!("{e}; sink log:\n{}", sink.log()))?;
    let docs = es.docs(None)?;
    assert_eq!(docs.len(), 1000, "one document per line, replay included");
    let stats = es.stats()?;
    eprintln!("test server counters: {stats}");
    assert!(stats["rejected_requests_429"].as_u64().unwrap_or(0) > 0, "{stats}");
    assert!(stats["items_by_status"]["409"].as_u64().unwrap_or(0) >= 1000, "{stats}");
    let metrics = millrace_tests::http_get(metrics_port, "/metrics")?;
    let retried = metrics
        .lines()
        .find_map(|l| l.strip_prefix("millrace_sink_records_retried_total{sink=\"stream\"} "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    assert!(retried > 0, "per-item 429s were retried:\n{metrics}");
    let dead = read_with_headers(&bootstrap, "dead-letters")?;
    assert!(dead.is_empty(), "throttled documents are retried, not dead-lettered: {dead:?}");
    sink.stop(Duration::from_secs(30))?;
    Ok(())
}
