//! Tests of [`LeaderEpochCache`] alone and wired into [`PartitionLog`].
#![allow(clippy::unwrap_used)]

use super::{format, parse, CHECKPOINT_FILE};
use crate::log::batch::test_batches::simple;
use crate::log::{EpochEntry, LeaderEpochCache, LogConfig, PartitionLog};
use std::fs::OpenOptions;
use std::path::Path;

use crate::log::test_support::{config, open};

fn entries(pairs: &[(i32, i64)]) -> Vec<EpochEntry> {
    pairs.iter().map(|&(epoch, start_offset)| EpochEntry { epoch, start_offset }).collect()
}

fn pairs(cache: &LeaderEpochCache) -> Vec<(i32, i64)> {
    cache.entries().iter().map(|e| (e.epoch, e.start_offset)).collect()
}

/// Appends a batch of `count` records under leader epoch `epoch`.
fn append(log: &mut PartitionLog, count: usize, epoch: i32) -> i64 {
    log.append(&mut simple(count, 0), epoch, 0).unwrap().base_offset
}

fn checkpoint(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(CHECKPOINT_FILE)).unwrap()
}

fn cache(dir: &Path, pairs: &[(i32, i64)]) -> LeaderEpochCache {
    let mut cache = LeaderEpochCache::new(dir);
    for &(epoch, start) in pairs {
        assert!(cache.assign(epoch, start));
    }
    cache
}

#[test]
fn checkpoint_is_kafkas_text_format_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache(dir.path(), &[(0, 0), (3, 120), (7, 4_000_000_000)]);
    cache.flush().unwrap();
    assert_eq!(checkpoint(dir.path()), "0\n3\n0 0\n3 120\n7 4000000000\n");
    assert!(!dir.path().join("leader-epoch-checkpoint.tmp").exists());
    let loaded = LeaderEpochCache::load(dir.path()).unwrap().unwrap();
    assert_eq!(loaded, cache);
    assert_eq!(format(&[]), "0\n0\n");
    assert_eq!(parse("0\n0\n").unwrap(), vec![]);
    // Kafka separates the fields by any whitespace.
    assert_eq!(parse("0\n2\n1  5\n2\t9\n").unwrap(), entries(&[(1, 5), (2, 9)]));
    // A missing file is an empty cache.
    let empty = tempfile::tempdir().unwrap();
    assert!(LeaderEpochCache::load(empty.path()).unwrap().unwrap().entries().is_empty());
}

#[test]
fn malformed_checkpoints_are_rejected() {
    for bad in [
        "",
        "1\n0\n",
        "0\n2\n0 0\n",
        "0\n1\n0 0\n1 5\n",
        "0\n1\n0\n",
        "0\n1\n0 0 0\n",
        "0\n1\nx 0\n",
        "0\n1\n-1 0\n",
        "0\n2\n3 0\n2 5\n",
        "0\n2\n1 5\n2 5\n",
        "0\nmany\n",
    ] {
        assert!(parse(bad).is_err(), "{bad:?} was accepted");
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(CHECKPOINT_FILE), [0xff, 0xfe, b'\n']).unwrap();
    assert!(LeaderEpochCache::load(dir.path()).unwrap().is_err());
}

#[test]
fn assign_ignores_epochs_that_are_not_newer() {
    let dir = tempfile::tempdir().unwrap();
    let mut cache = LeaderEpochCache::new(dir.path());
    assert!(!cache.assign(-1, 0), "no leader epoch");
    assert!(cache.assign(2, 10));
    assert!(!cache.assign(2, 20));
    assert!(!cache.assign(1, 30));
    assert!(cache.assign(4, 40));
    assert_eq!(pairs(&cache), vec![(2, 10), (4, 40)]);
    assert_eq!(cache.latest_epoch(), Some(4));
    // A newer epoch at the same start replaces the one that never got a record (Kafka).
    assert!(cache.assign(5, 40));
    assert_eq!(pairs(&cache), vec![(2, 10), (5, 40)]);
    assert_eq!(LeaderEpochCache::new(dir.path()).latest_epoch(), None);
}

