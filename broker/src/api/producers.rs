//! DescribeProducers (KIP-664): the idempotent producers writing to partitions this broker leads
//! (`kafka-transactions describe-producers`), with their epochs, last sequences and last writes.

use super::authorize::Access;
use super::context::{led_partition, Authorize, Partitions, Reply, RequestContext};
use super::Handler;
use crate::cluster::Quorum;
use crate::security::acl::AclOperation;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_producers_response::{PartitionResponse, ProducerState, TopicResponse};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use std::sync::Arc;

fn describe<C: Partitions + Quorum>(
    ctx: &C,
    access: &Access,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let allowed = access.topic(AclOperation::Read, &name);
            let partitions = topic
                .partition_indexes
                .iter()
                .map(|&index| {
                    let result = PartitionResponse::default().with_partition_index(index);
                    if !allowed {
                        return result.with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    match led_partition(ctx, &name, index) {
                        Ok((partition, _)) => {
                            let producers = partition
                                .active_producers()
                                .into_iter()
                                .map(|p| {
                                    ProducerState::default()
                                        .with_producer_id(ProducerId(p.producer_id))
                                        .with_producer_epoch(i32::from(p.epoch))
                                        .with_last_sequence(p.last_sequence)
                                        .with_last_timestamp(p.last_timestamp)
                                        // No transactions here: no coordinator, no open transaction.
                                        .with_coordinator_epoch(-1)
                                        .with_current_txn_start_offset(-1)
                                })
                                .collect();
                            result.with_active_producers(producers)
                        }
                        Err(code) => result.with_error_code(code.code()),
                    }
                })
                .collect();
            TopicResponse::default().with_name(topic.name).with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}

impl<C: Partitions + Quorum + Authorize + 'static> Handler<C> for DescribeProducersRequest {
    async fn handle(
        ctx: &Arc<C>,
        rc: &RequestContext,
        request: DescribeProducersRequest,
    ) -> Reply<DescribeProducersResponse> {
        Reply::Now(describe(&**ctx, &Access::of(&**ctx, rc), request))
    }
}
