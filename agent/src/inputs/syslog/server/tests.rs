//! Tests of the UDP and TCP listeners over real sockets on 127.0.0.1.

use super::*;
use crate::inputs::syslog::test_support::{field, octet_counted};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

const WAIT: Duration = Duration::from_secs(5);

fn utc_options(max_len: usize) -> ServerOptions {
    ServerOptions { zone: TimeZoneHint::Utc, ..ServerOptions::new(max_len) }
}

async fn recv(rx: &mut mpsc::Receiver<LogEvent>) -> LogEvent {
    tokio::time::timeout(WAIT, rx.recv()).await.expect("an event in time").expect("channel open")
}

#[tokio::test]
async fn udp_end_to_end() {
    let socket = bind_udp("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = socket.local_addr().unwrap();
    let (tx, mut rx) = mpsc::channel(16);
    let (stop, shutdown) = watch::channel(false);
    let server = tokio::spawn(serve_udp(socket, utc_options(1024), tx, shutdown));

    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let client_addr = client.local_addr().unwrap().to_string();
    client.send_to(b"<34>1 2003-10-11T22:14:15.003Z mymachine su - ID47 - 'su root' failed", addr).await.unwrap();
    client.send_to(b"<38>Jan 15 10:00:00 web1 sshd[42]: Accepted publickey\n", addr).await.unwrap();
    let mut big = b"<13>".to_vec();
    big.extend(vec![b'x'; 5000]);
    client.send_to(&big, addr).await.unwrap();

    let e = recv(&mut rx).await;
    assert_eq!(field(&e, "syslog.format"), "rfc5424");
    assert_eq!(field(&e, "message"), "'su root' failed");
    assert_eq!(field(&e, "@timestamp"), "2003-10-11T22:14:15.003Z");
    assert_eq!(field(&e, "source.address"), client_addr.as_str());
    let e = recv(&mut rx).await;
    assert_eq!(field(&e, "syslog.appname"), "sshd");
    assert_eq!(field(&e, "message"), "Accepted publickey");
    let e = recv(&mut rx).await;
    assert_eq!(field(&e, "message").as_str().unwrap().len(), 1020);

    stop.send(true).unwrap();
    tokio::time::timeout(WAIT, server).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn udp_stops_when_the_pipeline_is_gone() {
    let socket = bind_udp("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = socket.local_addr().unwrap();
    let (tx, rx) = mpsc::channel(1);
    let (_stop, shutdown) = watch::channel(false);
    let server = tokio::spawn(serve_udp(socket, utc_options(1024), tx, shutdown));
    drop(rx);
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.send_to(b"<13>x", addr).await.unwrap();
    tokio::time::timeout(WAIT, server).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn tcp_end_to_end_with_both_framings() {
    let listener = bind_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = mpsc::channel(16);
    let (stop, shutdown) = watch::channel(false);
    let server = tokio::spawn(serve_tcp(listener, utc_options(1024), None, tx, shutdown));

    let mut client = TcpStream::connect(addr).await.unwrap();
    let client_addr = client.local_addr().unwrap().to_string();
    let mut stream = Vec::new();
    stream.extend(octet_counted("<34>1 2003-10-11T22:14:15.003Z host app - - - one"));
    stream.extend(b"<13>Jan 15 10:00:00 host app: two\n");
    stream.extend(octet_counted("<14>1 - - - - - - three\nspans lines"));
    stream.extend(b"<15>Jan 15 10:00:01 host app[9]: four\r\n");
    for piece in stream.chunks(7) {
        client.write_all(piece).await.unwrap();
        client.flush().await.unwrap();
    }
    for expected in ["one", "two", "three\nspans lines", "four"] {
        let e = recv(&mut rx).await;
        assert_eq!(field(&e, "message"), expected);
        assert_eq!(field(&e, "source.address"), client_addr.as_str());
    }

    // A second connection at the same time; its last line has no newline.
    let mut other = TcpStream::connect(addr).await.unwrap();
    other.write_all(b"<13>Jan 15 10:00:02 host app: from the other one").await.unwrap();
    other.shutdown().await.unwrap();
    assert_eq!(field(&recv(&mut rx).await, "message"), "from the other one");

    // Shutdown closes the connection that is still open.
    stop.send(true).unwrap();
    tokio::time::timeout(WAIT, server).await.unwrap().unwrap().unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(WAIT, client.read_to_end(&mut rest)).await.unwrap();
    // Closed: end of stream, or a reset if the server dropped it with data unread.
    assert!(!matches!(read, Ok(n) if n > 0));
}

#[tokio::test]
async fn tcp_idle_connections_are_closed_keeping_their_last_line() {
    let listener = bind_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = mpsc::channel(16);
    let (_stop, shutdown) = watch::channel(false);
    let options = ServerOptions { idle_timeout: Some(Duration::from_millis(200)), ..utc_options(1024) };
    tokio::spawn(serve_tcp(listener, options, None, tx, shutdown));
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(b"<13>hello\n").await.unwrap();
    assert_eq!(field(&recv(&mut rx).await, "message"), "hello");
    // A last line without its newline is still a message when the connection goes idle.
    client.write_all(b"<13>unterminated").await.unwrap();
    assert_eq!(field(&recv(&mut rx).await, "message"), "unterminated");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(WAIT, client.read_to_end(&mut rest)).await.expect("closed in time");
    assert_eq!(read.unwrap(), 0);
}

#[tokio::test]
async fn tcp_connection_limit_makes_clients_wait() {
    let listener = bind_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = mpsc::channel(16);
    let (stop, shutdown) = watch::channel(false);
    let options = ServerOptions { max_connections: 1, ..utc_options(1024) };
    let server = tokio::spawn(serve_tcp(listener, options, None, tx, shutdown));
    let mut first = TcpStream::connect(addr).await.unwrap();
    first.write_all(b"<13>first\n").await.unwrap();
    assert_eq!(field(&recv(&mut rx).await, "message"), "first");
    // The second connection completes in the backlog but is not served yet.
    let mut second = TcpStream::connect(addr).await.unwrap();
    second.write_all(b"<13>second\n").await.unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(300), rx.recv()).await.is_err());
    drop(first);
    assert_eq!(field(&recv(&mut rx).await, "message"), "second");
    stop.send(true).unwrap();
    tokio::time::timeout(WAIT, server).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn tcp_backpressure_and_shutdown_while_blocked() {
    let listener = bind_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = mpsc::channel(1);
    let (stop, shutdown) = watch::channel(false);
    let server = tokio::spawn(serve_tcp(listener, utc_options(1024), None, tx, shutdown));
    let mut client = TcpStream::connect(addr).await.unwrap();
    let lines: String = (0..100).map(|i| format!("<13>line {i}\n")).collect();
    client.write_all(lines.as_bytes()).await.unwrap();
    // Nothing is lost while the pipeline is slow: the server waits for room.
    for i in 0..50 {
        assert_eq!(field(&recv(&mut rx).await, "message"), format!("line {i}").as_str());
    }
    // Shutdown works while the connection is blocked on a full channel.
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.send(true).unwrap();
    tokio::time::timeout(WAIT, server).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn tcp_stops_when_the_pipeline_is_gone() {
    let listener = bind_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel(1);
    let (_stop, shutdown) = watch::channel(false);
    let options = ServerOptions { idle_timeout: None, ..utc_options(1024) };
    let server = tokio::spawn(serve_tcp(listener, options, None, tx, shutdown));
    // A silent connection must not keep the listener alive.
    let _client = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(rx);
    tokio::time::timeout(WAIT, server).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn bind_errors_name_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let error = bind_tcp(addr).await.unwrap_err().to_string();
    assert!(error.contains(&addr.to_string()) && error.contains("TCP"), "{error}");

    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let (tx, _rx) = mpsc::channel(1);
    let (_stop, shutdown) = watch::channel(false);
    let error = run_udp(addr, 1024, tx, shutdown).await.unwrap_err().to_string();
    assert!(error.contains(&addr.to_string()) && error.contains("UDP"), "{error}");
}
