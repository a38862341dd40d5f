//! The Kafka protocol listener: one task per connection; requests are read ahead (pipelined),
//! started in arrival order and answered in that order.

use crate::api::{self, Pending};
use crate::Broker;
use bytes::{Bytes, BytesMut};
use futures::stream::{FuturesOrdered, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Accepts connections until `shutdown` turns true.
pub async fn serve(listener: TcpListener, broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let broker = broker.clone();
                    let shutdown = shutdown.clone();
                    tokio::spawn(async move {
                        broker.metrics.connections.inc();
                        if let Err(e) = handle_connection(stream, peer, broker.clone(), shutdown).await {
                            tracing::debug!(%peer, error = %e, "connection closed");
                        }
                        broker.metrics.connections.dec();
                    });
                }
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

/// Why a connection ended abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// Socket error.
    #[error("i/o with {peer}: {source}")]
    Io {
        /// The client.
        peer: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The client sent something that cannot be answered; Kafka closes the connection then too.
    #[error("protocol error from {peer}: {message}")]
    Protocol {
        /// The client.
        peer: SocketAddr,
        /// What was wrong.
        message: String,
    },
}

/// Reads length-prefixed request frames. Bytes are accumulated in `buffer` by `read_buf`, which
/// is cancellation-safe, so `next_frame` can sit in a `select!` next to response writing without
/// losing a partially read frame when the other branch wins.
struct FrameReader {
    stream: tokio::net::tcp::OwnedReadHalf,
    buffer: BytesMut,
    peer: SocketAddr,
    max_bytes: u64,
}

impl FrameReader {
    /// A complete frame from the buffer, if there is one.
    fn parse(&mut self) -> Result<Option<Bytes>, ConnectionError> {
        if self.buffer.len() < 4 {
            return Ok(None);
        }
        let len = i32::from_be_bytes([self.buffer[0], self.buffer[1], self.buffer[2], self.buffer[3]]);
        if len < 8 || len as u64 > self.max_bytes {
            return Err(ConnectionError::Protocol {
                peer: self.peer,
                message: format!(
                    "request frame of {len} bytes is outside 8..={} (server.max_request_bytes); closing connection",
                    self.max_bytes
                ),
            });
        }
        let total = 4 + len as usize;
        if self.buffer.len() < total {
            // Grow once to the frame's size instead of doubling through large frames.
            self.buffer.reserve(total - self.buffer.len());
            return Ok(None);
        }
        let mut frame = self.buffer.split_to(total);
        let _ = frame.split_to(4);
        Ok(Some(frame.freeze()))
    }

    /// The next frame, or None when the client closed the connection between frames.
    async fn next_frame(&mut self) -> Result<Option<Bytes>, ConnectionError> {
        loop {
            if let Some(frame) = self.parse()? {
                return Ok(Some(frame));
            }
            if self.buffer.capacity() == self.buffer.len() {
                self.buffer.reserve(16 * 1024);
            }
            let read = self
                .stream
                .read_buf(&mut self.buffer)
                .await
                .map_err(|source| ConnectionError::Io { peer: self.peer, source })?;
            if read == 0 {
                if self.buffer.is_empty() {
                    return Ok(None);
                }
                return Err(ConnectionError::Protocol {
                    peer: self.peer,
                    message: format!(
                        "connection closed in the middle of a frame ({} bytes pending)",
                        self.buffer.len()
                    ),
                });
            }
        }
    }
}

async fn handle_connection(
    stream: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ConnectionError> {
    // Small responses go out immediately; large ones are written by the buffered writer in bulk.
    let _ = stream.set_nodelay(true);
    let (reader, writer) = stream.into_split();
    let mut writer = BufWriter::with_capacity(64 * 1024, writer);
    let mut reader = FrameReader {
        stream: reader,
        buffer: BytesMut::with_capacity(64 * 1024),
        peer,
        max_bytes: broker.config.server.max_request_bytes.0,
    };
    let max_inflight = broker.config.server.max_inflight_requests_per_connection;
    let mut inflight: FuturesOrdered<Pending> = FuturesOrdered::new();
    let mut reading = true;
    loop {
        tokio::select! {
            // Responses complete in request order; write each as soon as it is ready.
            Some(response) = inflight.next(), if !inflight.is_empty() => {
                if let Some(frame) = response {
                    writer.write_all(&frame).await.map_err(|source| ConnectionError::Io { peer, source })?;
                }
                writer.flush().await.map_err(|source| ConnectionError::Io { peer, source })?;
                if !reading && inflight.is_empty() {
                    return Ok(());
                }
            }
            frame = reader.next_frame(), if reading && inflight.len() < max_inflight => {
                match frame {
                    Ok(Some(frame)) => match api::dispatch(&broker, frame, peer).await {
                        Ok(pending) => inflight.push_back(pending),
                        Err(message) => {
                            // Answer what came before, then close: the stream cannot be trusted any more.
                            tracing::warn!(%peer, "{message}");
                            reading = false;
                            broker.metrics.protocol_errors.inc();
                            if inflight.is_empty() {
                                return Err(ConnectionError::Protocol { peer, message });
                            }
                        }
                    },
                    Ok(None) => {
                        reading = false;
                        if inflight.is_empty() {
                            return Ok(());
                        }
                    }
                    Err(e) => {
                        if matches!(e, ConnectionError::Protocol { .. }) {
                            tracing::warn!("{e}");
                            broker.metrics.protocol_errors.inc();
                        }
                        return Err(e);
                    }
                }
            }
            _ = shutdown.changed(), if reading => {
                reading = false;
                if inflight.is_empty() {
                    return Ok(());
                }
            }
        }
    }
}
