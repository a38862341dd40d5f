//! millrace broker: a Kafka wire-protocol broker over a segmented, append-only log.
//!
//! Layout (the request path runs top to bottom):
//! - [`runtime`]: [`start`] binds the listeners and opens storage; [`RunningBroker::serve`] runs
//!   every task until shutdown. [`Broker`] ([`broker`]) is the state they share.
//! - [`server`]: TCP accept loop, connection limits, request frames, per-connection pipelining.
//! - [`api`]: one handler per Kafka API over small context traits, and the dispatch table.
//! - [`partition`]: one partition for the server: the log behind a lock, end-offset watches for
//!   long polls, group-commit fsync, the replica's role (leader or follower).
//! - [`log`]: storage — segments (`<base offset>.log`), mmap'd `.index` / `.timeindex`, record
//!   validation, recovery, retention, compaction, idempotent-producer state. No networking.
//! - [`catalog`]: the topics and partition replicas hosted here, materialized from the metadata.
//! - [`replication`]: the leader's pure ISR / high-watermark bookkeeping (`isr`), the follower
//!   fetchers (`follower`) and the replica manager that assigns roles from metadata (`manager`).
//! - [`controller`]: the openraft metadata quorum (KRaft's role): replicated metadata log, pure
//!   state machine, broker liveness and controller RPC.
//! - [`cluster`]: this broker's membership (registration, heartbeats) and topic administration
//!   through the quorum ([`cluster::Quorum`]).
//! - [`group`]: the consumer-group coordinator (pure transitions returning effects, and the
//!   runtime that performs them) and `__consumer_offsets`.
//! - [`producer_ids`]: producer ids from blocks the metadata quorum hands out.
//! - [`admin`] + [`metrics`]: the HTTP listener with `/metrics`, `/health` (readiness) and
//!   `/live`; [`health`]: what they decide from (partition health, ISR changes, readiness; pure).
//! - [`housekeeping`]: periodic fsync, retention, compaction and group expiry;
//!   [`internal_topics`]: creating `__consumer_offsets` and recording the cluster id.
//! - [`security`]: SCRAM credentials and exchange, Kafka's ACL model and authorizer (pure).
//! - [`clock`]: the wall clock, read only by shells; [`error`]: [`error::BrokerError`].

pub mod admin;
pub mod api;
pub mod broker;
pub mod catalog;
pub mod clock;
pub mod cluster;
pub mod controller;
pub mod error;
mod fsutil;
pub mod group;
pub mod health;
mod housekeeping;
mod internal_topics;
pub mod log;
pub mod log_dirs;
pub mod metrics;
pub mod partition;
pub mod producer_ids;
pub mod replication;
pub mod runtime;
pub mod security;
pub mod server;

pub use broker::Broker;
pub use runtime::{start, BoundAddresses, RunningBroker};
