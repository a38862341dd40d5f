//! ACLs on the fake cluster: the ACL APIs, and every kind of handler refusing a principal its
//! ACLs do not allow, with Kafka's error codes.

use super::{answer, create_offsets_topic, fetch_request, now, produce_request, rc, topic_name};
use crate::api::context::{Principal, Reply, RequestContext};
use crate::api::fake::FakeBroker;
use crate::api::Handler;
use crate::log::batch::test_batches::simple;
use crate::security::acl::{AclOperation as Op, AclPermissionType as Perm, PatternType, ResourceType as Rt};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::sync::Arc;

const ADMIN: &str = "admin";
const ALICE: &str = "alice";

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// A fake cluster enforcing ACLs, with `User:admin` as its super user.
fn secured() -> Arc<FakeBroker> {
    FakeBroker::with_config(|c| {
        c.authorization.enabled = true;
        c.authorization.super_users = vec![format!("User:{ADMIN}")];
        c.topics.auto_create = true;
    })
}

/// `request` as sent by `User:<user>` from 127.0.0.1.
async fn answer_as<R: Handler<FakeBroker>>(ctx: &Arc<FakeBroker>, user: &str, version: i16, request: R) -> R::Response {
    let mut context: RequestContext = rc::<R>(version);
    context.connection.principal = Arc::new(Principal { kind: "User".into(), name: user.into() });
    match R::handle(ctx, &context, request).await {
        Reply::Now(response) => response,
        Reply::Later(future) => future.await,
        Reply::Silent => panic!("no response"),
    }
}

fn creation(rt: Rt, name: &str, pattern: PatternType, principal: &str, op: Op, perm: Perm) -> AclCreation {
    AclCreation::default()
        .with_resource_type(rt.code())
        .with_resource_name(s(name))
        .with_resource_pattern_type(pattern.code())
        .with_principal(s(principal))
        .with_host(s("*"))
        .with_operation(op.code())
        .with_permission_type(perm.code())
}

/// Grants `User:alice` `op` on the literal resource, as the admin.
async fn allow_alice(ctx: &Arc<FakeBroker>, rt: Rt, name: &str, op: Op) {
    let principal = format!("User:{ALICE}");
    let request = CreateAclsRequest::default().with_creations(vec![creation(
        rt,
        name,
        PatternType::Literal,
        &principal,
        op,
        Perm::Allow,
    )]);
    let created = answer_as(ctx, ADMIN, 3, request).await;
    assert_eq!(created.results[0].error_code, 0, "{:?}", created.results[0].error_message);
}

const TOPIC_DENIED: i16 = ResponseError::TopicAuthorizationFailed.code();
const GROUP_DENIED: i16 = ResponseError::GroupAuthorizationFailed.code();
const CLUSTER_DENIED: i16 = ResponseError::ClusterAuthorizationFailed.code();

