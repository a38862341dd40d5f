//! The server side of a SCRAM exchange: client-first → server-first, client-final →
//! server-final, with unknown users answered in the same shape as known ones.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use subtle::ConstantTimeEq;

use super::messages::{check_nonce, parse_client_final, parse_client_first, ClientFirst};
use super::{Mechanism, RandomSource, ScramCredential, ScramError, MAX_NONCE_LEN, SALT_LEN, SERVER_NONCE_BYTES};

/// Per-mechanism server configuration. `secret` keys the fake salts handed to unknown users:
/// it must be random and stable for the broker's lifetime, so that asking twice about the
/// same unknown user gives the same salt (a changing salt would reveal the user is fake).
#[derive(Clone)]
pub struct ScramServer {
    mechanism: Mechanism,
    secret: [u8; 32],
    fake_iterations: u32,
}

impl ScramServer {
    pub fn new(mechanism: Mechanism, secret: [u8; 32]) -> ScramServer {
        ScramServer { mechanism, secret, fake_iterations: Mechanism::MIN_ITERATIONS }
    }

    /// A server with a fresh random secret.
    pub fn generate(mechanism: Mechanism, rng: &mut impl RandomSource) -> Result<ScramServer, ScramError> {
        let mut secret = [0u8; 32];
        rng.fill(&mut secret)?;
        Ok(ScramServer::new(mechanism, secret))
    }

    /// Iteration count advertised to unknown users; set it to the count real credentials are
    /// created with (Kafka's default is 4096) so the two stay indistinguishable.
    pub fn with_fake_iterations(mut self, iterations: u32) -> Result<ScramServer, ScramError> {
        if !(Mechanism::MIN_ITERATIONS..=Mechanism::MAX_ITERATIONS).contains(&iterations) {
            return Err(ScramError::InvalidIterations(iterations));
        }
        self.fake_iterations = iterations;
        Ok(self)
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Parses client-first, looks the user up with `lookup`, and answers with server-first.
    pub fn client_first(
        &self,
        msg: &[u8],
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
        rng: &mut impl RandomSource,
    ) -> Result<(ServerFirst, Vec<u8>), ScramError> {
        let first = parse_client_first(msg)?;
        let credential = lookup(&first.username);
        self.server_first(&first, credential.as_ref(), rng)
    }

    /// Answers an already parsed client-first. `credential` is `None` for an unknown user,
    /// who still gets a well-formed server-first and fails only at client-final.
    pub fn server_first(
        &self,
        first: &ClientFirst,
        credential: Option<&ScramCredential>,
        rng: &mut impl RandomSource,
    ) -> Result<(ServerFirst, Vec<u8>), ScramError> {
        let mut random = [0u8; SERVER_NONCE_BYTES];
        rng.fill(&mut random)?;
        self.server_first_with_nonce(first, credential, &STANDARD.encode(random))
    }

    /// [`ScramServer::server_first`] with a given server nonce (the RFC test vectors fix it).
    pub(crate) fn server_first_with_nonce(
        &self,
        first: &ClientFirst,
        credential: Option<&ScramCredential>,
        server_nonce: &str,
    ) -> Result<(ServerFirst, Vec<u8>), ScramError> {
        check_nonce(server_nonce, MAX_NONCE_LEN)?;
        // A credential of another mechanism, or one that fails validation, is treated as
        // absent: the exchange then fails at client-final like any unknown user's.
        let real = credential.filter(|c| c.mechanism == self.mechanism && c.validate().is_ok());
        let (salt, iterations, stored_key, server_key, known) = match real {
            Some(c) => (c.salt.clone(), c.iterations, c.stored_key.clone(), c.server_key.clone(), true),
            None => {
                let mut salt = self.fake(b"salt", &first.username);
                salt.truncate(SALT_LEN);
                (
                    salt,
                    self.fake_iterations,
                    self.fake(b"stored-key", &first.username),
                    self.fake(b"server-key", &first.username),
                    false,
                )
            }
        };
        let nonce = format!("{}{}", first.client_nonce, server_nonce);
        let message = format!("r={nonce},s={},i={iterations}", STANDARD.encode(&salt));
        let bytes = message.as_bytes().to_vec();
        let state = ServerFirst {
            mechanism: self.mechanism,
            username: first.username.clone(),
            gs2_header: first.gs2_header.clone(),
            client_first_bare: first.bare.clone(),
            server_first: message,
            nonce,
            client_nonce_len: first.client_nonce.len(),
            stored_key,
            server_key,
            known,
        };
        Ok((state, bytes))
    }

    /// Deterministic per-user filler derived from the server secret.
    fn fake(&self, label: &[u8], username: &str) -> Vec<u8> {
        let name = self.mechanism.name().as_bytes();
        self.mechanism.hmac(&self.secret, &[label, b"\0", name, b"\0", username.as_bytes()])
    }
}

impl std::fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramServer")
            .field("mechanism", &self.mechanism)
            .field("secret", &"<redacted>")
            .field("fake_iterations", &self.fake_iterations)
            .finish()
    }
}

