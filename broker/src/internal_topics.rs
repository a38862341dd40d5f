//! The broker's own topic and identity in the quorum: `__consumer_offsets` and the cluster id.

use crate::{catalog, cluster, controller, group, Broker};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Creates `__consumer_offsets` once enough brokers are live: the broker that hosts the active
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
