//! Which requests a refresh sends, built here and nowhere else: the poller sends exactly what
//! these functions build, and [`plan_requests`] counts them for a given cluster shape, so the
//! cost of a refresh can be predicted (and benchmarked) from the real planning code.

use super::conn::{api_name, Versions};
use crate::model::RequestCounts;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    ApiKey, BrokerId, DescribeClusterRequest, DescribeConfigsRequest, DescribeGroupsRequest, DescribeQuorumRequest,
    FetchRequest, FindCoordinatorRequest, GroupId, ListGroupsRequest, ListOffsetsRequest, MetadataRequest,
    OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::{Request, StrBytes};
use std::collections::BTreeMap;

/// Highest versions asked for: the newest whose fields this tool fills in; older brokers get
/// the highest version they advertise.
pub const METADATA_VERSION: i16 = 12;
/// DescribeCluster v2 reports fenced brokers.
pub const DESCRIBE_CLUSTER_VERSION: i16 = 2;
/// Highest DescribeQuorum version asked for.
pub const DESCRIBE_QUORUM_VERSION: i16 = 2;
/// ListOffsets v7 (v8+ only add tiered-storage timestamps and a timeout).
pub const LIST_OFFSETS_VERSION: i16 = 7;
/// ListGroups v4 returns each group's state.
pub const LIST_GROUPS_VERSION: i16 = 4;
/// FindCoordinator v4 takes many keys in one request.
pub const FIND_COORDINATOR_VERSION: i16 = 4;
/// DescribeGroups v5.
pub const DESCRIBE_GROUPS_VERSION: i16 = 5;
/// OffsetFetch v8 takes many groups in one request (v9 needs a member epoch).
pub const OFFSET_FETCH_VERSION: i16 = 8;
/// DescribeConfigs v4.
pub const DESCRIBE_CONFIGS_VERSION: i16 = 4;
/// Fetch v12: the newest that names topics (v13+ wants topic ids).
pub const FETCH_VERSION: i16 = 12;
/// Bytes one Fetch may return (the status topic's records, a tail's).
pub const FETCH_MAX_BYTES: i32 = 1 << 20;

/// ListOffsets timestamp asking for the log start offset.
pub const EARLIEST: i64 = -2;
/// ListOffsets timestamp asking for the log end offset (high watermark).
pub const LATEST: i64 = -1;

/// The broker config naming a millrace broker's admin HTTP listener (where `/metrics` is).
pub const ADMIN_LISTENERS_KEY: &str = "millrace.admin.listeners";
const RESOURCE_BROKER: i8 = 4;
const KEY_TYPE_GROUP: i8 = 0;

/// Metadata for every topic, without creating any.
pub fn metadata(versions: &Versions) -> Option<(i16, MetadataRequest)> {
    let version = versions.pick(ApiKey::Metadata, METADATA_VERSION)?;
    // v0 means "all topics" by an empty list, later versions by null.
    let mut request = MetadataRequest::default().with_topics(if version == 0 { Some(Vec::new()) } else { None });
    if version >= 4 {
        request = request.with_allow_auto_topic_creation(false);
    }
    Some((version, request))
}

/// DescribeCluster, with fenced brokers where the broker can report them.
pub fn describe_cluster(versions: &Versions) -> Option<(i16, DescribeClusterRequest)> {
    let version = versions.pick(ApiKey::DescribeCluster, DESCRIBE_CLUSTER_VERSION)?;
    Some((version, DescribeClusterRequest::default().with_include_fenced_brokers(version >= 2)))
}

/// DescribeQuorum (KIP-595) of the metadata log, where the broker offers it.
pub fn describe_quorum(versions: &Versions) -> Option<(i16, DescribeQuorumRequest)> {
    use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
    let version = versions.pick(ApiKey::DescribeQuorum, DESCRIBE_QUORUM_VERSION)?;
    let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    Some((version, request))
}

