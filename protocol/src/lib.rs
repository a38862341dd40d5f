//! The Kafka wire layer shared by the broker, the TUI, the CLIs, the demo and the test harness.
//! It knows frames and kafka-protocol messages, nothing about storage or clusters.
//!
//! - [`codec`]: the length-prefixed frame codec, bounded and never sized by an announced length.
//! - [`message`]: request and response frames to and from kafka-protocol types, both directions.
//! - [`client`]: an async Kafka client over one connection (follower fetchers, `millrace top`,
//!   the CLIs, the demo).
//! - [`tls`]: PEM certificates and keys, and the TLS client configuration.
//! - [`scram`]: SASL/SCRAM and SASL/PLAIN, the server's checks and the client's exchange.
//! - [`compression`]: record batch payloads inflated with a hard cap on the output (the broker's
//!   validation and cleaner, `millrace top`'s record reads).
//! - [`records`]: a zero-copy reader of fetched record sets (batches, CRC-checked records and
//!   lazily read headers, borrowed in place), for consumers that must not allocate per record.

pub mod client;
pub mod codec;
pub mod compression;
pub mod message;
pub mod records;
pub mod scram;
pub mod tls;

pub use client::{ClientError, Connection};
pub use codec::{FrameCodec, FrameError};
pub use message::MessageError;

/// Shorthand for building a `StrBytes` from a `String`.
pub fn str_bytes(s: impl Into<String>) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.into())
}
