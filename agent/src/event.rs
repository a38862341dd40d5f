//! What the agent ships: log events (JSON documents) and metric points, in record format
//! version 1 (documented in the README's "Agent record format" section; sinks depend on it).
//!
//! A log event is a JSON object with at least `@timestamp` (RFC 3339, UTC, milliseconds),
//! `message`, `host.name`, `input.type`, `input.name` and `event.schema` (= 1); inputs add their own
//! fields (a file adds `log.file.path`, `log.file.device`, `log.file.inode`,
//! `log.file.fingerprint` and `log.offset`). A metric point becomes
//! `{"@timestamp", "name", "tags": {…}, "fields": {…}, "host": {"name"}, "input": {…},
//! "event": {"schema": 1, "kind": "metric"}}`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// Version of the record format written to the broker.
pub const SCHEMA_VERSION: u64 = 1;

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-23T11:00:00.123Z`.
pub fn format_timestamp(at: SystemTime) -> String {
    DateTime::<Utc>::from(at).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A value of a metric field.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// A floating-point value (rates, percentages, gauges).
    Float(f64),
    /// An integer value (counters, sizes).
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A string.
    Text(String),
}

impl FieldValue {
    fn to_json(&self) -> Value {
        match self {
            // JSON has no NaN or infinity: such samples are dropped as null.
            FieldValue::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            FieldValue::Int(i) => Value::from(*i),
            FieldValue::Bool(b) => Value::Bool(*b),
            FieldValue::Text(s) => Value::String(s.clone()),
        }
    }
}

/// One metric sample: a measurement name, identifying tags and one or more fields.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    /// Measurement, e.g. `cpu`, `mem`, `net`.
    pub name: String,
    /// Identifying dimensions, e.g. `cpu=cpu0`, `interface=eth0`.
    pub tags: BTreeMap<String, String>,
    /// The measured values.
    pub fields: BTreeMap<String, FieldValue>,
    /// When it was sampled.
    pub timestamp: SystemTime,
}

impl MetricPoint {
    /// A point named `name` at `timestamp` with no tags or fields yet.
    pub fn new(name: impl Into<String>, timestamp: SystemTime) -> MetricPoint {
        MetricPoint { name: name.into(), tags: BTreeMap::new(), fields: BTreeMap::new(), timestamp }
    }

    /// Adds a tag.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> MetricPoint {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Adds a field.
    pub fn field(mut self, key: impl Into<String>, value: FieldValue) -> MetricPoint {
        self.fields.insert(key.into(), value);
        self
    }

    /// The record document (without `host` and `input`, which the pipeline adds).
    pub fn to_document(&self) -> Map<String, Value> {
        let mut doc = Map::new();
        doc.insert("@timestamp".into(), Value::String(format_timestamp(self.timestamp)));
        doc.insert("name".into(), Value::String(self.name.clone()));
        doc.insert(
            "tags".into(),
            Value::Object(self.tags.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()),
        );
        doc.insert("fields".into(), Value::Object(self.fields.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()));
        let mut event = Map::new();
        event.insert("schema".into(), Value::from(SCHEMA_VERSION));
        event.insert("kind".into(), Value::String("metric".into()));
        doc.insert("event".into(), Value::Object(event));
        doc
    }
}

/// A log line (or multiline group) as a document under construction.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEvent {
    /// The document; `@timestamp`, `message` and input fields are set, `host`/`input` are
    /// added by the pipeline.
    pub doc: Map<String, Value>,
}

impl LogEvent {
    /// A log event with `message` observed at `timestamp`.
    pub fn new(message: impl Into<String>, timestamp: SystemTime) -> LogEvent {
        LogEvent::with_timestamp(message, format_timestamp(timestamp))
    }

    /// A log event with `message` and an already formatted `@timestamp`.
    pub fn with_timestamp(message: impl Into<String>, timestamp: String) -> LogEvent {
        let mut doc = Map::new();
        doc.insert("@timestamp".into(), Value::String(timestamp));
        doc.insert("message".into(), Value::String(message.into()));
        let mut event = Map::new();
        event.insert("schema".into(), Value::from(SCHEMA_VERSION));
        event.insert("kind".into(), Value::String("log".into()));
        doc.insert("event".into(), Value::Object(event));
        LogEvent { doc }
    }

    /// Sets `value` at a dotted `path` (`log.file.path` → `{"log":{"file":{"path":…}}}`).
    pub fn set(&mut self, path: &str, value: Value) {
        set_path(&mut self.doc, path, value);
    }
}

/// Most objects a dotted path nests (Elasticsearch's own default limit is 20 levels).
pub const MAX_PATH_DEPTH: usize = 32;

/// Sets `value` at a dotted `path` inside `doc`, creating objects on the way (a non-object in
/// the way is replaced).
pub fn set_path(doc: &mut Map<String, Value>, path: &str, value: Value) {
    // A path from the line itself (a key-value key) may have any number of dots; past the limit
    // the rest is one key, so no event nests deeper than JSON readers accept.
    let mut parts = path.splitn(MAX_PATH_DEPTH, '.').peekable();
    let mut current = doc;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            match current.get_mut(part) {
                Some(slot) => *slot = value,
                None => {
                    current.insert(part.to_string(), value);
                }
            }
            return;
        }
        // A key is allocated only when the object is new (most paths share their parents).
        if !current.get(part).is_some_and(Value::is_object) {
            current.insert(part.to_string(), Value::Object(Map::new()));
        }
        let Some(Value::Object(next)) = current.get_mut(part) else { return };
        current = next;
    }
}

/// Reads the value at a dotted `path`.
pub fn get_path<'a>(doc: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut value = doc.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

/// Removes and returns the value at a dotted `path`; objects left empty on the way go too (a
/// parsed field moved elsewhere leaves no `{"nginx":{"access":{}}}` behind).
pub fn remove_path(doc: &mut Map<String, Value>, path: &str) -> Option<Value> {
    match path.split_once('.') {
        None => doc.remove(path),
        Some((first, rest)) => {
            let inner = doc.get_mut(first)?.as_object_mut()?;
            let removed = remove_path(inner, rest)?;
            if inner.is_empty() {
                doc.remove(first);
            }
            Some(removed)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn documents_follow_the_schema() {
        let at = UNIX_EPOCH + Duration::from_millis(1_795_431_600_123);
        assert_eq!(format_timestamp(at), "2026-11-23T11:00:00.123Z");
        let mut log = LogEvent::new("GET /", at);
        log.set("log.file.path", Value::from("/var/log/a.log"));
        log.set("log.offset", Value::from(42));
        let json = serde_json::to_value(&log.doc).unwrap();
        assert_eq!(json["log"]["file"]["path"], "/var/log/a.log");
        assert_eq!(json["event"]["schema"], 1);
        assert_eq!(get_path(&log.doc, "log.offset"), Some(&Value::from(42)));
        assert_eq!(remove_path(&mut log.doc, "log.offset"), Some(Value::from(42)));
        assert_eq!(get_path(&log.doc, "log.offset"), None);
        let point = MetricPoint::new("cpu", at).tag("cpu", "cpu0").field("usage_user", FieldValue::Float(1.5));
        let doc = serde_json::to_value(point.to_document()).unwrap();
        assert_eq!(doc["tags"]["cpu"], "cpu0");
        assert_eq!(doc["fields"]["usage_user"], 1.5);
        assert_eq!(doc["event"]["kind"], "metric");
    }
}
