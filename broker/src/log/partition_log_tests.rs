//! Tests of [`PartitionLog`] through its public API (kept apart to keep files short).
#![allow(clippy::unwrap_used)]

use super::batch::test_batches::{batch_with, simple, Producer};
use super::batch::{validate, HEADER_SIZE};
use super::{LogConfig, LogError, PartitionLog};
use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use std::fs::OpenOptions;
use std::path::Path;

use super::test_support::{config, open};

/// (offset, timestamp, value) of every record in `data`.
fn records(data: &Bytes) -> Vec<(i64, i64, String)> {
    let mut buf = data.clone();
    RecordBatchDecoder::decode_all(&mut buf)
        .unwrap()
        .into_iter()
        .flat_map(|set| set.records)
        .map(|r| (r.offset, r.timestamp, String::from_utf8(r.value.unwrap().to_vec()).unwrap()))
        .collect()
}

fn offsets(data: &Bytes) -> Vec<i64> {
    records(data).into_iter().map(|r| r.0).collect()
}

fn append(log: &mut PartitionLog, mut batch: Vec<u8>, now_ms: i64) -> super::AppendInfo {
    log.append(&mut batch, 3, now_ms).unwrap()
}

fn idempotent(producer: i64, epoch: i16, sequence: i32, count: usize) -> Vec<u8> {
    let producer = Producer { id: producer, epoch, sequence };
    batch_with(&vec![1_000; count], "p", Compression::None, Some(producer))
}

fn segment_file(dir: &Path, base: i64, ext: &str) -> std::path::PathBuf {
    dir.join(format!("{base:020}.{ext}"))
}

#[test]
fn append_assigns_offsets_and_reads_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    let first = append(&mut log, simple(3, 10), 1);
    let second = append(&mut log, batch_with(&[20, 21], "b", Compression::Lz4, None), 2);
    assert_eq!((first.base_offset, first.last_offset, first.duplicate), (0, 2, false));
    assert_eq!((second.base_offset, second.last_offset), (3, 4));
    assert_eq!(first.log_append_time_ms, -1);
    assert_eq!(log.log_end_offset(), 5);

    let read = log.read(0, 1 << 20, log.log_end_offset(), false).unwrap();
    assert_eq!(read.high_offset, 5);
    assert_eq!(offsets(&read.data), vec![0, 1, 2, 3, 4]);
    assert_eq!(records(&read.data)[3], (3, 20, "b-0".to_string()));
    let header = validate(&read.data).unwrap();
    assert_eq!(header.partition_leader_epoch, 3);
    // The end of the log reads as empty; past it is out of range.
    assert!(log.read(5, 1 << 20, 5, false).unwrap().data.is_empty());
    assert!(matches!(log.read(6, 100, 6, false), Err(LogError::OffsetOutOfRange { requested: 6, start: 0, end: 5 })));
}

#[test]
fn read_starts_at_the_containing_batch_and_honours_limits() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig { index_interval_bytes: 0, ..config() });
    let mut sizes = Vec::new();
    for i in 0..10 {
        let batch = simple(4, 100 + i);
        sizes.push(batch.len());
        append(&mut log, batch, 0);
    }
    // Offset 13 is inside the batch 12..=15.
    let read = log.read(13, 1 << 20, 40, false).unwrap();
    assert_eq!(offsets(&read.data).first(), Some(&12));
    assert_eq!(read.data.len(), sizes[3..].iter().sum::<usize>());

    // max_bytes: two and a half batches give two whole ones.
    let read = log.read(0, sizes[0] * 2 + sizes[0] / 2, 40, false).unwrap();
    assert_eq!(offsets(&read.data), (0..8).collect::<Vec<_>>());
    // A first batch larger than max_bytes: nothing, unless min_one_batch (KIP-74).
    assert!(log.read(8, 10, 40, false).unwrap().data.is_empty());
    let read = log.read(8, 10, 40, true).unwrap();
    assert_eq!(offsets(&read.data), vec![8, 9, 10, 11]);
    // max_offset (the high watermark) is exclusive and cuts at batch boundaries.
    let read = log.read(0, 1 << 20, 8, false).unwrap();
    assert_eq!(offsets(&read.data), (0..8).collect::<Vec<_>>());
    assert!(log.read(8, 1 << 20, 8, true).unwrap().data.is_empty());
}

