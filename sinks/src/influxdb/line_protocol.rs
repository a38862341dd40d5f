//! Metric records (the agent's record format: `name`, `tags`, `fields`, `@timestamp`,
//! `host.name`) as InfluxDB line protocol: `measurement,tag=v field=1.5,count=3i 1700000000000`.
//!
//! Escaping follows the line protocol reference: commas and spaces in measurements; commas,
//! equals signs and spaces in tag keys, tag values and field keys; double quotes and backslashes
//! in string field values. Newlines cannot be represented anywhere, so such a record is refused
//! (dead-lettered) rather than altered. Empty tag values are left out, as Telegraf does.

use chrono::DateTime;
use millrace_config::sink::Precision;
use serde_json::Value;

fn escape(out: &mut String, text: &str, specials: &[char]) -> Result<(), String> {
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

/// Encodes one metric record as a line (without the trailing newline).
pub fn encode(doc: &Value, precision: Precision) -> Result<String, String> {
    let name = doc["name"].as_str().filter(|n| !n.is_empty()).ok_or("the record has no metric `name`")?;
    let fields = doc["fields"].as_object().ok_or("the record has no `fields` object (not a metric record?)")?;
    let timestamp = doc["@timestamp"].as_str().ok_or("the record has no `@timestamp`")?;
    let at = DateTime::parse_from_rfc3339(timestamp).map_err(|e| format!("`@timestamp` {timestamp:?}: {e}"))?;
    let mut line = String::with_capacity(128);
    escape(&mut line, name, MEASUREMENT)?;
    let mut tags: Vec<(&str, &str)> = doc["tags"]
        .as_object()
        .map(|t| t.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v))).collect())
        .unwrap_or_default();
    if let Some(host) = doc["host"]["name"].as_str() {
        if !tags.iter().any(|(k, _)| *k == "host") {
            tags.push(("host", host));
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
        let mut text = String::new();
        match value {
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => text = format!("{i}i"),
                (None, Some(f)) if f.is_finite() => text = format!("{f:?}"),
                _ => continue,
            },
            Value::Bool(b) => text.push_str(if *b { "true" } else { "false" }),
            Value::String(s) => {
                if s.contains(['\n', '\r']) {
                    return Err(format!("field `{key}` contains a newline, which line protocol cannot carry"));
                }
                text.push('"');
                for c in s.chars() {
                    if c == '"' || c == '\\' {
                        text.push('\\');
                    }
                    text.push(c);
                }
                text.push('"');
            }
            // Nulls (NaN samples) and nested values have no line-protocol form: left out.
            _ => continue,
        }
        if key.is_empty() {
            continue;
        }
        line.push(if written == 0 { ' ' } else { ',' });
        escape(&mut line, key, KEY_OR_TAG)?;
        line.push('=');
        line.push_str(&text);
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
    line.push(' ');
    line.push_str(&stamp.to_string());
    Ok(line)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

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
