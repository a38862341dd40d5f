//! The client side of a SCRAM exchange (RFC 5802 §3), for millrace's own Kafka connections:
//! followers fetching from leaders, `millrace top`, the CLIs. A hostile server cannot make it do
//! unbounded work: the iteration count is held to Kafka's bounds and the server's signature is
//! checked before the exchange counts as done.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use subtle::ConstantTimeEq;

use super::{escape_saslname, Mechanism, RandomSource, ScramError, MAX_MESSAGE_LEN, MAX_NONCE_LEN};

/// Random bytes behind the client nonce.
const CLIENT_NONCE_BYTES: usize = 24;

/// A client that has sent client-first and waits for server-first.
pub struct ScramClient {
    mechanism: Mechanism,
    password: String,
    client_nonce: String,
    /// client-first-message-bare.
    bare: String,
}

/// A client that has sent client-final and waits for the server's signature.
pub struct ScramClientFinal {
    expected_signature: Vec<u8>,
}

impl std::fmt::Debug for ScramClientFinal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClientFinal").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClient").field("mechanism", &self.mechanism).finish_non_exhaustive()
    }
}

impl ScramClient {
    /// Starts an exchange; returns the client and the client-first message to send.
    pub fn start(
        mechanism: Mechanism,
        username: &str,
        password: &str,
        rng: &mut impl RandomSource,
    ) -> Result<(ScramClient, Vec<u8>), ScramError> {
        let mut random = [0u8; CLIENT_NONCE_BYTES];
        rng.fill(&mut random)?;
        Ok(Self::start_with_nonce(mechanism, username, password, &STANDARD.encode(random)))
    }

    /// [`ScramClient::start`] with a given nonce (test vectors fix it).
    pub fn start_with_nonce(
        mechanism: Mechanism,
        username: &str,
        password: &str,
        client_nonce: &str,
    ) -> (ScramClient, Vec<u8>) {
        let bare = format!("n={},r={client_nonce}", escape_saslname(username));
        let message = format!("n,,{bare}").into_bytes();
        let client =
            ScramClient { mechanism, password: password.to_string(), client_nonce: client_nonce.to_string(), bare };
        (client, message)
    }

    /// Takes server-first; returns the client-final message to send.
    pub fn server_first(self, msg: &[u8]) -> Result<(ScramClientFinal, Vec<u8>), ScramError> {
        if msg.len() > MAX_MESSAGE_LEN {
            return Err(ScramError::MessageTooLarge(msg.len()));
        }
        let text = std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("server-first is not UTF-8"))?;
        let mut attrs = text.split(',');
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(ScramError::Malformed("server-first without r= nonce"))?;
        if nonce.len() > 2 * MAX_NONCE_LEN {
            return Err(ScramError::NonceTooLong);
        }
        // The combined nonce must extend ours, or this answers somebody else's exchange.
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err(ScramError::NonceMismatch);
        }
        let salt = attrs
            .next()
            .and_then(|a| a.strip_prefix("s="))
            .ok_or(ScramError::Malformed("server-first without s= salt"))?;
        let salt = STANDARD.decode(salt).map_err(|_| ScramError::Malformed("salt is not base64"))?;
        let iterations: u32 = attrs
            .next()
            .and_then(|a| a.strip_prefix("i="))
            .and_then(|i| i.parse().ok())
            .ok_or(ScramError::Malformed("server-first without i= iteration count"))?;
        if !(Mechanism::MIN_ITERATIONS..=Mechanism::MAX_ITERATIONS).contains(&iterations) {
            return Err(ScramError::InvalidIterations(iterations));
        }
        let m = self.mechanism;
        let salted = m.salted_password(self.password.as_bytes(), &salt, iterations);
        let client_key = m.hmac(&salted, &[b"Client Key"]);
        let stored_key = m.hash(&client_key);
        // "biws" is base64("n,,"): no channel binding, no authzid.
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.bare);
        let signature = m.hmac(&stored_key, &[auth_message.as_bytes()]);
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(k, s)| k ^ s).collect();
        let server_key = m.hmac(&salted, &[b"Server Key"]);
        let expected_signature = m.hmac(&server_key, &[auth_message.as_bytes()]);
        let message = format!("{without_proof},p={}", STANDARD.encode(proof)).into_bytes();
        Ok((ScramClientFinal { expected_signature }, message))
    }
}

impl ScramClientFinal {
    /// Checks server-final: the server proves it knows the credential too.
    pub fn server_final(self, msg: &[u8]) -> Result<(), ScramError> {
        if msg.len() > MAX_MESSAGE_LEN {
            return Err(ScramError::MessageTooLarge(msg.len()));
        }
        let text = std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("server-final is not UTF-8"))?;
        if text.starts_with("e=") {
            return Err(ScramError::InvalidCredentials);
        }
        let signature = text
            .split(',')
            .next()
            .and_then(|a| a.strip_prefix("v="))
            .ok_or(ScramError::Malformed("server-final without v= signature"))?;
        let signature = STANDARD.decode(signature).map_err(|_| ScramError::Malformed("signature is not base64"))?;
        if bool::from(signature.ct_eq(&self.expected_signature)) {
            Ok(())
        } else {
            Err(ScramError::ServerSignatureMismatch)
        }
    }
}

/// The single SASL/PLAIN message (RFC 4616) for `username` and `password`, without authzid.
pub fn plain_message(username: &str, password: &str) -> Vec<u8> {
    let mut message = Vec::with_capacity(username.len() + password.len() + 2);
    message.push(0);
    message.extend_from_slice(username.as_bytes());
    message.push(0);
    message.extend_from_slice(password.as_bytes());
    message
}
