//! The bytes of `__consumer_offsets` records: Kafka's own key/value schemas, so that tools
//! reading the topic (Burrow, lag exporters, `kafka-console-consumer`'s offsets formatter)
//! understand it, and the JSON records of earlier millrace versions, read for migration.
//!
//! Each key and value is an int16 version followed by the message of that version, encoded
//! with the types generated from Kafka's schemas (`OffsetCommitKey`/`OffsetCommitValue`,
//! `GroupMetadataKey`/`GroupMetadataValue`; see vendor/kafka-protocol/PATCHES.md):
//!
//! | record | key | value |
//! |---|---|---|
//! | offset commit | v1 (v0 read too): group, topic, partition | v3 (v0–v4 read): offset, leader epoch, metadata, commit timestamp |
//! | group metadata | v2: group | v3 (v0–v4 read): protocol type, generation, protocol, leader, state timestamp, members |
//!
//! Record bytes come from disk or a replica: decoding never panics, every length is checked
//! against the bytes left (the vendored decoders), and failures say what and which version.

mod legacy;

use super::store::{StoredGroup, StoredKey, StoredMember, StoredOffset, StoredValue};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::group_metadata_value::MemberMetadata;
use kafka_protocol::messages::{GroupMetadataKey, GroupMetadataValue, OffsetCommitKey, OffsetCommitValue};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use std::ops::RangeInclusive;

/// Key version of an offset commit Kafka writes (0 has the same fields).
pub const OFFSET_KEY_VERSION: i16 = 1;
/// Key version of group metadata.
pub const GROUP_KEY_VERSION: i16 = 2;
/// Value version of an offset commit Kafka writes when there is no expire timestamp (with the
/// leader epoch).
pub const OFFSET_VALUE_VERSION: i16 = 3;
/// Value version of group metadata Kafka writes for classic groups (with static instance ids).
pub const GROUP_VALUE_VERSION: i16 = 3;

const OFFSET_VALUE_VERSIONS: RangeInclusive<i16> = 0..=4;
const GROUP_VALUE_VERSIONS: RangeInclusive<i16> = 0..=4;

/// Which format a record was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Kafka's binary schemas.
    Kafka,
    /// The JSON of millrace before it wrote Kafka's format; migrated on load.
    LegacyJson,
}

/// Why a record's key or value could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The key or value is shorter than its int16 version.
    #[error("{what} of {len} bytes has no version")]
    NoVersion {
        /// Key or value kind.
        what: &'static str,
        /// Bytes there were.
        len: usize,
    },
    /// A version this broker does not read (e.g. the records of KIP-848 consumer groups).
    #[error("{what} version {version} is unknown")]
    UnknownVersion {
        /// Key or value kind.
        what: &'static str,
        /// Version read.
        version: i16,
    },
    /// The message does not decode at its version (truncated, bad lengths, invalid UTF-8).
    #[error("{what} v{version} does not decode: {detail}")]
    Malformed {
        /// Key or value kind.
        what: &'static str,
        /// Version read.
        version: i16,
        /// The decoder's reason.
        detail: String,
    },
    /// Bytes left over after the message.
    #[error("{what} v{version} has {extra} bytes after its fields")]
    Trailing {
        /// Key or value kind.
        what: &'static str,
        /// Version read.
        version: i16,
        /// Bytes left over.
        extra: usize,
    },
    /// A record of the earlier JSON format that does not parse.
    #[error("legacy JSON {what}: {detail}")]
    LegacyJson {
        /// Key or value kind.
        what: &'static str,
        /// The parser's reason.
        detail: String,
    },
    /// A field does not fit the schema (e.g. a string longer than 32767 bytes).
    #[error("{what} cannot be encoded: {detail}")]
    Encode {
        /// Key or value kind.
        what: &'static str,
        /// The encoder's reason.
        detail: String,
    },
}