#[test]
fn end_offset_for_follows_kafka() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache(dir.path(), &[(1, 0), (3, 10), (6, 25)]);
    // A cached epoch ends where the next one starts.
    assert_eq!(cache.end_offset_for(1, 40), Some((1, 10)));
    assert_eq!(cache.end_offset_for(3, 40), Some((3, 25)));
    // An epoch between cached ones: the largest cached epoch below it.
    assert_eq!(cache.end_offset_for(2, 40), Some((1, 10)));
    assert_eq!(cache.end_offset_for(5, 40), Some((3, 25)));
    // The latest epoch ends at the log end.
    assert_eq!(cache.end_offset_for(6, 40), Some((6, 40)));
    // Below the first epoch: Kafka reports the requested epoch ending at the first start.
    assert_eq!(cache.end_offset_for(0, 40), Some((0, 0)));
    // Undefined: above the latest, negative, or nothing cached.
    assert_eq!(cache.end_offset_for(7, 40), None);
    assert_eq!(cache.end_offset_for(-1, 40), None);
    assert_eq!(LeaderEpochCache::new(dir.path()).end_offset_for(0, 40), None);
}

#[test]
fn truncation_from_either_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut cache = cache(dir.path(), &[(1, 0), (3, 10), (6, 25)]);
    assert!(!cache.truncate_from_end(26));
    assert!(cache.truncate_from_end(25));
    assert_eq!(pairs(&cache), vec![(1, 0), (3, 10)]);
    let mut cache = self::cache(dir.path(), &[(1, 0), (3, 10), (6, 25)]);
    assert!(!cache.truncate_from_start(0));
    assert!(cache.truncate_from_start(12));
    assert_eq!(pairs(&cache), vec![(3, 12), (6, 25)]);
    assert!(cache.truncate_from_start(25));
    assert_eq!(pairs(&cache), vec![(6, 25)]);
    assert!(!cache.truncate_from_start(25));
}

#[test]
fn appends_record_each_new_epoch_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    assert!(!dir.path().join(CHECKPOINT_FILE).exists());
    append(&mut log, 2, 0);
    assert_eq!(checkpoint(dir.path()), "0\n1\n0 0\n");
    append(&mut log, 3, 0);
    let x = append(&mut log, 2, 3);
    append(&mut log, 1, 3);
    let y = append(&mut log, 4, 5);
    assert_eq!((x, y), (5, 8));
    assert_eq!(pairs(log.leader_epoch_cache()), vec![(0, 0), (3, 5), (5, 8)]);
    assert_eq!(checkpoint(dir.path()), "0\n3\n0 0\n3 5\n5 8\n");
    assert_eq!(log.end_offset_for_epoch(3), Some((3, 8)));
    assert_eq!(log.end_offset_for_epoch(5), Some((5, 12)));
    log.close().unwrap();
    let log = open(dir.path(), config());
    assert_eq!(pairs(log.leader_epoch_cache()), vec![(0, 0), (3, 5), (5, 8)]);
}

#[test]
fn truncate_to_drops_later_epochs_durably() {
    let dir = tempfile::tempdir().unwrap();
    let batch_len = simple(2, 0).len() as u64;
    let mut log = open(dir.path(), LogConfig { segment_bytes: batch_len * 2, ..config() });
    for epoch in [0, 0, 2, 2, 4, 7] {
        append(&mut log, 2, epoch);
    }
    assert_eq!(pairs(log.leader_epoch_cache()), vec![(0, 0), (2, 4), (4, 8), (7, 10)]);
    // Offset 9 is inside epoch 4's batch 8..=9: the log ends at 8, epochs 4 and 7 go.
    log.truncate_to(9).unwrap();
    assert_eq!(pairs(log.leader_epoch_cache()), vec![(0, 0), (2, 4)]);
    assert_eq!(checkpoint(dir.path()), "0\n2\n0 0\n2 4\n");
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 8)));
    drop(log); // crash: the checkpoint was written at truncation
    let mut log = open(dir.path(), config());
    assert_eq!(pairs(log.leader_epoch_cache()), vec![(0, 0), (2, 4)]);
    // A new leader's epoch starts where the log now ends.
    append(&mut log, 1, 5);
    assert_eq!(pairs(log.leader_epoch_cache()), vec![(0, 0), (2, 4), (5, 8)]);
}

