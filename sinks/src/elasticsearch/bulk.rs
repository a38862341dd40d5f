//! The `_bulk` API's two halves: encoding one record as an action line plus its source line, and
//! reading the per-item results of a response.

use super::doc::Fields;
use super::index::IndexName;
use crate::destination::Verdict;
use crate::record::SourceRecord;
use chrono::{DateTime, Utc};
use millrace_config::sink::BulkAction;
use serde_json::Value;

/// Appends the document `_id` of a record, as a JSON string. A log line from a file is identified
/// by where it came from (host, the file's device, inode and fingerprint, and the line's byte
/// offset): the same line re-sent by an agent after a crash lands on another broker offset but
/// gets the same id, so it overwrites itself. Anything else is identified by its broker position,
/// where it was first read for a replayed dead letter.
fn write_document_id(doc: &impl Fields, record: &SourceRecord<'_>, out: &mut Vec<u8>) {
    let [host, device, inode, fingerprint, offset] = ID_FIELDS.map(|path| doc.leaf(path.iter().copied()));
    let parts = (
        host.as_ref().and_then(|h| h.as_str()),
        device.and_then(|d| d.as_u64()),
        inode.and_then(|i| i.as_u64()),
        fingerprint.as_ref().and_then(|f| f.as_str()),
        offset.and_then(|o| o.as_u64()),
    );
    // Built with itoa rather than `format!`, whose machinery cost more than the rest of the line.
    let mut id = String::with_capacity(64);
    let mut number = itoa::Buffer::new();
    match parts {
        (Some(host), Some(device), Some(inode), Some(fingerprint), Some(offset)) => {
            id.push_str(host);
            for n in [device, inode] {
                id.push(':');
                id.push_str(number.format(n));
            }
            id.push(':');
            id.push_str(fingerprint);
            id.push(':');
            id.push_str(number.format(offset));
        }
        _ => {
            let first = record.first_position();
            id.push_str(first.topic);
            id.push(':');
            id.push_str(number.format(first.partition));
            id.push(':');
            id.push_str(number.format(first.offset));
        }
    }
    push_json_str(out, &id);
}

/// Appends `text` as a JSON string, quoted and escaped by serde_json.
fn push_json_str(out: &mut Vec<u8>, text: &str) {
    // Serializing a &str into a Vec cannot fail.
    let _ = serde::Serialize::serialize(text, &mut serde_json::Serializer::new(&mut *out));
}

/// The fields a file line's `_id` is made of: host name, device, inode, fingerprint, offset.
pub(super) const ID_FIELDS: [&[&str]; 5] = [
    &["host", "name"],
    &["log", "file", "device"],
    &["log", "file", "inode"],
    &["log", "file", "fingerprint"],
    &["log", "offset"],
];

/// Appends a record as `{"<action>":{"_index":…,"_id":…}}\n<source>\n` to `out`. A record that is
/// not a JSON object cannot become a document.
pub fn encode(
    record: &SourceRecord<'_>,
    index: &IndexName,
    action: BulkAction,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    encode_json(record, index, action, false, out)
}

/// [`encode`], for a data stream: a document without `@timestamp` (another producer's JSON) gets
/// the record's time, as a data stream refuses a document without one.
pub fn encode_for_stream(record: &SourceRecord<'_>, index: &IndexName, out: &mut Vec<u8>) -> Result<(), String> {
    encode_json(record, index, BulkAction::Create, true, out)
}

