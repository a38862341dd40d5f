//! What a handler may see: the request's own context, and the small traits over the broker
//! that handlers are generic over. The broker implements them all; unit tests implement them on
//! an in-memory cluster of one (`api/fake.rs`), so a handler can be run without a process.

use crate::catalog::{Catalog, Topic};
use crate::cluster::Quorum;
use crate::group::GroupCoordinator;
use crate::metrics::Metrics;
use crate::partition::Partition;
use crate::producer_ids::ProducerIds;
use crate::security::acl::Authorizer;
use crate::Broker;
use futures::future::BoxFuture;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::RequestHeader;
use millrace_config::BrokerConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use uuid::Uuid;

/// Who sent a request, in Kafka's `Type:name` form. Without authentication every client is
/// `User:ANONYMOUS`, as on a Kafka PLAINTEXT listener.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// Principal type, `User` for clients.
    pub kind: String,
    /// Principal name.
    pub name: String,
}

impl Principal {
    /// The principal of an unauthenticated connection.
    pub fn anonymous() -> Principal {
        Principal::user("ANONYMOUS")
    }

    /// `User:<name>`: a SASL user, or a client certificate's subject.
    pub fn user(name: &str) -> Principal {
        Principal { kind: "User".into(), name: name.to_string() }
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}

/// The connection a request arrived on; the same for every request on it.
#[derive(Debug, Clone)]
pub struct Connection {
    /// Broker-unique id, for logs.
    pub id: u64,
    /// The client's address.
    pub peer: SocketAddr,
    /// The listener's name (`PLAINTEXT` until listeners can be named).
    pub listener: Arc<str>,
    /// Who is on the other end (shared: every request of the connection carries it).
    pub principal: Arc<Principal>,
}

impl Connection {
    /// An unauthenticated connection on the default listener.
    pub fn plaintext(id: u64, peer: SocketAddr) -> Connection {
        Connection { id, peer, listener: Arc::from("PLAINTEXT"), principal: Arc::new(Principal::anonymous()) }
    }
}

/// Everything a handler needs to know about a request besides its body.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The connection it arrived on.
    pub connection: Connection,
    /// The decoded header: API key and version, correlation id, client id.
    pub header: RequestHeader,
}

impl RequestContext {
    /// The request's API version.
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.connection.peer
    }

    /// The client id the request names, if any.
    pub fn client_id(&self) -> Option<&str> {
        self.header.client_id.as_deref()
    }
}

/// A handler's answer. Handlers do their order-sensitive part (appends, group transitions)
/// before returning, so pipelined requests apply in arrival order; what may wait (durability,
/// long polls, rebalances) is returned as [`Reply::Later`] and answered in order by the
/// connection.
pub enum Reply<R> {
    /// The response is ready.
    Now(R),
    /// The response once the future completes.
    Later(BoxFuture<'static, R>),
    /// No response at all (Produce with acks=0).
    Silent,
}

/// Partition replicas hosted on this broker.
pub trait Partitions: Send + Sync + 'static {
    /// The local catalog of topics and replicas (storage, not metadata).
    fn catalog(&self) -> &Catalog;
    /// A hosted topic by name.
    fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.catalog().get(name)
    }
    /// A hosted topic by id.
    fn topic_by_id(&self, id: &Uuid) -> Option<Arc<Topic>> {
        self.catalog().get_by_id(id)
    }
    /// A hosted replica.
    fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.catalog().partition(topic, index)
    }
}

/// The broker's settings and identity.
pub trait Settings: Send + Sync + 'static {
    /// Configuration in force.
    fn config(&self) -> &BrokerConfig;
    /// The cluster id clients see.
    fn cluster_id(&self) -> String;
}

/// The consumer-group coordinator.
pub trait Groups: Send + Sync + 'static {
    /// The coordinator of the groups whose offsets partitions this broker leads.
    fn groups(&self) -> &GroupCoordinator;
}

/// Producer-id allocation.
pub trait Producers: Send + Sync + 'static {
    /// This broker's block of producer ids.
    fn producer_ids(&self) -> &ProducerIds;
}

/// Request and data metrics.
pub trait Telemetry: Send + Sync + 'static {
    /// The broker's metrics.
    fn metrics(&self) -> &Metrics;
}

/// Access control. Handlers check through [`super::authorize::Access`], which reads this.
pub trait Authorize: Send + Sync + 'static {
    /// The ACLs, super users and settings in force; None when authorization is off (every
    /// principal may do everything).
    fn authorizer(&self) -> Option<Arc<Authorizer>>;
}

/// Everything at once, for the router.
pub trait BrokerContext: Partitions + Quorum + Settings + Groups + Producers + Telemetry + Authorize + 'static {}
impl<T: Partitions + Quorum + Settings + Groups + Producers + Telemetry + Authorize + 'static> BrokerContext for T {}

/// This broker's replica of `topic`-`index` and its leader epoch, if this broker leads it;
/// otherwise the error a client should see: NOT_LEADER_OR_FOLLOWER for a partition that exists
/// but is led elsewhere (the client refreshes its metadata), UNKNOWN_TOPIC_OR_PARTITION else.
pub fn led_partition<C: Partitions + Quorum + ?Sized>(
    ctx: &C,
    topic: &str,
    index: i32,
) -> Result<(Arc<Partition>, i32), ResponseError> {
    if let Some(partition) = ctx.partition(topic, index) {
        if let Some(epoch) = partition.leader_epoch_if_leader() {
            return Ok((partition, epoch));
        }
    }
    let exists =
        ctx.metadata().topics.get(topic).is_some_and(|t| usize::try_from(index).is_ok_and(|i| i < t.partitions.len()));
    Err(if exists { ResponseError::NotLeaderOrFollower } else { ResponseError::UnknownTopicOrPartition })
}

/// KIP-320: the requester's view of a partition's leader epoch (`-1`: it names none) against the
/// leader's. An older one is fenced (the requester missed a leader change), a newer one unknown
/// (this broker has not heard of it yet); both make a client refresh its metadata and retry.
pub fn check_leader_epoch(requested: i32, current: i32) -> Result<(), ResponseError> {
    if requested >= 0 && requested < current {
        Err(ResponseError::FencedLeaderEpoch)
    } else if requested > current {
        Err(ResponseError::UnknownLeaderEpoch)
    } else {
        Ok(())
    }
}

impl Partitions for Broker {
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }
}

impl Settings for Broker {
    fn config(&self) -> &BrokerConfig {
        &self.config
    }
    fn cluster_id(&self) -> String {
        Broker::cluster_id(self)
    }
}

impl Groups for Broker {
    fn groups(&self) -> &GroupCoordinator {
        &self.groups
    }
}

impl Producers for Broker {
    fn producer_ids(&self) -> &ProducerIds {
        &self.producer_ids
    }
}

impl Telemetry for Broker {
    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

impl Authorize for Broker {
    fn authorizer(&self) -> Option<Arc<Authorizer>> {
        self.acls.authorizer(&self.config.authorization, self.cluster.metadata())
    }
}