#[test]
fn log_start_moves_the_first_epoch_up() {
    let dir = tempfile::tempdir().unwrap();
    let batch_len = simple(2, 0).len() as u64;
    let mut log = open(dir.path(), LogConfig { segment_bytes: batch_len * 2, ..config() });
    for epoch in [1, 1, 1, 3, 3, 6] {
        append(&mut log, 2, epoch);
    }
    assert_eq!(pairs(log.leader_epoch_cache()), vec![(1, 0), (3, 6), (6, 10)]);
    // Retention deletes segment 0 (offsets 0..4): epoch 1 now starts at 4.
    log.set_config(LogConfig { retention_bytes: Some(batch_len * 4), ..log.config().clone() });
    assert_eq!(log.apply_retention(0).unwrap(), 1);
    assert_eq!(log.log_start_offset(), 4);
    assert_eq!(pairs(log.leader_epoch_cache()), vec![(1, 4), (3, 6), (6, 10)]);
    assert_eq!(checkpoint(dir.path()), "0\n3\n1 4\n3 6\n6 10\n");
    // DeleteRecords past the start of epoch 3: epoch 1 goes, epoch 3 starts at 7.
    log.advance_log_start_offset(7).unwrap();
    assert_eq!(pairs(log.leader_epoch_cache()), vec![(3, 7), (6, 10)]);
    assert_eq!(checkpoint(dir.path()), "0\n2\n3 7\n6 10\n");
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 7)));
    log.close().unwrap();
    // After a restart the log starts at its first segment again (4..8 holds epochs 1 and 3) and
    // the checkpoint is kept as written: it is consistent with the log's end.
    let log = open(dir.path(), config());
    assert_eq!(pairs(log.leader_epoch_cache()), vec![(3, 7), (6, 10)]);
}

#[test]
fn corrupt_or_missing_checkpoints_are_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let batch_len = simple(2, 0).len() as u64;
    let cfg = LogConfig { segment_bytes: batch_len * 2, ..config() };
    let mut log = open(dir.path(), cfg.clone());
    for epoch in [0, 2, 2, 5, 5] {
        append(&mut log, 2, epoch);
    }
    log.close().unwrap();
    let expected = "0\n3\n0 0\n2 2\n5 6\n";
    assert_eq!(checkpoint(dir.path()), expected);

    std::fs::write(dir.path().join(CHECKPOINT_FILE), "0\n3\n0 0\n2 2\n").unwrap();
    let log = open(dir.path(), cfg.clone());
    assert_eq!(pairs(log.leader_epoch_cache()), vec![(0, 0), (2, 2), (5, 6)]);
    assert_eq!(checkpoint(dir.path()), expected, "the rebuilt cache is written back");
    drop(log);

    std::fs::remove_file(dir.path().join(CHECKPOINT_FILE)).unwrap();
    let log = open(dir.path(), cfg.clone());
    assert_eq!(pairs(log.leader_epoch_cache()), vec![(0, 0), (2, 2), (5, 6)]);
    assert_eq!(checkpoint(dir.path()), expected);
    drop(log);

    // Well-formed but disagreeing with the log: an epoch starting past the log end (10)...
    std::fs::write(dir.path().join(CHECKPOINT_FILE), "0\n3\n0 0\n2 2\n5 60\n").unwrap();
    let log = open(dir.path(), cfg.clone());
    assert_eq!(pairs(log.leader_epoch_cache()), vec![(0, 0), (2, 2), (5, 6)]);
    drop(log);
    // ... or a latest epoch other than the last batch's (5).
    std::fs::write(dir.path().join(CHECKPOINT_FILE), "0\n2\n0 0\n4 3\n").unwrap();
    let log = open(dir.path(), cfg);
    assert_eq!(pairs(log.leader_epoch_cache()), vec![(0, 0), (2, 2), (5, 6)]);
    assert_eq!(checkpoint(dir.path()), expected);
}

#[test]
fn recovery_tail_cut_drops_epochs_started_in_the_cut_part() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    for epoch in [0, 0, 3, 3, 5, 8] {
        append(&mut log, 2, epoch);
    }
    assert_eq!(pairs(log.leader_epoch_cache()), vec![(0, 0), (3, 4), (5, 8), (8, 10)]);
    drop(log); // crash
               // Tear the last two batches (epochs 5 and 8): the second-to-last loses its final byte.
    let path = dir.path().join(format!("{:020}.log", 0));
    let batch_len = simple(2, 0).len() as u64;
    OpenOptions::new().write(true).open(&path).unwrap().set_len(batch_len * 5 - 1).unwrap();
    let (log, report) = PartitionLog::open(dir.path(), config()).unwrap();
    assert_eq!(report.truncated_at_offset, Some(8));
    assert_eq!(pairs(log.leader_epoch_cache()), vec![(0, 0), (3, 4)]);
    assert_eq!(checkpoint(dir.path()), "0\n2\n0 0\n3 4\n");
    assert_eq!(log.end_offset_for_epoch(3), Some((3, 8)));
}
