//! The replicated cluster-metadata model: commands and the pure, deterministic state they act on.
//!
//! Everything here is a function of the command sequence only (no clocks, no randomness, no I/O),
//! because every controller replays the same Raft log and must end in the same state. A rejected
//! command still occupies a log entry; it is rejected identically on every replica.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// Kafka's "no leader" partition leader id.
pub const NO_LEADER: i32 = -1;

/// Longest topic name Kafka accepts.
const MAX_TOPIC_NAME_LEN: usize = 249;

/// Largest producer-id block one request may take; bounds a runaway caller.
const MAX_PRODUCER_ID_BLOCK: i32 = 1_000_000;

/// Replica placement of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionAssignment {
    /// Broker ids, preferred leader first.
    pub replicas: Vec<i32>,
}

/// A change to cluster metadata; the payload of every normal Raft log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataCommand {
    /// A broker announces itself (again); it gets a new broker epoch and starts unfenced.
    RegisterBroker {
        /// Broker id.
        id: i32,
        /// Advertised host.
        host: String,
        /// Advertised port.
        port: u16,
        /// Optional rack.
        rack: Option<String>,
    },
    /// Removes a broker from the cluster (it is fenced first; its replicas stay assigned and
    /// show as offline until reassigned).
    UnregisterBroker {
        /// Broker id.
        id: i32,
    },
    /// Liveness report from a registered broker.
    BrokerHeartbeat {
        /// Broker id.
        id: i32,
    },
    /// Take a broker out of service: out of every ISR, leadership moved away.
    FenceBroker {
        /// Broker id.
        id: i32,
    },
    /// Put a fenced broker back into service.
    UnfenceBroker {
        /// Broker id.
        id: i32,
    },
    /// Create a topic with explicit replica assignments.
    CreateTopic {
        /// Topic name.
        name: String,
        /// Topic id (chosen by the proposer so that retries are recognisable).
        topic_id: Uuid,
        /// One assignment per partition, partition 0 first.
        partitions: Vec<PartitionAssignment>,
        /// Topic-level configs.
        configs: BTreeMap<String, String>,
    },
    /// Delete a topic.
    DeleteTopic {
        /// Topic name.
        name: String,
    },
    /// Add partitions to a topic.
    CreatePartitions {
        /// Topic name.
        name: String,
        /// Assignments of the new partitions, appended in order.
        new: Vec<PartitionAssignment>,
    },
    /// A partition leader changes the ISR (Kafka's AlterPartition).
    ChangeIsr {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The leader epoch the sender leads in.
        leader_epoch: i32,
        /// The partition epoch the sender last saw.
        partition_epoch: i32,
        /// Proposed ISR.
        isr: Vec<i32>,
    },
    /// Move leadership to `leader`, which must be an unfenced ISR member.
    ElectLeader {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// New leader.
        leader: i32,
        /// The leader epoch the caller observed; the election is refused if it moved on since.
        leader_epoch: i32,
    },
    /// Starts (replicas given) or cancels (None) moving a partition to another replica set
    /// (Kafka's AlterPartitionReassignments): new replicas join as followers; once they are all
    /// in sync the partition switches to the target set and the removed replicas are dropped.
    AlterReassignment {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// Target replicas, preferred leader first; None cancels an ongoing reassignment.
        target: Option<Vec<i32>>,
    },
    /// Names the cluster; only the first such command takes effect.
    SetClusterId {
        /// The cluster id.
        cluster_id: String,
    },
    /// Hand a block of producer ids to a broker.
    AllocateProducerIds {
        /// Requesting broker.
        broker: i32,
        /// Block size.
        count: i32,
    },
}

/// Result of applying a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataResponse {
    /// Entry carried no command (blank or membership entry), or a command with nothing to report.
    Ok,
    /// The broker's (new) epoch.
    BrokerRegistered {
        /// Broker epoch.
        broker_epoch: i64,
    },
    /// Heartbeat answer.
    Heartbeat {
        /// Current broker epoch.
        broker_epoch: i64,
        /// Whether the broker is fenced.
        fenced: bool,
    },
    /// Fence/unfence outcome.
    BrokerFenceChanged {
        /// Number of partitions whose leader or ISR changed.
        partitions_changed: usize,
    },
    /// Topic created.
    TopicCreated {
        /// Topic id.
        topic_id: Uuid,
    },
    /// New state of the partition touched by ChangeIsr / ElectLeader.
    Partition(PartitionState),
    /// A producer-id block `[first, first + count)`.
    ProducerIds {
        /// First id of the block.
        first: i64,
        /// Block size.
        count: i32,
    },
}