impl StoredKey {
    /// The group the key belongs to.
    pub fn group(&self) -> &str {
        match self {
            StoredKey::Offset { group, .. } | StoredKey::Group { group } => group,
        }
    }
}

fn str_bytes(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// An int16 version followed by `message` encoded at that version.
fn versioned<T: Encodable>(what: &'static str, version: i16, message: &T) -> Result<Bytes, RecordError> {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    message.encode(&mut buf, version).map_err(|e| RecordError::Encode { what, detail: format!("{e:#}") })?;
    Ok(buf.freeze())
}

/// Reads the int16 version, checks it is one of `versions`, decodes the message and insists
/// nothing follows it (a damaged record must not pass for a valid one).
fn unversioned<T: Decodable>(
    what: &'static str,
    raw: &Bytes,
    versions: RangeInclusive<i16>,
) -> Result<(i16, T), RecordError> {
    let mut buf = raw.clone();
    if buf.remaining() < 2 {
        return Err(RecordError::NoVersion { what, len: buf.remaining() });
    }
    let version = buf.get_i16();
    if !versions.contains(&version) {
        return Err(RecordError::UnknownVersion { what, version });
    }
    let message =
        T::decode(&mut buf, version).map_err(|e| RecordError::Malformed { what, version, detail: format!("{e:#}") })?;
    if buf.has_remaining() {
        return Err(RecordError::Trailing { what, version, extra: buf.remaining() });
    }
    Ok((version, message))
}

/// The bytes of a key, in Kafka's format.
pub fn encode_key(key: &StoredKey) -> Result<Bytes, RecordError> {
    match key {
        StoredKey::Offset { group, topic, partition } => versioned(
            "offset commit key",
            OFFSET_KEY_VERSION,
            &OffsetCommitKey::default()
                .with_group(str_bytes(group))
                .with_topic(str_bytes(topic))
                .with_partition(*partition),
        ),
        StoredKey::Group { group } => versioned(
            "group metadata key",
            GROUP_KEY_VERSION,
            &GroupMetadataKey::default().with_group(str_bytes(group)),
        ),
    }
}

/// The bytes of a value, in Kafka's format.
pub fn encode_value(value: &StoredValue) -> Result<Bytes, RecordError> {
    match value {
        StoredValue::Offset(offset) => encode_offset(offset),
        StoredValue::Group(group) => encode_group(group),
    }
}

fn encode_offset(offset: &StoredOffset) -> Result<Bytes, RecordError> {
    let value = OffsetCommitValue::default()
        .with_offset(offset.offset)
        .with_leader_epoch(offset.leader_epoch)
        // Kafka stores a commit without metadata as "" (the field is not nullable).
        .with_metadata(str_bytes(offset.metadata.as_deref().unwrap_or_default()))
        .with_commit_timestamp(offset.commit_timestamp);
    versioned("offset commit value", OFFSET_VALUE_VERSION, &value)
}

fn timeout_ms(ms: u64) -> i32 {
    i32::try_from(ms).unwrap_or(i32::MAX)
}

fn encode_group(group: &StoredGroup) -> Result<Bytes, RecordError> {
    let members = group
        .members
        .iter()
        .map(|m| {
            MemberMetadata::default()
                .with_member_id(str_bytes(&m.member_id))
                .with_group_instance_id(m.instance_id.as_deref().map(str_bytes))
                .with_client_id(str_bytes(&m.client_id))
                .with_client_host(str_bytes(&m.client_host))
                .with_rebalance_timeout(timeout_ms(m.rebalance_timeout_ms))
                .with_session_timeout(timeout_ms(m.session_timeout_ms))
                .with_subscription(m.subscription.clone())
                .with_assignment(m.assignment.clone())
        })
        .collect();
    let value = GroupMetadataValue::default()
        // Kafka writes "" for a group without a protocol type and reads "" back as none.
        .with_protocol_type(str_bytes(group.protocol_type.as_deref().unwrap_or_default()))
        .with_generation(group.generation)
        .with_protocol(group.protocol.as_deref().map(str_bytes))
        .with_leader(group.leader.as_deref().map(str_bytes))
        // The state timestamp of an empty group is when it became empty, which is what offset
        // retention counts from (as in Kafka); -1 is Kafka's "unknown".
        .with_current_state_timestamp(group.empty_since.unwrap_or(-1))
        .with_members(members);
    versioned("group metadata value", GROUP_VALUE_VERSION, &value)
}

/// Reads a key and tells its format: a JSON key (earlier millrace) starts with `{`, a Kafka
/// key with an int16 version, whose first byte is 0 for every version there is.
pub fn decode_key(raw: &Bytes) -> Result<(StoredKey, Format), RecordError> {
    if raw.first() == Some(&b'{') {
        return Ok((legacy::decode_key(raw)?, Format::LegacyJson));
    }
    if raw.len() < 2 {
        return Err(RecordError::NoVersion { what: "key", len: raw.len() });
    }
    let version = i16::from_be_bytes([raw[0], raw[1]]);
    let key = match version {
        0 | 1 => {
            let (_, key): (_, OffsetCommitKey) = unversioned("offset commit key", raw, 0..=1)?;
            StoredKey::Offset { group: key.group.to_string(), topic: key.topic.to_string(), partition: key.partition }
        }
        2 => {
            let (_, key): (_, GroupMetadataKey) = unversioned("group metadata key", raw, 2..=2)?;
            StoredKey::Group { group: key.group.to_string() }
        }
        version => return Err(RecordError::UnknownVersion { what: "key", version }),
    };
    Ok((key, Format::Kafka))
}

/// Reads an offset commit value written in `format`.
pub fn decode_offset(raw: &Bytes, format: Format) -> Result<StoredOffset, RecordError> {
    if format == Format::LegacyJson {
        return legacy::decode_offset(raw);
    }
    let (_, value): (_, OffsetCommitValue) = unversioned("offset commit value", raw, OFFSET_VALUE_VERSIONS)?;
    Ok(StoredOffset {
        offset: value.offset,
        // Versions before 3 have no epoch; the decoder gives Kafka's default, -1.
        leader_epoch: value.leader_epoch,
        metadata: (!value.metadata.is_empty()).then(|| value.metadata.to_string()),
        commit_timestamp: value.commit_timestamp,
    })
}

/// Reads a group metadata value written in `format`.
pub fn decode_group(raw: &Bytes, format: Format) -> Result<StoredGroup, RecordError> {
    if format == Format::LegacyJson {
        return legacy::decode_group(raw);
    }
    let (_, value): (_, GroupMetadataValue) = unversioned("group metadata value", raw, GROUP_VALUE_VERSIONS)?;
    let members: Vec<StoredMember> = value
        .members
        .into_iter()
        .map(|m| {
            let session_timeout_ms = u64::try_from(m.session_timeout).unwrap_or(0);
            StoredMember {
                member_id: m.member_id.to_string(),
                instance_id: m.group_instance_id.map(|i| i.to_string()),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                session_timeout_ms,
                // Version 0 has no rebalance timeout (-1): Kafka then uses the session timeout.
                rebalance_timeout_ms: u64::try_from(m.rebalance_timeout).unwrap_or(session_timeout_ms),
                subscription: m.subscription,
                assignment: m.assignment,
            }
        })
        .collect();
    let empty_since =
        (members.is_empty() && value.current_state_timestamp >= 0).then_some(value.current_state_timestamp);
    Ok(StoredGroup {
        protocol_type: (!value.protocol_type.is_empty()).then(|| value.protocol_type.to_string()),
        generation: value.generation,
        protocol: value.protocol.map(|p| p.to_string()),
        leader: value.leader.map(|l| l.to_string()),
        members,
        empty_since,
    })
}

#[cfg(test)]
mod tests;
