//! The broker's own topics and identity in the quorum: `__consumer_offsets`, the pipeline's
//! status topic `__millrace_status` (written by agents and sinks, read by `millrace top`), and
//! the cluster id.

use crate::{catalog, cluster, controller, group, Broker};
use millrace_status::STATUS_TOPIC;
use std::sync::Arc;
use std::time::Duration;

/// A failed creation is tried again after this long.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);
use tokio::sync::watch;

/// Creates `__consumer_offsets` and `__millrace_status` once enough brokers are live: the broker that hosts the active
/// controller does it, with replication factor min(3, voters) like Kafka's
/// `offsets.topic.replication.factor`, waiting for that many brokers rather than creating an
/// under-replicated topic.
pub(crate) async fn ensure_internal_topics(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
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
        let offsets_missing = !metadata.topics.contains_key(group::OFFSETS_TOPIC);
        let status_missing = !metadata.topics.contains_key(STATUS_TOPIC);
        if !(offsets_missing || status_missing) {
            // Still watched: an operator may delete the status topic, and it comes back.
            tick.reset_after(Duration::from_secs(5));
            continue;
        }
        if !is_controller || cluster::topics::live_brokers(&*broker.cluster).len() < replication_factor {
            continue;
        }
        if offsets_missing {
            let configs = [
                ("cleanup.policy".to_string(), "compact".to_string()),
                ("segment.bytes".to_string(), broker.config.groups.offsets_segment_bytes.0.to_string()),
            ];
            create(
                &broker,
                group::OFFSETS_TOPIC,
                broker.config.groups.offsets_topic_partitions,
                replication_factor,
                &configs,
            )
            .await;
        }
        if status_missing {
            // A few records per component and interval; compaction keeps the latest of each,
            // and small segments let it run within minutes.
            let configs = [
                ("cleanup.policy".to_string(), "compact".to_string()),
                ("segment.bytes".to_string(), (1u64 << 20).to_string()),
                ("segment.ms".to_string(), "600000".to_string()),
                ("delete.retention.ms".to_string(), "3600000".to_string()),
            ];
            if !create(&broker, STATUS_TOPIC, 1, replication_factor, &configs).await {
                // A cluster at its partition limit refuses it: say so now and then, not 5 times a second.
                tick.reset_after(RETRY_AFTER_FAILURE);
            }
        }
    }
}

/// Creates `name`; false (logged) when it failed and the caller's next round must try again.
async fn create(
    broker: &Broker,
    name: &str,
    partitions: i32,
    replication_factor: usize,
    configs: &[(String, String)],
) -> bool {
    let topic = cluster::topics::NewTopic {
        name,
        partitions,
        replication_factor: replication_factor as i16,
        assignments: Vec::new(),
        configs,
    };
    match cluster::topics::create_topic(&*broker.cluster, &broker.catalog, &broker.config, topic, false).await {
        Ok(_) => {
            tracing::info!(topic = name, "created");
            true
        }
        Err(catalog::TopicError::AlreadyExists(_)) => true,
        Err(e) => {
            tracing::warn!(error = %e, "creating {name} failed; retrying");
            false
        }
    }
}
