//! Persistence of committed offsets and group metadata in the internal compacted topic
//! `__consumer_offsets`, on the same storage engine as every other topic.
//!
//! Records are in Kafka's own format ([`super::codec`]), so tools that read the topic decode
//! them: an offset commit is keyed by (group, topic, partition), group metadata by group, each
//! key and value an int16 version and the fields of Kafka's schema of that version. A null value
//! (tombstone) deletes the key; compaction keeps the latest record per key. Group `G` lives in
//! partition `abs(javaHashCode(G)) % partitions`, as in Kafka.
//!
//! Earlier millrace versions wrote JSON records. Loading a partition reads both formats (the
//! latest record of a key wins, whatever its format) and then rewrites the groups that still
//! have JSON records: tombstones for the JSON keys, then the groups' state in Kafka's format,
//! so compaction removes the JSON.

use super::codec::{self, Format};
use crate::error::BrokerError;
use crate::partition::Partition;
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Name of the internal topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Key of a record in `__consumer_offsets`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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
#[derive(Clone, Debug, PartialEq, Eq)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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

/// A member in [`StoredGroup`]. As in Kafka, only the chosen protocol's metadata is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// The member's metadata (subscription) for the group's chosen protocol.
    pub subscription: Bytes,
    /// Assignment.
    pub assignment: Bytes,
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
    /// Records skipped because their key or value did not decode.
    pub skipped: u64,
    /// JSON keys (earlier millrace) whose latest record holds a value, with their group: the
    /// records [`migration`] rewrites.
    pub legacy_keys: BTreeMap<Bytes, String>,
}

/// One record's bytes; a None value is a tombstone.
pub type RawRecord = (Bytes, Option<Bytes>);

/// Groups per migration batch: each group's tombstones and state go in one batch, so a crash
/// never leaves a group's JSON deleted without its state rewritten.
const MIGRATION_GROUPS_PER_BATCH: usize = 64;

/// Writer and reader of the `__consumer_offsets` partitions this broker leads.
pub struct OffsetStore {
    /// Partition count of the offsets topic (fixed once it exists).
    count: std::sync::atomic::AtomicUsize,
    /// The led partitions, by index.
    led: std::sync::RwLock<BTreeMap<i32, Arc<Partition>>>,
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
    pub fn led(&self) -> BTreeMap<i32, Arc<Partition>> {
        self.led.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the led partitions (and the topic's partition count).
    pub fn set_led(&self, led: BTreeMap<i32, Arc<Partition>>, count: usize) {
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
        let records =
            encode_entries(entries).map_err(|e| BrokerError::Internal(format!("encoding an offsets record: {e}")))?;
        let end = append_raw(&partition, &records, now_ms)?;
        Ok((partition, end))
    }

    /// Reads one partition from its start to its end and folds the records into the latest
    /// state. Records that do not decode are skipped with a warning (Kafka's loader likewise
    /// ignores record types it does not know): one damaged record must not cost every group of
    /// the partition.
    pub fn load(partition: &Partition) -> Result<Loaded, BrokerError> {
        let mut loaded = Loaded::default();
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
                    if let Err(e) = apply(&mut loaded, &record) {
                        loaded.skipped += 1;
                        tracing::warn!(
                            partition = %partition.name(),
                            offset = record.offset,
                            error = %e,
                            "skipping an unreadable __consumer_offsets record"
                        );
                    }
                }
            }
            if offset == before {
                // Only records below `offset` came back (a batch straddling it): step over.
                offset += 1;
            }
        }
        Ok(loaded)
    }

    /// [`OffsetStore::load`], then the migration of JSON records to Kafka's format (written
    /// to `partition`, which this broker leads). A failed migration is logged and tried again
    /// on the next load: what was loaded is complete either way.
    pub fn load_and_migrate(partition: &Partition, now_ms: i64) -> Result<Loaded, BrokerError> {
        let mut loaded = Self::load(partition)?;
        if loaded.legacy_keys.is_empty() {
            return Ok(loaded);
        }
        let batches = migration(&loaded);
        let mut written = 0;
        for batch in &batches {
            if let Err(e) = append_raw(partition, batch, now_ms) {
                tracing::warn!(partition = %partition.name(), error = %e, "migrating JSON records failed; retried on the next load");
                return Ok(loaded);
            }
            written += batch.len();
        }
        tracing::info!(
            partition = %partition.name(),
            json_keys = loaded.legacy_keys.len(),
            records = written,
            "rewrote the JSON records of earlier millrace in Kafka's format"
        );
        loaded.legacy_keys.clear();
        Ok(loaded)
    }
}

