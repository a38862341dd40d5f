//! Partition replication as seen from the partition LEADER (the bookkeeping Kafka keeps in
//! `Partition` / `Replica` on the leader broker).
//!
//! Map:
//! - [`isr`]: [`PartitionReplicationState`] — per-follower fetch tracking (log end offset,
//!   `lastCaughtUpTimeMs`), the high watermark, ISR shrink/expand decisions, the single in-flight
//!   AlterPartition change ([`IsrChangeRequest`]) and the acks=all / `min.insync.replicas` checks.
//!
//! Everything here is pure: no I/O, no async, no clock. The fetch path and the controller drive it
//! and pass the current time in, so every decision is reproducible in tests.

pub mod isr;

pub use isr::{
    AckAllStatus, FetchOutcome, FollowerState, IsrChangeRequest, LeaderInit, NotEnoughReplicas,
    PartitionReplicationState, ReplicationError,
};
