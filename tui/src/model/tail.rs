//! A topic's latest records as shown: keys, values and headers as text (UTF-8 where they are,
//! escaped bytes where not), cut to what a screen can show.

use crate::poller::records::FetchedRecord;

/// Characters kept of a key, value or headers.
pub const MAX_TEXT: usize = 2_000;

/// What a refresh read of the tailed topic.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawTail {
    /// The topic.
    pub topic: String,
    /// Records, oldest first.
    pub records: Vec<FetchedRecord>,
    /// Why some could not be read.
    pub error: Option<String>,
}

/// The tail as shown.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tail {
    /// The topic.
    pub topic: String,
    /// Records by timestamp, oldest first.
    pub records: Vec<TailRow>,
    /// Why some could not be read.
    pub error: Option<String>,
}

/// One record as text.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TailRow {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp, ms.
    pub timestamp: i64,
    /// Key (`-` when none).
    pub key: String,
    /// Value (`(tombstone)` when none).
    pub value: String,
    /// `name=value` pairs.
    pub headers: String,
}

/// `bytes` as text: UTF-8 as is (control characters escaped), other bytes as `\xNN`.
pub fn text(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
        if out.len() >= MAX_TEXT {
            break;
        }
    }
    if let Some((cut, _)) = out.char_indices().nth(MAX_TEXT) {
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// The rows of a refresh's tail, ordered by time (then partition and offset).
pub fn build(raw: RawTail) -> Tail {
    let mut records: Vec<TailRow> = raw
        .records
        .iter()
        .map(|r| TailRow {
            partition: r.partition,
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key.as_deref().map_or("-".to_string(), text),
            value: r.value.as_deref().map_or("(tombstone)".to_string(), text),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| format!("{}={}", text(k.as_bytes()), v.as_deref().map_or(String::new(), text)))
                .collect::<Vec<_>>()
                .join(" "),
        })
        .collect();
    records.sort_by_key(|r| (r.timestamp, r.partition, r.offset));
    Tail { topic: raw.topic, records, error: raw.error }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn bytes_become_readable_text() {
        assert_eq!(text(b"plain"), "plain");
        assert_eq!(text(b"a\nb"), "a\\nb");
        assert_eq!(text(&[b'o', b'k', 0xff]), "ok\\xff");
        assert!(text(&vec![b'x'; MAX_TEXT * 2]).ends_with('…'));
    }

    #[test]
    fn records_are_ordered_by_time_with_their_headers() {
        let record = |partition, offset, timestamp| FetchedRecord {
            partition,
            offset,
            timestamp,
            key: None,
            value: Some(Bytes::from(format!("v{offset}"))),
            headers: vec![("millrace.origin.topic".into(), Some(Bytes::from("logs")))],
        };
        let tail = build(RawTail {
            topic: "dead-letters".into(),
            records: vec![record(1, 7, 200), record(0, 3, 100)],
            error: None,
        });
        let order: Vec<(i32, i64)> = tail.records.iter().map(|r| (r.partition, r.offset)).collect();
        assert_eq!(order, vec![(0, 3), (1, 7)]);
        assert_eq!(tail.records[0].key, "-");
        assert_eq!(tail.records[0].headers, "millrace.origin.topic=logs");
    }
}