fn encode_entries(entries: &[(StoredKey, Option<StoredValue>)]) -> Result<Vec<RawRecord>, codec::RecordError> {
    entries
        .iter()
        .map(|(key, value)| Ok((codec::encode_key(key)?, value.as_ref().map(codec::encode_value).transpose()?)))
        .collect()
}

/// Appends `records` to `partition` (which this broker leads) as one batch; returns the
/// offset after the last.
fn append_raw(partition: &Partition, records: &[RawRecord], now_ms: i64) -> Result<i64, BrokerError> {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
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
            key: Some(key.clone()),
            value: value.clone(),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
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
    Ok(info.last_offset + 1)
}

/// Folds one record into the state; an error means the record was skipped.
fn apply(loaded: &mut Loaded, record: &Record) -> Result<(), codec::RecordError> {
    let Some(raw_key) = record.key.as_ref() else {
        return Err(codec::RecordError::NoVersion { what: "key", len: 0 });
    };
    let (key, format) = codec::decode_key(raw_key)?;
    let group = key.group().to_string();
    match key {
        StoredKey::Offset { topic, partition, .. } => match record.value.as_ref() {
            Some(value) => {
                let value = codec::decode_offset(value, format)?;
                loaded.offsets.entry(group.clone()).or_default().insert((topic, partition), value);
            }
            None => {
                if let Some(offsets) = loaded.offsets.get_mut(&group) {
                    offsets.remove(&(topic, partition));
                    if offsets.is_empty() {
                        loaded.offsets.remove(&group);
                    }
                }
            }
        },
        StoredKey::Group { .. } => match record.value.as_ref() {
            Some(value) => {
                loaded.groups.insert(group.clone(), codec::decode_group(value, format)?);
            }
            None => {
                loaded.groups.remove(&group);
            }
        },
    }
    // A JSON key needs rewriting while its latest record holds a value; once a tombstone
    // deleted it, compaction removes it like any other.
    if format == Format::LegacyJson {
        if record.value.is_some() {
            loaded.legacy_keys.insert(raw_key.clone(), group);
        } else {
            loaded.legacy_keys.remove(raw_key);
        }
    }
    Ok(())
}

/// The batches that retire the JSON records of `loaded`: per group, tombstones for its JSON
/// keys and then its current offsets and metadata in Kafka's format. The tombstones come first
/// so that a later load, reading in log order, ends with the Kafka records. A group whose state
/// does not fit Kafka's format (a string over 32767 bytes) keeps its JSON records.
pub fn migration(loaded: &Loaded) -> Vec<Vec<RawRecord>> {
    let mut keys_by_group: BTreeMap<&str, Vec<&Bytes>> = BTreeMap::new();
    for (key, group) in &loaded.legacy_keys {
        keys_by_group.entry(group.as_str()).or_default().push(key);
    }
    let mut batches = Vec::new();
    let mut batch: Vec<RawRecord> = Vec::new();
    let mut groups_in_batch = 0;
    for (group, keys) in keys_by_group {
        let mut state = Vec::new();
        if let Some(offsets) = loaded.offsets.get(group) {
            let mut sorted: Vec<_> = offsets.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            for ((topic, partition), offset) in sorted {
                let key = StoredKey::Offset { group: group.to_string(), topic: topic.clone(), partition: *partition };
                state.push((key, Some(StoredValue::Offset(offset.clone()))));
            }
        }
        if let Some(stored) = loaded.groups.get(group) {
            state.push((StoredKey::Group { group: group.to_string() }, Some(StoredValue::Group(stored.clone()))));
        }
        let state = match encode_entries(&state) {
            Ok(state) => state,
            Err(e) => {
                tracing::warn!(group = %group, error = %e, "group kept in JSON: its state does not fit Kafka's format");
                continue;
            }
        };
        batch.extend(keys.into_iter().map(|key| (key.clone(), None)));
        batch.extend(state);
        groups_in_batch += 1;
        if groups_in_batch == MIGRATION_GROUPS_PER_BATCH {
            batches.push(std::mem::take(&mut batch));
            groups_in_batch = 0;
        }
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

#[cfg(test)]
mod tests;
