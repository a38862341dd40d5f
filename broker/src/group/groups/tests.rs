//! Unit tests of the pure coordinator core: what commits, rebalances, expiry and retention ask
//! to write, and what memory shows before and after the writes.

use super::*;
use crate::group::effects::AfterWrite;
use crate::group::store::StoredGroup;
use std::time::Duration;

const PARTITIONS: usize = 50;
const RETENTION_MS: i64 = 60_000;
const T0: i64 = 1_700_000_000_000;

/// Ids "m1", "m2", … in order.
struct Counting(u32);

impl MemberIds for Counting {
    fn next_id(&mut self, _client_id: &str) -> String {
        self.0 += 1;
        format!("m{}", self.0)
    }
}

fn core() -> Groups {
    let settings = CoreSettings {
        join: JoinSettings { initial_rebalance_delay: Duration::ZERO, max_size: 100 },
        retention_ms: RETENTION_MS,
    };
    let mut groups = Groups::new(PARTITIONS, settings, Box::new(Counting(0)));
    groups.set_led(0..PARTITIONS as i32, PARTITIONS);
    groups
}

fn join_args(member_id: &str) -> JoinArgs {
    JoinArgs {
        member_id: member_id.to_string(),
        instance_id: None,
        client_id: "c".into(),
        client_host: "/10.0.0.1".into(),
        session_timeout: Duration::from_secs(10),
        rebalance_timeout: Duration::from_secs(30),
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"sub"))],
        require_known_member_id: false,
    }
}

fn offset(value: i64, at: i64) -> StoredOffset {
    StoredOffset { offset: value, leader_epoch: 0, metadata: None, commit_timestamp: at }
}

/// Writes succeed: applies every append's in-memory change, as the runtime does after writing.
fn written(groups: &mut Groups, effects: &Effects) {
    for append in &effects.appends {
        if let Some(change) = &append.then {
            groups.apply(change.clone());
        }
    }
}

fn committed(groups: &Groups, group: &str) -> Vec<(String, i32, i64)> {
    let mut out: Vec<_> =
        groups.committed().into_iter().filter(|c| c.group == group).map(|c| (c.topic, c.partition, c.offset)).collect();
    out.sort();
    out
}

fn offset_keys(append: &Append) -> Vec<(String, i32, bool)> {
    let mut keys: Vec<_> = append
        .records
        .iter()
        .filter_map(|(key, value)| match key {
            StoredKey::Offset { topic, partition, .. } => Some((topic.clone(), *partition, value.is_some())),
            StoredKey::Group { .. } => None,
        })
        .collect();
    keys.sort();
    keys
}

fn stored_group_of(append: &Append) -> Option<&StoredGroup> {
    append.records.iter().find_map(|(key, value)| match (key, value) {
        (StoredKey::Group { .. }, Some(StoredValue::Group(g))) => Some(g),
        _ => None,
    })
}

/// A one-member group, synced and Stable at generation 1; returns the member id.
fn stable_member(groups: &mut Groups, group: &str, now: i64) -> String {
    let (answer, _) = groups.join(group, join_args(""), now);
    assert!(matches!(answer, Answer::Wait(_)));
    let member = groups.describe(group).expect("exists").members[0].member_id.clone();
    let (answer, effects) = groups.sync(group, &member, None, 1, vec![(member.clone(), Bytes::from_static(b"A"))], now);
    assert!(matches!(answer, Answer::Wait(_)));
    assert!(matches!(&effects.wakes[..], [Wake::Sync(_, r)] if r.assignment == Bytes::from_static(b"A")));
    member
}

#[test]
fn a_commit_asks_for_one_append_to_the_group_partition_and_shows_once_written() {
    let mut groups = core();
    let offsets = vec![("t".to_string(), 0, offset(42, T0)), ("t".to_string(), 1, offset(7, T0))];
    let effects = groups.commit("g", -1, "", None, offsets).expect("offsets-only commit to an empty group");
    assert!(effects.wakes.is_empty());
    let [append] = &effects.appends[..] else { panic!("one append: {:?}", effects.appends) };
    assert_eq!(append.kind, AppendKind::Commit);
    assert_eq!(append.group, "g");
    assert_eq!(append.partition, partition_for("g", PARTITIONS) as i32);
    assert_eq!(offset_keys(append), vec![("t".into(), 0, true), ("t".into(), 1, true)]);
    assert!(matches!(&append.records[0].1, Some(StoredValue::Offset(o)) if o.offset == 42));
    assert!(committed(&groups, "g").is_empty(), "nothing shows before the write");
    written(&mut groups, &effects);
    assert_eq!(committed(&groups, "g"), vec![("t".into(), 0, 42), ("t".into(), 1, 7)]);
    let fetched = groups.fetch_offsets("g", Some(vec![("t".into(), vec![1, 2])]));
    assert_eq!(fetched[0].1[0].1.as_ref().map(|o| o.offset), Some(7));
    assert_eq!(fetched[0].1[1].1, None);
}

