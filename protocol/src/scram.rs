//! SCRAM (RFC 5802 / RFC 7677, Kafka's KIP-84 and KIP-554) and SASL/PLAIN (RFC 4616), as pure
//! functions and state machines: no I/O, no clock, randomness injected through [`RandomSource`].
//!
//! - [`Mechanism`]: SCRAM-SHA-256 / SCRAM-SHA-512 and Kafka's iteration bounds.
//! - [`ScramCredential`]: what the metadata log stores for a user (never the password).
//! - [`ScramServer`], [`ServerFirst`], [`ScramSession`]: the server side of the exchange.
//! - [`parse_plain`], [`verify_plain`]: SASL/PLAIN checked against the same SCRAM store.
//! - [`ScramClient`], [`plain_message`]: the client side, for millrace's own connections.

mod client;
mod credential;
mod error;
mod mechanism;
mod messages;
mod plain;
mod server;
#[cfg(test)]
mod tests;

pub use client::{plain_message, ScramClient, ScramClientFinal};
pub use credential::{ScramCredential, MAX_SALT_LEN};
pub use error::{PlainError, ScramError};
pub use mechanism::Mechanism;
pub use messages::{escape_saslname, parse_client_first, unescape_saslname, ClientFirst};
pub use plain::{parse_plain, verify_plain};
pub use server::{ScramServer, ScramSession, ServerFirst};

/// Largest client message accepted; a legitimate one (255-byte escaped username, 256-byte
/// nonce, 64-byte proof) stays well under this.
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Longest username, after `=2C`/`=3D` unescaping (PLAIN: RFC 4616's 255-octet limit).
pub const MAX_USERNAME_LEN: usize = 255;
/// Longest client nonce.
pub const MAX_NONCE_LEN: usize = 256;
/// Random bytes behind the server's half of the nonce (base64-encoded on the wire).
pub const SERVER_NONCE_BYTES: usize = 24;
/// Length of generated salts, and of the fake salts handed to unknown users so both look alike.
pub const SALT_LEN: usize = 32;

/// Where nonces, salts and server secrets come from. Tests pass a closure; production uses
/// [`OsRandom`].
pub trait RandomSource {
    /// Fills `buf` entirely with random bytes.
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), ScramError>;
}

impl<F: FnMut(&mut [u8])> RandomSource for F {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), ScramError> {
        self(buf);
        Ok(())
    }
}

/// The operating system's CSPRNG.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), ScramError> {
        getrandom::fill(buf).map_err(|_| ScramError::RandomUnavailable)
    }
}
