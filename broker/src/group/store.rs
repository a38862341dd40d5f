//! Persistence of committed offsets and group metadata in the internal compacted topic
//! `__consumer_offsets`, on the same storage engine as every other topic.
//!
//! Record format (version 1, JSON so `kcat -t __consumer_offsets` is readable):
//! - offset commit — key `{"type":"offset","group":G,"topic":T,"partition":P}`,
//!   value `{"offset":O,"leader_epoch":E,"metadata":M,"commit_timestamp":MS}`;
//! - group metadata — key `{"type":"group","group":G}`, value [`StoredGroup`].
//!
//! A null value (tombstone) deletes the key; compaction keeps the latest record per key.
//! Group `G` lives in partition `abs(javaHashCode(G)) % partitions`, as in Kafka.

use crate::error::BrokerError;
use crate::partition::Partition;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// Name of the internal topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Key of a record in `__consumer_offsets`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StoredKey {
    /// A committed offset.
    Offset {
        /// Group id.
        group: String,
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
    /// Group metadata.
    Group {
        /// Group id.
        group: String,
    },
}

/// A committed offset.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StoredOffset {
    /// Next offset the group will read.
    pub offset: i64,
    /// Leader epoch of the committed record, -1 if unknown.
    pub leader_epoch: i32,
    /// Client metadata string.
    pub metadata: Option<String>,
    /// Wall-clock ms of the commit.
    pub commit_timestamp: i64,
}

/// Group metadata as of its last completed rebalance.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct StoredGroup {
    /// Protocol type.
    pub protocol_type: Option<String>,
    /// Generation.
    pub generation: i32,
    /// Chosen protocol.
    pub protocol: Option<String>,
    /// Leader member id.
    pub leader: Option<String>,
    /// Members.
    pub members: Vec<StoredMember>,
    /// Wall-clock ms at which the group last became empty (drives offset retention).
    pub empty_since: Option<i64>,
}

/// The value of a record, before encoding; None in a record is a tombstone.
#[derive(Clone, Debug)]
pub enum StoredValue {
    /// A committed offset.
    Offset(StoredOffset),
    /// Group metadata.
    Group(StoredGroup),
}

impl StoredValue {
    fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        match self {
            StoredValue::Offset(offset) => serde_json::to_vec(offset),
            StoredValue::Group(group) => serde_json::to_vec(group),
        }
    }
}

/// A member in [`StoredGroup`]; binary fields are base64.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct StoredMember {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Session timeout, ms.
    pub session_timeout_ms: u64,
    /// Rebalance timeout, ms.
    pub rebalance_timeout_ms: u64,
    /// (protocol, base64 metadata) in preference order.
    pub protocols: Vec<(String, String)>,
    /// Base64 assignment.
    pub assignment: String,
}

/// Base64 of bytes, for [`StoredMember`].
pub fn encode_b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Bytes from base64; invalid input (a damaged record) gives empty bytes rather than an error.
pub fn decode_b64(text: &str) -> Bytes {
    base64::engine::general_purpose::STANDARD.decode(text).map(Bytes::from).unwrap_or_default()
}

