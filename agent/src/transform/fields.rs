//! Steps on fields: JSON and key-value decoding, type conversion, and moving, setting and
//! removing fields.

use crate::event::{get_path, remove_path, set_path};
use millrace_config::agent::transforms::FieldType;
use serde_json::{Map, Value};

/// Deepest JSON a line may decode into: the event, with the target's levels above it, must still
/// read back below serde_json's (and the sinks') limit of 128.
const MAX_JSON_DEPTH: usize = 64;

/// Nesting depth of a value (a scalar is 0).
fn depth(value: &Value) -> usize {
    match value {
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Decodes the JSON object in `field` into `target` (the top level when None); existing keys win
/// unless `overwrite`.
pub fn decode_json(
    doc: &mut Map<String, Value>,
    field: &str,
    target: Option<&str>,
    overwrite: bool,
) -> Result<(), String> {
    let text = get_path(doc, field).ok_or_else(|| format!("no field {field}"))?;
    let Value::String(text) = text else { return Err(format!("{field} is not text")) };
    let decoded = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) => object,
        Ok(_) => return Err(format!("{field} holds JSON that is not an object")),
        Err(e) => return Err(format!("{field} is not JSON: {e}")),
    };
    if 1 + decoded.values().map(depth).max().unwrap_or(0) > MAX_JSON_DEPTH {
        return Err(format!("{field} holds JSON nested deeper than {MAX_JSON_DEPTH} levels"));
    }
    merge(doc, target, decoded, overwrite);
    Ok(())
}

/// Decodes `key=value` pairs of `field` (values may be double-quoted).
pub fn decode_kv(
    doc: &mut Map<String, Value>,
    field: &str,
    field_split: &str,
    value_split: &str,
    target: Option<&str>,
) -> Result<(), String> {
    let Some(Value::String(text)) = get_path(doc, field) else { return Err(format!("no text field {field}")) };
    let mut pairs = Map::new();
    let mut rest = text.as_str();
    while !rest.is_empty() {
        rest = rest.trim_start_matches(field_split);
        let Some(at) = rest.find(value_split) else { break };
        let key = rest[..at].trim();
        rest = &rest[at + value_split.len()..];
        let value = if let Some(quoted) = rest.strip_prefix('"') {
            let end = closing_quote(quoted).unwrap_or(quoted.len());
            let value = quoted[..end].replace("\\\"", "\"");
            rest = quoted.get(end + 1..).unwrap_or("");
            value
        } else {
            let end = rest.find(field_split).unwrap_or(rest.len());
            let value = rest[..end].to_string();
            rest = &rest[end..];
            value
        };
        if !key.is_empty() && !key.split('.').any(str::is_empty) {
            pairs.insert(key.to_string(), Value::String(value));
        }
    }
    if pairs.is_empty() {
        return Err(format!("{field} holds no {value_split} pairs"));
    }
    // Dotted keys become paths, as everywhere else in the event.
    let mut nested = Map::new();
    for (key, value) in pairs {
        set_path(&mut nested, &key, value);
    }
    merge(doc, target, nested, true);
    Ok(())
}

fn closing_quote(text: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

fn merge(doc: &mut Map<String, Value>, target: Option<&str>, fields: Map<String, Value>, overwrite: bool) {
    match target {
        Some(target) if !target.is_empty() => set_path(doc, target, Value::Object(fields)),
        _ => {
            for (key, value) in fields {
                if overwrite || !doc.contains_key(&key) {
                    doc.insert(key, value);
                }
            }
        }
    }
}

/// Converts `field` to `to`; Err when its value cannot be.
pub fn convert(doc: &mut Map<String, Value>, field: &str, to: FieldType) -> Result<bool, String> {
    let Some(value) = get_path(doc, field) else { return Ok(false) };
    let converted = match (to, value) {
        (FieldType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => return Ok(true),
        (FieldType::Integer, Value::Number(n)) => {
            n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9e15).map(|f| Value::from(f as i64))
        }
        (FieldType::Integer, Value::String(s)) => s.trim().parse::<i64>().ok().map(Value::from),
        (FieldType::Float, Value::Number(n)) => n.as_f64().and_then(serde_json::Number::from_f64).map(Value::Number),
        (FieldType::Float, Value::String(s)) => {
            s.trim().parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number)
        }
        (FieldType::Boolean, Value::Bool(_)) => return Ok(true),
        (FieldType::Boolean, Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(Value::Bool(true)),
            "false" | "0" | "no" | "off" => Some(Value::Bool(false)),
            _ => None,
        },
        (FieldType::Boolean, Value::Number(n)) => n.as_f64().map(|f| Value::Bool(f != 0.0)),
        (FieldType::String, Value::String(_)) => return Ok(true),
        (FieldType::String, Value::Number(n)) => Some(Value::String(n.to_string())),
        (FieldType::String, Value::Bool(b)) => Some(Value::String(b.to_string())),
        (FieldType::Ip, Value::String(s)) => {
            s.trim().parse::<std::net::IpAddr>().ok().map(|ip| Value::String(ip.to_string()))
        }
        _ => None,
    };
    match converted {
        Some(value) => {
            set_path(doc, field, value);
            Ok(true)
        }
        None => Err(format!("{field} ({}) is not {}", short(value), type_name(to))),
    }
}

