//! A minimal async Kafka-protocol client, enough for a follower to fetch from its leader over
//! the same codec clients use (one request in flight per connection).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response accepted from a leader.
const MAX_RESPONSE: usize = 256 << 20;

/// Errors talking to a peer broker; each names the peer.
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

/// One connection to a peer broker's Kafka listener.
pub struct PeerConnection {
    addr: String,
    stream: TcpStream,
    next_correlation: i32,
    client_id: &'static str,
}

impl PeerConnection {
    /// Connects within `timeout`.
    pub async fn connect(addr: &str, timeout: Duration) -> Result<PeerConnection, ClientError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout { addr: addr.to_string(), after: timeout })?
            .map_err(|source| ClientError::Io { addr: addr.to_string(), context: "connecting", source })?;
        let _ = stream.set_nodelay(true);
        Ok(PeerConnection {
            addr: addr.to_string(),
            stream,
            next_correlation: 0,
            client_id: "millrace-replica-fetcher",
        })
    }

    /// Names this connection's requests with `client_id` (brokers log and count by it).
    pub fn with_client_id(mut self, client_id: &'static str) -> PeerConnection {
        self.client_id = client_id;
        self
    }

    /// The peer's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn protocol(&self, reason: String) -> ClientError {
        ClientError::Protocol { addr: self.addr.clone(), reason }
    }

    /// Sends `request` at `version` and waits up to `timeout` for its response. After an error
    /// the connection must be dropped (a late answer would be misread).
    pub async fn request<R: Request>(
        &mut self,
        version: i16,
        request: &R,
        timeout: Duration,
    ) -> Result<R::Response, ClientError> {
        let api_key = ApiKey::try_from(R::KEY).map_err(|_| self.protocol(format!("unknown api key {}", R::KEY)))?;
        let correlation = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(StrBytes::from_static_str(self.client_id)));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, api_key.request_header_version(version))
            .and_then(|_| request.encode(&mut body, version))
            .map_err(|e| self.protocol(format!("encoding {api_key:?} v{version}: {e}")))?;
        let mut frame = BytesMut::with_capacity(4 + body.len());
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        let addr = self.addr.clone();
        let exchange = async {
            self.stream.write_all(&frame).await.map_err(|source| ClientError::Io {
                addr: addr.clone(),
                context: "sending a request",
                source,
            })?;
            let len = self.stream.read_i32().await.map_err(|source| ClientError::Io {
                addr: addr.clone(),
                context: "reading a response",
                source,
            })?;
            let len = usize::try_from(len).ok().filter(|l| *l <= MAX_RESPONSE).ok_or_else(|| {
                ClientError::Protocol { addr: addr.clone(), reason: format!("response length {len} is out of bounds") }
            })?;
            // Grown as bytes arrive, never from the announced length alone.
            let mut buf = Vec::with_capacity(len.min(64 * 1024));
            let read = (&mut self.stream)
                .take(len as u64)
                .read_to_end(&mut buf)
                .await
                .map_err(|source| ClientError::Io { addr: addr.clone(), context: "reading a response", source })?;
            if read < len {
                return Err(ClientError::Protocol {
                    addr: addr.clone(),
                    reason: format!("connection closed after {read} of a {len}-byte response"),
                });
            }
            Ok::<_, ClientError>(Bytes::from(buf))
        };
        let mut buf = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout { addr: self.addr.clone(), after: timeout })??;
        let header = ResponseHeader::decode(&mut buf, api_key.response_header_version(version))
            .map_err(|e| self.protocol(format!("decoding a response header: {e}")))?;
        if header.correlation_id != correlation {
            return Err(self.protocol(format!("correlation id {} != {correlation}", header.correlation_id)));
        }
        R::Response::decode(&mut buf, version)
            .map_err(|e| self.protocol(format!("decoding {api_key:?} v{version}: {e}")))
    }
}
