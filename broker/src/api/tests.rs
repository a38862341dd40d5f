//! Handlers run on an in-memory cluster of one ([`FakeBroker`]): no process, socket or Raft.

use super::context::{Connection, Reply, RequestContext};
use super::fake::{FakeBroker, NODE};
use super::{Handler, Router};
use crate::controller::MetadataCommand;
use crate::log::batch::test_batches::simple;
use crate::security::scram::Mechanism;
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Request, StrBytes};
use std::sync::Arc;

mod acls;
mod admin;
mod current_leader;

fn rc<R: Request>(version: i16) -> RequestContext {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("unit")));
    RequestContext { connection: Connection::plaintext(1, "127.0.0.1:5555".parse().unwrap()), header }
}

async fn answer<R: Handler<FakeBroker>>(ctx: &Arc<FakeBroker>, version: i16, request: R) -> R::Response {
    match R::handle(ctx, &rc::<R>(version), request).await {
        Reply::Now(response) => response,
        Reply::Later(future) => future.await,
        Reply::Silent => panic!("no response"),
    }
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.into()))
}

async fn create_topic(ctx: &Arc<FakeBroker>, name: &str, partitions: i32, configs: &[(&str, &str)]) -> i16 {
    let configs = configs
        .iter()
        .map(|(k, v)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(k.to_string()))
                .with_value(Some(StrBytes::from_string(v.to_string())))
        })
        .collect();
    let request = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(partitions)
        .with_replication_factor(-1)
        .with_configs(configs)]);
    answer(ctx, 7, request).await.topics[0].error_code
}

fn produce_request(topic: &str, partition: i32, acks: i16, records: Vec<u8>) -> ProduceRequest {
    ProduceRequest::default().with_acks(acks).with_timeout_ms(5_000).with_topic_data(vec![TopicProduceData::default()
        .with_name(topic_name(topic))
        .with_partition_data(vec![PartitionProduceData::default()
            .with_index(partition)
            .with_records(Some(Bytes::from(records)))])])
}

fn now() -> i64 {
    crate::clock::now_ms()
}

#[tokio::test]
async fn create_topics_proposes_the_topic_and_reports_refusals() {
    let ctx = FakeBroker::new();
    assert_eq!(create_topic(&ctx, "logs", 3, &[("retention.ms", "60000")]).await, 0);
    let metadata = crate::cluster::Quorum::metadata(&*ctx);
    assert_eq!(metadata.topics["logs"].partitions.len(), 3);
    assert!(ctx.catalog.get("logs").is_some(), "the topic is hosted once CreateTopics answers");
    assert_eq!(create_topic(&ctx, "logs", 1, &[]).await, ResponseError::TopicAlreadyExists.code());
    assert_eq!(create_topic(&ctx, "bad/name", 1, &[]).await, ResponseError::InvalidTopicException.code());
    assert_eq!(create_topic(&ctx, "x", 1, &[("no.such.key", "1")]).await, ResponseError::InvalidConfig.code());
    assert_eq!(create_topic(&ctx, "__consumer_offsets", 1, &[]).await, ResponseError::InvalidTopicException.code());
    let proposals = ctx.proposals.lock().unwrap().len();
    assert_eq!(proposals, 1, "refused topics never reach the quorum");
}

#[tokio::test]
async fn create_topics_enforces_the_per_request_partition_budget() {
    let ctx = FakeBroker::with_config(|c| c.topics.max_partitions_per_request = 4);
    assert_eq!(create_topic(&ctx, "big", 5, &[]).await, ResponseError::PolicyViolation.code());
    assert_eq!(create_topic(&ctx, "fits", 4, &[]).await, 0);
}