#[test]
fn rolls_by_size_and_age_and_reads_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let batch_len = simple(5, 0).len() as u64;
    let mut log = open(dir.path(), LogConfig { segment_bytes: batch_len * 3, segment_ms: 1_000, ..config() });
    for i in 0..7 {
        append(&mut log, simple(5, i), 10_000);
    }
    // 3 batches fit in a segment.
    assert_eq!(log.segment_count(), 3);
    assert_eq!(log.size_bytes(), batch_len * 7);
    assert!(segment_file(dir.path(), 15, "log").exists());
    assert!(segment_file(dir.path(), 30, "log").exists());
    // Rolled segments have trimmed indexes.
    assert!(std::fs::metadata(segment_file(dir.path(), 0, "index")).unwrap().len() < 4096);

    // Age: the active segment started at 10_000; 1_000 ms later it is not older than segment_ms.
    append(&mut log, simple(1, 0), 11_000);
    assert_eq!(log.segment_count(), 3);
    append(&mut log, simple(1, 0), 11_001);
    assert_eq!(log.segment_count(), 4);
    assert!(segment_file(dir.path(), 36, "log").exists());

    let read = log.read(7, 1 << 20, log.log_end_offset(), false).unwrap();
    assert_eq!(offsets(&read.data), (5..37).collect::<Vec<_>>());
    // Offsets in the middle of a later segment are found too.
    let read = log.read(33, 1 << 20, log.log_end_offset(), false).unwrap();
    assert_eq!(offsets(&read.data).first(), Some(&30));
}

#[test]
fn reopen_after_close_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let batch_len = simple(2, 0).len() as u64;
    let mut log = open(dir.path(), LogConfig { segment_bytes: batch_len * 2, index_interval_bytes: 0, ..config() });
    for i in 0..5 {
        append(&mut log, simple(2, 1_000 + i), 0);
    }
    let before = log.read(0, 1 << 20, 10, false).unwrap();
    assert_eq!(log.max_timestamp(), Some((1_004, 8)));
    log.close().unwrap();

    let (log, report) = PartitionLog::open(dir.path(), config()).unwrap();
    assert_eq!((report.segments, report.truncated_bytes, report.rebuilt_indexes), (3, 0, 0));
    assert_eq!(report.truncated_at_offset, None);
    assert_eq!((log.log_start_offset(), log.log_end_offset(), log.segment_count()), (0, 10, 3));
    assert_eq!(log.read(0, 1 << 20, 10, false).unwrap(), before);
    assert_eq!(log.max_timestamp(), Some((1_004, 8)));
    assert_eq!(log.flushed_offset(), 10);
}

#[test]
fn torn_tail_is_cut_back_to_the_valid_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    for i in 0..4 {
        append(&mut log, simple(3, i), 0);
    }
    let whole = log.read(0, 1 << 20, 12, false).unwrap().data;
    drop(log); // crash: no close
    let path = segment_file(dir.path(), 0, "log");
    let len = std::fs::metadata(&path).unwrap().len();
    let last_batch = (whole.len() / 4) as u64;
    OpenOptions::new().write(true).open(&path).unwrap().set_len(len - last_batch / 2).unwrap();

    let (mut log, report) = PartitionLog::open(dir.path(), config()).unwrap();
    assert_eq!(report.truncated_bytes, last_batch - last_batch / 2);
    assert_eq!(report.truncated_at_offset, Some(9));
    assert!(report.reason.unwrap().contains("incomplete batch"));
    assert_eq!(log.log_end_offset(), 9);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), last_batch * 3);
    assert_eq!(log.read(0, 1 << 20, 9, false).unwrap().data, whole.slice(..3 * last_batch as usize));
    // The log goes on from the cut.
    assert_eq!(append(&mut log, simple(1, 0), 0).base_offset, 9);
}

#[test]
fn garbage_tail_is_cut_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    let batch_len = simple(3, 0).len();
    for i in 0..3 {
        append(&mut log, simple(3, i), 0);
    }
    drop(log);
    let path = segment_file(dir.path(), 0, "log");
    let mut bytes = std::fs::read(&path).unwrap();
    // Overwrite the records of the last batch (its header stays plausible, so the CRC catches it)
    // and add trailing junk.
    for b in &mut bytes[2 * batch_len + HEADER_SIZE..] {
        *b = 0xAB;
    }
    bytes.extend([0xCD; 100]);
    std::fs::write(&path, &bytes).unwrap();

    let (log, report) = PartitionLog::open(dir.path(), config()).unwrap();
    assert_eq!(report.truncated_bytes, (batch_len + 100) as u64);
    assert_eq!(report.truncated_at_offset, Some(6));
    assert!(report.reason.unwrap().contains("CRC mismatch"));
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(offsets(&log.read(0, 1 << 20, 6, false).unwrap().data), (0..6).collect::<Vec<_>>());
}

