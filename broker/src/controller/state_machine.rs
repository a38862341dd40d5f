//! The replicated cluster-metadata model: commands and the pure, deterministic state they act on.
//!
//! Everything here is a function of the command sequence only (no clocks, no randomness, no I/O),
//! because every controller replays the same Raft log and must end in the same state. A rejected
//! command still occupies a log entry; it is rejected identically on every replica.
//!
//! Map:
//! - `command`: what may be asked ([`MetadataCommand`]), what comes back ([`MetadataResponse`])
//!   and why a command is refused ([`MetadataError`]).
//! - here: the state ([`MetadataState`] and its parts) and [`MetadataState::apply`], which
//!   dispatches each command to its family:
//! - `brokers`: registration, heartbeats, fencing and the leader moves fencing causes.
//! - `topics`: topic creation and deletion, added partitions.
//! - `partitions`: ISR changes, leader elections and reassignments of one partition.
//! - `cluster`: cluster-wide values (the cluster id, producer-id blocks).
//! - `users`: SCRAM credentials (salted, iterated; never a password).
//! - `acls`: Kafka ACLs (CreateAcls / DeleteAcls), enforced by every broker's authorizer.

mod acls;
mod brokers;
mod cluster;
mod command;
mod partitions;
mod topics;
mod users;

pub use acls::{MAX_ACLS, MAX_ACL_FIELD};
pub use command::{MetadataCommand, MetadataError, MetadataResponse, PartitionAssignment};

use crate::security::acl::AclBinding;
use crate::security::scram::{Mechanism, ScramCredential};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// Kafka's "no leader" partition leader id.
pub const NO_LEADER: i32 = -1;

/// Where a broker's listener is reached: Metadata answers each client with the endpoints of
/// the listener it connected to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerEndpoint {
    /// Listener name.
    pub name: String,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: u16,
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
    /// Advertised endpoints by listener; `host:port` is the inter-broker listener's.
    #[serde(default)]
    pub listeners: Vec<BrokerEndpoint>,
}

impl BrokerState {
    /// Where clients of `listener` reach this broker: that listener's endpoint; `host:port` for
    /// a broker registered without named listeners; `None` if it has no such listener.
    pub fn endpoint(&self, listener: &str) -> Option<(&str, u16)> {
        if self.listeners.is_empty() {
            return Some((&self.host, self.port));
        }
        self.listeners.iter().find(|l| l.name == listener).map(|l| (l.host.as_str(), l.port))
    }
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
    /// Replicas whose broker reported their log directory failed: neither in the ISR nor
    /// electable until that broker registers again.
    #[serde(default)]
    pub offline_replicas: Vec<i32>,
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
    /// SCRAM credentials by user, then mechanism.
    #[serde(default)]
    pub scram_credentials: BTreeMap<String, BTreeMap<Mechanism, ScramCredential>>,
    /// ACL bindings (Kafka's authorizer data), ordered so every replica lists them alike.
    #[serde(default)]
    pub acls: BTreeSet<AclBinding>,
    /// Dynamic broker configs by entity: "" for the cluster-wide default, else a broker id.
    #[serde(default)]
    pub broker_configs: BTreeMap<String, BTreeMap<String, String>>,
}

