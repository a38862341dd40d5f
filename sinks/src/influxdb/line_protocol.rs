//! Metric records (the agent's record format: `name`, `tags`, `fields`, `@timestamp`,
//! `host.name`) as InfluxDB line protocol: `measurement,tag=v field=1.5,count=3i 1700000000000`.
//!
//! Escaping follows the line protocol reference: commas and spaces in measurements; commas,
//! equals signs and spaces in tag keys, tag values and field keys; double quotes and backslashes
//! in string field values. Newlines cannot be represented anywhere, so such a record is refused
//! (dead-lettered) rather than altered. Empty tag values are left out, as Telegraf does.

use super::scan::{Scalar, Scanner};
use chrono::DateTime;
use millrace_config::sink::Precision;
use std::borrow::Cow;
use std::io::Write;

/// Appends `text`, with a backslash before each byte `special` picks; refuses newlines.
fn escape(out: &mut Vec<u8>, text: &str, special: fn(u8) -> bool) -> Result<(), String> {
    let bytes = text.as_bytes();
    // Most names and values need nothing: copy them whole.
    if !bytes.iter().any(|&b| b == b'\n' || b == b'\r' || special(b)) {
        out.extend_from_slice(bytes);
        return Ok(());
    }
    for &b in bytes {
        if b == b'\n' || b == b'\r' {
            return Err(format!("`{}` contains a newline, which line protocol cannot carry", text.escape_debug()));
        }
        if special(b) {
            out.push(b'\\');
        }
        out.push(b);
    }
    Ok(())
}

/// What a measurement name escapes.
fn measurement_special(b: u8) -> bool {
    matches!(b, b',' | b' ')
}

/// What tag keys, tag values and field keys escape.
fn key_or_tag_special(b: u8) -> bool {
    matches!(b, b',' | b'=' | b' ')
}

/// An object's entries (tags or fields), sorted by key.
type Entries<'a> = Vec<(Cow<'a, str>, Scalar<'a>)>;

/// The parts of a metric record a point needs, borrowed from the record where possible.
#[derive(Default)]
struct MetricRecord<'a> {
    timestamp: Option<Cow<'a, str>>,
    name: Option<Cow<'a, str>>,
    tags: Entries<'a>,
    fields: Option<Entries<'a>>,
    host_name: Option<Cow<'a, str>>,
}

/// The entries of the object at the cursor, or None (after skipping it) when it is not one.
fn entries<'a>(scanner: &mut Scanner<'a>) -> Result<Option<Entries<'a>>, String> {
    if !scanner.at_object() {
        scanner.value()?;
        return Ok(None);
    }
    let mut object = scanner.begin_object()?;
    let mut entries = Vec::with_capacity(8);
    while let Some(key) = scanner.next_key(&mut object)? {
        let value = scanner.value()?;
        entries.push((key, value));
    }
    // Sorted by key (InfluxDB stores tags sorted; sending them so spares it the work), and of
    // a key given twice the last one counts, as in any JSON reader.
    entries.reverse();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.dedup_by(|later, earlier| later.0 == earlier.0);
    Ok(Some(entries))
}

/// A string value, or None (after skipping the value) when it is not one.
fn text<'a>(scanner: &mut Scanner<'a>) -> Result<Option<Cow<'a, str>>, String> {
    Ok(match scanner.value()? {
        Scalar::Text(t) => Some(t),
        _ => None,
    })
}

fn parse(json: &[u8]) -> Result<MetricRecord<'_>, String> {
    let mut scanner = Scanner::new(json)?;
    let mut record = MetricRecord::default();
    let mut object = scanner.begin_object()?;
    while let Some(key) = scanner.next_key(&mut object)? {
        match key.as_ref() {
            "@timestamp" => record.timestamp = text(&mut scanner)?,
            "name" => record.name = text(&mut scanner)?,
            "tags" => record.tags = entries(&mut scanner)?.unwrap_or_default(),
            "fields" => record.fields = entries(&mut scanner)?,
            "host" if scanner.at_object() => {
                let mut host = scanner.begin_object()?;
                while let Some(key) = scanner.next_key(&mut host)? {
                    match key.as_ref() {
                        "name" => record.host_name = text(&mut scanner)?,
                        _ => drop(scanner.value()?),
                    }
                }
            }
            _ => drop(scanner.value()?),
        }
    }
    scanner.finish()?;
    Ok(record)
}

