//! Kafka responses turned into the plain rows of [`crate::model`]. Nothing here trusts the
//! answer: unknown error codes, undecodable assignments and missing fields become text or are
//! skipped, never a panic.

use crate::model::{MemberRow, QuorumMember, RawBroker, RawPartition, RawTopic};
use bytes::Buf;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, DescribeClusterResponse, DescribeConfigsResponse, DescribeGroupsResponse,
    DescribeQuorumResponse, FindCoordinatorResponse, ListGroupsResponse, ListOffsetsResponse, MetadataResponse,
    OffsetFetchResponse,
};
use kafka_protocol::protocol::{Decodable, Message, StrBytes};
use std::collections::BTreeMap;

/// A Kafka error code as text; None for 0.
pub fn error_name(code: i16) -> Option<String> {
    if code == 0 {
        return None;
    }
    Some(ResponseError::try_from_code(code).map_or_else(|| format!("error {code}"), |e| format!("{e:?}")))
}

/// Error codes meaning "ask FindCoordinator again".
pub fn is_coordinator_moved(code: i16) -> bool {
    [ResponseError::NotCoordinator, ResponseError::CoordinatorNotAvailable, ResponseError::CoordinatorLoadInProgress]
        .iter()
        .any(|e| e.code() == code)
}

/// Topics and partitions of a Metadata answer, offsets not yet known.
pub fn topics(metadata: &MetadataResponse) -> Vec<RawTopic> {
    metadata
        .topics
        .iter()
        .filter_map(|t| {
            let name = t.name.as_ref()?.0.to_string();
            let partitions = t
                .partitions
                .iter()
                .map(|p| RawPartition {
                    index: p.partition_index,
                    leader: p.leader_id.0,
                    replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                    isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                    offline_replicas: p.offline_replicas.iter().map(|b| b.0).collect(),
                    // LEADER_NOT_AVAILABLE is what an offline partition reports; the leader column says it.
                    error: error_name(p.error_code).filter(|_| p.leader_id.0 >= 0),
                    log_start: None,
                    log_end: None,
                })
                .collect();
            Some(RawTopic { name, internal: t.is_internal, error: error_name(t.error_code), partitions })
        })
        .collect()
}

/// Brokers in Metadata, plus fenced ones DescribeCluster reported.
pub fn brokers(metadata: &MetadataResponse, cluster: Option<&DescribeClusterResponse>) -> Vec<RawBroker> {
    let mut brokers: Vec<RawBroker> = metadata
        .brokers
        .iter()
        .map(|b| RawBroker {
            id: b.node_id.0,
            host: b.host.to_string(),
            port: b.port,
            rack: b.rack.as_ref().map(|r| r.to_string()),
            ..RawBroker::default()
        })
        .collect();
    for b in cluster.map_or(&[][..], |c| c.brokers.as_slice()) {
        match brokers.iter_mut().find(|known| known.id == b.broker_id.0) {
            Some(known) => known.fenced = b.is_fenced,
            None if b.is_fenced => brokers.push(RawBroker {
                id: b.broker_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.as_ref().map(|r| r.to_string()),
                fenced: true,
                ..RawBroker::default()
            }),
            None => {}
        }
    }
    brokers.sort_by_key(|b| b.id);
    brokers
}

/// Each quorum member's part, by node id, from a DescribeQuorum answer: lag is the records a
/// member is behind the leader's high watermark.
pub fn quorum_roles(answer: &DescribeQuorumResponse) -> BTreeMap<i32, QuorumMember> {
    let mut roles = BTreeMap::new();
    let Some(p) = answer.topics.first().and_then(|t| t.partitions.first()) else { return roles };
    if p.error_code != 0 {
        return roles;
    }
    let lag = |end: i64| (end >= 0).then(|| (p.high_watermark - end).max(0));
    for v in &p.current_voters {
        let role = if v.replica_id == p.leader_id {
            QuorumMember::Leader
        } else {
            QuorumMember::Voter { lag: lag(v.log_end_offset) }
        };
        roles.insert(v.replica_id.0, role);
    }
    for o in &p.observers {
        roles.entry(o.replica_id.0).or_insert(QuorumMember::Observer { lag: lag(o.log_end_offset) });
    }
    roles
}

