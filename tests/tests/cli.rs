//! `millrace topic …` and the admin HTTP endpoints, as an operator uses them.

use millrace_tests::{millrace, run, BrokerProcess};
use std::time::Duration;

#[test]
fn topic_create_list_describe_delete() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let b = broker.bootstrap();
    let created = millrace(&[
        "topic",
        "create",
        "web-logs",
        "--partitions",
        "3",
        "--topic-config",
        "retention.ms=3600000",
        "--bootstrap",
        &b,
    ])?;
    assert!(created.contains("created topic web-logs"), "{created}");
    millrace(&["topic", "create", "metrics", "--partitions", "1", "--bootstrap", &b])?;
    let input: String = (0..10).map(|i| format!("line {i}\n")).collect();
    run("kcat", &["-b", &b, "-t", "web-logs", "-P", "-p", "1"], Some(input.as_bytes()), Duration::from_secs(30))?;

    let list = millrace(&["topic", "list", "--bootstrap", &b])?;
    let mut names: Vec<&str> = list.lines().collect();
    names.sort();
    // Internal topics are listed too, as kafka-topics --list does; so is the pipeline's status
    // topic, which the brokers create.
    assert_eq!(names, vec!["__consumer_offsets", "__millrace_status", "metrics", "web-logs"]);

    let described = millrace(&["topic", "describe", "web-logs", "--bootstrap", &b])?;
    assert!(described.contains("Topic: web-logs\tPartitions: 3\tReplicationFactor: 1"), "{described}");
    assert!(described.contains("retention.ms=3600000"), "{described}");
    assert!(
        described.contains("Partition: 1\tLeader: 1\tReplicas: 1\tIsr: 1\tLogStartOffset: 0\tLogEndOffset: 10"),
        "{described}"
    );
    assert!(
        described.contains("Partition: 0\tLeader: 1\tReplicas: 1\tIsr: 1\tLogStartOffset: 0\tLogEndOffset: 0"),
        "{described}"
    );

    // Bad settings are caught with the key named.
    let err = millrace(&[
        "topic",
        "create",
        "x",
        "--partitions",
        "1",
        "--topic-config",
        "retention.msec=5",
        "--bootstrap",
        &b,
    ])
    .unwrap_err();
    assert!(err.to_string().contains("retention.msec"), "{err}");
    let err = millrace(&["topic", "create", "web-logs", "--partitions", "1", "--bootstrap", &b]).unwrap_err();
    assert!(err.to_string().to_lowercase().contains("exists"), "{err}");

    let deleted = millrace(&["topic", "delete", "web-logs", "--bootstrap", &b])?;
    assert!(deleted.contains("deleted topic web-logs"), "{deleted}");
    let list = millrace(&["topic", "list", "--bootstrap", &b])?;
    assert_eq!(list.lines().filter(|l| !l.starts_with("__")).collect::<Vec<_>>(), vec!["metrics"]);
    let err = millrace(&["topic", "describe", "web-logs", "--bootstrap", &b]).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    // The data directory of the deleted topic goes away.
    millrace_tests::wait_until("partition directories to be removed", Duration::from_secs(10), || {
        !std::fs::read_dir(&broker.data_dir)
            .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with("web-logs")))
            .unwrap_or(true)
    })?;
    Ok(())
}

