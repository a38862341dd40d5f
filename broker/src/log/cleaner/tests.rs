//! Tests of [`PartitionLog::compact`] through the public API, plus simulated crashes.
#![allow(clippy::unwrap_used)]

use super::{crash_at, SwapStep};
use crate::log::batch::test_batches::{control_marker, keyed, simple, Producer};
use crate::log::batch::{rewrite_header, BatchHeader};
use crate::log::{CompactionConfig, CompactionReport, LogConfig, LogError, PartitionLog};
use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder, TimestampType};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

type Entry<'a> = (Option<&'a str>, Option<&'a str>, i64);

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 20,
        segment_ms: 1_000,
        retention_ms: None,
        retention_bytes: None,
        index_interval_bytes: 0,
        max_index_bytes: 4096,
        max_decompressed_bytes: 1 << 20,
        producer_id_expiration_ms: 1 << 40,
    }
}

fn kv<'a>(key: &'a str, value: &'a str, ts: i64) -> Entry<'a> {
    (Some(key), Some(value), ts)
}

fn tombstone(key: &str, ts: i64) -> Entry<'_> {
    (Some(key), None, ts)
}

const NO_LAG: CompactionConfig = CompactionConfig { delete_retention_ms: 1 << 40, min_compaction_lag_ms: 0 };

/// A log written with an append clock: [`TestLog::roll`] makes the next append start a segment.
struct TestLog {
    log: PartitionLog,
    now: i64,
}

impl TestLog {
    fn open(dir: &Path) -> Self {
        TestLog { log: PartitionLog::open(dir, config()).unwrap().0, now: 0 }
    }

    fn put_batch(&mut self, mut batch: Vec<u8>) -> i64 {
        self.log.append(&mut batch, 3, self.now).unwrap().base_offset
    }

    fn put(&mut self, entries: &[Entry]) -> i64 {
        self.put_batch(keyed(entries, Compression::None, None))
    }

    fn roll(&mut self) {
        // Past segment_ms: the next append rolls.
        self.now += 10_000;
    }
}

/// (offset, key, value, timestamp) of a record.
type Row = (i64, Option<String>, Option<String>, i64);

fn decode_rows(data: &Bytes) -> Vec<Row> {
    let text = |b: Option<Bytes>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
    let mut buf = data.clone();
    RecordBatchDecoder::decode_all(&mut buf)
        .unwrap()
        .into_iter()
        .flat_map(|set| set.records)
        .map(|r| (r.offset, text(r.key), text(r.value), r.timestamp))
        .collect()
}

fn read_from(log: &PartitionLog, offset: i64) -> Bytes {
    log.read(offset, 1 << 24, log.log_end_offset(), false).unwrap().data
}

fn rows(log: &PartitionLog) -> Vec<Row> {
    decode_rows(&read_from(log, log.log_start_offset()))
}

fn offsets_from(log: &PartitionLog, offset: i64) -> Vec<i64> {
    decode_rows(&read_from(log, offset)).into_iter().map(|r| r.0).collect()
}

/// Headers of the batches in `data`.
fn headers(data: &Bytes) -> Vec<BatchHeader> {
    let mut out = Vec::new();
    let mut rest = &data[..];
    while !rest.is_empty() {
        let header = BatchHeader::parse(rest).unwrap();
        rest = &rest[header.total_size()..];
        out.push(header);
    }
    out
}

