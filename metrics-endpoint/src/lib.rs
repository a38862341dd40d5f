//! The `/metrics` HTTP endpoint's server: one `GET` per connection, with every resource a client
//! can hold bounded — head bytes and header count, the time to send the head and to take the
//! answer, and connections at once (further ones are closed at once). A scraper needs none of
//! what those limits refuse. Shared by `millrace agent` and `millrace sink`.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// Longest request head (request line and headers) read.
pub const MAX_HEAD_BYTES: usize = 8 << 10;
/// Most header lines in a head.
pub const MAX_HEADERS: usize = 64;
/// Time a client has to send its whole head, and then to take the answer: a client sending a
/// byte now and then cannot hold a connection longer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 32;

/// Produces the `/metrics` body.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// What the bytes of a head received so far amount to.
#[derive(Debug, PartialEq, Eq)]
pub enum Head {
    /// The head is complete; the request's path.
    Complete(String),
    /// More bytes are needed.
    Partial,
    /// Over [`MAX_HEAD_BYTES`] or [`MAX_HEADERS`]: answered 431 and closed.
    TooLarge,
}

/// Looks at the bytes received so far (checked first, parsed once complete).
pub fn parse_head(received: &[u8]) -> Head {
    let end = received.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let head = &received[..end.unwrap_or(received.len())];
    // Lines after the request line; an incomplete last one counts too.
    let headers = head.split(|&b| b == b'\n').filter(|l| !l.is_empty() && *l != b"\r").count().saturating_sub(1);
    if head.len() > MAX_HEAD_BYTES || headers > MAX_HEADERS {
        return Head::TooLarge;
    }
    match end {
        Some(_) => {
            let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
            let path = String::from_utf8_lossy(line).split_whitespace().nth(1).unwrap_or_default().to_string();
            Head::Complete(path)
        }
        None if received.len() >= MAX_HEAD_BYTES => Head::TooLarge,
        None => Head::Partial,
    }
}

/// Serves `GET /metrics` (anything else: 404) until shutdown; `render` produces the body.
pub async fn serve(listener: TcpListener, render: Render, mut shutdown: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut warned: Option<Instant> = None;
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if warned.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
                tracing::warn!(max = MAX_CONNECTIONS, "metrics endpoint: too many connections; closing new ones");
                warned = Some(Instant::now());
            }
            drop(stream);
            continue;
        };
        let render = render.clone();
        tokio::spawn(async move {
            let _slot = slot;
            answer(stream, render).await;
        });
    }
}

/// Reads one request head and answers it, all within bounded time and memory.
async fn answer(mut stream: TcpStream, render: Render) {
    let head = tokio::time::timeout(CLIENT_TIMEOUT, read_head(&mut stream)).await;
    let (status, body) = match head {
        Ok(Some(Head::Complete(path))) if path == "/metrics" => {
            ("200 OK", tokio::task::spawn_blocking(move || render()).await.unwrap_or_default())
        }
        Ok(Some(Head::Complete(_))) => ("404 Not Found", "not found\n".to_string()),
        Ok(Some(Head::TooLarge)) => ("431 Request Header Fields Too Large", "request head too large\n".to_string()),
        // Closed, failed, or too slow: nothing to answer.
        Ok(Some(Head::Partial) | None) | Err(_) => return,
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(CLIENT_TIMEOUT, stream.write_all(response.as_bytes())).await;
}

/// Reads until the head is complete or too large; None when the client closed or failed first.
async fn read_head(stream: &mut TcpStream) -> Option<Head> {
    let mut received = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => n,
        };
        received.extend_from_slice(&buf[..n]);
        match parse_head(&received) {
            Head::Partial => {}
            done => return Some(done),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn heads_complete_partial_and_too_large() {
        let get = b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
        assert_eq!(parse_head(get), Head::Complete("/metrics".into()));
        for cut in 0..get.len() {
            assert_eq!(parse_head(&get[..cut]), Head::Partial, "{cut}");
        }
        // Endless bytes of one header: refused once the limit is reached.
        let mut endless = b"GET /metrics HTTP/1.1\r\nX-A: ".to_vec();
        endless.resize(MAX_HEAD_BYTES, b'a');
        assert_eq!(parse_head(&endless), Head::TooLarge);
        // Many short headers, complete or not yet.
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
        }
        assert_eq!(parse_head(&many), Head::TooLarge);
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse_head(&many), Head::TooLarge);
        // Exactly the maximum number of headers is fine.
        let mut enough = b"GET /x HTTP/1.1\r\n".to_vec();
        for i in 0..MAX_HEADERS {
            enough.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
        }
        enough.extend_from_slice(b"\r\n");
        assert_eq!(parse_head(&enough), Head::Complete("/x".into()));
    }

    #[tokio::test]
    async fn slow_endless_and_surplus_clients_do_not_stop_others() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_stop, shutdown) = watch::channel(false);
        tokio::spawn(serve(listener, Arc::new(|| "up 1\n".to_string()), shutdown));
        // Every slot taken by idle clients: a further connection is closed at once.
        let mut idle = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            idle.push(TcpStream::connect(addr).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut surplus = TcpStream::connect(addr).await.unwrap();
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(2), surplus.read(&mut byte)).await.unwrap();
        assert!(matches!(read, Ok(0) | Err(_)), "closed at once");
        // The idle ones are closed after the timeout, and the endpoint serves again.
        for mut client in idle {
            let read = tokio::time::timeout(CLIENT_TIMEOUT * 2, client.read(&mut byte)).await.unwrap();
            assert!(matches!(read, Ok(0) | Err(_)));
        }
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").await.unwrap();
        let mut answer = String::new();
        tokio::time::timeout(CLIENT_TIMEOUT, client.read_to_string(&mut answer)).await.unwrap().unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with("up 1\n"), "{answer}");
        // Endless header bytes: answered 431 and closed after at most the limit.
        let mut endless = TcpStream::connect(addr).await.unwrap();
        endless.write_all(b"GET /metrics HTTP/1.1\r\nX-A: ").await.unwrap();
        // Far more than socket buffers hold: writing fails once the server has closed.
        let most = 64usize << 20;
        let chunk = [b'a'; 1024];
        let sent = tokio::time::timeout(CLIENT_TIMEOUT * 2, async {
            let mut sent = 0;
            while sent < most && endless.write_all(&chunk).await.is_ok() {
                sent += chunk.len();
            }
            sent
        })
        .await
        .expect("the connection was neither read nor closed");
        assert!(sent < most, "the server kept reading");
    }
}
