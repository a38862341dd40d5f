//! Encoding cost per record on the sink's consumer thread — the work that competes with the
//! destination for CPU on a small machine. `cargo bench -p millrace-sinks --bench encode`.
//! Records are shaped as the agent writes them (host metrics; file log lines).

use millrace_config::sink::{BulkAction, Precision};
use millrace_sinks::elasticsearch::bulk;
use millrace_sinks::elasticsearch::index::IndexName;
use millrace_sinks::influxdb::line_protocol;
use millrace_sinks::record::SourceRecord;
use std::hint::black_box;
use std::time::Instant;

const RECORDS: usize = 200_000;

/// A metric record with its members out of key order (`runnable` last), as another producer may
/// write it.
fn metric(i: usize) -> String {
    format!(
        r#"{{"@timestamp":"2026-11-23T11:{:02}:{:02}.000Z","name":"cpu","tags":{{"cpu":"cpu{}"}},"fields":{{"usage_idle":{},"usage_system":{},"usage_user":{},"runnable":{}}},"host":{{"name":"h{:02}"}},"input":{{"type":"host_metrics","name":"host"}},"event":{{"schema":1,"kind":"metric"}}}}"#,
        i / 60 % 60,
        i % 60,
        i % 8,
        75.0 + (i % 100) as f64 / 8.0,
        (i * 3 % 500) as f64 / 10.0 + 0.5,
        (i * 7 % 1000) as f64 / 10.0 + 0.25,
        i % 17,
        i % 50
    )
}

/// The same metric with its members in the order the agent writes them (its JSON maps are
/// ordered by key).
fn agent_metric(i: usize) -> String {
    let value: serde_json::Value = serde_json::from_str(&metric(i)).unwrap_or_else(|e| panic!("{e}"));
    value.to_string()
}

fn log_line(i: usize) -> String {
    format!(
        r#"{{"@timestamp":"2026-11-23T11:00:00.{:03}Z","message":"10.0.0.{} - - [23/Nov/2026:11:00:00 +0000] \"GET /api/items/{} HTTP/1.1\" 200 {} \"-\" \"curl/8.5\"","host":{{"name":"web-1"}},"log":{{"file":{{"path":"/var/log/nginx/access.log","device":2049,"inode":77,"fingerprint":"0a0b0c0d"}},"offset":{}}},"input":{{"type":"file","name":"nginx"}},"event":{{"schema":1,"kind":"log"}}}}"#,
        i % 1000,
        i % 250,
        i,
        200 + i % 5000,
        i * 140
    )
}

fn measure(name: &str, payloads: &[String], mut encode: impl FnMut(&SourceRecord<'_>, &mut Vec<u8>)) {
    let mut out = Vec::with_capacity(64 << 20);
    let bytes: usize = payloads.iter().map(String::len).sum();
    let started = Instant::now();
    for (i, payload) in payloads.iter().enumerate() {
        let record = SourceRecord {
            topic: "bench",
            partition: 0,
            offset: i as i64,
            key: None,
            payload: payload.as_bytes(),
            timestamp_ms: Some(1_795_431_600_000),
            replayed_from: None,
        };
        encode(&record, &mut out);
        if out.len() > 60 << 20 {
            out.clear();
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    black_box(&out);
    println!(
        "{name}: {:.0} records/s, {:.2} µs/record, {:.0} MiB/s of records",
        payloads.len() as f64 / seconds,
        seconds * 1e6 / payloads.len() as f64,
        bytes as f64 / seconds / (1 << 20) as f64
    );
}

fn main() {
    // `cargo bench … -- influx` runs only the encoders whose name contains the word.
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-')).unwrap_or_default();
    let wanted = |name: &str| name.contains(only.as_str());
    let metrics: Vec<String> = (0..RECORDS).map(metric).collect();
    let agent_metrics: Vec<String> = (0..RECORDS).map(agent_metric).collect();
    let logs: Vec<String> = (0..RECORDS).map(log_line).collect();
    for _ in 0..2 {
        if wanted("influxdb line protocol, members out of order") {
            measure("influxdb line protocol, members out of order", &metrics, |r, out| {
                if let Err(e) = line_protocol::encode_record(r.payload, Precision::Ms, out) {
                    panic!("benchmark record refused: {e}");
                }
                out.push(b'\n');
            });
        }
        if wanted("influxdb line protocol, members in the agent's order") {
            measure("influxdb line protocol, members in the agent's order", &agent_metrics, |r, out| {
                if let Err(e) = line_protocol::encode_record(r.payload, Precision::Ms, out) {
                    panic!("benchmark record refused: {e}");
                }
                out.push(b'\n');
            });
        }
        if wanted("elasticsearch") {
            let index = IndexName::parse("logs-%Y.%m.%d").unwrap_or_else(|e| panic!("{e}"));
            measure("elasticsearch bulk", &logs, |r, out| {
                if let Err(e) = bulk::encode(r, &index, BulkAction::Create, out) {
                    panic!("benchmark record refused: {e}");
                }
            });
        }
    }
}
