//! Metric records as the agent writes them, read in one pass: compact JSON, keys without
//! escapes, each top-level member at most once, string tags, `host` holding only `name`. The
//! general reader collects a record's members into buffers, unescapes and sorts them and looks
//! each key up by its text; that was most of the encoding cost on the sink's consumer thread.
//! Here the members are kept on the stack, sorted as they come (the agent's maps are already
//! ordered by key, so each lands at the end).
//!
//! Anything else (whitespace between tokens, an escape in a key or tag, a top-level member given
//! twice, a tag that is not a string, more members than fit here, or a record that cannot become
//! a point at all) makes this reader give up; the general one in [`super::line_protocol`] then
//! reads the record again and writes the same line, or words the refusal. The `sink_records`
//! fuzz target holds the two readers to the same output.

use super::line_protocol::{write_field, write_measurement, write_stamp, write_tag, FieldValue};
use crate::rfc3339::epoch_millis;
use crate::scan::{Scalar, Scanner, Span};
use millrace_config::sink::Precision;
use std::borrow::Cow;
use std::cell::Cell;
use std::cmp::Ordering;

/// The most tags and fields this reader keeps (on the stack); a record with more goes to the
/// general reader. The agent's host metrics have at most 16 fields and a few tags.
const MAX_TAGS: usize = 16;
const MAX_FIELDS: usize = 32;

/// Up to `N` members of one object, kept in key order.
struct Members<'a, V: Copy, const N: usize> {
    items: [(&'a str, V); N],
    len: usize,
}

impl<'a, V: Copy, const N: usize> Members<'a, V, N> {
    fn new(filler: V) -> Self {
        Members { items: [("", filler); N], len: 0 }
    }

    /// Adds a member where its key sorts (the agent's come in order: at the end); of a key given
    /// twice the last value counts, as in the general reader. Text without escapes orders as
    /// its bytes, as the general reader orders keys. None when full.
    fn push(&mut self, key: &'a str, value: V) -> Option<()> {
        let mut at = self.len;
        while at > 0 {
            match self.items[at - 1].0.cmp(key) {
                Ordering::Greater => at -= 1,
                Ordering::Equal => {
                    self.items[at - 1].1 = value;
                    return Some(());
                }
                Ordering::Less => break,
            }
        }
        if self.len == N {
            return None;
        }
        if at < self.len {
            self.items.copy_within(at..self.len, at + 1);
        }
        self.items[at] = (key, value);
        self.len += 1;
        Some(())
    }

    fn iter(&self) -> impl Iterator<Item = &(&'a str, V)> {
        self.items[..self.len].iter()
    }
}

/// Reads the compact object at the cursor, each member's value through `member` (given the
/// key, the cursor after its `:`).
fn object<'a>(s: &mut Scanner<'a>, mut member: impl FnMut(&mut Scanner<'a>, &'a str) -> Option<()>) -> Option<()> {
    if !s.eat(b"{") {
        return None;
    }
    if s.eat(b"}") {
        return Some(());
    }
    loop {
        let key = s.plain_string()?;
        if !s.eat(b":") {
            return None;
        }
        member(s, key)?;
        if s.eat(b"}") {
            return Some(());
        }
        if !s.eat(b",") {
            return None;
        }
    }
}

/// The text of a string or number the scanner has read, when it holds no escape.
fn borrowed<'a>(s: &Scanner<'a>, span: Span) -> Option<&'a str> {
    match s.text(span) {
        Cow::Borrowed(text) => Some(text),
        Cow::Owned(_) => None,
    }
}

/// A field's value; None inside for `null`, an object or an array, which have no line-protocol
/// form and are left out, as the general reader does.
fn field_value<'a>(s: &mut Scanner<'a>) -> Option<Option<FieldValue<'a>>> {
    Some(match s.value().ok()? {
        Scalar::Number { text, integer } => Some(FieldValue::Number(borrowed(s, text)?, integer)),
        Scalar::Bool(b) => Some(FieldValue::Bool(b)),
        Scalar::Text(text) => Some(FieldValue::Text(borrowed(s, text)?)),
        Scalar::Null | Scalar::Composite => None,
    })
}

