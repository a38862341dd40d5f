//! KIP-951 leader discovery: a Produce (v10+) or Fetch (v16+) partition refused because this
//! broker does not lead it names its current leader and epoch, and the response lists how to
//! reach each leader named, so a client (librdkafka ≥ 2.4, the Java client ≥ 3.7) moves the
//! partition at once instead of first asking for Metadata.
//!
//! One shape for both APIs: [`Leaders`] answers per partition from one metadata snapshot and
//! collects each leader's endpoint once; produce.rs and fetch.rs copy the answers into their own
//! generated message types.

use crate::controller::{MetadataState, NO_LEADER};
use kafka_protocol::error::ResponseError;
use std::sync::Arc;

/// A partition's leader and leader epoch as this broker's metadata has them; -1/-1 when it has
/// none (Kafka's "unknown", which clients ignore).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentLeader {
    /// Leader broker id.
    pub id: i32,
    /// Leader epoch.
    pub epoch: i32,
}

impl CurrentLeader {
    /// No leader known.
    pub const UNKNOWN: CurrentLeader = CurrentLeader { id: -1, epoch: -1 };
}

/// Where clients of one listener reach a leader: what Metadata advertises to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderEndpoint {
    /// Broker id.
    pub node_id: i32,
    /// Advertised host on the listener.
    pub host: String,
    /// Advertised port on the listener.
    pub port: u16,
    /// The broker's rack, if configured.
    pub rack: Option<String>,
}

/// Whether a partition error code is one that KIP-951 answers with the current leader.
pub fn names_leader(error_code: i16) -> bool {
    error_code == ResponseError::NotLeaderOrFollower.code() || error_code == ResponseError::FencedLeaderEpoch.code()
}

/// The current leaders named in one response, seen by clients of one listener.
pub struct Leaders<'a> {
    metadata: Arc<MetadataState>,
    listener: &'a str,
    endpoints: Vec<LeaderEndpoint>,
}

impl<'a> Leaders<'a> {
    /// Answers from `metadata` for a request that came in on `listener`.
    pub fn new(metadata: Arc<MetadataState>, listener: &'a str) -> Leaders<'a> {
        Leaders { metadata, listener, endpoints: Vec::new() }
    }

    /// The current leader of `topic`-`index`; its endpoint is kept for [`Leaders::endpoints`]
    /// the first time it is named.
    pub fn name(&mut self, topic: &str, index: i32) -> CurrentLeader {
        let (leader, endpoint) = current_leader(&self.metadata, self.listener, topic, index);
        if let Some(endpoint) = endpoint {
            if !self.endpoints.iter().any(|e| e.node_id == endpoint.node_id) {
                self.endpoints.push(endpoint);
            }
        }
        leader
    }

    /// One endpoint per leader named, in the order first named.
    pub fn endpoints(&self) -> &[LeaderEndpoint] {
        &self.endpoints
    }
}

/// The current leader of `topic`-`index` in `metadata` and, when known, its endpoint on
/// `listener` — the same host and port Metadata gives a client of that listener, so the client
/// connects to the address it would have learnt there. No endpoint for a leader that is
/// unknown, unregistered or without that listener: the client then falls back to Metadata.
pub fn current_leader(
    metadata: &MetadataState,
    listener: &str,
    topic: &str,
    index: i32,
) -> (CurrentLeader, Option<LeaderEndpoint>) {
    let partition =
        metadata.topics.get(topic).and_then(|t| usize::try_from(index).ok().and_then(|i| t.partitions.get(i)));
    let Some(partition) = partition.filter(|p| p.leader != NO_LEADER) else {
        return (CurrentLeader::UNKNOWN, None);
    };
    let leader = CurrentLeader { id: partition.leader, epoch: partition.leader_epoch };
    let endpoint = metadata.brokers.get(&partition.leader).and_then(|broker| {
        let (host, port) = broker.endpoint(listener)?;
        Some(LeaderEndpoint { node_id: broker.id, host: host.to_string(), port, rack: broker.rack.clone() })
    });
    (leader, endpoint)
}
