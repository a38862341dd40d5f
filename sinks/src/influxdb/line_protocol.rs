//! Metric records (the agent's record format: `name`, `tags`, `fields`, `@timestamp`,
//! `host.name`) as InfluxDB line protocol: `measurement,tag=v field=1.5,count=3i 1700000000000`.
//!
//! Escaping follows the line protocol reference: commas and spaces in measurements; commas,
//! equals signs and spaces in tag keys, tag values and field keys; double quotes and backslashes
//! in string field values. Newlines cannot be represented anywhere, so such a record is refused
//! (dead-lettered) rather than altered. Empty tag values are left out, as Telegraf does.

use crate::rfc3339::epoch_millis;
use crate::scan::{Object, Scalar, ScanError, Scanner, Span};
use millrace_config::sink::Precision;
use std::cell::RefCell;

/// Which bytes a part of a line escapes: 1 for a backslash before it, 2 for a newline (which
/// line protocol cannot carry).
type EscapeTable = [u8; 256];

const fn escape_table(special: &[u8]) -> EscapeTable {
    let mut table = [0; 256];
    let mut i = 0;
    while i < special.len() {
        table[special[i] as usize] = 1;
        i += 1;
    }
    table[b'\n' as usize] = 2;
    table[b'\r' as usize] = 2;
    table
}

/// What a measurement name escapes.
pub(super) const MEASUREMENT: EscapeTable = escape_table(b", ");
/// What tag keys, tag values and field keys escape.
pub(super) const KEY_OR_TAG: EscapeTable = escape_table(b",= ");

/// Appends `text`, with a backslash before each byte `table` marks; refuses newlines, and a
/// backslash before such a byte or at the end: InfluxDB's parser would read it as escaping what
/// follows (the delimiter written next, or the escape), so the point would not be what was sent.
pub(super) fn escape(out: &mut Vec<u8>, text: &str, table: &EscapeTable) -> Result<(), String> {
    let bytes = text.as_bytes();
    if bytes.last() == Some(&b'\\') {
        return Err(format!("`{}` ends with a backslash, which line protocol cannot carry", text.escape_debug()));
    }
    // Most names and values need nothing: copy them whole.
    if bytes.iter().all(|&b| table[b as usize] == 0) {
        out.extend_from_slice(bytes);
        return Ok(());
    }
    let mut after_backslash = false;
    for &b in bytes {
        match table[b as usize] {
            0 => {}
            1 if after_backslash => {
                return Err(format!(
                    "`{}` has a backslash before `{}`, which line protocol cannot carry",
                    text.escape_debug(),
                    char::from(b)
                ))
            }
            1 => out.push(b'\\'),
            _ => return Err(format!("`{}` contains a newline, which line protocol cannot carry", text.escape_debug())),
        }
        after_backslash = b == b'\\';
        out.push(b);
    }
    Ok(())
}

/// One entry of the record's `tags` or `fields` object.
#[derive(Clone, Copy)]
struct Entry {
    key: Span,
    value: Scalar,
}

