//! The batch buffer: records read together, written together, committed together, with each
//! record's encoding made on the consumer thread as it is read.

use super::commits::Offsets;
use crate::destination::Destination;
use crate::record::{Position, SourceRecord};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

/// Where one record and its encoding lie in its batch's buffers.
struct Item {
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    timestamp_ms: Option<i64>,
    /// A replayed record's first position: its topic's place in `originals`, partition, offset.
    replayed_from: Option<(Range<usize>, i32, i64)>,
    key: Option<Range<usize>>,
    payload: Range<usize>,
    /// The encoding's place in `Batch::encoded`, or why the record cannot be encoded.
    encoded: Result<Range<usize>, String>,
}

/// Records and encodings are copied into two buffers per batch rather than allocated one by one:
/// the consumer thread's work per record is most of the sink's CPU, which on a small machine is
/// CPU the destination does not get.
#[derive(Default)]
pub struct Batch {
    items: Vec<Item>,
    /// Keys and payloads as read (a refused record is dead-lettered unchanged).
    originals: Vec<u8>,
    encoded: Vec<u8>,
    started: Option<Instant>,
}

impl Batch {
    /// An empty batch with room for one like `previous`.
    pub fn sized_like(previous: &Batch) -> Batch {
        Batch {
            items: Vec::with_capacity(previous.items.len()),
            originals: Vec::with_capacity(previous.originals.len()),
            encoded: Vec::with_capacity(previous.encoded.len()),
            started: None,
        }
    }

    /// Empties the batch for reuse, keeping its buffers' capacity: a batch's buffers run to
    /// megabytes, and allocating them afresh for every batch cost a page fault per 4 KiB touched.
    pub fn clear(&mut self) {
        self.items.clear();
        self.originals.clear();
        self.encoded.clear();
        self.started = None;
    }

    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the batch has no record.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Bytes of encodings: what the destination will be sent.
    pub fn encoded_bytes(&self) -> usize {
        self.encoded.len()
    }

    /// When its first record was added.
    pub fn started(&self) -> Option<Instant> {
        self.started
    }

    /// Copies `record` in and encodes it.
    pub fn push<D: Destination>(&mut self, topic: &Arc<str>, record: &SourceRecord<'_>, destination: &D) {
        let copy = |buffer: &mut Vec<u8>, bytes: &[u8]| {
            buffer.extend_from_slice(bytes);
            buffer.len() - bytes.len()..buffer.len()
        };
        let key = record.key.map(|k| copy(&mut self.originals, k));
        let replayed_from =
            record.replayed_from.map(|o| (copy(&mut self.originals, o.topic.as_bytes()), o.partition, o.offset));
        let payload = copy(&mut self.originals, record.payload);
        let start = self.encoded.len();
        let encoded = match destination.encode(record, &mut self.encoded) {
            Ok(()) => Ok(start..self.encoded.len()),
            Err(e) => {
                // Half an encoding must not reach the destination.
                self.encoded.truncate(start);
                Err(e)
            }
        };
        self.started.get_or_insert_with(Instant::now);
        self.items.push(Item {
            topic: topic.clone(),
            partition: record.partition,
            offset: record.offset,
            timestamp_ms: record.timestamp_ms,
            replayed_from,
            key,
            payload,
            encoded,
        });
    }

