//! Starting and running a broker: bind the listeners, open storage, then run the listeners,
//! membership, replica manager, housekeeping and internal topics until shutdown, and close every
//! log cleanly.

use crate::broker::{advertised_endpoints, advertised_host_port, Broker};
use crate::cluster::ClusterLink;
use crate::error::BrokerError;
use crate::fsutil::io_err;
use crate::housekeeping::housekeeping;
use crate::internal_topics::ensure_internal_topics;
use crate::{admin, controller, metrics, replication, server};
use millrace_config::BrokerConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Addresses the broker actually listens on (ports resolved when 0 was configured).
#[derive(Clone, Debug)]
pub struct BoundAddresses {
    /// The first Kafka listener.
    pub kafka: SocketAddr,
    /// Admin HTTP.
    pub admin: SocketAddr,
}

/// A broker bound to its ports and ready to serve.
pub struct RunningBroker {
    broker: Arc<Broker>,
    kafka: Vec<server::KafkaListener>,
    tls: Option<Arc<server::tls::TlsIdentity>>,
    controller_tls: Option<Arc<server::tls::TlsIdentity>>,
    admin: TcpListener,
    /// Where it listens.
    pub addresses: BoundAddresses,
}

/// The controller side of a cluster member: its listener (bound) and how peers are reached and
/// authenticated. A single broker has no listener: its quorum of one runs in-process and needs
/// no network.
struct ControllerSide {
    listener: Option<controller::network::RpcListener>,
    transport: controller::network::Transport,
    /// The controller's TLS identity, to reload when its files change.
    tls: Option<Arc<server::tls::TlsIdentity>>,
}

async fn bind_controller(
    config: &BrokerConfig,
    metrics: &metrics::ListenerMetrics,
) -> Result<ControllerSide, BrokerError> {
    let plain = ControllerSide { listener: None, transport: controller::network::Transport::plain(), tls: None };
    let (false, Some(addr)) = (config.voters.is_empty(), config.controller_listen) else {
        if let Some(addr) = config.controller_listen {
            tracing::warn!(%addr, "controller_listen is ignored without voters: a single broker's quorum runs in-process");
        }
        return Ok(plain);
    };
    let tls = controller_tls(config)?;
    let transport = match &tls {
        Some(identity) => controller::network::Transport::mutual_tls(identity.clone()),
        None => {
            tracing::warn!(
                %addr,
                "the controller listener is not authenticated: set [controller.tls] (mutual TLS with a cluster CA) \
                 on a network you do not fully trust; until then only controller.allowed_peers keeps strangers out"
            );
            plain.transport
        }
    };
    let listener =
        TcpListener::bind(addr).await.map_err(|e| io_err(format!("binding the controller listener {addr}"), e))?;
    let access = controller::network::PeerAccess::for_broker(config);
    let listener = controller::network::RpcListener::new(listener, access, transport.clone(), metrics.clone()).await;
    Ok(ControllerSide { listener: Some(listener), transport, tls })
}

/// The `[controller.tls]` identity, checked to name this node (peers would refuse it otherwise).
fn controller_tls(config: &BrokerConfig) -> Result<Option<Arc<server::tls::TlsIdentity>>, BrokerError> {
    let loading =
        |e: String| BrokerError::Config(format!("loading the controller's TLS identity ([controller.tls]): {e}"));
    // Peers check the node id a certificate names, not host names.
    let Some(identity) =
        server::tls::TlsIdentity::load_with(&config.controller.tls, false).map_err(|e| loading(e.to_string()))?
    else {
        return Ok(None);
    };
    let expected = millrace_config::broker::controller_node_name(u64::try_from(config.node_id).unwrap_or(u64::MAX));
    let named = server::tls::certificate_common_name(&identity.leaf_certificate());
    if named.as_deref() != Some(expected.as_str()) {
        return Err(loading(format!(
            "the certificate's subject CN is {named:?}, but node {} needs CN={expected}",
            config.node_id
        )));
    }
    Ok(Some(identity))
}