fn file(dir: &Path, base: i64, ext: &str) -> PathBuf {
    dir.join(format!("{base:020}.{ext}"))
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

/// Repeated keys over three sealed segments and the active one; record timestamps are
/// 100 * (offset + 1).
///
/// ```text
/// segment 0:  [a1 0, b1 1, c1 2] [a2 3]              -> everything superseded: empty
/// segment 4:  [a3 4, d1 5, b2 6] [e1 7] [g1 8]       -> [a3 4, b2 6] [g1 8] (a hole, a gap)
/// segment 9:  [d2 9, <no key> 10, e2 11]             -> unchanged
/// active 12:  [f1 12, c3 13] [f2 14]                 -> never rewritten
/// ```
fn repeated_keys(dir: &Path) -> TestLog {
    let mut t = TestLog::open(dir);
    t.put(&[kv("a", "1", 100), kv("b", "1", 200), kv("c", "1", 300)]);
    t.put(&[kv("a", "2", 400)]);
    t.roll();
    t.put(&[kv("a", "3", 500), kv("d", "1", 600), kv("b", "2", 700)]);
    t.put(&[kv("e", "1", 800)]);
    t.put(&[kv("g", "1", 900)]);
    t.roll();
    t.put(&[kv("d", "2", 1_000), (None, Some("x"), 1_100), kv("e", "2", 1_200)]);
    t.roll();
    t.put(&[kv("f", "1", 1_300), kv("c", "3", 1_400)]);
    t.put(&[kv("f", "2", 1_500)]);
    assert_eq!((t.log.segment_count(), t.log.log_end_offset()), (4, 15));
    t
}

const SURVIVORS: [i64; 9] = [4, 6, 8, 9, 10, 11, 12, 13, 14];

#[test]
fn only_the_latest_value_of_each_key_remains_at_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = repeated_keys(dir.path());
    let size_before = t.log.size_bytes();
    let report = t.log.compact(0, &NO_LAG).unwrap();
    assert_eq!((report.segments_cleaned, report.records_removed), (2, 6));
    assert!(report.bytes_after < report.bytes_before);
    assert_eq!(size_before - t.log.size_bytes(), report.bytes_before - report.bytes_after);

    let rows = rows(&t.log);
    let got: Vec<(i64, Option<&str>, Option<&str>)> =
        rows.iter().map(|r| (r.0, r.1.as_deref(), r.2.as_deref())).collect();
    assert_eq!(
        got,
        [
            (4, Some("a"), Some("3")),
            (6, Some("b"), Some("2")),
            (8, Some("g"), Some("1")),
            (9, Some("d"), Some("2")),
            (10, None, Some("x")),
            (11, Some("e"), Some("2")),
            // The active segment is not rewritten: f1 stays although f2 supersedes it.
            (12, Some("f"), Some("1")),
            (13, Some("c"), Some("3")),
            (14, Some("f"), Some("2")),
        ]
    );
    assert!(rows.iter().all(|r| r.3 == 100 * (r.0 + 1)), "timestamps are kept: {rows:?}");
    // Offsets, segments, start and end do not move; the emptied segment stays as a 0-byte file.
    assert_eq!((t.log.log_start_offset(), t.log.log_end_offset(), t.log.segment_count()), (0, 15, 4));
    assert_eq!(std::fs::metadata(file(dir.path(), 0, "log")).unwrap().len(), 0);
    // Reads from a removed offset start at the next retained batch, even across segments.
    assert_eq!(offsets_from(&t.log, 0), SURVIVORS);
    assert_eq!(offsets_from(&t.log, 2), SURVIVORS);
    assert_eq!(offsets_from(&t.log, 5), SURVIVORS, "5 is a hole inside the batch 4..=6");
    assert_eq!(offsets_from(&t.log, 7), SURVIVORS[2..]);
    assert_eq!(offsets_from(&t.log, 8), SURVIVORS[2..]);
    assert_eq!(offsets_from(&t.log, 9), SURVIVORS[3..]);
    assert_eq!(offsets_from(&t.log, 12), SURVIVORS[6..]);
    // Batch limits and max_offset still cut at whole batches.
    let first = t.log.read(0, 1, 15, true).unwrap().data;
    assert_eq!(decode_rows(&first).iter().map(|r| r.0).collect::<Vec<_>>(), [4, 6]);
    assert!(t.log.read(7, 1 << 20, 8, false).unwrap().data.is_empty());
    // The rewritten batch starts at its first survivor and keeps its hole and leader epoch.
    let batch = headers(&read_from(&t.log, 4))[0];
    assert_eq!((batch.base_offset, batch.last_offset_delta, batch.records_count), (4, 2, 2));
    assert_eq!(batch.partition_leader_epoch, 3);
    // Appends go on at the log end.
    assert_eq!(t.put(&[kv("a", "4", 1_600)]), 15);
}

