//! The server against well-behaved and hostile clients over real sockets.
#![allow(clippy::unwrap_used)]

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `request` and reads the answer until the server closes.
async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(request).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(CLIENT_TIMEOUT, client.read_to_string(&mut answer)).await.unwrap().unwrap();
    answer
}

async fn start(router: Router, limits: Limits, admission: impl Admission) -> (SocketAddr, watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, shutdown) = watch::channel(false);
    tokio::spawn(serve_with(listener, "test", router, limits, admission, shutdown));
    (addr, stop)
}

#[tokio::test]
async fn routes_methods_and_unknown_paths() {
    let big = "x".repeat(1 << 20);
    let router = Router::new()
        .route("/metrics", || Reply::ok(PROMETHEUS_TEXT, "up 1\n".into()))
        .route("/big", move || Reply::ok("text/plain", big.clone()))
        .route("/broken", || panic!("a handler bug"));
    let (addr, _stop) = start(router, Limits::METRICS, MaxConnections::new("test", 4)).await;

    let ok = exchange(addr, b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(ok.contains("content-type: text/plain; version=0.0.4\r\n"), "{ok}");
    assert!(ok.contains("content-length: 5\r\n") && ok.ends_with("\r\n\r\nup 1\n"), "{ok}");

    let head = exchange(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n"), "{head}");

    let big = exchange(addr, b"GET /big HTTP/1.1\r\n\r\n").await;
    assert!(big.starts_with("HTTP/1.1 200 OK\r\n") && big.ends_with(&"x".repeat(1 << 20)), "{}", big.len());

    let missing = exchange(addr, b"GET /nope HTTP/1.1\r\n\r\n").await;
    assert!(missing.starts_with("HTTP/1.1 404 Not Found\r\n"), "{missing}");
    assert!(missing.ends_with("endpoints: /metrics /big /broken\n"), "{missing}");

    let post = exchange(addr, b"POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nab").await;
    assert!(post.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{post}");
    assert!(post.contains("allow: GET, HEAD\r\n"), "{post}");

    let broken = exchange(addr, b"GET /broken HTTP/1.1\r\n\r\n").await;
    assert!(broken.starts_with("HTTP/1.1 500 Internal Server Error\r\n"), "{broken}");

    let garbage = exchange(addr, b"\x16\x03\x01 not http at all\r\n\r\n").await;
    assert!(garbage.is_empty() || garbage.starts_with("HTTP/1.1 400"), "{garbage}");
}

#[tokio::test]
async fn heads_over_the_limits_are_answered_431() {
    /// Counts how connections ended.
    struct Count(Arc<[AtomicUsize; 2]>);
    impl Admission for Count {
        type Slot = ();
        fn admit(&self, _peer: SocketAddr) -> Option<()> {
            Some(())
        }
        fn closed(&self, _slot: &(), why: Closed) {
            self.0[why as usize].fetch_add(1, Ordering::SeqCst);
        }
    }
    let counts = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let router = Router::new().route("/x", || Reply::ok("text/plain", "x\n".into()));
    let (addr, _stop) = start(router, Limits::METRICS, Count(counts.clone())).await;

    let mut many = b"GET /x HTTP/1.1\r\n".to_vec();
    for i in 0..=MAX_HEADERS {
        many.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let answer = exchange(addr, &many).await;
    assert!(answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large"), "{answer}");

    let mut enough = b"GET /x HTTP/1.1\r\n".to_vec();
    for i in 0..MAX_HEADERS {
        enough.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
    }
    enough.extend_from_slice(b"\r\n");
    let answer = exchange(addr, &enough).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");

    let mut long = b"GET /x HTTP/1.1\r\nX-A: ".to_vec();
    long.resize(MAX_HEAD_BYTES + 10, b'a');
    long.extend_from_slice(b"\r\n\r\n");
    let answer = exchange(addr, &long).await;
    assert!(answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large"), "{answer}");
    assert_eq!(counts[Closed::HeadTooLarge as usize].load(Ordering::SeqCst), 2);
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
    // The idle ones are closed after the head timeout, and the endpoint serves again.
    for mut client in idle {
        let read = tokio::time::timeout(CLIENT_TIMEOUT * 2, client.read(&mut byte)).await.unwrap();
        assert!(matches!(read, Ok(0) | Err(_)));
    }
    let answer = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with("up 1\n"), "{answer}");
    // A head trickled a byte at a time is cut at the head timeout.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let cut = tokio::time::timeout(CLIENT_TIMEOUT * 2, async {
        while slow.write_all(b"G").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(cut.is_ok() && started.elapsed() < CLIENT_TIMEOUT * 2, "{:?}", started.elapsed());
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

#[tokio::test]
async fn a_client_that_does_not_take_the_answer_is_cut() {
    let big = "x".repeat(32 << 20);
    let router = Router::new().route("/big", move || Reply::ok("text/plain", big.clone()));
    let limits = Limits { connection_timeout: Duration::from_secs(2), ..Limits::METRICS };
    let (addr, _stop) = start(router, limits, MaxConnections::new("test", 1)).await;
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled.write_all(b"GET /big HTTP/1.1\r\n\r\n").await.unwrap();
    // The only slot is held until the connection's time is up; then it serves again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let answer = exchange(addr, b"GET /nope HTTP/1.1\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    drop(stalled);
}

#[tokio::test]
async fn shutdown_stops_accepting() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, shutdown) = watch::channel(false);
    let server = tokio::spawn(serve(listener, Arc::new(|| "up 1\n".to_string()), shutdown));
    let idle = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(true).unwrap();
    // An idle connection is closed at once rather than waited for.
    tokio::time::timeout(Duration::from_secs(1), server).await.unwrap().unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "still listening");
    drop(idle);
}