/// Why a command was rejected. Mirrors the Kafka error codes a broker would return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MetadataError {
    /// BROKER_ID_NOT_REGISTERED.
    #[error("broker {0} is not registered")]
    BrokerNotRegistered(i32),
    /// TOPIC_ALREADY_EXISTS.
    #[error("topic {0} already exists")]
    TopicExists(String),
    /// TOPIC_ALREADY_EXISTS for a reused topic id.
    #[error("topic id {0} is already in use")]
    TopicIdInUse(Uuid),
    /// UNKNOWN_TOPIC_OR_PARTITION.
    #[error("unknown topic {0}")]
    UnknownTopic(String),
    /// UNKNOWN_TOPIC_OR_PARTITION.
    #[error("unknown partition {topic}-{partition}")]
    UnknownPartition {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
    /// INVALID_TOPIC_EXCEPTION / INVALID_PARTITIONS / INVALID_REPLICA_ASSIGNMENT.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// FENCED_LEADER_EPOCH (stale) or UNKNOWN_LEADER_EPOCH (ahead).
    #[error("leader epoch {got} does not match current {current}")]
    LeaderEpochMismatch {
        /// Controller's leader epoch.
        current: i32,
        /// Sender's.
        got: i32,
    },
    /// NOT_LEADER_OR_FOLLOWER: ChangeIsr from a broker that is not the leader.
    #[error("partition leader is {leader}, not the sender")]
    NotLeader {
        /// Current leader.
        leader: i32,
    },
    /// INVALID_UPDATE_VERSION: stale partition epoch.
    #[error("partition epoch {got} does not match current {current}")]
    InvalidUpdateVersion {
        /// Controller's partition epoch.
        current: i32,
        /// Sender's.
        got: i32,
    },
    /// INELIGIBLE_REPLICA / INVALID_REQUEST for an ISR or leader that cannot be used.
    #[error("ineligible replica: {0}")]
    IneligibleReplica(String),
    /// ELECTION_NOT_NEEDED.
    #[error("broker {0} already leads the partition")]
    ElectionNotNeeded(i32),
    /// NO_REASSIGNMENT_IN_PROGRESS.
    #[error("no reassignment is in progress for {topic}-{partition}")]
    NoReassignmentInProgress {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
}

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerState {
    /// Broker id.
    pub id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: u16,
    /// Rack, if configured.
    pub rack: Option<String>,
    /// Broker epoch, new on every registration.
    pub epoch: i64,
    /// Fenced brokers lead nothing and are in no ISR.
    pub fenced: bool,
}

/// Leadership and replication state of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// Assigned replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Leader broker id, or [`NO_LEADER`].
    pub leader: i32,
    /// Bumped on every leader change.
    pub leader_epoch: i32,
    /// Bumped on every change of this record (Kafka's partition epoch).
    pub partition_epoch: i32,
    /// Replicas an ongoing reassignment adds (they are already in `replicas`).
    #[serde(default)]
    pub adding_replicas: Vec<i32>,
    /// Replicas an ongoing reassignment removes (still in `replicas` until it completes).
    #[serde(default)]
    pub removing_replicas: Vec<i32>,
}

impl PartitionState {
    /// The replica set a reassignment moves to (the current one when none is ongoing).
    pub fn target_replicas(&self) -> Vec<i32> {
        self.replicas.iter().copied().filter(|r| !self.removing_replicas.contains(r)).collect()
    }

    /// Whether a reassignment is ongoing.
    pub fn reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicState {
    /// Topic id.
    pub topic_id: Uuid,
    /// Topic configs.
    pub configs: BTreeMap<String, String>,
    /// Partitions, index = partition id.
    pub partitions: Vec<PartitionState>,
}

/// The whole replicated cluster metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataState {
    /// Registered brokers by id.
    pub brokers: BTreeMap<i32, BrokerState>,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicState>,
    /// First producer id of the next block handed out.
    pub next_producer_id: i64,
    /// Next broker epoch to hand out; a counter rather than a clock to stay deterministic.
    pub next_broker_epoch: i64,
    /// The cluster's id, set once by the first active controller.
    #[serde(default)]
    pub cluster_id: Option<String>,
    /// Brokers unregistered since they last registered; the active controller stops replicating
    /// the metadata log to them.
    #[serde(default)]
    pub removed_brokers: BTreeSet<i32>,
}

