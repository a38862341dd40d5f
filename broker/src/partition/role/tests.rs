//! Leader and follower replicas of one partition, driven as the replica manager and the fetch
//! path drive them: appends, follower fetches moving the high watermark, acks=all, divergence
//! after a leader change and the follower's truncation.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::log::batch::test_batches::simple;
use crate::log_dirs::LogDir;
use millrace_config::{BrokerConfig, TopicOverrides};
use std::sync::Arc;

fn open(dir: &std::path::Path) -> Partition {
    open_in(dir, "t", &Arc::new(LogDir::new(dir.to_path_buf())))
}

fn open_in(dir: &std::path::Path, topic: &str, log_dir: &Arc<LogDir>) -> Partition {
    let config = TopicOverrides::default().resolve(&BrokerConfig::default());
    Partition::open(topic, 0, dir.join(format!("{topic}-0")), log_dir.clone(), &config).unwrap()
}

fn lead(p: &Partition, epoch: i32, isr: &[i32]) {
    p.become_leader(1, &[1, 2, 3], isr, epoch, epoch, 2, 10_000, 0).unwrap();
}

#[test]
fn high_watermark_follows_the_isr_and_gates_acks() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path());
    lead(&p, 0, &[1, 2, 3]);
    let info = p.append_as_leader(&mut simple(3, 0), 0, true).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (0, 2));
    assert_eq!(p.high_watermark(), 0, "nothing is committed before the followers have it");
    assert_eq!(p.ack_status(3, 2), AckWait::Waiting);
    // Consumers see nothing above the high watermark.
    assert!(p.read(0, 1 << 20, true).unwrap().data.is_empty());
    assert_eq!(p.on_follower_fetch(2, 3, 0, 0, 10, -1).unwrap(), FollowerFetch::Read { high_watermark: 0 });
    assert_eq!(p.high_watermark(), 0, "follower 3 has not fetched yet");
    assert_eq!(p.on_follower_fetch(3, 3, 0, 0, 10, -1).unwrap(), FollowerFetch::Read { high_watermark: 3 });
    assert_eq!(p.ack_status(3, 2), AckWait::Done);
    assert!(!p.read(0, 1 << 20, true).unwrap().data.is_empty());
    // A stale follower epoch is fenced; a newer one means our metadata is behind.
    assert!(p.on_follower_fetch(2, 3, -5, 0, 10, -1).is_ok(), "negative (unknown) epochs are not checked");
    assert!(matches!(p.on_follower_fetch(2, 3, 1, 0, 10, -1), Err(ReplicaError::UnknownLeaderEpoch { .. })));
}

#[test]
fn min_insync_replicas_refuses_acks_all_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path());
    lead(&p, 0, &[1]);
    let err = p.append_as_leader(&mut simple(1, 0), 0, true).unwrap_err();
    assert!(matches!(err, ReplicaError::NotEnoughReplicas { .. }), "{err}");
    assert_eq!(err.error_code(), kafka_protocol::error::ResponseError::NotEnoughReplicas);
    // acks=1 still goes through, and as the sole ISR member the leader commits it at once.
    p.append_as_leader(&mut simple(1, 0), 0, false).unwrap();
    assert_eq!(p.high_watermark(), 1);
    // A follower cannot append producer data and a leader cannot take replicated data.
    assert!(matches!(p.append_replicated(&simple(1, 0), 1, 0), Err(ReplicaError::NotLeader(_))));
    p.become_follower(2, 1);
    assert!(matches!(p.append_as_leader(&mut simple(1, 0), 0, false), Err(ReplicaError::NotLeader(_))));
    assert_eq!(p.ack_status(1, 1), AckWait::NotLeader);
}

#[test]
fn lagging_follower_leaves_and_caught_up_follower_rejoins_the_isr() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path());
    p.become_leader(1, &[1, 2, 3], &[1, 2, 3], 0, 0, 1, 1_000, 0).unwrap();
    p.append_as_leader(&mut simple(2, 0), 0, false).unwrap();
    p.on_follower_fetch(2, 2, 0, -1, 100, -1).unwrap();
    let eligible = [1, 2, 3].into_iter().collect();
    assert_eq!(p.propose_isr_change(500, &eligible), None, "within the lag time");
    let shrink = p.propose_isr_change(2_000, &eligible).unwrap();
    assert_eq!(shrink.new_isr, vec![1, 2], "3 never fetched for longer than replica.lag.time.max");
    assert_eq!(p.propose_isr_change(2_000, &eligible), None, "one change in flight at a time");
    // The controller commits it (partition epoch 1); then 3 catches up and is proposed back.
    p.become_leader(1, &[1, 2, 3], &[1, 2], 0, 1, 1, 1_000, 2_000).unwrap();
    p.on_follower_fetch(3, 2, 0, -1, 2_100, -1).unwrap();
    let grow = p.propose_isr_change(2_100, &eligible).unwrap();
    assert_eq!(grow.new_isr, vec![1, 2, 3]);
    p.isr_change_failed();
    // A fenced broker is not proposed.
    let only_two = [1, 2].into_iter().collect();
    assert_eq!(p.propose_isr_change(2_100, &only_two), None);
}