#[test]
fn commits_are_validated_before_anything_is_written() {
    let mut groups = core();
    let member = stable_member(&mut groups, "g", T0);
    let one = || vec![("t".to_string(), 0, offset(1, T0))];
    assert_eq!(groups.commit("g", 9, &member, None, one()).err(), Some(ResponseError::IllegalGeneration));
    assert_eq!(groups.commit("g", 1, "nobody", None, one()).err(), Some(ResponseError::UnknownMemberId));
    // The group has members: an offsets-only commit is refused.
    assert_eq!(groups.commit("g", -1, "", None, one()).err(), Some(ResponseError::UnknownMemberId));
    let effects = groups.commit("g", 1, &member, None, one()).expect("the member commits");
    assert_eq!(effects.appends.len(), 1);
}

#[test]
fn a_completed_rebalance_writes_the_group_metadata_with_its_members() {
    let mut groups = core();
    let (answer, effects) = groups.join("g", join_args(""), T0);
    let Answer::Wait(waiter) = answer else { panic!("a new member waits") };
    let [Wake::Join(woken, result)] = &effects.wakes[..] else { panic!("{:?}", effects.wakes) };
    assert_eq!((*woken, result.generation, result.member_id.as_str()), (waiter, 1, "m1"));
    let [append] = &effects.appends[..] else { panic!("metadata written") };
    assert_eq!(append.kind, AppendKind::GroupMetadata);
    let stored = stored_group_of(append).expect("metadata");
    assert_eq!(stored.generation, 1);
    assert!(stored.members.is_empty(), "mid-rebalance membership is not written");
    let (_, effects) = groups.sync("g", "m1", None, 1, vec![("m1".into(), Bytes::from_static(b"A"))], T0);
    let stored = stored_group_of(&effects.appends[0]).expect("metadata on Stable");
    assert_eq!(stored.members.len(), 1);
    assert_eq!(stored.leader.as_deref(), Some("m1"));
    // A heartbeat changes nothing worth writing.
    assert_eq!(groups.heartbeat("g", "m1", None, 1, T0 + 1_000), None);
    let (_, effects) = groups.tick(T0 + 1_000);
    assert!(effects.is_empty(), "{effects:?}");
}

#[test]
fn session_expiry_removes_members_after_the_timeout_only() {
    let mut groups = core();
    let member = stable_member(&mut groups, "g", T0);
    let (expired, effects) = groups.tick(T0 + 9_999);
    assert!(expired.is_empty() && effects.is_empty());
    let (expired, effects) = groups.tick(T0 + 10_000);
    assert_eq!(expired, vec![("g".to_string(), member)]);
    let kinds: Vec<AppendKind> = effects.appends.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, vec![AppendKind::GroupMetadata, AppendKind::ForgetGroup]);
    let stored = stored_group_of(&effects.appends[0]).expect("the now empty group is written");
    assert_eq!((stored.generation, stored.empty_since), (1, Some(T0 + 10_000)));
    assert!(stored.members.is_empty());
    // Empty and without offsets, the group is not kept around.
    assert!(groups.describe("g").is_none());
}

