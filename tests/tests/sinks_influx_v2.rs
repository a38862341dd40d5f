//! The InfluxDB sink over InfluxDB 2's write API (`api = "v2"`), against a real broker and the
//! InfluxDB 2 contract server (`tests/python/influx2_test_server.py`: no InfluxDB 2 package is
//! reachable here, and the Debian InfluxDB 1.6 has no `/api/v2/write`).
//!
//! Proves: points reach the bucket with the token, org, bucket and precision in the request
//! (microseconds spelled `us`, the only spelling InfluxDB 2 accepts); a batch over the server's
//! body limit (413) is split and written; a partial write (422, a field type conflict) dead-letters
//! the conflicting point only; 429 and 503 with `Retry-After` are retried; a wrong token is
//! reported as refused credentials and commits nothing.

use anyhow::Context;
use millrace_tests::component::Component;
use millrace_tests::influx::v2::Influx2Server;
use millrace_tests::{committed_everything, group_offsets, millrace, read_with_headers, run, wait_for, BrokerProcess};
use std::time::Duration;

const BASE_MS: u64 = 1_795_431_600_000;

/// A metric record in the agent's format at `BASE_MS + seq`; `value` becomes field `v`.
fn metric(seq: u64, value: &str) -> String {
    let ms = BASE_MS + seq;
    let at = format!("2026-11-23T11:{:02}:{:02}.{:03}Z", (ms / 60_000) % 60, (ms / 1000) % 60, ms % 1000);
    format!(
        r#"{{"@timestamp":"{at}","name":"load","tags":{{"core":"c{}"}},"fields":{{"v":{value},"seq":{seq}}},"host":{{"name":"h1"}},"event":{{"schema":1,"kind":"metric"}}}}"#,
        seq % 3
    )
}