impl MetadataState {
    /// Validates and applies one command. On error the state is unchanged.
    pub fn apply(&mut self, cmd: &MetadataCommand) -> Result<MetadataResponse, MetadataError> {
        match cmd {
            MetadataCommand::RegisterBroker { id, host, port, rack } => {
                if *id < 0 {
                    return Err(MetadataError::InvalidRequest(format!("broker id {id} is negative")));
                }
                // A broker that registers again restarted: whatever it led or followed in its
                // previous life may be missing unflushed data, so it is fenced (out of every ISR,
                // leadership moved away) like a dead broker, and rejoins ISRs by catching up.
                let changed = if self.brokers.contains_key(id) { self.fence_partitions(*id) } else { 0 };
                let epoch = self.next_broker_epoch;
                self.next_broker_epoch += 1;
                // It starts fenced; the active controller unfences it once it heartbeats with
                // its metadata caught up (Kafka's KRaft registration rules).
                let broker =
                    BrokerState { id: *id, host: host.clone(), port: *port, rack: rack.clone(), epoch, fenced: true };
                self.brokers.insert(*id, broker);
                self.removed_brokers.remove(id);
                tracing::debug!(broker = id, epoch, changed, "broker registration applied");
                Ok(MetadataResponse::BrokerRegistered { broker_epoch: epoch })
            }
            MetadataCommand::UnregisterBroker { id } => {
                self.broker(*id)?;
                if self.brokers.get(id).is_some_and(|b| !b.fenced) {
                    return Err(MetadataError::InvalidRequest(format!(
                        "broker {id} is alive (unfenced); stop it before unregistering it"
                    )));
                }
                let changed = self.fence_partitions(*id);
                self.brokers.remove(id);
                self.removed_brokers.insert(*id);
                Ok(MetadataResponse::BrokerFenceChanged { partitions_changed: changed })
            }
            MetadataCommand::BrokerHeartbeat { id } => {
                let b = self.broker(*id)?;
                Ok(MetadataResponse::Heartbeat { broker_epoch: b.epoch, fenced: b.fenced })
            }
            MetadataCommand::FenceBroker { id } => self.fence(*id),
            MetadataCommand::UnfenceBroker { id } => {
                self.broker(*id)?;
                if let Some(b) = self.brokers.get_mut(id) {
                    b.fenced = false;
                }
                let changed = self.elect_leaderless(*id);
                Ok(MetadataResponse::BrokerFenceChanged { partitions_changed: changed })
            }
            MetadataCommand::CreateTopic { name, topic_id, partitions, configs } => {
                validate_topic_name(name)?;
                if self.topics.contains_key(name) {
                    return Err(MetadataError::TopicExists(name.clone()));
                }
                if topic_id.is_nil() || self.topics.values().any(|t| t.topic_id == *topic_id) {
                    return Err(MetadataError::TopicIdInUse(*topic_id));
                }
                if partitions.is_empty() {
                    return Err(MetadataError::InvalidRequest("a topic needs at least one partition".into()));
                }
                let parts = partitions.iter().map(|a| self.new_partition(a)).collect::<Result<Vec<_>, _>>()?;
                let topic = TopicState { topic_id: *topic_id, configs: configs.clone(), partitions: parts };
                self.topics.insert(name.clone(), topic);
                Ok(MetadataResponse::TopicCreated { topic_id: *topic_id })
            }
            MetadataCommand::DeleteTopic { name } => match self.topics.remove(name) {
                Some(_) => Ok(MetadataResponse::Ok),
                None => Err(MetadataError::UnknownTopic(name.clone())),
            },
            MetadataCommand::CreatePartitions { name, new } => {
                if !self.topics.contains_key(name) {
                    return Err(MetadataError::UnknownTopic(name.clone()));
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
            MetadataCommand::ChangeIsr { topic, partition, leader_epoch, partition_epoch, isr } => {
                let eligible = self.eligible_set();
                let p = self.partition_mut(topic, *partition)?;
                if *leader_epoch != p.leader_epoch {
                    return Err(MetadataError::LeaderEpochMismatch { current: p.leader_epoch, got: *leader_epoch });
                }
                if *partition_epoch != p.partition_epoch {
                    return Err(MetadataError::InvalidUpdateVersion {
                        current: p.partition_epoch,
                        got: *partition_epoch,
                    });
                }
                if p.leader == NO_LEADER || !isr.contains(&p.leader) {
                    return Err(MetadataError::IneligibleReplica(format!(
                        "ISR {isr:?} must contain leader {}",
                        p.leader
                    )));
                }
                check_distinct(isr)?;
                if let Some(bad) = isr.iter().find(|r| !p.replicas.contains(r) || !eligible.contains(r)) {
                    return Err(MetadataError::IneligibleReplica(format!("broker {bad} is not an unfenced replica")));
                }
                p.isr = isr.clone();
                p.partition_epoch += 1;
                complete_reassignment_if_caught_up(topic, *partition, p);
                Ok(MetadataResponse::Partition(p.clone()))
            }
            MetadataCommand::ElectLeader { topic, partition, leader, leader_epoch } => {
                let eligible = self.eligible_set();
                let p = self.partition_mut(topic, *partition)?;
                if *leader_epoch != p.leader_epoch {
                    return Err(MetadataError::LeaderEpochMismatch { current: p.leader_epoch, got: *leader_epoch });
                }
                if p.leader == *leader {
                    return Err(MetadataError::ElectionNotNeeded(*leader));
                }
                // Unclean election is off: only an unfenced ISR member may lead.
                if !p.isr.contains(leader) || !eligible.contains(leader) {
                    return Err(MetadataError::IneligibleReplica(format!(
                        "broker {leader} is not an unfenced ISR member"
                    )));
                }
                p.leader = *leader;
                p.leader_epoch += 1;
                p.partition_epoch += 1;
                Ok(MetadataResponse::Partition(p.clone()))
            }
            MetadataCommand::AlterReassignment { topic, partition, target } => {
                let target = match target {
                    Some(t) => {
                        if t.is_empty() {
                            return Err(MetadataError::InvalidRequest("a partition needs at least one replica".into()));
                        }
                        check_distinct(t)?;
                        for r in t {
                            self.broker(*r)?;
                        }
                        Some(t.clone())
                    }
                    None => None,
                };
                let p = self.partition_mut(topic, *partition)?;
                let original: Vec<i32> =
                    p.replicas.iter().copied().filter(|r| !p.adding_replicas.contains(r)).collect();
                match target {
                    None => {
                        if !p.reassigning() {
                            return Err(MetadataError::NoReassignmentInProgress {
                                topic: topic.clone(),
                                partition: *partition,
                            });
                        }
                        let reverted = original;
                        switch_replicas(p, reverted);
                    }
                    Some(target) => {
                        let adding: Vec<i32> = target.iter().copied().filter(|r| !original.contains(r)).collect();
                        let removing: Vec<i32> = original.iter().copied().filter(|r| !target.contains(r)).collect();
                        // The replica list holds both sets while data moves: target first, so
                        // the preferred leader is the target's.
                        let mut replicas = target.clone();
                        replicas.extend(removing.iter().copied());
                        p.replicas = replicas;
                        p.adding_replicas = adding;
                        p.removing_replicas = removing;
                        p.isr.retain(|r| p.replicas.contains(r));
                        p.partition_epoch += 1;
                        complete_reassignment_if_caught_up(topic, *partition, p);
                    }
                }
                Ok(MetadataResponse::Partition(p.clone()))
            }
            MetadataCommand::SetClusterId { cluster_id } => {
                if self.cluster_id.is_none() {
                    self.cluster_id = Some(cluster_id.clone());
                }
                Ok(MetadataResponse::Ok)
            }
            MetadataCommand::AllocateProducerIds { broker, count } => {
                self.broker(*broker)?;
                if *count <= 0 || *count > MAX_PRODUCER_ID_BLOCK {
                    return Err(MetadataError::InvalidRequest(format!("producer-id block size {count}")));
                }
                let first = self.next_producer_id;
                let next = first
                    .checked_add(i64::from(*count))
                    .ok_or_else(|| MetadataError::InvalidRequest("producer ids exhausted".into()))?;
                self.next_producer_id = next;
                Ok(MetadataResponse::ProducerIds { first, count: *count })
            }
        }
    }

    fn broker(&self, id: i32) -> Result<&BrokerState, MetadataError> {
        self.brokers.get(&id).ok_or(MetadataError::BrokerNotRegistered(id))
    }

    fn eligible_set(&self) -> BTreeSet<i32> {
        self.brokers.values().filter(|b| !b.fenced).map(|b| b.id).collect()
    }

    fn partition_mut(&mut self, topic: &str, partition: i32) -> Result<&mut PartitionState, MetadataError> {
        let t = self.topics.get_mut(topic).ok_or_else(|| MetadataError::UnknownTopic(topic.to_string()))?;
        usize::try_from(partition)
            .ok()
            .and_then(|i| t.partitions.get_mut(i))
            .ok_or_else(|| MetadataError::UnknownPartition { topic: topic.to_string(), partition })
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
        })
    }