#[test]
fn metrics_and_health_endpoints() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let b = broker.bootstrap();
    run("kcat", &["-b", &b, "-t", "measured", "-P"], Some(b"a\nb\nc\n"), Duration::from_secs(30))?;
    run("kcat", &["-b", &b, "-t", "measured", "-C", "-e", "-q"], None, Duration::from_secs(30))?;
    let health = broker.admin_get("/health")?;
    let health: serde_json::Value = serde_json::from_str(&health)?;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["active_controller"], true, "a single broker is its own controller");
    assert_eq!(broker.admin_get("/live")?.trim(), r#"{"status":"alive"}"#);
    let metrics = broker.admin_get("/metrics")?;
    for expected in [
        "millrace_broker_topic_records_in_total{topic=\"measured\"} 3",
        "millrace_broker_topic_records_out_total{topic=\"measured\"} 3",
        "millrace_broker_topic_bytes_in_total{topic=\"measured\"}",
        "millrace_broker_log_end_offset{partition=\"0\",topic=\"measured\"} 3",
        "millrace_broker_log_segments{partition=\"0\",topic=\"measured\"} 1",
        "millrace_broker_requests_total{api=\"Produce\"}",
        "millrace_broker_request_duration_seconds_bucket{api=\"Fetch\"",
        "millrace_broker_under_replicated_partitions 0",
        "millrace_broker_under_min_isr_partitions 0",
        "millrace_broker_offline_partitions 0",
        "millrace_broker_active_controller 1",
        "millrace_broker_ready 1",
        "millrace_broker_isr_shrinks_total 0",
        // kcat's default acks=all waited for a group-commit fsync of the partition log.
        "millrace_broker_log_flush_duration_seconds_bucket{log_dir=",
    ] {
        assert!(metrics.contains(expected), "missing {expected:?} in:\n{metrics}");
    }
    let fsyncs = metrics
        .lines()
        .find_map(|l| l.strip_prefix("millrace_broker_log_flush_duration_seconds_count{"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse::<u64>().ok());
    assert!(fsyncs.is_some_and(|n| n >= 1), "log fsyncs counted: {fsyncs:?}");
    Ok(())
}

#[test]
fn bad_config_is_reported_with_file_key_and_fix() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("broker.toml");
    std::fs::write(&path, "[log]\nsegment_bytes = \"10B\"\n")?;
    let err = millrace(&["broker", "--config", &path.display().to_string(), "--check-config"]).unwrap_err().to_string();
    assert!(err.contains("broker.toml") && err.contains("log.segment_bytes") && err.contains("fix:"), "{err}");
    std::fs::write(&path, "listen = \"127.0.0.1:9092\"\nlisen = 1\n")?;
    let err = millrace(&["broker", "--config", &path.display().to_string(), "--check-config"]).unwrap_err().to_string();
    assert!(err.contains("lisen"), "{err}");
    let example = millrace_tests::workspace_root().join("config/examples/broker.toml");
    let ok = millrace(&["broker", "--config", &example.display().to_string(), "--check-config"])?;
    assert!(ok.contains("valid"));
    Ok(())
}

#[test]
fn every_example_config_passes_check_config() -> anyhow::Result<()> {
    // The component each example configures is its file name: broker.toml → `millrace broker`.
    let examples = millrace_tests::workspace_root().join("config/examples");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&examples)? {
        let path = entry?.path();
        let Some(component) = path.file_stem().and_then(|s| s.to_str()).map(str::to_string) else { continue };
        let out = millrace(&[&component, "--config", &path.display().to_string(), "--check-config"])?;
        assert!(out.contains("configuration is valid"), "{}: {out}", path.display());
        checked.push(component);
    }
    checked.sort();
    assert_eq!(checked, ["agent", "broker", "sink"]);
    Ok(())
}

/// `millrace bench --rate` paces its records by sleeping: it is the instrument of the latency
/// benchmarks, which run client and brokers on the same cores, so CPU it burns waiting is taken
/// from the brokers it measures. It once polled librdkafka with a 1 ms timeout between records,
/// which the client library turns into a busy loop below a millisecond.
#[test]
fn bench_at_a_fixed_rate_reports_latency_and_waits_without_spinning() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let b = broker.bootstrap();
    millrace(&["topic", "create", "bench", "--partitions", "6", "--bootstrap", &b])?;
    let bin = millrace_tests::millrace_bin().display().to_string();
    // Two seconds at 20,000 records/s; bash's `times` then gives the children's CPU seconds.
    let script = format!(
        "'{bin}' bench --bootstrap {b} --topic bench --records 40000 --record-size 100 --acks all \
         --produce-only --rate 20000 && times"
    );
    let out = run("bash", &["-c", &script], None, Duration::from_secs(60))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("records=40000"), "{stdout}");
    assert!(stdout.contains("rate=20000") && stdout.contains("p99_ms="), "{stdout}");
    // The last line of `times`: the children's user and system time, as `0m0.123s 0m0.045s`.
    let seconds = |field: &str| -> f64 {
        let (minutes, rest) = field.split_once('m').unwrap_or(("0", field));
        minutes.parse::<f64>().unwrap_or(0.0) * 60.0 + rest.trim_end_matches('s').parse::<f64>().unwrap_or(f64::NAN)
    };
    let children = stdout.lines().last().unwrap_or_default();
    let cpu: f64 = children.split_whitespace().map(seconds).sum();
    assert!(cpu.is_finite(), "no CPU times in {children:?}");
    assert!(cpu < 1.0, "the bench spent {cpu:.2} CPU s pacing 2 s of records: it spins ({children:?})");
    Ok(())
}
