//! Kafka API handlers, one file per API (or per small family), and the dispatcher that decodes a
//! request frame, runs the handler and encodes the response frame.
//!
//! Each handler runs its order-sensitive part (appends) before returning, so requests pipelined
//! on one connection are applied in arrival order; what remains (waiting for fsync, long-polling
//! fetches) is returned as a future that the connection resolves in order.

mod api_versions;
mod cluster;
mod configs;
mod fetch;
mod groups;
mod leader_epoch;
mod list_offsets;
mod metadata;
pub mod offsets;
mod produce;
mod reassignments;
mod topics;

use crate::Broker;
use bytes::{BufMut, Bytes, BytesMut};
use futures::future::BoxFuture;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// A response still being produced; `None` means the request gets no response (acks=0).
pub type Pending = BoxFuture<'static, Option<Bytes>>;

/// The APIs this broker answers and the version ranges it advertises.
///
/// Minimums are 0, as a Kafka 3.x broker advertises: librdkafka derives features (LZ4, message
/// format v2, idempotence) from whether these ranges reach down to old versions. Versions below
/// what the codec crate can decode (message formats v0/v1, retired in Kafka 4.0) are refused by
/// closing the connection with a logged reason, as Kafka 4 does.
pub const SUPPORTED_APIS: &[ApiKey] = &[
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::Metadata,
    ApiKey::FindCoordinator,
    ApiKey::ApiVersions,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::InitProducerId,
    ApiKey::DescribeConfigs,
    ApiKey::CreatePartitions,
    ApiKey::DescribeCluster,
    ApiKey::JoinGroup,
    ApiKey::SyncGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::ListGroups,
    ApiKey::DescribeGroups,
    ApiKey::DeleteGroups,
    ApiKey::OffsetDelete,
    ApiKey::OffsetForLeaderEpoch,
    ApiKey::AlterPartitionReassignments,
    ApiKey::ListPartitionReassignments,
    ApiKey::UnregisterBroker,
];

/// Shorthand for building a `StrBytes` from a `String`.
pub(crate) fn str_bytes(s: impl Into<String>) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.into())
}

/// Everything a handler needs to know about the request besides its body.
pub struct RequestContext {
    /// The decoded header.
    pub header: RequestHeader,
    /// The client's address.
    pub peer: SocketAddr,
}

impl RequestContext {
    /// The request's API version.
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }
}

/// Encodes a complete response frame: length, header, body.
pub fn encode_frame<R: Encodable + HeaderVersion>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &R,
) -> Result<Bytes, String> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = api_key.response_header_version(version);
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0);
    header
        .encode(&mut buf, header_version)
        .map_err(|e| format!("encoding {api_key:?} v{version} response header: {e}"))?;
    response.encode(&mut buf, version).map_err(|e| format!("encoding {api_key:?} v{version} response: {e}"))?;
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

fn decode_body<T: Decodable>(body: &mut Bytes, api_key: ApiKey, version: i16) -> Result<T, String> {
    T::decode(body, version).map_err(|e| format!("malformed {api_key:?} v{version} request: {e}"))
}

/// Wraps a finished response into a [`Pending`] and records the request's metrics.
fn ready<R: Encodable + HeaderVersion + Send + 'static>(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    api_key: ApiKey,
    started: Instant,
    response: R,
) -> Result<Pending, String> {
    let frame = encode_frame(api_key, ctx.version(), ctx.header.correlation_id, &response)?;
    broker.metrics.observe_request(api_key, started);
    Ok(Box::pin(async move { Some(frame) }))
}