#[tokio::test]
async fn acls_are_created_described_and_deleted_by_those_allowed_to() {
    let ctx = secured();
    let create = CreateAclsRequest::default().with_creations(vec![
        creation(Rt::Topic, "logs", PatternType::Literal, "User:alice", Op::Read, Perm::Allow),
        creation(Rt::Topic, "logs", PatternType::Literal, "alice", Op::Read, Perm::Allow),
        creation(Rt::Group, "sink-", PatternType::Prefixed, "User:alice", Op::Read, Perm::Allow),
        creation(Rt::Cluster, "other", PatternType::Literal, "User:alice", Op::Alter, Perm::Allow),
        creation(Rt::Topic, "logs", PatternType::Literal, "User:bob", Op::Write, Perm::Deny),
    ]);
    let codes: Vec<i16> = answer_as(&ctx, ADMIN, 3, create).await.results.iter().map(|r| r.error_code).collect();
    let invalid = ResponseError::InvalidRequest.code();
    assert_eq!(codes, vec![0, invalid, 0, invalid, 0], "invalid bindings are refused alone");

    let everything = DescribeAclsRequest::default()
        .with_resource_type_filter(Rt::Any.code())
        .with_resource_name_filter(None)
        .with_pattern_type_filter(PatternType::Any.code())
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(Op::Any.code())
        .with_permission_type(Perm::Any.code());
    let described = answer_as(&ctx, ADMIN, 3, everything.clone()).await;
    assert_eq!(described.error_code, 0);
    let resources: Vec<(i8, String, i8, usize)> = described
        .resources
        .iter()
        .map(|r| (r.resource_type, r.resource_name.to_string(), r.pattern_type, r.acls.len()))
        .collect();
    assert_eq!(resources, vec![(2, "logs".into(), 3, 2), (3, "sink-".into(), 4, 1)]);

    // A non-super user needs Describe / Alter on the cluster for these APIs.
    assert_eq!(answer_as(&ctx, ALICE, 3, everything.clone()).await.error_code, CLUSTER_DENIED);
    let alice_creates = CreateAclsRequest::default().with_creations(vec![creation(
        Rt::Topic,
        "x",
        PatternType::Literal,
        "User:alice",
        Op::All,
        Perm::Allow,
    )]);
    assert_eq!(answer_as(&ctx, ALICE, 3, alice_creates).await.results[0].error_code, CLUSTER_DENIED);

    let by_principal = |principal: &str| {
        DeleteAclsFilter::default()
            .with_resource_type_filter(Rt::Any.code())
            .with_resource_name_filter(None)
            .with_pattern_type_filter(PatternType::Any.code())
            .with_principal_filter(Some(s(principal)))
            .with_host_filter(None)
            .with_operation(Op::Any.code())
            .with_permission_type(Perm::Any.code())
    };
    let unknown_op = by_principal("User:bob").with_operation(42);
    let delete = DeleteAclsRequest::default().with_filters(vec![by_principal("User:alice"), unknown_op]);
    assert_eq!(answer_as(&ctx, ALICE, 3, delete.clone()).await.filter_results[0].error_code, CLUSTER_DENIED);
    let deleted = answer_as(&ctx, ADMIN, 3, delete).await;
    let matched: Vec<(i16, Vec<String>)> = deleted
        .filter_results
        .iter()
        .map(|f| (f.error_code, f.matching_acls.iter().map(|m| m.resource_name.to_string()).collect()))
        .collect();
    assert_eq!(matched, vec![(0, vec!["logs".into(), "sink-".into()]), (invalid, vec![])]);
    let left = crate::cluster::Quorum::metadata(&*ctx).acls.clone();
    assert_eq!(left.len(), 1);
    assert!(left.iter().all(|b| b.entry.principal == "User:bob"));

    // Without an authorizer Kafka answers SECURITY_DISABLED.
    let open = FakeBroker::new();
    assert_eq!(answer(&open, 3, everything).await.error_code, ResponseError::SecurityDisabled.code());
}

#[tokio::test]
async fn produce_and_fetch_need_write_and_read_and_followers_need_cluster_action() {
    let ctx = secured();
    assert_eq!(answer_as(&ctx, ADMIN, 7, create_topic_request("t")).await.topics[0].error_code, 0);
    let code = |r: &ProduceResponse| r.responses[0].partition_responses[0].error_code;
    assert_eq!(code(&answer_as(&ctx, ALICE, 9, produce_request("t", 0, 1, simple(1, now()))).await), TOPIC_DENIED);
    // Unknown topics are refused alike: a refused client learns nothing about what exists.
    assert_eq!(code(&answer_as(&ctx, ALICE, 9, produce_request("nope", 0, 1, simple(1, now()))).await), TOPIC_DENIED);
    assert_eq!(ctx.catalog.partition("t", 0).unwrap().offsets().1, 0, "nothing refused was appended");
    allow_alice(&ctx, Rt::Topic, "t", Op::Write).await;
    assert_eq!(code(&answer_as(&ctx, ALICE, 9, produce_request("t", 0, 1, simple(2, now()))).await), 0);

    let fetched = |r: &FetchResponse| r.responses[0].partitions[0].error_code;
    assert_eq!(fetched(&answer_as(&ctx, ALICE, 12, fetch_request("t", 0, 0)).await), TOPIC_DENIED);
    allow_alice(&ctx, Rt::Topic, "t", Op::Read).await;
    assert_eq!(fetched(&answer_as(&ctx, ALICE, 12, fetch_request("t", 0, 0)).await), 0);

    // Posing as replica 2: refused before the leader records anything about that follower.
    let as_replica = fetch_request("t", 2, 0).with_replica_id(BrokerId(2));
    assert_eq!(fetched(&answer_as(&ctx, ALICE, 12, as_replica.clone()).await), TOPIC_DENIED);
    allow_alice(&ctx, Rt::Cluster, "kafka-cluster", Op::ClusterAction).await;
    assert_ne!(fetched(&answer_as(&ctx, ALICE, 12, as_replica).await), TOPIC_DENIED);
}

fn create_topic_request(name: &str) -> CreateTopicsRequest {
    CreateTopicsRequest::default().with_topics(vec![create_topics_request::CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(1)
        .with_replication_factor(-1)])
}

