//! Controller-to-controller RPC over TCP: Raft's append_entries / vote / install_snapshot plus
//! proposal forwarding, as length-prefixed JSON frames (`[len: u32 BE][JSON]`), one request in
//! flight per connection.
//!
//! Client side: [`Network`] (openraft's `RaftNetworkFactory`) hands out one [`PeerClient`] per
//! target; openraft keeps it for the life of a replication stream, so its TCP connection is
//! reused. Server side: [`serve`] accepts connections and dispatches frames to the local `Raft`.
//!
//! There is no authentication yet, so the server takes connections only from [`PeerAccess`]:
//! the voters' addresses (host names resolved at start-up, every [`RESOLVE_INTERVAL`] and when
//! an unknown address connects), `controller.allowed_peers`, loopback and this broker's own
//! addresses. Anyone else is closed on arrival with a warning and a metric. Connections are
//! bounded in number ([`MAX_CONNECTIONS`]), idle time ([`IDLE_TIMEOUT`]) and frame size
//! ([`MAX_FRAME`]); a frame's buffer grows as its bytes arrive and must be complete within
//! [`FRAME_TIMEOUT`]. A single broker has no listener at all: its quorum of one runs in-process.

use crate::controller::liveness::{HeartbeatReply, HeartbeatRequest, Liveness};
use crate::controller::{CommandResult, MetadataCommand, StateMachineStore, TypeConfig};
use crate::metrics::ListenerMetrics;
use crate::server::{ConnectionLimiter, ConnectionSlot};
use bytes::BufMut;
use millrace_config::broker::{parse_peer, PeerSpec};
use millrace_config::BrokerConfig;
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
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Largest frame accepted; snapshots are sent in chunks well below this.
pub const MAX_FRAME: usize = 64 << 20;
/// First allocation for a frame's body; it doubles as the bytes fill it.
const FIRST_STEP: usize = 64 * 1024;
/// Open connections to the controller listener (from allowed peers: a few per broker).
pub const MAX_CONNECTIONS: usize = 1024;
/// A connection that sends no frame for this long is closed; Raft heartbeats keep live ones busy.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Clients reconnect instead of reusing a connection unused for this long, so they do not
/// write into one the server is closing for idleness.
const CLIENT_MAX_IDLE: Duration = Duration::from_secs(300);
/// Time for a frame to arrive once its length did, and for a response to be taken.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the allowed peers' host names are resolved again.
pub const RESOLVE_INTERVAL: Duration = Duration::from_secs(300);
/// An unknown address triggers a new resolution at most this often.
const RESOLVE_ON_MISMATCH_EVERY: Duration = Duration::from_secs(10);
/// Bound on resolving one host name.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Who may connect to the controller listener: fixed networks, and host names resolved to
/// addresses (re-resolved periodically and when an unknown address connects).
pub struct PeerAccess {
    networks: Vec<(IpAddr, u8)>,
    hosts: Vec<String>,
    /// Latest addresses of each host name; a failed resolution keeps the previous ones.
    resolved: RwLock<HashMap<String, Vec<IpAddr>>>,
    last_resolution: Mutex<Option<Instant>>,
}

impl PeerAccess {
    /// Allows `peers`, plus loopback (127.0.0.1 and ::1, not all of 127.0.0.0/8).
    pub fn new(peers: impl IntoIterator<Item = PeerSpec>) -> PeerAccess {
        let mut networks = vec![(IpAddr::V4(Ipv4Addr::LOCALHOST), 32), (IpAddr::V6(Ipv6Addr::LOCALHOST), 128)];
        let mut hosts = Vec::new();
        for peer in peers {
            match peer {
                PeerSpec::Network(addr, bits) => networks.push((addr.to_canonical(), bits)),
                PeerSpec::Host(host) if !hosts.contains(&host) => hosts.push(host),
                PeerSpec::Host(_) => {}
            }
        }
        PeerAccess { networks, hosts, resolved: RwLock::new(HashMap::new()), last_resolution: Mutex::new(None) }
    }