#[tokio::test]
async fn metadata_lists_brokers_and_topics_and_auto_creates_when_allowed() {
    let ctx = FakeBroker::with_config(|c| c.topics.auto_create = true);
    create_topic(&ctx, "a", 2, &[]).await;
    let all = answer(&ctx, 12, MetadataRequest::default().with_topics(None)).await;
    assert_eq!(all.brokers.len(), 1);
    assert_eq!(all.brokers[0].node_id.0, NODE);
    assert_eq!(all.controller_id.0, NODE);
    assert_eq!(all.cluster_id.as_deref(), Some("fake-cluster"));
    assert_eq!(all.topics.len(), 1);
    assert_eq!(all.topics[0].partitions.len(), 2);
    assert!(all.topics[0].partitions.iter().all(|p| p.leader_id.0 == NODE && p.isr_nodes.len() == 1));

    let wanted = |name: &str, create: bool| {
        MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(topic_name(name)))]))
            .with_allow_auto_topic_creation(create)
    };
    let refused = answer(&ctx, 12, wanted("new", false)).await;
    assert_eq!(refused.topics[0].error_code, ResponseError::UnknownTopicOrPartition.code());
    let created = answer(&ctx, 12, wanted("new", true)).await;
    assert_eq!(created.topics[0].error_code, 0);
    assert!(crate::cluster::Quorum::metadata(&*ctx).topics.contains_key("new"));
}

#[tokio::test]
async fn a_fenced_broker_stays_in_metadata_and_describe_cluster_marks_it_when_asked() {
    use crate::cluster::Quorum;
    let ctx = FakeBroker::new();
    let register =
        MetadataCommand::RegisterBroker { id: 2, host: "other".into(), port: 9093, rack: None, listeners: vec![] };
    ctx.propose(register, std::time::Duration::from_secs(1)).await.expect("register broker 2");
    // Registered and never unfenced: fenced. librdkafka drops its handle of a broker missing from
    // Metadata (and stalls a group coordinator on it), so Metadata lists it.
    let metadata = answer(&ctx, 12, MetadataRequest::default().with_topics(None)).await;
    let listed: Vec<i32> = metadata.brokers.iter().map(|b| b.node_id.0).collect();
    assert_eq!(listed, vec![NODE, 2]);

    let unfenced = answer(&ctx, 1, DescribeClusterRequest::default()).await;
    assert_eq!(unfenced.brokers.iter().map(|b| b.broker_id.0).collect::<Vec<_>>(), vec![NODE]);
    let all = answer(&ctx, 2, DescribeClusterRequest::default().with_include_fenced_brokers(true)).await;
    let marked: Vec<(i32, bool)> = all.brokers.iter().map(|b| (b.broker_id.0, b.is_fenced)).collect();
    assert_eq!(marked, vec![(NODE, false), (2, true)]);
}

#[tokio::test]
async fn produce_appends_and_acks_all_waits_for_the_log() {
    let ctx = FakeBroker::new();
    create_topic(&ctx, "t", 1, &[]).await;
    let first = answer(&ctx, 9, produce_request("t", 0, -1, simple(3, now()))).await;
    let p = &first.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (0, 0));
    let second = answer(&ctx, 9, produce_request("t", 0, 1, simple(2, now()))).await;
    assert_eq!(second.responses[0].partition_responses[0].base_offset, 3);
    let partition = ctx.catalog.partition("t", 0).unwrap();
    assert_eq!(partition.offsets().1, 5);
}

#[tokio::test]
async fn produce_refuses_bad_input_per_partition() {
    let ctx = FakeBroker::new();
    create_topic(&ctx, "t", 1, &[]).await;
    let code = |r: &ProduceResponse| r.responses[0].partition_responses[0].error_code;
    let mut corrupt = simple(2, now());
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert_eq!(code(&answer(&ctx, 9, produce_request("t", 0, 1, corrupt)).await), ResponseError::CorruptMessage.code());
    assert_eq!(
        code(&answer(&ctx, 9, produce_request("t", 7, 1, simple(1, now()))).await),
        ResponseError::UnknownTopicOrPartition.code()
    );
    assert_eq!(
        code(&answer(&ctx, 9, produce_request("t", 0, 2, simple(1, now()))).await),
        ResponseError::InvalidRequiredAcks.code()
    );
    assert_eq!(ctx.catalog.partition("t", 0).unwrap().offsets().1, 0, "nothing refused reached the log");
    // acks=0 gets no response at all.
    let reply = <ProduceRequest as Handler<FakeBroker>>::handle(
        &ctx,
        &rc::<ProduceRequest>(9),
        produce_request("t", 0, 0, simple(1, now())),
    )
    .await;
    assert!(matches!(reply, Reply::Silent));
    assert_eq!(ctx.catalog.partition("t", 0).unwrap().offsets().1, 1);
}

