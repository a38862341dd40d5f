//! Records out of a Fetch answer: record batches decoded one after the other, payloads inflated
//! with the protocol crate's capped decompression, a trailing partial batch left for the next
//! fetch (as every Kafka consumer does).

use bytes::{Buf, Bytes};
use millrace_protocol::compression;

/// The most one batch may inflate to.
pub const MAX_BATCH_BYTES: usize = 8 << 20;
/// Offset, length, leader epoch, magic, CRC, attributes, last offset delta: enough to know a
/// batch's length and last offset.
const HEADER_BYTES: usize = 27;

/// One record as fetched.
#[derive(Clone, Debug, PartialEq)]
pub struct FetchedRecord {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp, ms.
    pub timestamp: i64,
    /// Key.
    pub key: Option<Bytes>,
    /// Value (None: a tombstone).
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// The records of `partition` in `data`, and the offset to fetch next (after the last whole
/// batch, records or not: compaction can leave batches empty). A batch that does not decode
/// ends the walk with its reason; what came before it is kept.
pub fn decode(partition: i32, mut data: Bytes) -> (Vec<FetchedRecord>, Option<i64>, Option<String>) {
    let mut records = Vec::new();
    let mut next = None;
    while data.len() >= HEADER_BYTES {
        let base_offset = (&data[0..8]).get_i64();
        let length = (&data[8..12]).get_i32();
        let last_delta = (&data[23..27]).get_i32();
        let Ok(length) = usize::try_from(length) else {
            return (records, next, Some(format!("a batch at offset {base_offset} has a negative length")));
        };
        let whole = 12 + length;
        if data.len() < whole {
            break; // cut off by the fetch's byte limit
        }
        let mut batch = data.split_to(whole);
        match compression::decode_batch(&mut batch, MAX_BATCH_BYTES) {
            Ok(set) => {
                for r in set.records {
                    records.push(FetchedRecord {
                        partition,
                        offset: r.offset,
                        timestamp: r.timestamp,
                        key: r.key,
                        value: r.value,
                        headers: r.headers.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                    });
                }
            }
            Err(e) => return (records, next, Some(format!("batch at offset {base_offset}: {e:#}"))),
        }
        next = Some(base_offset.saturating_add(i64::from(last_delta)).saturating_add(1));
    }
    (records, next, None)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

    fn batch(first: i64, values: &[&str], compression: Compression) -> BytesMut {
        let records: Vec<Record> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Record {
                transactional: false,
                control: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: first + i as i64,
                sequence: -1,
                timestamp: 1_000 + i as i64,
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(v.to_string())),
                headers: Default::default(),
                delete_horizon: false,
            })
            .collect();
        let mut out = BytesMut::new();
        RecordBatchEncoder::encode(&mut out, &records, &RecordEncodeOptions { version: 2, compression }).unwrap();
        out
    }

    #[test]
    fn batches_decode_in_order_and_a_cut_batch_waits_for_the_next_fetch() {
        let mut data = batch(10, &["a", "b"], Compression::None);
        data.extend_from_slice(&batch(12, &["c"], Compression::Lz4));
        let whole = data.len();
        data.extend_from_slice(&batch(13, &["d"], Compression::None)[..20]);
        let (records, next, error) = decode(0, data.freeze());
        assert_eq!(error, None);
        let values: Vec<_> = records.iter().map(|r| (r.offset, r.value.clone().unwrap())).collect();
        assert_eq!(values, vec![(10, Bytes::from("a")), (11, Bytes::from("b")), (12, Bytes::from("c"))]);
        assert_eq!(next, Some(13));
        assert!(whole > 0);
    }

    #[test]
    fn a_lying_length_neither_allocates_nor_loops() {
        let mut huge = batch(0, &["a"], Compression::None);
        huge[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        let (records, next, error) = decode(0, huge.freeze());
        assert_eq!((records.len(), next, error), (0, None, None), "waits for bytes that never come");
        let mut negative = batch(0, &["a"], Compression::None);
        negative[8..12].copy_from_slice(&(-1i32).to_be_bytes());
        let (records, _, error) = decode(0, negative.freeze());
        assert!(records.is_empty() && error.is_some_and(|e| e.contains("negative length")));
        let (records, next, error) = decode(0, Bytes::from_static(&[0xff; 26]));
        assert_eq!((records.len(), next, error), (0, None, None), "shorter than a header");
    }

    #[test]
    fn a_corrupt_batch_ends_the_walk_with_a_reason_and_keeps_what_came_before() {
        let mut data = batch(0, &["a"], Compression::None);
        let mut bad = batch(1, &["b"], Compression::None);
        let last = bad.len() - 1;
        bad[last] ^= 0xff; // the CRC no longer matches
        data.extend_from_slice(&bad);
        let (records, next, error) = decode(0, data.freeze());
        assert_eq!(records.len(), 1);
        assert_eq!(next, Some(1));
        assert!(error.is_some());
    }
}