fn encode_json(
    record: &SourceRecord<'_>,
    index: &IndexName,
    action: BulkAction,
    stamp: bool,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    // The usual record — one JSON object on one line, with its time when it goes to a data
    // stream — is sent as it came; only the fields the action line needs are picked out of it.
    if !record.payload.contains(&b'\n') {
        let found = index.wanted().find(record.payload);
        if let Some(doc) = found.filter(|doc| !stamp || doc.has([super::index::TIMESTAMP])) {
            write_action(&doc, record, index, action, out);
            out.extend_from_slice(record.payload);
            out.push(b'\n');
            return Ok(());
        }
    }
    let mut doc: Value = serde_json::from_slice(record.payload)
        .map_err(|e| format!("the record is not JSON ({e}); it cannot become a document"))?;
    let Some(fields) = doc.as_object_mut() else {
        return Err("the record is JSON but not an object; it cannot become a document".into());
    };
    if stamp && !fields.contains_key("@timestamp") {
        fields.insert("@timestamp".into(), Value::from(record_time(record)));
        write_action(&doc, record, index, action, out);
        let _ = serde_json::to_writer(&mut *out, &doc);
        out.push(b'\n');
        return Ok(());
    }
    write_action(&doc, record, index, action, out);
    // The record is sent as it came (already compact JSON from the agent), minus any newline
    // that would break the NDJSON framing.
    if record.payload.contains(&b'\n') {
        let _ = serde_json::to_writer(&mut *out, &doc);
    } else {
        out.extend_from_slice(record.payload);
    }
    out.push(b'\n');
    Ok(())
}

/// Appends a plain-text record as a document `{"@timestamp": …, "message": …}` (the record's
/// time, else now; its text, invalid UTF-8 replaced, one trailing line end dropped) under the
/// same action line as [`encode`]'s. Its `_id` is the record's broker position.
pub fn encode_text(record: &SourceRecord<'_>, index: &IndexName, action: BulkAction, out: &mut Vec<u8>) {
    let text = String::from_utf8_lossy(record.payload);
    let text = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
    let doc = serde_json::json!({ "@timestamp": record_time(record), "message": text });
    write_action(&doc, record, index, action, out);
    let _ = serde_json::to_writer(&mut *out, &doc);
    out.push(b'\n');
}

