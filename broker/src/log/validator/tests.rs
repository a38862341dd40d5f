#![allow(clippy::unwrap_used)]

use super::*;
use crate::log::batch::test_batches::{batch_with, control_marker, keyed};
use crate::log::batch::{rewrite_header, validate, BatchHeader, LOG_OVERHEAD, MAGIC_V2};
use std::io::Write;

const NOW: i64 = 1_700_000_000_000;

fn config() -> ValidationConfig {
    ValidationConfig {
        compacted: false,
        max_decompressed_bytes: 1 << 20,
        now_ms: NOW,
        timestamp_before_max_ms: None,
        timestamp_after_max_ms: Some(3_600_000),
    }
}

fn check(batch: &[u8], config: &ValidationConfig) -> Result<Validated, ValidationError> {
    let header = validate(batch).unwrap();
    validate_records(batch, &header, config)
}

/// A batch whose header claims `records_count` records over `payload`, with a valid CRC.
fn craft(payload: &[u8], records_count: i32, attributes: i16) -> Vec<u8> {
    let header = BatchHeader {
        base_offset: 0,
        batch_length: (HEADER_SIZE - LOG_OVERHEAD + payload.len()) as i32,
        partition_leader_epoch: -1,
        magic: MAGIC_V2,
        crc: 0,
        attributes,
        last_offset_delta: records_count - 1,
        base_timestamp: NOW,
        max_timestamp: NOW,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        records_count,
    };
    let mut batch = vec![0u8; HEADER_SIZE];
    batch.extend_from_slice(payload);
    rewrite_header(&mut batch, &header).unwrap();
    batch
}

fn zigzag(v: i64) -> Vec<u8> {
    let mut raw = ((v << 1) ^ (v >> 63)) as u64;
    let mut out = Vec::new();
    loop {
        let byte = (raw & 0x7f) as u8;
        raw >>= 7;
        if raw == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// One record's bytes, length included.
fn record(timestamp_delta: i64, offset_delta: i64, key: Option<&[u8]>, headers: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut body = vec![0u8];
    body.extend(zigzag(timestamp_delta));
    body.extend(zigzag(offset_delta));
    match key {
        Some(key) => {
            body.extend(zigzag(key.len() as i64));
            body.extend_from_slice(key);
        }
        None => body.extend(zigzag(-1)),
    }
    body.extend(zigzag(1));
    body.push(b'v');
    body.extend(zigzag(headers.len() as i64));
    for (k, v) in headers {
        body.extend(zigzag(k.len() as i64));
        body.extend_from_slice(k);
        body.extend(zigzag(v.len() as i64));
        body.extend_from_slice(v);
    }
    let mut out = zigzag(body.len() as i64);
    out.extend(body);
    out
}

#[test]
fn batches_from_the_encoder_pass_for_every_codec() {
    for compression in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd]
    {
        let batch = batch_with(&[NOW, NOW + 5, NOW - 3], "x", compression, None);
        let validated = check(&batch, &config()).unwrap();
        assert_eq!(validated.max_timestamp, NOW + 5, "{compression:?}");
    }
    let batch = craft(&[record(0, 0, Some(b"k"), &[(b"h", b"v")]), record(7, 1, None, &[])].concat(), 2, 0);
    assert_eq!(check(&batch, &config()).unwrap().max_timestamp, NOW + 7);
}

#[test]
fn a_header_claiming_2_pow_31_records_over_no_bytes_is_corrupt() {
    // Finding 3: 61 bytes, recordsCount = lastOffsetDelta + 1 = 2^31 - 1, valid CRC.
    let batch = craft(&[], i32::MAX, 0);
    assert_eq!(batch.len(), HEADER_SIZE);
    let err = check(&batch, &config()).unwrap_err();
    assert_eq!(err.error_code(), ResponseError::CorruptMessage, "{err}");
    assert!(err.to_string().contains("ends before this record"), "{err}");
    // The same, compressed: the payload is empty, so the stream ends at once.
    let err = check(&craft(&[], i32::MAX, 4), &config()).unwrap_err();
    assert_eq!(err.error_code(), ResponseError::CorruptMessage, "{err}");
}

#[test]
fn random_bytes_behind_a_valid_crc_are_corrupt() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..200 {
        let payload: Vec<u8> = (0..200)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let err = check(&craft(&payload, 3, 0), &config()).unwrap_err();
        assert!(
            matches!(err.error_code(), ResponseError::CorruptMessage | ResponseError::InvalidRecord),
            "round {round}: {err}"
        );
    }
}

