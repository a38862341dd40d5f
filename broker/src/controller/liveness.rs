//! Broker liveness on the active controller (KRaft's broker heartbeats and session timeout).
//!
//! Heartbeats are RPCs, not Raft entries: only their consequences are logged. The active
//! controller remembers when each broker last heartbeated; one whose session expires is fenced
//! (`FenceBroker`: out of every ISR, leadership moved), and a fenced broker that heartbeats with its
//! metadata caught up is unfenced. Leases live in memory only, so a newly elected controller gives
//! every broker a full session before fencing anyone.
//!
//! The decisions ([`Leases`], [`preferred_leader_elections`], [`stale_learners`]) are pure; the
//! [`Liveness`] shell reads the clock and makes the Raft proposals.

use crate::controller::state_machine::{MetadataCommand, MetadataState};
use crate::controller::{StateMachineStore, TypeConfig};
use openraft::Raft;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a broker tells the active controller in a heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeartbeatRequest {
    /// Broker id.
    pub broker_id: i32,
    /// The epoch its registration got.
    pub broker_epoch: i64,
    /// Its local metadata includes its own registration (Kafka: caught up with the metadata
    /// log), so it may be unfenced.
    pub caught_up: bool,
    /// `(topic, partition)` of its replicas in failed log directories (Kafka's offline log
    /// dirs in the heartbeat); absent from brokers that predate it.
    #[serde(default)]
    pub offline_replicas: Vec<(String, i32)>,
}

/// The controller's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeartbeatReply {
    /// Lease renewed; whether the broker is (still) fenced.
    Ok {
        /// Fenced brokers lead nothing and are in no ISR.
        fenced: bool,
    },
    /// The controller does not know this broker incarnation (never registered, unregistered,
    /// or registered again since): register anew.
    Reregister,
    /// This controller is not the active one.
    NotLeader {
        /// The active controller, if known.
        leader_id: Option<u64>,
    },
}

/// How often the active controller moves leadership back to preferred replicas (Kafka's
/// `leader.imbalance.check.interval.seconds`, much shorter here: a returning broker should take
/// its share of the load back within seconds).
const PREFERRED_LEADER_INTERVAL: Duration = Duration::from_secs(5);

/// Elections that give each partition back to its preferred (first) replica where that replica
/// is unfenced, in sync, and not the leader already (Kafka's auto leader rebalance).
pub fn preferred_leader_elections(state: &MetadataState) -> Vec<MetadataCommand> {
    let mut out = Vec::new();
    for (name, topic) in &state.topics {
        for (index, p) in topic.partitions.iter().enumerate() {
            let Some(&preferred) = p.replicas.first() else { continue };
            let live =
                state.brokers.get(&preferred).is_some_and(|b| !b.fenced) && !p.offline_replicas.contains(&preferred);
            if p.leader != preferred && live && p.isr.contains(&preferred) {
                out.push(MetadataCommand::ElectLeader {
                    topic: name.clone(),
                    partition: index as i32,
                    leader: preferred,
                    leader_epoch: p.leader_epoch,
                });
            }
        }
    }
    out
}

/// The replicas a heartbeat reports offline that the metadata does not yet mark so (and that
/// are still this broker's): what a `MarkReplicasOffline` proposal should carry.
pub fn newly_offline(state: &MetadataState, req: &HeartbeatRequest) -> Vec<(String, i32)> {
    req.offline_replicas
        .iter()
        .filter(|(topic, index)| {
            let partition =
                state.topics.get(topic).and_then(|t| usize::try_from(*index).ok().and_then(|i| t.partitions.get(i)));
            partition
                .is_some_and(|p| p.replicas.contains(&req.broker_id) && !p.offline_replicas.contains(&req.broker_id))
        })
        .cloned()
        .collect()
}

/// What a heartbeat leads to, decided by [`Leases::heartbeat`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatVerdict {
    /// Unknown broker or stale incarnation: it must register again.
    Reregister,
    /// Lease renewed; the broker stays as it is.
    Renewed {
        /// Whether it is fenced.
        fenced: bool,
    },
    /// Lease renewed, and the fenced broker has caught up: propose `UnfenceBroker`.
    Unfence,
}

