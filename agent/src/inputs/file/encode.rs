//! Encoding file lines without building a JSON map per line: the fields that are the same for
//! every line of a file are encoded once per file, and each line only adds its timestamp, offset,
//! flags and message. The bytes are exactly those of serializing the equivalent document (keys in
//! serde_json's sorted order); a test holds the two paths together.

use crate::event::SCHEMA_VERSION;
use serde::Serialize;

/// The encoded form of what every line of one file shares.
#[derive(Debug, Clone)]
pub(super) struct LineEncoder {
    /// From `"event"` up to and including the `"file"` object and its trailing comma.
    middle: Vec<u8>,
}

/// Appends `value` as a JSON string (quoted and escaped).
fn push_json_str(out: &mut Vec<u8>, value: &str) {
    // Serializing a &str into a Vec cannot fail.
    let _ = value.serialize(&mut serde_json::Serializer::new(&mut *out));
}

/// Identity of the file a line comes from.
pub(super) struct FileFields<'a> {
    pub host: &'a str,
    pub input: &'a str,
    pub path: &'a str,
    pub device: u64,
    pub inode: u64,
    pub fingerprint: u32,
}

impl LineEncoder {
    /// The shared part for one file.
    pub fn new(fields: &FileFields<'_>) -> LineEncoder {
        let mut middle = Vec::with_capacity(256);
        middle.extend_from_slice(format!(",\"event\":{{\"kind\":\"log\",\"schema\":{SCHEMA_VERSION}}},").as_bytes());
        middle.extend_from_slice(b"\"host\":{\"name\":");
        push_json_str(&mut middle, fields.host);
        middle.extend_from_slice(b"},\"input\":{\"name\":");
        push_json_str(&mut middle, fields.input);
        middle.extend_from_slice(b",\"type\":\"file\"},\"log\":{\"file\":{");
        middle.extend_from_slice(
            format!(
                "\"device\":{},\"fingerprint\":\"{:08x}\",\"inode\":{},\"path\":",
                fields.device, fields.fingerprint, fields.inode
            )
            .as_bytes(),
        );
        push_json_str(&mut middle, fields.path);
        middle.extend_from_slice(b"},");
        LineEncoder { middle }
    }

    /// One line's document.
    pub fn encode(&self, timestamp: &str, message: &str, offset: u64, flags: &[&str]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.middle.len() + message.len() + 64);
        out.extend_from_slice(b"{\"@timestamp\":");
        push_json_str(&mut out, timestamp);
        out.extend_from_slice(&self.middle);
        if !flags.is_empty() {
            out.extend_from_slice(b"\"flags\":[");
            for (i, flag) in flags.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_json_str(&mut out, flag);
            }
            out.extend_from_slice(b"],");
        }
        out.extend_from_slice(b"\"offset\":");
        out.extend_from_slice(offset.to_string().as_bytes());
        out.extend_from_slice(b"},\"message\":");
        push_json_str(&mut out, message);
        out.push(b'}');
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::event::LogEvent;
    use serde_json::Value;
    use std::time::{Duration, UNIX_EPOCH};

    /// The same document built field by field, the way other inputs build theirs.
    fn through_a_map(
        fields: &FileFields<'_>,
        at: std::time::SystemTime,
        message: &str,
        offset: u64,
        flags: &[&str],
    ) -> Vec<u8> {
        let mut event = LogEvent::new(message, at);
        event.set("host.name", Value::from(fields.host));
        event.set("input.type", Value::from("file"));
        event.set("input.name", Value::from(fields.input));
        event.set("log.file.path", Value::from(fields.path));
        event.set("log.file.device", Value::from(fields.device));
        event.set("log.file.inode", Value::from(fields.inode));
        event.set("log.file.fingerprint", Value::from(format!("{:08x}", fields.fingerprint)));
        event.set("log.offset", Value::from(offset));
        if !flags.is_empty() {
            event.set("log.flags", Value::Array(flags.iter().map(|f| Value::from(*f)).collect()));
        }
        serde_json::to_vec(&event.doc).unwrap()
    }

    #[test]
    fn encodes_exactly_what_the_document_serializes_to() {
        let at = UNIX_EPOCH + Duration::from_millis(1_795_431_600_123);
        let timestamp = crate::event::format_timestamp(at);
        let fields = FileFields {
            host: "web-1 \"eu\"",
            input: "nginx\\access",
            path: "/var/log/ngïnx/access\n.log",
            device: 2049,
            inode: 1_234_567,
            fingerprint: 0x0a0b_0c0d,
        };
        let encoder = LineEncoder::new(&fields);
        let cases: [(&str, u64, &[&str]); 4] = [
            ("GET / HTTP/1.1 200", 0, &[]),
            ("tab\there \"quoted\" \u{1} ctrl, ünïcode, \u{fffd}", 18_446_744_073_709_551_615, &["truncated"]),
            ("first\n  second", 42, &["truncated", "multiline"]),
            ("", 7, &[]),
        ];
        for (message, offset, flags) in cases {
            let fast = encoder.encode(&timestamp, message, offset, flags);
            let slow = through_a_map(&fields, at, message, offset, flags);
            assert_eq!(String::from_utf8(fast).unwrap(), String::from_utf8(slow).unwrap());
        }
    }
}