/// Opens storage and binds the listeners; call [`RunningBroker::serve`] next.
pub async fn start(mut config: BrokerConfig) -> Result<RunningBroker, BrokerError> {
    let tls = server::tls::TlsIdentity::load(&config.tls)
        .map_err(|e| BrokerError::Config(format!("loading the broker's TLS certificate ([tls]): {e}")))?;
    let mut kafka = Vec::new();
    for mut settings in config.effective_listeners() {
        let socket = TcpListener::bind(settings.listen)
            .await
            .map_err(|e| io_err(format!("binding the Kafka listener {} ({})", settings.name, settings.listen), e))?;
        // With port 0 the advertised address must carry the real port.
        settings.listen = socket.local_addr().map_err(|e| io_err("reading the Kafka listener address", e))?;
        kafka.push(server::KafkaListener { settings, socket });
    }
    let admin = TcpListener::bind(config.admin_listen)
        .await
        .map_err(|e| io_err(format!("binding the admin listener {}", config.admin_listen), e))?;
    let Some(first) = kafka.first().map(|l| l.settings.listen) else {
        return Err(BrokerError::Config("no Kafka listener is configured".into()));
    };
    let addresses = BoundAddresses {
        kafka: first,
        admin: admin.local_addr().map_err(|e| io_err("reading the admin listener address", e))?,
    };
    // From here on the bound listeners are the configuration.
    config.listeners = kafka.iter().map(|l| l.settings.clone()).collect();
    config.listen = None;
    config.advertised_listener = None;
    config.admin_listen = addresses.admin;
    crate::fsutil::create_dir_all_durably(&config.data_dir)
        .map_err(|e| io_err(format!("creating data dir {}", config.data_dir.display()), e))?;
    let listener_metrics = metrics::ListenerMetrics::new()
        .map_err(|e| BrokerError::Internal(format!("creating listener metrics: {e}")))?;
    let controller = bind_controller(&config, &listener_metrics).await?;
    let endpoints = advertised_endpoints(&config);
    let cluster = ClusterLink::start(
        &config,
        controller.listener,
        controller.transport,
        advertised_host_port(&config),
        endpoints,
    )
    .await?;
    let cluster = Arc::new(cluster);
    let identity = tls.clone();
    let broker = tokio::task::spawn_blocking(move || Broker::open(config, cluster, listener_metrics, identity))
        .await
        .map_err(|e| BrokerError::Internal(format!("opening storage: {e}")))??;
    Ok(RunningBroker { broker: Arc::new(broker), kafka, tls, controller_tls: controller.tls, admin, addresses })
}

impl RunningBroker {
    /// Serves until `shutdown` turns true, then closes every log cleanly.
    pub async fn serve(self, shutdown: watch::Receiver<bool>) -> Result<(), BrokerError> {
        let broker = self.broker;
        let admin = tokio::spawn(admin::serve(self.admin, broker.clone(), shutdown.clone()));
        let housekeeping = tokio::spawn(housekeeping(broker.clone(), shutdown.clone()));
        let membership = tokio::spawn(broker.cluster.clone().run_membership(shutdown.clone()));
        let replicas = tokio::spawn(replication::manager::run(broker.clone(), shutdown.clone()));
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
        for tls in self.tls.iter().chain(&self.controller_tls) {
            tokio::spawn(tls.clone().watch(shutdown.clone()));
        }
        let listeners: Vec<String> = self
            .kafka
            .iter()
            .map(|l| format!("{}://{} ({})", l.settings.name, l.settings.listen, l.settings.protocol()))
            .collect();
        let kafka = tokio::spawn(server::serve(self.kafka, broker.clone(), self.tls.clone(), shutdown.clone()));
        // Fail-stop, as Kafka halts on a metadata-log write failure: a member whose Raft store
        // cannot be written must neither vote nor serve metadata it may have lost; the process
        // ends without closing anything (as a crash would), recovery at the next start judges
        // what the disks hold, and the cluster fences this broker meanwhile.
        let cluster = broker.cluster.clone();
        let halt_on_fatal = tokio::spawn(async move {
            let fatal = cluster.fatal_error().await;
            tracing::error!(error = %fatal, "the metadata quorum member stopped on a fatal error; halting the broker");
            std::process::exit(70);
        });
        tracing::info!(
            kafka = %self.addresses.kafka,
            listeners = %listeners.join(", "),
            admin = %self.addresses.admin,
            advertised = %broker.config.advertised(),
            data_dir = %broker.config.data_dir.display(),
            cluster_id = %broker.cluster_id(),
            node_id = broker.config.node_id,
            "broker ready"
        );
        let _ = kafka.await;
        // A clean stop ends Raft on purpose; the watcher's handle on the cluster must go too.
        halt_on_fatal.abort();
        let _ = halt_on_fatal.await;
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
                        if let Err(e) = catalog.checkpoint_offsets() {
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