    fn fence(&mut self, id: i32) -> Result<MetadataResponse, MetadataError> {
        self.broker(id)?;
        let changed = self.fence_partitions(id);
        Ok(MetadataResponse::BrokerFenceChanged { partitions_changed: changed })
    }

    /// Marks `id` fenced, takes it out of every ISR and moves its leaderships to the next
    /// unfenced ISR member. Returns the number of partitions changed.
    fn fence_partitions(&mut self, id: i32) -> usize {
        if let Some(b) = self.brokers.get_mut(&id) {
            b.fenced = true;
        }
        let eligible = self.eligible_set();
        let mut changed = 0;
        for (name, t) in self.topics.iter_mut() {
            let unclean = unclean_allowed(&t.configs);
            for (index, p) in t.partitions.iter_mut().enumerate() {
                if !p.isr.contains(&id) && p.leader != id {
                    continue;
                }
                // Like KRaft, the last ISR member stays in the ISR (leaderless) so it alone can be
                // re-elected when it comes back: anyone else could be missing committed records.
                if p.isr.len() > 1 {
                    p.isr.retain(|r| *r != id);
                }
                if p.leader == id {
                    let next = p.replicas.iter().copied().find(|r| p.isr.contains(r) && eligible.contains(r));
                    p.leader = match next {
                        Some(next) => next,
                        None if unclean => match p.replicas.iter().copied().find(|r| eligible.contains(r)) {
                            Some(any) => {
                                tracing::warn!(
                                    topic = %name, partition = index, new_leader = any, isr = ?p.isr,
                                    "UNCLEAN leader election: no in-sync replica is available, electing an \
                                     out-of-sync one; acknowledged records may be lost"
                                );
                                p.isr = vec![any];
                                any
                            }
                            None => NO_LEADER,
                        },
                        None => NO_LEADER,
                    };
                    p.leader_epoch += 1;
                }
                p.partition_epoch += 1;
                changed += 1;
            }
        }
        changed
    }

