//! An async Kafka client over one connection: one request in flight at a time, each with a
//! deadline. Used by follower fetchers, `millrace top`, the CLIs and the demo. A connection
//! can be TLS ([`Security::tls`]) and log in with SASL/SCRAM or PLAIN ([`Security::sasl`])
//! before its first request, as a listener of that security protocol expects.

use crate::codec::{FrameCodec, FrameError};
use crate::message::{self, MessageError};
use crate::scram::{plain_message, Mechanism, OsRandom, ScramClient};
use futures::{SinkExt, StreamExt};
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::Request;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// Largest response accepted by default: a Fetch answer is bounded by the request's
/// `max_bytes`, everything else is far smaller.
pub const DEFAULT_MAX_RESPONSE: usize = 256 << 20;

/// Errors talking to a broker; each names its address.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting or exchanging bytes failed.
    #[error("broker {addr}: {context}: {source}")]
    Io {
        /// Peer address.
        addr: String,
        /// What was being done.
        context: &'static str,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Encoding or decoding failed, or the answer made no sense.
    #[error("broker {addr}: {reason}")]
    Protocol {
        /// Peer address.
        addr: String,
        /// What is wrong.
        reason: String,
    },
    /// No answer in time.
    #[error("broker {addr}: no answer within {after:?}")]
    Timeout {
        /// Peer address.
        addr: String,
        /// The deadline.
        after: Duration,
    },
    /// The TLS handshake or the SASL login failed.
    #[error("broker {addr}: {reason}")]
    Authentication {
        /// Peer address.
        addr: String,
        /// What failed (never a password).
        reason: String,
    },
}

/// SASL credentials for a listener that asks for them.
#[derive(Clone)]
pub struct SaslLogin {
    /// `SCRAM-SHA-512`, `SCRAM-SHA-256` or `PLAIN`.
    pub mechanism: String,
    /// The user.
    pub username: String,
    /// Its password.
    pub password: String,
}

impl std::fmt::Debug for SaslLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslLogin").field("mechanism", &self.mechanism).field("username", &self.username).finish()
    }
}

/// How a connection is secured: TLS, a SASL login, both or neither (PLAINTEXT).
#[derive(Clone, Debug, Default)]
pub struct Security {
    /// TLS with this configuration (see [`crate::tls::client_config`]).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// SASL login after connecting (and after the TLS handshake).
    pub sasl: Option<SaslLogin>,
}

impl Security {
    /// The TLS configuration and SASL login a client configured with `config` uses.
    pub fn from_config(config: &millrace_config::KafkaClientSecurity) -> anyhow::Result<Security> {
        use anyhow::Context;
        let protocol = config.security_protocol;
        let tls = if protocol.uses_tls() {
            let identity = match (&config.ssl_certificate_location, &config.ssl_key_location) {
                (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
                _ => None,
            };
            let files = crate::tls::ClientTlsFiles {
                ca_file: config.ssl_ca_location.clone(),
                identity,
                verify_hostname: config.verify_hostname(),
            };
            Some(crate::tls::client_config(&files).context("setting up TLS")?)
        } else {
            None
        };
        let sasl = if protocol.uses_sasl() {
            // A properties file gives the password inline; TOML files resolve `_file` at load time.
            let (Some(username), Some(password)) = (&config.sasl_username, &config.sasl_password) else {
                anyhow::bail!("security.protocol {protocol} needs sasl.username and sasl.password");
            };
            Some(SaslLogin {
                mechanism: config.mechanism().to_string(),
                username: username.clone(),
                password: password.expose().to_string(),
            })
        } else {
            None
        };
        Ok(Security { tls, sasl })
    }
}

/// A byte stream to a broker: plain TCP or TLS over it.
trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

/// One connection to a broker's Kafka listener.
pub struct Connection {
    addr: String,
    framed: Framed<Box<dyn Transport>, FrameCodec>,
    next_correlation: i32,
    client_id: String,
}

impl Connection {
    /// Connects to a PLAINTEXT listener within `timeout`.
    pub async fn connect(addr: &str, timeout: Duration) -> Result<Connection, ClientError> {
        Self::connect_with(addr, timeout, &Security::default()).await
    }