#[test]
fn bad_or_missing_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let batch_len = simple(2, 0).len() as u64;
    let cfg = LogConfig { segment_bytes: batch_len * 4, index_interval_bytes: 0, ..config() };
    let mut log = open(dir.path(), cfg.clone());
    for i in 0..10 {
        append(&mut log, simple(2, 500 + i), 0);
    }
    log.close().unwrap();
    std::fs::remove_file(segment_file(dir.path(), 0, "index")).unwrap();
    std::fs::write(segment_file(dir.path(), 8, "timeindex"), [0x7f; 30]).unwrap();
    std::fs::write(segment_file(dir.path(), 16, "index"), [0x11; 16]).unwrap();

    let (log, report) = PartitionLog::open(dir.path(), cfg).unwrap();
    // Segments 0 and 8 are sealed and counted; the tail (16) is rebuilt on every open.
    assert_eq!(report.rebuilt_indexes, 2);
    assert_eq!(std::fs::metadata(segment_file(dir.path(), 8, "timeindex")).unwrap().len() % 12, 0);
    assert!(segment_file(dir.path(), 0, "index").exists());
    let read = log.read(13, 1 << 20, 20, false).unwrap();
    assert_eq!(offsets(&read.data).first(), Some(&12));
    assert_eq!(log.offset_for_timestamp(505).unwrap(), Some((10, 505)));
    assert_eq!(log.max_timestamp(), Some((509, 18)));
}

#[test]
fn retention_by_bytes_and_time_deletes_oldest_segments() {
    let dir = tempfile::tempdir().unwrap();
    let batch_len = simple(2, 0).len() as u64;
    let mut log = open(dir.path(), LogConfig { segment_bytes: batch_len * 2, ..config() });
    for i in 0..8 {
        append(&mut log, simple(2, 1_000 * i), 0);
    }
    assert_eq!(log.segment_count(), 4);
    // Keep at least 5 batches' worth: only the first segment (2 batches) can go.
    log.set_config(LogConfig { retention_bytes: Some(batch_len * 5), ..log.config().clone() });
    assert_eq!(log.apply_retention(0).unwrap(), 1);
    assert_eq!((log.log_start_offset(), log.segment_count()), (4, 3));
    assert!(!segment_file(dir.path(), 0, "log").exists());
    assert!(matches!(log.read(3, 100, 16, false), Err(LogError::OffsetOutOfRange { start: 4, .. })));
    assert_eq!(offsets(&log.read(4, 1 << 20, 16, false).unwrap().data).first(), Some(&4));

    // Time: segment 4 holds timestamps up to 3_000, segment 8 up to 5_000.
    log.set_config(LogConfig { retention_bytes: None, retention_ms: Some(1_000), ..log.config().clone() });
    assert_eq!(log.apply_retention(4_500).unwrap(), 1);
    assert_eq!(log.log_start_offset(), 8);
    assert_eq!(log.apply_retention(4_500).unwrap(), 0);
    // Everything expired: the active segment is rolled and deleted, the offsets stay.
    assert_eq!(log.apply_retention(100_000).unwrap(), 2);
    assert_eq!((log.log_start_offset(), log.log_end_offset(), log.segment_count()), (16, 16, 1));
    assert_eq!(log.size_bytes(), 0);
    assert!(log.read(16, 100, 16, false).unwrap().data.is_empty());
    assert_eq!(append(&mut log, simple(1, 0), 0).base_offset, 16);
    drop(log);
    let log = open(dir.path(), config());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (16, 17));
}

#[test]
fn offset_for_timestamp_is_exact_inside_compressed_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig { index_interval_bytes: 0, ..config() });
    append(&mut log, batch_with(&[100, 110, 120], "a", Compression::None, None), 0);
    append(&mut log, batch_with(&[200, 190, 230, 240], "b", Compression::Lz4, None), 0);
    append(&mut log, batch_with(&[300, 310, 320], "c", Compression::Zstd, None), 0);
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 100)));
    assert_eq!(log.offset_for_timestamp(111).unwrap(), Some((2, 120)));
    // 205: records 3 (200) and 4 (190) are smaller, 5 (230) is the first >= 205.
    assert_eq!(log.offset_for_timestamp(205).unwrap(), Some((5, 230)));
    assert_eq!(log.offset_for_timestamp(195).unwrap(), Some((3, 200)));
    assert_eq!(log.offset_for_timestamp(240).unwrap(), Some((6, 240)));
    assert_eq!(log.offset_for_timestamp(305).unwrap(), Some((8, 310)));
    assert_eq!(log.offset_for_timestamp(321).unwrap(), None);
    assert_eq!(log.max_timestamp(), Some((320, 9)));
}