/// Buffers for a record's entries, kept from record to record on each thread: allocating
/// them per record was a visible share of the sink's CPU.
#[derive(Default)]
struct Scratch {
    tags: Vec<Entry>,
    fields: Vec<Entry>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

/// Where the parts of a metric record a point needs lie; tags and fields are in the scratch.
#[derive(Default)]
struct MetricRecord {
    timestamp: Option<Span>,
    name: Option<Span>,
    has_fields: bool,
    /// `host.name`, and the top-level key `host` (standing in for the tag's key).
    host: Option<(Span, Span)>,
}

/// Reads the entries of the object at the cursor into `into`, sorted by key (InfluxDB stores
/// tags sorted; sending them so spares it the work), of a key given twice the last one (as in
/// any JSON reader). False, with `into` empty, when the value is not an object.
fn entries(scanner: &mut Scanner<'_>, into: &mut Vec<Entry>) -> Result<bool, ScanError> {
    into.clear();
    if !scanner.at_object() {
        scanner.value()?;
        return Ok(false);
    }
    let mut object = scanner.begin_object()?;
    while let Some(key) = scanner.next_key(&mut object)? {
        let value = scanner.value()?;
        into.push(Entry { key, value });
    }
    // The agent writes its maps' members in order: then there is nothing to sort or drop.
    if into.windows(2).all(|pair| scanner.compare(pair[0].key, pair[1].key).is_lt()) {
        return Ok(true);
    }
    // Reversed first so that the stable sort leaves the last of equal keys first, which
    // `dedup_by` keeps.
    into.reverse();
    into.sort_by(|a, b| scanner.compare(a.key, b.key));
    into.dedup_by(|later, earlier| scanner.compare(later.key, earlier.key).is_eq());
    Ok(true)
}

/// A string value, or None (after skipping the value) when it is not one.
fn text(scanner: &mut Scanner<'_>) -> Result<Option<Span>, ScanError> {
    Ok(match scanner.value()? {
        Scalar::Text(t) => Some(t),
        _ => None,
    })
}

fn parse(scanner: &mut Scanner<'_>, scratch: &mut Scratch) -> Result<MetricRecord, ScanError> {
    let mut record = MetricRecord::default();
    scratch.tags.clear();
    let mut object = scanner.begin_object()?;
    while let Some(key) = scanner.next_key(&mut object)? {
        match scanner.text(key).as_ref() {
            "@timestamp" => record.timestamp = text(scanner)?,
            "name" => record.name = text(scanner)?,
            "tags" => drop(entries(scanner, &mut scratch.tags)?),
            "fields" => record.has_fields = entries(scanner, &mut scratch.fields)?,
            "host" if scanner.at_object() => {
                let mut host: Object = scanner.begin_object()?;
                while let Some(field) = scanner.next_key(&mut host)? {
                    match scanner.text(field).as_ref() {
                        "name" => record.host = text(scanner)?.map(|name| (key, name)),
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

/// Writes a measurement name. One starting with `#` would make the whole line a comment, which
/// InfluxDB skips without a word, so it is refused (and the record dead-lettered) instead.
pub(super) fn write_measurement(out: &mut Vec<u8>, name: &str) -> Result<(), String> {
    if name.starts_with('#') {
        return Err(format!("measurement `{name}` starts with `#`: line protocol would read the point as a comment"));
    }
    escape(out, name, &MEASUREMENT)
}

/// Writes a string field value, quoted, with its quotes and backslashes escaped.
pub(super) fn write_string(out: &mut Vec<u8>, key: &str, s: &str) -> Result<(), String> {
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
    Ok(())
}

/// Writes `,key=value`; an empty key or value is left out (as Telegraf does).
pub(super) fn write_tag(out: &mut Vec<u8>, key: &str, value: &str) -> Result<(), String> {
    if !key.is_empty() && !value.is_empty() {
        out.push(b',');
        escape(out, key, &KEY_OR_TAG)?;
        out.push(b'=');
        escape(out, value, &KEY_OR_TAG)?;
    }
    Ok(())
}

/// A field's value as line protocol takes it.
#[derive(Clone, Copy)]
pub(super) enum FieldValue<'a> {
    /// A JSON number's text and whether it is an integer.
    Number(&'a str, bool),
    Bool(bool),
    Text(&'a str),
}

/// Writes a field after the tags: ` key=value` for the first, `,key=value` for the others.
pub(super) fn write_field(out: &mut Vec<u8>, first: bool, key: &str, value: FieldValue<'_>) -> Result<(), String> {
    out.push(if first { b' ' } else { b',' });
    escape(out, key, &KEY_OR_TAG)?;
    out.push(b'=');
    match value {
        FieldValue::Number(text, integer) => write_number(out, key, text, integer),
        FieldValue::Bool(b) => {
            out.extend_from_slice(if b { b"true" } else { b"false" });
            Ok(())
        }
        FieldValue::Text(text) => write_string(out, key, text),
    }
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
            out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
            out.push(b'i');
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
    // The agent's own records take the one-pass reader; anything it does not take (including
    // every record that cannot become a point) is read again by the general one, which also
    // words the refusal.
    let start = out.len();
    if let Ok(scanner) = Scanner::new(json) {
        if super::plain::encode(scanner, precision, out).is_some() {
            return Ok(());
        }
        out.truncate(start);
    }
    encode_generally(json, precision, out)
}

/// [`encode_record`] without its one-pass reader for the agent's layout: public so that the
/// fuzz target can hold the two to the same lines.
#[doc(hidden)]
pub fn encode_generally(json: &[u8], precision: Precision, out: &mut Vec<u8>) -> Result<(), String> {
    // This thread's buffers, unless they are unavailable (a call during thread teardown).
    let reused = SCRATCH
        .try_with(|cell| cell.try_borrow_mut().ok().map(|mut scratch| encode_with(json, precision, out, &mut scratch)));
    match reused {
        Ok(Some(result)) => result,
        _ => encode_with(json, precision, out, &mut Scratch::default()),
    }
}

fn encode_with(json: &[u8], precision: Precision, out: &mut Vec<u8>, scratch: &mut Scratch) -> Result<(), String> {
    let not_an_object = |e: ScanError| format!("the record is not a JSON object ({e}); it cannot become a point");
    let mut scanner = Scanner::new(json).map_err(not_an_object)?;
    let record = parse(&mut scanner, scratch).map_err(not_an_object)?;
    let name =
        record.name.map(|n| scanner.text(n)).filter(|n| !n.is_empty()).ok_or("the record has no metric `name`")?;
    if !record.has_fields {
        return Err("the record has no `fields` object (not a metric record?)".into());
    }
    let timestamp = record.timestamp.map(|t| scanner.text(t)).ok_or("the record has no `@timestamp`")?;
    let ms = epoch_millis(&timestamp)?;
    write_measurement(out, &name)?;
    let tags = &mut scratch.tags;
    if let Some((host_key, host_name)) = record.host {
        let is_host = |e: &Entry| scanner.is(e.key, "host");
        // A string tag `host` wins over `host.name`.
        if !tags.iter().any(|e| is_host(e) && matches!(e.value, Scalar::Text(_))) {
            let at = tags.partition_point(|e| scanner.text(e.key).as_ref() < "host");
            tags.insert(at, Entry { key: host_key, value: Scalar::Text(host_name) });
        }
    }
    for entry in tags.iter() {
        let Scalar::Text(value) = entry.value else { continue };
        write_tag(out, &scanner.text(entry.key), &scanner.text(value))?;
    }
    let mut written = 0;
    for entry in &scratch.fields {
        let key = scanner.text(entry.key);
        let text;
        let value = match entry.value {
            Scalar::Number { text: number, integer } => {
                text = scanner.text(number);
                FieldValue::Number(&text, integer)
            }
            Scalar::Bool(b) => FieldValue::Bool(b),
            Scalar::Text(string) => {
                text = scanner.text(string);
                FieldValue::Text(&text)
            }
            // Nulls (NaN samples) and nested values have no line-protocol form: left out.
            Scalar::Null | Scalar::Composite => continue,
        };
        if key.is_empty() {
            continue;
        }
        write_field(out, written == 0, &key, value)?;
        written += 1;
    }
    if written == 0 {
        return Err(format!("metric `{name}` has no field with a value"));
    }
    write_stamp(out, ms, precision);
    Ok(())
}

/// Writes the point's time, after its separating space, in `precision`.
pub(super) fn write_stamp(out: &mut Vec<u8>, ms: i64, precision: Precision) {
    let stamp = match precision {
        Precision::Ns => i128::from(ms) * 1_000_000,
        Precision::Us => i128::from(ms) * 1_000,
        Precision::Ms => i128::from(ms),
        Precision::S => i128::from(ms.div_euclid(1000)),
    };
    out.push(b' ');
    // Beyond an i64 (nanoseconds after the year 2262) InfluxDB refuses the point: its verdict.
    match i64::try_from(stamp) {
        Ok(stamp) => out.extend_from_slice(itoa::Buffer::new().format(stamp).as_bytes()),
        Err(_) => out.extend_from_slice(stamp.to_string().as_bytes()),
    }
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
    fn a_measurement_that_would_read_as_a_comment_is_refused() {
        // Found by the fuzzer: InfluxDB skips a line starting with `#` as a comment.
        let doc = json!({"@timestamp": "2026-11-23T11:00:00Z", "name": "#cpu", "fields": {"v": 1}});
        assert!(encode(&doc, Precision::Ms).unwrap_err().contains("comment"));
    }

    #[test]
    fn a_backslash_line_protocol_would_read_as_an_escape_is_refused() {
        // Found by the fuzzer: `C:\` before the `,` that follows, or `a\ b` (a backslash before
        // an escaped space), would read back as other names and values.
        let at = |tags: serde_json::Value, name: &str| json!({"@timestamp": "2026-11-23T11:00:00Z", "name": name, "tags": tags, "fields": {"v": 1}});
        assert!(encode(&at(json!({"path": "C:\\"}), "disk"), Precision::Ms)
            .unwrap_err()
            .contains("ends with a backslash"));
        assert!(encode(&at(json!({}), "a\\ b"), Precision::Ms).unwrap_err().contains("backslash before ` `"));
        // A backslash elsewhere is written as it is.
        assert_eq!(
            encode(&at(json!({"dir": "C:\\Temp"}), "disk"), Precision::Ms).unwrap(),
            "disk,dir=C:\\Temp v=1i 1795431600000"
        );
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
    fn the_host_tag_and_escaped_keys() {
        let line = |json: &str| {
            let mut out = Vec::new();
            encode_record(json.as_bytes(), Precision::S, &mut out).map(|()| String::from_utf8(out).unwrap())
        };
        let at = r#""@timestamp":"2026-11-23T11:00:00Z","name":"m","fields":{"x":1}"#;
        assert_eq!(
            line(&format!(r#"{{{at},"host":{{"name":"h"}},"tags":{{"a":"1","z":"2"}}}}"#)).unwrap(),
            "m,a=1,host=h,z=2 x=1i 1795431600"
        );
        assert_eq!(
            line(&format!(r#"{{{at},"host":{{"name":"h"}},"tags":{{"host":"t"}}}}"#)).unwrap(),
            "m,host=t x=1i 1795431600",
            "a tag wins"
        );
        assert_eq!(
            line(&format!(r#"{{{at},"host":{{"name":"h"}},"tags":{{"host":5}}}}"#)).unwrap(),
            "m,host=h x=1i 1795431600",
            "a number is no tag"
        );
        assert_eq!(
            line(&format!(r#"{{{at},"tags":{{"b":"2","\u0061c":"3","a\"":"1"}}}}"#)).unwrap(),
            r#"m,a"=1,ac=3,b=2 x=1i 1795431600"#,
            "escaped keys are sorted by their text"
        );
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
