//! Tests of [`PartitionLog::read`]: the single read into the returned buffer gives exactly what
//! the earlier read (a zero-filled chunk per segment, copied batch by batch) gave.
#![allow(clippy::unwrap_used)]

use super::whole_batches;
use crate::log::batch::test_batches::simple;
use crate::log::batch::validate;
use crate::log::segment::Segment;
use crate::log::test_support::{config, open};
use crate::log::{LogConfig, LogError, PartitionLog};
use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use std::fs::OpenOptions;

/// The read as it was before it went straight into one buffer, kept as the oracle.
fn reference_read(
    log: &PartitionLog,
    offset: i64,
    max_bytes: usize,
    max_offset: i64,
    min_one_batch: bool,
) -> Result<Bytes, LogError> {
    let end = log.log_end_offset();
    if offset < log.log_start_offset() || offset > end {
        return Err(LogError::OffsetOutOfRange { requested: offset, start: log.log_start_offset(), end });
    }
    let limit = max_offset.min(end);
    let mut data = Vec::new();
    let segments: Vec<&Segment> = log.segments().collect();
    let first = segments.partition_point(|s| s.base_offset() <= offset).saturating_sub(1);
    if offset >= limit {
        return Ok(Bytes::new());
    }
    for (i, segment) in segments.iter().enumerate().skip(first) {
        let start = if i == first {
            match segment.find_batch(offset)? {
                Some((position, _)) => position,
                None => continue,
            }
        } else {
            0
        };
        let budget = max_bytes.saturating_sub(data.len());
        let available = segment.size() - start;
        let chunk_len = (budget as u64).min(available) as usize;
        let chunk = segment.read_bytes(start, chunk_len)?;
        let (used, stopped) = whole_batches(&chunk, limit).unwrap();
        if used == 0 && data.is_empty() && !stopped && (chunk_len as u64) < available {
            if min_one_batch {
                if let Some(header) = segment.read_header_at(start)? {
                    if header.base_offset < limit {
                        data = segment.read_bytes(start, header.total_size())?;
                    }
                }
            }
            break;
        }
        data.extend_from_slice(&chunk[..used]);
        if stopped || (chunk_len as u64) < available || used < chunk.len() {
            break;
        }
    }
    Ok(data.into())
}

fn offsets(data: &Bytes) -> Vec<i64> {
    let mut buf = data.clone();
    RecordBatchDecoder::decode_all(&mut buf)
        .unwrap()
        .into_iter()
        .flat_map(|set| set.records)
        .map(|r| r.offset)
        .collect()
}

/// Batches of 1..=6 records (sizes differ) over segments of a few batches each; returns the log
/// and the (base offset, size) of every batch.
fn varied_log(dir: &std::path::Path) -> (PartitionLog, Vec<(i64, usize)>) {
    let segment_bytes = simple(6, 0).len() as u64 * 3;
    let mut log = open(dir, LogConfig { segment_bytes, index_interval_bytes: 0, ..config() });
    let mut batches = Vec::new();
    for i in 0..20 {
        let mut batch = simple(1 + (i * 7) % 6, i as i64);
        batches.push((log.log_end_offset(), batch.len()));
        log.append(&mut batch, 1, 0).unwrap();
    }
    assert!(log.segment_count() >= 5, "{} segments", log.segment_count());
    (log, batches)
}

#[test]
fn the_single_read_matches_the_reference_for_every_offset_budget_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (log, batches) = varied_log(dir.path());
    let end = log.log_end_offset();
    let one = batches[0].1;
    let budgets = [0, 1, one - 1, one, one + 1, one * 2 + one / 2, one * 5, one * 9 + 3, 1 << 20];
    let limits = [0, 1, 5, end / 2, end - 1, end, i64::MAX];
    let mut compared = 0;
    for offset in -1..=end + 1 {
        for &max_bytes in &budgets {
            for &max_offset in &limits {
                for min_one_batch in [false, true] {
                    let expected = reference_read(&log, offset, max_bytes, max_offset, min_one_batch);
                    let got = log.read(offset, max_bytes, max_offset, min_one_batch);
                    match (expected, got) {
                        (Ok(expected), Ok(got)) => {
                            assert_eq!(
                                got.data, expected,
                                "read({offset}, {max_bytes}, {max_offset}, {min_one_batch})"
                            );
                            assert_eq!(got.high_offset, end);
                        }
                        (Err(_), Err(_)) => {}
                        (expected, got) => panic!("read({offset}, {max_bytes}, {max_offset}): {expected:?} vs {got:?}"),
                    }
                    compared += 1;
                }
            }
        }
    }
    assert!(compared > 1000);
}

