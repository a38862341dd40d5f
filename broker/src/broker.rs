//! [`Broker`]: the state every connection, handler and background task shares.

use crate::catalog::Catalog;
use crate::cluster::ClusterLink;
use crate::error::BrokerError;
use crate::fsutil::{io_err, write_atomically};
use crate::group::GroupCoordinator;
use crate::metrics::{self, Metrics};
use crate::producer_ids::ProducerIds;
use millrace_config::BrokerConfig;
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
}

impl Broker {
    /// Prepares the data directory; partitions are opened as the metadata assigns them.
    pub(crate) fn open(
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
            acls: crate::api::AclCache::default(),
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
pub(crate) fn advertised_host_port(config: &BrokerConfig) -> (String, u16) {
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
