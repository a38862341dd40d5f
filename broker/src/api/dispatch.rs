//! The router: a table from API key to handler, built once from the [`Handler`] impls. It
//! decodes a request frame, runs the ordered part of its handler and returns the rest as a
//! [`Pending`] response frame; it also keeps the per-API request metrics.

use super::context::{BrokerContext, Connection, Reply, RequestContext};
use super::response::{encode_response, ResponseFrame};
use super::SUPPORTED_APIS;
use bytes::Bytes;
use futures::future::BoxFuture;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{HeaderVersion, Request};
use millrace_protocol::message::{self, MessageError, RequestPrelude};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// A response frame still being produced; `None` means the request gets no response (acks=0).
pub type Pending = BoxFuture<'static, Option<ResponseFrame>>;

/// One Kafka API, answered over the context `C`. Each handler states the context traits it
/// needs in its impl's bounds; it never sees the whole broker.
pub trait Handler<C: ?Sized>: Request + Sized + Send + 'static {
    /// Runs the request: the order-sensitive part before returning, the rest in the reply.
    fn handle(ctx: &Arc<C>, rc: &RequestContext, request: Self) -> impl Future<Output = Reply<Self::Response>> + Send;
}

/// Why a connection must be closed instead of answered: the stream cannot be trusted.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// A key the codec does not know.
    #[error("unknown API key {key} (version {version}); closing connection")]
    UnknownApi {
        /// The raw key.
        key: i16,
        /// The version asked for.
        version: i16,
    },
    /// An API this broker does not answer (and did not advertise).
    #[error("{api:?} (key {key}) is not implemented by this broker and was not advertised in ApiVersions; closing connection")]
    NotImplemented {
        /// The API.
        api: ApiKey,
        /// The raw key.
        key: i16,
    },
    /// A version outside what the codec decodes.
    #[error("{api:?} v{version} is not supported (this broker decodes v{min}..=v{max}); closing connection")]
    UnsupportedVersion {
        /// The API.
        api: ApiKey,
        /// The version asked for.
        version: i16,
        /// Lowest decodable.
        min: i16,
        /// Highest decodable.
        max: i16,
    },
    /// Bytes that are not a valid request.
    #[error("{0}")]
    Malformed(#[from] MessageError),
}

type Call<C> = fn(Arc<C>, RequestContext, Bytes, Instant) -> BoxFuture<'static, Result<Pending, DispatchError>>;

/// The dispatch table for context `C`.
pub struct Router<C> {
    /// Indexed by API key.
    routes: Vec<Option<Call<C>>>,
}

fn call<C: BrokerContext, R: Handler<C>>(
    ctx: Arc<C>,
    rc: RequestContext,
    mut body: Bytes,
    started: Instant,
) -> BoxFuture<'static, Result<Pending, DispatchError>>
where
    R::Response: Send + HeaderVersion,
{
    Box::pin(async move {
        let api = ApiKey::try_from(R::KEY).map_err(|_| MessageError::UnknownApi(R::KEY))?;
        let version = rc.version();
        let request: R = message::decode_request(&mut body, api, version)?;
        let reply = R::handle(&ctx, &rc, request).await;
        let correlation_id = rc.header.correlation_id;
        let finish = move |ctx: &C, response: R::Response| {
            ctx.metrics().observe_request(api, started);
            match encode_response(api, version, correlation_id, &response) {
                Ok(frame) => Some(frame),
                Err(e) => {
                    // Cannot happen for responses built from valid requests; log it loudly if it does.
                    tracing::error!(peer = %rc.peer(), "{e}");
                    None
                }
            }
        };
        Ok(match reply {
            Reply::Now(response) => {
                let frame = finish(&ctx, response);
                Box::pin(async move { frame }) as Pending
            }
            Reply::Later(future) => Box::pin(async move {
                let response = future.await;
                finish(&ctx, response)
            }),
            Reply::Silent => {
                ctx.metrics().observe_request(api, started);
                Box::pin(async { None })
            }
        })
    })
}