/// The brokers' leases as the active controller sees them, without a clock: every decision
/// takes `now` (a monotonic instant, so wall-clock steps never fence anyone).
#[derive(Debug)]
pub struct Leases {
    session_timeout: Duration,
    /// A heartbeat this late makes a broker worth probing (see [`Leases::to_probe`]); None: no
    /// probing, sessions alone decide.
    overdue: Option<Duration>,
    /// broker id -> last heartbeat.
    last_seen: HashMap<i32, Instant>,
    /// Brokers heard from in this term; the others are probed at once.
    heard: HashSet<i32>,
    /// Brokers whose heartbeat connection closed since their last heartbeat.
    disconnected: HashSet<i32>,
    /// broker id -> when it was last probed, so a suspect is probed at most every
    /// [`PROBE_INTERVAL`].
    probed: HashMap<i32, Instant>,
    /// The Raft term in which the leases were last reset (a new term means a new active controller).
    term: Option<u64>,
}

/// How often one suspect broker is probed.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(250);

impl Leases {
    /// No leases yet; each expires `session_timeout` after its last heartbeat, and a broker
    /// whose heartbeat is `overdue` is probed.
    pub fn new(session_timeout: Duration, overdue: Option<Duration>) -> Leases {
        Leases {
            session_timeout,
            overdue,
            last_seen: HashMap::new(),
            heard: HashSet::new(),
            disconnected: HashSet::new(),
            probed: HashMap::new(),
            term: None,
        }
    }

    /// Forgets every lease when `term` differs from the last one seen: a new active controller
    /// knows nothing of past heartbeats, so everyone gets a full session.
    pub fn observe_term(&mut self, term: u64) {
        if self.term != Some(term) {
            self.term = Some(term);
            self.last_seen.clear();
            self.heard.clear();
            self.disconnected.clear();
            self.probed.clear();
        }
    }

    /// The connection `id`'s heartbeats came over closed: if its process died, the operating
    /// system closed it, so it is worth a probe right away.
    pub fn connection_lost(&mut self, id: i32) {
        self.disconnected.insert(id);
    }

    /// Unfenced brokers to probe now (each at most every [`PROBE_INTERVAL`]): those whose
    /// heartbeat connection closed, those not heard from in this term (the last active
    /// controller may have died with one of them), and those whose heartbeat is `overdue`. A
    /// probe only asks whether anything listens at the broker's address; see
    /// [`Leases::confirm_gone`].
    pub fn to_probe(&mut self, state: &MetadataState, now: Instant) -> Vec<i32> {
        let mut out = Vec::new();
        let Some(overdue) = self.overdue else { return out };
        for b in state.brokers.values().filter(|b| !b.fenced) {
            let late = self.last_seen.get(&b.id).is_some_and(|&seen| now.saturating_duration_since(seen) > overdue);
            let suspect = late || !self.heard.contains(&b.id) || self.disconnected.contains(&b.id);
            let due = self.probed.get(&b.id).is_none_or(|&at| now.saturating_duration_since(at) >= PROBE_INTERVAL);
            if suspect && due {
                self.probed.insert(b.id, now);
                out.push(b.id);
            }
        }
        out
    }

    /// A probe started at `started` found nothing listening at broker `id`'s address: whether to
    /// fence it now. Not when it heartbeated since (it came back) or is fenced already.
    pub fn confirm_gone(&self, state: &MetadataState, id: i32, started: Instant) -> bool {
        let unfenced = state.brokers.get(&id).is_some_and(|b| !b.fenced);
        let heard_since = self.last_seen.get(&id).is_some_and(|&seen| seen >= started) && self.heard.contains(&id);
        unfenced && !heard_since
    }

    /// A heartbeat received at `now`, judged against the committed metadata `state`.
    pub fn heartbeat(&mut self, state: &MetadataState, req: &HeartbeatRequest, now: Instant) -> HeartbeatVerdict {
        let Some(broker) = state.brokers.get(&req.broker_id) else { return HeartbeatVerdict::Reregister };
        if broker.epoch != req.broker_epoch {
            return HeartbeatVerdict::Reregister;
        }
        self.last_seen.insert(req.broker_id, now);
        self.heard.insert(req.broker_id);
        self.disconnected.remove(&req.broker_id);
        if broker.fenced && req.caught_up {
            HeartbeatVerdict::Unfence
        } else {
            HeartbeatVerdict::Renewed { fenced: broker.fenced }
        }
    }

    /// Unfenced brokers of `state` whose session expired by `now`, to fence. A broker never
    /// seen (this term) starts its session now rather than being fenced at once.
    pub fn expired(&mut self, state: &MetadataState, now: Instant) -> Vec<i32> {
        state
            .brokers
            .values()
            .filter(|b| !b.fenced)
            .filter(|b| {
                let seen = *self.last_seen.entry(b.id).or_insert(now);
                now.saturating_duration_since(seen) > self.session_timeout
            })
            .map(|b| b.id)
            .collect()
    }
}

