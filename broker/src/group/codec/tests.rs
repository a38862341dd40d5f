//! The bytes of each record against the bytes Kafka writes, spelled out here from Kafka's
//! schemas (int16 version, int16-length strings, int32-length bytes and arrays, big-endian
//! integers); older and newer versions; the JSON of earlier millrace; damaged input.

use super::*;

/// Test data builder for the big-endian layouts of Kafka's non-flexible versions.
#[derive(Default)]
struct Wire(Vec<u8>);

impl Wire {
    fn i16(mut self, v: i16) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i32(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i64(mut self, v: i64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn str(self, s: &str) -> Self {
        let mut w = self.i16(s.len() as i16);
        w.0.extend_from_slice(s.as_bytes());
        w
    }
    fn null_str(self) -> Self {
        self.i16(-1)
    }
    fn bytes(self, b: &[u8]) -> Self {
        let mut w = self.i32(b.len() as i32);
        w.0.extend_from_slice(b);
        w
    }
    fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    fn done(self) -> Bytes {
        Bytes::from(self.0)
    }
}

fn offset_key() -> StoredKey {
    StoredKey::Offset { group: "g1".into(), topic: "web-logs".into(), partition: 3 }
}

/// A valid offset value, encoded (the damaged-record tests start from it).
fn encoded_offset_value() -> Bytes {
    let offset = StoredOffset { offset: 1, leader_epoch: 1, metadata: Some("meta".into()), commit_timestamp: 1 };
    encode_value(&StoredValue::Offset(offset)).unwrap()
}

fn member() -> StoredMember {
    StoredMember {
        member_id: "c-1".into(),
        instance_id: None,
        client_id: "c".into(),
        client_host: "/10.0.0.1".into(),
        session_timeout_ms: 45_000,
        rebalance_timeout_ms: 300_000,
        subscription: Bytes::from_static(&[0, 1, 2]),
        assignment: Bytes::from_static(&[9]),
    }
}

fn stable_group() -> StoredGroup {
    StoredGroup {
        protocol_type: Some("consumer".into()),
        generation: 7,
        protocol: Some("range".into()),
        leader: Some("c-1".into()),
        members: vec![member(), StoredMember { member_id: "c-2".into(), instance_id: Some("i-2".into()), ..member() }],
        empty_since: None,
    }
}

#[test]
fn offset_commit_key_is_kafkas_version_1() {
    let expected = Wire::default().i16(1).str("g1").str("web-logs").i32(3).done();
    assert_eq!(encode_key(&offset_key()).unwrap(), expected);
    assert_eq!(decode_key(&expected).unwrap(), (offset_key(), Format::Kafka));
    // Version 0 has the same fields.
    let v0 = Wire::default().i16(0).str("g1").str("web-logs").i32(3).done();
    assert_eq!(decode_key(&v0).unwrap(), (offset_key(), Format::Kafka));
}

#[test]
fn group_metadata_key_is_kafkas_version_2() {
    let key = StoredKey::Group { group: "g1".into() };
    let expected = Wire::default().i16(2).str("g1").done();
    assert_eq!(encode_key(&key).unwrap(), expected);
    assert_eq!(decode_key(&expected).unwrap(), (key, Format::Kafka));
}

#[test]
fn offset_commit_value_is_kafkas_version_3() {
    let offset =
        StoredOffset { offset: 42, leader_epoch: 5, metadata: Some("m".into()), commit_timestamp: 1_700_000_000_123 };
    let expected = Wire::default().i16(3).i64(42).i32(5).str("m").i64(1_700_000_000_123).done();
    assert_eq!(encode_value(&StoredValue::Offset(offset.clone())).unwrap(), expected);
    assert_eq!(decode_offset(&expected, Format::Kafka).unwrap(), offset);
    // No metadata is Kafka's empty string, and reads back as none.
    let bare = StoredOffset { metadata: None, ..offset };
    let expected = Wire::default().i16(3).i64(42).i32(5).str("").i64(1_700_000_000_123).done();
    assert_eq!(encode_value(&StoredValue::Offset(bare.clone())).unwrap(), expected);
    assert_eq!(decode_offset(&expected, Format::Kafka).unwrap(), bare);
}

#[test]
fn group_metadata_value_is_kafkas_version_3() {
    let member_bytes = |w: Wire, id: &str, instance: Option<&str>| {
        let w = w.str(id);
        let w = match instance {
            Some(i) => w.str(i),
            None => w.null_str(),
        };
        w.str("c").str("/10.0.0.1").i32(300_000).i32(45_000).bytes(&[0, 1, 2]).bytes(&[9])
    };
    let w = Wire::default().i16(3).str("consumer").i32(7).str("range").str("c-1").i64(-1).i32(2);
    let w = member_bytes(w, "c-1", None);
    let expected = member_bytes(w, "c-2", Some("i-2")).done();
    assert_eq!(encode_value(&StoredValue::Group(stable_group())).unwrap(), expected);
    assert_eq!(decode_group(&expected, Format::Kafka).unwrap(), stable_group());
}

#[test]
fn an_empty_group_keeps_when_it_became_empty_as_its_state_timestamp() {
    let group = StoredGroup {
        protocol_type: Some("consumer".into()),
        generation: 8,
        protocol: None,
        leader: None,
        members: Vec::new(),
        empty_since: Some(1_700_000_000_000),
    };
    let expected =
        Wire::default().i16(3).str("consumer").i32(8).null_str().null_str().i64(1_700_000_000_000).i32(0).done();
    assert_eq!(encode_value(&StoredValue::Group(group.clone())).unwrap(), expected);
    assert_eq!(decode_group(&expected, Format::Kafka).unwrap(), group);
    // An offsets-only group: Kafka's "" protocol type is none.
    let simple = StoredGroup { protocol_type: None, generation: 0, empty_since: None, ..group };
    let bytes = encode_value(&StoredValue::Group(simple.clone())).unwrap();
    assert_eq!(&bytes[..4], &[0, 3, 0, 0]);
    assert_eq!(decode_group(&bytes, Format::Kafka).unwrap(), simple);
}

#[test]
fn older_value_versions_are_read() {
    // v0: no leader epoch; v1 adds the expire timestamp, which this broker does not use.
    let v0 = Wire::default().i16(0).i64(10).str("").i64(1000).done();
    let v1 = Wire::default().i16(1).i64(10).str("").i64(1000).i64(2000).done();
    for bytes in [v0, v1] {
        let read = decode_offset(&bytes, Format::Kafka).unwrap();
        assert_eq!(read, StoredOffset { offset: 10, leader_epoch: -1, metadata: None, commit_timestamp: 1000 });
    }
    // Group v0: no state timestamp, no rebalance timeout (the session timeout stands in).
    let v0 = Wire::default()
        .i16(0)
        .str("consumer")
        .i32(1)
        .str("range")
        .str("a")
        .i32(1)
        .str("a")
        .str("c")
        .str("/h")
        .i32(10_000)
        .bytes(b"s")
        .bytes(b"x")
        .done();
    let group = decode_group(&v0, Format::Kafka).unwrap();
    assert_eq!((group.generation, group.empty_since), (1, None));
    assert_eq!(group.members[0].rebalance_timeout_ms, 10_000);
    assert_eq!(group.members[0].subscription, Bytes::from_static(b"s"));
}

#[test]
fn flexible_version_4_is_read_with_its_tagged_fields() {
    // v4 is flexible: compact strings (length + 1 as a varint) and a tagged-field section, here
    // holding a field this schema does not name (tag 0, 16 bytes: a topic id).
    let mut tagged = vec![1u8, 0, 16];
    tagged.extend_from_slice(&[7; 16]);
    let v4 = Wire::default().i16(4).i64(77).i32(2).raw(&[2, b'm']).i64(5000).raw(&tagged).done();
    let read = decode_offset(&v4, Format::Kafka).unwrap();
    assert_eq!(read, StoredOffset { offset: 77, leader_epoch: 2, metadata: Some("m".into()), commit_timestamp: 5000 });
}

#[test]
fn unknown_versions_are_errors() {
    let key = Wire::default().i16(3).str("g").done();
    assert!(matches!(decode_key(&key), Err(RecordError::UnknownVersion { version: 3, .. })));
    let key = Wire::default().i16(-1).done();
    assert!(matches!(decode_key(&key), Err(RecordError::UnknownVersion { version: -1, .. })));
    let value = Wire::default().i16(5).i64(1).str("").i64(1).done();
    assert!(matches!(decode_offset(&value, Format::Kafka), Err(RecordError::UnknownVersion { version: 5, .. })));
    let value = Wire::default().i16(9).done();
    assert!(matches!(decode_group(&value, Format::Kafka), Err(RecordError::UnknownVersion { version: 9, .. })));
}

#[test]
fn damaged_records_are_errors_not_panics() {
    let key = encode_key(&offset_key()).unwrap();
    let offset = encoded_offset_value();
    let group = encode_value(&StoredValue::Group(stable_group())).unwrap();
    // Every truncation of a valid record fails to decode.
    for len in 0..key.len() {
        assert!(decode_key(&key.slice(..len)).is_err(), "key cut at {len}");
    }
    for len in 0..offset.len() {
        assert!(decode_offset(&offset.slice(..len), Format::Kafka).is_err(), "offset cut at {len}");
    }
    for len in 0..group.len() {
        assert!(decode_group(&group.slice(..len), Format::Kafka).is_err(), "group cut at {len}");
    }
    // A byte too many.
    let mut long = key.to_vec();
    long.push(0);
    assert!(matches!(decode_key(&Bytes::from(long)), Err(RecordError::Trailing { extra: 1, .. })));
    // A member count of 2^31-1 in a few bytes: refused before anything is sized by it.
    let huge = Wire::default().i16(3).str("consumer").i32(1).null_str().null_str().i64(-1).i32(i32::MAX).done();
    assert!(matches!(decode_group(&huge, Format::Kafka), Err(RecordError::Malformed { .. })));
    // A negative string length where a string may not be null.
    let null_group = Wire::default().i16(2).null_str().done();
    assert!(matches!(decode_key(&null_group), Err(RecordError::Malformed { .. })));
    // Invalid UTF-8 in a string.
    let bad_utf8 = Wire::default().i16(2).i16(2).raw(&[0xff, 0xfe]).done();
    assert!(decode_key(&bad_utf8).is_err());
    // Neither format.
    assert!(decode_key(&Bytes::from_static(b"x")).is_err());
    assert!(decode_key(&Bytes::from_static(b"[1]")).is_err());
}

#[test]
fn legacy_json_records_are_read() {
    let key = Bytes::from_static(br#"{"type":"offset","group":"g1","topic":"web-logs","partition":3}"#);
    assert_eq!(decode_key(&key).unwrap(), (offset_key(), Format::LegacyJson));
    let key = Bytes::from_static(br#"{"type":"group","group":"g1"}"#);
    assert_eq!(decode_key(&key).unwrap(), (StoredKey::Group { group: "g1".into() }, Format::LegacyJson));
    let value = Bytes::from_static(br#"{"offset":42,"leader_epoch":5,"metadata":"m","commit_timestamp":17}"#);
    assert_eq!(
        decode_offset(&value, Format::LegacyJson).unwrap(),
        StoredOffset { offset: 42, leader_epoch: 5, metadata: Some("m".into()), commit_timestamp: 17 }
    );
    // Members kept every protocol (base64 metadata); Kafka's format keeps the chosen one's.
    let value = Bytes::from_static(
        br#"{"protocol_type":"consumer","generation":7,"protocol":"range","leader":"c-1","members":[
            {"member_id":"c-1","instance_id":null,"client_id":"c","client_host":"/10.0.0.1",
             "session_timeout_ms":45000,"rebalance_timeout_ms":300000,
             "protocols":[["cooperative-sticky","/w=="],["range","AAEC"]],"assignment":"CQ=="}],
            "empty_since":null}"#,
    );
    let group = decode_group(&value, Format::LegacyJson).unwrap();
    assert_eq!(group, StoredGroup { members: vec![member()], ..stable_group() });
    // Damaged JSON is an error with its reason.
    let err = decode_offset(&Bytes::from_static(br#"{"offset":"#), Format::LegacyJson).unwrap_err();
    assert!(err.to_string().contains("legacy JSON offset value"), "{err}");
    let bad64 = Bytes::from_static(
        br#"{"protocol_type":"consumer","generation":1,"protocol":"range","leader":"a","members":[
            {"member_id":"a","instance_id":null,"client_id":"c","client_host":"h","session_timeout_ms":1,
             "rebalance_timeout_ms":1,"protocols":[["range","!!"]],"assignment":""}],"empty_since":null}"#,
    );
    assert!(decode_group(&bad64, Format::LegacyJson).is_err());
}

#[test]
fn every_single_byte_change_decodes_or_fails_without_panicking() {
    let key = encode_key(&offset_key()).unwrap();
    let group_key = encode_key(&StoredKey::Group { group: "g1".into() }).unwrap();
    let offset = encoded_offset_value();
    let group = encode_value(&StoredValue::Group(stable_group())).unwrap();
    for (record, decode) in [
        (&key, &(|b: &Bytes| decode_key(b).map(|_| ())) as &dyn Fn(&Bytes) -> Result<(), RecordError>),
        (&group_key, &|b: &Bytes| decode_key(b).map(|_| ())),
        (&offset, &|b: &Bytes| decode_offset(b, Format::Kafka).map(|_| ())),
        (&group, &|b: &Bytes| decode_group(b, Format::Kafka).map(|_| ())),
        (&offset, &|b: &Bytes| decode_offset(b, Format::LegacyJson).map(|_| ())),
    ] {
        for at in 0..record.len() {
            for byte in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut changed = record.to_vec();
                changed[at] = byte;
                // Either outcome is fine; what matters is that it returns.
                let _ = decode(&Bytes::from(changed));
            }
        }
    }
}