impl<C: BrokerContext> Router<C> {
    /// The table of every API this broker answers.
    pub fn new() -> Router<C> {
        use kafka_protocol::messages::*;
        let table: [(i16, Call<C>); 42] = [
            (ProduceRequest::KEY, call::<C, ProduceRequest>),
            (FetchRequest::KEY, call::<C, FetchRequest>),
            (ListOffsetsRequest::KEY, call::<C, ListOffsetsRequest>),
            (MetadataRequest::KEY, call::<C, MetadataRequest>),
            (FindCoordinatorRequest::KEY, call::<C, FindCoordinatorRequest>),
            (ApiVersionsRequest::KEY, call::<C, ApiVersionsRequest>),
            (CreateTopicsRequest::KEY, call::<C, CreateTopicsRequest>),
            (DeleteTopicsRequest::KEY, call::<C, DeleteTopicsRequest>),
            (InitProducerIdRequest::KEY, call::<C, InitProducerIdRequest>),
            (DescribeConfigsRequest::KEY, call::<C, DescribeConfigsRequest>),
            (AlterConfigsRequest::KEY, call::<C, AlterConfigsRequest>),
            (IncrementalAlterConfigsRequest::KEY, call::<C, IncrementalAlterConfigsRequest>),
            (CreatePartitionsRequest::KEY, call::<C, CreatePartitionsRequest>),
            (DescribeClusterRequest::KEY, call::<C, DescribeClusterRequest>),
            (JoinGroupRequest::KEY, call::<C, JoinGroupRequest>),
            (SyncGroupRequest::KEY, call::<C, SyncGroupRequest>),
            (HeartbeatRequest::KEY, call::<C, HeartbeatRequest>),
            (LeaveGroupRequest::KEY, call::<C, LeaveGroupRequest>),
            (OffsetCommitRequest::KEY, call::<C, OffsetCommitRequest>),
            (OffsetFetchRequest::KEY, call::<C, OffsetFetchRequest>),
            (ListGroupsRequest::KEY, call::<C, ListGroupsRequest>),
            (DescribeGroupsRequest::KEY, call::<C, DescribeGroupsRequest>),
            (DeleteGroupsRequest::KEY, call::<C, DeleteGroupsRequest>),
            (OffsetDeleteRequest::KEY, call::<C, OffsetDeleteRequest>),
            (OffsetForLeaderEpochRequest::KEY, call::<C, OffsetForLeaderEpochRequest>),
            (AlterPartitionReassignmentsRequest::KEY, call::<C, AlterPartitionReassignmentsRequest>),
            (ListPartitionReassignmentsRequest::KEY, call::<C, ListPartitionReassignmentsRequest>),
            (UnregisterBrokerRequest::KEY, call::<C, UnregisterBrokerRequest>),
            (DescribeUserScramCredentialsRequest::KEY, call::<C, DescribeUserScramCredentialsRequest>),
            (AlterUserScramCredentialsRequest::KEY, call::<C, AlterUserScramCredentialsRequest>),
            (DescribeAclsRequest::KEY, call::<C, DescribeAclsRequest>),
            (CreateAclsRequest::KEY, call::<C, CreateAclsRequest>),
            (DeleteAclsRequest::KEY, call::<C, DeleteAclsRequest>),
            (DeleteRecordsRequest::KEY, call::<C, DeleteRecordsRequest>),
            (ElectLeadersRequest::KEY, call::<C, ElectLeadersRequest>),
            (DescribeLogDirsRequest::KEY, call::<C, DescribeLogDirsRequest>),
            (DescribeProducersRequest::KEY, call::<C, DescribeProducersRequest>),
            (DescribeQuorumRequest::KEY, call::<C, DescribeQuorumRequest>),
            (AddRaftVoterRequest::KEY, call::<C, AddRaftVoterRequest>),
            (RemoveRaftVoterRequest::KEY, call::<C, RemoveRaftVoterRequest>),
            (SaslHandshakeRequest::KEY, call::<C, SaslHandshakeRequest>),
            (SaslAuthenticateRequest::KEY, call::<C, SaslAuthenticateRequest>),
        ];
        let size = table.iter().map(|(key, _)| *key).max().map_or(0, |k| k as usize + 1);
        let mut routes = vec![None; size];
        for (key, call) in table {
            routes[key as usize] = Some(call);
        }
        Router { routes }
    }

    /// The API keys this router answers.
    pub fn keys(&self) -> impl Iterator<Item = i16> + '_ {
        self.routes.iter().enumerate().filter(|(_, r)| r.is_some()).map(|(k, _)| k as i16)
    }

    /// Decodes one request frame, runs the ordered part of its handler and returns the rest.
    /// An `Err` means the connection must be closed.
    pub async fn dispatch(
        &self,
        ctx: &Arc<C>,
        frame: Bytes,
        connection: &Connection,
    ) -> Result<Pending, DispatchError> {
        let started = Instant::now();
        let prelude = RequestPrelude::read(&frame)?;
        let (key, version) = (prelude.api_key, prelude.version);
        let Ok(api) = ApiKey::try_from(key) else {
            return Err(DispatchError::UnknownApi { key, version });
        };
        let route = usize::try_from(key).ok().and_then(|k| self.routes.get(k).copied().flatten());
        let Some(route) = route.filter(|_| SUPPORTED_APIS.contains(&api)) else {
            ctx.metrics().unsupported_requests.inc();
            return Err(DispatchError::NotImplemented { api, key });
        };
        let codec = api.valid_versions();
        if api == ApiKey::ApiVersions && version > codec.max {
            // KIP-511: answer an unknown ApiVersions version with v0 and UNSUPPORTED_VERSION so
            // the client retries with a version from the list.
            let response = super::api_versions::unsupported_version_response();
            let frame = message::encode_response(api, 0, prelude.correlation_id, &response)?;
            return Ok(Box::pin(async move { Some(ResponseFrame::from(frame)) }));
        }
        if version < codec.min || version > codec.max {
            ctx.metrics().unsupported_requests.inc();
            return Err(DispatchError::UnsupportedVersion { api, version, min: codec.min, max: codec.max });
        }
        let mut body = frame;
        let header = message::decode_request_header(&mut body, api, version)?;
        let rc = RequestContext { connection: connection.clone(), header };
        route(ctx.clone(), rc, body, started).await
    }
}

impl<C: BrokerContext> Default for Router<C> {
    fn default() -> Self {
        Router::new()
    }
}
