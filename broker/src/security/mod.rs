//! Authentication and authorization, as Kafka models them. Pure cores first, wired into the
//! listeners and handlers by the security work that builds on them:
//!
//! - [`scram`]: SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677, KIP-84) — salted, iterated
//!   credentials and the server side of the exchange; SASL/PLAIN's message format.
//! - [`acl`]: Kafka's ACL model and the authorizer's decision (deny wins, super users,
//!   `allow.everyone.if.no.acl.found`).

pub mod acl;
/// SCRAM and PLAIN live in the wire crate: the broker checks them, its clients speak them.
pub use millrace_protocol::scram;
