//! Cluster-level APIs: DescribeCluster and InitProducerId.

use super::authorize::Access;
use super::context::{Authorize, Producers, Reply, RequestContext, Settings};
use super::{str_bytes, Handler};
use crate::cluster::Quorum;
use crate::security::acl::{AclOperation, ResourceType, CLUSTER_RESOURCE_NAME};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, InitProducerIdRequest, InitProducerIdResponse,
    ProducerId, UnregisterBrokerRequest, UnregisterBrokerResponse,
};
use std::sync::Arc;

/// Answers DescribeCluster: the unfenced brokers (fenced ones too, marked, when a v2 request
/// asks with `include_fenced_brokers`, KIP-1073) and the active controller, and what the client
/// may do on the cluster when it asks (0 without Describe, as Kafka answers).
fn describe_cluster<C: Quorum + Settings>(
    ctx: &C,
    access: &Access,
    request: &DescribeClusterRequest,
    listener: &str,
) -> DescribeClusterResponse {
    let operations = match request.include_cluster_authorized_operations {
        true if access.cluster(AclOperation::Describe) => {
            access.operations(ResourceType::Cluster, CLUSTER_RESOURCE_NAME)
        }
        true => 0,
        false => super::metadata::OPERATIONS_OMITTED,
    };
    let metadata = ctx.metadata();
    let brokers = metadata
        .brokers
        .values()
        .filter(|b| request.include_fenced_brokers || !b.fenced)
        .filter_map(|b| {
            let (host, port) = b.endpoint(listener)?;
            Some(
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(b.id))
                    .with_host(str_bytes(host))
                    .with_port(i32::from(port))
                    .with_rack(b.rack.clone().map(str_bytes))
                    .with_is_fenced(b.fenced),
            )
        })
        .collect();
    DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(ctx.cluster_id()))
        .with_controller_id(BrokerId(ctx.controller_id()))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(operations)
}

/// Answers InitProducerId for idempotent producers with a fresh producer id at epoch 0, as
/// Kafka does without a transactional id: a producer re-initialising after an error (KIP-360
/// sends its old id and epoch) gets a new id too. Bumping the epoch of the id in the request
/// would let any client fence any producer whose id it guessed (ids are sequential), and an
/// idempotent producer treats a fenced epoch as fatal. Transactional ids are refused because
/// this broker has no transaction coordinator.
async fn init_producer_id<C: Quorum + Producers>(
    ctx: &C,
    access: &Access,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default();
    let refused = |error: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(error.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if request.transactional_id.is_some() {
        return refused(ResponseError::TransactionalIdAuthorizationFailed);
    }
    // Kafka lets Write on any topic stand in for IdempotentWrite on the cluster (KIP-679).
    let idempotent = access.allows_quietly(AclOperation::IdempotentWrite, ResourceType::Cluster, CLUSTER_RESOURCE_NAME)
        || access.any(AclOperation::Write, ResourceType::Topic);
    if !idempotent {
        return refused(ResponseError::ClusterAuthorizationFailed);
    }
    match ctx.producer_ids().allocate(ctx).await {
        Ok(id) => response.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(e) => {
            tracing::warn!(error = %e, "allocating a producer id failed");
            // Retriable for clients: the quorum may be electing a leader.
            response
                .with_error_code(ResponseError::CoordinatorNotAvailable.code())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
        }
    }
}

/// Answers UnregisterBroker: removes a stopped broker from the cluster (its replicas show as
/// offline until reassigned; its metadata replication stops).
async fn unregister_broker<C: Quorum>(
    ctx: &C,
    access: &Access,
    request: UnregisterBrokerRequest,
) -> UnregisterBrokerResponse {
    let id = request.broker_id.0;
    if !access.cluster(AclOperation::Alter) {
        return UnregisterBrokerResponse::default().with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let cmd = crate::controller::MetadataCommand::UnregisterBroker { id };
    match ctx.propose(cmd, std::time::Duration::from_secs(10)).await {
        Ok(_) => {
            tracing::info!(broker = id, "broker unregistered");
            UnregisterBrokerResponse::default()
        }
        Err(e) => {
            let code = e.error_code();
            UnregisterBrokerResponse::default()
                .with_error_code(code.code())
                .with_error_message(Some(str_bytes(e.to_string())))
        }
    }
}

impl<C: Quorum + Settings + Authorize> Handler<C> for DescribeClusterRequest {
    async fn handle(
        ctx: &Arc<C>,
        rc: &RequestContext,
        request: DescribeClusterRequest,
    ) -> Reply<DescribeClusterResponse> {
        Reply::Now(describe_cluster(&**ctx, &Access::of(&**ctx, rc), &request, &rc.connection.listener))
    }
}

impl<C: Quorum + Producers + Authorize> Handler<C> for InitProducerIdRequest {
    /// Answered later: allocating a new block of ids waits for the quorum.
    async fn handle(
        ctx: &Arc<C>,
        rc: &RequestContext,
        request: InitProducerIdRequest,
    ) -> Reply<InitProducerIdResponse> {
        let ctx = ctx.clone();
        let access = Access::of(&*ctx, rc);
        Reply::Later(Box::pin(async move { init_producer_id(&*ctx, &access, request).await }))
    }
}

impl<C: Quorum + Authorize> Handler<C> for UnregisterBrokerRequest {
    async fn handle(
        ctx: &Arc<C>,
        rc: &RequestContext,
        request: UnregisterBrokerRequest,
    ) -> Reply<UnregisterBrokerResponse> {
        let ctx = ctx.clone();
        let access = Access::of(&*ctx, rc);
        Reply::Later(Box::pin(async move { unregister_broker(&*ctx, &access, request).await }))
    }
}
