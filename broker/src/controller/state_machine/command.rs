//! The messages of the metadata model: [`MetadataCommand`] (a replicated change), the
//! [`MetadataResponse`] applying it yields, and the [`MetadataError`] that rejects it.

use super::{BrokerEndpoint, PartitionState};
use crate::security::acl::{AclBinding, AclBindingFilter};
use crate::security::scram::{Mechanism, ScramCredential};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

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
        /// Every listener's advertised endpoint (absent in registrations written before
        /// listeners had names: those brokers are reached at `host:port` on any listener).
        #[serde(default)]
        listeners: Vec<BrokerEndpoint>,
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
    /// A broker's replicas that sit in a failed log directory: out of their ISRs, leadership
    /// moved to another in-sync replica, not electable again until the broker registers anew
    /// (restarts). Kafka's offline-log-directory handling.
    MarkReplicasOffline {
        /// Broker id.
        id: i32,
        /// The registration the report comes from; a report from an older incarnation is void.
        broker_epoch: i64,
        /// `(topic, partition)` of the offline replicas.
        partitions: Vec<(String, i32)>,
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
    /// Changes a topic's configs (IncrementalAlterConfigs / AlterConfigs): `replace` drops every
    /// config first (AlterConfigs), then `delete` are removed and `set` are set. Values were
    /// checked by the proposer: the model stays free of the config rules, which may differ
    /// between the versions of a rolling upgrade.
    AlterTopicConfigs {
        /// Topic name.
        name: String,
        /// Start from no configs at all.
        replace: bool,
        /// Keys to remove.
        delete: Vec<String>,
        /// Keys to set.
        set: BTreeMap<String, String>,
    },
    /// Changes dynamic broker configs (Kafka's `log.retention.ms` and the like, under their
    /// broker names) of one broker, or with an empty `entity` of every broker (the cluster
    /// default); same shape as [`MetadataCommand::AlterTopicConfigs`].
    AlterBrokerConfigs {
        /// A broker id, or "" for the cluster-wide default.
        entity: String,
        /// Start from no configs at all.
        replace: bool,
        /// Keys to remove.
        delete: Vec<String>,
        /// Keys to set.
        set: BTreeMap<String, String>,
    },
    /// Elects a leader for a leaderless partition, from its in-sync replicas if one is live,
    /// else from any live replica (Kafka's unclean ElectLeaders): the ISR then becomes that one.
    ElectUncleanLeader {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
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
    /// Sets a user's SCRAM credential for one mechanism (KIP-554): salted and iterated, never
    /// the password.
    UpsertScramCredential {
        /// User name.
        user: String,
        /// The credential.
        credential: ScramCredential,
    },
    /// Removes a user's SCRAM credential for one mechanism.
    DeleteScramCredential {
        /// User name.
        user: String,
        /// Which mechanism's credential.
        mechanism: Mechanism,
    },
    /// Adds ACL bindings (CreateAcls): all of them, or none when one is invalid.
    CreateAcls {
        /// The bindings, each already valid for Kafka's creation checks.
        bindings: Vec<AclBinding>,
    },
    /// Removes the ACL bindings the filters select (DeleteAcls).
    DeleteAcls {
        /// The filters, in request order.
        filters: Vec<AclBindingFilter>,
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
    /// What DeleteAcls removed: per filter, in order, the bindings it took away.
    AclsDeleted {
        /// One list per filter.
        deleted: Vec<Vec<AclBinding>>,
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
    /// ELIGIBLE_LEADERS_NOT_AVAILABLE: no live replica could lead.
    #[error("no live replica of {topic}-{partition} can lead")]
    NoEligibleLeader {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
    /// RESOURCE_NOT_FOUND: deleting a SCRAM credential that is not there.
    #[error("user {user} has no {mechanism} credential")]
    UnknownScramCredential {
        /// User name.
        user: String,
        /// Mechanism name.
        mechanism: String,
    },
    /// A SCRAM credential that cannot be stored (bad name, iterations or key lengths).
    #[error("unacceptable credential: {0}")]
    UnacceptableCredential(String),
    /// INVALID_REQUEST: an ACL binding or filter that Kafka's checks refuse.
    #[error("invalid ACL: {0}")]
    InvalidAcl(String),
    /// POLICY_VIOLATION: the cluster holds as many ACLs as it may.
    #[error("the cluster already holds the most ACLs it may ({limit})")]
    TooManyAcls {
        /// The limit.
        limit: usize,
    },
    /// NO_REASSIGNMENT_IN_PROGRESS.
    #[error("no reassignment is in progress for {topic}-{partition}")]
    NoReassignmentInProgress {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
}
