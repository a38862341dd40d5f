#![allow(clippy::unwrap_used)]
use super::*;
use crate::destination::{Verdict, WriteFailure};
use crate::metrics::SinkMetrics;
use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use std::sync::Arc;

/// Keeps payloads as they are, one per line.
struct Lines;

impl Destination for Lines {
    fn kind(&self) -> &'static str {
        "lines"
    }

    fn encode(&self, record: &SourceRecord<'_>, out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(record.payload);
        out.push(b'\n');
        Ok(())
    }

    async fn write(&self, items: &[&[u8]]) -> Result<Vec<Verdict>, WriteFailure> {
        Ok(vec![Verdict::Accepted; items.len()])
    }
}

/// One batch of records `offsets`, each with payload `v<offset>`, compressed as asked.
fn batch(offsets: std::ops::Range<i64>, compression: Compression, headers: &[(&str, &str)]) -> Vec<u8> {
    let records: Vec<Record> = offsets
        .map(|offset| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset,
            // The encoder keeps records in one batch while offset - sequence stays the same.
            sequence: offset as i32,
            timestamp: 1_700_000_000_000 + offset,
            key: Some(Bytes::from(format!("k{offset}"))),
            value: Some(Bytes::from(format!("v{offset}"))),
            headers: headers
                .iter()
                .map(|(k, v)| (StrBytes::from_string(k.to_string()), Some(Bytes::from(v.to_string()))))
                .collect::<IndexMap<_, _>>(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression }).unwrap();
    buf.to_vec()
}

/// (offset, payload) of each record of a batch.
type Records = Vec<(i64, String)>;

struct Harness {
    shared: Shared,
    common: Common,
    key: (Arc<str>, i32),
    generation: u64,
}

impl Harness {
    fn new(batch_max_events: usize) -> Harness {
        let mut common: Common = serde_json::from_str(r#"{"name":"s","topics":["logs"],"group":"g"}"#).unwrap();
        common.batch_max_events = batch_max_events;
        let shared = Shared::new("s", Arc::new(SinkMetrics::new().unwrap()));
        let key: (Arc<str>, i32) = (Arc::from("logs"), 2);
        shared.fetch.partitions().start(key.clone(), Some(0));
        shared
            .fetch
            .partitions()
            .set_leaders(|_| Some(crate::worker::fetch::state::Leader { id: 1, epoch: 0, topic_id: 0 }));
        let generation = shared.fetch.partitions().targets(1, Instant::now())[0].generation;
        Harness { shared, common, key, generation }
    }

    fn chunk(&self, fetch_offset: i64, records: Vec<u8>) -> Chunk {
        Chunk { key: self.key.clone(), generation: self.generation, fetch_offset, records: Bytes::from(records) }
    }

    /// Reads `chunk`; the batches cut and the one left filling, as (offset, payload) lists.
    fn read(&self, chunk: &Chunk) -> (Vec<Records>, Records) {
        let (tx, mut rx) = mpsc::channel(16);
        let mut filling = Filling {
            batch: Batch::default(),
            batches: tx,
            common: &self.common,
            shared: &self.shared,
            dry: Duration::ZERO,
        };
        assert!(read_chunk(chunk, &mut filling, &Lines, &mut Vec::new()));
        let contents = |b: &Batch| {
            (0..b.len())
                .map(|i| {
                    let r = b.record(i);
                    assert_eq!((r.topic, r.partition), ("logs", 2));
                    assert_eq!(r.key, Some(format!("k{}", r.offset).as_bytes()));
                    assert_eq!(r.timestamp_ms, Some(1_700_000_000_000 + r.offset));
                    (r.offset, String::from_utf8(r.payload.to_vec()).unwrap())
                })
                .collect::<Vec<_>>()
        };
        let mut cut = Vec::new();
        while let Ok(b) = rx.try_recv() {
            cut.push(contents(&b));
        }
        (cut, contents(&filling.batch))
    }
}

fn expected(offsets: std::ops::Range<i64>) -> Records {
    offsets.map(|o| (o, format!("v{o}"))).collect()
}

#[test]
fn records_before_the_fetch_offset_are_skipped_and_full_batches_are_cut() {
    let h = Harness::new(4);
    let mut set = batch(0..5, Compression::None, &[]);
    set.extend(batch(5..10, Compression::Lz4, &[]));
    let (cut, left) = h.read(&h.chunk(3, set));
    assert_eq!(cut, vec![expected(3..7)]);
    assert_eq!(left, expected(7..10));
}

#[test]
fn a_batch_wholly_below_the_fetch_offset_is_not_decoded() {
    let h = Harness::new(100);
    let mut set = batch(0..5, Compression::None, &[]);
    // Garbage where the first batch's records are: it must not be looked at.
    set[70] ^= 0xff;
    set.extend(batch(5..8, Compression::Zstd, &[]));
    let (_, left) = h.read(&h.chunk(5, set));
    assert_eq!(left, expected(5..8));
}

#[test]
fn a_bad_batch_is_fetched_again_and_nothing_after_it_is_read() {
    let h = Harness::new(100);
    let mut set = batch(0..5, Compression::None, &[]);
    let bad_start = set.len();
    set.extend(batch(5..10, Compression::None, &[]));
    set.extend(batch(10..12, Compression::None, &[]));
    // A byte of the second batch's records: its CRC no longer matches.
    let last = bad_start + batch(5..10, Compression::None, &[]).len() - 1;
    set[last] ^= 0x01;
    let (_, left) = h.read(&h.chunk(0, set));
    assert_eq!(batches(&batch(5..10, Compression::None, &[])).count(), 1, "one batch per call of `batch`");
    assert_eq!(left, expected(0..5), "the records before the bad batch only");
    let parts = h.shared.fetch.partitions();
    assert!(!parts.current(&h.key, h.generation), "chunks fetched after it are dropped");
    assert!(parts.targets(1, Instant::now()).is_empty(), "it waits before fetching again");
    let later = Instant::now() + REREAD_AFTER + Duration::from_millis(10);
    assert_eq!(parts.targets(1, later)[0].offset, 5, "fetched again from the bad batch");
}

#[test]
fn a_revoked_partitions_chunk_is_stale() {
    let h = Harness::new(100);
    let chunk = h.chunk(0, batch(0..3, Compression::None, &[]));
    assert!(h.shared.fetch.current(&chunk));
    h.shared.fetch.partitions().revoke([&h.key]);
    assert!(!h.shared.fetch.current(&chunk));
}

#[test]
fn a_replayed_dead_letter_says_where_it_first_was() {
    let h = Harness::new(100);
    let headers = [
        (crate::record::ORIGIN_TOPIC, "logs-old"),
        (crate::record::ORIGIN_PARTITION, "7"),
        (crate::record::ORIGIN_OFFSET, "1234"),
    ];
    let chunk = h.chunk(0, batch(0..2, Compression::Gzip, &headers));
    let (tx, _rx) = mpsc::channel(1);
    let mut filling =
        Filling { batch: Batch::default(), batches: tx, common: &h.common, shared: &h.shared, dry: Duration::ZERO };
    assert!(read_chunk(&chunk, &mut filling, &Lines, &mut Vec::new()));
    let first = filling.batch.record(1).first_position();
    assert_eq!((first.topic, first.partition, first.offset), ("logs-old", 7, 1234));
}
