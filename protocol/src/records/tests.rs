//! Batches built by kafka-protocol's own encoder read back field for field (and as its decoder
//! reads them); hand-built batches and exhaustive mutations for the hostile cases.

use super::*;
use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Record as KafkaRecord, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

const CODECS: [Compression; 5] =
    [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];
const CAP: usize = 1 << 20;
const T0: i64 = 1_700_000_000_000;
const ATTRIBUTES_AT: usize = 21;
const CRC_AT: usize = 17;

// ---- building batches ------------------------------------------------------------------------

fn encode(records: &[KafkaRecord], compression: Compression) -> Vec<u8> {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, records, &RecordEncodeOptions { version: 2, compression }).unwrap();
    buf.to_vec()
}

type HeaderList = &'static [(&'static str, Option<&'static str>)];

fn record(offset: i64, timestamp: i64, key: Option<&[u8]>, value: Option<&[u8]>, headers: HeaderList) -> KafkaRecord {
    KafkaRecord {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 7,
        producer_id: 42,
        producer_epoch: 3,
        timestamp_type: TimestampType::Creation,
        offset,
        // The encoder keeps records in one batch while offset - sequence stays the same.
        sequence: offset as i32,
        timestamp,
        key: key.map(Bytes::copy_from_slice),
        value: value.map(Bytes::copy_from_slice),
        headers: headers
            .iter()
            .map(|(k, v)| (StrBytes::from_string(k.to_string()), v.map(|v| Bytes::from_static(v.as_bytes()))))
            .collect::<IndexMap<_, _>>(),
    }
}

/// Five records from `base`: null keys and values, empty ones, headers with a null value, a
/// large key and value (multi-byte varints), timestamps out of order.
fn sample(base: i64) -> Vec<KafkaRecord> {
    let big_key: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
    let big_value: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    vec![
        record(base, T0 + 10, Some(b"k0"), Some(b"v0"), &[("trace", Some("abc")), ("empty", None)]),
        record(base + 1, T0, None, Some(b"no key"), &[]),
        record(base + 2, T0 + 3, Some(b""), None, &[("", Some(""))]),
        record(
            base + 3,
            T0 + 1_000_000,
            Some(&big_key),
            Some(&big_value),
            &[("a", Some("1")), ("b", None), ("c", Some("3"))],
        ),
        record(base + 4, T0 + 5, Some(b"k4"), Some(b"v4"), &[]),
    ]
}

/// A record as plain owned data, to compare.
#[derive(Debug, PartialEq, Eq)]
struct Owned {
    offset: i64,
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Owned {
    fn of(record: &super::Record) -> Owned {
        Owned {
            offset: record.offset,
            timestamp: record.timestamp_ms,
            key: record.key.map(<[u8]>::to_vec),
            value: record.value.map(<[u8]>::to_vec),
            headers: record.headers.clone().map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec))).collect(),
        }
    }

    fn of_kafka(record: &KafkaRecord) -> Owned {
        Owned {
            offset: record.offset,
            timestamp: record.timestamp,
            key: record.key.as_ref().map(|b| b.to_vec()),
            value: record.value.as_ref().map(|b| b.to_vec()),
            headers: record
                .headers
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_ref().map(|b| b.to_vec())))
                .collect(),
        }
    }
}

/// Every record of every batch of `set`, or the first error.
fn read_all(set: &[u8]) -> Result<Vec<Owned>, RecordsError> {
    let mut scratch = Vec::new();
    let mut out = Vec::new();
    for batch in batches(set) {
        let batch = batch?;
        let mut read = 0;
        for record in batch.records(&mut scratch, CAP)? {
            let record = record?;
            assert_eq!(record.headers.len(), record.headers.clone().count());
            out.push(Owned::of(&record));
            read += 1;
        }
        assert_eq!(read, batch.records_count());
    }
    Ok(out)
}

