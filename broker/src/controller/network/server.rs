//! The serving side: [`RpcListener`] (the listener with its access rules and transport) and
//! [`serve`], which admits allowed (and, over mutual TLS, authenticated) peers within the
//! connection limits and answers each frame from the local `Raft`.

use super::access::PeerAccess;
use super::frame::{decode, read_body, read_len, write_frame};
use super::messages::{AddLearnerRefusal, RpcRequest, RpcResponse};
use super::transport::{claimed_node, AcceptError, Claim, Stream, Transport};
use super::{FRAME_TIMEOUT, IDLE_TIMEOUT, MAX_CONNECTIONS, RESOLVE_INTERVAL, RESOLVE_ON_MISMATCH_EVERY};
use crate::controller::liveness::{HeartbeatReply, Liveness};
use crate::controller::{StateMachineStore, TypeConfig};
use crate::metrics::ListenerMetrics;
use crate::server::{ConnectionLimiter, ConnectionSlot};
use openraft::{BasicNode, Raft};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// The controller listener with its access rules and transport.
pub struct RpcListener {
    listener: TcpListener,
    access: Arc<PeerAccess>,
    transport: Transport,
    metrics: ListenerMetrics,
}

impl RpcListener {
    /// Resolves `access`'s host names once, so the first peers are recognised.
    pub async fn new(
        listener: TcpListener,
        access: PeerAccess,
        transport: Transport,
        metrics: ListenerMetrics,
    ) -> RpcListener {
        access.resolve().await;
        RpcListener { listener, access: Arc::new(access), transport, metrics }
    }

    /// Where it listens.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
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
    let RpcListener { listener, access, transport, metrics } = listener;
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
                    let transport = transport.clone();
                    conns.spawn(async move {
                        let (stream, node) = match transport.accept(stream).await {
                            Ok(accepted) => accepted,
                            Err(AcceptError::ClosedAtOnce) => return,
                            Err(e) => {
                                let why = format!("not authenticated as a node of this cluster: {e}");
                                slot.limiter().refuse(peer, "unauthenticated", &why);
                                return;
                            }
                        };
                        let mut heartbeats_from = None;
                        if let Err(e) = serve_conn(stream, node, served.clone(), &slot, &mut heartbeats_from).await {
                            tracing::debug!(%peer, error = %e, "controller connection closed");
                        }
                        // A broker's process that dies takes its connections with it: a hint
                        // worth a probe long before its session runs out.
                        if let Some(id) = heartbeats_from {
                            served.liveness.connection_lost(id);
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

/// Answers `stream`'s frames; `node` is the node its certificate names (over mutual TLS), and
/// every request must speak for that node or for nobody in particular. `heartbeats_from` is set
/// to the broker whose heartbeats this connection carries.
async fn serve_conn(
    mut stream: Stream,
    node: Option<u64>,
    served: Arc<Served>,
    slot: &ConnectionSlot,
    heartbeats_from: &mut Option<i32>,
) -> std::io::Result<()> {
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
        if let Some(node) = node {
            let claim = claimed_node(&req);
            if claim != Claim::Nobody && claim != Claim::Node(node) {
                slot.limiter().closed("wrong_node");
                tracing::warn!(certificate = node, ?claim, "controller peer speaks for another node; closing");
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("node {node}'s certificate used for {claim:?}"),
                ));
            }
        }
        let resp = match req {
            RpcRequest::AppendEntries(r) => RpcResponse::AppendEntries(raft.append_entries(r).await),
            RpcRequest::Vote(r) => RpcResponse::Vote(raft.vote(r).await),
            RpcRequest::InstallSnapshot(r) => RpcResponse::InstallSnapshot(raft.install_snapshot(r).await),
            RpcRequest::Propose(cmd) => RpcResponse::Propose(raft.client_write(cmd).await.map(|r| r.data)),
            RpcRequest::BrokerHeartbeat(hb) => {
                let id = hb.broker_id;
                let reply = served.liveness.heartbeat(raft, &served.machine, hb).await;
                if matches!(reply, HeartbeatReply::Ok { .. }) {
                    *heartbeats_from = Some(id);
                }
                RpcResponse::BrokerHeartbeat(reply)
            }
            RpcRequest::AddLearner { id, addr } => RpcResponse::AddLearner(add_learner(raft, id, addr).await),
            RpcRequest::ChangeVoters(change) => {
                RpcResponse::ChangeVoters(crate::controller::membership::apply(raft, change).await)
            }
            RpcRequest::DescribeQuorum => {
                RpcResponse::DescribeQuorum(crate::controller::quorum_status::describe(&raft.metrics().borrow()))
            }
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
    let membership = metrics.membership_config.membership();
    if membership.voter_ids().any(|v| v == id) {
        return Ok(());
    }
    if membership.learner_ids().any(|l| l == id) {
        if membership.get_node(&id).is_some_and(|n| n.addr == addr) {
            return Ok(());
        }
        // A non-voting member back at another address (a replaced machine): point the log there.
        tracing::info!(node = id, %addr, "a non-voting metadata member moved; updating its address");
        let nodes = std::collections::BTreeMap::from([(id, BasicNode { addr })]);
        return raft
            .change_membership(openraft::ChangeMembers::SetNodes(nodes), true)
            .await
            .map(|_| ())
            .map_err(|e| AddLearnerRefusal { reason: e.to_string(), leader: None });
    }
    tracing::info!(node = id, %addr, "adding a non-voting metadata member");
    // Non-blocking: the learner catches up in the background; the caller waits for its own
    // registration to show up in its local metadata anyway.
    raft.add_learner(id, BasicNode { addr }, false)
        .await
        .map(|_| ())
        .map_err(|e| AddLearnerRefusal { reason: e.to_string(), leader: None })
}