/// Fetch of `partitions` (index, offset) of `topic` as a consumer, without waiting: at most
/// [`FETCH_MAX_BYTES`] in all.
pub fn fetch(topic: &str, partitions: &[(i32, i64)], versions: &Versions) -> Option<(i16, FetchRequest)> {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    if partitions.is_empty() {
        return None;
    }
    let version = versions.pick(ApiKey::Fetch, FETCH_VERSION)?;
    let per_partition = (FETCH_MAX_BYTES / partitions.len() as i32).max(64 << 10);
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(FETCH_MAX_BYTES)
        // Sessionless (KIP-227): session 0, epoch -1.
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(
                partitions
                    .iter()
                    .map(|(index, offset)| {
                        FetchPartition::default()
                            .with_partition(*index)
                            .with_fetch_offset(*offset)
                            .with_current_leader_epoch(-1)
                            .with_log_start_offset(-1)
                            .with_partition_max_bytes(per_partition)
                    })
                    .collect(),
            )]);
    Some((version, request))
}

/// What a refresh asks one broker: offsets of the partitions it leads (earliest and latest: a
/// request may not name a partition twice), the groups it coordinates, and now and then its
/// configuration.
#[derive(Debug, Default)]
pub struct BrokerPlan {
    /// ListOffsets requests: earliest then latest.
    pub list_offsets: Option<(i16, [ListOffsetsRequest; 2])>,
    /// ListGroups.
    pub list_groups: Option<(i16, ListGroupsRequest)>,
    /// DescribeConfigs of the broker resource, for its admin address.
    pub describe_configs: Option<(i16, DescribeConfigsRequest)>,
}

impl BrokerPlan {
    /// Plans the requests to broker `id` leading `partitions`.
    pub fn new(id: i32, partitions: &[(String, i32)], versions: &Versions, configs_due: bool) -> BrokerPlan {
        let list_offsets = if partitions.is_empty() {
            None
        } else {
            versions
                .pick(ApiKey::ListOffsets, LIST_OFFSETS_VERSION)
                .map(|v| (v, [list_offsets_request(partitions, EARLIEST), list_offsets_request(partitions, LATEST)]))
        };
        let list_groups =
            versions.pick(ApiKey::ListGroups, LIST_GROUPS_VERSION).map(|v| (v, ListGroupsRequest::default()));
        let describe_configs = if configs_due {
            versions.pick(ApiKey::DescribeConfigs, DESCRIBE_CONFIGS_VERSION).map(|v| (v, describe_configs_request(id)))
        } else {
            None
        };
        BrokerPlan { list_offsets, list_groups, describe_configs }
    }

    fn count(&self, counts: &mut RequestCounts) {
        if let Some((_, requests)) = &self.list_offsets {
            for _ in requests {
                counts.add(api_name(ListOffsetsRequest::KEY));
            }
        }
        if self.list_groups.is_some() {
            counts.add(api_name(ListGroupsRequest::KEY));
        }
        if self.describe_configs.is_some() {
            counts.add(api_name(DescribeConfigsRequest::KEY));
        }
    }
}

fn list_offsets_request(partitions: &[(String, i32)], timestamp: i64) -> ListOffsetsRequest {
    let mut by_topic: BTreeMap<&str, Vec<ListOffsetsPartition>> = BTreeMap::new();
    for (topic, partition) in partitions {
        by_topic
            .entry(topic)
            .or_default()
            .push(ListOffsetsPartition::default().with_partition_index(*partition).with_timestamp(timestamp));
    }
    let topics = by_topic
        .into_iter()
        .map(|(name, partitions)| {
            ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(name.to_string())))
                .with_partitions(partitions)
        })
        .collect();
    // replica_id -1: a consumer asking, not a follower.
    ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(topics)
}

fn describe_configs_request(id: i32) -> DescribeConfigsRequest {
    DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
        .with_resource_type(RESOURCE_BROKER)
        .with_resource_name(StrBytes::from_string(id.to_string()))
        .with_configuration_keys(Some(vec![StrBytes::from_static_str(ADMIN_LISTENERS_KEY)]))])
}

/// FindCoordinator for `groups`: one request with every key from v4, else one per group.
pub fn find_coordinator(groups: &[String], versions: &Versions) -> Option<(i16, Vec<FindCoordinatorRequest>)> {
    if groups.is_empty() {
        return None;
    }
    let version = versions.pick(ApiKey::FindCoordinator, FIND_COORDINATOR_VERSION)?;
    let requests = if version >= 4 {
        vec![FindCoordinatorRequest::default()
            .with_key_type(KEY_TYPE_GROUP)
            .with_coordinator_keys(groups.iter().map(|g| StrBytes::from_string(g.clone())).collect())]
    } else {
        groups.iter().map(|g| FindCoordinatorRequest::default().with_key(StrBytes::from_string(g.clone()))).collect()
    };
    Some((version, requests))
}

