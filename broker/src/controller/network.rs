//! Controller-to-controller RPC over TCP: Raft's append_entries / vote / install_snapshot plus
//! proposal forwarding, as length-prefixed JSON frames (`[len: u32 BE][JSON]`), one request in
//! flight per connection.
//!
//! Client side: [`Network`] (openraft's `RaftNetworkFactory`) hands out one [`PeerClient`] per
//! target; openraft keeps it for the life of a replication stream, so its TCP connection is
//! reused. Server side: [`serve`] accepts connections and dispatches frames to the local `Raft`.

use crate::controller::liveness::{HeartbeatReply, HeartbeatRequest, Liveness};
use crate::controller::{CommandResult, MetadataCommand, StateMachineStore, TypeConfig};
use openraft::error::{
    ClientWriteError, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::{BasicNode, Raft};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Largest frame accepted; snapshots are sent in chunks well below this.
const MAX_FRAME: usize = 64 << 20;

/// A request between controllers.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum RpcRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<u64>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A proposal forwarded by a follower; the receiver does not forward again.
    Propose(MetadataCommand),
    /// A broker's heartbeat to the active controller.
    BrokerHeartbeat(HeartbeatRequest),
    /// A broker outside the voters asks to receive the metadata log as a non-voting member.
    AddLearner {
        /// Its node id.
        id: u64,
        /// Its controller RPC address.
        addr: String,
    },
}

/// The answer to an [`RpcRequest`] of the same variant.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum RpcResponse {
    AppendEntries(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    InstallSnapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
    Propose(Result<CommandResult, RaftError<u64, ClientWriteError<u64, BasicNode>>>),
    BrokerHeartbeat(HeartbeatReply),
    /// `Err` carries the reason (e.g. not the leader: retry at `leader`).
    AddLearner(Result<(), AddLearnerRefusal>),
}

/// Why AddLearner was refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AddLearnerRefusal {
    /// Human-readable reason.
    pub reason: String,
    /// The active controller's id and address, when this one is not it.
    pub leader: Option<(u64, String)>,
}

/// A failed RPC to a peer controller; every variant names the peer address.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Could not connect.
    #[error("connecting to controller {addr}: {source}")]
    Connect {
        /// Peer address.
        addr: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The connection failed mid-request.
    #[error("talking to controller {addr}: {source}")]
    Io {
        /// Peer address.
        addr: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// No answer in time.
    #[error("controller {addr} did not answer within {after:?}")]
    Timeout {
        /// Peer address.
        addr: String,
        /// The deadline.
        after: Duration,
    },
    /// A frame could not be encoded or decoded.
    #[error("bad frame from/to controller {addr}: {source}")]
    Codec {
        /// Peer address.
        addr: String,
        /// Underlying error.
        source: serde_json::Error,
    },
    /// The peer answered with a different RPC than asked.
    #[error("controller {addr} answered with the wrong response type")]
    UnexpectedResponse {
        /// Peer address.
        addr: String,
    },
}

async fn write_frame<T: Serialize>(stream: &mut TcpStream, msg: &T) -> std::io::Result<()> {
    let body = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    if body.len() > MAX_FRAME {
        return Err(std::io::Error::other(format!("frame of {} bytes exceeds {MAX_FRAME}", body.len())));
    }
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
    buf.extend_from_slice(&body);
    stream.write_all(&buf).await
}

/// Reads one frame; `Ok(None)` on a clean end of stream between frames.
async fn read_frame<T: DeserializeOwned>(stream: &mut TcpStream) -> std::io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!("frame of {len} bytes exceeds {MAX_FRAME}")));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    serde_json::from_slice(&body).map(Some).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// A reusable connection to one peer controller.
pub(crate) struct RpcClient {
    addr: String,
    conn: Option<TcpStream>,
}

impl RpcClient {
    pub(crate) fn new(addr: String) -> RpcClient {
        RpcClient { addr, conn: None }
    }

    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `req` and waits for the answer, all within `timeout`. Raft RPCs tolerate duplicates,
    /// so they are retried once on a fresh connection when a reused one turns out dead; a
    /// forwarded proposal is not (it may have been committed before the connection broke).
    pub(crate) async fn call(&mut self, req: &RpcRequest, timeout: Duration) -> Result<RpcResponse, NetError> {
        let retryable = self.conn.is_some() && !matches!(req, RpcRequest::Propose(_));
        match tokio::time::timeout(timeout, self.round_trip(req)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(NetError::Io { .. })) if retryable => {
                // The peer may have closed an idle connection (e.g. it restarted): one fresh try.
                self.conn = None;
                match tokio::time::timeout(timeout, self.round_trip(req)).await {
                    Ok(r) => r.inspect_err(|_| self.conn = None),
                    Err(_) => self.timed_out(timeout),
                }
            }
            Ok(Err(e)) => {
                self.conn = None;
                Err(e)
            }
            Err(_) => self.timed_out(timeout),
        }
    }

    fn timed_out(&mut self, after: Duration) -> Result<RpcResponse, NetError> {
        // A late answer would be read as the reply to the next request: drop the connection.
        self.conn = None;
        Err(NetError::Timeout { addr: self.addr.clone(), after })
    }

    async fn round_trip(&mut self, req: &RpcRequest) -> Result<RpcResponse, NetError> {
        let addr = self.addr.clone();
        let stream = match &mut self.conn {
            Some(s) => s,
            None => {
                let s = TcpStream::connect(&addr)
                    .await
                    .map_err(|source| NetError::Connect { addr: addr.clone(), source })?;
                // Raft RPCs are small and latency-bound.
                let _ = s.set_nodelay(true);
                self.conn.insert(s)
            }
        };
        write_frame(stream, req).await.map_err(|source| NetError::Io { addr: addr.clone(), source })?;
        match read_frame(stream).await {
            Ok(Some(resp)) => Ok(resp),
            Ok(None) => Err(NetError::Io { addr, source: std::io::ErrorKind::UnexpectedEof.into() }),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                let source = serde_json::Error::io(e);
                Err(NetError::Codec { addr, source })
            }
            Err(source) => Err(NetError::Io { addr, source }),
        }
    }
}