fn produce(bootstrap: &str, records: &[String]) -> anyhow::Result<()> {
    let input = records.join("\n") + "\n";
    let out = run("kcat", &["-P", "-b", bootstrap, "-t", "metrics"], Some(input.as_bytes()), Duration::from_secs(60))?;
    anyhow::ensure!(out.status.success(), "kcat failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

fn describe(bootstrap: &str, group: &str) -> anyhow::Result<String> {
    millrace(&["group", "describe", group, "--bootstrap", bootstrap])
}

#[test]
fn the_v2_api_writes_with_token_org_bucket_and_precision_splits_and_dead_letters_only_the_bad_point(
) -> anyhow::Result<()> {
    let token = "v2-t0ken-s3cret";
    // A 20 kB body limit: a batch of a few hundred points is refused with 413.
    let influx = Influx2Server::start("ops", &["metrics"], token, &["--max-body-bytes", "20000"])?;
    // The server holds to the contract the sink is tested against.
    let auth = format!("Token {token}");
    let point = b"load,core=c0 v=1.5 1795431600000";
    for (query, headers, status) in [
        ("org=ops&bucket=metrics&precision=ms", vec![], 401),
        ("org=ops&bucket=metrics&precision=u", vec![("Authorization", auth.as_str())], 400),
        ("org=ops&bucket=nope&precision=ms", vec![("Authorization", auth.as_str())], 404),
    ] {
        let (answered, body) = influx.write(query, &headers, point)?;
        assert_eq!(answered, status, "{query}: {body}");
    }
    assert!(influx.points("metrics")?.is_empty());

    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    // One partition: every batch holds hundreds of points, over the server's limit.
    for topic in ["metrics", "dead-letters"] {
        millrace(&["topic", "create", topic, "--partitions", "1", "--bootstrap", &bootstrap])?;
    }
    let mut records: Vec<String> = (0..600).map(|i| metric(i, &format!("{i}.5"))).collect();
    records.insert(10, r#"{"@timestamp":"2026-11-23T11:00:00Z","message":"a log line in the wrong topic"}"#.into());
    produce(&bootstrap, &records)?;
    // The first writes are throttled and then meet an unavailable server, both with Retry-After.
    influx.configure(r#"{"throttle_next": 2, "unavailable_next": 1, "retry_after": 1}"#)?;

    let dir = tempfile::tempdir()?;
    let token_file = dir.path().join("influx-token");
    std::fs::write(&token_file, format!("{token}\n"))?;
    let sink = |name: &str, token: &str| {
        format!(
            "[[influxdb]]\nname = \"{name}\"\ntopics = [\"metrics\"]\ngroup = \"{name}\"\nurl = \"{}\"\napi = \"v2\"\n\
             org = \"ops\"\nbucket = \"metrics\"\n{token}\nprecision = \"us\"\nbatch_max_events = 1000\n\
             batch_timeout = \"200ms\"\ngzip = true\nretry_initial = \"100ms\"\nretry_max = \"1s\"\n\
             request_timeout = \"5s\"\ndead_letter_topic = \"dead-letters\"\n",
            influx.url()
        )
    };
    let toml = format!(
        "[source]\nbootstrap = \"{bootstrap}\"\n\n{}\n{}",
        sink("v2", &format!("token_file = {:?}", token_file.display().to_string())),
        sink("v2-wrong", "token = \"not-the-token\"")
    );
    let mut sink_process = Component::start("sink", dir.path(), "sink", &toml)?;
    let count = |influx: &Influx2Server| influx.points("metrics").map(|p| p.len()).unwrap_or(0);
    wait_for("600 points", Duration::from_secs(60), || Ok(count(&influx) >= 600))
        .map_err(|e| anyhow::anyhow!("{e}; sink log:\n{}", sink_process.log()))?;

    // A point whose field type conflicts with the bucket's, among good ones: a partial write.
    let mut more: Vec<String> = (600..800).map(|i| metric(i, &format!("{i}.5"))).collect();
    more.insert(100, metric(5_000, "\"not a number\""));
    produce(&bootstrap, &more)?;
    wait_for("v2 to commit everything", Duration::from_secs(60), || {
        Ok(committed_everything(&describe(&bootstrap, "v2")?, "v2"))
    })
    .map_err(|e| anyhow::anyhow!("{e}; sink log:\n{}", sink_process.log()))?;

    let points = influx.points("metrics")?;
    assert_eq!(points.len(), 800, "one point per good record");
    let first = points.iter().find(|p| p["fields"]["seq"] == 7).context("the point of seq 7")?;
    assert_eq!(first["time_ns"].as_u64(), Some((BASE_MS + 7) * 1_000_000), "precision: {first}");
    assert_eq!((first["tags"]["core"].as_str(), first["tags"]["host"].as_str()), (Some("c1"), Some("h1")), "{first}");
    let stats = influx.stats()?;
    eprintln!("contract server counters: {stats}");
    let by_status = &stats["requests_by_status"];
    for status in ["204", "413", "422", "429", "503", "401"] {
        assert!(by_status[status].as_u64().unwrap_or(0) > 0, "no {status} answer: {stats}");
    }
    assert_eq!(stats["precisions"].as_object().map(|p| p.keys().cloned().collect::<Vec<_>>()), Some(vec!["us".into()]));
    let largest = stats["max_lines_in_a_request"].as_u64().unwrap_or(0);
    assert!(largest > 0 && largest < 400, "batches over the limit were split: {largest} lines in one request");
    assert!(sink_process.log().contains("write failed; retrying"), "429/503 were retried");

    let dead = read_with_headers(&bootstrap, "dead-letters")?;
    assert_eq!(dead.len(), 2, "{dead:#?}");
    let conflict = dead.iter().find(|(_, v)| v.contains("not a number")).context("the conflicting point")?;
    assert!(conflict.0.contains("HTTP 422") && conflict.0.contains("field type conflict"), "{}", conflict.0);
    assert!(dead.iter().any(|(h, v)| v.contains("wrong topic") && h.contains("no metric `name`")), "{dead:#?}");

    let log = sink_process.log();
    assert!(
        log.lines().any(|l| l.contains("v2-wrong") && l.contains("credentials refused") && l.contains("HTTP 401")),
        "{log}"
    );
    let wrong_commits = group_offsets(&describe(&bootstrap, "v2-wrong")?, "v2-wrong");
    assert!(wrong_commits.iter().all(|(c, _)| c == "-" || c == "0"), "commits without a write: {wrong_commits:?}");
    assert!(!log.contains(token) && !log.contains("not-the-token"), "a token in the log");
    // The refused sink keeps retrying until its drain deadline on SIGTERM: not waited for here.
    sink_process.kill9();
    Ok(())
}