/// Non-voting quorum members (`learners`) that belong to unregistered brokers and should leave
/// the metadata quorum.
pub fn stale_learners(learners: impl IntoIterator<Item = u64>, state: &MetadataState) -> BTreeSet<u64> {
    learners.into_iter().filter(|id| i32::try_from(*id).is_ok_and(|id| state.removed_brokers.contains(&id))).collect()
}

/// How the active controller judges brokers' liveness.
#[derive(Debug, Clone, Copy)]
pub struct Sessions {
    /// A broker silent this long is fenced.
    pub timeout: Duration,
    /// How often brokers heartbeat; None turns probing off (controllers without real brokers).
    pub heartbeat_interval: Option<Duration>,
}

/// The runtime around [`Leases`]: reads the clock, asks Raft who leads, and proposes the
/// commands the decisions call for.
pub struct Liveness {
    session_timeout: Duration,
    leases: Mutex<Leases>,
    /// `auto.leader.rebalance.enable`.
    auto_rebalance: std::sync::atomic::AtomicBool,
}

/// How long a probe waits for a connection: an answer of any kind (accepted, refused) comes
/// back within a round trip; silence means an unreachable host, which the session covers.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// How often the active controller looks for expired sessions and brokers to probe.
const TICK: Duration = Duration::from_millis(100);

impl Liveness {
    /// Leases expiring after `session_timeout`; brokers heartbeat every `heartbeat_interval`, so
    /// one heard from 1.5 intervals ago has missed a beat and is probed (None: no probing).
    pub fn new(session_timeout: Duration, heartbeat_interval: Option<Duration>) -> Liveness {
        let overdue = heartbeat_interval.map(|beat| (beat * 3 / 2).min(session_timeout));
        Liveness {
            session_timeout,
            leases: Mutex::new(Leases::new(session_timeout, overdue)),
            auto_rebalance: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// The connection broker `id` heartbeated over closed.
    pub fn connection_lost(&self, id: i32) {
        self.leases().connection_lost(id);
    }

    /// Turns the periodic preferred-leader elections on or off.
    pub fn set_auto_rebalance(&self, on: bool) {
        self.auto_rebalance.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    fn leases(&self) -> std::sync::MutexGuard<'_, Leases> {
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Handles one heartbeat on this controller.
    pub async fn heartbeat(
        &self,
        raft: &Raft<TypeConfig>,
        machine: &StateMachineStore,
        req: HeartbeatRequest,
    ) -> HeartbeatReply {
        let metrics = raft.metrics().borrow().clone();
        if metrics.current_leader != Some(metrics.id) {
            return HeartbeatReply::NotLeader { leader_id: metrics.current_leader };
        }
        let state = machine.shared_state();
        let verdict = {
            let mut leases = self.leases();
            leases.observe_term(metrics.current_term);
            leases.heartbeat(&state, &req, Instant::now())
        };
        let offline = newly_offline(&state, &req);
        if verdict != HeartbeatVerdict::Reregister && !offline.is_empty() {
            tracing::warn!(broker = req.broker_id, replicas = ?offline, "broker reports replicas in a failed log directory; moving their leadership");
            let command = MetadataCommand::MarkReplicasOffline {
                id: req.broker_id,
                broker_epoch: req.broker_epoch,
                partitions: offline,
            };
            // Retried by the next heartbeat if it does not commit.
            if let Err(e) = raft.client_write(command).await {
                tracing::warn!(broker = req.broker_id, error = %e, "recording offline replicas failed");
            }
        }
        match verdict {
            HeartbeatVerdict::Reregister => HeartbeatReply::Reregister,
            HeartbeatVerdict::Renewed { fenced } => HeartbeatReply::Ok { fenced },
            HeartbeatVerdict::Unfence => {
                match raft.client_write(MetadataCommand::UnfenceBroker { id: req.broker_id }).await {
                    Ok(_) => {
                        tracing::info!(broker = req.broker_id, "broker unfenced");
                        HeartbeatReply::Ok { fenced: false }
                    }
                    Err(e) => {
                        tracing::warn!(broker = req.broker_id, error = %e, "unfencing broker failed");
                        HeartbeatReply::Ok { fenced: true }
                    }
                }
            }
        }
    }

    /// The active controller's loop: fences expired brokers and moves leadership back to
    /// preferred replicas; runs until the task is aborted.
    pub async fn run(self: std::sync::Arc<Self>, raft: Raft<TypeConfig>, machine: StateMachineStore) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_rebalance = Instant::now();
        let mut probes = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                Some(done) = probes.join_next(), if !probes.is_empty() => {
                    if let Ok(Some((id, started))) = done {
                        self.fence_if_gone(&raft, &machine, id, started).await;
                    }
                    continue;
                }
            }
            let metrics = raft.metrics().borrow().clone();
            if metrics.current_leader == Some(metrics.id) {
                let stale =
                    stale_learners(metrics.membership_config.membership().learner_ids(), &machine.shared_state());
                if !stale.is_empty() {
                    tracing::info!(?stale, "removing unregistered brokers from the metadata quorum");
                    let change = openraft::ChangeMembers::RemoveNodes(stale);
                    if let Err(e) = raft.change_membership(change, false).await {
                        tracing::warn!(error = %e, "removing non-voting members failed");
                    }
                }
            }
            let rebalance = self.auto_rebalance.load(std::sync::atomic::Ordering::Relaxed);
            if rebalance
                && metrics.current_leader == Some(metrics.id)
                && last_rebalance.elapsed() >= PREFERRED_LEADER_INTERVAL
            {
                last_rebalance = Instant::now();
                for cmd in preferred_leader_elections(&machine.shared_state()) {
                    if let Err(e) = raft.client_write(cmd.clone()).await {
                        tracing::debug!(?cmd, error = %e, "preferred leader election failed");
                    }
                }
            }
            let metrics = raft.metrics().borrow().clone();
            if metrics.current_leader != Some(metrics.id) {
                continue;
            }
            let state = machine.shared_state();
            let (expired, suspects) = {
                let mut leases = self.leases();
                leases.observe_term(metrics.current_term);
                let now = Instant::now();
                (leases.expired(&state, now), leases.to_probe(&state, now))
            };
            for id in expired {
                tracing::warn!(broker = id, timeout = ?self.session_timeout, "broker session expired; fencing it");
                if let Err(e) = raft.client_write(MetadataCommand::FenceBroker { id }).await {
                    tracing::warn!(broker = id, error = %e, "fencing broker failed");
                }
            }
            for id in suspects {
                let Some(addr) = probe_address(&metrics, &state, id) else { continue };
                probes.spawn(async move {
                    let started = Instant::now();
                    nothing_listens(&addr).await.then_some((id, started))
                });
            }
        }
    }

