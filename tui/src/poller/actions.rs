//! Confirmed changes, sent as Kafka requests: ElectLeaders (preferred) to any broker (the
//! quorum decides), and an admin OffsetCommit (generation -1, no member) to the group's
//! coordinator, which only an empty group accepts. Each answer becomes one line for the screen.

use super::{decode, Poller};
use crate::app::Action;
use crate::model::RequestCounts;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::{ApiKey, ElectLeadersRequest, GroupId, OffsetCommitRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

/// ElectLeaders v2 (top-level error code).
const ELECT_LEADERS_VERSION: i16 = 2;
/// OffsetCommit v8 (the newest before member epochs).
const OFFSET_COMMIT_VERSION: i16 = 8;
/// How long the brokers may take to elect.
const ELECT_TIMEOUT_MS: i32 = 10_000;
/// ELECTION_NOT_NEEDED: the preferred replica already leads.
const ELECTION_NOT_NEEDED: i16 = 84;

impl Poller {
    /// Sends `action`; the outcome as one line.
    pub async fn act(&mut self, action: &Action) -> String {
        let mut counts = RequestCounts::default();
        let outcome = match action {
            Action::ElectPreferred { scope, partitions } => {
                self.elect(partitions, &mut counts).await.map(|(done, not_needed)| {
                    format!("preferred leaders of {scope}: {done} elected, {not_needed} already leading")
                })
            }
            Action::ResetOffsets { group, to, offsets } => self
                .reset(group, offsets, &mut counts)
                .await
                .map(|n| format!("group {group}: {n} partition(s) reset to the {to} offsets")),
        };
        outcome.unwrap_or_else(|e| format!("failed: {e}"))
    }

    async fn elect(
        &mut self,
        partitions: &[(String, i32)],
        counts: &mut RequestCounts,
    ) -> Result<(usize, usize), String> {
        let addr = self.last_good.clone().ok_or("no broker answered the last refresh")?;
        let mut conn = self.conn(&addr, counts).await.map_err(|e| e.to_string())?;
        let version = conn
            .versions
            .pick(ApiKey::ElectLeaders, ELECT_LEADERS_VERSION)
            .ok_or("the broker offers no ElectLeaders")?;
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in partitions {
            by_topic.entry(topic).or_default().push(*partition);
        }
        let request = ElectLeadersRequest::default()
            .with_election_type(0)
            .with_timeout_ms(ELECT_TIMEOUT_MS)
            .with_topic_partitions(Some(
                by_topic
                    .into_iter()
                    .map(|(topic, partitions)| {
                        TopicPartitions::default()
                            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                            .with_partitions(partitions)
                    })
                    .collect(),
            ));
        let timeout = self.config.request_timeout.max(std::time::Duration::from_millis(ELECT_TIMEOUT_MS as u64));
        let answer = conn.call(version, &request, timeout, counts).await.map_err(|e| e.to_string())?;
        self.conns.insert(addr, conn);
        if answer.error_code != 0 {
            return Err(decode::error_name(answer.error_code).unwrap_or_else(|| format!("error {}", answer.error_code)));
        }
        let (mut done, mut not_needed, mut failed) = (0, 0, Vec::new());
        for topic in &answer.replica_election_results {
            for p in &topic.partition_result {
                match p.error_code {
                    0 => done += 1,
                    ELECTION_NOT_NEEDED => not_needed += 1,
                    code => failed.push(format!(
                        "{}-{}: {}",
                        topic.topic.0,
                        p.partition_id,
                        p.error_message
                            .as_ref()
                            .map_or_else(|| decode::error_name(code).unwrap_or_default(), |m| m.to_string())
                    )),
                }
            }
        }
        match failed.first() {
            None => Ok((done, not_needed)),
            Some(first) => Err(format!("{} partition(s) not elected, first {first}", failed.len())),
        }
    }

    async fn reset(
        &mut self,
        group: &str,
        offsets: &[(String, i32, i64)],
        counts: &mut RequestCounts,
    ) -> Result<usize, String> {
        let coordinator = match self.coordinators.get(group) {
            Some(id) => *id,
            None => return Err(format!("the coordinator of {group} is not known yet; try again after a refresh")),
        };
        let addr =
            self.known.get(&coordinator).cloned().ok_or_else(|| format!("coordinator {coordinator} is not live"))?;
        let mut conn = self.conn(&addr, counts).await.map_err(|e| e.to_string())?;
        let version = conn
            .versions
            .pick(ApiKey::OffsetCommit, OFFSET_COMMIT_VERSION)
            .ok_or("the broker offers no OffsetCommit")?;
        let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for (topic, partition, offset) in offsets {
            by_topic.entry(topic).or_default().push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(*partition)
                    .with_committed_offset(*offset)
                    .with_committed_leader_epoch(-1)
                    .with_committed_metadata(Some(StrBytes::from_static_str(""))),
            );
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(StrBytes::from_static_str(""))
            .with_retention_time_ms(-1)
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(topic, partitions)| {
                        OffsetCommitRequestTopic::default()
                            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                            .with_partitions(partitions)
                    })
                    .collect(),
            );
        let answer =
            conn.call(version, &request, self.config.request_timeout, counts).await.map_err(|e| e.to_string())?;
        self.conns.insert(addr, conn);
        let mut done = 0;
        for topic in &answer.topics {
            for p in &topic.partitions {
                if p.error_code != 0 {
                    let name = decode::error_name(p.error_code).unwrap_or_else(|| format!("error {}", p.error_code));
                    return Err(format!(
                        "{}-{}: {name} (does the group still have members?)",
                        topic.name.0, p.partition_index
                    ));
                }
                done += 1;
            }
        }
        Ok(done)
    }
}
