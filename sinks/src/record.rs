//! What a sink reads from the broker: one record with its origin (topic, partition, offset),
//! borrowed from the consumer's message or from a batch's copy of it, and for a replayed dead
//! letter the position it was first read at.

/// One record consumed from the broker.
#[derive(Debug, Clone, Copy)]
pub struct SourceRecord<'a> {
    /// Topic it came from.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// Record key.
    pub key: Option<&'a [u8]>,
    /// Record value (the agent's JSON document).
    pub payload: &'a [u8],
    /// The record's timestamp (ms), when it has one.
    pub timestamp_ms: Option<i64>,
    /// Where it first was, when it is a dead letter sent back by `millrace dlq replay`.
    pub replayed_from: Option<Position<'a>>,
}

/// A record's place in the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// The headers a dead letter carries to name where its record was first read; `millrace dlq
/// replay` keeps them, so a replayed record is written where (and with the id) it would have been.
pub const ORIGIN_TOPIC: &str = "millrace.origin.topic";
/// See [`ORIGIN_TOPIC`].
pub const ORIGIN_PARTITION: &str = "millrace.origin.partition";
/// See [`ORIGIN_TOPIC`].
pub const ORIGIN_OFFSET: &str = "millrace.origin.offset";

/// The origin named by a record's headers, if all three are there and valid.
pub fn origin_from_headers<'a>(headers: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>) -> Option<Position<'a>> {
    let (mut topic, mut partition, mut offset) = (None, None, None);
    for (key, value) in headers {
        let text = value.and_then(|v| std::str::from_utf8(v).ok());
        match key {
            ORIGIN_TOPIC => topic = text.filter(|t| !t.is_empty()),
            ORIGIN_PARTITION => partition = text.and_then(|t| t.parse::<i32>().ok()).filter(|p| *p >= 0),
            ORIGIN_OFFSET => offset = text.and_then(|t| t.parse::<i64>().ok()).filter(|o| *o >= 0),
            _ => {}
        }
    }
    Some(Position { topic: topic?, partition: partition?, offset: offset? })
}

impl<'a> SourceRecord<'a> {
    /// Where the record first was: its replay origin, else where it was read.
    pub fn first_position(&self) -> Position<'a> {
        self.replayed_from.unwrap_or(Position { topic: self.topic, partition: self.partition, offset: self.offset })
    }
}

impl SourceRecord<'_> {
    /// `topic/partition@offset`, for logs and dead letters.
    pub fn origin(&self) -> String {
        format!("{}/{}@{}", self.topic, self.partition, self.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_needs_all_three_valid_headers() {
        let headers = |p: &'static [u8]| {
            vec![
                (ORIGIN_TOPIC, Some(&b"logs"[..])),
                ("other", None),
                (ORIGIN_PARTITION, Some(p)),
                (ORIGIN_OFFSET, Some(&b"42"[..])),
            ]
        };
        assert_eq!(origin_from_headers(headers(b"3")), Some(Position { topic: "logs", partition: 3, offset: 42 }));
        assert_eq!(origin_from_headers(headers(b"-1")), None);
        assert_eq!(origin_from_headers(headers(b"x")), None);
        assert_eq!(origin_from_headers(vec![(ORIGIN_TOPIC, Some(&b"logs"[..]))]), None);
    }
}