/// Wraps a response that is still being computed.
fn deferred<R, F>(broker: &Arc<Broker>, ctx: &RequestContext, api_key: ApiKey, started: Instant, future: F) -> Pending
where
    R: Encodable + HeaderVersion + Send + 'static,
    F: std::future::Future<Output = R> + Send + 'static,
{
    let broker = broker.clone();
    let version = ctx.version();
    let correlation_id = ctx.header.correlation_id;
    let peer = ctx.peer;
    Box::pin(async move {
        let response = future.await;
        broker.metrics.observe_request(api_key, started);
        match encode_frame(api_key, version, correlation_id, &response) {
            Ok(frame) => Some(frame),
            Err(e) => {
                // Cannot happen for responses built from valid requests; log it loudly if it does.
                tracing::error!(%peer, "{e}");
                None
            }
        }
    })
}

/// Decodes one request frame, runs the ordered part of its handler and returns the rest.
/// An `Err` means the connection must be closed (the message says why).
pub async fn dispatch(broker: &Arc<Broker>, frame: Bytes, peer: SocketAddr) -> Result<Pending, String> {
    let started = Instant::now();
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let Ok(api_key) = ApiKey::try_from(raw_key) else {
        return Err(format!("unknown API key {raw_key} (version {version}); closing connection"));
    };
    if !SUPPORTED_APIS.contains(&api_key) {
        broker.metrics.unsupported_requests.inc();
        return Err(format!(
            "{api_key:?} (key {raw_key}) is not implemented by this broker and was not advertised in ApiVersions; closing connection"
        ));
    }
    let codec = api_key.valid_versions();
    if api_key == ApiKey::ApiVersions && version > codec.max {
        // KIP-511: answer an unknown ApiVersions version with v0 and UNSUPPORTED_VERSION so the
        // client retries with a version from the list.
        let response = api_versions::unsupported_version_response();
        let frame = encode_frame(api_key, 0, correlation_id, &response)?;
        return Ok(Box::pin(async move { Some(frame) }));
    }
    if version < codec.min || version > codec.max {
        broker.metrics.unsupported_requests.inc();
        return Err(format!(
            "{api_key:?} v{version} is not supported (this broker decodes v{}..=v{}); closing connection",
            codec.min, codec.max
        ));
    }
    let mut body = frame;
    let header_version = api_key.request_header_version(version);
    let header = RequestHeader::decode(&mut body, header_version)
        .map_err(|e| format!("malformed {api_key:?} v{version} request header: {e}"))?;
    let ctx = RequestContext { header, peer };
    macro_rules! decode {
        () => {
            decode_body(&mut body, api_key, version)?
        };
    }
    match api_key {
        ApiKey::ApiVersions => ready(broker, &ctx, api_key, started, api_versions::handle(decode!())),
        ApiKey::Metadata => {
            let response = metadata::handle(broker, &ctx, decode!()).await;
            ready(broker, &ctx, api_key, started, response)
        }
        ApiKey::Produce => match produce::handle(broker, &ctx, decode!()).await {
            produce::ProduceOutcome::NoResponse => {
                broker.metrics.observe_request(api_key, started);
                Ok(Box::pin(async { None }))
            }
            produce::ProduceOutcome::Respond(future) => Ok(deferred(broker, &ctx, api_key, started, future)),
        },
        ApiKey::Fetch => {
            let future = fetch::handle(broker.clone(), ctx.version(), decode!());
            Ok(deferred(broker, &ctx, api_key, started, future))
        }
        ApiKey::ListOffsets => {
            let future = list_offsets::handle(broker.clone(), ctx.version(), decode!());
            Ok(deferred(broker, &ctx, api_key, started, future))
        }
        ApiKey::CreateTopics => {
            let response = topics::create(broker, decode!()).await;
            ready(broker, &ctx, api_key, started, response)
        }
        ApiKey::DeleteTopics => {
            let response = topics::delete(broker, decode!()).await;
            ready(broker, &ctx, api_key, started, response)
        }
        ApiKey::CreatePartitions => {
            let response = topics::create_partitions(broker, decode!()).await;
            ready(broker, &ctx, api_key, started, response)
        }
        ApiKey::DescribeConfigs => ready(broker, &ctx, api_key, started, configs::describe(broker, decode!())),
        ApiKey::InitProducerId => {
            let request = decode!();
            let broker_ref = broker.clone();
            Ok(deferred(broker, &ctx, api_key, started, async move {
                cluster::init_producer_id(&broker_ref, request).await
            }))
        }
        ApiKey::DescribeCluster => ready(broker, &ctx, api_key, started, cluster::describe_cluster(broker, decode!())),
        ApiKey::FindCoordinator => {
            ready(broker, &ctx, api_key, started, groups::find_coordinator(broker, &ctx, decode!()))
        }
        ApiKey::JoinGroup => {
            let future = groups::join(broker, &ctx, decode!());
            Ok(deferred(broker, &ctx, api_key, started, future))
        }
        ApiKey::SyncGroup => {
            let future = groups::sync(broker, decode!());
            Ok(deferred(broker, &ctx, api_key, started, future))
        }
        ApiKey::Heartbeat => ready(broker, &ctx, api_key, started, groups::heartbeat(broker, decode!())),
        ApiKey::LeaveGroup => ready(broker, &ctx, api_key, started, groups::leave(broker, &ctx, decode!())),
        ApiKey::ListGroups => ready(broker, &ctx, api_key, started, groups::list(broker, decode!())),
        ApiKey::DescribeGroups => ready(broker, &ctx, api_key, started, groups::describe(broker, &ctx, decode!())),
        ApiKey::DeleteGroups => {
            let request = decode!();
            let broker_ref = broker.clone();
            Ok(deferred(broker, &ctx, api_key, started, async move { groups::delete(&broker_ref, request).await }))
        }
        ApiKey::OffsetCommit => {
            let request = decode!();
            let broker_ref = broker.clone();
            Ok(deferred(broker, &ctx, api_key, started, async move { offsets::commit(&broker_ref, request).await }))
        }
        ApiKey::OffsetForLeaderEpoch => ready(broker, &ctx, api_key, started, leader_epoch::handle(broker, decode!())),
        ApiKey::OffsetFetch => ready(broker, &ctx, api_key, started, offsets::fetch(broker, ctx.version(), decode!())),
        ApiKey::OffsetDelete => {
            let request = decode!();
            let broker_ref = broker.clone();
            Ok(deferred(broker, &ctx, api_key, started, async move { offsets::delete(&broker_ref, request).await }))
        }
        ApiKey::AlterPartitionReassignments => {
            let request = decode!();
            let broker_ref = broker.clone();
            Ok(deferred(
                broker,
                &ctx,
                api_key,
                started,
                async move { reassignments::alter(&broker_ref, request).await },
            ))
        }
        ApiKey::ListPartitionReassignments => {
            ready(broker, &ctx, api_key, started, reassignments::list(broker, decode!()))
        }
        ApiKey::UnregisterBroker => {
            let request = decode!();
            let broker_ref = broker.clone();
            Ok(deferred(broker, &ctx, api_key, started, async move {
                cluster::unregister_broker(&broker_ref, request).await
            }))
        }
        other => Err(format!("{other:?} is listed as supported but has no handler")),
    }
}

/// This broker's replica of `topic`-`index` and its leader epoch, if this broker leads it;
/// otherwise the error a client should see: NOT_LEADER_OR_FOLLOWER for a partition that exists
/// but is led elsewhere (the client refreshes its metadata), UNKNOWN_TOPIC_OR_PARTITION else.
pub(crate) fn led_partition(
    broker: &Broker,
    topic: &str,
    index: i32,
) -> Result<(Arc<crate::partition::Partition>, i32), ResponseError> {
    if let Some(partition) = broker.catalog.partition(topic, index) {
        if let Some(epoch) = partition.leader_epoch_if_leader() {
            return Ok((partition, epoch));
        }
    }
    let exists = broker
        .cluster
        .metadata()
        .topics
        .get(topic)
        .is_some_and(|t| usize::try_from(index).is_ok_and(|i| i < t.partitions.len()));
    Err(if exists { ResponseError::NotLeaderOrFollower } else { ResponseError::UnknownTopicOrPartition })
}
