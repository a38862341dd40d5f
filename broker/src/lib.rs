//! millrace broker: a Kafka wire-protocol broker over a segmented, append-only log.
//!
//! Layout:
//! - [`log`]: storage — segments (`<base offset>.log`), mmap'd `.index` / `.timeindex`, recovery,
//!   retention, idempotent-producer state. Pure storage, no networking.
//! - [`partition`]: one partition for the server: the log behind a mutex, end-offset watch for
//!   long polls, group-commit fsync.
//! - [`catalog`]: the topics and partition replicas hosted here, materialized from the metadata.
//! - [`server`]: TCP accept loop and per-connection pipelining; [`api`]: one handler per Kafka API.
//! - [`admin`] + [`metrics`]: the HTTP listener with `/metrics` and `/health`.
//! - [`producer_ids`]: producer ids from blocks the metadata quorum hands out.
//! - [`controller`]: the openraft metadata quorum (KRaft's role): replicated metadata log, state
//!   machine, broker liveness and controller RPC.
//! - [`cluster`]: this broker's membership (registration, heartbeats) and topic administration
//!   through the quorum.
//! - [`replication`]: pure leader-side ISR / high-watermark bookkeeping.
//! - [`replica`]: the replica manager (roles from metadata) and the follower fetchers.

pub mod admin;
pub mod api;
pub mod catalog;
pub mod clock;
pub mod cluster;
pub mod controller;
pub mod error;
mod fsutil;
pub mod group;
pub mod log;
pub mod metrics;
pub mod partition;
pub mod producer_ids;
pub mod replica;
pub mod replication;
pub mod server;

use crate::catalog::Catalog;
use crate::cluster::ClusterLink;
use crate::error::BrokerError;
use crate::fsutil::{io_err, write_atomically};
use crate::group::GroupCoordinator;
use crate::metrics::Metrics;
use crate::producer_ids::ProducerIds;
use millrace_config::BrokerConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// State shared by every connection.
pub struct Broker {
    /// Configuration in force.
    pub config: BrokerConfig,
    /// This broker's own idea of the cluster id (configured, or generated once and stored in
    /// `<data-dir>/meta/cluster-id`); the quorum adopts the first one proposed, see
    /// [`Broker::cluster_id`].
    local_cluster_id: String,
    /// Topics and partition replicas hosted here.
    pub catalog: Catalog,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Producer-id allocation.
    pub producer_ids: ProducerIds,
    /// Consumer-group coordinator.
    pub groups: GroupCoordinator,
    /// Membership in the cluster and the replicated metadata.
    pub cluster: Arc<ClusterLink>,
}

impl Broker {
    /// Prepares the data directory; partitions are opened as the metadata assigns them.
    fn open(
        config: BrokerConfig,
        cluster: Arc<ClusterLink>,
        listeners: metrics::ListenerMetrics,
    ) -> Result<Broker, BrokerError> {
        let meta = config.data_dir.join("meta");
        let cluster_id = load_cluster_id(&meta, config.cluster_id.as_deref())?;
        let catalog = Catalog::new(&config);
        let metrics = Metrics::with_listeners(listeners)
            .map_err(|e| BrokerError::Internal(format!("registering metrics: {e}")))?;
        let groups = GroupCoordinator::new(config.groups.offsets_topic_partitions as usize, config.groups.clone());
        Ok(Broker {
            config,
            local_cluster_id: cluster_id,
            catalog,
            metrics,
            producer_ids: ProducerIds::default(),
            groups,
            cluster,
        })
    }

    /// The cluster id clients see: the one recorded in the metadata quorum.
    pub fn cluster_id(&self) -> String {
        self.cluster.metadata().cluster_id.clone().unwrap_or_else(|| self.local_cluster_id.clone())
    }

    /// The (host, port) advertised to clients.
    pub fn advertised_host_port(&self) -> (String, i32) {
        let (host, port) = advertised_host_port(&self.config);
        (host, i32::from(port))
    }
}

/// The (host, port) clients are told to connect to.
fn advertised_host_port(config: &BrokerConfig) -> (String, u16) {
    let advertised = config.advertised();
    match advertised.rsplit_once(':') {
        Some((host, port)) => (host.trim_matches(|c| c == '[' || c == ']').to_string(), port.parse().unwrap_or(9092)),
        None => (advertised, 9092),
    }
}

