//! The admin HTTP listener: `GET /metrics` (Prometheus text format) and `GET /health`.
//! A deliberately small HTTP/1.1 responder: one request per connection, no keep-alive, which is
//! all scrapers and health checks need.
//!
//! Bounded like the Kafka listener, with fixed limits: at most [`MAX_CONNECTIONS`] at once
//! ([`MAX_CONNECTIONS_PER_IP`] per address), a request head of at most [`MAX_HEAD`] bytes that
//! must arrive within [`HEAD_TIMEOUT`], and a response that must be taken within
//! [`WRITE_TIMEOUT`].

use crate::server::ConnectionLimiter;
use crate::Broker;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Open admin connections; scrapers and health checks need a handful.
pub const MAX_CONNECTIONS: usize = 64;
/// Open admin connections from one address.
pub const MAX_CONNECTIONS_PER_IP: usize = 16;
/// Largest request head (request line and headers).
pub const MAX_HEAD: usize = 8192;
/// Time for the whole request head to arrive, however it trickles in.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for the client to take the response.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves the admin endpoints until shutdown.
pub async fn serve(listener: TcpListener, broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let limiter = Arc::new(ConnectionLimiter::new(
        "admin",
        MAX_CONNECTIONS,
        MAX_CONNECTIONS_PER_IP,
        broker.metrics.listeners.clone(),
    ));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Some(slot) = limiter.admit(peer) else {
                        drop(stream);
                        continue;
                    };
                    let broker = broker.clone();
                    tokio::spawn(async move {
                        if let Err(e) = answer(stream, &broker).await {
                            if e.kind() == std::io::ErrorKind::TimedOut {
                                slot.limiter().closed("timeout");
                            }
                            tracing::debug!(%peer, error = %e, "admin request failed");
                        }
                        drop(slot);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

async fn answer(mut stream: TcpStream, broker: &Broker) -> std::io::Result<()> {
    let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await {
        Ok(head) => head?,
        Err(_) => {
            let message = format!("request head not received within {HEAD_TIMEOUT:?}");
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, message));
        }
    };
    let Some(head) = head else {
        return Ok(());
    };
    let Ok(head) = head else {
        broker.metrics.listeners.closed.with_label_values(&["admin", "head_too_large"]).inc();
        let response =
            respond(&mut stream, "431 Request Header Fields Too Large", "text/plain", "request head too large\n");
        return write_within(response).await;
    };
    write_within(route(&mut stream, broker, &head)).await
}

/// Bounds the time a client may take to read a response.
async fn write_within(write: impl std::future::Future<Output = std::io::Result<()>>) -> std::io::Result<()> {
    tokio::time::timeout(WRITE_TIMEOUT, write).await.unwrap_or_else(|_| {
        let message = format!("response not taken within {WRITE_TIMEOUT:?}");
        Err(std::io::Error::new(std::io::ErrorKind::TimedOut, message))
    })
}

/// The request head up to the blank line: None if the client closed first, `Err(())` when it
/// is longer than [`MAX_HEAD`].
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Result<String, ()>>> {
    let mut buf = vec![0u8; MAX_HEAD];
    let mut len = 0;
    // Read until the end of the request head; bodies are not used by any endpoint.
    loop {
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            return Ok(None);
        }
        len += n;
        if let Some(end) = buf[..len].windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(Some(Ok(String::from_utf8_lossy(&buf[..end]).into_owned())));
        }
        if len == buf.len() {
            return Ok(Some(Err(())));
        }
    }
}

async fn route(stream: &mut TcpStream, broker: &Broker, head: &str) -> std::io::Result<()> {
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => {
            let body = broker.metrics.render(&broker.catalog, &broker.groups.committed());
            respond(stream, "200 OK", "text/plain; version=0.0.4", &body).await
        }
        ("GET", "/health") => {
            let body = format!(
                "{{\"status\":\"ok\",\"node_id\":{},\"cluster_id\":\"{}\",\"topics\":{}}}\n",
                broker.config.node_id,
                broker.cluster_id(),
                broker.catalog.all().len()
            );
            respond(stream, "200 OK", "application/json", &body).await
        }
        ("GET", _) => respond(stream, "404 Not Found", "text/plain", "endpoints: /metrics /health\n").await,
        _ => respond(stream, "405 Method Not Allowed", "text/plain", "only GET is supported\n").await,
    }
}

async fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
