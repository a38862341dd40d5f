//! Topic commands: creating a topic (name rules, ids, first partitions), deleting it, and adding
//! partitions; a new partition starts with its unfenced replicas in sync.

use super::brokers::{next_leader, unclean_allowed};
use super::{
    check_distinct, MetadataError, MetadataResponse, MetadataState, PartitionAssignment, PartitionState, TopicState,
    NO_LEADER,
};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Longest topic name Kafka accepts.
const MAX_TOPIC_NAME_LEN: usize = 249;

impl MetadataState {
    /// CreateTopic: a valid, unused name and topic id, and at least one partition.
    pub(super) fn create_topic(
        &mut self,
        name: &str,
        topic_id: Uuid,
        partitions: &[PartitionAssignment],
        configs: &BTreeMap<String, String>,
    ) -> Result<MetadataResponse, MetadataError> {
        validate_topic_name(name)?;
        if self.topics.contains_key(name) {
            return Err(MetadataError::TopicExists(name.to_string()));
        }
        if topic_id.is_nil() || self.topics.values().any(|t| t.topic_id == topic_id) {
            return Err(MetadataError::TopicIdInUse(topic_id));
        }
        if partitions.is_empty() {
            return Err(MetadataError::InvalidRequest("a topic needs at least one partition".into()));
        }
        let parts = partitions.iter().map(|a| self.new_partition(a)).collect::<Result<Vec<_>, _>>()?;
        let topic = TopicState { topic_id, configs: configs.clone(), partitions: parts };
        self.topics.insert(name.to_string(), topic);
        Ok(MetadataResponse::TopicCreated { topic_id })
    }

    /// DeleteTopic.
    pub(super) fn delete_topic(&mut self, name: &str) -> Result<MetadataResponse, MetadataError> {
        match self.topics.remove(name) {
            Some(_) => Ok(MetadataResponse::Ok),
            None => Err(MetadataError::UnknownTopic(name.to_string())),
        }
    }

    /// AlterTopicConfigs. Where the change allows unclean elections, leaderless partitions get a
    /// live replica as leader at once, as Kafka does when the setting is turned on.
    pub(super) fn alter_topic_configs(
        &mut self,
        name: &str,
        replace: bool,
        delete: &[String],
        set: &BTreeMap<String, String>,
    ) -> Result<MetadataResponse, MetadataError> {
        let eligible = self.eligible_set();
        let t = self.topics.get_mut(name).ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
        if replace {
            t.configs.clear();
        }
        for key in delete {
            t.configs.remove(key);
        }
        t.configs.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
        if unclean_allowed(&t.configs) {
            for (index, p) in t.partitions.iter_mut().enumerate() {
                if p.leader == NO_LEADER {
                    p.leader = next_leader(p, &eligible, true, name, index as i32);
                    if p.leader != NO_LEADER {
                        p.leader_epoch += 1;
                        p.partition_epoch += 1;
                    }
                }
            }
        }
        Ok(MetadataResponse::Ok)
    }

    /// CreatePartitions: appends `new` to an existing topic.
    pub(super) fn create_partitions(
        &mut self,
        name: &str,
        new: &[PartitionAssignment],
    ) -> Result<MetadataResponse, MetadataError> {
        if !self.topics.contains_key(name) {
            return Err(MetadataError::UnknownTopic(name.to_string()));
        }
        if new.is_empty() {
            return Err(MetadataError::InvalidRequest("no partitions to add".into()));
        }
        let parts = new.iter().map(|a| self.new_partition(a)).collect::<Result<Vec<_>, _>>()?;
        if let Some(t) = self.topics.get_mut(name) {
            t.partitions.extend(parts);
        }
        Ok(MetadataResponse::Ok)
    }

    /// A new partition starts with every unfenced replica in sync, led by the first of them.
    fn new_partition(&self, a: &PartitionAssignment) -> Result<PartitionState, MetadataError> {
        if a.replicas.is_empty() {
            return Err(MetadataError::InvalidRequest("empty replica list".into()));
        }
        check_distinct(&a.replicas)?;
        for r in &a.replicas {
            self.broker(*r)?;
        }
        let eligible = self.eligible_set();
        let isr: Vec<i32> = a.replicas.iter().copied().filter(|r| eligible.contains(r)).collect();
        let leader = *isr.first().ok_or_else(|| {
            MetadataError::IneligibleReplica(format!("no unfenced broker among replicas {:?}", a.replicas))
        })?;
        Ok(PartitionState {
            replicas: a.replicas.clone(),
            isr,
            leader,
            leader_epoch: 0,
            partition_epoch: 0,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
            offline_replicas: Vec::new(),
        })
    }
}

fn validate_topic_name(name: &str) -> Result<(), MetadataError> {
    // KRaft's metadata log name is reserved whatever the request's path to the quorum.
    let ok = !name.is_empty()
        && name != "__cluster_metadata"
        && name.len() <= MAX_TOPIC_NAME_LEN
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(MetadataError::InvalidRequest(format!("invalid topic name {name:?}")))
    }
}