#[test]
fn timestamp_lookups_skip_holes_and_empty_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = repeated_keys(dir.path());
    t.log.compact(0, &NO_LAG).unwrap();
    assert_eq!(t.log.offset_for_timestamp(0).unwrap(), Some((4, 500)));
    assert_eq!(t.log.offset_for_timestamp(550).unwrap(), Some((6, 700)));
    assert_eq!(t.log.offset_for_timestamp(750).unwrap(), Some((8, 900)));
    assert_eq!(t.log.offset_for_timestamp(950).unwrap(), Some((9, 1_000)));
    assert_eq!(t.log.offset_for_timestamp(1_450).unwrap(), Some((14, 1_500)));
    assert_eq!(t.log.offset_for_timestamp(1_501).unwrap(), None);
    assert_eq!(t.log.max_timestamp(), Some((1_500, 14)));
}

#[test]
fn older_copies_of_keys_updated_in_the_active_segment_go() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = TestLog::open(dir.path());
    t.put(&[kv("k", "1", 0), kv("other", "1", 0)]);
    t.roll();
    t.put(&[kv("k", "2", 0)]);
    t.roll();
    t.put(&[kv("k", "3", 0)]);
    let report = t.log.compact(0, &NO_LAG).unwrap();
    assert_eq!((report.segments_cleaned, report.records_removed), (2, 2));
    let got: Vec<(i64, Option<String>)> = rows(&t.log).into_iter().map(|r| (r.0, r.2)).collect();
    assert_eq!(got, [(1, Some("1".to_string())), (3, Some("3".to_string()))]);
}

#[test]
fn tombstones_stay_while_young_and_take_their_key_along_when_old() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = TestLog::open(dir.path());
    t.put(&[kv("k", "1", 1_000), kv("j", "1", 1_000)]);
    t.roll();
    t.put(&[tombstone("k", 2_000)]);
    t.roll();
    t.put(&[kv("j", "2", 3_000), tombstone("gone", 0)]);
    let config = CompactionConfig { delete_retention_ms: 10_000, min_compaction_lag_ms: 0 };

    let report = t.log.compact(5_000, &config).unwrap();
    assert_eq!(report.records_removed, 2);
    let keys_values = |log: &PartitionLog| -> Vec<(i64, String, Option<String>)> {
        rows(log).into_iter().map(|r| (r.0, r.1.unwrap(), r.2)).collect()
    };
    let young = vec![(2, "k".to_string(), None), (3, "j".to_string(), Some("2".to_string())), (4, "gone".into(), None)];
    assert_eq!(keys_values(&t.log), young);
    // 12_000 - 10_000 = 2_000 is not after the tombstone's timestamp: it stays.
    assert_eq!(t.log.compact(12_000, &config).unwrap(), CompactionReport::default());
    assert_eq!(keys_values(&t.log), young);
    // Past the retention: the tombstone goes and "k" is gone from the log. The old tombstone
    // in the active segment stays, as the active segment is never rewritten.
    let report = t.log.compact(12_001, &config).unwrap();
    assert_eq!((report.segments_cleaned, report.records_removed), (1, 1));
    assert_eq!(keys_values(&t.log), young[1..]);
    assert_eq!((t.log.log_start_offset(), t.log.log_end_offset()), (0, 5));
    assert_eq!(offsets_from(&t.log, 2), [3, 4]);
}

#[test]
fn min_compaction_lag_protects_young_records_and_their_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = TestLog::open(dir.path());
    t.put(&[kv("a", "1", 1_000), kv("b", "1", 9_500), kv("t", "1", 9_600)]);
    t.roll();
    // Timestamps need not grow with offsets: this tombstone is older than the value it deletes.
    t.put(&[kv("a", "2", 9_000), kv("b", "2", 9_800), tombstone("t", 100)]);
    t.roll();
    t.put(&[kv("z", "1", 0)]);
    let config = CompactionConfig { delete_retention_ms: 0, min_compaction_lag_ms: 1_000 };

    // now 10_000, lag 1_000: b1 and t1 are too young. Dropping the (expired) tombstone of "t"
    // would bring t1 back, so it stays too.
    let report = t.log.compact(10_000, &config).unwrap();
    assert_eq!(report.records_removed, 1);
    assert_eq!(offsets_from(&t.log, 0), [1, 2, 3, 4, 5, 6]);
    // Later everything is old enough: b1, t1 and then the tombstone go.
    let report = t.log.compact(20_000, &config).unwrap();
    assert_eq!(report.records_removed, 3);
    let got: Vec<(i64, String)> = rows(&t.log).into_iter().map(|r| (r.0, r.1.unwrap())).collect();
    assert_eq!(got, [(3, "a".to_string()), (4, "b".to_string()), (6, "z".to_string())]);
}

