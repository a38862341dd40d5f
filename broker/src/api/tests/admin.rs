//! The day-2 admin APIs on the in-memory cluster: altering configs, deleting records, elections,
//! log directories, producers and the quorum.

use super::*;
use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};

fn alter(resource_type: i8, name: &str, ops: &[(&str, i8, Option<&str>)]) -> IncrementalAlterConfigsRequest {
    let configs = ops
        .iter()
        .map(|(k, op, v)| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(k.to_string()))
                .with_config_operation(*op)
                .with_value(v.map(|v| StrBytes::from_string(v.to_string())))
        })
        .collect();
    IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(StrBytes::from_string(name.to_string()))
        .with_configs(configs)])
}

/// (value, source) of `key` in DescribeConfigs of a topic (2) or broker (4).
async fn described(ctx: &Arc<FakeBroker>, resource_type: i8, name: &str, key: &str) -> (String, i8) {
    let request = DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(StrBytes::from_string(name.to_string()))
        .with_configuration_keys(None)]);
    let response = answer(ctx, 4, request).await;
    let entry = response.results[0].configs.iter().find(|c| c.name.as_str() == key).expect("key described");
    (entry.value.as_ref().map(|v| v.to_string()).unwrap_or_default(), entry.config_source)
}

#[tokio::test]
async fn incremental_alter_configs_changes_a_topic_and_the_broker_defaults() {
    let ctx = FakeBroker::new();
    create_topic(&ctx, "t", 1, &[]).await;
    let response = answer(&ctx, 1, alter(2, "t", &[("retention.ms", 0, Some("60000"))])).await;
    assert_eq!(response.responses[0].error_code, 0, "{:?}", response.responses[0].error_message);
    assert_eq!(described(&ctx, 2, "t", "retention.ms").await, ("60000".to_string(), 1));
    assert_eq!(ctx.catalog.get("t").unwrap().config.retention_ms, Some(60_000), "applied to the hosted topic");

    // A cluster-wide default reaches every topic without its own setting.
    let response = answer(&ctx, 1, alter(4, "", &[("log.segment.bytes", 0, Some("1048576"))])).await;
    assert_eq!(response.responses[0].error_code, 0, "{:?}", response.responses[0].error_message);
    assert_eq!(described(&ctx, 2, "t", "segment.bytes").await, ("1048576".to_string(), 3));
    assert_eq!(ctx.catalog.get("t").unwrap().config.segment_bytes, 1_048_576);
    assert_eq!(described(&ctx, 4, &NODE.to_string(), "log.segment.bytes").await, ("1048576".to_string(), 3));

    // DELETE returns the key to its default; APPEND edits a list.
    answer(&ctx, 1, alter(2, "t", &[("retention.ms", 1, None), ("cleanup.policy", 2, Some("compact"))])).await;
    assert_eq!(described(&ctx, 2, "t", "retention.ms").await.1, 5);
    assert_eq!(described(&ctx, 2, "t", "cleanup.policy").await.0, "compact,delete");
}

#[tokio::test]
async fn alter_configs_refusals_change_nothing() {
    let ctx = FakeBroker::new();
    create_topic(&ctx, "t", 1, &[("retention.ms", "1000")]).await;
    let code = |r: &IncrementalAlterConfigsResponse| r.responses[0].error_code;
    let bad_value = answer(&ctx, 1, alter(2, "t", &[("retention.ms", 0, Some("soon"))])).await;
    assert_eq!(code(&bad_value), ResponseError::InvalidConfig.code());
    let unknown_key = answer(&ctx, 1, alter(2, "t", &[("retention.mss", 0, Some("1"))])).await;
    assert_eq!(code(&unknown_key), ResponseError::InvalidConfig.code());
    let static_key = answer(&ctx, 1, alter(4, "", &[("listeners", 0, Some("PLAINTEXT://:1"))])).await;
    assert_eq!(code(&static_key), ResponseError::InvalidConfig.code());
    let no_topic = answer(&ctx, 1, alter(2, "nope", &[("retention.ms", 0, Some("1"))])).await;
    assert_eq!(code(&no_topic), ResponseError::UnknownTopicOrPartition.code());
    let validate_only = alter(2, "t", &[("retention.ms", 0, Some("5"))]).with_validate_only(true);
    assert_eq!(code(&answer(&ctx, 1, validate_only).await), 0);
    assert_eq!(described(&ctx, 2, "t", "retention.ms").await.0, "1000", "nothing changed");
}

