//! Cluster-level APIs: DescribeCluster and InitProducerId.

use super::str_bytes;
use crate::Broker;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, InitProducerIdRequest, InitProducerIdResponse,
    ProducerId,
};
use std::sync::Arc;

/// Answers DescribeCluster.
pub fn describe_cluster(broker: &Arc<Broker>, _request: DescribeClusterRequest) -> DescribeClusterResponse {
    let (host, port) = broker.advertised_host_port();
    DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(broker.cluster_id.clone()))
        .with_controller_id(BrokerId(broker.config.node_id))
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(BrokerId(broker.config.node_id))
            .with_host(str_bytes(host))
            .with_port(port)])
        .with_cluster_authorized_operations(i32::MIN)
}

/// Answers InitProducerId for idempotent producers. A producer that re-initialises with its
/// current id and epoch gets the epoch bumped (KIP-360); transactional ids are refused because
/// this broker has no transaction coordinator.
pub fn init_producer_id(broker: &Arc<Broker>, request: InitProducerIdRequest) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default();
    if request.transactional_id.is_some() {
        return response
            .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
    }
    if request.producer_id.0 >= 0 && request.producer_epoch >= 0 && request.producer_epoch < i16::MAX - 1 {
        return response.with_producer_id(request.producer_id).with_producer_epoch(request.producer_epoch + 1);
    }
    match broker.producer_ids.allocate() {
        Ok(id) => response.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(e) => {
            tracing::error!(error = %e, "allocating a producer id failed");
            response.with_error_code(e.response_error().code()).with_producer_id(ProducerId(-1)).with_producer_epoch(-1)
        }
    }
}