#[test]
fn offsets_of_an_empty_group_expire_after_the_retention_then_the_group_goes() {
    let mut groups = core();
    let member = stable_member(&mut groups, "g", T0);
    let effects = groups.commit("g", 1, &member, None, vec![("t".into(), 0, offset(5, T0))]).expect("commit");
    written(&mut groups, &effects);
    assert_eq!(groups.leave("g", &[(member, None)], T0).0, Ok(vec![None]));
    // Retention counts from when the group became empty, not from the commit.
    let (_, effects) = groups.tick(T0 + RETENTION_MS);
    assert!(effects.is_empty(), "{effects:?}");
    assert_eq!(committed(&groups, "g").len(), 1);
    let (_, effects) = groups.tick(T0 + RETENTION_MS + 1);
    let [append] = &effects.appends[..] else { panic!("{:?}", effects.appends) };
    assert_eq!(append.kind, AppendKind::Expiration);
    assert_eq!(offset_keys(append), vec![("t".into(), 0, false)], "a tombstone");
    assert_eq!(append.then, Some(AfterWrite::DropOffsets { group: "g".into(), keys: vec![("t".into(), 0)] }));
    written(&mut groups, &effects);
    assert!(committed(&groups, "g").is_empty());
    // Nothing left: the group is forgotten and its metadata tombstoned.
    let (_, effects) = groups.tick(T0 + RETENTION_MS + 2);
    let [append] = &effects.appends[..] else { panic!("{:?}", effects.appends) };
    assert_eq!(append.kind, AppendKind::ForgetGroup);
    assert_eq!(append.records.len(), 1);
    assert!(matches!(&append.records[0], (StoredKey::Group { group }, None) if group == "g"));
    assert!(groups.describe("g").is_none());
}

#[test]
fn offsets_only_groups_expire_each_offset_retention_after_its_commit() {
    let mut groups = core();
    let first = groups.commit("g", -1, "", None, vec![("t".into(), 0, offset(1, T0))]).expect("commit");
    written(&mut groups, &first);
    let later = T0 + 30_000;
    let second = groups.commit("g", -1, "", None, vec![("t".into(), 1, offset(2, later))]).expect("commit");
    written(&mut groups, &second);
    let (_, effects) = groups.tick(T0 + RETENTION_MS + 1);
    let [append] = &effects.appends[..] else { panic!("{:?}", effects.appends) };
    assert_eq!(offset_keys(append), vec![("t".into(), 0, false)], "only the older offset expires");
    written(&mut groups, &effects);
    assert_eq!(committed(&groups, "g"), vec![("t".into(), 1, 2)]);
    // An offsets-only group never had metadata: forgetting it writes nothing.
    let (_, effects) = groups.tick(later + RETENTION_MS + 1);
    written(&mut groups, &effects);
    let (_, effects) = groups.tick(later + RETENTION_MS + 2);
    assert!(effects.appends.is_empty(), "{:?}", effects.appends);
    assert!(groups.list().is_empty());
}

#[test]
fn a_failed_write_changes_nothing_in_memory() {
    let mut groups = core();
    let effects = groups.commit("g", -1, "", None, vec![("t".into(), 0, offset(1, T0))]).expect("commit");
    drop(effects);
    assert!(committed(&groups, "g").is_empty());
}

#[test]
fn deleting_a_group_tombstones_it_and_its_offsets() {
    let mut groups = core();
    let member = stable_member(&mut groups, "g", T0);
    assert_eq!(groups.delete_group("g").err(), Some(ResponseError::NonEmptyGroup));
    assert_eq!(groups.delete_group("other").err(), Some(ResponseError::GroupIdNotFound));
    let effects = groups.commit("g", 1, &member, None, vec![("t".into(), 3, offset(9, T0))]).expect("commit");
    written(&mut groups, &effects);
    let _ = groups.leave("g", &[(member, None)], T0);
    let effects = groups.delete_group("g").expect("empty now");
    let [append] = &effects.appends[..] else { panic!("{:?}", effects.appends) };
    assert_eq!(append.kind, AppendKind::DeleteGroup);
    assert_eq!(offset_keys(append), vec![("t".into(), 3, false)]);
    assert!(append.records.iter().any(|r| matches!(r, (StoredKey::Group { .. }, None))));
    assert!(groups.describe("g").is_some(), "still there until written");
    written(&mut groups, &effects);
    assert!(groups.describe("g").is_none());
}

#[test]
fn offsets_of_subscribed_topics_are_not_deleted() {
    let mut groups = core();
    let member = stable_member(&mut groups, "g", T0);
    let offsets = vec![("t".into(), 0, offset(1, T0)), ("u".into(), 0, offset(2, T0))];
    let effects = groups.commit("g", 1, &member, None, offsets).expect("commit");
    written(&mut groups, &effects);
    let asked = vec![("t".to_string(), 0), ("u".to_string(), 0), ("u".to_string(), 5)];
    let (results, effects) = groups.delete_offsets("g", asked, |subs, topic| subs[0] == "sub" && topic == "t").unwrap();
    assert_eq!(results[0].2, Some(ResponseError::GroupSubscribedToTopic));
    assert_eq!((results[1].2, results[2].2), (None, None));
    let [append] = &effects.appends[..] else { panic!("{:?}", effects.appends) };
    assert_eq!(offset_keys(append), vec![("u".into(), 0, false)], "only what exists is tombstoned");
    written(&mut groups, &effects);
    assert_eq!(committed(&groups, "g"), vec![("t".into(), 0, 1)]);
}