fn fetch_request(topic: &str, offset: i64, max_wait_ms: i32) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![FetchTopic::default().with_topic(topic_name(topic)).with_partitions(vec![
            FetchPartition::default().with_partition(0).with_fetch_offset(offset).with_partition_max_bytes(1 << 20),
        ])])
}

#[tokio::test]
async fn fetch_returns_what_was_produced_and_long_polls_for_more() {
    let ctx = FakeBroker::new();
    create_topic(&ctx, "t", 1, &[]).await;
    answer(&ctx, 9, produce_request("t", 0, -1, simple(4, now()))).await;
    let fetched = answer(&ctx, 12, fetch_request("t", 0, 0)).await;
    let p = &fetched.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark), (0, 4));
    let mut records = p.records.clone().unwrap();
    let decoded = kafka_protocol::records::RecordBatchDecoder::decode(&mut records).unwrap();
    assert_eq!(decoded.records.len(), 4);

    // Nothing past the end yet: the fetch waits, and an append wakes it before its deadline.
    let waiting = tokio::spawn({
        let ctx = ctx.clone();
        async move { answer(&ctx, 12, fetch_request("t", 4, 10_000)).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!waiting.is_finished(), "an empty fetch with max_wait waits");
    answer(&ctx, 9, produce_request("t", 0, -1, simple(1, now()))).await;
    let woken = tokio::time::timeout(std::time::Duration::from_secs(5), waiting).await.unwrap().unwrap();
    assert_eq!(woken.responses[0].partitions[0].high_watermark, 5);

    let unknown = answer(&ctx, 12, fetch_request("nope", 0, 0)).await;
    assert_eq!(unknown.responses[0].partitions[0].error_code, ResponseError::UnknownTopicOrPartition.code());
}

#[tokio::test]
async fn list_offsets_answers_earliest_latest_and_by_time() {
    let ctx = FakeBroker::new();
    create_topic(&ctx, "t", 1, &[]).await;
    let t0 = now() - 60_000;
    answer(&ctx, 9, produce_request("t", 0, -1, simple(2, t0))).await;
    answer(&ctx, 9, produce_request("t", 0, -1, simple(3, t0 + 10_000))).await;
    let ask = |timestamp: i64| {
        ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name("t"))
            .with_partitions(vec![ListOffsetsPartition::default().with_partition_index(0).with_timestamp(timestamp)])])
    };
    let offset = |r: ListOffsetsResponse| r.topics[0].partitions[0].offset;
    assert_eq!(offset(answer(&ctx, 7, ask(-2)).await), 0);
    assert_eq!(offset(answer(&ctx, 7, ask(-1)).await), 5);
    assert_eq!(offset(answer(&ctx, 7, ask(t0 + 5_000)).await), 2);
    assert_eq!(offset(answer(&ctx, 7, ask(t0 + 20_000)).await), -1, "nothing at or after that time");
    let max = answer(&ctx, 7, ask(-3)).await;
    assert_eq!(max.topics[0].partitions[0].timestamp, t0 + 10_000);
}

