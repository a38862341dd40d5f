//! DescribeQuorum (KIP-595, `kafka-metadata-quorum describe`): the metadata quorum's leader, term
//! and committed offset, and how far each voter and observer has replicated the metadata log.
//! Any broker answers; the figures come from the active controller.

use super::authorize::Access;
use super::context::{Authorize, Reply, RequestContext};
use super::{str_bytes, Handler};
use crate::catalog::METADATA_TOPIC;
use crate::cluster::Quorum;
use crate::controller::QuorumReplica;
use crate::security::acl::AclOperation;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_quorum_response::{Listener, Node, PartitionData, ReplicaState, TopicData};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName};
use std::sync::Arc;

fn replica(r: &QuorumReplica) -> ReplicaState {
    ReplicaState::default()
        .with_replica_id(BrokerId(i32::try_from(r.id).unwrap_or(-1)))
        .with_log_end_offset(r.log_end_offset)
        // Raft here does not record when each member last fetched: unknown, as KIP-595 allows.
        .with_last_fetch_timestamp(-1)
        .with_last_caught_up_timestamp(-1)
}

async fn describe<C: Quorum>(ctx: &C, version: i16, request: DescribeQuorumRequest) -> DescribeQuorumResponse {
    let asked_other = request.topics.iter().any(|t| t.topic_name.0.as_str() != METADATA_TOPIC)
        || request.topics.iter().flat_map(|t| t.partitions.iter()).any(|p| p.partition_index != 0);
    if asked_other {
        return DescribeQuorumResponse::default()
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(Some(str_bytes(format!("only {METADATA_TOPIC} partition 0 has a quorum"))));
    }
    let description = match ctx.describe_quorum().await {
        Ok(d) => d,
        Err(e) => {
            return DescribeQuorumResponse::default()
                .with_error_code(ResponseError::NotLeaderOrFollower.code())
                .with_error_message(Some(str_bytes(format!("the metadata quorum has no reachable leader: {e}"))))
        }
    };
    let partition = PartitionData::default()
        .with_partition_index(0)
        .with_leader_id(BrokerId(i32::try_from(description.leader_id).unwrap_or(-1)))
        .with_leader_epoch(i32::try_from(description.term).unwrap_or(i32::MAX))
        .with_high_watermark(description.high_watermark)
        .with_current_voters(description.voters.iter().map(replica).collect())
        .with_observers(description.observers.iter().map(replica).collect());
    let metadata = ctx.metadata();
    // v2 names each voter's endpoints; brokers' Kafka listeners are what tools can reach.
    let voters = if version >= 2 { description.voters.as_slice() } else { &[] };
    let nodes = voters
        .iter()
        .filter_map(|v| metadata.brokers.get(&i32::try_from(v.id).ok()?))
        .map(|b| {
            let listeners = b
                .listeners
                .iter()
                .map(|l| {
                    Listener::default().with_name(str_bytes(&l.name)).with_host(str_bytes(&l.host)).with_port(l.port)
                })
                .collect();
            Node::default().with_node_id(BrokerId(b.id)).with_listeners(listeners)
        })
        .collect();
    DescribeQuorumResponse::default()
        .with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(str_bytes(METADATA_TOPIC)))
            .with_partitions(vec![partition])])
        .with_nodes(nodes)
}

impl<C: Quorum + Authorize + 'static> Handler<C> for DescribeQuorumRequest {
    async fn handle(
        ctx: &Arc<C>,
        rc: &RequestContext,
        request: DescribeQuorumRequest,
    ) -> Reply<DescribeQuorumResponse> {
        if !Access::of(&**ctx, rc).cluster(AclOperation::Describe) {
            return Reply::Now(
                DescribeQuorumResponse::default().with_error_code(ResponseError::ClusterAuthorizationFailed.code()),
            );
        }
        let (ctx, version) = (ctx.clone(), rc.version());
        Reply::Later(Box::pin(async move { describe(&*ctx, version, request).await }))
    }
}
