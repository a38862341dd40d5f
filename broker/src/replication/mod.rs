//! Partition replication: the three places a replica's life is decided.
//!
//! - [`isr`] (pure, the LEADER's bookkeeping Kafka keeps in `Partition` / `Replica`):
//!   [`PartitionReplicationState`] — per-follower fetch tracking (log end offset,
//!   `lastCaughtUpTimeMs`), the high watermark, ISR shrink/expand decisions, the single in-flight
//!   AlterPartition change ([`IsrChangeRequest`]) and the acks=all / `min.insync.replicas`
//!   checks. No I/O, no async, no clock: callers pass the time in.
//! - [`follower`] (a FOLLOWER's fetch loop, Kafka's `ReplicaFetcherThread`): one task per leader
//!   broker, appending what it fetches verbatim and truncating a divergent tail.
//! - [`manager`] (Kafka's `ReplicaManager`): turns the controller's metadata into local replicas,
//!   their roles (leader or follower, see [`crate::partition::Role`]) and the follower fetchers,
//!   and lets leaders propose ISR changes.

pub mod follower;
pub mod isr;
pub mod manager;

pub use isr::{
    AckAllStatus, FetchOutcome, FollowerState, IsrChangeRequest, LeaderInit, NotEnoughReplicas,
    PartitionReplicationState, ReplicationError,
};
