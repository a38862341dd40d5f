//! Metric records (the agent's record format: `name`, `tags`, `fields`, `@timestamp`,
//! `host.name`) as InfluxDB line protocol: `measurement,tag=v field=1.5,count=3i 1700000000000`.
//!
//! Escaping follows the line protocol reference: commas and spaces in measurements; commas,
//! equals signs and spaces in tag keys, tag values and field keys; double quotes and backslashes
//! in string field values. Newlines cannot be represented anywhere, so such a record is refused
//! (dead-lettered) rather than altered. Empty tag values are left out, as Telegraf does.

use chrono::DateTime;
use millrace_config::sink::Precision;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write;

fn escape(out: &mut String, text: &str, specials: &[char]) -> Result<(), String> {
    let needs_care = |c: char| c == '\n' || c == '\r' || specials.contains(&c);
    // Most names and values need nothing: copy them whole.
    if !text.contains(needs_care) {
        out.push_str(text);
        return Ok(());
    }
    for c in text.chars() {
        if c == '\n' || c == '\r' {
            return Err(format!("`{}` contains a newline, which line protocol cannot carry", text.escape_debug()));
        }
        if specials.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(())
}

const MEASUREMENT: &[char] = &[',', ' '];
const KEY_OR_TAG: &[char] = &[',', '=', ' '];

/// A JSON string, borrowed from the record when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_str(Visit)
    }
}

/// A tag or field value: the scalars line protocol can carry, anything else kept as `Other`.
enum Scalar<'a> {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(Cow<'a, str>),
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                // InfluxDB 1.x has no unsigned integers: beyond i64 the value goes as a float.
                Ok(i64::try_from(v).map_or(Scalar::Float(v as f64), Scalar::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Text(Cow::Owned(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Other)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

#[derive(Deserialize)]
struct Host<'a> {
    #[serde(borrow)]
    name: Option<Text<'a>>,
}

/// The parts of a metric record a point needs, borrowed from the record where possible (other
/// keys are skipped unparsed).
#[derive(Deserialize)]
struct MetricRecord<'a> {
    #[serde(rename = "@timestamp", borrow)]
    timestamp: Option<Text<'a>>,
    #[serde(borrow)]
    name: Option<Text<'a>>,
    #[serde(borrow, default)]
    tags: Option<BTreeMap<Text<'a>, Scalar<'a>>>,
    #[serde(borrow)]
    fields: Option<BTreeMap<Text<'a>, Scalar<'a>>>,
    #[serde(borrow)]
    host: Option<Host<'a>>,
}

impl PartialEq for Text<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for Text<'_> {}
impl PartialOrd for Text<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Text<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

/// Encodes one metric record (JSON bytes) as a line (without the trailing newline).
pub fn encode_record(json: &[u8], precision: Precision) -> Result<String, String> {
    let record: MetricRecord<'_> = serde_json::from_slice(json)
        .map_err(|e| format!("the record is not a JSON object ({e}); it cannot become a point"))?;
    let name = record
        .name
        .as_ref()
        .map(|n| n.0.as_ref())
        .filter(|n| !n.is_empty())
        .ok_or("the record has no metric `name`")?;
    let fields = record.fields.as_ref().ok_or("the record has no `fields` object (not a metric record?)")?;
    let timestamp = record.timestamp.as_ref().map(|t| t.0.as_ref()).ok_or("the record has no `@timestamp`")?;
    let at = DateTime::parse_from_rfc3339(timestamp).map_err(|e| format!("`@timestamp` {timestamp:?}: {e}"))?;
    let mut line = String::with_capacity(json.len() / 2);
    escape(&mut line, name, MEASUREMENT)?;
    let mut tags: Vec<(&str, &str)> = record
        .tags
        .iter()
        .flatten()
        .filter_map(|(k, v)| match v {
            Scalar::Text(v) => Some((k.0.as_ref(), v.as_ref())),
            _ => None,
        })
        .collect();
    if let Some(host) = record.host.as_ref().and_then(|h| h.name.as_ref()) {
        if !tags.iter().any(|(k, _)| *k == "host") {
            tags.push(("host", host.0.as_ref()));
        }
    }
    // InfluxDB stores tags sorted; sending them sorted spares it the work.
    tags.sort_unstable();
    for (key, value) in tags.into_iter().filter(|(k, v)| !k.is_empty() && !v.is_empty()) {
        line.push(',');
        escape(&mut line, key, KEY_OR_TAG)?;
        line.push('=');
        escape(&mut line, value, KEY_OR_TAG)?;
    }
    let mut written = 0;
    for (key, value) in fields {
        let key = key.0.as_ref();
        if key.is_empty() || matches!(value, Scalar::Other) || matches!(value, Scalar::Float(f) if !f.is_finite()) {
            // Nulls (NaN samples) and nested values have no line-protocol form: left out.
            continue;
        }
        line.push(if written == 0 { ' ' } else { ',' });
        escape(&mut line, key, KEY_OR_TAG)?;
        line.push('=');
        match value {
            Scalar::Int(i) => {
                let _ = write!(line, "{i}i");
            }
            // ryu: the shortest text that reads back as the same float, and fast.
            Scalar::Float(f) => line.push_str(ryu::Buffer::new().format_finite(*f)),
            Scalar::Bool(b) => line.push_str(if *b { "true" } else { "false" }),
            Scalar::Text(s) => {
                if s.contains(['\n', '\r']) {
                    return Err(format!("field `{key}` contains a newline, which line protocol cannot carry"));
                }
                line.push('"');
                for c in s.chars() {
                    if c == '"' || c == '\\' {
                        line.push('\\');
                    }
                    line.push(c);
                }
                line.push('"');
            }
            Scalar::Other => {}
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
    let _ = write!(line, " {stamp}");
    Ok(line)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn encode(doc: &serde_json::Value, precision: Precision) -> Result<String, String> {
        encode_record(&serde_json::to_vec(doc).unwrap(), precision)
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
}
