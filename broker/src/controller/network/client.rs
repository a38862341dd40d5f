//! The calling side: [`RpcClient`], one reusable connection to a peer controller, and openraft's
//! network factory [`Network`] handing out a [`PeerClient`] per target node.

use super::frame::{read_frame, write_frame};
use super::messages::{NetError, RpcRequest, RpcResponse};
use super::transport::{Stream, Transport};
use super::{CLIENT_MAX_IDLE, CONNECT_BUDGET};
use crate::controller::TypeConfig;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;
use std::time::{Duration, Instant};

/// A reusable connection to one peer controller.
pub(crate) struct RpcClient {
    /// The node it should be talking to (checked against its certificate over TLS).
    node: u64,
    addr: String,
    transport: Transport,
    conn: Option<Stream>,
    /// When `conn` last completed a request.
    last_used: Instant,
}

impl RpcClient {
    pub(crate) fn new(node: u64, addr: String, transport: Transport) -> RpcClient {
        RpcClient { node, addr, transport, conn: None, last_used: Instant::now() }
    }

    pub(crate) fn node(&self) -> u64 {
        self.node
    }

    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `req` and waits for the answer, all within `timeout` (at least [`CONNECT_BUDGET`]
    /// when it must connect first). Raft RPCs tolerate duplicates,
    /// so they are retried once on a fresh connection when a reused one turns out dead; a
    /// forwarded proposal is not (it may have been committed before the connection broke).
    pub(crate) async fn call(&mut self, req: &RpcRequest, timeout: Duration) -> Result<RpcResponse, NetError> {
        if self.last_used.elapsed() >= CLIENT_MAX_IDLE {
            self.conn = None;
        }
        let retryable = self.conn.is_some() && !matches!(req, RpcRequest::Propose(_));
        // Setting up a connection (a TLS handshake on a loaded machine) may take longer than a
        // Raft heartbeat's deadline; abandoned half-way, every later try would start over.
        let first = if self.conn.is_none() { timeout.max(CONNECT_BUDGET) } else { timeout };
        match tokio::time::timeout(first, self.round_trip(req)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(NetError::Io { .. })) if retryable => {
                // The peer may have closed an idle connection (e.g. it restarted): one fresh try.
                self.conn = None;
                let fresh = timeout.max(CONNECT_BUDGET);
                match tokio::time::timeout(fresh, self.round_trip(req)).await {
                    Ok(r) => r.inspect_err(|_| self.conn = None),
                    Err(_) => self.timed_out(fresh),
                }
            }
            Ok(Err(e)) => {
                self.conn = None;
                Err(e)
            }
            Err(_) => self.timed_out(first),
        }
    }

    fn timed_out(&mut self, after: Duration) -> Result<RpcResponse, NetError> {
        // A late answer would be read as the reply to the next request: drop the connection.
        self.conn = None;
        Err(NetError::Timeout { addr: self.addr.clone(), after })
    }

    async fn round_trip(&mut self, req: &RpcRequest) -> Result<RpcResponse, NetError> {
        let addr = self.addr.clone();
        // The connection is out of `self.conn` for the whole exchange and goes back only with
        // its answer read. openraft puts its own deadline around every RPC and drops this future
        // when it passes: a connection left behind with a request in flight would hand that
        // request's late answer to the next one (a heartbeat's "success" taken for an append
        // the follower refused, so a leader counts a replica it does not have).
        let mut stream = match self.conn.take() {
            Some(s) => s,
            None => self.transport.connect(self.node, &addr).await?,
        };
        write_frame(&mut stream, req).await.map_err(|source| NetError::Io { addr: addr.clone(), source })?;
        match read_frame(&mut stream).await {
            Ok(Some(resp)) => {
                self.last_used = Instant::now();
                self.conn = Some(stream);
                Ok(resp)
            }
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
pub struct Network {
    /// How every peer is reached.
    pub transport: Transport,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> PeerClient {
        PeerClient { target, client: RpcClient::new(target, node.addr.clone(), self.transport.clone()) }
    }
}

/// openraft network client for one peer controller.
pub struct PeerClient {
    target: u64,
    client: RpcClient,
}

fn rpc_err<E: std::error::Error>(e: NetError) -> RPCError<u64, BasicNode, E> {
    match e {
        // Unreachable makes openraft back off instead of hammering a down (or wrong) peer.
        NetError::Connect { .. } | NetError::Peer { .. } => RPCError::Unreachable(Unreachable::new(&e)),
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