#[test]
fn compressed_batches_are_re_encoded_with_their_codec_and_producer_fields() {
    for compression in [Compression::Lz4, Compression::Zstd, Compression::Gzip, Compression::Snappy] {
        let dir = tempfile::tempdir().unwrap();
        let mut t = TestLog::open(dir.path());
        let producer = Producer { id: 5, epoch: 2, sequence: 0 };
        let entries = [kv("x", "a", 10), kv("y", "a", 11), kv("z", "a", 12)];
        t.put_batch(keyed(&entries, compression, Some(producer)));
        // A LogAppendTime batch: every record reads as stamped with the batch's max timestamp.
        let mut append_time = keyed(&[kv("w", "b", 20), kv("x", "b", 21)], compression, None);
        let mut header = BatchHeader::parse(&append_time).unwrap();
        header.attributes |= 1 << 3;
        header.max_timestamp = 77_777;
        rewrite_header(&mut append_time, &header).unwrap();
        t.put_batch(append_time);
        t.roll();
        t.put(&[kv("w", "c", 30)]);

        let report = t.log.compact(100_000, &NO_LAG).unwrap();
        assert_eq!(report.records_removed, 2, "{compression:?}");
        let data = read_from(&t.log, 0);
        let got: Vec<(i64, String)> = decode_rows(&data).into_iter().map(|r| (r.0, r.1.unwrap())).collect();
        assert_eq!(got, [(1, "y".to_string()), (2, "z".to_string()), (4, "x".to_string()), (5, "w".to_string())]);
        let batches = headers(&data);
        let first = batches[0];
        assert_eq!(first.compression().unwrap(), compression);
        assert_eq!((first.base_offset, first.last_offset_delta, first.records_count), (1, 1, 2));
        // The base sequence moved along with the base offset.
        assert_eq!((first.producer_id, first.producer_epoch, first.base_sequence), (5, 2, 1));
        assert_eq!((first.base_timestamp, first.max_timestamp), (11, 12));
        let second = batches[1];
        assert_eq!(second.compression().unwrap(), compression);
        // Without sequence numbers the base sequence stays -1 even though the first record went.
        assert_eq!((second.base_offset, second.records_count, second.base_sequence), (4, 1, -1));
        assert_eq!((second.timestamp_type(), second.max_timestamp), (TimestampType::LogAppend, 77_777));
    }
}

#[test]
fn control_batches_are_kept_byte_for_byte_and_out_of_the_key_map() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = TestLog::open(dir.path());
    // Data records sharing the key bytes of control records (0 0 0 1 commit, 0 0 0 0 abort),
    // before and after them: no record may supersede the other kind.
    t.put(&[(Some("\0\0\0\x01"), Some("v"), 0)]);
    let commit = t.put_batch(control_marker(11, 0, true, 0));
    t.put_batch(control_marker(11, 0, false, 0));
    t.put(&[(Some("\0\0\0\0"), Some("v"), 0)]);
    t.put(&[kv("k", "1", 0)]);
    t.roll();
    t.put(&[kv("k", "2", 0)]);
    t.roll();
    t.put(&[kv("z", "1", 0)]);
    let before = read_from(&t.log, commit);
    let controls_len = headers(&before)[..2].iter().map(|h| h.total_size()).sum::<usize>();
    let report = t.log.compact(0, &NO_LAG).unwrap();
    assert_eq!((report.segments_cleaned, report.records_removed), (1, 1));
    let after = read_from(&t.log, commit);
    assert_eq!(after.slice(..controls_len), before.slice(..controls_len));
    assert!(headers(&after)[..2].iter().all(|h| h.is_control()));
    assert_eq!(offsets_from(&t.log, 0), [0, 1, 2, 3, 5, 6]);
}

