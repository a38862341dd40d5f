//! Partitioning, and loading a partition: both formats, latest-wins across them, damaged
//! records skipped, and the migration of JSON records.

use super::*;
use crate::log_dirs::LogDir;
use millrace_config::{BrokerConfig, TopicOverrides};

#[test]
fn java_hash_matches_java() {
    // Values from Java's "…".hashCode().
    assert_eq!(java_hash(""), 0);
    assert_eq!(java_hash("a"), 97);
    assert_eq!(java_hash("hello world"), 1_794_106_052);
    assert_eq!(partition_for("hello world", 50), 1_794_106_052 % 50);
}

/// A led offsets partition in `dir`.
fn led_partition(dir: &std::path::Path) -> Partition {
    let config = TopicOverrides::default().resolve(&BrokerConfig::default());
    let log_dir = Arc::new(LogDir::new(dir.to_path_buf()));
    let p = Partition::open(OFFSETS_TOPIC, 0, dir.join("__consumer_offsets-0"), log_dir, &config).unwrap();
    p.become_leader(1, &[1], &[1], 0, 0, 1, 10_000, 0).unwrap();
    p
}

fn json(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn json_offset_key(group: &str, topic: &str, partition: i32) -> Bytes {
    json(&format!(r#"{{"type":"offset","group":"{group}","topic":"{topic}","partition":{partition}}}"#))
}

fn json_offset(offset: i64) -> Bytes {
    json(&format!(r#"{{"offset":{offset},"leader_epoch":0,"metadata":null,"commit_timestamp":1000}}"#))
}

fn offset(value: i64) -> StoredOffset {
    StoredOffset { offset: value, leader_epoch: 0, metadata: None, commit_timestamp: 1000 }
}

fn kafka(key: StoredKey, value: Option<StoredValue>) -> RawRecord {
    (codec::encode_key(&key).unwrap(), value.map(|v| codec::encode_value(&v).unwrap()))
}

fn offset_key(group: &str, topic: &str, partition: i32) -> StoredKey {
    StoredKey::Offset { group: group.into(), topic: topic.into(), partition }
}

/// Every (key, value) in the partition, in log order.
fn records(p: &Partition) -> Vec<RawRecord> {
    let mut data = p.read_to_end(0, 1 << 24, true).unwrap().data;
    let sets = RecordBatchDecoder::decode_all(&mut data).unwrap();
    sets.into_iter().flat_map(|s| s.records).map(|r| (r.key.unwrap_or_default(), r.value)).collect()
}

const JSON_GROUP: &str = r#"{"protocol_type":"consumer","generation":3,"protocol":"range","leader":"m1","members":[
    {"member_id":"m1","instance_id":null,"client_id":"c","client_host":"/h","session_timeout_ms":10000,
     "rebalance_timeout_ms":60000,"protocols":[["range","c3Vi"]],"assignment":"YXNz"}],"empty_since":null}"#;

#[test]
fn latest_record_wins_across_formats() {
    let dir = tempfile::tempdir().unwrap();
    let p = led_partition(dir.path());
    append_raw(&p, &[(json_offset_key("g", "t", 0), Some(json_offset(5)))], 1).unwrap();
    append_raw(&p, &[kafka(offset_key("g", "t", 0), Some(StoredValue::Offset(offset(9))))], 2).unwrap();
    append_raw(&p, &[(json_offset_key("g", "t", 1), Some(json_offset(4)))], 3).unwrap();
    append_raw(&p, &[kafka(offset_key("g", "t", 1), None)], 4).unwrap();
    let loaded = OffsetStore::load(&p).unwrap();
    assert_eq!(loaded.offsets["g"].get(&("t".into(), 0)), Some(&offset(9)), "the later binary commit wins");
    assert!(!loaded.offsets["g"].contains_key(&("t".into(), 1)), "a binary tombstone deletes a JSON offset");
    assert_eq!(loaded.records, 4);
    // Both JSON keys still hold values in the log: both need tombstones.
    assert_eq!(loaded.legacy_keys.len(), 2);
}

#[test]
fn loading_json_records_migrates_them_to_kafkas_format() {
    let dir = tempfile::tempdir().unwrap();
    let p = led_partition(dir.path());
    let group_key = json(r#"{"type":"group","group":"g"}"#);
    append_raw(
        &p,
        &[
            (json_offset_key("g", "t", 0), Some(json_offset(5))),
            (json_offset_key("g", "t", 0), Some(json_offset(6))),
            (json_offset_key("g", "t", 1), Some(json_offset(7))),
            (group_key.clone(), Some(json(JSON_GROUP))),
            // A JSON key already deleted needs no tombstone.
            (json_offset_key("gone", "t", 0), Some(json_offset(1))),
            (json_offset_key("gone", "t", 0), None),
        ],
        1,
    )
    .unwrap();
    let end_before = p.log_end_offset();
    let loaded = OffsetStore::load_and_migrate(&p, 2).unwrap();
    assert_eq!(loaded.offsets["g"].get(&("t".into(), 0)), Some(&offset(6)));
    assert_eq!(loaded.offsets["g"].get(&("t".into(), 1)), Some(&offset(7)));
    assert!(!loaded.offsets.contains_key("gone"));
    let group = &loaded.groups["g"];
    assert_eq!((group.generation, group.protocol.as_deref()), (3, Some("range")));
    assert_eq!(group.members[0].subscription, Bytes::from_static(b"sub"));
    assert_eq!(group.members[0].assignment, Bytes::from_static(b"ass"));

    // Written after the JSON: tombstones for its three live keys, then the state in Kafka's format.
    let written: Vec<RawRecord> = records(&p).into_iter().skip(end_before as usize).collect();
    let mut tombstoned: Vec<Bytes> = written
        .iter()
        .take(3)
        .map(|(k, v)| {
            assert!(v.is_none());
            k.clone()
        })
        .collect();
    tombstoned.sort();
    let mut expected = vec![json_offset_key("g", "t", 0), json_offset_key("g", "t", 1), group_key];
    expected.sort();
    assert_eq!(tombstoned, expected);
    let state: Vec<RawRecord> = written[3..].to_vec();
    assert_eq!(
        state,
        vec![
            kafka(offset_key("g", "t", 0), Some(StoredValue::Offset(offset(6)))),
            kafka(offset_key("g", "t", 1), Some(StoredValue::Offset(offset(7)))),
            kafka(StoredKey::Group { group: "g".into() }, Some(StoredValue::Group(group.clone()))),
        ]
    );

    // Loading again reads the same state, finds nothing left to migrate and writes nothing.
    let end = p.log_end_offset();
    let again = OffsetStore::load_and_migrate(&p, 3).unwrap();
    assert_eq!(again.offsets, loaded.offsets);
    assert_eq!(again.groups, loaded.groups);
    assert!(again.legacy_keys.is_empty());
    assert_eq!(p.log_end_offset(), end);
}

#[test]
fn damaged_records_are_skipped_and_the_rest_loads() {
    let dir = tempfile::tempdir().unwrap();
    let p = led_partition(dir.path());
    let good = kafka(offset_key("g", "t", 0), Some(StoredValue::Offset(offset(3))));
    let mut truncated = good.1.clone().unwrap();
    truncated.truncate(5);
    append_raw(
        &p,
        &[
            good.clone(),
            // A later value that does not decode leaves the earlier one.
            (good.0.clone(), Some(truncated)),
            // An unknown key version (a KIP-848 record, say) and an unknown value version.
            (Bytes::from_static(&[0, 5, 0, 1, b'g']), Some(Bytes::from_static(&[0, 0]))),
            (codec::encode_key(&offset_key("g", "t", 1)).unwrap(), Some(Bytes::from_static(&[0, 9, 1, 2]))),
            (Bytes::from_static(b"{not json"), Some(Bytes::from_static(b"x"))),
            (Bytes::new(), None),
        ],
        1,
    )
    .unwrap();
    let loaded = OffsetStore::load(&p).unwrap();
    assert_eq!((loaded.records, loaded.skipped), (6, 5));
    assert_eq!(loaded.offsets["g"].len(), 1);
    assert_eq!(loaded.offsets["g"][&("t".to_string(), 0)], offset(3));
}