fn load_cluster_id(meta: &std::path::Path, configured: Option<&str>) -> Result<String, BrokerError> {
    let path = meta.join("cluster-id");
    match std::fs::read_to_string(&path) {
        Ok(stored) => {
            let stored = stored.trim().to_string();
            if let Some(configured) = configured {
                if configured != stored {
                    return Err(BrokerError::Metadata(format!(
                        "{} holds cluster id '{stored}' but the configuration says '{configured}'; \
                         this data directory belongs to another cluster",
                        path.display()
                    )));
                }
            }
            Ok(stored)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = configured.map(str::to_string).unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
            write_atomically(&path, id.as_bytes())?;
            Ok(id)
        }
        Err(e) => Err(io_err(format!("reading {}", path.display()), e)),
    }
}

/// Addresses the broker actually listens on (ports resolved when 0 was configured).
#[derive(Clone, Copy, Debug)]
pub struct BoundAddresses {
    /// Kafka protocol.
    pub kafka: SocketAddr,
    /// Admin HTTP.
    pub admin: SocketAddr,
}

/// A broker bound to its ports and ready to serve.
pub struct RunningBroker {
    broker: Arc<Broker>,
    kafka: TcpListener,
    admin: TcpListener,
    /// Where it listens.
    pub addresses: BoundAddresses,
}

/// Binds the controller listener of a cluster member. A single broker has none: its quorum of
/// one runs in-process and needs no network.
async fn bind_controller(
    config: &BrokerConfig,
    metrics: &metrics::ListenerMetrics,
) -> Result<Option<controller::network::RpcListener>, BrokerError> {
    let (false, Some(addr)) = (config.voters.is_empty(), config.controller_listen) else {
        if let Some(addr) = config.controller_listen {
            tracing::warn!(%addr, "controller_listen is ignored without voters: a single broker's quorum runs in-process");
        }
        return Ok(None);
    };
    let listener =
        TcpListener::bind(addr).await.map_err(|e| io_err(format!("binding the controller listener {addr}"), e))?;
    let access = controller::network::PeerAccess::for_broker(config);
    Ok(Some(controller::network::RpcListener::new(listener, access, metrics.clone()).await))
}

/// Opens storage and binds the listeners; call [`RunningBroker::serve`] next.
pub async fn start(mut config: BrokerConfig) -> Result<RunningBroker, BrokerError> {
    let kafka = TcpListener::bind(config.listen)
        .await
        .map_err(|e| io_err(format!("binding the Kafka listener {}", config.listen), e))?;
    let admin = TcpListener::bind(config.admin_listen)
        .await
        .map_err(|e| io_err(format!("binding the admin listener {}", config.admin_listen), e))?;
    let addresses = BoundAddresses {
        kafka: kafka.local_addr().map_err(|e| io_err("reading the Kafka listener address", e))?,
        admin: admin.local_addr().map_err(|e| io_err("reading the admin listener address", e))?,
    };
    // With port 0 the advertised address must carry the real port.
    config.listen = addresses.kafka;
    config.admin_listen = addresses.admin;
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| io_err(format!("creating data dir {}", config.data_dir.display()), e))?;
    let listener_metrics = metrics::ListenerMetrics::new()
        .map_err(|e| BrokerError::Internal(format!("creating listener metrics: {e}")))?;
    let controller = bind_controller(&config, &listener_metrics).await?;
    let cluster = Arc::new(ClusterLink::start(&config, controller, advertised_host_port(&config)).await?);
    let broker = tokio::task::spawn_blocking(move || Broker::open(config, cluster, listener_metrics))
        .await
        .map_err(|e| BrokerError::Internal(format!("opening storage: {e}")))??;
    Ok(RunningBroker { broker: Arc::new(broker), kafka, admin, addresses })
}

