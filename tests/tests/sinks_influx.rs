//! The InfluxDB sink against a real broker and a real InfluxDB 1.x (`influxd` from the Debian
//! package, started on free ports): every metric record becomes exactly one point, points
//! InfluxDB refuses for good land in the dead-letter topic with the reason, InfluxDB being down
//! stalls the sink (nothing skipped, nothing committed) and the backlog drains once it is back,
//! and offsets are committed up to the end.

use millrace_tests::component::Component;
use millrace_tests::influx::InfluxProcess;
use millrace_tests::{free_port, millrace, read_with_headers, run, wait_for, BrokerProcess};
use std::time::Duration;

/// A metric record in the agent's format; `value` becomes field `v`.
fn metric(seq: u64, value: &str) -> String {
    let ms = 1_795_431_600_000 + seq;
    let at = format!("2026-11-23T11:00:{:02}.{:03}Z", (ms / 1000) % 60, ms % 1000);
    format!(
        r#"{{"@timestamp":"{at}","name":"load","tags":{{"core":"c{}"}},"fields":{{"v":{value},"seq":{seq}}},"host":{{"name":"h1"}},"input":{{"type":"test","name":"t"}},"event":{{"schema":1,"kind":"metric"}}}}"#,
        seq % 3
    )
}

fn produce(bootstrap: &str, topic: &str, records: &[String]) -> anyhow::Result<()> {
    let input = records.join("\n") + "\n";
    let out = run("kcat", &["-P", "-b", bootstrap, "-t", topic], Some(input.as_bytes()), Duration::from_secs(60))?;
    anyhow::ensure!(out.status.success(), "kcat failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

#[test]
fn metrics_reach_influxdb_once_refused_points_are_dead_lettered_and_an_outage_stalls() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    let mut influx = InfluxProcess::start()?;
    influx.create_database("metrics")?;
    millrace(&["topic", "create", "metrics", "--partitions", "3", "--bootstrap", &bootstrap])?;
    millrace(&["topic", "create", "dead-letters", "--partitions", "1", "--bootstrap", &bootstrap])?;

    // 300 good points, one that conflicts with the field's type, one record that is no metric.
    let mut records: Vec<String> = (0..300).map(|i| metric(i, &format!("{i}.5"))).collect();
    records.insert(150, metric(1_000, "\"not a number\""));
    records.insert(10, r#"{"@timestamp":"2026-11-23T11:00:00Z","message":"a log line in the wrong topic"}"#.into());
    produce(&bootstrap, "metrics", &records)?;

    let dir = tempfile::tempdir()?;
    let sink_toml = format!(
        "[sink]\nmetrics_listen = \"127.0.0.1:{}\"\n\n[source]\nbootstrap = \"{bootstrap}\"\n\n\
         [[influxdb]]\nname = \"metrics\"\ntopics = [\"metrics\"]\ngroup = \"influx-sink\"\nurl = \"{}\"\n\
         database = \"metrics\"\nbatch_max_events = 100\nbatch_timeout = \"200ms\"\ngzip = true\n\
         retry_initial = \"100ms\"\nretry_max = \"1s\"\nrequest_timeout = \"2s\"\ndead_letter_topic = \"dead-letters\"\n",
        free_port(),
        influx.url()
    );
    let mut sink = Component::start("sink", dir.path(), "sink", &sink_toml)?;
    let points = |influx: &InfluxProcess| influx.count_points("metrics", "load").unwrap_or(0);
    wait_for("300 points in InfluxDB and 2 dead letters", Duration::from_secs(60), || {
        Ok(points(&influx) >= 300 && read_with_headers(&bootstrap, "dead-letters")?.len() >= 2)
    })
    .map_err(|e| anyhow::anyhow!("{e}; sink log:\n{}", sink.log()))?;
    assert_eq!(points(&influx), 300, "exactly one point per good record");
    let dead = read_with_headers(&bootstrap, "dead-letters")?;
    assert_eq!(dead.len(), 2, "{dead:#?}");
    let conflict = dead.iter().find(|(_, v)| v.contains("not a number")).expect("the conflicting point");
    assert!(conflict.0.contains("millrace.error=") && conflict.0.contains("field type conflict"), "{}", conflict.0);
    assert!(conflict.0.contains("millrace.origin.topic=metrics"), "{}", conflict.0);
    let log_line = dead.iter().find(|(_, v)| v.contains("wrong topic")).expect("the log record");
    assert!(log_line.0.contains("no metric `name`"), "{}", log_line.0);

    // InfluxDB goes away while records keep coming: the sink stalls and retries, then catches up.
    influx.stop()?;
    produce(&bootstrap, "metrics", &(300..500).map(|i| metric(i, &format!("{i}.5"))).collect::<Vec<_>>())?;
    sink.process().wait_for_line("the sink to notice InfluxDB is down", Duration::from_secs(30), |l| {
        l.contains("write failed; retrying")
    })?;
    std::thread::sleep(Duration::from_secs(5));
    influx.restart()?;
    wait_for("500 points after InfluxDB came back", Duration::from_secs(60), || Ok(points(&influx) >= 500))
        .map_err(|e| anyhow::anyhow!("{e}; sink log:\n{}", sink.log()))?;
    assert_eq!(points(&influx), 500);

    // Every offset is committed, and SIGTERM stops the sink cleanly.
    wait_for("the group's lag to reach 0", Duration::from_secs(30), || {
        let described = millrace(&["group", "describe", "influx-sink", "--bootstrap", &bootstrap])?;
        Ok(described.contains("TotalLag: 0"))
    })?;
    sink.stop(Duration::from_secs(30))?;
    Ok(())
}
