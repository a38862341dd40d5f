//! Consumer groups: the classic rebalance protocol and committed offsets.
//!
//! - [`state`]: the pure state machine of one group (join, sync, heartbeat, leave, expiry).
//! - [`groups`]: the pure coordinator core: every group ([`entry`]: membership and offsets);
//!   transitions return [`effects`] instead of writing or waking anything.
//! - [`coordinator`]: the runtime: clock, lock, and performing the effects.
//! - [`types`]: states, request arguments and results of the state machine.
//! - [`store`]: writing and loading `__consumer_offsets`, and migrating its earlier JSON records;
//!   [`codec`]: its record format, Kafka's key/value schemas; [`records`] converts groups to and
//!   from it.
//! - [`view`]: read-only views (offsets, listing, descriptions).

pub mod codec;
pub mod coordinator;
pub mod effects;
mod entry;
pub mod groups;
mod records;
pub mod state;
pub mod store;
pub mod types;
pub mod view;

pub use coordinator::GroupCoordinator;
pub use store::OFFSETS_TOPIC;