#[test]
fn idempotent_duplicates_are_acknowledged_not_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    let first = append(&mut log, idempotent(42, 0, 0, 3), 0);
    let second = append(&mut log, idempotent(42, 0, 3, 2), 0);
    let size = log.size_bytes();
    let retry = append(&mut log, idempotent(42, 0, 0, 3), 0);
    assert!(retry.duplicate);
    assert_eq!((retry.base_offset, retry.last_offset), (first.base_offset, first.last_offset));
    assert_eq!((log.size_bytes(), log.log_end_offset()), (size, 5));
    assert_eq!(append(&mut log, idempotent(42, 0, 3, 2), 0).base_offset, second.base_offset);

    let mut gap = idempotent(42, 0, 7, 1);
    assert!(matches!(log.append(&mut gap, 0, 0), Err(LogError::OutOfOrderSequence { expected: 5, received: 7, .. })));
    let mut unknown = idempotent(43, 0, 4, 1);
    assert!(matches!(log.append(&mut unknown, 0, 0), Err(LogError::UnknownProducerId { .. })));
    append(&mut log, idempotent(42, 1, 0, 1), 0);
    let mut zombie = idempotent(42, 0, 5, 1);
    assert!(matches!(log.append(&mut zombie, 0, 0), Err(LogError::InvalidProducerEpoch { current: 1, .. })));
    assert_eq!(log.log_end_offset(), 6);
}

#[test]
fn duplicates_are_still_detected_after_close_and_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let batch_len = idempotent(1, 0, 0, 2).len() as u64;
    let cfg = LogConfig { segment_bytes: batch_len * 2, ..config() };
    let mut log = open(dir.path(), cfg.clone());
    for i in 0..5 {
        append(&mut log, idempotent(1, 0, 2 * i, 2), 0);
    }
    log.close().unwrap();
    let mut log = open(dir.path(), cfg.clone());
    let retry = append(&mut log, idempotent(1, 0, 8, 2), 0);
    assert!(retry.duplicate);
    assert_eq!(retry.base_offset, 8);

    // One batch fills segment 8, the next rolls (snapshot at 12) and lands after the snapshot;
    // then a crash.
    append(&mut log, idempotent(1, 0, 10, 2), 0);
    append(&mut log, idempotent(1, 0, 12, 2), 0);
    assert!(segment_file(dir.path(), 12, "snapshot").exists());
    drop(log);
    let (mut log, report) = PartitionLog::open(dir.path(), cfg.clone()).unwrap();
    assert_eq!(report.truncated_bytes, 0);
    let retry = append(&mut log, idempotent(1, 0, 12, 2), 0);
    assert!(retry.duplicate);
    assert_eq!(retry.base_offset, 12);
    let retry = append(&mut log, idempotent(1, 0, 10, 2), 0);
    assert_eq!((retry.duplicate, retry.base_offset), (true, 10));
    assert!(matches!(log.append(&mut idempotent(1, 0, 16, 2), 0, 0), Err(LogError::OutOfOrderSequence { .. })));

    // Without any snapshot, the state is replayed from the log start.
    drop(log);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "snapshot") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let mut log = open(dir.path(), cfg);
    assert!(append(&mut log, idempotent(1, 0, 12, 2), 0).duplicate);
    assert_eq!(append(&mut log, idempotent(1, 0, 14, 2), 0).base_offset, 14);
}

#[test]
fn truncate_to_and_advance_log_start_offset() {
    let dir = tempfile::tempdir().unwrap();
    let batch_len = simple(2, 0).len() as u64;
    let mut log = open(dir.path(), LogConfig { segment_bytes: batch_len * 2, ..config() });
    for i in 0..6 {
        append(&mut log, simple(2, i), 0);
    }
    assert_eq!(log.segment_count(), 3);
    // Offset 5 is inside batch 4..=5: the log ends at 4, the last segment is gone.
    log.truncate_to(5).unwrap();
    assert_eq!((log.log_end_offset(), log.segment_count()), (4, 2));
    assert!(!segment_file(dir.path(), 8, "log").exists());
    assert_eq!(append(&mut log, simple(1, 0), 0).base_offset, 4);
    assert_eq!(offsets(&log.read(0, 1 << 20, 10, false).unwrap().data), (0..5).collect::<Vec<_>>());

    log.advance_log_start_offset(5).unwrap();
    assert_eq!((log.log_start_offset(), log.segment_count()), (5, 1));
    assert!(matches!(log.read(4, 100, 10, false), Err(LogError::OffsetOutOfRange { .. })));
    assert!(log.advance_log_start_offset(99).is_err());
}

#[test]
fn flush_handle_covers_the_log_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    append(&mut log, simple(2, 0), 0);
    let (file, covered) = log.flush_handle().unwrap();
    assert_eq!((covered, log.flushed_offset()), (2, 0));
    file.sync_data().unwrap();
    log.mark_flushed(covered);
    assert_eq!(log.flushed_offset(), 2);
    log.mark_flushed(100);
    assert_eq!(log.flushed_offset(), 2, "never beyond the log end");
}