#[test]
fn moving_a_partition_away_cancels_the_requests_parked_in_its_groups() {
    let mut groups = core();
    let (first, _) = groups.join("g", join_args(""), T0);
    let Answer::Wait(_) = first else { panic!("waits") };
    // A second member parks until m1 rejoins.
    let (answer, _) = groups.join("g", join_args(""), T0);
    let Answer::Wait(parked) = answer else { panic!("waits") };
    let index = partition_for("g", PARTITIONS) as i32;
    let effects = groups.release(&[index + 1], PARTITIONS);
    assert!(effects.wakes.is_empty(), "other partitions are untouched");
    let effects = groups.release(&[index], PARTITIONS);
    assert!(matches!(&effects.wakes[..], [Wake::Cancel(id)] if *id == parked));
    assert!(groups.list().is_empty());
    // A commit written after the move does not bring the group back here.
    groups.set_led(std::iter::empty(), PARTITIONS);
    let offsets = vec![(("t".to_string(), 0), offset(1, T0))];
    groups.apply(AfterWrite::StoreOffsets { group: "g".into(), offsets });
    assert!(groups.list().is_empty());
}

#[test]
fn a_group_restored_from_kafkas_record_answers_and_its_members_rejoin_normally() {
    use crate::group::codec::{decode_group, encode_value, Format};
    use crate::group::store::{Loaded, StoredMember};
    let member = |id: &str| StoredMember {
        member_id: id.into(),
        instance_id: None,
        client_id: "c".into(),
        client_host: "/10.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        subscription: Bytes::from_static(b"sub"),
        assignment: Bytes::from_static(b"A"),
    };
    let stored = StoredGroup {
        protocol_type: Some("consumer".into()),
        generation: 4,
        protocol: Some("range".into()),
        leader: Some("m1".into()),
        members: vec![member("m1"), member("m2")],
        empty_since: None,
    };
    // Through the bytes of Kafka's record, which keep only the chosen protocol's metadata.
    let bytes = encode_value(&StoredValue::Group(stored)).unwrap();
    let mut loaded = Loaded::default();
    loaded.groups.insert("g".into(), decode_group(&bytes, Format::Kafka).unwrap());
    let mut groups = core();
    assert!(groups.restore(loaded, T0).is_empty());

    let described = groups.describe("g").expect("restored");
    assert_eq!(described.state, "Stable");
    assert_eq!(described.members.len(), 2);
    assert_eq!(groups.heartbeat("g", "m2", None, 4, T0 + 1), None);
    let (answer, _) = groups.sync("g", "m2", None, 4, Vec::new(), T0 + 1);
    assert!(matches!(answer, Answer::Now(ref r) if r.error.is_none() && r.assignment == Bytes::from_static(b"A")));
    assert!(groups.commit("g", 4, "m2", None, vec![("t".into(), 0, offset(1, T0))]).is_ok());

    // A follower rejoining with its full protocol list, the chosen one's metadata unchanged,
    // gets the current generation back: no rebalance.
    let both = vec![("range".into(), Bytes::from_static(b"sub")), ("roundrobin".into(), Bytes::from_static(b"rr"))];
    let (answer, _) = groups.join("g", JoinArgs { protocols: both.clone(), ..join_args("m2") }, T0 + 2);
    assert!(matches!(answer, Answer::Now(ref r) if r.error.is_none() && r.generation == 4), "replayed");
    // A member whose subscription changed rebalances the group, as before the restart.
    let changed = vec![("range".into(), Bytes::from_static(b"other"))];
    let (answer, _) = groups.join("g", JoinArgs { protocols: changed, ..join_args("m1") }, T0 + 3);
    assert!(matches!(answer, Answer::Wait(_)));
    let (answer, effects) = groups.join("g", JoinArgs { protocols: both, ..join_args("m2") }, T0 + 3);
    assert!(matches!(answer, Answer::Wait(_)));
    assert!(
        effects.wakes.iter().any(|w| matches!(w, Wake::Join(_, r) if r.generation == 5)),
        "both rejoined: generation 5 is handed out"
    );
}
