//! This broker's link to the metadata quorum: it runs a controller (voter or non-voting member),
//! registers the broker, heartbeats, and offers the replicated metadata and proposals to the rest
//! of the broker.
//!
//! - [`placement`]: replica assignment of new partitions.
//! - [`topics`]: topic administration (create, delete, add partitions) through the quorum.

pub mod placement;
pub mod topics;

use crate::controller::network::{RpcListener, Transport};
use crate::controller::BrokerEndpoint;
use crate::controller::{
    Controller, ControllerError, HeartbeatReply, HeartbeatRequest, MetadataCommand, MetadataResponse, MetadataState,
    QuorumDescription, VoterChange,
};
use crate::error::BrokerError;
use crate::log_dirs::LogDirs;
use millrace_config::BrokerConfig;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Directory of the metadata log, under `<data-dir>/meta/` (KRaft's name for it): outside the
/// directories named `<topic>-<partition>`, so no topic can ever be stored over it.
pub const METADATA_DIR: &str = "__cluster_metadata-0";

/// `<data-dir>/meta/__cluster_metadata-0`, moving a store left at the data dir's top level by
/// earlier versions (where a topic named `__cluster_metadata` would have landed on it).
fn metadata_dir(data_dir: &std::path::Path) -> Result<std::path::PathBuf, BrokerError> {
    let meta = data_dir.join("meta");
    let dir = meta.join(METADATA_DIR);
    let old = data_dir.join(METADATA_DIR);
    // A partition directory has partition.metadata; the quorum's store never does.
    if !dir.exists() && old.is_dir() && !old.join(crate::catalog::PARTITION_METADATA).exists() {
        std::fs::create_dir_all(&meta)
            .map_err(|e| BrokerError::Io { context: format!("creating {}", meta.display()), source: e })?;
        std::fs::rename(&old, &dir).map_err(|e| BrokerError::Io {
            context: format!("moving the metadata store {} to {}", old.display(), dir.display()),
            source: e,
        })?;
        tracing::info!(from = %old.display(), to = %dir.display(), "moved the metadata quorum's store");
    }
    Ok(dir)
}

/// The replicated metadata as the rest of the broker uses it: read the applied state, propose
/// changes. [`ClusterLink`] is the real one; unit tests use an in-memory state machine.
pub trait Quorum: Send + Sync {
    /// This broker's id.
    fn node_id(&self) -> i32;
    /// The locally applied cluster metadata.
    fn metadata(&self) -> Arc<MetadataState>;
    /// The active controller's id, -1 if unknown.
    fn controller_id(&self) -> i32;
    /// Proposes `cmd`, retrying while no controller is reachable, for up to `timeout`. A command
    /// the metadata rules reject fails at once with [`ControllerError::Rejected`].
    fn propose(
        &self,
        cmd: MetadataCommand,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<MetadataResponse, ControllerError>> + Send;
    /// How the metadata quorum stands, as its leader sees it (DescribeQuorum).
    fn describe_quorum(&self) -> impl std::future::Future<Output = Result<QuorumDescription, ControllerError>> + Send;
    /// Changes the metadata quorum's voters; the voters after the change.
    fn change_voters(
        &self,
        change: VoterChange,
    ) -> impl std::future::Future<Output = Result<Vec<u64>, ControllerError>> + Send;
}

impl Quorum for ClusterLink {
    fn node_id(&self) -> i32 {
        self.node_id
    }
    fn metadata(&self) -> Arc<MetadataState> {
        ClusterLink::metadata(self)
    }
    fn controller_id(&self) -> i32 {
        ClusterLink::controller_id(self)
    }
    fn propose(
        &self,
        cmd: MetadataCommand,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<MetadataResponse, ControllerError>> + Send {
        ClusterLink::propose(self, cmd, timeout)
    }
    fn describe_quorum(&self) -> impl std::future::Future<Output = Result<QuorumDescription, ControllerError>> + Send {
        self.controller.describe_quorum()
    }
    fn change_voters(
        &self,
        change: VoterChange,
    ) -> impl std::future::Future<Output = Result<Vec<u64>, ControllerError>> + Send {
        self.controller.change_voters(change)
    }
}

impl Quorum for crate::Broker {
    fn node_id(&self) -> i32 {
        self.cluster.node_id
    }
    fn metadata(&self) -> Arc<MetadataState> {
        self.cluster.metadata()
    }
    fn controller_id(&self) -> i32 {
        self.cluster.controller_id()
    }
    fn propose(
        &self,
        cmd: MetadataCommand,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<MetadataResponse, ControllerError>> + Send {
        self.cluster.propose(cmd, timeout)
    }
    fn describe_quorum(&self) -> impl std::future::Future<Output = Result<QuorumDescription, ControllerError>> + Send {
        self.cluster.controller.describe_quorum()
    }
    fn change_voters(
        &self,
        change: VoterChange,
    ) -> impl std::future::Future<Output = Result<Vec<u64>, ControllerError>> + Send {
        self.cluster.controller.change_voters(change)
    }
}

/// This broker's membership in the cluster.
pub struct ClusterLink {
    /// This broker's id.
    pub node_id: i32,
    controller: Controller,
    heartbeat_interval: Duration,
    /// Epoch of the current registration, -1 before the first.
    broker_epoch: AtomicI64,
    /// Where other brokers reach this broker (the inter-broker listener).
    advertised: (String, u16),
    /// Every listener's advertised endpoint.
    listeners: Vec<BrokerEndpoint>,
    /// The broker's log directories, whose offline replicas each heartbeat reports.
    log_dirs: std::sync::OnceLock<Arc<LogDirs>>,
    /// When the active controller last answered a heartbeat (monotonic: readiness must not flip
    /// when the wall clock steps).
    last_heartbeat: std::sync::Mutex<Option<std::time::Instant>>,
    /// `cluster.broker_session_timeout`: past it without an answer, the controller fences us.
    session_timeout: Duration,
}

impl ClusterLink {
    /// Starts this broker's controller on `listener`: with `voters` configured, as a member of that
    /// quorum; without (and without a listener), as the sole voter of a single-node quorum.
    pub async fn start(
        config: &BrokerConfig,
        listener: Option<RpcListener>,
        transport: Transport,
        advertised: (String, u16),
        listeners: Vec<BrokerEndpoint>,
    ) -> Result<ClusterLink, BrokerError> {
        let local = listener
            .as_ref()
            .map(RpcListener::local_addr)
            .transpose()
            .map_err(|e| BrokerError::Io { context: "reading the controller listener address".into(), source: e })?;
        let node_id = u64::try_from(config.node_id)
            .map_err(|_| BrokerError::Metadata(format!("node_id {} must not be negative", config.node_id)))?;
        let mut voters = config.voter_map();
        // A quorum of one never dials itself; its recorded address only names it.
        let controller_addr = format!("{}:{}", advertised.0, local.map_or(0, |l| l.port()));
        if voters.is_empty() {
            voters = BTreeMap::from([(node_id, controller_addr.clone())]);
        }
        let dir = metadata_dir(&config.data_dir)?;
        let controller = Controller::start_for_broker(
            node_id,
            listener,
            transport,
            voters.clone(),
            controller_addr,
            &dir,
            crate::controller::Sessions {
                timeout: config.controller.broker_session_timeout.as_duration(),
                heartbeat_interval: Some(config.controller.broker_heartbeat_interval.as_duration()),
            },
        )
        .await
        .map_err(|e| BrokerError::Metadata(format!("starting the metadata quorum member in {}: {e}", dir.display())))?;
        controller.set_auto_leader_rebalance(config.controller.auto_leader_rebalance);
        match local {
            Some(local) => tracing::info!(node_id, controller = %local, ?voters, "metadata quorum member started"),
            None => tracing::info!(node_id, "single-node metadata quorum started in-process (no controller listener)"),
        }
        Ok(ClusterLink {
            node_id: config.node_id,
            controller,
            heartbeat_interval: config.controller.broker_heartbeat_interval.as_duration(),
            broker_epoch: AtomicI64::new(-1),
            advertised,
            listeners,
            log_dirs: std::sync::OnceLock::new(),
            last_heartbeat: std::sync::Mutex::new(None),
            session_timeout: config.controller.broker_session_timeout.as_duration(),
        })
    }

    /// The locally applied cluster metadata.
    pub fn metadata(&self) -> Arc<MetadataState> {
        self.controller.shared_metadata()
    }

    /// Watch of the locally applied metadata.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataState>> {
        self.controller.subscribe()
    }

    /// The active controller's id, -1 if unknown or this node leads without having confirmed a
    /// majority lately (Metadata's `controller_id`).
    pub fn controller_id(&self) -> i32 {
        self.controller.active_controller().and_then(|id| i32::try_from(id).ok()).unwrap_or(-1)
    }

    /// Metadata log entries the slowest voter is behind, where this broker's controller leads
    /// the quorum; 0 elsewhere (only the leader knows).
    pub fn quorum_max_follower_lag(&self) -> i64 {
        self.controller.local_quorum().map_or(0, |q| q.max_voter_lag())
    }

    /// Epoch of this broker's current registration, -1 before it registered.
    pub fn broker_epoch(&self) -> i64 {
        self.broker_epoch.load(Ordering::Acquire)
    }

    /// Since the active controller last answered this broker's heartbeat; None before it ever did.
    pub fn since_heartbeat(&self) -> Option<Duration> {
        self.last_heartbeat.lock().unwrap_or_else(|p| p.into_inner()).map(|at| at.elapsed())
    }

    /// The broker session timeout the controller fences after.
    pub fn session_timeout(&self) -> Duration {
        self.session_timeout
    }

    /// Whether this broker is registered and unfenced in its local metadata.
    pub fn is_active(&self) -> bool {
        let epoch = self.broker_epoch.load(Ordering::Acquire);
        self.metadata().brokers.get(&self.node_id).is_some_and(|b| b.epoch == epoch && !b.fenced)
    }

    /// Proposes `cmd`, retrying while there is no reachable active controller, for up to `timeout`.
    /// A command the metadata rules reject fails at once with [`ControllerError::Rejected`].
    pub async fn propose(&self, cmd: MetadataCommand, timeout: Duration) -> Result<MetadataResponse, ControllerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.controller.propose(cmd.clone()).await {
                Ok(r) => return Ok(r),
                Err(e @ ControllerError::Rejected(_)) => return Err(e),
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(e) => {
                    tracing::debug!(error = %e, "proposal not taken; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Waits until the local metadata satisfies `ready`, for up to `timeout`.
    pub async fn wait_metadata(&self, timeout: Duration, ready: impl Fn(&MetadataState) -> bool) -> bool {
        let mut rx = self.subscribe();
        let wait = async {
            loop {
                if ready(&rx.borrow_and_update()) {
                    return;
                }
                if rx.changed().await.is_err() {
                    return std::future::pending().await;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    /// Resolves when the metadata quorum member stopped on a fatal error; see
    /// [`Controller::fatal_error`].
    pub async fn fatal_error(&self) -> String {
        self.controller.fatal_error().await
    }

    /// Lets heartbeats report the replicas in `log_dirs` that are offline (set once, when the
    /// broker opens its storage).
    pub fn attach_log_dirs(&self, log_dirs: Arc<LogDirs>) {
        if self.log_dirs.set(log_dirs).is_err() {
            tracing::warn!("log directories attached twice; keeping the first");
        }
    }

    /// Registers this broker and heartbeats until `shutdown`; registers again whenever the
    /// controller asks (e.g. after this broker was unregistered or the controller lost track).
    pub async fn run_membership(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            let register = MetadataCommand::RegisterBroker {
                id: self.node_id,
                host: self.advertised.0.clone(),
                port: self.advertised.1,
                rack: None,
                listeners: self.listeners.clone(),
            };
            let epoch = tokio::select! {
                r = self.propose(register, Duration::from_secs(3600)) => match r {
                    Ok(MetadataResponse::BrokerRegistered { broker_epoch }) => broker_epoch,
                    Ok(other) => {
                        tracing::error!(?other, "unexpected answer to broker registration");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "broker registration failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                },
                _ = shutdown.changed() => return,
            };
            self.broker_epoch.store(epoch, Ordering::Release);
            tracing::debug!(node_id = self.node_id, broker_epoch = epoch, "registration committed");
            let mut announced = false;
            let mut tick = tokio::time::interval(self.heartbeat_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.changed() => return,
                }
                let caught_up = self.metadata().brokers.get(&self.node_id).is_some_and(|b| b.epoch == epoch);
                let offline_replicas = self.log_dirs.get().map(|d| d.offline_replicas()).unwrap_or_default();
                let request =
                    HeartbeatRequest { broker_id: self.node_id, broker_epoch: epoch, caught_up, offline_replicas };
                match self.controller.send_heartbeat(request).await {
                    Ok(HeartbeatReply::Reregister) => {
                        tracing::warn!(node_id = self.node_id, "controller asked this broker to register again");
                        break;
                    }
                    // An answer counts for readiness only from a controller that holds its quorum
                    // lease: a leader cut off from the others still answers its own heartbeats.
                    Ok(HeartbeatReply::Ok { .. }) if self.controller_id() >= 0 => {
                        *self.last_heartbeat.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some(std::time::Instant::now());
                    }
                    Ok(HeartbeatReply::Ok { .. }) => {}
                    Ok(HeartbeatReply::NotLeader { .. }) => {}
                    Err(e) => tracing::debug!(error = %e, "heartbeat failed"),
                }
                if !announced && self.is_active() {
                    announced = true;
                    tracing::info!(node_id = self.node_id, broker_epoch = epoch, "broker registered and unfenced");
                }
            }
        }
    }

    /// Stops the controller.
    pub async fn shutdown(self) {
        if let Err(e) = self.controller.shutdown().await {
            tracing::warn!(error = %e, "stopping the metadata quorum member");
        }
    }
}
