//! The stored form of a SCRAM credential (RFC 5802 §3): salt, iteration count, StoredKey and
//! ServerKey. The password and SaltedPassword are never kept.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::{Mechanism, RandomSource, ScramError, SALT_LEN};

/// Longest salt accepted from an admin request; generated salts are [`SALT_LEN`] bytes.
pub const MAX_SALT_LEN: usize = 1024;

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    pub mechanism: Mechanism,
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl ScramCredential {
    /// Derives the credential from a password (SaltedPassword = Hi(password, salt, i)).
    pub fn new(
        mechanism: Mechanism,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<ScramCredential, ScramError> {
        check_parameters(mechanism, salt, iterations)?;
        let salted = mechanism.salted_password(password.as_bytes(), salt, iterations);
        Ok(Self::derive(mechanism, salt, &salted, iterations))
    }

    /// As [`ScramCredential::new`] with a fresh random salt of [`SALT_LEN`] bytes.
    pub fn generate(
        mechanism: Mechanism,
        password: &str,
        iterations: u32,
        rng: &mut impl RandomSource,
    ) -> Result<ScramCredential, ScramError> {
        let mut salt = vec![0u8; SALT_LEN];
        rng.fill(&mut salt)?;
        Self::new(mechanism, password, &salt, iterations)
    }

    /// KIP-554's AlterUserScramCredentials carries the salt and SaltedPassword, not the
    /// password; this derives the stored keys from those.
    pub fn from_salted_password(
        mechanism: Mechanism,
        salt: &[u8],
        salted_password: &[u8],
        iterations: u32,
    ) -> Result<ScramCredential, ScramError> {
        check_parameters(mechanism, salt, iterations)?;
        if salted_password.len() != mechanism.digest_len() {
            return Err(ScramError::InvalidCredentialParameters("salted password length"));
        }
        Ok(Self::derive(mechanism, salt, salted_password, iterations))
    }

    /// Checks a credential that came from elsewhere (the metadata log) before it is used.
    pub fn validate(&self) -> Result<(), ScramError> {
        check_parameters(self.mechanism, &self.salt, self.iterations)?;
        let len = self.mechanism.digest_len();
        if self.stored_key.len() != len || self.server_key.len() != len {
            return Err(ScramError::InvalidCredentialParameters("key length"));
        }
        Ok(())
    }

    /// Whether `password` is the one this credential was derived from (used by SASL/PLAIN).
    /// Costs one PBKDF2 of `iterations` rounds; refuses out-of-bounds credentials outright.
    pub fn verify_password(&self, password: &str) -> bool {
        if self.validate().is_err() {
            return false;
        }
        let salted = self.mechanism.salted_password(password.as_bytes(), &self.salt, self.iterations);
        let candidate = Self::derive(self.mechanism, &self.salt, &salted, self.iterations);
        candidate.stored_key.ct_eq(&self.stored_key).into()
    }

    fn derive(mechanism: Mechanism, salt: &[u8], salted: &[u8], iterations: u32) -> ScramCredential {
        let client_key = mechanism.hmac(salted, &[b"Client Key"]);
        ScramCredential {
            mechanism,
            salt: salt.to_vec(),
            iterations,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted, &[b"Server Key"]),
        }
    }
}

fn check_parameters(mechanism: Mechanism, salt: &[u8], iterations: u32) -> Result<(), ScramError> {
    if !(mechanism.min_iterations()..=mechanism.max_iterations()).contains(&iterations) {
        return Err(ScramError::InvalidIterations(iterations));
    }
    if salt.is_empty() || salt.len() > MAX_SALT_LEN {
        return Err(ScramError::InvalidCredentialParameters("salt length"));
    }
    Ok(())
}

/// Keys are password-equivalent for SCRAM (StoredKey lets an attacker brute-force offline,
/// ServerKey lets them impersonate the server), so they never reach logs.
impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("mechanism", &self.mechanism)
            .field("salt_len", &self.salt.len())
            .field("iterations", &self.iterations)
            .field("stored_key", &"<redacted>")
            .field("server_key", &"<redacted>")
            .finish()
    }
}
