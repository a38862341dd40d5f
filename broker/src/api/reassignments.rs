//! AlterPartitionReassignments and ListPartitionReassignments (KIP-455): move a partition's
//! replicas between brokers online. New replicas copy the log as followers; once all of them are
//! in sync the controller switches the partition to the target set (see the metadata model).

use super::authorize::Access;
use super::context::{Authorize, Reply, RequestContext};
use super::{str_bytes, Handler};
use crate::cluster::Quorum;
use crate::controller::{ControllerError, MetadataCommand};
use crate::security::acl::AclOperation;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use std::sync::Arc;
use std::time::Duration;

/// A refused target replica set is INVALID_REPLICA_ASSIGNMENT in this API, as Kafka answers it.
fn reassignment_error(e: &ControllerError) -> ResponseError {
    match e.error_code() {
        ResponseError::InvalidRequest | ResponseError::BrokerIdNotRegistered => ResponseError::InvalidReplicaAssignment,
        code => code,
    }
}

/// Answers AlterPartitionReassignments: starts or cancels (null replicas) each move.
async fn alter<C: Quorum>(ctx: &C, request: AlterPartitionReassignmentsRequest) -> AlterPartitionReassignmentsResponse {
    let timeout = Duration::from_millis(request.timeout_ms.clamp(1000, 60_000) as u64);
    let mut responses = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let target = p.replicas.map(|r| r.into_iter().map(|b| b.0).collect::<Vec<i32>>());
            let cmd = MetadataCommand::AlterReassignment {
                topic: topic.name.0.to_string(),
                partition: p.partition_index,
                target: target.clone(),
            };
            let result = ReassignablePartitionResponse::default().with_partition_index(p.partition_index);
            partitions.push(match ctx.propose(cmd, timeout).await {
                Ok(_) => {
                    tracing::info!(topic = %topic.name.0, partition = p.partition_index, ?target, "reassignment requested");
                    result
                }
                Err(e) => result.with_error_code(reassignment_error(&e).code()).with_error_message(Some(str_bytes(e.to_string()))),
            });
        }
        responses.push(ReassignableTopicResponse::default().with_name(topic.name).with_partitions(partitions));
    }
    AlterPartitionReassignmentsResponse::default().with_responses(responses)
}

/// Answers ListPartitionReassignments: the ongoing moves (all, or of the partitions asked for).
fn list<C: Quorum>(ctx: &C, request: ListPartitionReassignmentsRequest) -> ListPartitionReassignmentsResponse {
    let metadata = ctx.metadata();
    let wanted: Option<Vec<(String, Vec<i32>)>> =
        request.topics.map(|ts| ts.into_iter().map(|t| (t.name.0.to_string(), t.partition_indexes)).collect());
    let ids = |v: &[i32]| v.iter().map(|b| BrokerId(*b)).collect::<Vec<_>>();
    let mut topics = Vec::new();
    for (name, topic) in &metadata.topics {
        let filter = match &wanted {
            None => None,
            Some(w) => match w.iter().find(|(n, _)| n == name) {
                Some((_, parts)) => Some(parts),
                None => continue,
            },
        };
        let partitions: Vec<OngoingPartitionReassignment> = topic
            .partitions
            .iter()
            .enumerate()
            .filter(|(i, p)| p.reassigning() && filter.is_none_or(|f| f.contains(&(*i as i32))))
            .map(|(i, p)| {
                OngoingPartitionReassignment::default()
                    .with_partition_index(i as i32)
                    .with_replicas(ids(&p.replicas))
                    .with_adding_replicas(ids(&p.adding_replicas))
                    .with_removing_replicas(ids(&p.removing_replicas))
            })
            .collect();
        if !partitions.is_empty() {
            topics.push(
                OngoingTopicReassignment::default()
                    .with_name(TopicName(str_bytes(name.clone())))
                    .with_partitions(partitions),
            );
        }
    }
    ListPartitionReassignmentsResponse::default().with_topics(topics)
}

/// The refusal of a cluster-wide API to a client without `operation` on the cluster.
const NOT_AUTHORIZED: &str = "not authorized on the cluster";

impl<C: Quorum + Authorize> Handler<C> for AlterPartitionReassignmentsRequest {
    /// Answered later: each move waits for the quorum. Needs Alter on the cluster.
    async fn handle(
        ctx: &Arc<C>,
        rc: &RequestContext,
        request: AlterPartitionReassignmentsRequest,
    ) -> Reply<AlterPartitionReassignmentsResponse> {
        if !Access::of(&**ctx, rc).cluster(AclOperation::Alter) {
            return Reply::Now(
                AlterPartitionReassignmentsResponse::default()
                    .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
                    .with_error_message(Some(str_bytes(NOT_AUTHORIZED))),
            );
        }
        let ctx = ctx.clone();
        Reply::Later(Box::pin(async move { alter(&*ctx, request).await }))
    }
}

impl<C: Quorum + Authorize> Handler<C> for ListPartitionReassignmentsRequest {
    /// Needs Describe on the cluster.
    async fn handle(
        ctx: &Arc<C>,
        rc: &RequestContext,
        request: ListPartitionReassignmentsRequest,
    ) -> Reply<ListPartitionReassignmentsResponse> {
        if !Access::of(&**ctx, rc).cluster(AclOperation::Describe) {
            return Reply::Now(
                ListPartitionReassignmentsResponse::default()
                    .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
                    .with_error_message(Some(str_bytes(NOT_AUTHORIZED))),
            );
        }
        Reply::Now(list(&**ctx, request))
    }
}