    /// Gives leaderless partitions whose ISR holds `id` (now unfenced) their leader back.
    fn elect_leaderless(&mut self, id: i32) -> usize {
        let mut changed = 0;
        for (name, t) in self.topics.iter_mut() {
            let unclean = unclean_allowed(&t.configs);
            for (index, p) in t.partitions.iter_mut().enumerate() {
                if p.leader != NO_LEADER || !p.replicas.contains(&id) {
                    continue;
                }
                if !p.isr.contains(&id) {
                    if !unclean {
                        continue;
                    }
                    tracing::warn!(
                        topic = %name, partition = index, new_leader = id, isr = ?p.isr,
                        "UNCLEAN leader election: the in-sync replicas are gone, electing an out-of-sync \
                         one; acknowledged records may be lost"
                    );
                    p.isr = vec![id];
                }
                p.leader = id;
                p.leader_epoch += 1;
                p.partition_epoch += 1;
                changed += 1;
            }
        }
        changed
    }
}

/// Finishes a reassignment once every added replica is in the ISR: the partition moves to its
/// target replica set, removed replicas leave the ISR, and leadership moves if the leader was
/// removed.
fn complete_reassignment_if_caught_up(topic: &str, partition: i32, p: &mut PartitionState) {
    if !p.reassigning() || !p.adding_replicas.iter().all(|r| p.isr.contains(r)) {
        return;
    }
    let target = p.target_replicas();
    // Never finish into a state without an in-sync replica to lead.
    if !target.iter().any(|r| p.isr.contains(r)) {
        return;
    }
    tracing::info!(topic, partition, replicas = ?target, "reassignment complete");
    switch_replicas(p, target);
}

/// Makes `replicas` the partition's replica set, ending any reassignment: the ISR keeps only
/// members of the new set, and a leader outside it hands over to the first in-sync member.
fn switch_replicas(p: &mut PartitionState, replicas: Vec<i32>) {
    p.isr.retain(|r| replicas.contains(r));
    if !replicas.contains(&p.leader) {
        p.leader = replicas.iter().copied().find(|r| p.isr.contains(r)).unwrap_or(NO_LEADER);
        p.leader_epoch += 1;
    }
    p.replicas = replicas;
    p.adding_replicas.clear();
    p.removing_replicas.clear();
    p.partition_epoch += 1;
}

/// `unclean.leader.election.enable` of a topic (off unless set to true).
fn unclean_allowed(configs: &BTreeMap<String, String>) -> bool {
    configs.get("unclean.leader.election.enable").is_some_and(|v| v.trim() == "true")
}

fn check_distinct(ids: &[i32]) -> Result<(), MetadataError> {
    let set: BTreeSet<_> = ids.iter().collect();
    if set.len() != ids.len() {
        return Err(MetadataError::InvalidRequest(format!("duplicate broker in {ids:?}")));
    }
    Ok(())
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

#[cfg(test)]
mod tests;