/// openraft network factory: one [`PeerClient`] per target node.
#[derive(Debug, Clone, Default)]
pub struct Network;

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> PeerClient {
        PeerClient { target, client: RpcClient::new(node.addr.clone()) }
    }
}

/// openraft network client for one peer controller.
pub struct PeerClient {
    target: u64,
    client: RpcClient,
}

fn rpc_err<E: std::error::Error>(e: NetError) -> RPCError<u64, BasicNode, E> {
    match e {
        // Unreachable makes openraft back off instead of hammering a down peer.
        NetError::Connect { .. } => RPCError::Unreachable(Unreachable::new(&e)),
        _ => RPCError::Network(NetworkError::new(&e)),
    }
}

impl PeerClient {
    async fn call(&mut self, req: RpcRequest, option: &RPCOption) -> Result<RpcResponse, NetError> {
        self.client.call(&req, option.hard_ttl()).await
    }

    fn unexpected<E: std::error::Error>(&self) -> RPCError<u64, BasicNode, E> {
        rpc_err(NetError::UnexpectedResponse { addr: self.client.addr().to_string() })
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        match self.call(RpcRequest::AppendEntries(rpc), &option).await.map_err(rpc_err)? {
            RpcResponse::AppendEntries(r) => r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            _ => Err(self.unexpected()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>> {
        match self.call(RpcRequest::InstallSnapshot(rpc), &option).await.map_err(rpc_err)? {
            RpcResponse::InstallSnapshot(r) => r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            _ => Err(self.unexpected()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        match self.call(RpcRequest::Vote(rpc), &option).await.map_err(rpc_err)? {
            RpcResponse::Vote(r) => r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            _ => Err(self.unexpected()),
        }
    }
}

/// What the RPC server needs from its controller.
pub(crate) struct Served {
    pub raft: Raft<TypeConfig>,
    pub machine: StateMachineStore,
    pub liveness: Arc<Liveness>,
}

/// Accepts controller connections on `listener` and serves them until the task is aborted
/// (aborting it drops the `JoinSet`, which aborts every connection task).
pub(crate) async fn serve(listener: TcpListener, served: Arc<Served>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let served = served.clone();
                    conns.spawn(async move {
                        if let Err(e) = serve_conn(stream, served).await {
                            tracing::debug!(%peer, error = %e, "controller connection closed");
                        }
                    });
                }
                Err(e) => {
                    // Typically EMFILE; back off instead of spinning.
                    tracing::warn!(error = %e, "accepting controller connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            // Reap finished connection tasks so the set does not grow without bound.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn serve_conn(mut stream: TcpStream, served: Arc<Served>) -> std::io::Result<()> {
    let raft = &served.raft;
    while let Some(req) = read_frame::<RpcRequest>(&mut stream).await? {
        let resp = match req {
            RpcRequest::AppendEntries(r) => RpcResponse::AppendEntries(raft.append_entries(r).await),
            RpcRequest::Vote(r) => RpcResponse::Vote(raft.vote(r).await),
            RpcRequest::InstallSnapshot(r) => RpcResponse::InstallSnapshot(raft.install_snapshot(r).await),
            RpcRequest::Propose(cmd) => RpcResponse::Propose(raft.client_write(cmd).await.map(|r| r.data)),
            RpcRequest::BrokerHeartbeat(hb) => {
                RpcResponse::BrokerHeartbeat(served.liveness.heartbeat(raft, &served.machine, hb).await)
            }
            RpcRequest::AddLearner { id, addr } => RpcResponse::AddLearner(add_learner(raft, id, addr).await),
        };
        write_frame(&mut stream, &resp).await?;
    }
    Ok(())
}

async fn add_learner(raft: &Raft<TypeConfig>, id: u64, addr: String) -> Result<(), AddLearnerRefusal> {
    let metrics = raft.metrics().borrow().clone();
    if metrics.current_leader != Some(metrics.id) {
        let leader = metrics
            .current_leader
            .and_then(|l| metrics.membership_config.membership().get_node(&l).map(|n| (l, n.addr.clone())));
        return Err(AddLearnerRefusal { reason: "not the active controller".into(), leader });
    }
    if metrics.membership_config.membership().voter_ids().any(|v| v == id) {
        return Ok(());
    }
    tracing::info!(node = id, %addr, "adding a non-voting metadata member");
    // Non-blocking: the learner catches up in the background; the caller waits for its own
    // registration to show up in its local metadata anyway.
    raft.add_learner(id, BasicNode { addr }, false)
        .await
        .map(|_| ())
        .map_err(|e| AddLearnerRefusal { reason: e.to_string(), leader: None })
}