#[test]
fn one_read_spans_segments_and_stops_at_the_budget_and_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (log, batches) = varied_log(dir.path());
    let end = log.log_end_offset();
    // From inside the second batch, everything to the end: whole batches from its base.
    let read = log.read(batches[1].0 + 1, 1 << 20, end, false).unwrap();
    assert_eq!(offsets(&read.data), (batches[1].0..end).collect::<Vec<_>>());
    assert_eq!(read.data.len(), batches[1..].iter().map(|b| b.1).sum::<usize>());
    // A budget ending inside batch 9 (several segments on) gives batches 2..=8.
    let budget = batches[2..9].iter().map(|b| b.1).sum::<usize>() + batches[9].1 - 1;
    let read = log.read(batches[2].0, budget, end, false).unwrap();
    assert_eq!(read.data.len(), budget - batches[9].1 + 1);
    assert_eq!(offsets(&read.data), (batches[2].0..batches[9].0).collect::<Vec<_>>());
    // Every batch returned is whole and valid.
    let mut rest = read.data.clone();
    while !rest.is_empty() {
        let header = validate(&rest).unwrap();
        let _ = rest.split_to(header.total_size());
    }
    // A limit (the high watermark) inside batch 12 stops before it, in a later segment.
    let read = log.read(batches[2].0, 1 << 20, batches[12].0 + 1, false).unwrap();
    assert_eq!(offsets(&read.data), (batches[2].0..batches[12].0 + 1).collect::<Vec<_>>());
    let read = log.read(batches[2].0, 1 << 20, batches[12].0, false).unwrap();
    assert_eq!(offsets(&read.data), (batches[2].0..batches[12].0).collect::<Vec<_>>());
}

#[test]
fn a_first_batch_above_the_budget_is_whole_or_nothing_even_at_a_segment_start() {
    let dir = tempfile::tempdir().unwrap();
    let (log, batches) = varied_log(dir.path());
    let end = log.log_end_offset();
    let bases: Vec<i64> = log.segments().map(|s| s.base_offset()).collect();
    for (i, &(base, size)) in batches.iter().enumerate() {
        assert!(log.read(base, size - 1, end, false).unwrap().data.is_empty());
        let read = log.read(base, size - 1, end, true).unwrap();
        assert_eq!(read.data.len(), size, "batch {i} (segment start: {})", bases.contains(&base));
        assert_eq!(validate(&read.data).unwrap().base_offset, base);
        // Not when the limit excludes it.
        assert!(log.read(base, size - 1, base, true).unwrap().data.is_empty());
    }
}

#[test]
fn reads_after_a_truncation_see_only_what_is_left_and_earlier_reads_keep_their_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, batches) = varied_log(dir.path());
    let before = log.read(0, 1 << 20, i64::MAX, false).unwrap().data;
    let copy = before.to_vec();
    // Cut inside batch 10: batches 10.. are gone, from the middle of a segment on.
    log.truncate_to(batches[10].0 + 1).unwrap();
    assert_eq!(log.log_end_offset(), batches[10].0);
    // The bytes handed out before are the caller's own, not a view of the file.
    assert_eq!(before.to_vec(), copy);
    let after = log.read(0, 1 << 20, i64::MAX, false).unwrap().data;
    assert_eq!(after, before.slice(..batches[..10].iter().map(|b| b.1).sum::<usize>()));
    assert!(log.read(batches[10].0 + 1, 1 << 20, i64::MAX, true).is_err());
}

#[test]
fn a_file_cut_short_behind_the_logs_back_is_a_read_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let (log, batches) = varied_log(dir.path());
    let last = log.segments().last().unwrap();
    let (base, path) = (last.base_offset(), last.log_path().to_path_buf());
    // As if a truncation raced the read: the file is shorter than the segment believes.
    OpenOptions::new().write(true).open(&path).unwrap().set_len(3).unwrap();
    assert!(log.read(base, 1 << 20, i64::MAX, false).is_err());
    assert!(log.read(0, 1 << 20, i64::MAX, false).is_err());
    // Reads that end before that segment are untouched.
    let read = log.read(0, batches[0].1 + batches[1].1, i64::MAX, false).unwrap();
    assert_eq!(read.data.len(), batches[0].1 + batches[1].1);
}