#[tokio::test]
async fn legacy_alter_configs_replaces_every_topic_setting() {
    use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let ctx = FakeBroker::new();
    create_topic(&ctx, "t", 1, &[("retention.ms", "1000"), ("segment.bytes", "4096")]).await;
    let request = AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(StrBytes::from_static_str("t"))
        .with_configs(vec![AlterableConfig::default()
            .with_name(StrBytes::from_static_str("retention.bytes"))
            .with_value(Some(StrBytes::from_static_str("1000000")))])]);
    assert_eq!(answer(&ctx, 1, request).await.responses[0].error_code, 0);
    let configs = crate::cluster::Quorum::metadata(&*ctx).topics["t"].configs.clone();
    assert_eq!(configs.into_iter().collect::<Vec<_>>(), vec![("retention.bytes".to_string(), "1000000".to_string())]);
}

fn delete_records(topic: &str, partition: i32, offset: i64) -> DeleteRecordsRequest {
    DeleteRecordsRequest::default().with_timeout_ms(5_000).with_topics(vec![DeleteRecordsTopic::default()
        .with_name(topic_name(topic))
        .with_partitions(vec![DeleteRecordsPartition::default().with_partition_index(partition).with_offset(offset)])])
}

#[tokio::test]
async fn delete_records_moves_the_log_start_up_to_the_high_watermark() {
    let ctx = FakeBroker::new();
    create_topic(&ctx, "t", 1, &[]).await;
    answer(&ctx, 9, produce_request("t", 0, -1, simple(10, now()))).await;
    let result = |r: &DeleteRecordsResponse| {
        let p = &r.topics[0].partitions[0];
        (p.error_code, p.low_watermark)
    };
    assert_eq!(result(&answer(&ctx, 2, delete_records("t", 0, 4)).await), (0, 4));
    let partition = ctx.catalog.partition("t", 0).unwrap();
    assert_eq!(partition.offsets().0, 4);
    assert!(partition.read(2, 1 << 20, true).is_err(), "deleted records are gone");
    assert_eq!(
        result(&answer(&ctx, 2, delete_records("t", 0, 11)).await),
        (ResponseError::OffsetOutOfRange.code(), -1),
        "past the high watermark"
    );
    assert_eq!(result(&answer(&ctx, 2, delete_records("t", 0, -1)).await), (0, 10), "-1 is the high watermark");
    assert_eq!(
        result(&answer(&ctx, 2, delete_records("t", 5, 1)).await).0,
        ResponseError::UnknownTopicOrPartition.code()
    );
    create_topic(&ctx, "c", 1, &[("cleanup.policy", "compact")]).await;
    assert_eq!(result(&answer(&ctx, 2, delete_records("c", 0, 0)).await).0, ResponseError::PolicyViolation.code());
}

#[tokio::test]
async fn elect_leaders_reports_what_needed_no_election() {
    let ctx = FakeBroker::new();
    create_topic(&ctx, "t", 1, &[]).await;
    let request = |election_type| {
        ElectLeadersRequest::default().with_election_type(election_type).with_timeout_ms(5_000).with_topic_partitions(
            Some(vec![TopicPartitions::default().with_topic(topic_name("t")).with_partitions(vec![0, 3])]),
        )
    };
    let response = answer(&ctx, 2, request(0)).await;
    let codes: Vec<i16> = response.replica_election_results[0].partition_result.iter().map(|p| p.error_code).collect();
    assert_eq!(codes, vec![ResponseError::ElectionNotNeeded.code(), ResponseError::UnknownTopicOrPartition.code()]);
    let response = answer(&ctx, 2, request(1)).await;
    assert_eq!(
        response.replica_election_results[0].partition_result[0].error_code,
        ResponseError::ElectionNotNeeded.code()
    );
    // Every partition: those that needed nothing are left out.
    let all = answer(&ctx, 2, ElectLeadersRequest::default().with_timeout_ms(5_000).with_topic_partitions(None)).await;
    assert!(all.replica_election_results.is_empty(), "{all:?}");
}