/// The exchange after server-first, waiting for client-final. Consumed by
/// [`ServerFirst::client_final`], so a second client-final cannot be verified against it.
pub struct ServerFirst {
    mechanism: Mechanism,
    username: String,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    /// How much of `nonce` is the client's.
    client_nonce_len: usize,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
    known: bool,
}

impl ServerFirst {
    /// The username the client claimed (not yet authenticated).
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Verifies client-final; on success returns the authenticated principal name and the
    /// server-final-message (`v=ServerSignature`).
    pub fn client_final(self, msg: &[u8]) -> Result<(String, Vec<u8>), ScramError> {
        let last = parse_client_final(msg)?;
        if last.channel_binding != self.gs2_header.as_bytes() {
            return Err(ScramError::ChannelBindingMismatch);
        }
        // librdkafka echoes its own nonce before the combined one (`r=<client><client><server>`);
        // Kafka accepts that too, so it is accepted here, and nothing else.
        let librdkafka_echo = last.nonce.len() == self.nonce.len() + self.client_nonce_len
            && last.nonce.ends_with(&self.nonce)
            && last.nonce.starts_with(&self.nonce[..self.client_nonce_len]);
        if last.nonce != self.nonce && !librdkafka_echo {
            return Err(ScramError::NonceMismatch);
        }
        if last.proof.len() != self.mechanism.digest_len() {
            return Err(ScramError::InvalidCredentials);
        }
        let auth_message = format!("{},{},{}", self.client_first_bare, self.server_first, last.without_proof);
        let client_signature = self.mechanism.hmac(&self.stored_key, &[auth_message.as_bytes()]);
        let client_key: Vec<u8> = last.proof.iter().zip(&client_signature).map(|(p, s)| p ^ s).collect();
        // Unknown users run the same computation against fake keys, then fail here too.
        let matches = self.mechanism.hash(&client_key).ct_eq(&self.stored_key);
        if !bool::from(matches) || !self.known {
            return Err(ScramError::InvalidCredentials);
        }
        let server_signature = self.mechanism.hmac(&self.server_key, &[auth_message.as_bytes()]);
        let server_final = format!("v={}", STANDARD.encode(server_signature));
        Ok((self.username, server_final.into_bytes()))
    }
}

impl std::fmt::Debug for ServerFirst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerFirst")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("nonce", &self.nonce)
            .field("keys", &"<redacted>")
            .finish()
    }
}

#[derive(Debug)]
enum SessionState {
    AwaitingClientFirst,
    AwaitingClientFinal(ServerFirst),
    Complete,
    Failed,
}

/// One connection's exchange, for callers that receive messages one at a time: a message
/// out of order, or any message after a failure or success, is `IllegalState`.
#[derive(Debug)]
pub struct ScramSession {
    server: ScramServer,
    state: SessionState,
}

impl ScramSession {
    pub fn new(server: ScramServer) -> ScramSession {
        ScramSession { server, state: SessionState::AwaitingClientFirst }
    }

    pub fn client_first(
        &mut self,
        msg: &[u8],
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
        rng: &mut impl RandomSource,
    ) -> Result<Vec<u8>, ScramError> {
        let SessionState::AwaitingClientFirst = self.state else {
            self.state = SessionState::Failed;
            return Err(ScramError::IllegalState);
        };
        match self.server.client_first(msg, lookup, rng) {
            Ok((state, reply)) => {
                self.state = SessionState::AwaitingClientFinal(state);
                Ok(reply)
            }
            Err(e) => {
                self.state = SessionState::Failed;
                Err(e)
            }
        }
    }

    pub fn client_final(&mut self, msg: &[u8]) -> Result<(String, Vec<u8>), ScramError> {
        let SessionState::AwaitingClientFinal(state) = std::mem::replace(&mut self.state, SessionState::Failed) else {
            return Err(ScramError::IllegalState);
        };
        let outcome = state.client_final(msg)?;
        self.state = SessionState::Complete;
        Ok(outcome)
    }

    pub fn is_complete(&self) -> bool {
        matches!(self.state, SessionState::Complete)
    }

    /// Whether the next message expected is client-first.
    pub fn is_awaiting_first(&self) -> bool {
        matches!(self.state, SessionState::AwaitingClientFirst)
    }

    pub fn mechanism(&self) -> Mechanism {
        self.server.mechanism()
    }
}