    /// The voters' hosts (of `"HOST:PORT"` addresses) and loopback.
    pub fn for_voters(voters: &BTreeMap<u64, String>) -> PeerAccess {
        PeerAccess::new(voters.values().filter_map(|addr| host_of(addr)))
    }

    /// A broker's controller peers: the voters, `controller.allowed_peers`, loopback and the
    /// addresses this broker itself is configured with.
    pub fn for_broker(config: &BrokerConfig) -> PeerAccess {
        let voters = config.voter_map();
        let own = [config.advertised(), config.listen.to_string()]
            .into_iter()
            .chain(config.controller_listen.map(|a| a.to_string()))
            .filter_map(|addr| host_of(&addr))
            .filter(|peer| !matches!(peer, PeerSpec::Network(ip, _) if ip.is_unspecified()));
        let allowed = config.controller.allowed_peers.iter().filter_map(|p| parse_peer(p).ok());
        PeerAccess::new(voters.values().filter_map(|addr| host_of(addr)).chain(allowed).chain(own).collect::<Vec<_>>())
    }

    /// Whether `ip` may connect.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        if self.networks.iter().any(|&(net, bits)| in_network(ip, net, bits)) {
            return true;
        }
        let resolved = self.resolved.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        resolved.values().any(|addrs| addrs.contains(&ip))
    }

    /// Resolves every host name again.
    pub async fn resolve(&self) {
        *self.last_resolution.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Instant::now());
        for host in &self.hosts {
            match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host.as_str(), 0))).await {
                Ok(Ok(addrs)) => {
                    let addrs: Vec<IpAddr> = addrs.map(|a| a.ip().to_canonical()).collect();
                    let mut resolved = self.resolved.write().unwrap_or_else(|poisoned| poisoned.into_inner());
                    resolved.insert(host.clone(), addrs);
                }
                Ok(Err(e)) => {
                    tracing::warn!(%host, error = %e, "resolving a controller peer failed; keeping its previous addresses")
                }
                Err(_) => {
                    tracing::warn!(%host, "resolving a controller peer timed out; keeping its previous addresses")
                }
            }
        }
    }

    /// Whether a resolution is due after an unknown address connected (claims it if so).
    fn claim_resolution(&self, min_age: Duration) -> bool {
        if self.hosts.is_empty() {
            return false;
        }
        let mut last = self.last_resolution.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if last.is_some_and(|at| at.elapsed() < min_age) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}

/// The host of `"HOST:PORT"` as a peer.
fn host_of(addr: &str) -> Option<PeerSpec> {
    let (host, _) = addr.rsplit_once(':')?;
    parse_peer(host.trim_matches(|c| c == '[' || c == ']')).ok()
}

/// Whether the first `bits` bits of `ip` and `net` agree (both canonical, same family).
fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits.min(32))).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits.min(128))).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// The controller listener with its access rules.
pub struct RpcListener {
    listener: TcpListener,
    access: Arc<PeerAccess>,
    metrics: ListenerMetrics,
}

impl RpcListener {
    /// Resolves `access`'s host names once, so the first peers are recognised.
    pub async fn new(listener: TcpListener, access: PeerAccess, metrics: ListenerMetrics) -> RpcListener {
        access.resolve().await;
        RpcListener { listener, access: Arc::new(access), metrics }
    }

    /// Where it listens.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

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
    let Some(len) = read_len(stream).await? else { return Ok(None) };
    let body = read_body(stream, len).await?;
    decode(&body).map(Some)
}

/// A frame's announced length, checked; `Ok(None)` on a clean end of stream.
async fn read_len(stream: &mut TcpStream) -> std::io::Result<Option<usize>> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds {MAX_FRAME}"),
        ));
    }
    Ok(Some(len))
}

