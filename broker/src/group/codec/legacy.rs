//! The JSON records millrace wrote before it used Kafka's format, read only so a partition
//! holding them can be loaded and migrated:
//! - key `{"type":"offset","group":G,"topic":T,"partition":P}` → value
//!   `{"offset":O,"leader_epoch":E,"metadata":M,"commit_timestamp":MS}`;
//! - key `{"type":"group","group":G}` → the group with its members, whose protocol metadata and
//!   assignment are base64.

use super::RecordError;
use crate::group::store::{StoredGroup, StoredKey, StoredMember, StoredOffset};
use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Key {
    Offset { group: String, topic: String, partition: i32 },
    Group { group: String },
}

#[derive(Deserialize)]
struct Offset {
    offset: i64,
    leader_epoch: i32,
    metadata: Option<String>,
    commit_timestamp: i64,
}

#[derive(Deserialize)]
struct Group {
    protocol_type: Option<String>,
    generation: i32,
    protocol: Option<String>,
    leader: Option<String>,
    members: Vec<Member>,
    empty_since: Option<i64>,
}

#[derive(Deserialize)]
struct Member {
    member_id: String,
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout_ms: u64,
    rebalance_timeout_ms: u64,
    /// (protocol, base64 metadata) in preference order.
    protocols: Vec<(String, String)>,
    /// Base64.
    assignment: String,
}

fn json<'a, T: Deserialize<'a>>(what: &'static str, raw: &'a [u8]) -> Result<T, RecordError> {
    serde_json::from_slice(raw).map_err(|e| RecordError::LegacyJson { what, detail: e.to_string() })
}

fn base64(field: &'static str, text: &str) -> Result<Bytes, RecordError> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map(Bytes::from)
        .map_err(|e| RecordError::LegacyJson { what: "group value", detail: format!("{field}: {e}") })
}

pub(super) fn decode_key(raw: &[u8]) -> Result<StoredKey, RecordError> {
    Ok(match json::<Key>("key", raw)? {
        Key::Offset { group, topic, partition } => StoredKey::Offset { group, topic, partition },
        Key::Group { group } => StoredKey::Group { group },
    })
}

pub(super) fn decode_offset(raw: &[u8]) -> Result<StoredOffset, RecordError> {
    let o: Offset = json("offset value", raw)?;
    Ok(StoredOffset {
        offset: o.offset,
        leader_epoch: o.leader_epoch,
        metadata: o.metadata,
        commit_timestamp: o.commit_timestamp,
    })
}

/// Kafka's format keeps each member's metadata for the chosen protocol only; so does this.
pub(super) fn decode_group(raw: &[u8]) -> Result<StoredGroup, RecordError> {
    let g: Group = json("group value", raw)?;
    let chosen = g.protocol.clone().unwrap_or_default();
    let mut members = Vec::with_capacity(g.members.len());
    for m in g.members {
        let subscription = match m.protocols.iter().find(|(name, _)| *name == chosen) {
            Some((_, meta)) => base64("protocols", meta)?,
            None => Bytes::new(),
        };
        members.push(StoredMember {
            member_id: m.member_id,
            instance_id: m.instance_id,
            client_id: m.client_id,
            client_host: m.client_host,
            session_timeout_ms: m.session_timeout_ms,
            rebalance_timeout_ms: m.rebalance_timeout_ms,
            subscription,
            assignment: base64("assignment", &m.assignment)?,
        });
    }
    Ok(StoredGroup {
        protocol_type: g.protocol_type,
        generation: g.generation,
        protocol: g.protocol,
        leader: g.leader,
        members,
        empty_since: g.empty_since,
    })
}
