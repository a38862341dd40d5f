//! ElectLeaders (KIP-460): preferred elections give a partition back to its first replica when
//! that one is in sync and live; unclean elections give a leaderless partition a leader, from the
//! in-sync replicas if one is live, else from any live replica (acknowledged records may be lost).
//! Each election is one command through the metadata quorum.

use super::authorize::Access;
use super::context::{Authorize, Reply, RequestContext};
use super::{str_bytes, Handler};
use crate::cluster::Quorum;
use crate::controller::{ControllerError, MetadataCommand, MetadataError, NO_LEADER};
use crate::security::acl::AclOperation;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Kafka's `ElectionType`.
const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;
/// Most partitions one request may elect (a cluster-wide election names them all).
const MAX_PARTITIONS: usize = 100_000;

/// Why one partition was not elected; `message` is for the operator.
struct Refusal {
    code: ResponseError,
    message: String,
}

impl Refusal {
    fn new(code: ResponseError, message: impl Into<String>) -> Refusal {
        Refusal { code, message: message.into() }
    }
}

/// Runs one election.
async fn elect_one<C: Quorum>(
    ctx: &C,
    election: i8,
    topic: &str,
    index: i32,
    timeout: Duration,
) -> Result<(), Refusal> {
    // A leader epoch that moved meanwhile (a fencing, an ISR change) is worth another look.
    for _ in 0..3 {
        let metadata = ctx.metadata();
        let state = metadata
            .topics
            .get(topic)
            .and_then(|t| usize::try_from(index).ok().and_then(|i| t.partitions.get(i)))
            .ok_or_else(|| {
                Refusal::new(ResponseError::UnknownTopicOrPartition, format!("{topic}-{index} does not exist"))
            })?;
        let cmd = match election {
            PREFERRED => {
                let Some(&preferred) = state.replicas.first() else {
                    return Err(Refusal::new(ResponseError::PreferredLeaderNotAvailable, "no replicas"));
                };
                if state.leader == preferred {
                    return Err(Refusal::new(
                        ResponseError::ElectionNotNeeded,
                        format!("the preferred replica {preferred} already leads"),
                    ));
                }
                MetadataCommand::ElectLeader {
                    topic: topic.to_string(),
                    partition: index,
                    leader: preferred,
                    leader_epoch: state.leader_epoch,
                }
            }
            _ => {
                if state.leader != NO_LEADER {
                    return Err(Refusal::new(
                        ResponseError::ElectionNotNeeded,
                        format!("broker {} leads; unclean elections are for leaderless partitions", state.leader),
                    ));
                }
                MetadataCommand::ElectUncleanLeader { topic: topic.to_string(), partition: index }
            }
        };
        match ctx.propose(cmd, timeout).await {
            Ok(_) => {
                tracing::info!(topic, partition = index, unclean = election == UNCLEAN, "leader elected on request");
                return Ok(());
            }
            Err(ControllerError::Rejected(MetadataError::LeaderEpochMismatch { .. })) => continue,
            Err(ControllerError::Rejected(e @ MetadataError::IneligibleReplica(_))) => {
                return Err(Refusal::new(ResponseError::PreferredLeaderNotAvailable, e.to_string()))
            }
            Err(e) => return Err(Refusal::new(e.error_code(), e.to_string())),
        }
    }
    Err(Refusal::new(ResponseError::RequestTimedOut, "the partition's leadership kept changing; try again"))
}

/// A refusal of the whole request: the top-level error (v1+), or on v0, which has none, that
/// error for every partition named.
fn refuse(version: i16, request: ElectLeadersRequest, code: ResponseError) -> ElectLeadersResponse {
    if version >= 1 {
        return ElectLeadersResponse::default().with_error_code(code.code());
    }
    let results = request
        .topic_partitions
        .unwrap_or_default()
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|&p| PartitionResult::default().with_partition_id(p).with_error_code(code.code()))
                .collect();
            ReplicaElectionResult::default().with_topic(t.topic).with_partition_result(partitions)
        })
        .collect();
    ElectLeadersResponse::default().with_replica_election_results(results)
}

async fn elect<C: Quorum>(
    ctx: &C,
    access: &Access,
    version: i16,
    request: ElectLeadersRequest,
) -> ElectLeadersResponse {
    let election = request.election_type;
    if !access.cluster(AclOperation::Alter) {
        return refuse(version, request, ResponseError::ClusterAuthorizationFailed);
    }
    if election != PREFERRED && election != UNCLEAN {
        return ElectLeadersResponse::default().with_error_code(ResponseError::InvalidRequest.code());
    }
    let timeout = Duration::from_millis(request.timeout_ms.clamp(1_000, 60_000) as u64);
    // Named partitions answer each; "all partitions" answers only those that needed an election.
    let (wanted, all): (Vec<(String, i32)>, bool) = match request.topic_partitions {
        Some(topics) => (
            topics
                .into_iter()
                .flat_map(|t| t.partitions.into_iter().map(move |p| (t.topic.0.to_string(), p)))
                .collect(),
            false,
        ),
        None => {
            let metadata = ctx.metadata();
            let every = metadata
                .topics
                .iter()
                .flat_map(|(name, t)| (0..t.partitions.len() as i32).map(move |i| (name.clone(), i)))
                .collect();
            (every, true)
        }
    };
    if wanted.len() > MAX_PARTITIONS {
        let too_many = ElectLeadersRequest::default();
        return refuse(version, too_many, ResponseError::InvalidRequest);
    }
    let mut results: BTreeMap<String, Vec<PartitionResult>> = BTreeMap::new();
    for (topic, index) in wanted {
        let outcome = elect_one(ctx, election, &topic, index, timeout).await;
        let result = PartitionResult::default().with_partition_id(index);
        let result = match outcome {
            Ok(()) => result,
            Err(r) if all && r.code == ResponseError::ElectionNotNeeded => continue,
            Err(r) => result.with_error_code(r.code.code()).with_error_message(Some(str_bytes(r.message))),
        };
        results.entry(topic).or_default().push(result);
    }
    let results = results
        .into_iter()
        .map(|(topic, partitions)| {
            ReplicaElectionResult::default()
                .with_topic(TopicName(StrBytes::from_string(topic)))
                .with_partition_result(partitions)
        })
        .collect();
    ElectLeadersResponse::default().with_replica_election_results(results)
}

impl<C: Quorum + Authorize + 'static> Handler<C> for ElectLeadersRequest {
    async fn handle(ctx: &Arc<C>, rc: &RequestContext, request: ElectLeadersRequest) -> Reply<ElectLeadersResponse> {
        let (ctx, access, version) = (ctx.clone(), Access::of(&**ctx, rc), rc.version());
        Reply::Later(Box::pin(async move { elect(&*ctx, &access, version, request).await }))
    }
}