    /// Fences broker `id` after a probe started at `started` found nothing listening at its
    /// address, unless it heartbeated since.
    async fn fence_if_gone(&self, raft: &Raft<TypeConfig>, machine: &StateMachineStore, id: i32, started: Instant) {
        let metrics = raft.metrics().borrow().clone();
        if metrics.current_leader != Some(metrics.id) {
            return;
        }
        if !self.leases().confirm_gone(&machine.shared_state(), id, started) {
            return;
        }
        tracing::warn!(
            broker = id,
            "broker missed its heartbeat and its address refuses connections (its process is gone); fencing it"
        );
        if let Err(e) = raft.client_write(MetadataCommand::FenceBroker { id }).await {
            tracing::warn!(broker = id, error = %e, "fencing broker failed");
        }
    }
}

/// Where to probe broker `id`: its metadata-quorum listener, which this controller reaches
/// already to replicate to it, or else the Kafka address it registered.
fn probe_address(
    metrics: &openraft::RaftMetrics<u64, openraft::BasicNode>,
    state: &MetadataState,
    id: i32,
) -> Option<String> {
    // This controller's own broker lives in this process, which is running.
    if u64::try_from(id).ok() == Some(metrics.id) {
        return None;
    }
    let node = u64::try_from(id).ok().and_then(|n| metrics.membership_config.membership().get_node(&n).cloned());
    node.map(|n| n.addr).or_else(|| state.brokers.get(&id).map(|b| format!("{}:{}", b.host, b.port)))
}

/// Whether the host at `addr` answers a connection with a refusal: nothing listens there, so
/// the process that did is gone (its host is up, or nothing would answer at all). A timeout, an
/// unreachable network or a failed name lookup prove nothing; the session timeout decides those.
async fn nothing_listens(addr: &str) -> bool {
    match tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
        Ok(Err(e)) => e.kind() == std::io::ErrorKind::ConnectionRefused,
        Ok(Ok(_)) | Err(_) => false,
    }
}

#[cfg(test)]
mod tests;
