//! Consumer groups: the classic rebalance protocol and committed offsets.
//!
//! - [`state`]: the pure group state machine (join, sync, heartbeat, leave, expiry).
//! - [`coordinator`]: all groups on this broker, their offsets, and the clock.
//! - [`types`]: states, request arguments and results of the state machine.
//! - [`store`]: the `__consumer_offsets` record format, writing and loading.

pub mod coordinator;
pub mod state;
#[cfg(test)]
mod state_tests;
pub mod store;
pub mod types;

pub use coordinator::GroupCoordinator;
pub use store::OFFSETS_TOPIC;