#[test]
fn reopening_after_compaction_gives_the_same_offsets_and_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = repeated_keys(dir.path());
    t.log.compact(0, &NO_LAG).unwrap();
    let data = read_from(&t.log, 0);
    let lookups = |log: &PartitionLog| [0, 550, 750, 950, 1_450].map(|ts| log.offset_for_timestamp(ts).unwrap());
    let expected_lookups = lookups(&t.log);
    drop(t); // no close: a crash right after the pass

    let (log, report) = PartitionLog::open(dir.path(), config()).unwrap();
    assert_eq!((report.truncated_bytes, report.rebuilt_indexes), (0, 0));
    assert_eq!((log.log_start_offset(), log.log_end_offset(), log.segment_count()), (0, 15, 4));
    assert_eq!(read_from(&log, 0), data);
    assert_eq!(offsets_from(&log, 7), SURVIVORS[2..]);
    assert_eq!(lookups(&log), expected_lookups);
    log.close().unwrap();

    // Rebuilding the indexes from the compacted logs accepts their holes and gaps.
    for name in dir_names(dir.path()) {
        if name.ends_with("index") {
            std::fs::remove_file(dir.path().join(name)).unwrap();
        }
    }
    let (mut log, report) = PartitionLog::open(dir.path(), config()).unwrap();
    assert_eq!((report.truncated_bytes, report.rebuilt_indexes), (0, 3));
    assert_eq!((log.log_start_offset(), log.log_end_offset(), log.segment_count()), (0, 15, 4));
    assert_eq!(read_from(&log, 0), data);
    assert_eq!(lookups(&log), expected_lookups);
    assert_eq!(log.compact(0, &NO_LAG).unwrap(), CompactionReport::default());
}

#[test]
fn a_second_pass_removes_and_rewrites_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = repeated_keys(dir.path());
    // Retention falls back to the mtime of a segment without timestamps (like the emptied one):
    // cleaning keeps it.
    let old_mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    std::fs::File::options().write(true).open(file(dir.path(), 0, "log")).unwrap().set_modified(old_mtime).unwrap();
    t.log.compact(0, &NO_LAG).unwrap();
    assert_eq!(std::fs::metadata(file(dir.path(), 0, "log")).unwrap().modified().unwrap(), old_mtime);
    let data = read_from(&t.log, 0);
    let inodes = |dir: &Path| -> Vec<u64> {
        dir_names(dir).iter().map(|n| std::fs::metadata(dir.join(n)).unwrap().ino()).collect()
    };
    let before = (dir_names(dir.path()), inodes(dir.path()));
    assert_eq!(t.log.compact(0, &NO_LAG).unwrap(), CompactionReport::default());
    assert_eq!((dir_names(dir.path()), inodes(dir.path())), before);
    assert_eq!(read_from(&t.log, 0), data);
}

/// The log of [`repeated_keys`] compacted without incident: what every crash must converge to.
fn compacted_reference() -> (Bytes, Bytes) {
    let dir = tempfile::tempdir().unwrap();
    let mut t = repeated_keys(dir.path());
    let before = read_from(&t.log, 0);
    t.log.compact(0, &NO_LAG).unwrap();
    (before, read_from(&t.log, 0))
}

#[test]
fn a_crash_at_any_step_of_the_swap_leaves_the_old_or_the_new_segment() {
    let (old, new) = compacted_reference();
    let steps = [
        (SwapStep::Written, "00000000000000000000.log.cleaned", &old),
        (SwapStep::SwapNamed, "00000000000000000000.log.swap", &old),
        (SwapStep::IndexesDeleted, "00000000000000000000.log.swap", &old),
        (SwapStep::LogReplaced, "00000000000000000000.log", &new),
    ];
    for (step, leftover, expected) in steps {
        let dir = tempfile::tempdir().unwrap();
        let mut t = repeated_keys(dir.path());
        crash_at(Some(step), 0);
        let result = t.log.compact(0, &NO_LAG);
        crash_at(None, 0);
        assert!(matches!(result, Err(LogError::Io { op: "simulated crash at", .. })), "{step:?}");
        // The crash hit the first segment: the log in memory still reads the old data.
        assert_eq!(read_from(&t.log, 0), old, "{step:?}");
        drop(t);
        assert!(dir.path().join(leftover).exists(), "{step:?}");
        // From the point the swap may rename the new log in, the old indexes are gone.
        let indexes_gone = matches!(step, SwapStep::IndexesDeleted | SwapStep::LogReplaced);
        assert_eq!(!file(dir.path(), 0, "index").exists(), indexes_gone, "{step:?}");

        let (mut log, report) = PartitionLog::open(dir.path(), config()).unwrap();
        assert_eq!(report.truncated_bytes, 0);
        assert!(!dir_names(dir.path()).iter().any(|n| n.ends_with(".cleaned") || n.ends_with(".swap")));
        // The first segment is old or new; the others were not touched yet.
        let data = read_from(&log, 0);
        let first_segment_end = |d: &Bytes| headers(d).iter().take_while(|h| h.base_offset < 4).count();
        assert_eq!(first_segment_end(&data), first_segment_end(expected), "{step:?}");
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 15));
        // The next pass finishes the job.
        log.compact(0, &NO_LAG).unwrap();
        assert_eq!(read_from(&log, 0), new, "{step:?}");
        drop(log);
        let log = PartitionLog::open(dir.path(), config()).unwrap().0;
        assert_eq!(read_from(&log, 0), new, "{step:?}");
    }
}