/// The record's broker time (else now) as `@timestamp` text.
fn record_time(record: &SourceRecord<'_>) -> String {
    let at = record.timestamp_ms.and_then(DateTime::from_timestamp_millis).unwrap_or_else(Utc::now);
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The action line: `{"<action>":{"_index":…,"_id":…}}\n`.
fn write_action(
    doc: &impl Fields,
    record: &SourceRecord<'_>,
    index: &IndexName,
    action: BulkAction,
    out: &mut Vec<u8>,
) {
    let verb = match action {
        BulkAction::Index => "index",
        BulkAction::Create => "create",
    };
    // Written directly rather than through a `Value`: this line is built for every document.
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(verb.as_bytes());
    out.extend_from_slice(b"\":{\"_index\":");
    push_json_str(out, &index.render(doc, record));
    out.extend_from_slice(b",\"_id\":");
    write_document_id(doc, record, out);
    out.extend_from_slice(b"}}\n");
}

/// Reads a `_bulk` response body: one verdict per item, in order.
pub fn verdicts(body: &[u8], expected: usize, action: BulkAction) -> Result<Vec<Verdict>, String> {
    // The usual answer is "no errors": count its items without building them.
    #[derive(serde::Deserialize)]
    struct Summary {
        errors: bool,
        items: Vec<serde::de::IgnoredAny>,
    }
    let summary: Summary = serde_json::from_slice(body).map_err(|e| format!("unreadable bulk response: {e}"))?;
    if summary.items.len() != expected {
        return Err(format!("bulk response has {} items for {expected} documents", summary.items.len()));
    }
    if !summary.errors {
        return Ok(vec![Verdict::Accepted; expected]);
    }
    let response: Value = serde_json::from_slice(body).map_err(|e| format!("unreadable bulk response: {e}"))?;
    let items = response["items"].as_array().ok_or("bulk response without items")?;
    Ok(items
        .iter()
        .map(|item| {
            // Each item is `{"<action>": {...}}`.
            let result = item.as_object().and_then(|o| o.values().next()).unwrap_or(&Value::Null);
            let status = result["status"].as_u64().unwrap_or(0);
            let error = &result["error"];
            let describe = || {
                format!(
                    "{status} {}: {}",
                    error["type"].as_str().unwrap_or("error"),
                    error["reason"].as_str().unwrap_or("no reason given")
                )
            };
            match status {
                200..=299 => Verdict::Accepted,
                // `create` of an id that exists: this very document was written before (ids are
                // deterministic), so the replay is done.
                409 if action == BulkAction::Create => Verdict::Accepted,
                429 | 500..=599 => Verdict::Retry(describe()),
                // A write block (`index.blocks.write`, a read-only index after the disk filled up)
                // is lifted by an operator or by Elasticsearch itself: the document is fine, so
                // it waits. Any other 403 (the user may not write this index) stays refused.
                403 if error["type"].as_str() == Some("cluster_block_exception") => Verdict::Retry(describe()),
                _ => Verdict::Reject(describe()),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record(payload: &str) -> SourceRecord<'_> {
        SourceRecord {
            topic: "app-logs",
            partition: 2,
            offset: 17,
            key: None,
            payload: payload.as_bytes(),
            timestamp_ms: Some(1_795_431_600_000),
            replayed_from: None,
        }
    }

    fn encode(record: &SourceRecord<'_>, index: &str, action: BulkAction) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        super::encode(record, &name(index), action, &mut out).map(|()| out)
    }

    fn name(index: &str) -> IndexName {
        IndexName::parse(index).unwrap()
    }

    const LINE: &str = r#"{"@timestamp":"2026-11-23T11:00:00.123Z","host":{"name":"web-1"},"log":{"file":{"device":2049,"fingerprint":"0a0b0c0d","inode":77,"path":"/var/log/a.log"},"offset":4096},"message":"GET /"}"#;

    #[test]
    fn file_lines_are_identified_by_their_origin_others_by_broker_position() {
        let body = String::from_utf8(encode(&record(LINE), "logs-%Y.%m.%d", BulkAction::Index).unwrap()).unwrap();
        let mut lines = body.lines();
        let meta: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(meta["index"]["_index"], "logs-2026.11.23");
        assert_eq!(meta["index"]["_id"], "web-1:2049:77:0a0b0c0d:4096");
        assert_eq!(lines.next(), Some(LINE));
        assert!(body.ends_with('\n'));
        let other = encode(&record(r#"{"message":"no time"}"#), "syslog-%Y", BulkAction::Create).unwrap();
        let meta: Value = serde_json::from_slice(other.split(|b| *b == b'\n').next().unwrap()).unwrap();
        assert_eq!(meta["create"]["_id"], "app-logs:2:17");
        // A dead letter replayed to its topic keeps the id it would have had the first time.
        let first = crate::record::Position { topic: "app-logs", partition: 0, offset: 5 };
        let replayed = SourceRecord { offset: 900, replayed_from: Some(first), ..record(r#"{"message":"no time"}"#) };
        let again = encode(&replayed, "syslog-%Y", BulkAction::Create).unwrap();
        let meta: Value = serde_json::from_slice(again.split(|b| *b == b'\n').next().unwrap()).unwrap();
        assert_eq!(meta["create"]["_id"], "app-logs:0:5");
        assert_eq!(meta["create"]["_index"], "syslog-2026", "falls back to the broker timestamp");
        assert!(encode(&record("not json"), "x", BulkAction::Index).is_err());
        assert!(encode(&record("[1,2]"), "x", BulkAction::Index).is_err());
    }

    #[test]
    fn plain_text_becomes_a_message_document_at_the_record_time() {
        let mut out = Vec::new();
        encode_text(&record("GET /index.html 200 \"x\"\r\n"), &name("logs-%Y.%m.%d"), BulkAction::Create, &mut out);
        let body = String::from_utf8(out).unwrap();
        let lines: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0]["create"]["_id"], "app-logs:2:17");
        assert_eq!(lines[0]["create"]["_index"], "logs-2026.11.23");
        assert_eq!(lines[1]["message"], "GET /index.html 200 \"x\"");
        assert_eq!(lines[1]["@timestamp"], "2026-11-23T11:00:00.000Z");
        // Bytes that are not UTF-8 and inner newlines still make one valid NDJSON document.
        let mut out = Vec::new();
        let odd = SourceRecord { payload: b"a\xffb\nc", ..record("") };
        encode_text(&odd, &name("x"), BulkAction::Index, &mut out);
        let body = String::from_utf8(out).unwrap();
        assert_eq!(body.lines().count(), 2);
        let doc: Value = serde_json::from_str(body.lines().nth(1).unwrap()).unwrap();
        assert_eq!(doc["message"], "a\u{fffd}b\nc");
    }

    #[test]
    fn a_data_stream_document_without_a_time_gets_the_record_time() {
        let mut out = Vec::new();
        encode_for_stream(&record(r#"{"message":"no time"}"#), &name("logs-app-default"), &mut out).unwrap();
        let body = String::from_utf8(out).unwrap();
        let doc: Value = serde_json::from_str(body.lines().nth(1).unwrap()).unwrap();
        assert_eq!(doc, serde_json::json!({"message": "no time", "@timestamp": "2026-11-23T11:00:00.000Z"}));
        // A document with its own time is sent as it came.
        let mut out = Vec::new();
        encode_for_stream(&record(LINE), &name("logs-app-default"), &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap().lines().nth(1), Some(LINE));
    }

    #[test]
    fn per_item_results_become_verdicts() {
        let body = br#"{"took":3,"errors":true,"items":[
            {"create":{"status":201}},
            {"create":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"exists"}}},
            {"create":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}},
            {"create":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [a]"}}},
            {"create":{"status":503,"error":{"type":"unavailable_shards_exception","reason":"primary shard is not active"}}}]}"#;
        let v = verdicts(body, 5, BulkAction::Create).unwrap();
        assert_eq!(v[0], Verdict::Accepted);
        assert_eq!(v[1], Verdict::Accepted, "409 on create is a replay");
        assert!(matches!(&v[2], Verdict::Retry(r) if r.contains("429")));
        assert!(matches!(&v[3], Verdict::Reject(r) if r.contains("mapper_parsing_exception")));
        assert!(matches!(&v[4], Verdict::Retry(_)));
        let v = verdicts(body, 5, BulkAction::Index).unwrap();
        assert!(matches!(&v[1], Verdict::Reject(_)), "409 on index is a real conflict");
        assert!(verdicts(body, 4, BulkAction::Index).is_err(), "item count mismatch");
        assert_eq!(verdicts(br#"{"errors":false,"items":[{},{}]}"#, 2, BulkAction::Index).unwrap().len(), 2);
    }

    #[test]
    fn a_write_block_waits_and_a_missing_privilege_is_refused() {
        let body = br#"{"took":1,"errors":true,"items":[
            {"index":{"status":403,"error":{"type":"cluster_block_exception","reason":"index [logs] blocked by: [FORBIDDEN/8/index write (api)];"}}},
            {"index":{"status":403,"error":{"type":"security_exception","reason":"action [indices:data/write/bulk[s]] is unauthorized for user [sink]"}}},
            {"index":{"status":500,"error":{"type":"exception","reason":"boom"}}}]}"#;
        let v = verdicts(body, 3, BulkAction::Index).unwrap();
        assert!(matches!(&v[0], Verdict::Retry(r) if r.contains("FORBIDDEN/8")), "{v:?}");
        assert!(
            matches!(&v[1], Verdict::Reject(r) if r.starts_with("403 security_exception") && r.contains("unauthorized")),
            "{v:?}"
        );
        assert!(matches!(&v[2], Verdict::Retry(r) if r.contains("500")), "{v:?}");
    }
}
