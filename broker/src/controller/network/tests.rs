//! Access rules and framing of the controller RPC, over real loopback sockets.

use super::frame::{read_body, read_frame, read_len, write_frame};
use super::*;
use millrace_config::broker::parse_peer;
use millrace_config::BrokerConfig;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
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

/// A cluster CA issuing controller certificates into a temp dir.
struct ClusterCa {
    dir: tempfile::TempDir,
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl ClusterCa {
    fn new() -> ClusterCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "cluster CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), cert.pem()).unwrap();
        ClusterCa { dir, cert, key }
    }

    /// A transport presenting a certificate with common name `cn`, trusting `trust`'s CA.
    fn transport(&self, cn: &str, trust: &ClusterCa) -> Transport {
        let mut params = rcgen::CertificateParams::new(vec!["unused.example".to_string()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let (cert_file, key_file) =
            (self.dir.path().join(format!("{cn}.pem")), self.dir.path().join(format!("{cn}.key")));
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        let settings = millrace_config::TlsSettings {
            certificate_file: Some(cert_file),
            key_file: Some(key_file),
            ca_file: Some(trust.dir.path().join("ca.pem")),
            ..Default::default()
        };
        let identity = crate::server::tls::TlsIdentity::load_with(&settings, false).unwrap().unwrap();
        Transport::mutual_tls(identity)
    }
}

/// Accepts one connection with `server` and returns what the handshake made of the peer.
async fn accept_one(server: Transport) -> (SocketAddr, tokio::task::JoinHandle<Result<Option<u64>, String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        match server.accept(tcp).await {
            Ok((mut stream, node)) => {
                // Keep answering so the client's handshake completes on its side too.
                let _ = read_frame::<RpcRequest>(&mut stream).await;
                Ok(node)
            }
            Err(e) => Err(e.to_string()),
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn mutual_tls_names_the_node_at_both_ends() {
    let ca = ClusterCa::new();
    let (addr, accepted) = accept_one(ca.transport("node-1", &ca)).await;
    let mut stream = ca.transport("node-2", &ca).connect(1, &addr.to_string()).await.unwrap();
    write_frame(&mut stream, &RpcRequest::AddLearner { id: 2, addr: "x:1".into() }).await.unwrap();
    assert_eq!(accepted.await.unwrap(), Ok(Some(2)), "the server learns the node from the certificate");

    // Dialling node 3 but reaching node 1's certificate: refused by the client.
    let (addr, _accepted) = accept_one(ca.transport("node-1", &ca)).await;
    let err = ca.transport("node-2", &ca).connect(3, &addr.to_string()).await.err().unwrap();
    assert!(matches!(&err, NetError::Peer { node: 3, reason, .. } if reason.contains("node 1")), "{err}");
}

#[tokio::test]
async fn mutual_tls_refuses_strangers() {
    let ca = ClusterCa::new();
    let other = ClusterCa::new();
    // A certificate from another CA, even one naming a node.
    let (addr, accepted) = accept_one(ca.transport("node-1", &ca)).await;
    let _ = other.transport("node-2", &ca).connect(1, &addr.to_string()).await;
    assert!(accepted.await.unwrap().unwrap_err().contains("TLS handshake"));
    // The cluster CA's certificate that names no node.
    let (addr, accepted) = accept_one(ca.transport("node-1", &ca)).await;
    let _ = ca.transport("broker-1.example", &ca).connect(1, &addr.to_string()).await;
    assert!(accepted.await.unwrap().unwrap_err().contains("names no node"));
    // A plain TCP peer writing a frame straight away.
    let (addr, accepted) = accept_one(ca.transport("node-1", &ca)).await;
    let mut plain = Transport::plain().connect(1, &addr.to_string()).await.unwrap();
    let heartbeat = RpcRequest::BrokerHeartbeat(crate::controller::HeartbeatRequest {
        broker_id: 1,
        broker_epoch: 1,
        caught_up: true,
        offline_replicas: vec![],
    });
    write_frame(&mut plain, &heartbeat).await.unwrap();
    assert!(accepted.await.unwrap().unwrap_err().contains("TLS handshake"));
}

#[tokio::test]
async fn a_peer_that_never_starts_its_handshake_is_dropped() {
    let ca = ClusterCa::new();
    let (addr, accepted) = accept_one(ca.transport("node-1", &ca)).await;
    let _silent = TcpStream::connect(addr).await.unwrap();
    // Bounded, so a listener that waits forever fails the test instead of hanging it.
    let outcome = tokio::time::timeout(HANDSHAKE_TIMEOUT + Duration::from_secs(5), accepted).await;
    let err = outcome.expect("the silent peer was never dropped").unwrap().unwrap_err();
    assert!(err.contains("not finished within"), "{err}");
}

#[tokio::test]
async fn a_port_check_is_told_apart_from_a_failed_handshake() {
    // A controller probing whether a broker's process is alive connects and closes at once:
    // that is not an authentication failure to warn about.
    let ca = ClusterCa::new();
    let (addr, accepted) = accept_one(ca.transport("node-1", &ca)).await;
    drop(TcpStream::connect(addr).await.unwrap());
    let err = accepted.await.unwrap().unwrap_err();
    assert!(err.contains("closed before its first byte"), "{err}");
}

#[test]
fn requests_claim_their_sender() {
    use super::transport::{claimed_node, Claim};
    use crate::controller::MetadataCommand;
    let heartbeat = |broker_id| {
        RpcRequest::BrokerHeartbeat(crate::controller::HeartbeatRequest {
            broker_id,
            broker_epoch: 1,
            caught_up: true,
            offline_replicas: vec![],
        })
    };
    assert_eq!(claimed_node(&heartbeat(3)), Claim::Node(3));
    assert_eq!(claimed_node(&heartbeat(-1)), Claim::Invalid);
    let vote = openraft::raft::VoteRequest::new(openraft::Vote::new(4, 2), None);
    assert_eq!(claimed_node(&RpcRequest::Vote(vote)), Claim::Node(2));
    assert_eq!(claimed_node(&RpcRequest::AddLearner { id: 5, addr: "x:1".into() }), Claim::Node(5));
    let register = MetadataCommand::BrokerHeartbeat { id: 6 };
    assert_eq!(claimed_node(&RpcRequest::Propose(register)), Claim::Node(6));
    let delete = MetadataCommand::DeleteTopic { name: "t".into() };
    assert_eq!(claimed_node(&RpcRequest::Propose(delete)), Claim::Nobody);
}

/// A peer that answers every AddLearner with a refusal naming the id it answers, the first one
/// only after `delay`.
async fn echoing_peer(delay: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                while let Ok(Some(RpcRequest::AddLearner { id, .. })) = read_frame::<RpcRequest>(&mut conn).await {
                    if id == 1 {
                        tokio::time::sleep(delay).await;
                    }
                    let reason = format!("answer to {id}");
                    let answer = RpcResponse::AddLearner(Err(messages::AddLearnerRefusal { reason, leader: None }));
                    if write_frame(&mut conn, &answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_call_dropped_by_its_caller_never_hands_its_late_answer_to_the_next_call() {
    let addr = echoing_peer(Duration::from_millis(300)).await;
    let mut client = RpcClient::new(2, addr, Transport::plain());
    let ask = |id| RpcRequest::AddLearner { id, addr: "10.0.0.9:9093".into() };
    // openraft wraps each RPC in a deadline of its own and drops the call when it passes,
    // which may be before the client's inner deadline fires.
    let dropped = tokio::time::timeout(Duration::from_millis(100), client.call(&ask(1), Duration::from_secs(5))).await;
    assert!(dropped.is_err(), "the first call should still be waiting when its caller gives up");
    // The late answer to the first request arrives meanwhile.
    tokio::time::sleep(Duration::from_millis(400)).await;
    match client.call(&ask(2), Duration::from_secs(5)).await.unwrap() {
        RpcResponse::AddLearner(Err(refusal)) => assert_eq!(refusal.reason, "answer to 2"),
        other => panic!("unexpected answer {other:?}"),
    }
}
