//! The pipeline's own status: every agent and sink publishes a small record every few seconds
//! to the compacted topic [`STATUS_TOPIC`], keyed by component, host and name, so `millrace top`
//! can show whether each of them is delivering without knowing where their `/metrics` are.
//!
//! - [`record`]: the record (JSON, versioned), its key, and a bounded decoder for readers.
//! - [`publish`] (feature `publish`): the publisher loop over a librdkafka producer.

#[cfg(feature = "publish")]
pub mod publish;
pub mod record;

pub use record::{
    AgentStatus, ComponentKind, DestinationState, InputStatus, RunState, SinkStatus, Status, StatusError,
    MAX_RECORD_BYTES, STATUS_TOPIC,
};
