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

async fn read_frame(
    stream: &mut tokio::net::tcp::OwnedReadHalf,
    peer: SocketAddr,
    max_bytes: u64,
) -> Result<Option<Bytes>, ConnectionError> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(source) => return Err(ConnectionError::Io { peer, source }),
    }
    let len = i32::from_be_bytes(len);
    if len < 8 || len as u64 > max_bytes {
        return Err(ConnectionError::Protocol {
            peer,
            message: format!(
                "request frame of {len} bytes is outside 8..={max_bytes} (server.max_request_bytes); closing connection"
            ),
        });
    }
    let mut body = BytesMut::zeroed(len as usize);
    stream.read_exact(&mut body).await.map_err(|source| ConnectionError::Io { peer, source })?;
    Ok(Some(body.freeze()))
}

async fn handle_connection(
    stream: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ConnectionError> {
    // Small responses go out immediately; large ones are written by the buffered writer in bulk.
    let _ = stream.set_nodelay(true);
    let (mut reader, writer) = stream.into_split();
    let mut writer = BufWriter::with_capacity(64 * 1024, writer);
    let max_frame = broker.config.server.max_request_bytes.0;
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
            frame = read_frame(&mut reader, peer, max_frame), if reading && inflight.len() < max_inflight => {
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