/// Rewrites the CRC of each whole batch in `set`.
fn fix_crcs(set: &mut [u8]) {
    let mut position = 0;
    while let Some(rest) = set.get_mut(position..) {
        let Some(length) = rest.get(8..12) else { return };
        let length = i32::from_be_bytes(length.try_into().unwrap());
        let Some(total) = usize::try_from(length).ok().and_then(|l| l.checked_add(12)) else { return };
        if total < ATTRIBUTES_AT {
            return;
        }
        let Some(batch) = rest.get_mut(..total) else { return };
        let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
        batch[CRC_AT..ATTRIBUTES_AT].copy_from_slice(&crc.to_be_bytes());
        position += total;
    }
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut z = zigzag(value);
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varlong(out, -1),
        Some(b) => {
            put_varlong(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

/// One record's bytes after its length varint.
fn record_body(offset_delta: i64, key: Option<&[u8]>, value: Option<&[u8]>, headers: HeaderList) -> Vec<u8> {
    let mut body = vec![0u8];
    put_varlong(&mut body, 0);
    put_varlong(&mut body, offset_delta);
    put_bytes(&mut body, key);
    put_bytes(&mut body, value);
    put_varlong(&mut body, headers.len() as i64);
    for (k, v) in headers {
        put_bytes(&mut body, Some(k.as_bytes()));
        put_bytes(&mut body, v.map(str::as_bytes));
    }
    body
}

/// A record with its length varint.
fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_varlong(&mut out, body.len() as i64);
    out.extend_from_slice(body);
    out
}

/// A hand-built batch, every header field chosen; `bytes` fills in the length and the CRC.
struct Raw {
    base_offset: i64,
    magic: i8,
    attributes: i16,
    last_offset_delta: i32,
    max_timestamp: i64,
    records_count: i32,
    records: Vec<u8>,
}

impl Raw {
    fn new(records_count: i32, records: Vec<u8>) -> Raw {
        Raw {
            base_offset: 100,
            magic: 2,
            attributes: 0,
            last_offset_delta: (records_count - 1).max(0),
            max_timestamp: T0,
            records_count,
            records,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(self.base_offset.to_be_bytes());
        out.extend(((49 + self.records.len()) as i32).to_be_bytes());
        out.extend((-1i32).to_be_bytes());
        out.push(self.magic as u8);
        out.extend([0; 4]);
        out.extend(self.attributes.to_be_bytes());
        out.extend(self.last_offset_delta.to_be_bytes());
        out.extend(T0.to_be_bytes());
        out.extend(self.max_timestamp.to_be_bytes());
        out.extend((-1i64).to_be_bytes());
        out.extend((-1i16).to_be_bytes());
        out.extend((-1i32).to_be_bytes());
        out.extend(self.records_count.to_be_bytes());
        out.extend(&self.records);
        fix_crcs(&mut out);
        out
    }
}

fn corrupt_reason(result: Result<Vec<Owned>, RecordsError>) -> String {
    match result {
        Err(RecordsError::Corrupt { reason, .. }) => reason,
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// Walks everything (as the fuzz target does); where a whole batch reads
/// without error and has creation time, kafka-protocol's decoder must read the same records
/// (or refuse a header key that is not UTF-8, which it requires and this reader does not).
/// Returns how many batches were compared so.
fn walk(set: &[u8]) -> usize {
    let mut compared = 0;
    let mut scratch = Vec::new();
    let mut after_error = false;
    for batch in batches(set) {
        assert!(!after_error, "an item after an error");
        let batch = match batch {
            Ok(batch) => batch,
            Err(_) => {
                after_error = true;
                continue;
            }
        };
        assert!(batch.base_offset() <= batch.last_offset() && batch.last_offset() < batch.next_offset());
        let _ = (batch.compression(), batch.is_control(), batch.is_transactional(), batch.producer_id());
        let Ok(records) = batch.records(&mut scratch, CAP) else { continue };
        let mut ours = Vec::new();
        let mut failed = false;
        for record in records {
            match record {
                Ok(record) => {
                    let headers = record.headers.clone();
                    assert_eq!(headers.len(), headers.count());
                    ours.push(Owned::of(&record));
                }
                Err(_) => failed = true,
            }
        }
        assert!(ours.len() <= batch.records_count() as usize);
        if failed || batch.log_append_time() {
            continue;
        }
        assert_eq!(ours.len(), batch.records_count() as usize);
        let start = batch.checked.as_ptr() as usize - set.as_ptr() as usize - ATTRIBUTES_AT;
        let end = start + ATTRIBUTES_AT + batch.checked.len();
        let mut bytes = Bytes::copy_from_slice(&set[start..end]);
        match compression::decode_batch(&mut bytes, CAP) {
            Ok(theirs) => {
                // kafka-protocol keeps headers in an IndexMap: duplicates collapse, last value wins.
                let ours: Vec<Owned> = ours
                    .into_iter()
                    .map(|mut o| {
                        let map: IndexMap<_, _> = o.headers.drain(..).collect();
                        o.headers = map.into_iter().collect();
                        o
                    })
                    .collect();
                let theirs: Vec<Owned> = theirs.records.iter().map(Owned::of_kafka).collect();
                assert_eq!(ours, theirs);
                compared += 1;
            }
            Err(e) => assert!(
                ours.iter().any(|o| o.headers.iter().any(|(k, _)| std::str::from_utf8(k).is_err())),
                "read here, refused by kafka-protocol: {e:#}"
            ),
        }
    }
    compared
}

// ---- what was encoded reads back -------------------------------------------------------------

#[test]
fn every_codec_reads_back_what_was_encoded() {
    let records = sample(1000);
    let expected: Vec<Owned> = records.iter().map(Owned::of_kafka).collect();
    for codec in CODECS {
        let set = encode(&records, codec);
        let mut iter = batches(&set);
        let batch = iter.next().unwrap().unwrap();
        assert!(iter.next().is_none());
        assert_eq!(batch.base_offset(), 1000);
        assert_eq!(batch.last_offset(), 1004);
        assert_eq!(batch.next_offset(), 1005);
        assert_eq!(batch.records_count(), 5);
        assert_eq!(batch.producer_id(), 42);
        assert_eq!(batch.compression(), codec);
        assert!(!batch.is_control() && !batch.is_transactional() && !batch.log_append_time());
        assert_eq!(read_all(&set).unwrap(), expected, "{codec:?}");
        // And as kafka-protocol's decoder reads the same bytes.
        let decoded = compression::decode_batch(&mut Bytes::from(set.clone()), CAP).unwrap();
        let theirs: Vec<Owned> = decoded.records.iter().map(Owned::of_kafka).collect();
        assert_eq!(theirs, expected, "{codec:?}");
        assert_eq!(walk(&set), 1);
    }
}

#[test]
fn headers_iterate_lazily_and_clone() {
    let set = encode(&sample(0), Compression::None);
    let batch = batches(&set).next().unwrap().unwrap();
    let mut scratch = Vec::new();
    let record = batch.records(&mut scratch, CAP).unwrap().nth(3).unwrap().unwrap();
    let mut headers = record.headers.clone();
    assert_eq!((headers.len(), headers.is_empty()), (3, false));
    assert_eq!(headers.next(), Some((&b"a"[..], Some(&b"1"[..]))));
    assert_eq!(headers.len(), 2);
    assert_eq!(headers.collect::<Vec<_>>(), vec![(&b"b"[..], None), (&b"c"[..], Some(&b"3"[..]))]);
    assert_eq!(record.headers.len(), 3, "a clone iterates on its own");
    let none = batch.records(&mut scratch, CAP).unwrap().nth(1).unwrap().unwrap();
    assert!(none.headers.is_empty());
}

#[test]
fn log_append_time_gives_every_record_the_max_timestamp() {
    for codec in [Compression::None, Compression::Gzip] {
        let mut set = encode(&sample(0), codec);
        set[ATTRIBUTES_AT + 1] |= 0x08;
        fix_crcs(&mut set);
        let batch = batches(&set).next().unwrap().unwrap();
        assert!(batch.log_append_time());
        let read = read_all(&set).unwrap();
        assert_eq!(read.len(), 5);
        assert!(read.iter().all(|r| r.timestamp == T0 + 1_000_000), "{read:?}");
    }
}

#[test]
fn several_batches_in_one_set_read_in_order() {
    let mut set = Vec::new();
    let mut expected = Vec::new();
    for (i, codec) in CODECS.into_iter().enumerate() {
        let records = sample(i as i64 * 5);
        set.extend(encode(&records, codec));
        expected.extend(records.iter().map(Owned::of_kafka));
    }
    let mut next = 0;
    for (batch, codec) in batches(&set).zip(CODECS) {
        let batch = batch.unwrap();
        assert_eq!((batch.base_offset(), batch.compression()), (next, codec));
        next = batch.next_offset();
    }
    assert_eq!(next, 25);
    let sizes: usize = batches(&set).map(|b| b.unwrap().encoded_len()).sum();
    assert_eq!(sizes, set.len());
    assert_eq!(read_all(&set).unwrap(), expected);
}

#[test]
fn a_trailing_partial_batch_ends_the_iteration_without_error() {
    let parts = [
        encode(&sample(0), Compression::None),
        encode(&sample(5), Compression::Zstd),
        encode(&sample(10), Compression::Gzip),
    ];
    let set = parts.concat();
    let whole = parts[0].len() + parts[1].len();
    for cut in whole..set.len() {
        let found: Vec<Batch> = batches(&set[..cut]).collect::<Result<_, _>>().unwrap();
        assert_eq!(found.len(), 2, "cut at {cut}");
        assert_eq!(found[1].next_offset(), 10);
        assert_eq!(found.iter().map(Batch::encoded_len).sum::<usize>(), whole);
        assert_eq!(read_all(&set[..cut]).unwrap().len(), 10);
    }
    // Every cut of the whole set: as many batches as fit, never an error.
    let ends = [parts[0].len(), whole, set.len()];
    for cut in 0..=set.len() {
        let found = batches(&set[..cut]).collect::<Result<Vec<_>, _>>().unwrap();
        assert_eq!(found.len(), ends.iter().filter(|&&end| end <= cut).count(), "cut at {cut}");
    }
}

// ---- corruption ------------------------------------------------------------------------------

#[test]
fn a_flipped_byte_in_a_batch_is_a_crc_mismatch() {
    for codec in CODECS {
        let set = encode(&sample(0), codec);
        for position in 0..set.len() {
            for mask in [0x01, 0x80, 0xff] {
                let mut flipped = set.clone();
                flipped[position] ^= mask;
                if position < CRC_AT {
                    // Offset, length, leader epoch and magic are outside the CRC.
                    let _ = walk(&flipped);
                    continue;
                }
                let mut iter = batches(&flipped);
                match iter.next() {
                    Some(Ok(batch)) => {
                        let err = batch.records(&mut Vec::new(), CAP).unwrap_err();
                        assert!(matches!(err, RecordsError::CrcMismatch { .. }), "{codec:?} at {position}: {err}");
                    }
                    // lastOffsetDelta or recordsCount made negative: refused before the CRC.
                    Some(Err(RecordsError::Corrupt { .. })) if (ATTRIBUTES_AT..61).contains(&position) => {}
                    other => panic!("{codec:?} at {position}: {other:?}"),
                }
                assert!(iter.next().is_none());
            }
        }
    }
}

#[test]
fn every_single_byte_mutation_with_the_crc_recomputed_never_panics() {
    let set = [
        encode(
            &[
                record(0, T0, Some(b"k"), Some(b"value"), &[("h", Some("x")), ("n", None)]),
                record(1, T0 + 300, None, Some(b"v"), &[]),
            ],
            Compression::None,
        ),
        encode(&[record(2, T0, Some(b"key"), None, &[("h", Some("y"))])], Compression::None),
    ]
    .concat();
    let mut compared = 0;
    for position in 0..set.len() {
        for value in 0..=255u8 {
            let mut mutated = set.clone();
            mutated[position] = value;
            fix_crcs(&mut mutated);
            compared += walk(&mutated);
        }
    }
    // Most mutations of a timestamp, key or value byte still read, and read as kafka-protocol's
    // decoder reads them.
    assert!(compared > set.len() * 256 / 4, "{compared}");
    // A compressed batch too: mutations of the compressed stream, and of its header.
    let gzip = encode(&sample(0), Compression::Gzip);
    for position in 0..gzip.len() {
        for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
            let mut mutated = gzip.clone();
            mutated[position] = value;
            fix_crcs(&mut mutated);
            let _ = walk(&mutated);
        }
    }
}

#[test]
fn truncated_records_are_corrupt() {
    let records = sample(0);
    let full = encode(&records, Compression::None);
    for keep in 61..full.len() {
        // The batch cut short but framed and checksummed as if whole.
        let mut cut = full[..keep].to_vec();
        cut[8..12].copy_from_slice(&((keep - 12) as i32).to_be_bytes());
        fix_crcs(&mut cut);
        let mut scratch = Vec::new();
        let batch = batches(&cut).next().unwrap().unwrap();
        let results: Vec<_> = batch.records(&mut scratch, CAP).unwrap().collect();
        let (last, whole) = results.split_last().unwrap();
        assert!(whole.iter().all(Result::is_ok));
        assert!(whole.len() < records.len());
        assert!(matches!(last, Err(RecordsError::Corrupt { .. })), "kept {keep}: {last:?}");
    }
}

#[test]
fn records_count_must_match_the_bytes() {
    let full = encode(&sample(0), Compression::None);
    let with_count = |count: i32| {
        let mut set = full.clone();
        set[57..61].copy_from_slice(&count.to_be_bytes());
        fix_crcs(&mut set);
        set
    };
    let collect = |set: &[u8]| -> Vec<Result<i64, String>> {
        let batch = batches(set).next().unwrap().unwrap();
        batch.records(&mut Vec::new(), CAP).unwrap().map(|r| r.map(|r| r.offset).map_err(|e| e.to_string())).collect()
    };
    let fewer = collect(&with_count(4));
    assert_eq!(fewer.len(), 5);
    assert!(fewer[..4].iter().all(Result::is_ok));
    assert!(fewer[4].as_ref().unwrap_err().contains("left over"), "{fewer:?}");
    let more = collect(&with_count(6));
    assert_eq!(more.len(), 6);
    assert!(more[..5].iter().all(Result::is_ok));
    assert!(more[5].as_ref().unwrap_err().contains("record 5 of 6"), "{more:?}");
    assert_eq!(collect(&with_count(0)).len(), 1);
    let huge = collect(&with_count(i32::MAX));
    assert_eq!(huge.len(), 6, "fails when the bytes run out, not after 2^31 records");
}

#[test]
fn a_record_length_must_match_its_content() {
    let body = record_body(0, Some(b"k"), Some(b"v"), &[("h", Some("x"))]);
    assert_eq!(read_all(&Raw::new(1, framed(&body)).bytes()).unwrap().len(), 1);
    // One byte longer than the content, the byte present.
    let mut longer = Vec::new();
    put_varlong(&mut longer, body.len() as i64 + 1);
    longer.extend(&body);
    longer.push(0);
    let reason = corrupt_reason(read_all(&Raw::new(1, longer).bytes()));
    assert!(reason.contains("longer than its content"), "{reason}");
    // One byte shorter: the last header value runs past the record.
    let mut shorter = Vec::new();
    put_varlong(&mut shorter, body.len() as i64 - 1);
    shorter.extend(&body);
    let reason = corrupt_reason(read_all(&Raw::new(1, shorter).bytes()));
    assert!(reason.contains("runs past the record"), "{reason}");
    // Longer than the batch.
    let mut past = Vec::new();
    put_varlong(&mut past, 1 << 30);
    past.extend(&body);
    assert!(corrupt_reason(read_all(&Raw::new(1, past).bytes())).contains("past the end of the batch"));
    let mut negative = Vec::new();
    put_varlong(&mut negative, -5);
    negative.extend(&body);
    assert!(corrupt_reason(read_all(&Raw::new(1, negative).bytes())).contains("negative record length"));
}

#[test]
fn hostile_record_fields_are_corrupt() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("negative key length", {
            let mut b = vec![0, 0, 0];
            put_varlong(&mut b, -2);
            b
        }),
        ("negative value length", {
            let mut b = vec![0, 0, 0, 1];
            put_varlong(&mut b, -7);
            b
        }),
        ("negative header count", {
            let mut b = vec![0, 0, 0, 1, 1];
            put_varlong(&mut b, -1);
            b
        }),
        ("negative header key length", {
            let mut b = vec![0, 0, 0, 1, 1];
            put_varlong(&mut b, 1);
            put_varlong(&mut b, -1);
            b.push(0);
            b
        }),
        ("negative header value length", {
            let mut b = vec![0, 0, 0, 1, 1];
            put_varlong(&mut b, 1);
            put_varlong(&mut b, 0);
            put_varlong(&mut b, -3);
            b
        }),
        // 2^31 - 1 headers in a few bytes: fails when they run out.
        ("header key runs past", {
            let mut b = vec![0, 0, 0, 1, 1];
            put_varlong(&mut b, i32::MAX.into());
            b.extend([0, 0, 0, 0, 0x10]);
            b
        }),
        ("varint longer than 5 bytes", vec![0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 1, 0]),
        ("varlong longer than 10 bytes", {
            let mut b = vec![0];
            b.extend([0x80; 10]);
            b.extend([0, 0, 1, 1, 0]);
            b
        }),
        ("ends before its attributes", vec![]),
        ("varint runs past the end", vec![0, 0, 0x80]),
    ];
    for (expected, body) in cases {
        let reason = corrupt_reason(read_all(&Raw::new(1, framed(&body)).bytes()));
        assert!(reason.contains(expected), "{expected}: {reason}");
    }
    // Longest legal varints (a non-minimal 5-byte key length of 1, a 10-byte timestamp delta).
    let mut body = vec![0];
    body.extend([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]);
    body.extend([0, 0x82, 0x80, 0x80, 0x80, 0x00, b'k', 1, 0]);
    let read = read_all(&Raw::new(1, framed(&body)).bytes()).unwrap();
    assert_eq!((read[0].key.as_deref(), read[0].value.as_deref()), (Some(&b"k"[..]), None));
}

#[test]
fn varints_decode_at_their_limits() {
    for value in [0, 1, -1, 63, -64, 64, i32::MAX.into(), i32::MIN.into()] {
        let mut bytes = Vec::new();
        put_varlong(&mut bytes, value);
        assert_eq!(Cursor::new(&bytes).varint(), Ok(value as i32), "{value}");
        assert_eq!(Cursor::new(&bytes).varlong(), Ok(value), "{value}");
    }
    for value in [i64::MAX, i64::MIN, i64::from(i32::MAX) + 1] {
        let mut bytes = Vec::new();
        put_varlong(&mut bytes, value);
        assert_eq!(Cursor::new(&bytes).varlong(), Ok(value), "{value}");
    }
}

#[test]
fn hostile_batch_headers_are_errors_and_end_the_iteration() {
    let body = framed(&record_body(0, Some(b"k"), Some(b"v"), &[]));
    let good = Raw::new(1, body.clone()).bytes();
    let first_error = |set: &[u8]| -> RecordsError {
        let mut iter = batches(set);
        let error = iter.next().unwrap().unwrap_err();
        assert!(iter.next().is_none(), "an item after an error");
        error
    };
    // batchLength below the v2 header, whatever comes after.
    let mut short = good.clone();
    short[8..12].copy_from_slice(&48i32.to_be_bytes());
    assert!(matches!(first_error(&short), RecordsError::Corrupt { offset: 100, .. }));
    short[8..12].copy_from_slice(&(-1i32).to_be_bytes());
    assert!(matches!(first_error(&short), RecordsError::Corrupt { .. }));
    // An old message set (magic 1) is named as such, short or not; so is an unknown magic.
    short[16] = 1;
    assert!(matches!(first_error(&short), RecordsError::UnsupportedMagic { magic: 1, .. }));
    for magic in [0, 1, 3, -1] {
        let raw = Raw { magic, ..Raw::new(1, body.clone()) };
        assert!(matches!(first_error(&raw.bytes()), RecordsError::UnsupportedMagic { magic: m, .. } if m == magic));
    }
    let negative_count = Raw::new(-1, body.clone()).bytes();
    assert!(first_error(&negative_count).to_string().contains("negative records count"));
    let negative_delta = Raw { last_offset_delta: -1, ..Raw::new(1, body.clone()) };
    assert!(first_error(&negative_delta.bytes()).to_string().contains("negative lastOffsetDelta"));
    let overflow = Raw { base_offset: i64::MAX - 3, last_offset_delta: 3, ..Raw::new(1, body.clone()) };
    assert!(first_error(&overflow.bytes()).to_string().contains("overflows"));
    // The largest base offset that still has a next offset; a record past it is refused.
    let edge = Raw { base_offset: i64::MAX - 1, last_offset_delta: 0, ..Raw::new(1, body.clone()) };
    let edge_bytes = edge.bytes();
    assert_eq!(batches(&edge_bytes).next().unwrap().unwrap().next_offset(), i64::MAX);
    assert_eq!(read_all(&edge_bytes).unwrap()[0].offset, i64::MAX - 1);
    let past = Raw {
        base_offset: i64::MAX - 1,
        last_offset_delta: 0,
        ..Raw::new(1, framed(&record_body(5, None, None, &[])))
    };
    assert!(corrupt_reason(read_all(&past.bytes())).contains("outside the batch"));
    // Record offsets stay within [base_offset, last_offset].
    for delta in [-1, 3] {
        let outside = Raw { last_offset_delta: 2, ..Raw::new(1, framed(&record_body(delta, None, None, &[]))) };
        assert!(corrupt_reason(read_all(&outside.bytes())).contains("outside the batch"), "{delta}");
    }
    let inside = Raw { last_offset_delta: 2, ..Raw::new(1, framed(&record_body(2, None, None, &[]))) };
    assert_eq!(read_all(&inside.bytes()).unwrap()[0].offset, 102);
    // An unknown codec reads as None from compression() and is refused by records().
    let unknown = Raw { attributes: 6, ..Raw::new(1, body.clone()) };
    let unknown = unknown.bytes();
    let batch = batches(&unknown).next().unwrap().unwrap();
    assert_eq!(batch.compression(), Compression::None);
    assert!(matches!(batch.records(&mut Vec::new(), CAP), Err(RecordsError::UnknownCompression { codec: 6, .. })));
    // Nothing, a few bytes, and a batch announcing 2 GiB: the end of the set, not errors.
    assert!(batches(&[]).next().is_none());
    assert!(batches(&good[..11]).next().is_none());
    let mut huge = good.clone();
    huge[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    assert!(batches(&huge).next().is_none());
    // After a good batch, a bad one: the good one first.
    let set = [good.clone(), short].concat();
    let mut iter = batches(&set);
    assert!(iter.next().unwrap().is_ok());
    assert!(iter.next().unwrap().is_err());
    assert!(iter.next().is_none());
}

// ---- decompression, control batches ----------------------------------------------------------

#[test]
fn the_decompression_cap_is_enforced() {
    let value = vec![b'x'; 64 << 10];
    let records: Vec<KafkaRecord> = (0..4).map(|i| record(i, T0, None, Some(&value), &[])).collect();
    let mut scratch = Vec::new();
    for codec in CODECS.into_iter().skip(1) {
        let set = encode(&records, codec);
        assert!(set.len() < 64 << 10, "{codec:?} compresses");
        let batch = batches(&set).next().unwrap().unwrap();
        let inflated = batch.records(&mut scratch, CAP).unwrap().count();
        assert_eq!(inflated, 4);
        let size = scratch.len();
        assert!(size > 4 * (64 << 10));
        assert_eq!(batch.records(&mut scratch, size).unwrap().count(), 4, "{codec:?}: exactly at the cap");
        for cap in [size - 1, 1 << 10, 0] {
            match batch.records(&mut scratch, cap) {
                Err(RecordsError::Decompress { offset: 0, source: DecompressError::TooLarge { cap: c } }) => {
                    assert_eq!(c, cap)
                }
                Err(other) => panic!("{codec:?} cap {cap}: {other}"),
                Ok(_) => panic!("{codec:?} cap {cap}: read past the cap"),
            }
        }
        // The scratch buffer is reused: the next read starts from a cleared buffer.
        assert_eq!(batch.records(&mut scratch, CAP).unwrap().count(), 4);
        assert_eq!(scratch.len(), size);
    }
    // Uncompressed records are read in place: no cap applies, scratch is untouched.
    let set = encode(&records, Compression::None);
    let mut scratch = vec![1, 2, 3];
    assert_eq!(batches(&set).next().unwrap().unwrap().records(&mut scratch, 0).unwrap().count(), 4);
    assert_eq!(scratch, [1, 2, 3]);
}

#[test]
fn a_corrupt_compressed_stream_is_a_decompress_error() {
    for codec in CODECS.into_iter().skip(1) {
        let mut set = encode(&sample(0), codec);
        let len = set.len();
        set[61..len].fill(0x5a);
        fix_crcs(&mut set);
        let batch = batches(&set).next().unwrap().unwrap();
        let err = batch.records(&mut Vec::new(), CAP).unwrap_err();
        assert!(matches!(err, RecordsError::Decompress { .. } | RecordsError::Corrupt { .. }), "{codec:?}: {err}");
    }
}

#[test]
fn a_control_batch_is_reported() {
    let marker = KafkaRecord {
        transactional: true,
        control: true,
        producer_id: 9000,
        producer_epoch: 1,
        sequence: -1,
        offset: 77,
        // Key: version 0, type 1 (commit); value: version 0, coordinator epoch 5.
        key: Some(Bytes::from_static(&[0, 0, 0, 1])),
        value: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 5])),
        headers: Default::default(),
        ..record(77, T0, None, None, &[])
    };
    let data =
        KafkaRecord { transactional: true, producer_id: 9000, producer_epoch: 1, sequence: 0, ..sample(70).remove(0) };
    let set = [encode(&[data], Compression::None), encode(&[marker], Compression::None)].concat();
    let found: Vec<Batch> = batches(&set).collect::<Result<_, _>>().unwrap();
    assert_eq!(found.len(), 2);
    assert!(found[0].is_transactional() && !found[0].is_control());
    assert!(found[1].is_transactional() && found[1].is_control());
    assert_eq!((found[1].producer_id(), found[1].base_offset(), found[1].next_offset()), (9000, 77, 78));
    let mut scratch = Vec::new();
    let marker = found[1].records(&mut scratch, CAP).unwrap().next().unwrap().unwrap();
    assert_eq!(marker.key, Some(&[0, 0, 0, 1][..]));
}
