//! Read-only views of the groups: committed offsets (OffsetFetch, lag), ListGroups and
//! DescribeGroups.

use super::groups::Groups;
use super::store::StoredOffset;
use bytes::Bytes;
use std::collections::HashMap;

/// A group as DescribeGroups and `millrace group describe` show it.
pub struct GroupDescription {
    /// State name.
    pub state: &'static str,
    /// Protocol type.
    pub protocol_type: String,
    /// Chosen protocol.
    pub protocol: String,
    /// Generation.
    pub generation: i32,
    /// Members: id, instance id, client id, host, metadata for the chosen protocol, assignment.
    pub members: Vec<MemberDescription>,
}

/// One member in a [`GroupDescription`].
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Subscription metadata.
    pub metadata: Bytes,
    /// Assignment.
    pub assignment: Bytes,
}

/// One partition's committed offset for a group (for lag).
pub struct CommittedOffset {
    /// Group id.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed offset.
    pub offset: i64,
}

/// Committed offsets by topic: (topic, [(partition, offset if committed)]).
pub type TopicOffsets = Vec<(String, Vec<(i32, Option<StoredOffset>)>)>;

impl Groups {
    /// Committed offsets; `wanted` None means every partition the group has offsets for.
    pub fn fetch_offsets(&self, group_id: &str, wanted: Option<Vec<(String, Vec<i32>)>>) -> TopicOffsets {
        let offsets = self.entries.get(group_id).map(|e| &e.offsets);
        match wanted {
            Some(topics) => topics
                .into_iter()
                .map(|(topic, partitions)| {
                    let found = partitions
                        .into_iter()
                        .map(|p| (p, offsets.and_then(|o| o.get(&(topic.clone(), p))).cloned()))
                        .collect();
                    (topic, found)
                })
                .collect(),
            None => {
                let mut by_topic: HashMap<String, Vec<(i32, Option<StoredOffset>)>> = HashMap::new();
                for ((topic, partition), value) in offsets.into_iter().flatten() {
                    by_topic.entry(topic.clone()).or_default().push((*partition, Some(value.clone())));
                }
                let mut out: Vec<_> = by_topic.into_iter().collect();
                out.sort_by(|a, b| a.0.cmp(&b.0));
                for (_, partitions) in &mut out {
                    partitions.sort_by_key(|(p, _)| *p);
                }
                out
            }
        }
    }

    /// (group id, protocol type, state) of every group, sorted.
    pub fn list(&self) -> Vec<(String, String, &'static str)> {
        let mut out: Vec<_> = self
            .entries
            .values()
            .map(|e| (e.group.id.clone(), e.group.protocol_type.clone().unwrap_or_default(), e.group.state.name()))
            .collect();
        out.sort();
        out
    }

    /// A group's description, None if unknown.
    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let group = &self.entries.get(group_id)?.group;
        let protocol = group.protocol.clone().unwrap_or_default();
        Some(GroupDescription {
            state: group.state.name(),
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol: group.protocol_data(),
            generation: group.generation,
            members: group
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        })
    }

    /// Committed offsets of every group (for lag gauges and tools).
    pub fn committed(&self) -> Vec<CommittedOffset> {
        let mut out = Vec::new();
        for (id, entry) in &self.entries {
            for ((topic, partition), value) in &entry.offsets {
                out.push(CommittedOffset {
                    group: id.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                    offset: value.offset,
                });
            }
        }
        out
    }
}
