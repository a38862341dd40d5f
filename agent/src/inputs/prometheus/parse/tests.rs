//! Tests of the text format parser: the record mapping, family resolution, the loose corners of
//! the syntax and the errors of malformed lines.

use super::*;
use crate::inputs::prometheus::fixtures::{tags, NODE_EXPORTER};
use std::time::{Duration, UNIX_EPOCH};

fn at(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}

fn float(point: &MetricPoint, field: &str) -> f64 {
    match point.fields.get(field) {
        Some(FieldValue::Float(f)) => *f,
        other => panic!("field {field} of {point:?} is {other:?}"),
    }
}

#[test]
fn parses_a_node_exporter_like_text() {
    let scraped_at = at(1_795_431_000_000);
    let points = parse_text(NODE_EXPORTER, scraped_at).unwrap();
    assert_eq!(points.len(), 18);
    assert!(points.iter().all(|p| p.fields.len() == 1));

    let cpu = &points[0];
    assert_eq!(cpu.name, "node_cpu_seconds_total");
    assert_eq!(cpu.tags, tags(&[("cpu", "0"), ("mode", "idle"), ("prometheus.type", "counter")]));
    assert_eq!(float(cpu, "value"), 2_582_256.04);
    assert_eq!(cpu.timestamp, scraped_at);

    let load = &points[2];
    assert_eq!((load.name.as_str(), float(load, "value")), ("node_load1", 0.21));
    assert_eq!(load.tags, tags(&[("prometheus.type", "gauge")]));
    assert_eq!(float(&points[3], "value"), 42_098_450_432.0);

    let escaped = &points[4];
    assert_eq!(escaped.tags["file"], r"C:\metrics\backup.prom");
    assert_eq!(escaped.tags["error"], "cannot read \"backup.prom\":\nno such file");

    let buckets = &points[5..8];
    for bucket in buckets {
        assert_eq!(bucket.name, "http_request_duration_seconds");
        assert_eq!(bucket.tags["prometheus.type"], "histogram");
        assert_eq!(bucket.tags["handler"], "/api");
    }
    assert_eq!((buckets[0].tags["le"].as_str(), float(&buckets[0], "bucket")), ("0.05", 24054.0));
    assert_eq!((buckets[2].tags["le"].as_str(), float(&buckets[2], "bucket")), ("+Inf", 144_320.0));
    let (sum, count) = (&points[8], &points[9]);
    assert_eq!((sum.name.as_str(), float(sum, "sum")), ("http_request_duration_seconds", 53423.0));
    assert_eq!((count.name.as_str(), float(count, "count")), ("http_request_duration_seconds", 144_320.0));
    assert_eq!(sum.tags, tags(&[("handler", "/api"), ("prometheus.type", "histogram")]));

    let quantiles = &points[10..13];
    for q in quantiles {
        assert_eq!((q.name.as_str(), q.tags["prometheus.type"].as_str()), ("go_gc_duration_seconds", "summary"));
    }
    assert_eq!((quantiles[1].tags["quantile"].as_str(), float(&quantiles[1], "value")), ("0.5", 3.5e-5));
    assert!(float(&quantiles[2], "value").is_nan());
    assert_eq!(float(&points[13], "sum"), 0.173);
    assert_eq!(float(&points[14], "count"), 4217.0);
    assert_eq!(points[14].name, "go_gc_duration_seconds");

    let untyped = &points[15];
    assert_eq!(untyped.tags, tags(&[("collector", "cpu"), ("prometheus.type", "untyped")]));
    let inf = &points[16];
    assert_eq!(float(inf, "value"), f64::INFINITY);
    assert_eq!(inf.timestamp, at(1_795_431_600_123));
    let neg = &points[17];
    assert_eq!(float(neg, "value"), f64::NEG_INFINITY);
    assert_eq!(neg.timestamp, UNIX_EPOCH - Duration::from_secs(1));

    // Non-finite values become null in the record; the point itself is still shipped.
    let doc = serde_json::Value::Object(quantiles[2].to_document());
    assert_eq!(doc["fields"]["value"], serde_json::Value::Null);
    assert_eq!(doc["tags"]["prometheus.type"], "summary");
}

