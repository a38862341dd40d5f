//! The SCRAM mechanisms Kafka supports and the primitives each one is built from.

use hmac::digest::core_api::BlockSizeUser;
use hmac::digest::Digest;
use hmac::{Mac, SimpleHmac};
use serde::{Deserialize, Serialize};
use sha2::{Sha256, Sha512};

/// A SCRAM mechanism, named as Kafka names it in SaslHandshake and the SCRAM admin APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Mechanism {
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl Mechanism {
    /// Kafka refuses fewer iterations than this for either mechanism.
    pub const MIN_ITERATIONS: u32 = 4096;
    /// Kafka's upper bound (KIP-554), which also caps the PBKDF2 work a PLAIN login can cost us.
    pub const MAX_ITERATIONS: u32 = 16384;

    pub const ALL: [Mechanism; 2] = [Mechanism::ScramSha256, Mechanism::ScramSha512];

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    /// The code Kafka's SCRAM admin APIs use (`ScramMechanism`: 1 and 2; 0 is UNKNOWN).
    pub fn code(self) -> i8 {
        match self {
            Mechanism::ScramSha256 => 1,
            Mechanism::ScramSha512 => 2,
        }
    }

    /// The mechanism of a SCRAM admin API code.
    pub fn from_code(code: i8) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.code() == code)
    }

    /// Exact, case-sensitive match, as Kafka's mechanism lookup is.
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn min_iterations(self) -> u32 {
        Self::MIN_ITERATIONS
    }

    pub fn max_iterations(self) -> u32 {
        Self::MAX_ITERATIONS
    }

    /// Output length of the hash, which is also the length of every key and proof.
    pub fn digest_len(self) -> usize {
        match self {
            Mechanism::ScramSha256 => 32,
            Mechanism::ScramSha512 => 64,
        }
    }

    /// H(data).
    pub(crate) fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Mechanism::ScramSha256 => Sha256::digest(data).to_vec(),
            Mechanism::ScramSha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// HMAC(key, parts concatenated).
    pub(crate) fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        match self {
            Mechanism::ScramSha256 => hmac_of::<Sha256>(key, parts),
            Mechanism::ScramSha512 => hmac_of::<Sha512>(key, parts),
        }
    }

    /// Hi(password, salt, i) of RFC 5802, which is PBKDF2 with this HMAC and dkLen = digest length.
    /// SaltedPassword = PBKDF2-HMAC(password, salt, iterations): what KIP-554 clients send.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.digest_len()];
        match self {
            Mechanism::ScramSha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out),
            Mechanism::ScramSha512 => pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out),
        }
        out
    }
}

impl std::fmt::Display for Mechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn hmac_of<D: Digest + BlockSizeUser>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts keys of any length (long ones are hashed first), so this never fails.
    let Ok(mut mac) = <SimpleHmac<D> as Mac>::new_from_slice(key) else {
        unreachable!("HMAC keys may have any length")
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}