/// (topic, partition) → offset, or the error the partition reported.
pub fn offsets(response: &ListOffsetsResponse) -> Vec<((String, i32), Result<i64, String>)> {
    response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                let value = match error_name(p.error_code) {
                    Some(e) => Err(e),
                    None => Ok(p.offset),
                };
                ((t.name.0.to_string(), p.partition_index), value)
            })
        })
        .collect()
}

/// A group as ListGroups names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedGroup {
    /// Group id.
    pub id: String,
    /// Protocol type.
    pub protocol_type: String,
    /// State (from v4, else empty).
    pub state: String,
}

/// The groups of a ListGroups answer.
pub fn listed_groups(response: &ListGroupsResponse) -> Result<Vec<ListedGroup>, String> {
    if let Some(e) = error_name(response.error_code) {
        return Err(format!("ListGroups: {e}"));
    }
    Ok(response
        .groups
        .iter()
        .map(|g| ListedGroup {
            id: g.group_id.0.to_string(),
            protocol_type: g.protocol_type.to_string(),
            state: g.group_state.to_string(),
        })
        .collect())
}

/// Coordinator id per group from a FindCoordinator answer (`asked` is the key of a pre-v4
/// single-key request).
pub fn coordinators(response: &FindCoordinatorResponse, asked: Option<&str>) -> Vec<(String, Result<i32, i16>)> {
    match asked {
        Some(key) => {
            let answer = if response.error_code == 0 { Ok(response.node_id.0) } else { Err(response.error_code) };
            vec![(key.to_string(), answer)]
        }
        None => response
            .coordinators
            .iter()
            .map(|c| (c.key.to_string(), if c.error_code == 0 { Ok(c.node_id.0) } else { Err(c.error_code) }))
            .collect(),
    }
}

/// One group as DescribeGroups described it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DescribedGroup {
    /// State.
    pub state: String,
    /// Protocol type.
    pub protocol_type: String,
    /// Assignor.
    pub protocol: String,
    /// Members.
    pub members: Vec<MemberRow>,
}

/// Groups of a DescribeGroups answer, or each group's error code.
pub fn described_groups(response: &DescribeGroupsResponse) -> Vec<(String, Result<DescribedGroup, i16>)> {
    response
        .groups
        .iter()
        .map(|g| {
            let id = g.group_id.0.to_string();
            if g.error_code != 0 {
                return (id, Err(g.error_code));
            }
            let consumer = g.protocol_type.is_empty() || g.protocol_type.as_str() == "consumer";
            let members = g
                .members
                .iter()
                .map(|m| MemberRow {
                    member_id: m.member_id.to_string(),
                    instance_id: m.group_instance_id.as_ref().map(StrBytes::to_string),
                    client_id: m.client_id.to_string(),
                    host: m.client_host.to_string(),
                    assignment: if consumer { assigned_partitions(&m.member_assignment) } else { Vec::new() },
                })
                .collect();
            let described = DescribedGroup {
                state: g.group_state.to_string(),
                protocol_type: g.protocol_type.to_string(),
                protocol: g.protocol_data.to_string(),
                members,
            };
            (id, Ok(described))
        })
        .collect()
}

/// Committed offsets per group: (topic, partition, offset), or the group's error code.
/// `asked` is the group of a pre-v8 single-group request.
pub type Committed = Vec<(String, Result<Vec<(String, i32, i64)>, i16>)>;

/// Committed offsets of an OffsetFetch answer; partitions without a commit (-1) are left out.
pub fn committed(response: &OffsetFetchResponse, asked: Option<&str>) -> Committed {
    match asked {
        Some(group) => {
            if response.error_code != 0 {
                return vec![(group.to_string(), Err(response.error_code))];
            }
            let offsets = response
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .filter(|p| p.error_code == 0 && p.committed_offset >= 0)
                        .map(|p| (t.name.0.to_string(), p.partition_index, p.committed_offset))
                })
                .collect();
            vec![(group.to_string(), Ok(offsets))]
        }
        None => response
            .groups
            .iter()
            .map(|g| {
                if g.error_code != 0 {
                    return (g.group_id.0.to_string(), Err(g.error_code));
                }
                let offsets = g
                    .topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions
                            .iter()
                            .filter(|p| p.error_code == 0 && p.committed_offset >= 0)
                            .map(|p| (t.name.0.to_string(), p.partition_index, p.committed_offset))
                    })
                    .collect();
                (g.group_id.0.to_string(), Ok(offsets))
            })
            .collect(),
    }
}