/// What a refresh asks one group coordinator about the groups it coordinates.
#[derive(Debug, Default)]
pub struct CoordinatorPlan {
    /// DescribeGroups of every group at once.
    pub describe_groups: Option<(i16, DescribeGroupsRequest)>,
    /// OffsetFetch: one request for every group from v8, else one per group.
    pub offset_fetch: Option<(i16, Vec<OffsetFetchRequest>)>,
}

impl CoordinatorPlan {
    /// Plans the requests about `groups` to their coordinator.
    pub fn new(groups: &[String], versions: &Versions) -> CoordinatorPlan {
        if groups.is_empty() {
            return CoordinatorPlan::default();
        }
        let group_id = |g: &String| GroupId(StrBytes::from_string(g.clone()));
        let describe_groups = versions
            .pick(ApiKey::DescribeGroups, DESCRIBE_GROUPS_VERSION)
            .map(|v| (v, DescribeGroupsRequest::default().with_groups(groups.iter().map(group_id).collect())));
        let offset_fetch = versions.pick(ApiKey::OffsetFetch, OFFSET_FETCH_VERSION).and_then(|v| {
            if v >= 8 {
                let request = OffsetFetchRequest::default().with_groups(
                    groups
                        .iter()
                        .map(|g| OffsetFetchRequestGroup::default().with_group_id(group_id(g)).with_topics(None))
                        .collect(),
                );
                Some((v, vec![request]))
            } else if v >= 2 {
                // Null topics ("all committed offsets") exists from v2.
                Some((
                    v,
                    groups
                        .iter()
                        .map(|g| OffsetFetchRequest::default().with_group_id(group_id(g)).with_topics(None))
                        .collect(),
                ))
            } else {
                None
            }
        });
        CoordinatorPlan { describe_groups, offset_fetch }
    }

    fn count(&self, counts: &mut RequestCounts) {
        if self.describe_groups.is_some() {
            counts.add(api_name(DescribeGroupsRequest::KEY));
        }
        if let Some((_, requests)) = &self.offset_fetch {
            for _ in requests {
                counts.add(api_name(OffsetFetchRequest::KEY));
            }
        }
    }
}

/// The shape of a cluster as far as the cost of a refresh goes.
#[derive(Clone, Debug, Default)]
pub struct ClusterShape {
    /// Live broker ids.
    pub brokers: Vec<i32>,
    /// Partitions per leader.
    pub partitions_by_leader: BTreeMap<i32, Vec<(String, i32)>>,
    /// Groups per coordinator.
    pub groups_by_coordinator: BTreeMap<i32, Vec<String>>,
    /// Groups whose coordinator is not cached (new ones, or after NOT_COORDINATOR).
    pub uncached_groups: Vec<String>,
    /// Whether this refresh asks brokers for their configuration.
    pub describe_configs: bool,
    /// Prometheus endpoints scraped.
    pub metrics_endpoints: u32,
    /// Whether the pipeline's status topic exists (one Fetch of what is new in it).
    pub status_topic: bool,
}

