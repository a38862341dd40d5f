//! An in-memory cluster of one for handler unit tests: the metadata quorum is the pure state
//! machine applied in place (no Raft, no network), and proposals are reconciled into a real
//! catalog in a temporary directory at once, as the replica manager would. Handlers run against
//! it exactly as against the broker, through the same context traits.

use super::authorize::AclCache;
use super::context::{Authorize, Groups, Partitions, Producers, Settings, Telemetry};
use crate::catalog::Catalog;
use crate::cluster::Quorum;
use crate::controller::VoterChange;
use crate::controller::{
    ControllerError, MetadataCommand, MetadataResponse, MetadataState, QuorumDescription, QuorumReplica,
};
use crate::group::GroupCoordinator;
use crate::metrics::Metrics;
use crate::producer_ids::ProducerIds;
use millrace_config::BrokerConfig;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// This broker's id in the fake cluster.
pub const NODE: i32 = 1;

/// A one-broker cluster without processes, sockets or Raft.
pub struct FakeBroker {
    pub(crate) config: BrokerConfig,
    pub(crate) catalog: Catalog,
    state: Mutex<Arc<MetadataState>>,
    groups: GroupCoordinator,
    producer_ids: ProducerIds,
    metrics: Metrics,
    /// Every proposal, in order, for tests that check what a handler asked the quorum.
    pub proposals: Mutex<Vec<MetadataCommand>>,
    acls: AclCache,
    _dir: tempfile::TempDir,
}

impl FakeBroker {
    /// A registered, unfenced broker with an empty cluster.
    pub fn new() -> Arc<FakeBroker> {
        FakeBroker::with_config(|_| {})
    }

    /// As [`FakeBroker::new`], with settings changed by `tune`.
    pub fn with_config(tune: impl FnOnce(&mut BrokerConfig)) -> Arc<FakeBroker> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = BrokerConfig { node_id: NODE, data_dir: dir.path().to_path_buf(), ..BrokerConfig::default() };
        config.replication.default_replication_factor = Some(1);
        tune(&mut config);
        let mut state = MetadataState::default();
        state
            .apply(&MetadataCommand::RegisterBroker {
                id: NODE,
                host: "localhost".into(),
                port: 9092,
                rack: None,
                listeners: vec![],
            })
            .expect("register");
        state.apply(&MetadataCommand::UnfenceBroker { id: NODE }).expect("unfence");
        let groups = GroupCoordinator::new(config.groups.offsets_topic_partitions as usize, config.groups.clone());
        Arc::new(FakeBroker {
            catalog: Catalog::new(&config),
            config,
            state: Mutex::new(Arc::new(state)),
            groups,
            producer_ids: ProducerIds::default(),
            metrics: Metrics::new().expect("metrics"),
            proposals: Mutex::new(Vec::new()),
            acls: AclCache::default(),
            _dir: dir,
        })
    }

    /// Applies the metadata to the local replicas and roles, as the replica manager does.
    fn reconcile(&self, state: &MetadataState) {
        self.catalog.apply(state, NODE).expect("apply metadata");
        let mut offsets = BTreeMap::new();
        let mut offsets_count = 0;
        for topic in self.catalog.all() {
            let Some(meta) = state.topics.get(&topic.name) else { continue };
            for (&index, partition) in &topic.partitions {
                let p = &meta.partitions[index as usize];
                if p.leader == NODE {
                    partition
                        .become_leader(
                            NODE,
                            &p.replicas,
                            &p.isr,
                            p.leader_epoch,
                            p.partition_epoch,
                            topic.config.min_insync_replicas.max(1) as usize,
                            30_000,
                            crate::clock::now_ms(),
                        )
                        .expect("become leader");
                    if crate::catalog::is_internal(&topic.name) {
                        offsets.insert(index, partition.clone());
                        offsets_count = meta.partitions.len();
                    }
                }
            }
        }
        self.groups.set_led_partitions(offsets, offsets_count);
    }
}

impl Quorum for FakeBroker {
    fn node_id(&self) -> i32 {
        NODE
    }
    fn metadata(&self) -> Arc<MetadataState> {
        self.state.lock().expect("state").clone()
    }
    fn controller_id(&self) -> i32 {
        NODE
    }
    async fn propose(&self, cmd: MetadataCommand, _timeout: Duration) -> Result<MetadataResponse, ControllerError> {
        self.proposals.lock().expect("proposals").push(cmd.clone());
        let next = {
            let mut guard = self.state.lock().expect("state");
            let mut next = (**guard).clone();
            let response = next.apply(&cmd).map_err(ControllerError::Rejected)?;
            *guard = Arc::new(next);
            (guard.clone(), response)
        };
        self.reconcile(&next.0);
        Ok(next.1)
    }
    async fn describe_quorum(&self) -> Result<QuorumDescription, ControllerError> {
        // A quorum of one: this broker, holding every proposal it committed.
        let end = self.proposals.lock().expect("proposals").len() as i64;
        let me = QuorumReplica { id: NODE as u64, log_end_offset: end };
        Ok(QuorumDescription {
            leader_id: NODE as u64,
            term: 1,
            high_watermark: end,
            voters: vec![me],
            observers: vec![],
        })
    }
    async fn change_voters(&self, change: VoterChange) -> Result<Vec<u64>, ControllerError> {
        // The same rule as a real quorum, on a quorum of one without non-voting members.
        let voters = std::collections::BTreeSet::from([NODE as u64]);
        crate::controller::membership::check(&voters, &Default::default(), change).map_err(ControllerError::Voters)?;
        Ok(voters.into_iter().collect())
    }
}

impl Partitions for FakeBroker {
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }
}

impl Settings for FakeBroker {
    fn config(&self) -> &BrokerConfig {
        &self.config
    }
    fn cluster_id(&self) -> String {
        "fake-cluster".into()
    }
}

impl Groups for FakeBroker {
    fn groups(&self) -> &GroupCoordinator {
        &self.groups
    }
}

impl Producers for FakeBroker {
    fn producer_ids(&self) -> &ProducerIds {
        &self.producer_ids
    }
}

impl Telemetry for FakeBroker {
    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

impl Authorize for FakeBroker {
    fn authorizer(&self) -> Option<Arc<crate::security::acl::Authorizer>> {
        self.acls.authorizer(&self.config.authorization, crate::cluster::Quorum::metadata(self))
    }
}
