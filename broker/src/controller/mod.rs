//! The cluster-metadata quorum (KRaft's role): brokers, topics, partition assignments, leaders,
//! ISRs, epochs and producer-id blocks live in a Raft log replicated by `openraft` (0.9, storage-v2).
//!
//! Map:
//! - [`state_machine`]: the pure metadata model — [`MetadataCommand`]s and the deterministic
//!   [`MetadataState::apply`] that validates and applies them.
//! - [`store`]: durable Raft log + vote (files, fsynced) and the state machine with snapshots.
//! - [`network`]: TCP RPC between controllers (Raft RPCs and forwarded proposals), client and server.
//! - [`Controller`] (here): starts one quorum member and offers `propose` / `metadata`.
//!
//! Membership is static: every controller is started with the same `--voters` map, and the one
//! with the lowest id initializes the cluster when its log is empty.

pub mod liveness;
pub mod membership;
pub mod network;
pub mod quorum_lease;
pub mod quorum_status;
pub mod state_machine;
pub mod store;

#[cfg(test)]
mod tests;

pub use state_machine::{
    BrokerEndpoint, BrokerState, MetadataCommand, MetadataError, MetadataResponse, MetadataState, PartitionAssignment,
    PartitionState, TopicState, NO_LEADER,
};

pub use liveness::{HeartbeatReply, HeartbeatRequest, Sessions};
pub use membership::{VoterChange, VoterChangeError};
pub use quorum_status::{QuorumDescription, QuorumReplica};
pub use store::StateMachineStore;

use crate::controller::liveness::Liveness;
use crate::controller::network::{
    NetError, Network, PeerAccess, RpcClient, RpcListener, RpcRequest, RpcResponse, Served, Transport,
};
use crate::controller::store::{LogStore, StoreError};
use kafka_protocol::error::ResponseError;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Config, Raft, SnapshotPolicy};
use std::collections::BTreeMap;
use std::io::Cursor;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What applying one log entry yields: the command's response or its (replicated) rejection.
pub type CommandResult = Result<MetadataResponse, MetadataError>;