#[test]
fn diverging_follower_truncates_its_unreplicated_tail() {
    let leader_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let old_leader = open(follower_dir.path());
    let new_leader = open(leader_dir.path());
    // Epoch 0: the old leader writes 3 records; only the first 2 reach the other replica.
    lead(&old_leader, 0, &[1, 2]);
    old_leader.append_as_leader(&mut simple(2, 0), 0, false).unwrap();
    let replicated = old_leader.read_to_end(0, 1 << 20, true).unwrap().data;
    old_leader.append_as_leader(&mut simple(1, 0), 0, false).unwrap();
    new_leader.become_follower(1, 0);
    new_leader.append_replicated(&replicated, 0, 0).unwrap();
    assert_eq!(new_leader.follower_position(), (2, 0));
    // Epoch 1: the other replica leads and writes 2 records of its own.
    new_leader.become_leader(2, &[1, 2, 3], &[2], 1, 1, 1, 10_000, 0).unwrap();
    new_leader.append_as_leader(&mut simple(2, 0), 0, false).unwrap();
    // The old leader follows now and fetches at offset 3 with last epoch 0: it diverged at 2.
    old_leader.become_follower(2, 1);
    let (offset, epoch) = old_leader.follower_position();
    assert_eq!((offset, epoch), (3, 0));
    let answer = new_leader.on_follower_fetch(1, offset, 1, epoch, 0, -1).unwrap();
    assert_eq!(answer, FollowerFetch::Diverging { epoch: 0, end_offset: 2 });
    assert_eq!(old_leader.truncate_to(2).unwrap(), 2);
    let (offset, epoch) = old_leader.follower_position();
    assert_eq!(
        new_leader.on_follower_fetch(1, offset, 1, epoch, 0, -1).unwrap(),
        FollowerFetch::Read { high_watermark: 4 }
    );
    let data = new_leader.read_to_end(offset, 1 << 20, true).unwrap().data;
    assert_eq!(old_leader.append_replicated(&data, 4, 0).unwrap(), 4);
    assert_eq!(old_leader.follower_position(), (4, 1));
    assert_eq!(old_leader.high_watermark(), 4);
    assert_eq!(old_leader.end_offset_for_epoch(0), Some((0, 2)));
}

#[tokio::test]
async fn a_failed_fsync_takes_the_log_offline_and_a_later_good_fsync_does_not_make_it_durable() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = open(dir.path());
    lead(&p, 0, &[1]);
    p.append_as_leader(&mut simple(3, 0), 0, false).unwrap();
    p.wait_durable(3).await.unwrap();

    p.append_as_leader(&mut simple(2, 0), 0, false).unwrap();
    p.sync = |_| Err(std::io::Error::from_raw_os_error(5));
    let err = p.wait_durable(5).await.unwrap_err();
    assert_eq!(err.error_code(), ResponseError::KafkaStorageError, "{err}");
    // The disk recovers and fsync succeeds again: the records it may have dropped stay not durable.
    p.sync = std::fs::File::sync_data;
    let err = p.wait_durable(5).await.unwrap_err();
    assert!(matches!(err, crate::error::BrokerError::Log(LogError::Offline { .. })), "{err}");
    assert!(p.flush_if_dirty().await.is_ok(), "the background flush leaves an offline log alone");
    // Nothing is written to or read from the offline log.
    let err = p.append_as_leader(&mut simple(1, 0), 0, false).unwrap_err();
    assert_eq!(err.error_code(), ResponseError::KafkaStorageError);
    assert_eq!(p.read_to_end(0, 1 << 20, true).unwrap_err().error_code(), ResponseError::KafkaStorageError);
    assert_eq!(p.log_end_offset(), 5);
}

