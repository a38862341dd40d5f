//! Access rules and framing of the controller RPC, over real loopback sockets.

use super::frame::{read_body, read_frame, read_len, write_frame};
use super::*;
use millrace_config::broker::parse_peer;
use millrace_config::BrokerConfig;
use std::collections::BTreeMap;
use std::net::IpAddr;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn access_by_address_network_and_loopback_only() {
    let access = PeerAccess::new([
        parse_peer("10.0.0.7").unwrap(),
        parse_peer("192.168.4.0/24").unwrap(),
        parse_peer("fd00::/16").unwrap(),
    ]);
    for allowed in ["127.0.0.1", "::1", "10.0.0.7", "::ffff:10.0.0.7", "192.168.4.200", "fd00:1::5"] {
        assert!(access.allows(ip(allowed)), "{allowed}");
    }
    for refused in ["127.0.0.2", "10.0.0.8", "192.168.5.1", "fe80::1", "0.0.0.0"] {
        assert!(!access.allows(ip(refused)), "{refused}");
    }
    assert!(PeerAccess::new([parse_peer("0.0.0.0/0").unwrap()]).allows(ip("203.0.113.9")));
}

#[tokio::test]
async fn voters_host_names_are_resolved_and_kept_when_resolution_fails() {
    let voters = BTreeMap::from([(1, "localhost:9093".to_string()), (2, "10.1.2.3:9093".to_string())]);
    let access = PeerAccess::for_voters(&voters);
    assert!(access.allows(ip("10.1.2.3")));
    assert!(!access.allows(ip("10.1.2.4")));
    access.resolve().await;
    assert!(access.claim_resolution(Duration::ZERO));
    assert!(!access.claim_resolution(Duration::from_secs(60)), "resolved just now");
    let broker = BrokerConfig {
        voters: vec!["1@127.0.0.1:9093".into(), "2@no-such-host.invalid:9093".into()],
        controller_listen: Some("0.0.0.0:9093".parse().unwrap()),
        ..BrokerConfig::default()
    };
    let access = PeerAccess::for_broker(&broker);
    access.resolve().await;
    assert!(!access.allows(ip("0.0.0.0")), "an unspecified listen address allows nobody");
    assert!(!access.allows(ip("127.0.0.2")));
}

/// A server side of a connection and the client writing to it.
async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    (listener.accept().await.unwrap().0, client)
}

#[tokio::test]
async fn frames_are_bounded_and_buffers_follow_the_bytes() {
    let (mut server, mut client) = pair().await;
    client.write_all(&((MAX_FRAME as u32) + 1).to_be_bytes()).await.unwrap();
    let err = read_frame::<RpcRequest>(&mut server).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);

    let (mut server, mut client) = pair().await;
    client.write_all(&(MAX_FRAME as u32).to_be_bytes()).await.unwrap();
    client.write_all(b"{}").await.unwrap();
    assert_eq!(read_len(&mut server).await.unwrap(), Some(MAX_FRAME));
    let reading = tokio::spawn(async move { read_body(&mut server, MAX_FRAME).await });
    drop(client);
    let err = reading.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");

    let (mut server, mut client) = pair().await;
    let request = RpcRequest::AddLearner { id: 4, addr: "10.0.0.4:9093".into() };
    write_frame(&mut client, &request).await.unwrap();
    let got: RpcRequest = read_frame(&mut server).await.unwrap().unwrap();
    assert!(matches!(got, RpcRequest::AddLearner { id: 4, .. }));
    let big = vec![b'x'; 200_000];
    client.write_all(&(big.len() as u32).to_be_bytes()).await.unwrap();
    client.write_all(&big).await.unwrap();
    let len = read_len(&mut server).await.unwrap().unwrap();
    let body = read_body(&mut server, len).await.unwrap();
    assert_eq!(body, big);
    assert!(body.capacity() <= big.len(), "capacity {}", body.capacity());
}