openraft::declare_raft_types!(
    /// openraft type configuration of the metadata quorum.
    pub TypeConfig:
        D = MetadataCommand,
        R = CommandResult,
        NodeId = u64,
        Node = BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// How long a forwarded proposal may take before the caller gets an error.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors of the controller.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// Invalid arguments to [`Controller::start`].
    #[error("controller configuration: {0}")]
    Config(String),
    /// Binding the RPC listener failed.
    #[error("binding controller listener {addr}: {source}")]
    Bind {
        /// Listen address.
        addr: SocketAddr,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Opening the Raft storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// openraft failed (fatal error, shutdown, ...).
    #[error("raft: {0}")]
    Raft(String),
    /// No leader could take the proposal; retry later, or send it to `leader_addr`.
    #[error("not the leader (leader: {leader_id:?} at {leader_addr:?})")]
    NotLeader {
        /// Current leader, if known.
        leader_id: Option<u64>,
        /// Its RPC address, if known.
        leader_addr: Option<String>,
    },
    /// Forwarding to the leader failed; the command may or may not have been committed.
    #[error("forwarding to leader {leader_id}: {source}")]
    Forward {
        /// Leader id.
        leader_id: u64,
        /// Network error (names the address).
        source: NetError,
    },
    /// The command was committed but rejected by the metadata rules.
    #[error("metadata command rejected: {0}")]
    Rejected(MetadataError),
    /// A change of the voters was refused.
    #[error("{0}")]
    Voters(VoterChangeError),
}

impl MetadataError {
    /// The Kafka error code for a command the metadata rules refuse.
    pub fn error_code(&self) -> ResponseError {
        match self {
            MetadataError::BrokerNotRegistered(_) => ResponseError::BrokerIdNotRegistered,
            MetadataError::TopicExists(_) | MetadataError::TopicIdInUse(_) => ResponseError::TopicAlreadyExists,
            MetadataError::UnknownTopic(_) | MetadataError::UnknownPartition { .. } => {
                ResponseError::UnknownTopicOrPartition
            }
            MetadataError::InvalidRequest(_) => ResponseError::InvalidRequest,
            MetadataError::LeaderEpochMismatch { .. } => ResponseError::FencedLeaderEpoch,
            MetadataError::NotLeader { .. } => ResponseError::NotLeaderOrFollower,
            MetadataError::InvalidUpdateVersion { .. } => ResponseError::InvalidUpdateVersion,
            MetadataError::IneligibleReplica(_) => ResponseError::InvalidReplicaAssignment,
            MetadataError::ElectionNotNeeded(_) => ResponseError::ElectionNotNeeded,
            MetadataError::NoEligibleLeader { .. } => ResponseError::EligibleLeadersNotAvailable,
            MetadataError::NoReassignmentInProgress { .. } => ResponseError::NoReassignmentInProgress,
            MetadataError::UnknownScramCredential { .. } => ResponseError::ResourceNotFound,
            MetadataError::UnacceptableCredential(_) => ResponseError::UnacceptableCredential,
            MetadataError::InvalidAcl(_) => ResponseError::InvalidRequest,
            MetadataError::TooManyAcls { .. } => ResponseError::PolicyViolation,
        }
    }
}

impl ControllerError {
    /// The Kafka error code a client sees: the rule's code for a refused command; otherwise the
    /// quorum was unreachable or slow, which clients retry.
    pub fn error_code(&self) -> ResponseError {
        match self {
            ControllerError::Rejected(e) => e.error_code(),
            ControllerError::Voters(e) => e.error_code(),
            _ => ResponseError::RequestTimedOut,
        }
    }
}

/// One member of the metadata quorum.
pub struct Controller {
    node_id: u64,
    raft: Raft<TypeConfig>,
    state_machine: StateMachineStore,
    /// The RPC listener task; `None` once shut down, or for a quorum of one without a listener.
    server: Option<JoinHandle<()>>,
    /// Connections used to forward proposals, per leader id.
    forward: tokio::sync::Mutex<BTreeMap<u64, RpcClient>>,
    /// The fencing loop (acts only while this controller is the active one).
    liveness_task: JoinHandle<()>,
    /// Connection for this broker's heartbeats, to the active controller.
    heartbeat: tokio::sync::Mutex<Option<RpcClient>>,
    /// Broker leases (used while this controller is the active one).
    liveness: Arc<Liveness>,
    /// How peer controllers are reached.
    transport: Transport,
    /// Set by [`Controller::shutdown`]: Raft ending now is not a failure.
    stopping: std::sync::atomic::AtomicBool,
    /// When this node last confirmed, as leader, that a majority follows it.
    quorum_lease: Arc<quorum_lease::QuorumLease>,
    /// The task confirming it.
    lease_task: JoinHandle<()>,
    /// Nothing was logged or voted here before this start.
    started_pristine: bool,
    /// This start initialized a new quorum.
    initialized_here: bool,
}

/// Broker session timeout of controllers started without one: effectively no automatic fencing
/// (a bare quorum without brokers heartbeating to it).
const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

impl Controller {
    /// `auto.leader.rebalance.enable`: whether the active controller moves leaders back to
    /// preferred replicas on its own (on by default).
    pub fn set_auto_leader_rebalance(&self, on: bool) {
        self.liveness.set_auto_rebalance(on);
    }

    /// Binds `listen` and starts the controller; see [`Controller::start_with_listener`].
    pub async fn start(
        node_id: u64,
        listen: SocketAddr,
        voters: BTreeMap<u64, String>,
        data_dir: &Path,
    ) -> Result<Controller, ControllerError> {
        let listener =
            TcpListener::bind(listen).await.map_err(|source| ControllerError::Bind { addr: listen, source })?;
        Self::start_with_listener(node_id, listener, voters, data_dir).await
    }

    /// Opens the Raft storage in `data_dir`, starts openraft, serves controller RPCs on
    /// `listener`, and — if this is the lowest voter id and nothing was ever logged here —
    /// initializes the cluster with all `voters` (`id -> "host:port"` of their RPC listeners).
    pub async fn start_with_listener(
        node_id: u64,
        listener: TcpListener,
        voters: BTreeMap<u64, String>,
        data_dir: &Path,
    ) -> Result<Controller, ControllerError> {
        Self::start_with_config(node_id, listener, voters, data_dir, raft_config(), DEFAULT_SESSION_TIMEOUT).await
    }

    /// Starts a controller for a broker: like [`Controller::start_with_listener`], with the
    /// broker session timeout the active controller enforces. A `node_id` outside `voters`
    /// starts as a non-voting member and asks the voters to add it, giving `advertised` as the
    /// address they reach it at. Without a listener (a single broker, the only voter) nothing is
    /// served on the network.
    pub async fn start_for_broker(
        node_id: u64,
        listener: Option<RpcListener>,
        transport: Transport,
        voters: BTreeMap<u64, String>,
        advertised: String,
        data_dir: &Path,
        sessions: Sessions,
    ) -> Result<Controller, ControllerError> {
        let voter = voters.contains_key(&node_id);
        if listener.is_none() && (voters.len() != 1 || !voter) {
            return Err(ControllerError::Config(
                "only the sole voter of a quorum of one can run without a controller listener".into(),
            ));
        }
        let controller =
            Self::start_inner(node_id, listener, transport, voters.clone(), data_dir, raft_config(), sessions).await?;
        if !voter {
            join_as_learner(node_id, controller.transport.clone(), &voters, advertised).await;
        } else if controller.started_pristine && !controller.initialized_here && voters.len() > 1 {
            // A configured voter starting empty: a new cluster's (already a member: a no-op), or
            // one replacing a voter whose disk died after `remove-voter` left its id a
            // non-voting member, perhaps at another address. Asked in the background: on a new
            // cluster there is no leader to answer until this node votes.
            let transport = controller.transport.clone();
            tokio::spawn(async move { join_as_learner(node_id, transport, &voters, advertised).await });
        }
        Ok(controller)
    }
}

/// The leader of a quorum the other `voters` already run, if one answers within a second.
async fn existing_leader(node_id: u64, transport: &Transport, voters: &BTreeMap<u64, String>) -> Option<u64> {
    let asks = voters.iter().filter(|(id, _)| **id != node_id).map(|(id, addr)| {
        let mut client = RpcClient::new(*id, addr.clone(), transport.clone());
        async move {
            match client.call(&RpcRequest::DescribeQuorum, Duration::from_secs(1)).await {
                Ok(RpcResponse::DescribeQuorum(Some(d))) => Some(d.leader_id),
                _ => None,
            }
        }
    });
    futures::future::join_all(asks).await.into_iter().flatten().next()
}

/// Asks the voters (retrying until one active controller accepts) to add node `node_id` as a
/// non-voting member, so it receives the metadata log.
async fn join_as_learner(node_id: u64, transport: Transport, voters: &BTreeMap<u64, String>, advertised: String) {
    let request = RpcRequest::AddLearner { id: node_id, addr: advertised };
    let mut targets: Vec<(u64, String)> = voters.iter().map(|(id, addr)| (*id, addr.clone())).collect();
    let mut attempt = 0usize;
    loop {
        let (node, addr) = targets[attempt % targets.len()].clone();
        attempt += 1;
        let mut client = RpcClient::new(node, addr.clone(), transport.clone());
        match client.call(&request, FORWARD_TIMEOUT).await {
            Ok(RpcResponse::AddLearner(Ok(()))) => {
                tracing::info!(node_id, via = %addr, "joined the metadata quorum as a non-voting member");
                return;
            }
            Ok(RpcResponse::AddLearner(Err(refusal))) => {
                tracing::debug!(via = %addr, reason = %refusal.reason, "join refused; retrying");
                if let Some(leader) = refusal.leader {
                    targets.insert(0, leader);
                    attempt = 0;
                }
            }
            Ok(_) => tracing::warn!(via = %addr, "unexpected answer to a join request"),
            Err(e) => tracing::debug!(error = %e, "join request failed; retrying"),
        }
        targets.truncate(voters.len() + 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

impl Controller {
    /// [`Controller::start_with_listener`] with explicit openraft settings (tests shrink the
    /// snapshot policy to exercise snapshot transfer). The listener takes connections from the
    /// voters' addresses and loopback.
    pub(crate) async fn start_with_config(
        node_id: u64,
        listener: TcpListener,
        voters: BTreeMap<u64, String>,
        data_dir: &Path,
        config: Config,
        session_timeout: Duration,
    ) -> Result<Controller, ControllerError> {
        let metrics = crate::metrics::ListenerMetrics::new()
            .map_err(|e| ControllerError::Config(format!("creating listener metrics: {e}")))?;
        let transport = Transport::plain();
        let listener = RpcListener::new(listener, PeerAccess::for_voters(&voters), transport.clone(), metrics).await;
        Self::start_inner(
            node_id,
            Some(listener),
            transport,
            voters,
            data_dir,
            config,
            Sessions { timeout: session_timeout, heartbeat_interval: None },
        )
        .await
    }

    async fn start_inner(
        node_id: u64,
        listener: Option<RpcListener>,
        transport: Transport,
        voters: BTreeMap<u64, String>,
        data_dir: &Path,
        config: Config,
        sessions: Sessions,
    ) -> Result<Controller, ControllerError> {
        if voters.is_empty() {
            return Err(ControllerError::Config("the quorum needs at least one voter".into()));
        }
        let config = Arc::new(config.validate().map_err(|e| ControllerError::Config(e.to_string()))?);
        let log = LogStore::open(data_dir)?;
        let state_machine = StateMachineStore::open(data_dir)?;
        let pristine = log.is_pristine();
        let network = Network { transport: transport.clone() };
        let raft = Raft::new(node_id, config, network, log, state_machine.clone())
            .await
            .map_err(|e| ControllerError::Raft(e.to_string()))?;
        let liveness = Arc::new(Liveness::new(sessions.timeout, sessions.heartbeat_interval));
        let served =
            Arc::new(Served { raft: raft.clone(), machine: state_machine.clone(), liveness: liveness.clone() });
        let server = listener.map(|listener| tokio::spawn(network::serve(listener, served)));
        let liveness_task = tokio::spawn(liveness.clone().run(raft.clone(), state_machine.clone()));
        let quorum_lease = Arc::new(quorum_lease::QuorumLease::default());
        let lease_task = tokio::spawn(quorum_lease.clone().run(raft.clone()));
        let mut controller = Controller {
            node_id,
            raft,
            state_machine,
            server,
            forward: tokio::sync::Mutex::new(BTreeMap::new()),
            liveness_task,
            heartbeat: tokio::sync::Mutex::new(None),
            liveness,
            transport,
            stopping: std::sync::atomic::AtomicBool::new(false),
            quorum_lease,
            lease_task,
            started_pristine: pristine,
            initialized_here: false,
        };
        let lowest = voters.keys().next().copied();
        if pristine && lowest == Some(node_id) {
            // An empty first voter is a new cluster's, unless the others already lead one (its
            // disk was replaced): then it must join that quorum, not found another.
            if let Some(leader) = existing_leader(node_id, &controller.transport, &voters).await {
                tracing::warn!(node_id, leader, "the metadata quorum already runs; not initializing it again");
            } else {
                let members: BTreeMap<u64, BasicNode> =
                    voters.iter().map(|(id, addr)| (*id, BasicNode { addr: addr.clone() })).collect();
                tracing::info!(node_id, ?voters, "initializing metadata quorum");
                controller.raft.initialize(members).await.map_err(|e| ControllerError::Raft(e.to_string()))?;
                controller.initialized_here = true;
            }
        }
        Ok(controller)
    }

    /// This controller's id.
    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// Commits `cmd` and returns its response.
    ///
    /// On a follower the command is forwarded once to the current leader over the controller
    /// RPC channel; if no leader is known (election in progress) or the leader moved on in the
    /// meantime, [`ControllerError::NotLeader`] is returned and the caller retries. A forwarding
    /// network error leaves the outcome unknown, so commands should be safe to retry (CreateTopic
    /// carries its topic id for that reason).
    pub async fn propose(&self, cmd: MetadataCommand) -> Result<MetadataResponse, ControllerError> {
        match self.raft.client_write(cmd.clone()).await {
            Ok(resp) => resp.data.map_err(ControllerError::Rejected),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => match (f.leader_id, f.leader_node) {
                (Some(id), Some(node)) if id != self.node_id => self.forward(id, node.addr, cmd).await,
                (id, node) => Err(ControllerError::NotLeader { leader_id: id, leader_addr: node.map(|n| n.addr) }),
            },
            Err(e) => Err(ControllerError::Raft(e.to_string())),
        }
    }

    async fn forward(
        &self,
        leader_id: u64,
        addr: String,
        cmd: MetadataCommand,
    ) -> Result<MetadataResponse, ControllerError> {
        let resp = self
            .call_leader(leader_id, &addr, &RpcRequest::Propose(cmd), FORWARD_TIMEOUT)
            .await
            .map_err(|source| ControllerError::Forward { leader_id, source })?;
        match resp {
            RpcResponse::Propose(Ok(result)) => result.map_err(ControllerError::Rejected),
            RpcResponse::Propose(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(ControllerError::NotLeader { leader_id: f.leader_id, leader_addr: f.leader_node.map(|n| n.addr) })
            }
            RpcResponse::Propose(Err(e)) => Err(ControllerError::Raft(format!("leader {leader_id} at {addr}: {e}"))),
            _ => Err(ControllerError::Forward { leader_id, source: NetError::UnexpectedResponse { addr } }),
        }
    }

    /// Sends `request` to the leader `leader_id` at `addr` on the pooled connection to it.
    async fn call_leader(
        &self,
        leader_id: u64,
        addr: &str,
        request: &RpcRequest,
        timeout: Duration,
    ) -> Result<RpcResponse, NetError> {
        let mut clients = self.forward.lock().await;
        let client = clients
            .entry(leader_id)
            .or_insert_with(|| RpcClient::new(leader_id, addr.to_string(), self.transport.clone()));
        if client.addr() != addr {
            *client = RpcClient::new(leader_id, addr.to_string(), self.transport.clone());
        }
        client.call(request, timeout).await
    }

    /// A copy of the locally applied metadata. It may lag the leader by the entries not yet
    /// replicated/applied here; it never shows uncommitted changes.
    pub fn metadata(&self) -> MetadataState {
        self.state_machine.state()
    }

    /// The locally applied metadata without copying it.
    pub fn shared_metadata(&self) -> Arc<MetadataState> {
        self.state_machine.shared_state()
    }

    /// Watch of the locally applied metadata.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Arc<MetadataState>> {
        self.state_machine.subscribe()
    }

    /// Sends this broker's heartbeat to the active controller (over the controller RPC, also
    /// when that is this process).
    pub async fn send_heartbeat(&self, req: HeartbeatRequest) -> Result<HeartbeatReply, ControllerError> {
        if self.is_leader() {
            // No network to ourselves: a single node's stored address may be an old ephemeral port.
            return Ok(self.liveness.heartbeat(&self.raft, &self.state_machine, req).await);
        }
        let Some((leader_id, addr)) = self.leader_address() else {
            return Ok(HeartbeatReply::NotLeader { leader_id: None });
        };
        let mut slot = self.heartbeat.lock().await;
        // A new leader may live at an old leader's address (or the other way round).
        if slot.as_ref().is_some_and(|c| c.addr() != addr || c.node() != leader_id) {
            *slot = None;
        }
        let client = slot.get_or_insert_with(|| RpcClient::new(leader_id, addr.clone(), self.transport.clone()));
        match client.call(&RpcRequest::BrokerHeartbeat(req), FORWARD_TIMEOUT).await {
            Ok(RpcResponse::BrokerHeartbeat(reply)) => Ok(reply),
            Ok(_) => Err(ControllerError::Forward { leader_id, source: NetError::UnexpectedResponse { addr } }),
            Err(source) => Err(ControllerError::Forward { leader_id, source }),
        }
    }

    /// The active controller's id and RPC address, as known locally.
    pub fn leader_address(&self) -> Option<(u64, String)> {
        let metrics = self.raft.metrics().borrow().clone();
        let leader = metrics.current_leader?;
        let node = metrics.membership_config.membership().get_node(&leader)?.clone();
        Some((leader, node.addr))
    }

    /// Index of the last log entry applied to the local state machine.
    pub fn applied_index(&self) -> Option<u64> {
        self.state_machine.last_applied_index()
    }

    /// The current leader as known locally.
    pub fn leader(&self) -> Option<u64> {
        self.raft.metrics().borrow().current_leader
    }

    /// The active controller to name to clients: the leader as known locally, except this node
    /// when it has not confirmed a majority lately (cut off, it only believes it leads).
    pub fn active_controller(&self) -> Option<u64> {
        let metrics = self.raft.metrics().borrow().clone();
        let confirmed_ago = self.quorum_lease.confirmed_ago(metrics.current_term);
        quorum_lease::acting_controller(metrics.current_leader, self.node_id, confirmed_ago)
    }

    /// Resolves when Raft stopped on a fatal error (a failed write or fsync of the metadata
    /// log) or its task died (a panic): the description. Pending forever while Raft runs or
    /// once [`Controller::shutdown`] was called.
    pub async fn fatal_error(&self) -> String {
        let mut metrics = self.raft.metrics();
        loop {
            if let Err(fatal) = &metrics.borrow_and_update().running_state {
                if !matches!(fatal, openraft::error::Fatal::Stopped) {
                    return fatal.to_string();
                }
            }
            if metrics.changed().await.is_err() {
                // Raft's core task is gone: a stop asked for, or a panic (which publishes no
                // error: the task that would publish it is the one that died).
                if self.stopping.load(std::sync::atomic::Ordering::Acquire) {
                    return std::future::pending().await;
                }
                return "the metadata quorum member's Raft task ended unexpectedly (a panic, logged above)".into();
            }
        }
    }

    /// The quorum as this controller sees it when it leads; None elsewhere.
    pub fn local_quorum(&self) -> Option<QuorumDescription> {
        quorum_status::describe(&self.raft.metrics().borrow())
    }

    /// The quorum as its leader sees it: from here when this controller leads, else asked of the
    /// leader.
    pub async fn describe_quorum(&self) -> Result<QuorumDescription, ControllerError> {
        if let Some(description) = self.local_quorum() {
            return Ok(description);
        }
        let Some((leader_id, addr)) = self.leader_address() else {
            return Err(ControllerError::NotLeader { leader_id: None, leader_addr: None });
        };
        match self.call_leader(leader_id, &addr, &RpcRequest::DescribeQuorum, FORWARD_TIMEOUT).await {
            Ok(RpcResponse::DescribeQuorum(Some(description))) => Ok(description),
            Ok(RpcResponse::DescribeQuorum(None)) => {
                Err(ControllerError::NotLeader { leader_id: None, leader_addr: None })
            }
            Ok(_) => Err(ControllerError::Forward { leader_id, source: NetError::UnexpectedResponse { addr } }),
            Err(source) => Err(ControllerError::Forward { leader_id, source }),
        }
    }

    /// Changes the voters (on the leader; asked of it from elsewhere); returns the voters after.
    pub async fn change_voters(&self, change: VoterChange) -> Result<Vec<u64>, ControllerError> {
        if self.is_leader() {
            return membership::apply(&self.raft, change).await.map_err(ControllerError::Voters);
        }
        let Some((leader_id, addr)) = self.leader_address() else {
            return Err(ControllerError::NotLeader { leader_id: None, leader_addr: None });
        };
        // A membership change commits twice (joint, then final): allow it the time of both.
        match self.call_leader(leader_id, &addr, &RpcRequest::ChangeVoters(change), FORWARD_TIMEOUT * 4).await {
            Ok(RpcResponse::ChangeVoters(result)) => result.map_err(ControllerError::Voters),
            Ok(_) => Err(ControllerError::Forward { leader_id, source: NetError::UnexpectedResponse { addr } }),
            Err(source) => Err(ControllerError::Forward { leader_id, source }),
        }
    }

    /// Whether this controller is the leader.
    pub fn is_leader(&self) -> bool {
        self.leader() == Some(self.node_id)
    }

    /// Stops Raft and the RPC listener. The data directory can then be reopened with `start`.
    pub async fn shutdown(mut self) -> Result<(), ControllerError> {
        self.stopping.store(true, std::sync::atomic::Ordering::Release);
        // Stop serving first so peers see us gone and cannot feed Raft while it stops; wait for
        // the task so the listening socket is closed and the address can be bound again.
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
        self.liveness_task.abort();
        self.lease_task.abort();
        self.raft.shutdown().await.map_err(|e| ControllerError::Raft(e.to_string()))
    }
}

/// openraft settings of the metadata quorum.
fn raft_config() -> Config {
    Config {
        cluster_name: "millrace-metadata".into(),
        // LAN timings: a lost leader is replaced within about a second.
        heartbeat_interval: 100,
        election_timeout_min: 300,
        election_timeout_max: 600,
        install_snapshot_timeout: 2000,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(1000),
        max_in_snapshot_log_to_keep: 200,
        ..Default::default()
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        // The listener task holds a Raft handle; without this a dropped controller keeps serving.
        if let Some(server) = &self.server {
            server.abort();
        }
        self.liveness_task.abort();
        self.lease_task.abort();
    }
}