/// Skips a member the line does not use. The agent's `input` and `event` are flat objects of
/// strings and numbers, stepped over here without the general reader's recursion; anything else
/// goes to `Scanner::value`, which also bounds nesting as the general reader does.
fn skip(s: &mut Scanner<'_>) -> Option<()> {
    let mut flat = s.clone();
    if flat.next_byte() == Some(b'{') && object(&mut flat, |s, _| scalar(s)).is_some() {
        *s = flat;
        return Some(());
    }
    s.value().ok().map(drop)
}

/// Steps over the string, number or literal at the cursor; None for anything else.
fn scalar(s: &mut Scanner<'_>) -> Option<()> {
    match s.next_byte()? {
        // A string with escapes is checked by the general string reader.
        b'"' => s.plain_string().map(drop).or_else(|| s.value().ok().map(drop)),
        b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => s.value().ok().map(drop),
        _ => None,
    }
}

thread_local! {
    /// The last `@timestamp` read on this thread (up to 32 bytes) and its milliseconds.
    static LAST_TIMESTAMP: Cell<([u8; 32], usize, i64)> = const { Cell::new(([0; 32], 0, 0)) };
}

/// Milliseconds since the epoch of `@timestamp`. The agent samples a host's metrics at one
/// instant and the host's records share a partition, so runs of records carry the same text:
/// the last one read is remembered.
fn millis(timestamp: &str) -> Option<i64> {
    let text = timestamp.as_bytes();
    if let Ok((last, len, ms)) = LAST_TIMESTAMP.try_with(Cell::get) {
        if last.get(..len) == Some(text) {
            return Some(ms);
        }
    }
    let ms = epoch_millis(timestamp).ok()?;
    if text.len() <= 32 {
        let mut last = [0; 32];
        last[..text.len()].copy_from_slice(text);
        // Unavailable only while the thread ends: then nothing is remembered.
        let _ = LAST_TIMESTAMP.try_with(|cell| cell.set((last, text.len(), ms)));
    }
    Some(ms)
}