#[tokio::test]
async fn metadata_hides_what_the_client_may_not_describe() {
    let ctx = secured();
    for name in ["a", "b"] {
        assert_eq!(answer_as(&ctx, ADMIN, 7, create_topic_request(name)).await.topics[0].error_code, 0);
    }
    allow_alice(&ctx, Rt::Topic, "a", Op::Read).await;
    let all = answer_as(&ctx, ALICE, 12, MetadataRequest::default().with_topics(None)).await;
    let names: Vec<String> = all.topics.iter().filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())).collect();
    assert_eq!(names, vec!["a".to_string()], "Read implies Describe; b is left out");

    let wanted = |names: &[&str]| {
        MetadataRequest::default()
            .with_topics(Some(
                names.iter().map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n)))).collect(),
            ))
            .with_allow_auto_topic_creation(true)
            .with_include_topic_authorized_operations(true)
    };
    let named = answer_as(&ctx, ALICE, 12, wanted(&["a", "b", "new"])).await;
    let codes: Vec<i16> = named.topics.iter().map(|t| t.error_code).collect();
    assert_eq!(codes, vec![0, TOPIC_DENIED, TOPIC_DENIED]);
    let read_and_describe = (1 << Op::Read.code()) | (1 << Op::Describe.code());
    assert_eq!(named.topics[0].topic_authorized_operations, read_and_describe);
    assert!(!crate::cluster::Quorum::metadata(&*ctx).topics.contains_key("new"), "no Create, no auto-creation");

    // Create on the topic lets a client auto-create it (Describe too, for it to ask at all).
    allow_alice(&ctx, Rt::Topic, "new", Op::Create).await;
    allow_alice(&ctx, Rt::Topic, "new", Op::Describe).await;
    assert_eq!(answer_as(&ctx, ALICE, 12, wanted(&["new"])).await.topics[0].error_code, 0);

    // v10 still carries the cluster's operations: 0 without Describe on the cluster.
    let cluster = MetadataRequest::default().with_topics(Some(vec![])).with_include_cluster_authorized_operations(true);
    assert_eq!(answer_as(&ctx, ALICE, 10, cluster.clone()).await.cluster_authorized_operations, 0);
    let everything = answer_as(&ctx, ADMIN, 10, cluster).await.cluster_authorized_operations;
    let all_cluster_ops = Rt::Cluster.supported_operations().iter().fold(0, |b, op| b | (1 << op.code()));
    assert_eq!(everything, all_cluster_ops);
    let described = DescribeClusterRequest::default().with_include_cluster_authorized_operations(true);
    assert_eq!(answer_as(&ctx, ALICE, 0, described).await.cluster_authorized_operations, 0);
}

#[tokio::test]
async fn group_apis_need_group_acls_and_offsets_need_topic_acls() {
    let ctx = secured();
    create_offsets_topic(&ctx).await;
    assert_eq!(answer_as(&ctx, ADMIN, 7, create_topic_request("t")).await.topics[0].error_code, 0);
    let group = || GroupId(s("sink"));
    let find = FindCoordinatorRequest::default().with_key(s("sink"));
    assert_eq!(answer_as(&ctx, ALICE, 3, find.clone()).await.error_code, GROUP_DENIED);
    let join = JoinGroupRequest::default()
        .with_group_id(group())
        .with_session_timeout_ms(10_000)
        .with_protocol_type(s("consumer"));
    assert_eq!(answer_as(&ctx, ALICE, 5, join).await.error_code, GROUP_DENIED);
    let heartbeat = HeartbeatRequest::default().with_group_id(group());
    assert_eq!(answer_as(&ctx, ALICE, 3, heartbeat).await.error_code, GROUP_DENIED);
    let deleted = answer_as(&ctx, ALICE, 2, DeleteGroupsRequest::default().with_groups_names(vec![group()])).await;
    assert_eq!(deleted.results[0].error_code, GROUP_DENIED);

    let commit = OffsetCommitRequest::default()
        .with_group_id(group())
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name("t"))
            .with_partitions(vec![OffsetCommitRequestPartition::default().with_committed_offset(5)])]);
    let committed = |r: &OffsetCommitResponse| r.topics[0].partitions[0].error_code;
    assert_eq!(committed(&answer_as(&ctx, ALICE, 8, commit.clone()).await), GROUP_DENIED);
    allow_alice(&ctx, Rt::Group, "sink", Op::Read).await;
    assert_eq!(answer_as(&ctx, ALICE, 3, find).await.error_code, 0, "Read on the group implies Describe");
    assert_eq!(committed(&answer_as(&ctx, ALICE, 8, commit.clone()).await), TOPIC_DENIED);
    allow_alice(&ctx, Rt::Topic, "t", Op::Read).await;
    assert_eq!(committed(&answer_as(&ctx, ALICE, 8, commit.clone()).await), 0);
    assert_eq!(answer_as(&ctx, ADMIN, 7, create_topic_request("u")).await.topics[0].error_code, 0);
    let mut other = commit;
    other.topics[0].name = topic_name("u");
    assert_eq!(committed(&answer_as(&ctx, ADMIN, 8, other).await), 0);

    // All of a group's offsets: topics the client may not Describe are left out.
    let fetch_all = OffsetFetchRequest::default().with_group_id(group()).with_topics(None);
    let topics = |r: &OffsetFetchResponse| r.topics.iter().map(|t| t.name.0.to_string()).collect::<Vec<_>>();
    assert_eq!(topics(&answer_as(&ctx, ALICE, 7, fetch_all.clone()).await), vec!["t".to_string()]);
    assert_eq!(topics(&answer_as(&ctx, ADMIN, 7, fetch_all).await), vec!["t".to_string(), "u".to_string()]);

    let describe = DescribeGroupsRequest::default().with_groups(vec![group()]).with_include_authorized_operations(true);
    let described = answer_as(&ctx, ALICE, 5, describe).await;
    let read_and_describe = (1 << Op::Read.code()) | (1 << Op::Describe.code());
    assert_eq!(described.groups[0].authorized_operations, read_and_describe);
    assert_eq!(answer_as(&ctx, ADMIN, 4, ListGroupsRequest::default()).await.groups.len(), 1);
    assert_eq!(answer_as(&ctx, ALICE, 4, ListGroupsRequest::default()).await.groups.len(), 1);
    let listed = answer_as(&ctx, "mallory", 4, ListGroupsRequest::default()).await;
    assert!(listed.groups.is_empty(), "groups the client may not Describe are not listed");
}