    /// The record at `index`, as it was read. `index` comes from this batch (below `len`).
    pub fn record(&self, index: usize) -> SourceRecord<'_> {
        let item = &self.items[index];
        SourceRecord {
            topic: &item.topic,
            partition: item.partition,
            offset: item.offset,
            key: item.key.clone().map(|k| &self.originals[k]),
            payload: &self.originals[item.payload.clone()],
            timestamp_ms: item.timestamp_ms,
            replayed_from: item.replayed_from.as_ref().map(|(topic, partition, offset)| Position {
                // Copied from a `&str` in `push`: always UTF-8.
                topic: std::str::from_utf8(&self.originals[topic.clone()]).unwrap_or_default(),
                partition: *partition,
                offset: *offset,
            }),
        }
    }

    /// The encoding of the record at `index`, or why it could not be encoded.
    pub fn encoded(&self, index: usize) -> Result<&[u8], &str> {
        match &self.items[index].encoded {
            Ok(range) => Ok(&self.encoded[range.clone()]),
            Err(e) => Err(e),
        }
    }

    /// The batch without the records of `revoked` partitions (encoded again: revocations are rare).
    pub fn without<D: Destination>(&self, revoked: &BTreeSet<(String, i32)>, destination: &D) -> Batch {
        let mut kept = Batch::sized_like(self);
        for (i, item) in self.items.iter().enumerate() {
            if !revoked.contains(&(item.topic.to_string(), item.partition)) {
                kept.push(&item.topic, &self.record(i), destination);
            }
        }
        if !kept.items.is_empty() {
            kept.started = self.started;
        }
        kept
    }

    /// The offsets to commit once the batch is done: per partition, one past its last record.
    pub fn commit_offsets(&self) -> Offsets {
        let mut next = BTreeMap::new();
        for item in &self.items {
            let entry = next.entry((item.topic.clone(), item.partition)).or_insert(0);
            *entry = (*entry).max(item.offset + 1);
        }
        next
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::destination::{Verdict, WriteFailure};

    /// Encodes a payload as itself plus a newline; refuses payloads starting with `bad`.
    struct Echo;

    impl Destination for Echo {
        fn kind(&self) -> &'static str {
            "echo"
        }

        fn encode(&self, record: &SourceRecord<'_>, out: &mut Vec<u8>) -> Result<(), String> {
            out.extend_from_slice(record.payload);
            if record.payload.starts_with(b"bad") {
                return Err("cannot encode".into());
            }
            out.push(b'\n');
            Ok(())
        }

        async fn write(&self, items: &[&[u8]]) -> Result<Vec<Verdict>, WriteFailure> {
            Ok(vec![Verdict::Accepted; items.len()])
        }
    }

    fn record<'a>(topic: &'a str, partition: i32, offset: i64, payload: &'a [u8]) -> SourceRecord<'a> {
        SourceRecord {
            topic,
            partition,
            offset,
            key: Some(b"k"),
            payload,
            timestamp_ms: Some(offset * 10),
            replayed_from: None,
        }
    }

    #[test]
    fn a_replayed_record_keeps_its_first_position() {
        let topic: Arc<str> = Arc::from("logs");
        let mut batch = Batch::default();
        let first = Position { topic: "logs", partition: 3, offset: 77 };
        batch.push(&topic, &SourceRecord { replayed_from: Some(first), ..record("logs", 0, 900, b"one") }, &Echo);
        batch.push(&topic, &record("logs", 0, 901, b"two"), &Echo);
        assert_eq!(batch.record(0).replayed_from, Some(first));
        assert_eq!(batch.record(0).first_position(), first);
        assert_eq!(batch.record(1).first_position(), Position { topic: "logs", partition: 0, offset: 901 });
        assert_eq!(batch.record(0).payload, b"one", "the origin's copy does not disturb the payloads");
    }

    #[test]
    fn records_come_back_as_read_and_encodings_without_refused_ones() {
        let topic: Arc<str> = Arc::from("logs");
        let mut batch = Batch::default();
        assert!(batch.is_empty() && batch.started().is_none());
        batch.push(&topic, &record("logs", 0, 5, b"one"), &Echo);
        batch.push(&topic, &record("logs", 0, 6, b"bad two"), &Echo);
        batch.push(&topic, &SourceRecord { key: None, ..record("logs", 1, 9, b"three") }, &Echo);
        assert_eq!(batch.len(), 3);
        assert!(batch.started().is_some());
        assert_eq!(batch.encoded(0), Ok(&b"one\n"[..]));
        assert_eq!(batch.encoded(1), Err("cannot encode"));
        // The refused record's partial encoding was cut back off.
        assert_eq!(batch.encoded(2), Ok(&b"three\n"[..]));
        assert_eq!(batch.encoded_bytes(), 10);
        let refused = batch.record(1);
        assert_eq!((refused.topic, refused.partition, refused.offset), ("logs", 0, 6));
        assert_eq!((refused.key, refused.payload, refused.timestamp_ms), (Some(&b"k"[..]), &b"bad two"[..], Some(60)));
        assert_eq!(batch.record(2).key, None);
    }

    #[test]
    fn a_cleared_batch_is_empty_and_keeps_its_buffers() {
        let topic: Arc<str> = Arc::from("logs");
        let mut batch = Batch::default();
        for offset in 0..100 {
            batch.push(&topic, &record("logs", 0, offset, b"some payload"), &Echo);
        }
        let capacity = (batch.originals.capacity(), batch.encoded.capacity(), batch.items.capacity());
        batch.clear();
        assert!(batch.is_empty() && batch.started().is_none() && batch.encoded_bytes() == 0);
        assert!(batch.commit_offsets().is_empty());
        assert_eq!((batch.originals.capacity(), batch.encoded.capacity(), batch.items.capacity()), capacity);
        batch.push(&topic, &record("logs", 1, 7, b"again"), &Echo);
        assert_eq!((batch.len(), batch.record(0).payload, batch.encoded(0)), (1, &b"again"[..], Ok(&b"again\n"[..])));
    }

    #[test]
    fn commit_offsets_are_one_past_each_partitions_last_record() {
        let (logs, metrics): (Arc<str>, Arc<str>) = (Arc::from("logs"), Arc::from("metrics"));
        let mut batch = Batch::default();
        for (topic, partition, offset) in [(&logs, 0, 7), (&logs, 0, 8), (&logs, 1, 3), (&metrics, 0, 41)] {
            batch.push(topic, &record(topic, partition, offset, b"x"), &Echo);
        }
        let offsets = batch.commit_offsets();
        let expected: Offsets = [((logs.clone(), 0), 9), ((logs, 1), 4), ((metrics, 0), 42)].into_iter().collect();
        assert_eq!(offsets, expected);
        assert!(Batch::default().commit_offsets().is_empty());
    }

    #[test]
    fn revoked_partitions_leave_the_batch() {
        let topic: Arc<str> = Arc::from("logs");
        let mut batch = Batch::default();
        for (partition, offset) in [(0, 1), (1, 1), (0, 2), (2, 1)] {
            batch.push(&topic, &record("logs", partition, offset, format!("p{partition}o{offset}").as_bytes()), &Echo);
        }
        let revoked: BTreeSet<(String, i32)> = [("logs".to_string(), 0)].into_iter().collect();
        let kept = batch.without(&revoked, &Echo);
        assert_eq!(kept.len(), 2);
        assert_eq!((kept.record(0).payload, kept.record(1).payload), (&b"p1o1"[..], &b"p2o1"[..]));
        assert_eq!(kept.encoded(1), Ok(&b"p2o1\n"[..]));
        assert_eq!(kept.started(), batch.started(), "the batch keeps its age");
        let all: BTreeSet<(String, i32)> = (0..3).map(|p| ("logs".to_string(), p)).collect();
        let none = batch.without(&all, &Echo);
        assert!(none.is_empty() && none.started().is_none());
    }
}