/// Creates `__consumer_offsets` as the broker does (clients may not), through the same quorum.
async fn create_offsets_topic(ctx: &Arc<FakeBroker>) {
    crate::cluster::topics::create_topic(
        &**ctx,
        &ctx.catalog,
        &ctx.config,
        crate::cluster::topics::NewTopic {
            name: "__consumer_offsets",
            partitions: 1,
            replication_factor: 1,
            assignments: Vec::new(),
            configs: &[("cleanup.policy".into(), "compact".into())],
        },
        false,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn offsets_committed_are_fetched_back_and_unknown_partitions_refused() {
    let ctx = FakeBroker::new();
    create_offsets_topic(&ctx).await;
    create_topic(&ctx, "t", 2, &[]).await;
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default().with_name(topic_name("t")).with_partitions(vec![
            OffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(42),
            OffsetCommitRequestPartition::default().with_partition_index(9).with_committed_offset(1),
        ])]);
    let committed = answer(&ctx, 8, commit).await;
    let codes: Vec<i16> = committed.topics[0].partitions.iter().map(|p| p.error_code).collect();
    assert_eq!(codes, vec![0, ResponseError::UnknownTopicOrPartition.code()]);

    let fetch =
        OffsetFetchRequest::default().with_group_id(GroupId(StrBytes::from_static_str("g"))).with_topics(Some(vec![
            OffsetFetchRequestTopic::default().with_name(topic_name("t")).with_partition_indexes(vec![0, 1]),
        ]));
    let fetched = answer(&ctx, 7, fetch).await;
    let offsets: Vec<i64> = fetched.topics[0].partitions.iter().map(|p| p.committed_offset).collect();
    assert_eq!(offsets, vec![42, -1]);
    let log = ctx.catalog.partition("__consumer_offsets", 0).unwrap();
    assert_eq!(log.offsets().1, 1, "the commit was appended to the offsets log");
}

#[tokio::test]
async fn the_router_answers_every_advertised_api_and_closes_on_garbage() {
    let ctx = FakeBroker::new();
    let router = Router::<FakeBroker>::new();
    let mut keys: Vec<i16> = router.keys().collect();
    keys.sort_unstable();
    let mut advertised: Vec<i16> = super::SUPPORTED_APIS.iter().map(|k| *k as i16).collect();
    advertised.sort_unstable();
    assert_eq!(keys, advertised);

    let connection = Connection::plaintext(1, "127.0.0.1:5555".parse().unwrap());
    let mut frame =
        millrace_protocol::message::encode_request(3, 11, Some("unit"), &ApiVersionsRequest::default()).unwrap();
    let body = frame.split_off(4);
    let pending = router.dispatch(&ctx, body, &connection).await.unwrap();
    let response = pending.await.unwrap().to_bytes().split_off(4);
    let decoded = millrace_protocol::message::decode_response::<ApiVersionsRequest>(response, 3, 11).unwrap();
    assert_eq!(decoded.api_keys.len(), super::SUPPORTED_APIS.len());

    let unknown = Bytes::from_static(&[0x7f, 0x00, 0, 0, 0, 0, 0, 1]);
    assert!(router.dispatch(&ctx, unknown, &connection).await.is_err());
    let truncated = Bytes::from_static(&[0, 3, 0]);
    assert!(router.dispatch(&ctx, truncated, &connection).await.is_err());
}

fn upsertion(user: &str, mechanism: Mechanism, password: &str, iterations: i32) -> ScramCredentialUpsertion {
    let salt = b"a-salt-of-16-byt";
    let salted = mechanism.salted_password(password.as_bytes(), salt, iterations.max(1) as u32);
    ScramCredentialUpsertion::default()
        .with_name(StrBytes::from_string(user.into()))
        .with_mechanism(mechanism.code())
        .with_iterations(iterations)
        .with_salt(Bytes::from_static(salt))
        .with_salted_password(Bytes::from(salted))
}

fn describe_users(names: Option<&[&str]>) -> DescribeUserScramCredentialsRequest {
    DescribeUserScramCredentialsRequest::default().with_users(names.map(|names| {
        names
            .iter()
            .map(|n| {
                describe_user_scram_credentials_request::UserName::default()
                    .with_name(StrBytes::from_string(n.to_string()))
            })
            .collect()
    }))
}

