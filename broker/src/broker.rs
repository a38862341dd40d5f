//! [`Broker`]: the state every connection, handler and background task shares.

use crate::catalog::Catalog;
use crate::cluster::ClusterLink;
use crate::error::BrokerError;
use crate::fsutil::{io_err, write_atomically};
use crate::group::GroupCoordinator;
use crate::metrics::{self, Metrics};
use crate::producer_ids::ProducerIds;
use crate::server::tls::TlsIdentity;
use millrace_config::BrokerConfig;
use millrace_protocol::client::{SaslLogin, Security};
use std::sync::Arc;

/// State shared by every connection.
pub struct Broker {
    /// Configuration in force.
    pub config: BrokerConfig,
    /// This broker's own idea of the cluster id (configured, or generated once and stored in
    /// `<data-dir>/meta/cluster-id`); the quorum adopts the first one proposed, see
    /// [`Broker::cluster_id`].
    pub(crate) local_cluster_id: String,
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
    /// The authorizer built from the metadata's ACLs, rebuilt when they change.
    pub(crate) acls: crate::api::AclCache,
    /// The broker's TLS identity, when it has one: its listeners' and its client side's.
    pub(crate) tls: Option<Arc<TlsIdentity>>,
}

impl Broker {
    /// Prepares the data directory; partitions are opened as the metadata assigns them.
    pub(crate) fn open(
        config: BrokerConfig,
        cluster: Arc<ClusterLink>,
        listeners: metrics::ListenerMetrics,
        tls: Option<Arc<TlsIdentity>>,
    ) -> Result<Broker, BrokerError> {
        let meta = config.data_dir.join("meta");
        let cluster_id = load_cluster_id(&meta, config.cluster_id.as_deref())?;
        let catalog = Catalog::new(&config);
        cluster.attach_log_dirs(catalog.log_dirs().clone());
        let metrics = Metrics::with_listeners(listeners)
            .map_err(|e| BrokerError::Internal(format!("registering metrics: {e}")))?;
        metrics.attach_log_dirs(catalog.log_dirs());
        let groups = GroupCoordinator::new(config.groups.offsets_topic_partitions as usize, config.groups.clone());
        Ok(Broker {
            config,
            local_cluster_id: cluster_id,
            catalog,
            metrics,
            producer_ids: ProducerIds::default(),
            groups,
            cluster,
            acls: crate::api::AclCache::default(),
            tls,
        })
    }

    /// How this broker connects to another one's inter-broker listener: TLS with its own
    /// certificate and SASL with `[inter_broker]`'s credentials, as that listener requires.
    pub fn inter_broker_security(&self) -> Security {
        let protocol = self.config.inter_broker_listener().protocol();
        let tls = if protocol.uses_tls() { self.tls.as_ref().map(|t| t.client_config()) } else { None };
        let inter = &self.config.inter_broker;
        let sasl = match (protocol.uses_sasl(), &inter.sasl_username, &inter.sasl_password) {
            (true, Some(username), Some(password)) => Some(SaslLogin {
                mechanism: inter.sasl_mechanism.clone().unwrap_or_else(|| "SCRAM-SHA-512".into()),
                username: username.clone(),
                password: password.expose().to_string(),
            }),
            _ => None,
        };
        Security { tls, sasl }
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

/// The (host, port) other brokers are told to connect to: the inter-broker listener's.
pub(crate) fn advertised_host_port(config: &BrokerConfig) -> (String, u16) {
    split_host_port(&config.advertised())
}

/// Every listener's advertised endpoint, registered with the quorum.
pub(crate) fn advertised_endpoints(config: &BrokerConfig) -> Vec<crate::controller::BrokerEndpoint> {
    config
        .effective_listeners()
        .iter()
        .map(|l| {
            let (host, port) = split_host_port(&l.advertised_address());
            crate::controller::BrokerEndpoint { name: l.name.clone(), host, port }
        })
        .collect()
}

/// `HOST:PORT` (validated at load) as a pair; `[v6]` loses its brackets.
fn split_host_port(address: &str) -> (String, u16) {
    match address.rsplit_once(':') {
        Some((host, port)) => (host.trim_matches(|c| c == '[' || c == ']').to_string(), port.parse().unwrap_or(9092)),
        None => (address.to_string(), 9092),
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