fn type_name(to: FieldType) -> &'static str {
    match to {
        FieldType::Integer => "an integer",
        FieldType::Float => "a number",
        FieldType::Boolean => "a boolean",
        FieldType::String => "text",
        FieldType::Ip => "an IP address",
    }
}

fn short(value: &Value) -> String {
    value.to_string().chars().take(40).collect()
}

/// Moves `from` to `to` (a missing `from` is no failure: steps run on events of many shapes).
pub fn rename(doc: &mut Map<String, Value>, from: &str, to: &str) {
    if let Some(value) = remove_path(doc, from) {
        set_path(doc, to, value);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn doc(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn json_merges_at_the_top_or_under_a_target_and_refuses_non_objects() {
        let mut d = doc(r#"{"message":"{\"a\":1,\"message\":\"inner\"}"}"#);
        decode_json(&mut d, "message", None, false).unwrap();
        assert_eq!((d["a"].clone(), d["message"].as_str().unwrap().starts_with('{')), (Value::from(1), true));
        decode_json(&mut d, "message", None, true).unwrap();
        assert_eq!(d["message"], "inner");
        let mut d = doc(r#"{"message":"{\"a\":1}"}"#);
        decode_json(&mut d, "message", Some("json"), false).unwrap();
        assert_eq!(Value::Object(d)["json"]["a"], 1);
        assert!(decode_json(&mut doc(r#"{"message":"[1]"}"#), "message", None, false)
            .unwrap_err()
            .contains("not an object"));
        assert!(decode_json(&mut doc(r#"{"message":"{"}"#), "message", None, false).unwrap_err().contains("not JSON"));
        // Found by fuzzing: nesting that the sinks could not read back is refused.
        let deep = format!("{}1{}", "{\"a\":".repeat(100), "}".repeat(100));
        let mut d = Map::new();
        d.insert("message".into(), Value::from(deep));
        assert!(decode_json(&mut d, "message", Some("json"), false).unwrap_err().contains("deeper than 64"));
    }

    #[test]
    fn key_values_with_quotes_and_dotted_keys() {
        let mut d = doc(r#"{"message":"level=info user.id=7 msg=\"a \\\"quoted\\\" text\" empty= done=1"}"#);
        decode_kv(&mut d, "message", " ", "=", Some("kv")).unwrap();
        let d = Value::Object(d);
        assert_eq!(d["kv"]["level"], "info");
        assert_eq!(d["kv"]["user"]["id"], "7");
        assert_eq!(d["kv"]["msg"], "a \"quoted\" text");
        assert_eq!(d["kv"]["empty"], "");
        assert_eq!(d["kv"]["done"], "1");
        assert!(decode_kv(&mut doc(r#"{"message":"no pairs"}"#), "message", " ", "=", None).is_err());
        // A key of 200 dotted parts nests no deeper than set_path's limit.
        let mut d = Map::new();
        d.insert("message".into(), Value::from(format!("{}=1", vec!["k"; 200].join("."))));
        decode_kv(&mut d, "message", " ", "=", Some("kv")).unwrap();
        let text = serde_json::to_string(&d).unwrap();
        assert!(serde_json::from_str::<Value>(&text).is_ok(), "reads back");
        assert_eq!(depth(&Value::Object(d)), crate::event::MAX_PATH_DEPTH + 1);
    }

    #[test]
    fn conversions_and_their_failures() {
        let mut d = doc(r#"{"s":"404","f":"1.5","b":"yes","n":3,"ip":"::ffff:10.0.0.1","bad":"x"}"#);
        assert!(convert(&mut d, "s", FieldType::Integer).unwrap());
        assert!(convert(&mut d, "f", FieldType::Float).unwrap());
        assert!(convert(&mut d, "b", FieldType::Boolean).unwrap());
        assert!(convert(&mut d, "n", FieldType::String).unwrap());
        assert!(convert(&mut d, "ip", FieldType::Ip).unwrap());
        assert!(!convert(&mut d, "missing", FieldType::Integer).unwrap());
        assert!(convert(&mut d, "bad", FieldType::Integer).unwrap_err().contains("not an integer"));
        assert_eq!(
            Value::Object(d),
            serde_json::json!({"s":404,"f":1.5,"b":true,"n":"3","ip":"::ffff:10.0.0.1","bad":"x"})
        );
    }
}
