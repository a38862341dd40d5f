//! millrace top: a terminal UI in the style of k9s for any Kafka-compatible cluster — brokers,
//! topics, partitions (ISR health), consumer groups and their lag — read only through Kafka
//! APIs (Metadata, ListOffsets, ListGroups, DescribeGroups, OffsetFetch, DescribeConfigs) plus
//! each broker's Prometheus `/metrics` where there is one.
//!
//! - [`poller`]: the requests, batched per broker and counted;
//! - [`model`]: snapshots as plain data, rates, lag and trends as pure functions;
//! - [`app`]: the UI state and its update on keys and snapshots, no I/O;
//! - [`views`]: rendering a state and a snapshot, also to plain text;
//! - [`run`]: the terminal program.

pub mod app;
pub mod fixture;
pub mod model;
pub mod poller;
mod runtime;
pub mod views;

pub use runtime::{run, Options, TuiError};