impl MetadataState {
    /// Validates and applies one command. On error the state is unchanged.
    pub fn apply(&mut self, cmd: &MetadataCommand) -> Result<MetadataResponse, MetadataError> {
        match cmd {
            MetadataCommand::RegisterBroker { id, host, port, rack, listeners } => {
                self.register_broker(*id, host, *port, rack.as_deref(), listeners)
            }
            MetadataCommand::UnregisterBroker { id } => self.unregister_broker(*id),
            MetadataCommand::BrokerHeartbeat { id } => self.broker_heartbeat(*id),
            MetadataCommand::FenceBroker { id } => self.fence(*id),
            MetadataCommand::UnfenceBroker { id } => self.unfence_broker(*id),
            MetadataCommand::MarkReplicasOffline { id, broker_epoch, partitions } => {
                self.mark_replicas_offline(*id, *broker_epoch, partitions)
            }
            MetadataCommand::CreateTopic { name, topic_id, partitions, configs } => {
                self.create_topic(name, *topic_id, partitions, configs)
            }
            MetadataCommand::DeleteTopic { name } => self.delete_topic(name),
            MetadataCommand::CreatePartitions { name, new } => self.create_partitions(name, new),
            MetadataCommand::AlterTopicConfigs { name, replace, delete, set } => {
                self.alter_topic_configs(name, *replace, delete, set)
            }
            MetadataCommand::AlterBrokerConfigs { entity, replace, delete, set } => {
                self.alter_broker_configs(entity, *replace, delete, set)
            }
            MetadataCommand::ElectUncleanLeader { topic, partition } => self.elect_unclean_leader(topic, *partition),
            MetadataCommand::ChangeIsr { topic, partition, leader_epoch, partition_epoch, isr } => {
                self.change_isr(topic, *partition, *leader_epoch, *partition_epoch, isr)
            }
            MetadataCommand::ElectLeader { topic, partition, leader, leader_epoch } => {
                self.elect_leader(topic, *partition, *leader, *leader_epoch)
            }
            MetadataCommand::AlterReassignment { topic, partition, target } => {
                self.alter_reassignment(topic, *partition, target.as_deref())
            }
            MetadataCommand::SetClusterId { cluster_id } => self.set_cluster_id(cluster_id),
            MetadataCommand::AllocateProducerIds { broker, count } => self.allocate_producer_ids(*broker, *count),
            MetadataCommand::UpsertScramCredential { user, credential } => {
                self.upsert_scram_credential(user, credential)
            }
            MetadataCommand::DeleteScramCredential { user, mechanism } => {
                self.delete_scram_credential(user, *mechanism)
            }
            MetadataCommand::CreateAcls { bindings } => self.create_acls(bindings),
            MetadataCommand::DeleteAcls { filters } => self.delete_acls(filters),
        }
    }

    /// The dynamic broker configs in force on broker `id`: its own over the cluster default.
    pub fn dynamic_broker_configs(&self, id: i32) -> BTreeMap<String, String> {
        let mut configs = self.broker_configs.get("").cloned().unwrap_or_default();
        if let Some(own) = self.broker_configs.get(&id.to_string()) {
            configs.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        configs
    }

    /// AlterBrokerConfigs.
    fn alter_broker_configs(
        &mut self,
        entity: &str,
        replace: bool,
        delete: &[String],
        set: &BTreeMap<String, String>,
    ) -> Result<MetadataResponse, MetadataError> {
        if !entity.is_empty() && entity.parse::<i32>().is_err() {
            return Err(MetadataError::InvalidRequest(format!("'{entity}' is not a broker id")));
        }
        let configs = self.broker_configs.entry(entity.to_string()).or_default();
        if replace {
            configs.clear();
        }
        for key in delete {
            configs.remove(key);
        }
        configs.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
        if configs.is_empty() {
            self.broker_configs.remove(entity);
        }
        Ok(MetadataResponse::Ok)
    }

    fn broker(&self, id: i32) -> Result<&BrokerState, MetadataError> {
        self.brokers.get(&id).ok_or(MetadataError::BrokerNotRegistered(id))
    }

    /// Unfenced brokers: those that may lead or be in an ISR (each partition also excludes its
    /// offline replicas).
    fn eligible_set(&self) -> BTreeSet<i32> {
        self.brokers.values().filter(|b| !b.fenced).map(|b| b.id).collect()
    }
}

fn check_distinct(ids: &[i32]) -> Result<(), MetadataError> {
    let set: BTreeSet<_> = ids.iter().collect();
    if set.len() != ids.len() {
        return Err(MetadataError::InvalidRequest(format!("duplicate broker in {ids:?}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
