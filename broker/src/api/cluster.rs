//! Cluster-level APIs: DescribeCluster and InitProducerId.

use super::str_bytes;
use crate::Broker;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, InitProducerIdRequest, InitProducerIdResponse,
    ProducerId, UnregisterBrokerRequest, UnregisterBrokerResponse,
};
use std::sync::Arc;

/// Answers DescribeCluster: the unfenced brokers and the active controller.
pub fn describe_cluster(broker: &Arc<Broker>, _request: DescribeClusterRequest) -> DescribeClusterResponse {
    let metadata = broker.cluster.metadata();
    let brokers = metadata
        .brokers
        .values()
        .filter(|b| !b.fenced)
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.id))
                .with_host(str_bytes(b.host.clone()))
                .with_port(i32::from(b.port))
                .with_rack(b.rack.clone().map(str_bytes))
        })
        .collect();
    DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(broker.cluster_id()))
        .with_controller_id(BrokerId(broker.cluster.controller_id()))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(i32::MIN)
}

/// Answers InitProducerId for idempotent producers with a fresh producer id at epoch 0, as
/// Kafka does without a transactional id: a producer re-initialising after an error (KIP-360
/// sends its old id and epoch) gets a new id too. Bumping the epoch of the id in the request
/// would let any client fence any producer whose id it guessed (ids are sequential), and an
/// idempotent producer treats a fenced epoch as fatal. Transactional ids are refused because
/// this broker has no transaction coordinator.
pub async fn init_producer_id(broker: &Arc<Broker>, request: InitProducerIdRequest) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default();
    if request.transactional_id.is_some() {
        return response
            .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
    }
    match broker.producer_ids.allocate(&broker.cluster).await {
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
pub async fn unregister_broker(broker: &Arc<Broker>, request: UnregisterBrokerRequest) -> UnregisterBrokerResponse {
    let id = request.broker_id.0;
    let cmd = crate::controller::MetadataCommand::UnregisterBroker { id };
    match broker.cluster.propose(cmd, std::time::Duration::from_secs(10)).await {
        Ok(_) => {
            tracing::info!(broker = id, "broker unregistered");
            UnregisterBrokerResponse::default()
        }
        Err(e) => {
            let code = match &e {
                crate::controller::ControllerError::Rejected(
                    crate::controller::MetadataError::BrokerNotRegistered(_),
                ) => ResponseError::BrokerIdNotRegistered,
                crate::controller::ControllerError::Rejected(_) => ResponseError::InvalidRequest,
                _ => ResponseError::RequestTimedOut,
            };
            UnregisterBrokerResponse::default()
                .with_error_code(code.code())
                .with_error_message(Some(str_bytes(e.to_string())))
        }
    }
}