impl RunningBroker {
    /// Serves until `shutdown` turns true, then closes every log cleanly.
    pub async fn serve(self, shutdown: watch::Receiver<bool>) -> Result<(), BrokerError> {
        let broker = self.broker;
        let admin = tokio::spawn(admin::serve(self.admin, broker.clone(), shutdown.clone()));
        let housekeeping = tokio::spawn(housekeeping(broker.clone(), shutdown.clone()));
        let membership = tokio::spawn(broker.cluster.clone().run_membership(shutdown.clone()));
        let replicas = tokio::spawn(replica::run(broker.clone(), shutdown.clone()));
        let internal_topics = tokio::spawn(ensure_internal_topics(broker.clone(), shutdown.clone()));
        if broker.config.voters.is_empty() {
            // A single broker is its own quorum: it is ready once it has registered, which takes
            // one election (well under a second), and only then takes requests, as Kafka enables
            // its request processing once unfenced: before that Metadata would list no broker,
            // and librdkafka then waits for a controller until its request times out. Clients
            // that connect meanwhile wait in the listen backlog and are answered once ready. A
            // cluster member is "ready" once listening; it registers when a quorum of voters is up.
            let cluster = broker.cluster.clone();
            let node_id = broker.config.node_id;
            let active = cluster
                .wait_metadata(Duration::from_secs(30), |m| {
                    m.brokers.get(&node_id).is_some_and(|b| !b.fenced && b.epoch == cluster.broker_epoch())
                })
                .await;
            if !active {
                tracing::warn!("not registered with the local metadata quorum after 30s; serving anyway");
            }
            // Also wait until it coordinates groups, so a client's first JoinGroup finds it so.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while !broker.groups.coordinates_any() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let kafka = tokio::spawn(server::serve(self.kafka, broker.clone(), shutdown.clone()));
        tracing::info!(
            kafka = %self.addresses.kafka,
            admin = %self.addresses.admin,
            advertised = %broker.config.advertised(),
            data_dir = %broker.config.data_dir.display(),
            cluster_id = %broker.cluster_id(),
            node_id = broker.config.node_id,
            "broker ready"
        );
        let _ = kafka.await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = admin.await;
        let _ = housekeeping.await;
        let _ = membership.await;
        let _ = replicas.await;
        internal_topics.abort();
        // Connections hold the broker until their in-flight requests finish.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut broker = broker;
        loop {
            match Arc::try_unwrap(broker) {
                Ok(owned) => {
                    let Broker { catalog, cluster, groups, .. } = owned;
                    drop(groups);
                    tokio::task::spawn_blocking(move || {
                        if let Err(e) = catalog.checkpoint_high_watermarks() {
                            tracing::warn!(error = %e, "writing the high-watermark checkpoint failed");
                        }
                        catalog.close_all()
                    })
                    .await
                    .map_err(|e| BrokerError::Internal(format!("closing logs: {e}")))?;
                    tracing::info!("all logs closed cleanly");
                    if let Ok(cluster) = Arc::try_unwrap(cluster) {
                        cluster.shutdown().await;
                    }
                    return Ok(());
                }
                Err(shared) if tokio::time::Instant::now() < deadline => {
                    broker = shared;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(_) => {
                    tracing::warn!("connections still busy after 10s; logs will be recovered on next start");
                    return Ok(());
                }
            }
        }
    }
}

/// Creates `__consumer_offsets` once enough brokers are live: the broker that hosts the active
/// controller does it, with replication factor min(3, voters) like Kafka's
/// `offsets.topic.replication.factor`, waiting for that many brokers rather than creating an
/// under-replicated topic.
async fn ensure_internal_topics(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let voters = broker.config.voter_map().len().max(1);
    let replication_factor = voters.min(3);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let metadata = broker.cluster.metadata();
        let is_controller = broker.cluster.controller_id() == broker.config.node_id;
        if metadata.cluster_id.is_none() && is_controller {
            let cmd = controller::MetadataCommand::SetClusterId { cluster_id: broker.local_cluster_id.clone() };
            if let Err(e) = broker.cluster.propose(cmd, Duration::from_secs(5)).await {
                tracing::warn!(error = %e, "recording the cluster id failed; retrying");
            }
            continue;
        }
        if let Some(id) = &metadata.cluster_id {
            if id != &broker.local_cluster_id && broker.config.cluster_id.is_some() {
                tracing::error!(configured = %broker.local_cluster_id, quorum = %id, "this broker is configured for another cluster than its quorum");
            }
        }
        if metadata.topics.contains_key(group::OFFSETS_TOPIC) {
            return;
        }
        if !is_controller || cluster::topics::live_brokers(&*broker.cluster).len() < replication_factor {
            continue;
        }
        let configs = [
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("segment.bytes".to_string(), broker.config.groups.offsets_segment_bytes.0.to_string()),
        ];
        let topic = cluster::topics::NewTopic {
            name: group::OFFSETS_TOPIC,
            partitions: broker.config.groups.offsets_topic_partitions,
            replication_factor: replication_factor as i16,
            assignments: Vec::new(),
            configs: &configs,
        };
        match cluster::topics::create_topic(&*broker.cluster, &broker.catalog, &broker.config, topic, false).await {
            Ok(_) | Err(catalog::TopicError::AlreadyExists(_)) => return,
            Err(e) => tracing::warn!(error = %e, "creating {} failed; retrying", group::OFFSETS_TOPIC),
        }
    }
}

/// Periodic work: retention, and background fsync for `interval` topics (also a safety net that
/// bounds how long acks=1 data stays unsynced in `fsync` mode).
async fn housekeeping(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let flush_every = broker.config.log.flush_interval.as_duration();
    let retention_every = broker.config.log.retention_check_interval.as_duration();
    let mut flush_tick = tokio::time::interval(flush_every);
    let mut retention_tick = tokio::time::interval(retention_every);
    let mut cleaner_tick = tokio::time::interval(broker.config.log.cleaner_interval.as_duration());
    cleaner_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Group sessions are checked often so a dead member is noticed soon after its timeout.
    let mut group_tick = tokio::time::interval(Duration::from_millis(100));
    flush_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    retention_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    group_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = group_tick.tick() => broker.groups.tick(),
            _ = flush_tick.tick() => {
                let checkpoint = broker.clone();
                match tokio::task::spawn_blocking(move || checkpoint.catalog.checkpoint_high_watermarks()).await {
                    Ok(Err(e)) => tracing::warn!(error = %e, "writing the high-watermark checkpoint failed"),
                    Err(e) => tracing::warn!(error = %e, "high-watermark checkpoint task failed"),
                    Ok(Ok(())) => {}
                }
                for partition in broker.catalog.all_partitions() {
                    {
                        if let Err(e) = partition.flush_if_dirty().await {
                            tracing::error!(partition = %format!("{}-{}", partition.topic, partition.index), error = %e, "background fsync failed");
                        }
                    }
                }
            }
            _ = cleaner_tick.tick() => {
                let now = crate::clock::now_ms();
                for topic in broker.catalog.all().into_iter().filter(|t| t.config.cleanup_compact) {
                    let config = log::CompactionConfig {
                        delete_retention_ms: topic.config.delete_retention_ms,
                        min_compaction_lag_ms: topic.config.min_compaction_lag_ms,
                    };
                    for partition in topic.partitions.values().cloned() {
                        let result = tokio::task::spawn_blocking(move || (partition.compact(now, &config), partition)).await;
                        match result {
                            Ok((Ok(report), partition)) if report.segments_cleaned > 0 => {
                                tracing::info!(
                                    partition = %format!("{}-{}", partition.topic, partition.index),
                                    segments = report.segments_cleaned,
                                    records_removed = report.records_removed,
                                    bytes_before = report.bytes_before,
                                    bytes_after = report.bytes_after,
                                    "compacted"
                                );
                            }
                            Ok((Err(e), partition)) => {
                                tracing::error!(partition = %format!("{}-{}", partition.topic, partition.index), error = %e, "compaction failed");
                            }
                            _ => {}
                        }
                    }
                }
            }
            _ = retention_tick.tick() => {
                let now = crate::clock::now_ms();
                for partition in broker.catalog.all_partitions() {
                    {
                        let result = tokio::task::spawn_blocking(move || (partition.apply_retention(now), partition)).await;
                        match result {
                            Ok((Ok(deleted), partition)) if deleted > 0 => {
                                let (start, _) = partition.offsets();
                                tracing::info!(partition = %format!("{}-{}", partition.topic, partition.index), deleted, log_start_offset = start, "retention deleted segments");
                            }
                            Ok((Err(e), partition)) => {
                                tracing::error!(partition = %format!("{}-{}", partition.topic, partition.index), error = %e, "retention failed");
                            }
                            _ => {}
                        }
                    }
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}