#[test]
fn an_io_error_takes_the_whole_log_directory_offline_and_leaves_other_directories_serving() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (dir_a, dir_b) = (Arc::new(LogDir::new(a.path().into())), Arc::new(LogDir::new(b.path().into())));
    let (p, sibling, elsewhere) =
        (open_in(a.path(), "p", &dir_a), open_in(a.path(), "sibling", &dir_a), open_in(b.path(), "other", &dir_b));
    for replica in [&p, &sibling, &elsewhere] {
        lead(replica, 0, &[1]);
        replica.append_as_leader(&mut simple(2, 0), 0, false).unwrap();
    }
    // What an append on a full disk returns.
    let full = LogError::Io { op: "appending to", path: p.dir.clone(), source: std::io::Error::from_raw_os_error(28) };
    assert!(p.storage::<()>(Err(full)).is_err());
    assert!(dir_a.failure().is_some_and(|r| r.contains("No space left")), "{:?}", dir_a.failure());
    for replica in [&p, &sibling] {
        let err = replica.append_as_leader(&mut simple(1, 0), 0, false).unwrap_err();
        assert_eq!(err.error_code(), ResponseError::KafkaStorageError, "{}", replica.name());
        assert_eq!(replica.read_to_end(0, 1 << 20, true).unwrap_err().error_code(), ResponseError::KafkaStorageError);
    }
    // A non-I/O refusal (a bad batch) is that request's problem, not the disk's.
    elsewhere.append_as_leader(&mut simple(1, 0), 0, false).unwrap();
    assert!(elsewhere.storage::<()>(Err(LogError::OffsetOutOfRange { requested: 9, start: 0, end: 3 })).is_err());
    assert!(dir_b.failure().is_none());
    assert!(!elsewhere.read_to_end(0, 1 << 20, true).unwrap().data.is_empty());
    assert_eq!(elsewhere.log_end_offset(), 3);
}

#[tokio::test]
async fn a_wait_for_a_write_truncated_away_ends_with_not_leader_instead_of_spinning() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path());
    lead(&p, 0, &[1]);
    p.append_as_leader(&mut simple(3, 0), 0, false).unwrap();
    p.wait_durable(3).await.unwrap();
    p.append_as_leader(&mut simple(2, 0), 0, false).unwrap();
    // Leadership moves before the fsync, and the new leader's log ends at 3.
    p.become_follower(2, 1);
    p.truncate_to(3).unwrap();
    let waited = tokio::time::timeout(std::time::Duration::from_secs(5), p.wait_durable(5)).await;
    let err = waited.expect("the wait never ended").unwrap_err();
    assert!(matches!(err, crate::error::BrokerError::Truncated { offset: 5, end: 3, .. }), "{err}");
    assert_eq!(err.error_code(), ResponseError::NotLeaderOrFollower);
}

/// A follower starts the writeback of its appends every `WRITEBACK_EVERY` bytes instead of
/// leaving a whole `flush_interval` of them to the background flush; a leader's appends (fsynced
/// by acks=all group commits) do not count.
#[tokio::test]
async fn a_follower_starts_the_writeback_of_its_appends_as_they_accumulate() {
    use crate::log::batch::test_batches::keyed;
    use crate::partition::WRITEBACK_EVERY;
    use kafka_protocol::records::Compression;
    use std::sync::atomic::Ordering;
    let (leader_dir, follower_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (leader, follower) = (open(leader_dir.path()), open(follower_dir.path()));
    lead(&leader, 0, &[1, 2]);
    follower.become_follower(1, 0);
    let value = "x".repeat(16 * 1024);
    let mut starts = 0;
    for _ in 0..40 {
        let offset = follower.follower_position().0;
        leader.append_as_leader(&mut keyed(&[(None, Some(&value), 0)], Compression::None, None), 0, false).unwrap();
        let data = leader.read_to_end(offset, 1 << 20, true).unwrap().data;
        let before = follower.unwritten_bytes.load(Ordering::Relaxed);
        follower.append_replicated(&data, 0, 0).unwrap();
        let after = follower.unwritten_bytes.load(Ordering::Relaxed);
        // One start runs at a time: let it finish, as a follower's next fetch would.
        for _ in 0..5_000 {
            if !follower.writeback_running.load(Ordering::Acquire) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert!(!follower.writeback_running.load(Ordering::Acquire), "a writeback start still running after 5 s");
        starts += usize::from(after < before);
        assert!(after < WRITEBACK_EVERY, "{after} bytes appended and not yet written back");
    }
    // 40 appends of a little over 16 KiB: one start after each 16 of them.
    assert_eq!(starts, 2);
    assert_eq!(leader.unwritten_bytes.load(Ordering::Relaxed), 0);
    // While a start runs, no second one is spawned: the bytes wait for the next.
    follower.writeback_running.store(true, Ordering::Release);
    let before = follower.unwritten_bytes.load(Ordering::Relaxed);
    let offset = follower.follower_position().0;
    let big = "y".repeat(300 * 1024);
    leader.append_as_leader(&mut keyed(&[(None, Some(&big), 0)], Compression::None, None), 0, false).unwrap();
    let data = leader.read_to_end(offset, 1 << 20, true).unwrap().data;
    follower.append_replicated(&data, 0, 0).unwrap();
    assert_eq!(follower.unwritten_bytes.load(Ordering::Relaxed), before + data.len() as u64);
}
