//! Producer-id allocation for idempotent producers. Ids come in blocks handed out by the metadata
//! quorum (`AllocateProducerIds`, Kafka's KIP-730), so no id is ever issued twice in the cluster,
//! across crashes and leader changes alike.

use crate::cluster::Quorum;
use crate::controller::{MetadataCommand, MetadataResponse};
use crate::error::BrokerError;
use std::time::Duration;

/// Ids per block taken from the quorum.
const BLOCK_SIZE: i32 = 1000;

struct Block {
    next: i64,
    end: i64,
}

/// Hands out producer ids.
pub struct ProducerIds {
    block: tokio::sync::Mutex<Block>,
}

impl Default for ProducerIds {
    fn default() -> Self {
        ProducerIds { block: tokio::sync::Mutex::new(Block { next: 0, end: 0 }) }
    }
}

impl ProducerIds {
    /// A fresh producer id, taking a new block from the quorum when the current one is used up.
    pub async fn allocate<Q: Quorum + ?Sized>(&self, cluster: &Q) -> Result<i64, BrokerError> {
        let mut block = self.block.lock().await;
        if block.next >= block.end {
            let cmd = MetadataCommand::AllocateProducerIds { broker: cluster.node_id(), count: BLOCK_SIZE };
            match cluster.propose(cmd, Duration::from_secs(5)).await {
                Ok(MetadataResponse::ProducerIds { first, count }) => {
                    *block = Block { next: first, end: first + i64::from(count) };
                }
                Ok(other) => return Err(BrokerError::Internal(format!("unexpected answer {other:?}"))),
                Err(e) => return Err(BrokerError::Metadata(format!("allocating producer ids: {e}"))),
            }
        }
        let id = block.next;
        block.next += 1;
        Ok(id)
    }
}