    /// Connects, shakes hands (TLS) and logs in (SASL) as `security` says, all within `timeout`.
    pub async fn connect_with(addr: &str, timeout: Duration, security: &Security) -> Result<Connection, ClientError> {
        let timed_out = || ClientError::Timeout { addr: addr.to_string(), after: timeout };
        let deadline = tokio::time::Instant::now() + timeout;
        let stream = tokio::time::timeout_at(deadline, TcpStream::connect(addr))
            .await
            .map_err(|_| timed_out())?
            .map_err(|source| ClientError::Io { addr: addr.to_string(), context: "connecting", source })?;
        // Requests are small and latency-bound; Nagle would hold them back.
        let _ = stream.set_nodelay(true);
        let transport: Box<dyn Transport> = match &security.tls {
            None => Box::new(stream),
            Some(config) => {
                let auth = |reason: String| ClientError::Authentication { addr: addr.to_string(), reason };
                let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host).trim_matches(['[', ']']);
                let name = rustls_pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| auth(format!("`{host}` is not a TLS server name: {e}")))?;
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let tls = tokio::time::timeout_at(deadline, connector.connect(name, stream))
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(|e| auth(format!("TLS handshake failed: {e}")))?;
                Box::new(tls)
            }
        };
        let mut connection = Connection {
            addr: addr.to_string(),
            framed: Framed::new(transport, FrameCodec::new(DEFAULT_MAX_RESPONSE)),
            next_correlation: 0,
            client_id: "millrace".to_string(),
        };
        if let Some(login) = &security.sasl {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            connection.sasl_login(login, remaining).await?;
        }
        Ok(connection)
    }

    /// SaslHandshake v1, then the mechanism's exchange in SaslAuthenticate requests.
    async fn sasl_login(&mut self, login: &SaslLogin, timeout: Duration) -> Result<(), ClientError> {
        let addr = self.addr.clone();
        let auth = |reason: String| ClientError::Authentication { addr: addr.clone(), reason };
        let handshake = SaslHandshakeRequest::default().with_mechanism(crate::str_bytes(login.mechanism.clone()));
        let answer = self.request(1, &handshake, timeout).await?;
        if answer.error_code != 0 {
            let offered: Vec<&str> = answer.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(auth(format!(
                "SASL mechanism {} refused (error {}); the listener offers {offered:?}",
                login.mechanism, answer.error_code
            )));
        }
        let mechanism = match login.mechanism.as_str() {
            "PLAIN" => None,
            name => Some(Mechanism::from_name(name).ok_or_else(|| auth(format!("unknown SASL mechanism {name}")))?),
        };
        let Some(mechanism) = mechanism else {
            self.sasl_step(plain_message(&login.username, &login.password), timeout).await?;
            return Ok(());
        };
        let (client, first) = ScramClient::start(mechanism, &login.username, &login.password, &mut OsRandom)
            .map_err(|e| auth(e.to_string()))?;
        let server_first = self.sasl_step(first, timeout).await?;
        let (last, client_final) = client.server_first(&server_first).map_err(|e| auth(format!("SCRAM: {e}")))?;
        let server_final = self.sasl_step(client_final, timeout).await?;
        last.server_final(&server_final).map_err(|e| auth(format!("SCRAM: {e}")))
    }

    /// One SaslAuthenticate round trip; the server's bytes, or its refusal as an error.
    async fn sasl_step(&mut self, bytes: Vec<u8>, timeout: Duration) -> Result<bytes::Bytes, ClientError> {
        let request = SaslAuthenticateRequest::default().with_auth_bytes(bytes.into());
        let answer = self.request(1, &request, timeout).await?;
        if answer.error_code != 0 {
            let message = answer.error_message.as_ref().map(|m| m.to_string()).unwrap_or_default();
            return Err(ClientError::Authentication {
                addr: self.addr.clone(),
                reason: format!("SASL authentication failed (error {}): {message}", answer.error_code),
            });
        }
        Ok(answer.auth_bytes)
    }

    /// Names this connection's requests with `client_id` (brokers log and count by it).
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Connection {
        self.client_id = client_id.into();
        self
    }

    /// Accepts responses up to `max` bytes instead of [`DEFAULT_MAX_RESPONSE`].
    pub fn with_max_response(mut self, max: usize) -> Connection {
        *self.framed.codec_mut() = FrameCodec::new(max);
        self
    }

    /// The peer's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn protocol(&self, e: impl std::fmt::Display) -> ClientError {
        ClientError::Protocol { addr: self.addr.clone(), reason: e.to_string() }
    }

    fn frame_error(&self, context: &'static str, e: FrameError) -> ClientError {
        match e {
            FrameError::Io(source) => ClientError::Io { addr: self.addr.clone(), context, source },
            other => self.protocol(other),
        }
    }

    /// Sends `request` at `version` and waits up to `timeout` for its response. After an error
    /// the connection must be dropped (a late answer would be misread).
    pub async fn request<R: Request>(
        &mut self,
        version: i16,
        request: &R,
        timeout: Duration,
    ) -> Result<R::Response, ClientError> {
        let correlation = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1);
        let frame = message::encode_request(version, correlation, Some(&self.client_id), request)
            .map_err(|e| self.protocol(e))?;
        let exchange = async {
            self.framed.send(frame).await.map_err(|e| self.frame_error("sending a request", e))?;
            match self.framed.next().await {
                Some(Ok(body)) => Ok(body),
                Some(Err(e)) => Err(self.frame_error("reading a response", e)),
                None => Err(self.protocol("connection closed before the response")),
            }
        };
        let body = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout { addr: self.addr.clone(), after: timeout })??;
        message::decode_response::<R>(body, version, correlation).map_err(|e: MessageError| self.protocol(e))
    }
}
