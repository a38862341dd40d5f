//! Cluster-wide commands: naming the cluster once, and handing out blocks of producer ids.

use super::{MetadataError, MetadataResponse, MetadataState};

/// Largest producer-id block one request may take; bounds a runaway caller.
const MAX_PRODUCER_ID_BLOCK: i32 = 1_000_000;

impl MetadataState {
    /// SetClusterId: only the first one takes effect.
    pub(super) fn set_cluster_id(&mut self, cluster_id: &str) -> Result<MetadataResponse, MetadataError> {
        if self.cluster_id.is_none() {
            self.cluster_id = Some(cluster_id.to_string());
        }
        Ok(MetadataResponse::Ok)
    }

    /// AllocateProducerIds: the next `count` producer ids go to `broker`.
    pub(super) fn allocate_producer_ids(&mut self, broker: i32, count: i32) -> Result<MetadataResponse, MetadataError> {
        self.broker(broker)?;
        if count <= 0 || count > MAX_PRODUCER_ID_BLOCK {
            return Err(MetadataError::InvalidRequest(format!("producer-id block size {count}")));
        }
        let first = self.next_producer_id;
        let next = first
            .checked_add(i64::from(count))
            .ok_or_else(|| MetadataError::InvalidRequest("producer ids exhausted".into()))?;
        self.next_producer_id = next;
        Ok(MetadataResponse::ProducerIds { first, count })
    }
}
