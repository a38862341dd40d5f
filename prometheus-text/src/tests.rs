//! Tests of the parser: families and parts, labels and timestamps, and reading on past errors.
#![allow(clippy::unwrap_used)]

use super::*;
use std::time::{Duration, UNIX_EPOCH};

const TEXT: &str = r#"# HELP http_request_duration_seconds Request latency.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{handler="/api",le="0.1"} 33444
http_request_duration_seconds_bucket{handler="/api",le="+Inf"} 144320
http_request_duration_seconds_sum{handler="/api"} 53423
http_request_duration_seconds_count{handler="/api"} 144320
# TYPE rpc summary
rpc{quantile="0.5"} 0.25
rpc_bucket 1
rpc_count 7
queue_depth{queue="a \"b\"\nc",path="C:\dir",empty=""} 3 1700000000000
"#;

#[test]
fn samples_carry_family_type_and_part() {
    let samples = parse(TEXT).unwrap();
    let summary: Vec<_> =
        samples.iter().map(|s| (s.name, s.family, s.metric_type.as_str(), s.part.as_str(), s.value)).collect();
    assert_eq!(
        summary,
        [
            ("http_request_duration_seconds_bucket", "http_request_duration_seconds", "histogram", "bucket", 33444.0),
            ("http_request_duration_seconds_bucket", "http_request_duration_seconds", "histogram", "bucket", 144320.0),
            ("http_request_duration_seconds_sum", "http_request_duration_seconds", "histogram", "sum", 53423.0),
            ("http_request_duration_seconds_count", "http_request_duration_seconds", "histogram", "count", 144320.0),
            ("rpc", "rpc", "summary", "value", 0.25),
            ("rpc_bucket", "rpc_bucket", "untyped", "value", 1.0),
            ("rpc_count", "rpc", "summary", "count", 7.0),
            ("queue_depth", "queue_depth", "untyped", "value", 3.0),
        ]
    );
    assert_eq!(samples[1].label("le"), Some("+Inf"));
    assert_eq!(samples[1].timestamp, None);
    let queue = &samples[7];
    assert_eq!(queue.labels, [("queue", "a \"b\"\nc".into()), ("path", r"C:\dir".into()), ("empty", String::new())]);
    assert_eq!(queue.label("empty"), Some(""));
    assert_eq!(queue.label("missing"), None);
    assert_eq!(queue.timestamp, Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_000)));
}

#[test]
fn reading_on_skips_only_the_malformed_lines() {
    let text = "good 1\nbad{a=\"1\" 2\n# TYPE t gauge\n# TYPE t counter\nt 3\nworse x\r\nlast 4";
    let items: Vec<_> = samples(text).collect();
    let read: Vec<_> = items.iter().filter_map(|i| i.as_ref().ok()).map(|s| (s.name, s.value)).collect();
    assert_eq!(read, [("good", 1.0), ("t", 3.0), ("last", 4.0)]);
    let errors: Vec<_> = items.iter().filter_map(|i| i.as_ref().err()).map(ParseError::line).collect();
    assert_eq!(errors, [2, 4, 6]);
    let first = parse(text).unwrap_err();
    assert_eq!(first.line(), 2);
    assert_eq!(
        first.to_string(),
        "line 2: expected `,` or `}` after the value of the label `a`, found `2` in `bad{a=\"1\" 2`"
    );
    let second = items[2].as_ref().unwrap_err();
    assert!(second.message().starts_with("a second TYPE line for `t`"), "{second}");
    assert!(items[4].as_ref().unwrap_err().message().ends_with("found `x` in `worse x`"));
}

#[test]
fn errors_quote_at_most_an_excerpt() {
    let long = format!("foo{{a=\"{}", "x".repeat(500));
    let error = parse(&long).unwrap_err();
    assert!(error.message().ends_with("xxx…`"), "{error}");
    assert!(error.message().len() < 300, "{error}");
    assert_eq!(ParseError::new(7, "why").to_string(), "line 7: why");
}