#[test]
fn a_swap_file_whose_segment_is_gone_is_completed_not_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = TestLog::open(dir.path());
    t.put(&[kv("a", "1", 100)]);
    t.put(&[kv("b", "1", 200)]);
    t.roll();
    t.put(&[kv("a", "2", 300)]);
    t.roll();
    t.put(&[kv("z", "1", 400)]);
    // Stop once the cleaned segment 0 is named .swap, then lose the original, as an operation
    // deleting it before the rename would (Kafka's order).
    crash_at(Some(SwapStep::SwapNamed), 0);
    assert!(t.log.compact(0, &NO_LAG).is_err());
    crash_at(None, 0);
    drop(t);
    std::fs::remove_file(file(dir.path(), 0, "log")).unwrap();
    // Indexes of the old file that happen to pass the sanity checks (empty ones do) must not
    // be used for the swapped-in file.
    std::fs::write(file(dir.path(), 0, "index"), b"").unwrap();
    std::fs::write(file(dir.path(), 0, "timeindex"), b"").unwrap();

    let (log, report) = PartitionLog::open(dir.path(), config()).unwrap();
    assert_eq!(report.rebuilt_indexes, 1);
    assert!(!dir.path().join("00000000000000000000.log.swap").exists());
    assert_eq!((log.log_start_offset(), log.log_end_offset(), log.segment_count()), (0, 4, 3));
    let got: Vec<(i64, String)> = rows(&log).into_iter().map(|r| (r.0, r.1.unwrap())).collect();
    assert_eq!(got, [(1, "b".to_string()), (2, "a".to_string()), (3, "z".to_string())]);
    assert_eq!(log.offset_for_timestamp(150).unwrap(), Some((1, 200)));
}

#[test]
fn a_crash_between_two_swaps_never_brings_a_deleted_value_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = TestLog::open(dir.path());
    t.put(&[kv("k", "1", 0), kv("j", "1", 0)]);
    t.roll();
    t.put(&[tombstone("k", 0), kv("j", "2", 0)]);
    t.roll();
    t.put(&[kv("z", "1", 0)]);
    let expired = CompactionConfig { delete_retention_ms: 0, min_compaction_lag_ms: 0 };
    // Both sealed segments are rewritten; crash right before the second one is swapped in.
    crash_at(Some(SwapStep::Written), 1);
    assert!(t.log.compact(1_000, &expired).is_err());
    crash_at(None, 0);
    drop(t);
    let mut log = PartitionLog::open(dir.path(), config()).unwrap().0;
    // Whichever segment went first, "k" must not read as "1" again.
    let k: Vec<Option<String>> = rows(&log).into_iter().filter(|r| r.1.as_deref() == Some("k")).map(|r| r.2).collect();
    assert_eq!(k, [None]);
    log.compact(1_000, &expired).unwrap();
    assert_eq!(offsets_from(&log, 0), [3, 4]);
}

fn idempotent(producer: i64, sequence: i32, entries: &[Entry]) -> Vec<u8> {
    keyed(entries, Compression::None, Some(Producer { id: producer, epoch: 0, sequence }))
}

fn delete_snapshots(dir: &Path) {
    for name in dir_names(dir) {
        if name.ends_with(".snapshot") {
            std::fs::remove_file(dir.join(name)).unwrap();
        }
    }
}