#[tokio::test]
async fn cluster_and_admin_apis_are_refused_without_their_acls() {
    let ctx = secured();
    assert_eq!(answer_as(&ctx, ALICE, 7, create_topic_request("t")).await.topics[0].error_code, TOPIC_DENIED);
    assert_eq!(answer_as(&ctx, ADMIN, 7, create_topic_request("t")).await.topics[0].error_code, 0);
    let delete = DeleteTopicsRequest::default().with_topic_names(vec![topic_name("t")]);
    assert_eq!(answer_as(&ctx, ALICE, 5, delete).await.responses[0].error_code, TOPIC_DENIED);
    let broker_configs = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default().with_resource_type(4).with_resource_name(s("1")),
        describe_configs_request::DescribeConfigsResource::default().with_resource_type(2).with_resource_name(s("t")),
    ]);
    let codes: Vec<i16> =
        answer_as(&ctx, ALICE, 4, broker_configs).await.results.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, vec![CLUSTER_DENIED, TOPIC_DENIED]);
    let users = DescribeUserScramCredentialsRequest::default().with_users(None);
    assert_eq!(answer_as(&ctx, ALICE, 0, users).await.error_code, CLUSTER_DENIED);
    let reassignments = ListPartitionReassignmentsRequest::default().with_topics(None);
    assert_eq!(answer_as(&ctx, ALICE, 0, reassignments).await.error_code, CLUSTER_DENIED);

    // Idempotence needs IdempotentWrite on the cluster, or Write on some topic (KIP-679).
    let init = || InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(60_000);
    assert_eq!(answer_as(&ctx, ALICE, 4, init()).await.error_code, CLUSTER_DENIED);
    let prefixed = CreateAclsRequest::default().with_creations(vec![creation(
        Rt::Topic,
        "logs-",
        PatternType::Prefixed,
        "User:alice",
        Op::Write,
        Perm::Allow,
    )]);
    assert_eq!(answer_as(&ctx, ADMIN, 3, prefixed).await.results[0].error_code, 0);
    assert_eq!(answer_as(&ctx, ALICE, 4, init()).await.error_code, 0);
}

#[tokio::test]
async fn without_authorization_every_principal_may_do_everything() {
    let ctx = FakeBroker::new();
    assert_eq!(answer_as(&ctx, ALICE, 7, create_topic_request("t")).await.topics[0].error_code, 0);
    let produced = answer_as(&ctx, ALICE, 9, produce_request("t", 0, 1, simple(1, now()))).await;
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
    let metadata = MetadataRequest::default().with_topics(None).with_include_topic_authorized_operations(true);
    let all_topic_ops = Rt::Topic.supported_operations().iter().fold(0, |b, op| b | (1 << op.code()));
    assert_eq!(answer_as(&ctx, ALICE, 12, metadata).await.topics[0].topic_authorized_operations, all_topic_ops);
}