/// Java's `String.hashCode`, which Kafka uses to place a group in `__consumer_offsets`.
pub fn java_hash(text: &str) -> i32 {
    text.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The `__consumer_offsets` partition holding `group`.
pub fn partition_for(group: &str, partitions: usize) -> usize {
    ((java_hash(group) & 0x7fff_ffff) as usize) % partitions.max(1)
}

/// Everything read back from `__consumer_offsets` at start-up.
#[derive(Default)]
pub struct Loaded {
    /// Offsets by group, then (topic, partition).
    pub offsets: HashMap<String, HashMap<(String, i32), StoredOffset>>,
    /// Group metadata by group.
    pub groups: HashMap<String, StoredGroup>,
    /// Records read.
    pub records: u64,
}

/// Writer and reader of the `__consumer_offsets` partitions this broker leads.
pub struct OffsetStore {
    /// Partition count of the offsets topic (fixed once it exists).
    count: std::sync::atomic::AtomicUsize,
    /// The led partitions, by index.
    led: std::sync::RwLock<std::collections::BTreeMap<i32, Arc<Partition>>>,
}

impl OffsetStore {
    /// A store for an offsets topic of `count` partitions, leading none yet.
    pub fn new(count: usize) -> OffsetStore {
        OffsetStore { count: count.max(1).into(), led: Default::default() }
    }

    /// Index of the offsets partition that holds `group`.
    pub fn partition_index(&self, group: &str) -> i32 {
        partition_for(group, self.count.load(std::sync::atomic::Ordering::Relaxed)) as i32
    }

    /// The led partition for `group`, if this broker leads it.
    pub fn partition(&self, group: &str) -> Option<Arc<Partition>> {
        let index = self.partition_index(group);
        self.led.read().unwrap_or_else(|p| p.into_inner()).get(&index).cloned()
    }

    /// The led partitions.
    pub fn led(&self) -> std::collections::BTreeMap<i32, Arc<Partition>> {
        self.led.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the led partitions (and the topic's partition count).
    pub fn set_led(&self, led: std::collections::BTreeMap<i32, Arc<Partition>>, count: usize) {
        self.count.store(count.max(1), std::sync::atomic::Ordering::Relaxed);
        *self.led.write().unwrap_or_else(|p| p.into_inner()) = led;
    }

    /// Appends `entries` (value None = tombstone) to the led offsets partition `index` as one
    /// batch; returns the partition and the offset to wait for with [`Partition::wait_durable`].
    pub fn append_at(
        &self,
        index: i32,
        entries: &[(StoredKey, Option<StoredValue>)],
        now_ms: i64,
    ) -> Result<(Arc<Partition>, i64), BrokerError> {
        let partition = self
            .led
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&index)
            .cloned()
            .ok_or(BrokerError::NotCoordinator)?;
        let mut records = Vec::with_capacity(entries.len());
        for (i, (key, value)) in entries.iter().enumerate() {
            let key = serde_json::to_vec(key).map_err(|e| BrokerError::Internal(e.to_string()))?;
            let value = match value {
                Some(value) => Some(value.encode().map_err(|e| BrokerError::Internal(e.to_string()))?),
                None => None,
            };
            records.push(Record {
                transactional: false,
                control: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // The encoder starts a new batch whenever offset - sequence changes; keeping it
                // constant puts every record in one batch, whose base sequence stays -1.
                sequence: i as i32 - 1,
                timestamp: now_ms,
                key: Some(Bytes::from(key)),
                value: value.map(Bytes::from),
                headers: Default::default(),
                delete_horizon: false,
            });
        }
        let mut batch = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut batch,
            &records,
            &RecordEncodeOptions { version: 2, compression: Compression::None },
        )
        .map_err(|e| BrokerError::Internal(format!("encoding an offsets batch: {e}")))?;
        let info = partition.append_as_leader(&mut batch, now_ms, false).map_err(|e| match e {
            crate::partition::ReplicaError::NotLeader(_) => BrokerError::NotCoordinator,
            other => BrokerError::Internal(other.to_string()),
        })?;
        Ok((partition, info.last_offset + 1))
    }

    /// Reads one partition from its start to its end and folds the records into the latest state.
    pub fn load(partition: &Partition) -> Result<Loaded, BrokerError> {
        let mut loaded = Loaded::default();
        {
            let (mut offset, _) = partition.offsets();
            let end = partition.log_end_offset();
            while offset < end {
                let read = partition.read_to_end(offset, 1 << 20, true)?;
                if read.data.is_empty() {
                    break;
                }
                let mut data = read.data;
                let sets = RecordBatchDecoder::decode_all(&mut data).map_err(|e| {
                    BrokerError::Metadata(format!(
                        "{}-{}: undecodable batch at offset {offset}: {e}",
                        partition.topic, partition.index
                    ))
                })?;
                let before = offset;
                for set in sets {
                    for record in set.records {
                        if record.offset < offset {
                            continue;
                        }
                        offset = record.offset + 1;
                        loaded.records += 1;
                        apply(&mut loaded, &record);
                    }
                }
                if offset == before {
                    // Only records below `offset` came back (a batch straddling it): step over.
                    offset += 1;
                }
            }
        }
        Ok(loaded)
    }
}

fn apply(loaded: &mut Loaded, record: &Record) {
    let Some(key) = record.key.as_ref().and_then(|k| serde_json::from_slice::<StoredKey>(k).ok()) else {
        tracing::warn!(offset = record.offset, "ignoring a __consumer_offsets record with an unknown key");
        return;
    };
    match key {
        StoredKey::Offset { group, topic, partition } => {
            let value = record.value.as_ref().and_then(|v| serde_json::from_slice::<StoredOffset>(v).ok());
            let offsets = loaded.offsets.entry(group.clone()).or_default();
            match value {
                Some(value) => {
                    offsets.insert((topic, partition), value);
                }
                None => {
                    offsets.remove(&(topic, partition));
                    if offsets.is_empty() {
                        loaded.offsets.remove(&group);
                    }
                }
            }
        }
        StoredKey::Group { group } => {
            match record.value.as_ref().and_then(|v| serde_json::from_slice::<StoredGroup>(v).ok()) {
                Some(value) => {
                    loaded.groups.insert(group, value);
                }
                None => {
                    loaded.groups.remove(&group);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_matches_java() {
        // Values from Java's "…".hashCode().
        assert_eq!(java_hash(""), 0);
        assert_eq!(java_hash("a"), 97);
        assert_eq!(
            java_hash("console-consumer-12345"),
            "console-consumer-12345".encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
        );
        assert_eq!(java_hash("hello world"), 1_794_106_052);
        assert_eq!(partition_for("hello world", 50), 1_794_106_052 % 50);
    }

    #[test]
    fn keys_serialize_deterministically() {
        let key = StoredKey::Offset { group: "g".into(), topic: "t".into(), partition: 3 };
        assert_eq!(serde_json::to_string(&key).unwrap(), r#"{"type":"offset","group":"g","topic":"t","partition":3}"#);
    }
}