/// Appends the record's line to `out` when the record is in the layout above and can become a
/// point; None otherwise, with part of a line perhaps appended (the caller truncates it).
pub(super) fn encode(mut s: Scanner<'_>, precision: Precision, out: &mut Vec<u8>) -> Option<()> {
    let (mut timestamp, mut name, mut host) = (None, None, None);
    let (mut seen_tags, mut seen_fields) = (false, false);
    let mut tags = Members::<&str, MAX_TAGS>::new("");
    let mut fields = Members::<Option<FieldValue<'_>>, MAX_FIELDS>::new(None);
    object(&mut s, |s, key| {
        match key {
            "@timestamp" if timestamp.is_none() => timestamp = Some(s.plain_string()?),
            "name" if name.is_none() => name = Some(s.plain_string()?),
            "host" if host.is_none() => {
                if !s.eat(br#"{"name":"#) {
                    return None;
                }
                host = Some(s.plain_string()?);
                if !s.eat(b"}") {
                    return None;
                }
            }
            "tags" if !seen_tags => {
                seen_tags = true;
                object(s, |s, key| tags.push(key, s.plain_string()?))?;
            }
            "fields" if !seen_fields => {
                seen_fields = true;
                object(s, |s, key| fields.push(key, field_value(s)?))?;
            }
            // Given twice: the general reader keeps the last.
            "@timestamp" | "name" | "host" | "tags" | "fields" => return None,
            _ => skip(s)?,
        }
        Some(())
    })?;
    s.finish().ok()?;
    let name = name.filter(|name| !name.is_empty())?;
    if !seen_fields {
        return None;
    }
    let ms = millis(timestamp?)?;
    write_measurement(out, name).ok()?;
    // `host.name` is the `host` tag unless the record has one of its own (every tag here is a
    // string); it goes where its key sorts.
    let mut host = host.filter(|_| !tags.iter().any(|&(key, _)| key == "host"));
    for &(key, value) in tags.iter() {
        if key > "host" {
            if let Some(name) = host.take() {
                write_tag(out, "host", name).ok()?;
            }
        }
        write_tag(out, key, value).ok()?;
    }
    if let Some(name) = host {
        write_tag(out, "host", name).ok()?;
    }
    let mut written = 0;
    for &(key, value) in fields.iter() {
        let Some(value) = value.filter(|_| !key.is_empty()) else { continue };
        write_field(out, written == 0, key, value).ok()?;
        written += 1;
    }
    if written == 0 {
        return None;
    }
    write_stamp(out, ms, precision);
    Some(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::influxdb::line_protocol::{encode_generally, encode_record};
    use serde_json::json;

    /// The line from this reader, or None when it gives the record up.
    fn one_pass(json: &[u8]) -> Option<String> {
        let mut out = Vec::new();
        encode(Scanner::new(json).ok()?, Precision::Ms, &mut out)?;
        Some(String::from_utf8(out).unwrap())
    }

    fn general(json: &[u8]) -> Result<String, String> {
        let mut out = Vec::new();
        encode_generally(json, Precision::Ms, &mut out).map(|()| String::from_utf8(out).unwrap())
    }

    /// A record as the agent writes it: serde_json's maps order their keys, as the agent's do.
    fn agent(tags: serde_json::Value, fields: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "@timestamp": "2026-11-23T11:00:00.123Z", "name": "cpu", "tags": tags, "fields": fields,
            "host": {"name": "web-1"}, "input": {"type": "host_metrics", "name": "host"},
            "event": {"schema": 1, "kind": "metric"}
        }))
        .unwrap()
    }

    #[test]
    fn the_agents_records_take_one_pass_and_give_the_general_readers_lines() {
        let records = [
            agent(json!({"cpu": "cpu0"}), json!({"runnable": 3, "usage_idle": 87.5, "usage_user": 1.25})),
            // The host tag goes before, between and after the record's own tags.
            agent(json!({"a": "1", "z": "2"}), json!({"v": 1})),
            agent(json!({"hz": "1"}), json!({"v": 1})),
            agent(json!({"device": "sda", "fstype": "ext4"}), json!({"v": 1})),
            agent(json!({}), json!({"v": 1})),
            // A tag of its own named host wins; empty tags are left out.
            agent(json!({"host": "other", "mount": ""}), json!({"v": 1})),
            agent(json!({"host": ""}), json!({"v": 1})),
            // Line-protocol escapes, fields of every kind, nulls and nested values left out.
            agent(
                json!({"mount": "/var/my data", "dev": "sda,1"}),
                json!({"ok": true, "no": false, "s": "say hi", "nan": null, "o": {"a": 1}, "big": 12345678901234567890u64, "e": 1.5e300}),
            ),
            // Members out of order or given twice: sorted, the last value kept.
            br#"{"@timestamp":"2026-11-23T11:00:00Z","name":"m","tags":{"z":"1","a":"2","z":"3","host":"x"},"fields":{"b":1,"a":2,"b":3,"c":null,"a":4}}"#.to_vec(),
            br#"{"@timestamp":"2026-11-23T11:00:00Z","name":"m","tags":{"z":"1","a":"2"},"fields":{"c":1,"b":2,"a":3},"host":{"name":"h"}}"#.to_vec(),
        ];
        for json in &records {
            let text = String::from_utf8_lossy(json);
            let line = one_pass(json).unwrap_or_else(|| panic!("given up: {text}"));
            assert_eq!(Ok(line), general(json), "{text}");
        }
        assert_eq!(
            one_pass(&records[1]).unwrap(),
            "cpu,a=1,host=web-1,z=2 v=1i 1795431600123",
            "a record's line, for reading"
        );
        assert_eq!(one_pass(&records[8]).unwrap(), "m,a=2,host=x,z=3 a=4i,b=3i 1795431600000");
        // The bench's member order (name first) is taken too: top-level order is free.
        let reordered = br#"{"@timestamp":"2026-11-23T11:00:00Z","name":"m","tags":{"t":"1"},"fields":{"x":1},"host":{"name":"h"}}"#;
        assert_eq!(one_pass(reordered).unwrap(), "m,host=h,t=1 x=1i 1795431600000");
    }

    #[test]
    fn records_outside_the_layout_are_given_up_and_read_by_the_general_reader() {
        let at = r#""@timestamp":"2026-11-23T11:00:00Z","name":"m""#;
        let given_up = [
            format!(r#"{{ {at},"fields":{{"x":1}}}}"#),
            format!(r#"{{{at},"fields":{{"x" :1}}}}"#),
            format!(r#"{{{at},"fields":{{"s":"say \"hi\""}}}}"#),
            format!(r#"{{{at},"fields":{{"\u0061":1}}}}"#),
            format!(r#"{{{at},"tags":{{"t":"a\u0020b"}},"fields":{{"x":1}}}}"#),
            format!(r#"{{{at},"tags":{{"n":1}},"fields":{{"x":1}}}}"#),
            format!(r#"{{{at},"fields":{{"x":1}},"name":"again"}}"#),
            format!(r#"{{{at},"fields":{{"x":1}},"host":{{"name":"h","id":"1"}}}}"#),
            format!(r#"{{{at},"fields":{{"x":null}}}}"#),
            format!(r#"{{{at},"fields":{{"x":1e999}}}}"#),
            format!(r#"{{{at},"fields":{{"x":1}}}} x"#),
            r#"{"@timestamp":"yesterday","name":"m","fields":{"x":1}}"#.to_string(),
            // Nested one level deeper than the general reader takes, under a skipped member.
            format!(r#"{{{at},"fields":{{"x":1}},"input":{{"a":{}{}}}}}"#, "[".repeat(128), "]".repeat(128)),
        ];
        for json in &given_up {
            assert_eq!(one_pass(json.as_bytes()), None, "{json}");
            let mut out = b"kept".to_vec();
            let result = encode_record(json.as_bytes(), Precision::Ms, &mut out);
            match general(json.as_bytes()) {
                Ok(line) => assert_eq!((result, out), (Ok(()), format!("kept{line}").into_bytes()), "{json}"),
                Err(e) => assert_eq!(result, Err(e), "{json}"),
            }
        }
        let many: serde_json::Map<String, serde_json::Value> =
            (0..=MAX_TAGS).map(|i| (format!("t{i:02}"), json!("v"))).collect();
        assert_eq!(one_pass(&agent(many.into(), json!({"v": 1}))), None, "more tags than it keeps");
    }

    #[test]
    fn a_truncated_record_is_given_up_and_refused_by_the_general_reader() {
        let record = agent(json!({"cpu": "cpu0"}), json!({"usage_idle": 87.5}));
        for end in 0..record.len() {
            let cut = &record[..end];
            assert_eq!(one_pass(cut), None, "{}", String::from_utf8_lossy(cut));
            let mut out = Vec::new();
            let refused = encode_record(cut, Precision::Ms, &mut out).unwrap_err();
            assert_eq!(Err(refused), general(cut));
        }
    }

    #[test]
    fn every_one_byte_change_to_an_agent_record_gives_the_general_readers_line_or_its_refusal() {
        // A small differential fuzz, run on every test run (the `sink_records` fuzz target does
        // the same at length): each record with one byte replaced or removed.
        let seeds = [
            agent(json!({"cpu": "cpu0", "mode": "a b"}), json!({"n": -3, "ok": true, "s": "x", "v": 87.5})),
            br#"{"@timestamp":"2026-11-23T11:00:00.5Z","name":"m","tags":{"a":"1"},"fields":{"x":1.0}}"#.to_vec(),
        ];
        let replacements = b" \"\\,:={}[]01-.eEnux#\n";
        let mut taken = 0;
        for seed in &seeds {
            for at in 0..seed.len() {
                let mut variants = vec![[&seed[..at], &seed[at + 1..]].concat()];
                for &b in replacements {
                    let mut changed = seed.clone();
                    changed[at] = b;
                    variants.push(changed);
                }
                for json in &variants {
                    let mut out = Vec::new();
                    let result = encode_record(json, Precision::Ms, &mut out);
                    let expected = general(json);
                    assert_eq!(
                        result.map(|()| String::from_utf8(out).unwrap()),
                        expected,
                        "{}",
                        String::from_utf8_lossy(json)
                    );
                    taken += usize::from(one_pass(json).is_some());
                }
            }
        }
        assert!(taken > 500, "the one-pass reader took only {taken} variants: the test no longer exercises it");
    }
}