#[tokio::test]
async fn log_dirs_producers_and_quorum_are_described() {
    let ctx = FakeBroker::new();
    create_topic(&ctx, "t", 1, &[]).await;
    answer(&ctx, 9, produce_request("t", 0, -1, simple(3, now()))).await;
    let dirs = answer(&ctx, 4, DescribeLogDirsRequest::default().with_topics(None)).await;
    assert_eq!(dirs.results.len(), 1);
    let dir = &dirs.results[0];
    assert_eq!(dir.error_code, 0);
    assert!(dir.total_bytes > 0 && dir.usable_bytes > 0 && dir.usable_bytes <= dir.total_bytes, "{dir:?}");
    let t = dir.topics.iter().find(|t| t.name.0.as_str() == "t").expect("topic t listed");
    assert!(t.partitions[0].partition_size > 0);

    let producers = answer(
        &ctx,
        0,
        DescribeProducersRequest::default()
            .with_topics(vec![TopicRequest::default().with_name(topic_name("t")).with_partition_indexes(vec![0])]),
    )
    .await;
    let p = &producers.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert!(p.active_producers.is_empty(), "plain batches have no producer id");

    let quorum = answer(&ctx, 1, DescribeQuorumRequest::default()).await;
    assert_eq!(quorum.error_code, 0);
    let partition = &quorum.topics[0].partitions[0];
    assert_eq!(partition.leader_id.0, NODE);
    assert_eq!(partition.current_voters.len(), 1);
}

/// Encodes `response` at `version` as the router would; a field set that the version lacks fails.
fn encodes<R: kafka_protocol::protocol::Encodable + kafka_protocol::protocol::HeaderVersion>(
    api: ApiKey,
    version: i16,
    response: &R,
) {
    millrace_protocol::message::encode_response(api, version, 7, response)
        .unwrap_or_else(|e| panic!("{api:?} v{version} does not encode: {e}"));
}

#[tokio::test]
async fn every_version_of_the_admin_responses_encodes() {
    let ctx = FakeBroker::new();
    create_topic(&ctx, "t", 1, &[]).await;
    answer(&ctx, 9, produce_request("t", 0, -1, simple(3, now()))).await;
    for v in ApiKey::IncrementalAlterConfigs.valid_versions().min..=ApiKey::IncrementalAlterConfigs.valid_versions().max
    {
        let r = answer(&ctx, v, alter(2, "t", &[("retention.ms", 0, Some("1000"))])).await;
        encodes(ApiKey::IncrementalAlterConfigs, v, &r);
    }
    for v in ApiKey::DeleteRecords.valid_versions().min..=ApiKey::DeleteRecords.valid_versions().max {
        encodes(ApiKey::DeleteRecords, v, &answer(&ctx, v, delete_records("t", 0, 1)).await);
    }
    for v in ApiKey::ElectLeaders.valid_versions().min..=ApiKey::ElectLeaders.valid_versions().max {
        let request = ElectLeadersRequest::default().with_timeout_ms(1_000).with_topic_partitions(Some(vec![
            TopicPartitions::default().with_topic(topic_name("t")).with_partitions(vec![0]),
        ]));
        encodes(ApiKey::ElectLeaders, v, &answer(&ctx, v, request).await);
    }
    for v in ApiKey::DescribeLogDirs.valid_versions().min..=ApiKey::DescribeLogDirs.valid_versions().max {
        encodes(
            ApiKey::DescribeLogDirs,
            v,
            &answer(&ctx, v, DescribeLogDirsRequest::default().with_topics(None)).await,
        );
    }
    for v in ApiKey::DescribeQuorum.valid_versions().min..=ApiKey::DescribeQuorum.valid_versions().max {
        encodes(ApiKey::DescribeQuorum, v, &answer(&ctx, v, DescribeQuorumRequest::default()).await);
    }
    for v in ApiKey::DescribeProducers.valid_versions().min..=ApiKey::DescribeProducers.valid_versions().max {
        let request = DescribeProducersRequest::default()
            .with_topics(vec![TopicRequest::default().with_name(topic_name("t")).with_partition_indexes(vec![0])]);
        encodes(ApiKey::DescribeProducers, v, &answer(&ctx, v, request).await);
    }
}

#[tokio::test]
async fn voter_changes_follow_the_quorum_rules() {
    let ctx = FakeBroker::new();
    let add = |id| AddRaftVoterRequest::default().with_voter_id(id);
    assert_eq!(answer(&ctx, 0, add(NODE)).await.error_code, ResponseError::DuplicateVoter.code());
    let never_joined = answer(&ctx, 0, add(9)).await;
    assert_eq!(never_joined.error_code, ResponseError::InvalidRequest.code());
    assert!(never_joined.error_message.unwrap_or_default().contains("not a member"));
    let last = answer(&ctx, 0, RemoveRaftVoterRequest::default().with_voter_id(NODE)).await;
    assert_eq!(last.error_code, ResponseError::InvalidRequest.code(), "the only voter stays");
    let other_cluster = add(NODE).with_cluster_id(Some(StrBytes::from_static_str("another")));
    assert_eq!(answer(&ctx, 0, other_cluster).await.error_code, ResponseError::InconsistentClusterId.code());
}