/// The value of `key` in a DescribeConfigs answer.
pub fn config_value(response: &DescribeConfigsResponse, key: &str) -> Option<String> {
    response
        .results
        .iter()
        .filter(|r| r.error_code == 0)
        .flat_map(|r| r.configs.iter())
        .find(|c| c.name.as_str() == key)
        .and_then(|c| c.value.as_ref().map(|v| v.to_string()))
}

/// (topic, partition) pairs in a consumer-protocol assignment; empty when it does not decode.
pub fn assigned_partitions(assignment: &[u8]) -> Vec<(String, i32)> {
    let mut buf = bytes::Bytes::copy_from_slice(assignment);
    if buf.remaining() < 2 {
        return Vec::new();
    }
    // Newer assignment versions only append fields: decode with the newest this codec knows.
    let version = buf.get_i16().clamp(0, ConsumerProtocolAssignment::VERSIONS.max);
    ConsumerProtocolAssignment::decode(&mut buf, version)
        .map(|a| {
            a.assigned_partitions
                .into_iter()
                .flat_map(|tp| {
                    let topic = tp.topic.to_string();
                    tp.partitions.into_iter().map(move |p| (topic.clone(), p))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn assignments_decode_and_garbage_is_empty() {
        let assignment = ConsumerProtocolAssignment::default()
            .with_assigned_partitions(vec![TopicPartition::default()
                .with_topic(TopicName(StrBytes::from_static_str("web-logs")))
                .with_partitions(vec![0, 2])]);
        let mut buf = BytesMut::new();
        buf.put_i16(1);
        assignment.encode(&mut buf, 1).unwrap();
        assert_eq!(assigned_partitions(&buf), vec![("web-logs".to_string(), 0), ("web-logs".to_string(), 2)]);
        assert!(assigned_partitions(&[0, 1, 0xff]).is_empty());
        assert!(assigned_partitions(&[]).is_empty());
    }

    #[test]
    fn error_codes_have_names() {
        assert_eq!(error_name(0), None);
        assert_eq!(error_name(ResponseError::NotCoordinator.code()).as_deref(), Some("NotCoordinator"));
        assert_eq!(error_name(-999).as_deref(), Some("Unknown(-999)"));
        assert!(is_coordinator_moved(ResponseError::NotCoordinator.code()));
        assert!(!is_coordinator_moved(ResponseError::GroupIdNotFound.code()));
    }

    #[test]
    fn quorum_roles_name_the_leader_and_each_members_distance() {
        use kafka_protocol::messages::describe_quorum_response::{PartitionData, ReplicaState, TopicData};
        use kafka_protocol::messages::BrokerId;
        let member = |id, end| ReplicaState::default().with_replica_id(BrokerId(id)).with_log_end_offset(end);
        let answer = DescribeQuorumResponse::default().with_topics(vec![TopicData::default().with_partitions(vec![
            PartitionData::default()
                .with_leader_id(BrokerId(2))
                .with_high_watermark(100)
                .with_current_voters(vec![member(1, 100), member(2, 100), member(3, 60)])
                .with_observers(vec![member(4, -1)]),
        ])]);
        let roles = quorum_roles(&answer);
        assert_eq!(roles.get(&2), Some(&QuorumMember::Leader));
        assert_eq!(roles.get(&1), Some(&QuorumMember::Voter { lag: Some(0) }));
        assert_eq!(roles.get(&3), Some(&QuorumMember::Voter { lag: Some(40) }));
        assert_eq!(roles.get(&4), Some(&QuorumMember::Observer { lag: None }));
        assert_eq!(QuorumMember::Voter { lag: Some(40) }.describe(), "voter, 40 behind");
        let refused = DescribeQuorumResponse::default().with_error_code(41);
        assert!(quorum_roles(&refused).is_empty());
    }
}
