//! An async Kafka client over one connection: one request in flight at a time, each with a
//! deadline. Used by follower fetchers, `millrace top`, the CLIs and the demo.

use crate::codec::{FrameCodec, FrameError};
use crate::message::{self, MessageError};
use futures::{SinkExt, StreamExt};
use kafka_protocol::protocol::Request;
use std::time::Duration;
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
}

/// One connection to a broker's Kafka listener.
pub struct Connection {
    addr: String,
    framed: Framed<TcpStream, FrameCodec>,
    next_correlation: i32,
    client_id: String,
}

impl Connection {
    /// Connects within `timeout`.
    pub async fn connect(addr: &str, timeout: Duration) -> Result<Connection, ClientError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout { addr: addr.to_string(), after: timeout })?
            .map_err(|source| ClientError::Io { addr: addr.to_string(), context: "connecting", source })?;
        // Requests are small and latency-bound; Nagle would hold them back.
        let _ = stream.set_nodelay(true);
        Ok(Connection {
            addr: addr.to_string(),
            framed: Framed::new(stream, FrameCodec::new(DEFAULT_MAX_RESPONSE)),
            next_correlation: 0,
            client_id: "millrace".to_string(),
        })
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
