//! How controller connections are carried: plain TCP, or mutual TLS with the cluster CA, where
//! each end's certificate must name the node it is (subject `CN=node-<id>`). A client checks
//! that the controller it dialled is the node it meant; the server checks that every request
//! claims to come from the node the certificate names ([`claimed_node`]).

use super::messages::{NetError, RpcRequest};
use super::HANDSHAKE_TIMEOUT;
use crate::controller::MetadataCommand;
use crate::server::tls::{certificate_common_name, TlsIdentity};
use millrace_config::broker::{controller_node_id, controller_node_name};
use rustls_pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A byte stream to or from a peer controller.
pub(crate) trait PeerStream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> PeerStream for T {}

/// A connection to or from a peer controller.
pub(crate) type Stream = Box<dyn PeerStream>;

/// Plain TCP, or mutual TLS with this node's certificate and the cluster CA.
#[derive(Clone, Default)]
pub struct Transport {
    tls: Option<Arc<TlsIdentity>>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.tls.is_some() { "Transport(mutual TLS)" } else { "Transport(plain)" })
    }
}

/// Why an incoming connection was not admitted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AcceptError {
    /// The TLS handshake failed or did not finish in time.
    #[error("TLS handshake: {0}")]
    Handshake(String),
    /// The certificate chains to the cluster CA but names no node.
    #[error("its certificate names no node (subject CN {0:?}; expected node-<id>)")]
    NoNode(Option<String>),
    /// The peer closed the connection before sending anything: a port check (a controller
    /// probing whether a broker's process is alive), not a failed login.
    #[error("closed before its first byte")]
    ClosedAtOnce,
}

impl Transport {
    /// Unauthenticated TCP (only [`super::PeerAccess`] keeps strangers out).
    pub fn plain() -> Transport {
        Transport { tls: None }
    }

    /// Mutual TLS with `identity` (its CA is the cluster CA; host names are not checked).
    pub fn mutual_tls(identity: Arc<TlsIdentity>) -> Transport {
        Transport { tls: Some(identity) }
    }

    /// Whether peers are authenticated.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Connects to node `node` at `addr`; over TLS, refuses a peer whose certificate names
    /// another node.
    pub(crate) async fn connect(&self, node: u64, addr: &str) -> Result<Stream, NetError> {
        let tcp =
            TcpStream::connect(addr).await.map_err(|source| NetError::Connect { addr: addr.to_string(), source })?;
        // Raft RPCs are small and latency-bound.
        let _ = tcp.set_nodelay(true);
        let Some(identity) = &self.tls else { return Ok(Box::new(tcp)) };
        let refused = |reason: String| NetError::Peer { addr: addr.to_string(), node, reason };
        // The name is only sent as SNI: the verifier checks the chain, and the node id below.
        let name = ServerName::try_from(controller_node_name(node)).map_err(|e| refused(e.to_string()))?;
        let connector = tokio_rustls::TlsConnector::from(identity.client_config());
        let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, tcp))
            .await
            .map_err(|_| refused(format!("no TLS handshake within {HANDSHAKE_TIMEOUT:?}")))?
            .map_err(|e| refused(format!("TLS handshake: {e}")))?;
        let named = node_named(tls.get_ref().1.peer_certificates());
        if named != Some(node) {
            return Err(refused(match named {
                Some(other) => format!("its certificate is node {other}'s"),
                None => "its certificate names no node".into(),
            }));
        }
        Ok(Box::new(tls))
    }

    /// Admits an incoming connection: over TLS, after a handshake that requires a certificate
    /// from the cluster CA, returning the node that certificate names.
    pub(crate) async fn accept(&self, tcp: TcpStream) -> Result<(Stream, Option<u64>), AcceptError> {
        let Some(identity) = &self.tls else { return Ok((Box::new(tcp), None)) };
        let acceptor = tokio_rustls::TlsAcceptor::from(identity.server_config(millrace_config::ClientAuth::Required));
        let handshake = async {
            let mut first = [0u8; 1];
            if matches!(tcp.peek(&mut first).await, Ok(0)) {
                return Err(AcceptError::ClosedAtOnce);
            }
            acceptor.accept(tcp).await.map_err(|e| AcceptError::Handshake(e.to_string()))
        };
        let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
            .await
            .map_err(|_| AcceptError::Handshake(format!("not finished within {HANDSHAKE_TIMEOUT:?}")))??;
        let certificates = tls.get_ref().1.peer_certificates();
        match node_named(certificates) {
            Some(node) => Ok((Box::new(tls), Some(node))),
            None => {
                let name = certificates.and_then(|c| c.first()).and_then(|c| certificate_common_name(c));
                Err(AcceptError::NoNode(name))
            }
        }
    }
}

/// The node a peer's (verified) leaf certificate names.
fn node_named(certificates: Option<&[CertificateDer<'_>]>) -> Option<u64> {
    let leaf = certificates?.first()?;
    controller_node_id(&certificate_common_name(leaf)?)
}

/// Which node a request says it comes from, where it says so.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The request names no sender (a forwarded proposal about topics, ACLs…).
    Nobody,
    /// It speaks for this node.
    Node(u64),
    /// It names an id no node can have (a negative broker id).
    Invalid,
}

/// The sender a request claims: the leader or candidate of a Raft RPC, the broker of a
/// heartbeat or registration, the node asking to join.
pub(crate) fn claimed_node(request: &RpcRequest) -> Claim {
    let broker = |id: i32| u64::try_from(id).map_or(Claim::Invalid, Claim::Node);
    match request {
        RpcRequest::AppendEntries(r) => Claim::Node(r.vote.leader_id.node_id),
        RpcRequest::Vote(r) => Claim::Node(r.vote.leader_id.node_id),
        RpcRequest::InstallSnapshot(r) => Claim::Node(r.vote.leader_id.node_id),
        RpcRequest::BrokerHeartbeat(hb) => broker(hb.broker_id),
        RpcRequest::AddLearner { id, .. } => Claim::Node(*id),
        RpcRequest::DescribeQuorum | RpcRequest::ChangeVoters(_) => Claim::Nobody,
        RpcRequest::Propose(MetadataCommand::RegisterBroker { id, .. } | MetadataCommand::BrokerHeartbeat { id }) => {
            broker(*id)
        }
        RpcRequest::Propose(_) => Claim::Nobody,
    }
}