#[tokio::test]
async fn scram_users_are_stored_as_keys_described_without_them_and_deleted() {
    let ctx = FakeBroker::new();
    let alter = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
        upsertion("alice", Mechanism::ScramSha512, "secret", 8192),
        upsertion("alice", Mechanism::ScramSha256, "secret", 4096),
        upsertion("bob", Mechanism::ScramSha256, "hunter2", 4096),
    ]);
    let altered = answer(&ctx, 0, alter).await;
    let codes: Vec<(String, i16)> = altered.results.iter().map(|r| (r.user.to_string(), r.error_code)).collect();
    assert_eq!(codes, vec![("alice".into(), 0), ("bob".into(), 0)]);
    // The quorum holds keys that verify the password, not the password.
    let state = crate::cluster::Quorum::metadata(&*ctx);
    let stored = &state.scram_credentials["alice"][&Mechanism::ScramSha512];
    assert!(stored.verify_password("secret") && !stored.verify_password("Secret"));
    assert_eq!(stored.iterations, 8192);

    let all = answer(&ctx, 0, describe_users(None)).await;
    let listed: Vec<(String, Vec<(i8, i32)>)> = all
        .results
        .iter()
        .map(|r| (r.user.to_string(), r.credential_infos.iter().map(|c| (c.mechanism, c.iterations)).collect()))
        .collect();
    assert_eq!(listed, vec![("alice".into(), vec![(1, 4096), (2, 8192)]), ("bob".into(), vec![(1, 4096)])]);

    let some = answer(&ctx, 0, describe_users(Some(&["bob", "nobody", "bob2", "bob2"]))).await;
    let codes: Vec<i16> = some.results.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, vec![0, ResponseError::ResourceNotFound.code(), ResponseError::DuplicateResource.code()]);

    let delete = |user: &str, mechanism: Mechanism| {
        AlterUserScramCredentialsRequest::default().with_deletions(vec![ScramCredentialDeletion::default()
            .with_name(StrBytes::from_string(user.into()))
            .with_mechanism(mechanism.code())])
    };
    assert_eq!(answer(&ctx, 0, delete("bob", Mechanism::ScramSha256)).await.results[0].error_code, 0);
    assert_eq!(
        answer(&ctx, 0, delete("bob", Mechanism::ScramSha256)).await.results[0].error_code,
        ResponseError::ResourceNotFound.code()
    );
    assert!(!crate::cluster::Quorum::metadata(&*ctx).scram_credentials.contains_key("bob"));
}

#[tokio::test]
async fn bad_scram_alterations_are_refused_per_user_before_the_quorum() {
    let ctx = FakeBroker::new();
    let bad_mechanism = upsertion("carol", Mechanism::ScramSha256, "pw", 4096).with_mechanism(7);
    let alter = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
        upsertion("few", Mechanism::ScramSha256, "pw", 1000),
        upsertion("", Mechanism::ScramSha256, "pw", 4096),
        bad_mechanism,
        upsertion("twice", Mechanism::ScramSha256, "pw", 4096),
        upsertion("twice", Mechanism::ScramSha256, "pw2", 4096),
        upsertion("fine", Mechanism::ScramSha512, "pw", 4096),
    ]);
    let altered = answer(&ctx, 0, alter).await;
    let codes: Vec<(String, i16)> = altered.results.iter().map(|r| (r.user.to_string(), r.error_code)).collect();
    assert_eq!(
        codes,
        vec![
            ("few".into(), ResponseError::UnacceptableCredential.code()),
            ("".into(), ResponseError::UnacceptableCredential.code()),
            ("carol".into(), ResponseError::UnsupportedSaslMechanism.code()),
            ("twice".into(), ResponseError::DuplicateResource.code()),
            ("fine".into(), 0),
        ]
    );
    let users: Vec<String> = crate::cluster::Quorum::metadata(&*ctx).scram_credentials.keys().cloned().collect();
    assert_eq!(users, vec!["fine".to_string()]);
    assert!(altered.results.iter().all(|r| !r.error_message.as_deref().unwrap_or("").contains("pw")));
}