/// Reads `len` bytes into a buffer that grows (doubling) only as they arrive, never from the
/// announced length alone.
async fn read_body(stream: &mut TcpStream, len: usize) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::with_capacity(len.min(FIRST_STEP));
    while body.len() < len {
        if body.len() == body.capacity() {
            body.reserve_exact(len.min(body.capacity() * 2) - body.len());
        }
        let spare = (body.capacity() - body.len()).min(len - body.len());
        if stream.read_buf(&mut (&mut body).limit(spare)).await? == 0 {
            let message = format!("connection closed after {} of {len} frame bytes", body.len());
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, message));
        }
    }
    Ok(body)
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> std::io::Result<T> {
    serde_json::from_slice(body).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// A reusable connection to one peer controller.
pub(crate) struct RpcClient {
    addr: String,
    conn: Option<TcpStream>,
    /// When `conn` last completed a request.
    last_used: Instant,
}

impl RpcClient {
    pub(crate) fn new(addr: String) -> RpcClient {
        RpcClient { addr, conn: None, last_used: Instant::now() }
    }

    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `req` and waits for the answer, all within `timeout`. Raft RPCs tolerate duplicates,
    /// so they are retried once on a fresh connection when a reused one turns out dead; a
    /// forwarded proposal is not (it may have been committed before the connection broke).
    pub(crate) async fn call(&mut self, req: &RpcRequest, timeout: Duration) -> Result<RpcResponse, NetError> {
        if self.last_used.elapsed() >= CLIENT_MAX_IDLE {
            self.conn = None;
        }
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
            Ok(Some(resp)) => {
                self.last_used = Instant::now();
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
pub(crate) async fn serve(listener: RpcListener, served: Arc<Served>) {
    let RpcListener { listener, access, metrics } = listener;
    let limiter = Arc::new(ConnectionLimiter::new("controller", MAX_CONNECTIONS, MAX_CONNECTIONS, metrics));
    let mut conns = JoinSet::new();
    let mut resolve_tick = tokio::time::interval_at(tokio::time::Instant::now() + RESOLVE_INTERVAL, RESOLVE_INTERVAL);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if !access.allows(peer.ip()) {
                        limiter.refuse(
                            peer,
                            "not_allowed",
                            "its address is neither a voter's nor in controller.allowed_peers",
                        );
                        drop(stream);
                        // The voters' names may point elsewhere now; the peer retries.
                        if access.claim_resolution(RESOLVE_ON_MISMATCH_EVERY) {
                            let access = access.clone();
                            conns.spawn(async move { access.resolve().await });
                        }
                        continue;
                    }
                    let Some(slot) = limiter.admit(peer) else {
                        drop(stream);
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let served = served.clone();
                    conns.spawn(async move {
                        if let Err(e) = serve_conn(stream, served, &slot).await {
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
            _ = resolve_tick.tick() => {
                let access = access.clone();
                conns.spawn(async move { access.resolve().await });
            }
            // Reap finished connection tasks so the set does not grow without bound.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn serve_conn(mut stream: TcpStream, served: Arc<Served>, slot: &ConnectionSlot) -> std::io::Result<()> {
    let raft = &served.raft;
    let timed_out = |reason: &'static str, after: Duration| {
        slot.limiter().closed(reason);
        std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{reason}: nothing for {after:?}"))
    };
    loop {
        let len = match tokio::time::timeout(IDLE_TIMEOUT, read_len(&mut stream)).await {
            Ok(Ok(Some(len))) => len,
            Ok(Ok(None)) => return Ok(()),
            Ok(Err(e)) => {
                if e.kind() == std::io::ErrorKind::InvalidData {
                    slot.limiter().closed("frame_too_large");
                }
                return Err(e);
            }
            Err(_) => return Err(timed_out("idle", IDLE_TIMEOUT)),
        };
        let body = tokio::time::timeout(FRAME_TIMEOUT, read_body(&mut stream, len))
            .await
            .map_err(|_| timed_out("slow_frame", FRAME_TIMEOUT))??;
        let req: RpcRequest = decode(&body)?;
        drop(body);
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
        tokio::time::timeout(FRAME_TIMEOUT, write_frame(&mut stream, &resp))
            .await
            .map_err(|_| timed_out("slow_reader", FRAME_TIMEOUT))??;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
