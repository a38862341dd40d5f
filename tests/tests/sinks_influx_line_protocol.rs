//! The InfluxDB sink reading records another producer wrote as InfluxDB line protocol (what
//! Telegraf's `outputs.kafka` sends with its default `data_format = "influx"`) or as Telegraf's
//! JSON (`data_format = "json"`), against a real broker and a real InfluxDB 1.x: the points
//! stored through the sink are the points the same lines give when written straight to
//! InfluxDB, a record holding several lines gives them all, a line without a timestamp takes the
//! record's time, and a broken line is dead-lettered with the reason while the rest is written.

use millrace_tests::component::Component;
use millrace_tests::influx::InfluxProcess;
use millrace_tests::{free_port, millrace, read_with_headers, run, wait_for, BrokerProcess};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Produces `records` (which may hold newlines) with `|` between them.
fn produce(bootstrap: &str, topic: &str, records: &[String]) -> anyhow::Result<()> {
    let input = records.join("|");
    let args = ["-P", "-b", bootstrap, "-t", topic, "-D", "|"];
    let out = run("kcat", &args, Some(input.as_bytes()), Duration::from_secs(60))?;
    anyhow::ensure!(out.status.success(), "kcat failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

/// Telegraf-style lines: nanosecond timestamps on whole milliseconds (the sink writes
/// milliseconds), escaped names, string, integer, float and boolean fields.
fn telegraf_line(i: u64) -> String {
    let ns = 1_795_431_600_000_000_000 + i * 10_000_000_000;
    format!(
        r#"cpu,cpu=cpu{},host=web\ 1,path=/var\,log usage_idle={}.25,procs={}i,up=true,state="GET /x \"ok\", fine" {ns}"#,
        i % 2,
        90 + i % 7,
        100 + i
    )
}

/// [`telegraf_line`]'s metric as Telegraf's JSON serializer writes it (timestamp in seconds).
fn telegraf_json(i: u64) -> serde_json::Value {
    serde_json::json!({
        "name": "cpu",
        "tags": { "cpu": format!("cpu{}", i % 2), "host": "web 1", "path": "/var,log" },
        "fields": {
            "usage_idle": 90.25 + (i % 7) as f64,
            "procs": 100 + i,
            "up": true,
            "state": "GET /x \"ok\", fine"
        },
        "timestamp": 1_795_431_600 + i * 10
    })
}

fn series(influx: &InfluxProcess, db: &str, measurement: &str) -> anyhow::Result<serde_json::Value> {
    let json = influx.query(db, &format!("SELECT * FROM {measurement} GROUP BY *"))?;
    Ok(json["results"][0]["series"].clone())
}

#[test]
fn telegraf_line_protocol_arrives_as_the_same_points_as_written_directly() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    let influx = InfluxProcess::start()?;
    influx.create_database("direct")?;
    influx.create_database("telegraf")?;
    influx.create_database("telegraf_json")?;
    millrace(&["topic", "create", "telegraf", "--partitions", "2", "--bootstrap", &bootstrap])?;
    millrace(&["topic", "create", "telegraf-json", "--partitions", "2", "--bootstrap", &bootstrap])?;
    millrace(&["topic", "create", "dead-letters", "--partitions", "1", "--bootstrap", &bootstrap])?;

    let lines: Vec<String> = (0..40).map(telegraf_line).collect();
    // The same metrics as Telegraf's JSON (seconds), half of them in one batch record.
    let json: Vec<serde_json::Value> = (0..40u64).map(telegraf_json).collect();
    let mut json_records: Vec<String> = json[..20].iter().map(|m| m.to_string()).collect();
    json_records.push(serde_json::json!({ "metrics": json[20..] }).to_string());
    let disk = "disk,device=sda used=1i 1795431600000000000\ndisk,device=sdb used=2i 1795431600000000000\n";
    let mut records = lines.clone();
    // One record holding a batch (Telegraf's batch format), one broken line, one without time.
    records.push(disk.to_string());
    records.push("cpu,host=web\\ 1 usage_idle=oops 1795431600000000000".to_string());
    records.push("uptime,host=web\\ 1 seconds=5i".to_string());
    let before_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    produce(&bootstrap, "telegraf", &records)?;
    produce(&bootstrap, "telegraf-json", &json_records)?;
    let (status, body) = influx.write("direct", "ns", lines.join("\n") + "\n" + disk)?;
    anyhow::ensure!(status == 204, "direct write: {status} {body}");

    let dir = tempfile::tempdir()?;
    let sink_toml = format!(
        "[sink]\nmetrics_listen = \"127.0.0.1:{}\"\n\n[source]\nbootstrap = \"{bootstrap}\"\n\n\
         [[influxdb]]\nname = \"telegraf\"\ntopics = [\"telegraf\"]\ngroup = \"telegraf-sink\"\nurl = \"{}\"\n\
         database = \"telegraf\"\nformat = \"influx\"\nbatch_timeout = \"200ms\"\n\
         retry_initial = \"100ms\"\nretry_max = \"1s\"\ndead_letter_topic = \"dead-letters\"\n\n\
         [[influxdb]]\nname = \"telegraf-json\"\ntopics = [\"telegraf-json\"]\ngroup = \"telegraf-json-sink\"\n\
         url = \"{}\"\ndatabase = \"telegraf_json\"\nformat = \"json\"\nbatch_timeout = \"200ms\"\n",
        free_port(),
        influx.url(),
        influx.url()
    );
    let mut sink = Component::start("sink", dir.path(), "sink", &sink_toml)?;
    let count = |m: &str| influx.count_points("telegraf", m).unwrap_or(0);
    wait_for("every point and the dead letter", Duration::from_secs(60), || {
        Ok(count("cpu") >= 40
            && count("disk") >= 2
            && count("uptime") >= 1
            && influx.count_points("telegraf_json", "cpu").unwrap_or(0) >= 40
            && !read_with_headers(&bootstrap, "dead-letters")?.is_empty())
    })
    .map_err(|e| anyhow::anyhow!("{e}; sink log:\n{}", sink.log()))?;

    for measurement in ["cpu", "disk"] {
        let (direct, via_sink) = (series(&influx, "direct", measurement)?, series(&influx, "telegraf", measurement)?);
        assert!(direct.as_array().is_some_and(|s| !s.is_empty()), "nothing written directly: {direct}");
        assert_eq!(via_sink, direct, "{measurement}: the sink's points differ from the direct write's");
    }
    // Telegraf's JSON gives the same points (its numbers are all floats, which InfluxDB's
    // answers print as the integers do).
    assert_eq!(series(&influx, "telegraf_json", "cpu")?, series(&influx, "direct", "cpu")?, "Telegraf JSON");
    // The line without a timestamp carries the record's time, not the moment of the write.
    let uptime = influx.query("telegraf", "SELECT * FROM uptime")?;
    let at = uptime["results"][0]["series"][0]["values"][0][0].as_i64().unwrap_or_default();
    let after_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    assert!((before_ms - 1_000..=after_ms).contains(&at), "uptime point at {at}, produced at {before_ms}..");

    let dead = read_with_headers(&bootstrap, "dead-letters")?;
    assert_eq!(dead.len(), 1, "{dead:#?}");
    assert!(dead[0].1.contains("usage_idle=oops"), "{:?}", dead[0]);
    assert!(dead[0].0.contains("millrace.error="), "{}", dead[0].0);
    for group in ["telegraf-sink", "telegraf-json-sink"] {
        wait_for("the group's lag to reach 0", Duration::from_secs(30), || {
            Ok(millrace(&["group", "describe", group, "--bootstrap", &bootstrap])?.contains("TotalLag: 0"))
        })?;
    }
    sink.stop(Duration::from_secs(30))?;
    Ok(())
}