/// The requests one refresh of a cluster of `shape` sends when every broker speaks `versions`
/// (connections already open, so no ApiVersions).
pub fn plan_requests(shape: &ClusterShape, versions: &Versions) -> RequestCounts {
    let mut counts = RequestCounts::default();
    if metadata(versions).is_some() {
        counts.add(api_name(MetadataRequest::KEY));
    }
    if describe_cluster(versions).is_some() {
        counts.add(api_name(DescribeClusterRequest::KEY));
    }
    if describe_quorum(versions).is_some() {
        counts.add(api_name(DescribeQuorumRequest::KEY));
    }
    for id in &shape.brokers {
        let partitions = shape.partitions_by_leader.get(id).map_or(&[][..], Vec::as_slice);
        BrokerPlan::new(*id, partitions, versions, shape.describe_configs).count(&mut counts);
    }
    if let Some((_, requests)) = find_coordinator(&shape.uncached_groups, versions) {
        for _ in requests {
            counts.add(api_name(FindCoordinatorRequest::KEY));
        }
    }
    for groups in shape.groups_by_coordinator.values() {
        CoordinatorPlan::new(groups, versions).count(&mut counts);
    }
    if shape.status_topic && fetch(millrace_status::STATUS_TOPIC, &[(0, 0)], versions).is_some() {
        counts.add(api_name(FetchRequest::KEY));
    }
    counts.http = shape.metrics_endpoints;
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(brokers: i32, partitions: i32, groups: usize) -> ClusterShape {
        let mut shape = ClusterShape { brokers: (1..=brokers).collect(), ..ClusterShape::default() };
        for p in 0..partitions {
            shape.partitions_by_leader.entry(p % brokers + 1).or_default().push(("t".to_string(), p));
        }
        for g in 0..groups {
            shape.groups_by_coordinator.entry(g as i32 % brokers + 1).or_default().push(format!("g{g}"));
        }
        shape
    }

    #[test]
    fn a_steady_refresh_costs_a_few_requests_per_broker_whatever_the_partitions() {
        let counts = plan_requests(&shape(3, 1_000, 100), &Versions::latest());
        assert_eq!(counts.get("Metadata"), 1);
        assert_eq!(counts.get("DescribeCluster"), 1);
        assert_eq!(counts.get("ListOffsets"), 6, "earliest and latest per leader");
        assert_eq!(counts.get("ListGroups"), 3);
        assert_eq!(counts.get("FindCoordinator"), 0, "coordinators cached");
        assert_eq!(counts.get("DescribeGroups"), 3);
        assert_eq!(counts.get("OffsetFetch"), 3, "v8 batches groups");
        assert_eq!(counts.get("DescribeConfigs"), 0);
        assert_eq!(counts.get("DescribeQuorum"), 1);
        assert_eq!(counts.get("Fetch"), 0, "no status topic");
        assert_eq!(counts.kafka_total(), 18);
    }

    #[test]
    fn older_brokers_cost_one_request_per_group() {
        let mut shape = shape(3, 30, 10);
        shape.uncached_groups = (0..10).map(|g| format!("g{g}")).collect();
        shape.describe_configs = true;
        let counts = plan_requests(&shape, &Versions::kafka_2());
        assert_eq!(counts.get("DescribeCluster"), 0, "not offered");
        assert_eq!(counts.get("FindCoordinator"), 10);
        assert_eq!(counts.get("OffsetFetch"), 10);
        assert_eq!(counts.get("DescribeConfigs"), 3);
        let batched = plan_requests(&shape, &Versions::latest());
        assert_eq!(batched.get("FindCoordinator"), 1);
    }

    #[test]
    fn planned_requests_encode_at_their_versions() {
        use bytes::BytesMut;
        use kafka_protocol::protocol::Encodable;
        let partitions = vec![("a".to_string(), 0), ("a".to_string(), 1), ("b".to_string(), 0)];
        let groups = vec!["g1".to_string(), "g2".to_string()];
        for max in [0, 2, 4, 7, 8, 9, 12] {
            let versions = Versions::from_ranges(crate::poller::conn::APIS_USED.map(|k| (k, 0, max)));
            let mut buf = BytesMut::new();
            if let Some((v, r)) = metadata(&versions) {
                r.encode(&mut buf, v).unwrap();
            }
            if let Some((v, r)) = describe_cluster(&versions) {
                r.encode(&mut buf, v).unwrap();
            }
            let plan = BrokerPlan::new(1, &partitions, &versions, true);
            if let Some((v, [earliest, latest])) = &plan.list_offsets {
                earliest.encode(&mut buf, *v).unwrap();
                latest.encode(&mut buf, *v).unwrap();
            }
            if let Some((v, r)) = &plan.list_groups {
                r.encode(&mut buf, *v).unwrap();
            }
            if let Some((v, r)) = &plan.describe_configs {
                r.encode(&mut buf, *v).unwrap();
            }
            if let Some((v, rs)) = find_coordinator(&groups, &versions) {
                for r in rs {
                    r.encode(&mut buf, v).unwrap();
                }
            }
            let plan = CoordinatorPlan::new(&groups, &versions);
            if let Some((v, r)) = &plan.describe_groups {
                r.encode(&mut buf, *v).unwrap();
            }
            if let Some((v, rs)) = &plan.offset_fetch {
                for r in rs {
                    r.encode(&mut buf, *v).unwrap_or_else(|e| panic!("OffsetFetch v{v}: {e}"));
                }
            }
            if let Some((v, r)) = fetch("t", &[(0, 5), (1, 7)], &versions) {
                r.encode(&mut buf, v).unwrap_or_else(|e| panic!("Fetch v{v}: {e}"));
            }
        }
    }
}