#[test]
fn family_resolution_prefers_declared_names_and_needs_a_type() {
    let text = "\
# TYPE rpc summary
# TYPE rpc_count gauge
rpc_count 3
rpc_sum 7.5
rpc_bucket{le=\"1\"} 2
jobs_sum 4
# TYPE h histogram
h 1
";
    let points = parse_text(text, at(0)).unwrap();
    let summary: Vec<_> = points.iter().map(|p| (p.name.as_str(), p.tags[TYPE_TAG].as_str())).collect();
    assert_eq!(
        summary,
        [
            ("rpc_count", "gauge"),
            ("rpc", "summary"),
            ("rpc_bucket", "untyped"),
            ("jobs_sum", "untyped"),
            ("h", "histogram")
        ]
    );
    assert_eq!(float(&points[1], "sum"), 7.5);
    assert_eq!(float(&points[3], "value"), 4.0);
    assert_eq!(float(&points[4], "value"), 1.0);
}

#[test]
fn tolerates_the_loose_corners_of_the_format() {
    let text = "  \t\r\n\
        spaced \t { a = \"1\" ,\tb=\"x\", } \t 1.5e3 \t 1000 \r\n\
        empty{} 2\n\
        blank_value{a=\"\",b=\"kept\"} 3\n\
        unknown_escape{path=\"C:\\dir\\file\",uni=\"h\u{e9}llo \\\u{e9}\"} .5\n\
        nan_lower{} nan\n\
        plus{} +7\n\
        #a comment without a blank\n\
        # TYPEX not_a_type_line with words\n\
        # HELP\n\
        # TYPE\n\
        # HELP help_only\n\
        last 4";
    let points = parse_text(text, at(5)).unwrap();
    assert_eq!(points.len(), 7);
    assert_eq!(points[0].name, "spaced");
    assert_eq!(points[0].tags, tags(&[("a", "1"), ("b", "x"), (TYPE_TAG, "untyped")]));
    assert_eq!(float(&points[0], "value"), 1500.0);
    assert_eq!(points[0].timestamp, at(1000));
    assert_eq!(points[1].tags, tags(&[(TYPE_TAG, "untyped")]));
    assert_eq!(points[2].tags, tags(&[("b", "kept"), (TYPE_TAG, "untyped")]));
    assert_eq!(points[3].tags["path"], r"C:\dir\file");
    assert_eq!(points[3].tags["uni"], "h\u{e9}llo \\\u{e9}");
    assert!(float(&points[4], "value").is_nan());
    assert_eq!(float(&points[5], "value"), 7.0);
    assert_eq!((points[6].name.as_str(), points[6].timestamp), ("last", at(5)));
    assert_eq!(parse_text("", at(0)).unwrap(), []);
    assert_eq!(parse_text("# only comments\n\n", at(0)).unwrap(), []);
}

#[test]
fn malformed_lines_fail_the_whole_text_naming_the_line() {
    let cases: &[(&str, &str)] = &[
        ("foo{a=\"b\" 1", "expected `,` or `}` after the value of the label `a`, found `1`"),
        ("foo{a=b} 1", "expected `\"` opening the value of the label `a`, found `b`"),
        ("foo{a=\"b} 1", "expected `\"` closing the value of the label `a`, found the end of the line"),
        ("foo{a=\"b\\", "closing the value of the label `a`"),
        ("foo{a:\"b\"} 1", "expected `=` after the label name `a`, found `:`"),
        ("foo{1a=\"x\"} 1", "expected a label name or `}`, found `1`"),
        ("foo{a=\"1\",a=\"2\"} 1", "the label `a` appears twice"),
        ("foo", "expected a sample value after `foo`, found the end of the line"),
        ("foo{a=\"1\"}", "expected a sample value after `foo`"),
        ("foo bar", "expected a sample value (a number, NaN, +Inf or -Inf), found `bar`"),
        ("foo 0x1p3", "found `0x1p3`"),
        ("foo 1 12.5", "expected a timestamp (integer milliseconds since the epoch), found `12.5`"),
        ("foo 1 2 3", "expected the end of the line after the timestamp, found `3`"),
        ("foo 1 9223372036854775807", "the timestamp `9223372036854775807` is out of range"),
        ("1foo 1", "expected a metric name or `#`, found `1`"),
        ("{a=\"b\"} 1", "expected a metric name or `#`, found `{`"),
        ("# TYPE foo gauges", "expected a metric type (counter, gauge, histogram, summary or untyped), found `gauges`"),
        ("# TYPE foo", "expected a metric type (counter, gauge, histogram, summary or untyped) after `foo`"),
        ("# TYPE foo gauge extra", "expected the end of the line after the type `gauge`, found `e`"),
        ("# TYPE foo gauge\n# TYPE foo counter", "a second TYPE line for `foo`"),
        ("# TYPE 9foo gauge", "expected a metric name after `# TYPE`, found `9`"),
        ("# HELP foo{x} help", "expected a blank after the metric name `foo`, found `{`"),
    ];
    for (text, message) in cases {
        let body = format!("# HELP ok Fine.\nok 1\n{text}\nafter 2\n");
        let error = parse_text(&body, at(0)).unwrap_err();
        let expected_line = if text.contains('\n') { 4 } else { 3 };
        assert_eq!(error.line(), expected_line, "{text:?}: {error}");
        assert!(error.message().contains(message), "{text:?}: {error}");
        assert!(error.to_string().starts_with(&format!("line {expected_line}: ")), "{error}");
    }
    let long = format!("foo{{a=\"{}", "x".repeat(500));
    let error = parse_text(&long, at(0)).unwrap_err();
    assert!(error.message().ends_with("xxx…`"), "{error}");
    assert!(error.message().len() < 300, "{error}");
}
