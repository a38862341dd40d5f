//! The admin HTTP listener: `GET /metrics` (Prometheus text format) and `GET /health`.
//! A deliberately small HTTP/1.1 responder: one request per connection, no keep-alive, which is
//! all scrapers and health checks need.

use crate::Broker;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Serves the admin endpoints until shutdown.
pub async fn serve(listener: TcpListener, broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let broker = broker.clone();
                    tokio::spawn(async move {
                        if let Err(e) = answer(stream, &broker).await {
                            tracing::debug!(%peer, error = %e, "admin request failed");
                        }
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
    let mut buf = vec![0u8; 8192];
    let mut len = 0;
    // Read until the end of the request head; bodies are not used by any endpoint.
    let head = loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf[len..]))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request head not received in 10s"))??;
        if n == 0 {
            return Ok(());
        }
        len += n;
        if let Some(end) = buf[..len].windows(4).position(|w| w == b"\r\n\r\n") {
            break String::from_utf8_lossy(&buf[..end]).into_owned();
        }
        if len == buf.len() {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                "request head too large\n",
            )
            .await;
        }
    };
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => {
            let body = broker.metrics.render(&broker.catalog, &broker.groups.committed());
            respond(&mut stream, "200 OK", "text/plain; version=0.0.4", &body).await
        }
        ("GET", "/health") => {
            let body = format!(
                "{{\"status\":\"ok\",\"node_id\":{},\"cluster_id\":\"{}\",\"topics\":{}}}\n",
                broker.config.node_id,
                broker.cluster_id(),
                broker.catalog.all().len()
            );
            respond(&mut stream, "200 OK", "application/json", &body).await
        }
        ("GET", _) => respond(&mut stream, "404 Not Found", "text/plain", "endpoints: /metrics /health\n").await,
        _ => respond(&mut stream, "405 Method Not Allowed", "text/plain", "only GET is supported\n").await,
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