#[test]
fn structure_errors_name_the_record() {
    let good = record(0, 0, Some(b"k"), &[]);
    // Trailing bytes after the last record.
    let err = check(&craft(&[good.clone(), vec![1, 2, 3]].concat(), 1, 0), &config()).unwrap_err();
    assert!(err.to_string().contains("3 bytes follow the last"), "{err}");
    // A record length beyond the batch.
    let mut long = zigzag(1000);
    long.extend(&good[1..]);
    let err = check(&craft(&long, 1, 0), &config()).unwrap_err();
    assert!(err.to_string().contains("record 0 of 1"), "{err}");
    // A header count the record cannot hold.
    let mut body = vec![0u8, 0, 0];
    body.extend(zigzag(-1));
    body.extend(zigzag(-1));
    body.extend(zigzag(i32::MAX as i64));
    let mut bad = zigzag(body.len() as i64);
    bad.extend(body);
    let err = check(&craft(&bad, 1, 0), &config()).unwrap_err();
    assert!(err.to_string().contains("header count"), "{err}");
    // A non-UTF-8 header key.
    let err = check(&craft(&record(0, 0, None, &[(&[0xff, 0xfe], b"v")]), 1, 0), &config()).unwrap_err();
    assert!(err.to_string().contains("not UTF-8"), "{err}");
    // A 6-byte varint.
    let err = check(&craft(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01], 1, 0), &config()).unwrap_err();
    assert_eq!(err.error_code(), ResponseError::CorruptMessage, "{err}");
}

#[test]
fn rule_violations_are_listed_per_record() {
    // Offset deltas 0, 5, 2: record 1 is refused.
    let batch = craft(&[record(0, 0, None, &[]), record(0, 5, None, &[]), record(0, 2, None, &[])].concat(), 3, 0);
    let err = check(&batch, &config()).unwrap_err();
    assert_eq!(err.error_code(), ResponseError::InvalidRecord);
    assert_eq!(err.record_errors().len(), 1);
    assert_eq!(err.record_errors()[0].batch_index, 1);

    // Keyless records on a compacted topic: records 0 and 2.
    let batch =
        keyed(&[(None, Some("a"), NOW), (Some("k"), Some("b"), NOW), (None, Some("c"), NOW)], Compression::Lz4, None);
    let compacted = ValidationConfig { compacted: true, ..config() };
    let err = check(&batch, &compacted).unwrap_err();
    assert_eq!(err.error_code(), ResponseError::InvalidRecord);
    let indexes: Vec<i32> = err.record_errors().iter().map(|e| e.batch_index).collect();
    assert_eq!(indexes, vec![0, 2]);
    assert!(err.to_string().contains("2 of 3 records refused"), "{err}");
    check(&batch, &config()).unwrap();
}

#[test]
fn timestamps_are_bounded_by_the_topic_settings() {
    let two_hours = 2 * 3_600_000;
    let batch = batch_with(&[NOW, NOW + two_hours], "t", Compression::None, None);
    let err = check(&batch, &config()).unwrap_err();
    assert_eq!(err.error_code(), ResponseError::InvalidTimestamp);
    assert_eq!(err.record_errors()[0].batch_index, 1);
    assert!(err.record_errors()[0].message.contains("message.timestamp.after.max.ms"));
    let unlimited = ValidationConfig { timestamp_after_max_ms: None, ..config() };
    check(&batch, &unlimited).unwrap();

    let old = batch_with(&[NOW - two_hours], "t", Compression::Zstd, None);
    check(&old, &config()).unwrap();
    let strict = ValidationConfig { timestamp_before_max_ms: Some(3_600_000), ..config() };
    assert_eq!(check(&old, &strict).unwrap_err().error_code(), ResponseError::InvalidTimestamp);
}

#[test]
fn a_decompression_bomb_stops_at_the_cap() {
    // Finding 4: gzip of zeros claiming one record.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..16 {
        encoder.write_all(&zeros).unwrap();
    }
    let bomb = encoder.finish().unwrap();
    let err = check(&craft(&bomb, 1, 1), &config()).unwrap_err();
    // The zeros parse as a run of empty records until the cap stops the stream, or as a
    // malformed one; either way nothing past the cap is inflated.
    assert!(matches!(err.error_code(), ResponseError::MessageTooLarge | ResponseError::CorruptMessage), "{err}");

    // A bomb of one huge record: its length is checked against the cap before it is read.
    let mut body = vec![0u8; 4 << 20];
    body[0] = 0;
    let mut payload = zigzag(body.len() as i64);
    payload.extend(&body);
    let compressed = zstd::encode_all(&payload[..], 3).unwrap();
    let err = check(&craft(&compressed, 1, 4), &config()).unwrap_err();
    assert!(err.to_string().contains("larger than the whole batch"), "{err}");
    let roomy = ValidationConfig { max_decompressed_bytes: 8 << 20, ..config() };
    assert!(check(&craft(&compressed, 1, 4), &roomy).is_err(), "a record of zeros is not a valid record");
}

#[test]
fn clients_cannot_write_control_batches() {
    let marker = control_marker(5, 0, true, NOW);
    let err = check(&marker, &config()).unwrap_err();
    assert_eq!(err.error_code(), ResponseError::InvalidRecord);
}
