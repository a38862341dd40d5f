//! `millrace topic tail`: records with keys and headers (as kcat produces them) printed from the
//! beginning as JSON, the last N of each partition, a count, nothing from the end, and a value
//! that is not UTF-8 as base64; and the tail commits no group offsets.

use millrace_tests::{millrace, run, BrokerProcess};
use serde_json::Value;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn tail(bootstrap: &str, args: &[&str]) -> anyhow::Result<Vec<String>> {
    let mut all = vec!["topic", "tail", "tailed", "--bootstrap", bootstrap];
    all.extend_from_slice(args);
    Ok(millrace(&all)?.lines().map(str::to_string).collect())
}

#[test]
fn tail_prints_records_with_keys_headers_and_times_from_where_it_is_told() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let b = broker.bootstrap();
    millrace(&["topic", "create", "tailed", "--partitions", "1", "--bootstrap", &b])?;
    run(
        "kcat",
        &["-b", &b, "-t", "tailed", "-P", "-K", ":", "-H", "origin=web-1", "-H", "reason=mapping conflict"],
        Some(b"k1:first\nk2:second\nk3:third\n"),
        T,
    )?;
    run("kcat", &["-b", &b, "-t", "tailed", "-P"], Some(b"\xff\xfe\n"), T)?;

    let json: Vec<Value> = tail(&b, &["--from", "beginning", "--exit", "--format", "json"])?
        .iter()
        .map(|l| serde_json::from_str(l))
        .collect::<Result<_, _>>()?;
    assert_eq!(json.len(), 4, "{json:?}");
    assert_eq!(json[0]["key"], "k1");
    assert_eq!(json[0]["value"], "first");
    assert_eq!(json[0]["offset"], 0);
    assert!(json[0]["timestamp"].as_i64().is_some_and(|t| t > 1_700_000_000_000), "{}", json[0]);
    assert_eq!(
        json[0]["headers"],
        serde_json::json!([{"key": "origin", "value": "web-1"}, {"key": "reason", "value": "mapping conflict"}])
    );
    assert_eq!(json[3]["value"], serde_json::json!({"base64": "//4="}), "not UTF-8");
    assert_eq!(json[3]["key"], Value::Null);

    assert_eq!(tail(&b, &["--from", "-2", "--exit"])?.len(), 2, "the last two");
    assert_eq!(tail(&b, &["--from", "1", "--count", "2"])?, vec!["second", "third"]);
    assert!(tail(&b, &["--from", "end", "--exit"])?.is_empty());
    // The tail joined no group and committed nothing.
    assert!(!millrace(&["group", "list", "--bootstrap", &b])?.contains("millrace-tail"));
    Ok(())
}