#[test]
fn producer_state_replayed_from_a_compacted_log_keeps_last_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = TestLog::open(dir.path());
    // Producer 7's only batch will lose every record, producer 8's last batch its last record,
    // producer 9's first batch every record (it has a later, intact one).
    t.put_batch(idempotent(7, 0, &[kv("a", "1", 0), kv("b", "1", 0), kv("c", "1", 0)])); // 0..=2
    t.put_batch(idempotent(8, 0, &[kv("p", "1", 0), kv("q", "1", 0)])); // 3..=4
    t.put_batch(idempotent(9, 0, &[kv("r", "1", 0)])); // 5
    t.put_batch(idempotent(9, 1, &[kv("s", "1", 0)])); // 6
    t.roll();
    t.put(&[kv("a", "2", 0), kv("b", "2", 0), kv("c", "2", 0), kv("q", "2", 0), kv("r", "2", 0)]); // 7..=11
    t.roll();
    t.put(&[kv("z", "1", 0)]);

    let report = t.log.compact(0, &NO_LAG).unwrap();
    assert_eq!((report.segments_cleaned, report.records_removed), (1, 5));
    // Empty batches stand in for the removed ends of the producers' last batches.
    let batches = headers(&read_from(&t.log, 0));
    let shape: Vec<(i64, i64, i32, i64, i32)> = batches
        .iter()
        .map(|h| (h.base_offset, h.last_offset(), h.records_count, h.producer_id, h.base_sequence))
        .collect();
    assert_eq!(shape[..4], [(0, 2, 0, 7, 0), (3, 3, 1, 8, 0), (4, 4, 0, 8, 1), (6, 6, 1, 9, 1)]);
    assert_eq!(offsets_from(&t.log, 0)[..2], [3, 6]);
    assert_eq!(t.log.compact(0, &NO_LAG).unwrap(), CompactionReport::default());

    // Without snapshots the producer state is replayed from the compacted batches.
    drop(t);
    delete_snapshots(dir.path());
    let mut t = TestLog { log: PartitionLog::open(dir.path(), config()).unwrap().0, now: 100_000 };
    let retry = t.log.append(&mut idempotent(7, 0, &[kv("a", "1", 0), kv("b", "1", 0), kv("c", "1", 0)]), 3, 0);
    assert_eq!((retry.unwrap().duplicate, 0), (true, 0));
    for (producer, sequence) in [(7, 3), (8, 2), (9, 2)] {
        let key = format!("new-{producer}");
        let info = t.log.append(&mut idempotent(producer, sequence, &[kv(&key, "1", 0)]), 3, 0).unwrap();
        assert!(!info.duplicate, "producer {producer}");
    }
    // Producers 7 and 8 have later batches now: their empty batches go at the next pass.
    t.roll();
    t.put(&[kv("y", "1", 0)]);
    let report = t.log.compact(0, &NO_LAG).unwrap();
    assert_eq!((report.segments_cleaned, report.records_removed), (1, 0));
    let batches = headers(&read_from(&t.log, 0));
    assert!(batches.iter().all(|h| h.records_count > 0), "{batches:?}");
}

#[test]
fn retention_and_truncation_work_on_a_compacted_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = repeated_keys(dir.path());
    t.log.compact(0, &NO_LAG).unwrap();
    let data = read_from(&t.log, 0);

    // Truncating into the compacted segment 4 makes it the tail again, holes and all.
    t.log.truncate_to(8).unwrap();
    assert_eq!((t.log.log_end_offset(), t.log.segment_count()), (7, 2));
    assert_eq!(offsets_from(&t.log, 0), [4, 6]);
    drop(t);
    let (mut log, report) = PartitionLog::open(dir.path(), config()).unwrap();
    assert_eq!((report.truncated_bytes, log.log_end_offset()), (0, 7));
    assert_eq!(offsets_from(&log, 0), [4, 6]);
    assert_eq!(log.append(&mut simple(2, 0), 3, 0).unwrap().base_offset, 7);
    assert_eq!(
        read_from(&log, 0).slice(..headers(&data)[0].total_size()),
        data.slice(..headers(&data)[0].total_size())
    );

    // Retention by size drops the emptied first segment like any other.
    log.set_config(LogConfig { retention_bytes: Some(log.size_bytes()), ..config() });
    assert_eq!(log.apply_retention(0).unwrap(), 1);
    assert_eq!((log.log_start_offset(), log.segment_count()), (4, 1));
    assert_eq!(offsets_from(&log, 4), [4, 6, 7, 8]);
}