/// Writes a JSON number as a line-protocol field value: integers get the `i` suffix, floats go
/// as written (JSON's number grammar is a subset of line protocol's).
fn write_number(out: &mut Vec<u8>, key: &str, text: &str, integer: bool) -> Result<(), String> {
    // Up to 18 digits always fit an i64; a float without an exponent and with fewer than 300
    // digits is always finite. Only the rest needs parsing.
    if (integer && text.trim_start_matches('-').len() <= 18)
        || (!integer && text.len() < 300 && !text.contains(['e', 'E']))
    {
        out.extend_from_slice(text.as_bytes());
        if integer {
            out.push(b'i');
        }
        return Ok(());
    }
    if integer {
        if let Ok(i) = text.parse::<i64>() {
            let _ = write!(out, "{i}i");
            return Ok(());
        }
        // InfluxDB 1.x has no unsigned integers: beyond i64 the value goes as a float.
    }
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() => {
            if integer {
                out.extend_from_slice(ryu::Buffer::new().format_finite(f).as_bytes());
            } else {
                out.extend_from_slice(text.as_bytes());
            }
            Ok(())
        }
        _ => Err(format!("field `{key}`: {text} is out of the range of a 64-bit float")),
    }
}

/// Appends one metric record (JSON bytes) as a line, without the trailing newline, to `out`.
/// On an error, part of a line may have been appended: the caller discards it.
pub fn encode_record(json: &[u8], precision: Precision, out: &mut Vec<u8>) -> Result<(), String> {
    let record = parse(json).map_err(|e| format!("the record is not a JSON object ({e}); it cannot become a point"))?;
    let name = record.name.as_deref().filter(|n| !n.is_empty()).ok_or("the record has no metric `name`")?;
    let fields = record.fields.as_ref().ok_or("the record has no `fields` object (not a metric record?)")?;
    let timestamp = record.timestamp.as_deref().ok_or("the record has no `@timestamp`")?;
    let at = DateTime::parse_from_rfc3339(timestamp).map_err(|e| format!("`@timestamp` {timestamp:?}: {e}"))?;
    escape(out, name, measurement_special)?;
    let mut tags: Vec<(&str, &str)> = record
        .tags
        .iter()
        .filter_map(|(k, v)| match v {
            Scalar::Text(v) => Some((k.as_ref(), v.as_ref())),
            _ => None,
        })
        .collect();
    if let Some(host) = record.host_name.as_deref() {
        if !tags.iter().any(|(k, _)| *k == "host") {
            let at = tags.partition_point(|(k, _)| *k < "host");
            tags.insert(at, ("host", host));
        }
    }
    for (key, value) in tags.into_iter().filter(|(k, v)| !k.is_empty() && !v.is_empty()) {
        out.push(b',');
        escape(out, key, key_or_tag_special)?;
        out.push(b'=');
        escape(out, value, key_or_tag_special)?;
    }
    let mut written = 0;
    for (key, value) in fields {
        let key = key.as_ref();
        if key.is_empty() || matches!(value, Scalar::Null | Scalar::Composite) {
            // Nulls (NaN samples) and nested values have no line-protocol form: left out.
            continue;
        }
        out.push(if written == 0 { b' ' } else { b',' });
        escape(out, key, key_or_tag_special)?;
        out.push(b'=');
        match value {
            Scalar::Number { text, integer } => write_number(out, key, text, *integer)?,
            Scalar::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Scalar::Text(s) => {
                if s.contains(['\n', '\r']) {
                    return Err(format!("field `{key}` contains a newline, which line protocol cannot carry"));
                }
                out.push(b'"');
                for &b in s.as_bytes() {
                    if b == b'"' || b == b'\\' {
                        out.push(b'\\');
                    }
                    out.push(b);
                }
                out.push(b'"');
            }
            Scalar::Null | Scalar::Composite => {}
        }
        written += 1;
    }
    if written == 0 {
        return Err(format!("metric `{name}` has no field with a value"));
    }
    let ms = at.timestamp_millis();
    let stamp = match precision {
        Precision::Ns => i128::from(ms) * 1_000_000,
        Precision::Us => i128::from(ms) * 1_000,
        Precision::Ms => i128::from(ms),
        Precision::S => i128::from(ms.div_euclid(1000)),
    };
    let _ = write!(out, " {stamp}");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn encode(doc: &serde_json::Value, precision: Precision) -> Result<String, String> {
        let mut out = Vec::new();
        encode_record(&serde_json::to_vec(doc).unwrap(), precision, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn points_become_escaped_lines() {
        let doc = json!({
            "@timestamp": "2026-11-23T11:00:00.123Z",
            "name": "disk usage",
            "tags": {"mount": "/var/my data", "device": "sda,1", "empty": ""},
            "fields": {"used_percent": 42.5, "free": 1024, "ok": true, "label": "say \"hi\" \\ bye", "nan": null},
            "host": {"name": "web=1"}
        });
        assert_eq!(
            encode(&doc, Precision::Ms).unwrap(),
            "disk\\ usage,device=sda\\,1,host=web\\=1,mount=/var/my\\ data free=1024i,label=\"say \\\"hi\\\" \\\\ bye\",ok=true,used_percent=42.5 1795431600123"
        );
        assert!(encode(&doc, Precision::S).unwrap().ends_with(" 1795431600"));
        assert!(encode(&doc, Precision::Ns).unwrap().ends_with(" 1795431600123000000"));
        let whole = json!({"@timestamp": "2026-11-23T11:00:00Z", "name": "m", "fields": {"f": 1.0}});
        assert_eq!(encode(&whole, Precision::Ms).unwrap(), "m f=1.0 1795431600000", "a float stays a float");
    }

    #[test]
    fn records_that_cannot_be_points_are_refused_with_a_reason() {
        let log = json!({"@timestamp": "2026-11-23T11:00:00Z", "message": "GET /"});
        assert!(encode(&log, Precision::Ms).unwrap_err().contains("name"));
        let empty = json!({"@timestamp": "2026-11-23T11:00:00Z", "name": "m", "fields": {"x": null}});
        assert!(encode(&empty, Precision::Ms).unwrap_err().contains("no field"));
        let newline =
            json!({"@timestamp": "2026-11-23T11:00:00Z", "name": "m", "tags": {"t": "a\nb"}, "fields": {"x": 1}});
        assert!(encode(&newline, Precision::Ms).unwrap_err().contains("newline"));
        let no_time = json!({"name": "m", "fields": {"x": 1}});
        assert!(encode(&no_time, Precision::Ms).is_err());
    }

    #[test]
    fn numbers_keep_their_text_and_odd_records_are_read_as_json_readers_do() {
        let line = |json: &str| {
            let mut out = Vec::new();
            encode_record(json.as_bytes(), Precision::S, &mut out).map(|()| String::from_utf8(out).unwrap())
        };
        let at = r#""@timestamp":"2026-11-23T11:00:00Z""#;
        assert_eq!(
            line(&format!(
                r#"{{{at},"name":"m","fields":{{"e":6.02E+23,"neg":-0.5,"big":12345678901234567890,"max":-9223372036854775808,"nested":{{"a":1}},"list":[1]}},"tags":{{"n":1,"t":"a\u0020b"}}}}"#
            ))
            .unwrap(),
            r"m,t=a\ b big=1.2345678901234567e19,e=6.02E+23,max=-9223372036854775808i,neg=-0.5 1795431600",
            "exponents pass through, integers beyond i64 become floats, nested fields and non-string tags are left out"
        );
        assert_eq!(
            line(&format!(r#"{{"name":"old",{at},"fields":{{"x":1,"x":2}},"name":"new"}}"#)).unwrap(),
            "new x=2i 1795431600",
            "of a key given twice, the last counts"
        );
        assert!(line(&format!(r#"{{{at},"name":"m","fields":{{"x":1e999}}}}"#)).unwrap_err().contains("range"));
        assert!(line(&format!(r#"{{{at},"name":"m","fields":{{"x":1}}}} trailing"#)).is_err());
        assert!(line(&format!(r#"{{{at},"name":"m","fields":{{"x":1}},"extra":[1,}}"#)).is_err());
        assert!(line(r#"[{"name":"m"}]"#).unwrap_err().contains("not a JSON object"));
    }
}
