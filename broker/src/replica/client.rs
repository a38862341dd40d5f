//! The Kafka client now lives in `millrace-protocol`; these names remain until every caller
//! outside the broker imports it from there.

pub use millrace_protocol::client::{ClientError, Connection as PeerConnection};
