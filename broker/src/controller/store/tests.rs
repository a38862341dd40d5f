//! The log survives restarts and torn tails; the state machine survives restarts via its snapshot.

use super::raft_log::encode_record;
use super::*;
use crate::controller::TypeConfig;
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::{CommittedLeaderId, Entry};
use openraft::{EntryPayload, LogId, RaftLogReader, RaftSnapshotBuilder, Vote};
use std::fs::OpenOptions;

fn entry(term: u64, index: u64) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
        payload: EntryPayload::Normal(crate::controller::MetadataCommand::BrokerHeartbeat { id: index as i32 }),
    }
}

fn append(store: &mut LogStore, entries: Vec<Entry<TypeConfig>>) {
    // Bypass the callback (its constructor is crate-private in openraft) but exercise the same path.
    store.lock().append(entries).unwrap();
}

#[tokio::test]
async fn restart_keeps_log_and_vote() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = LogStore::open(dir.path()).unwrap();
        assert!(s.is_pristine());
        append(&mut s, (1..=5).map(|i| entry(1, i)).collect());
        s.save_vote(&Vote::new(3, 2)).await.unwrap();
        s.truncate(LogId::new(CommittedLeaderId::new(1, 1), 4)).await.unwrap();
        append(&mut s, vec![entry(2, 4)]);
        s.purge(LogId::new(CommittedLeaderId::new(1, 1), 1)).await.unwrap();
    }
    let mut s = LogStore::open(dir.path()).unwrap();
    assert_eq!(s.read_vote().await.unwrap(), Some(Vote::new(3, 2)));
    let got: Vec<_> = s.try_get_log_entries(0..).await.unwrap().iter().map(|e| e.log_id).collect();
    let want: Vec<_> =
        [(1, 2), (1, 3), (2, 4)].iter().map(|(t, i)| LogId::new(CommittedLeaderId::new(*t, 1), *i)).collect();
    assert_eq!(got, want);
    let st = s.get_log_state().await.unwrap();
    assert_eq!(st.last_purged_log_id.map(|l| l.index), Some(1));
    assert_eq!(st.last_log_id, Some(want[2]));
}

#[tokio::test]
async fn torn_tail_is_cut_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = LogStore::open(dir.path()).unwrap();
        append(&mut s, (1..=3).map(|i| entry(1, i)).collect());
    }
    let path = dir.path().join("raft.log");
    let good_len = std::fs::metadata(&path).unwrap().len();
    // Half a record: a crash in the middle of an append.
    let mut rec = Vec::new();
    encode_record(&entry(1, 4), &mut rec).unwrap();
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&rec[..rec.len() / 2]).unwrap();
    drop(f);
    let mut s = LogStore::open(dir.path()).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
    assert_eq!(s.get_log_state().await.unwrap().last_log_id.map(|l| l.index), Some(3));
    // A flipped byte in the last record is also a torn tail.
    append(&mut s, vec![entry(1, 4)]);
    drop(s);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let mut s = LogStore::open(dir.path()).unwrap();
    assert_eq!(s.get_log_state().await.unwrap().last_log_id.map(|l| l.index), Some(3));
    append(&mut s, vec![entry(1, 4)]);
    assert_eq!(s.try_get_log_entries(4..5).await.unwrap().len(), 1);
}

#[tokio::test]
async fn snapshot_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = StateMachineStore::open(dir.path()).unwrap();
    let reg = crate::controller::MetadataCommand::RegisterBroker {
        id: 1,
        host: "h".into(),
        port: 1,
        rack: None,
        listeners: vec![],
    };
    let e = Entry { log_id: LogId::new(CommittedLeaderId::new(1, 1), 1), payload: EntryPayload::Normal(reg) };
    let res = sm.apply(vec![e]).await.unwrap();
    assert!(res[0].is_ok());
    sm.build_snapshot().await.unwrap();
    let mut sm2 = StateMachineStore::open(dir.path()).unwrap();
    assert_eq!(sm2.state(), sm.state());
    assert_eq!(sm2.applied_state().await.unwrap().0.map(|l| l.index), Some(1));
    assert!(sm2.get_current_snapshot().await.unwrap().is_some());
}

#[tokio::test]
async fn after_a_failed_write_the_raft_log_refuses_every_write_even_once_the_disk_works_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = LogStore::open(dir.path()).unwrap();
    append(&mut s, (1..=3).map(|i| entry(1, i)).collect());
    s.lock().break_file_for_test();
    assert!(s.lock().append(vec![entry(1, 4)]).is_err());
    // The disk "recovers": a write would now succeed, but what the failed one left is unknown.
    s.lock().repair_file_for_test();
    assert!(s.lock().append(vec![entry(1, 4)]).is_err(), "a write after a failure must be refused");
    assert!(s.save_vote(&Vote::new(2, 1)).await.is_err());
    assert!(s.truncate(LogId::new(CommittedLeaderId::new(1, 1), 2)).await.is_err());
    drop(s);
    // A restart re-reads the file: the entries written before the failure are all there.
    let mut s = LogStore::open(dir.path()).unwrap();
    let got: Vec<u64> = s.try_get_log_entries(0..).await.unwrap().iter().map(|e| e.log_id.index).collect();
    assert_eq!(got, vec![1, 2, 3]);
    append(&mut s, vec![entry(1, 4)]);
}

#[tokio::test]
async fn an_append_over_stored_entries_replaces_them_on_disk_too() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = LogStore::open(dir.path()).unwrap();
        append(&mut s, (1..=6).map(|i| entry(1, i)).collect());
        // Entries 4.. of term 1 are replaced by term 2 without a truncate call.
        append(&mut s, vec![entry(2, 4), entry(2, 5)]);
        let got: Vec<_> = s.try_get_log_entries(0..).await.unwrap().iter().map(|e| e.log_id).collect();
        assert_eq!(got.len(), 5, "the stale entry 6 must be gone: {got:?}");
    }
    let mut s = LogStore::open(dir.path()).unwrap();
    let got: Vec<(u64, u64)> =
        s.try_get_log_entries(0..).await.unwrap().iter().map(|e| (e.log_id.leader_id.term, e.log_id.index)).collect();
    assert_eq!(got, vec![(1, 1), (1, 2), (1, 3), (2, 4), (2, 5)]);
}
