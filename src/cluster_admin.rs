//! `millrace cluster elect-leaders|quorum|add-voter|remove-voter|log-dirs|alter-config`: leader
//! elections (ElectLeaders), the metadata quorum's state and voters (DescribeQuorum, AddRaftVoter,
//! RemoveRaftVoter, as `kafka-metadata-quorum`), each broker's log directories (DescribeLogDirs)
//! and dynamic broker settings.

use crate::client::Client;
use crate::cluster::check;
use anyhow::{bail, Context};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{
    AddRaftVoterRequest, DescribeLogDirsRequest, DescribeQuorumRequest, ElectLeadersRequest, MetadataRequest,
    RemoveRaftVoterRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use millrace_protocol::Connection;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Which leaders an election picks.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Election {
    /// Give each partition back to its first (preferred) replica where that one is in sync.
    Preferred,
    /// Give leaderless partitions a leader even if it is out of sync (acknowledged records may be
    /// lost).
    Unclean,
}

/// Runs elections: of `partitions` of `topic`, of all of `topic`, or of every partition.
pub async fn elect_leaders(
    conn: &mut Connection,
    election: Election,
    topic: Option<String>,
    partitions: Vec<i32>,
) -> anyhow::Result<()> {
    let wanted = match (topic, partitions.is_empty()) {
        (None, true) => None,
        (None, false) => bail!("--partition needs --topic"),
        (Some(topic), _) => {
            let mut partitions = partitions;
            if partitions.is_empty() {
                let metadata = conn
                    .request(
                        9,
                        &MetadataRequest::default().with_topics(Some(vec![
                            kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                                .with_name(Some(TopicName(StrBytes::from_string(topic.clone())))),
                        ])),
                        TIMEOUT,
                    )
                    .await?;
                let t = metadata.topics.first().context("no metadata for the topic")?;
                check(t.error_code, None, &format!("topic {topic}"))?;
                partitions = t.partitions.iter().map(|p| p.partition_index).collect();
            }
            Some(vec![TopicPartitions::default()
                .with_topic(TopicName(StrBytes::from_string(topic)))
                .with_partitions(partitions)])
        }
    };
    let election_type = match election {
        Election::Preferred => 0,
        Election::Unclean => 1,
    };
    let request = ElectLeadersRequest::default()
        .with_election_type(election_type)
        .with_topic_partitions(wanted)
        .with_timeout_ms(TIMEOUT.as_millis() as i32);
    let response = conn.request(2, &request, TIMEOUT).await?;
    check(response.error_code, None, "ElectLeaders")?;
    let (mut elected, mut failed) = (0, 0);
    for t in &response.replica_election_results {
        for p in &t.partition_result {
            let name = format!("{}-{}", t.topic.0, p.partition_id);
            match check(p.error_code, p.error_message.as_ref(), &name) {
                Ok(()) => {
                    elected += 1;
                    println!("{name}\telected");
                }
                Err(e) => {
                    // Already led by the right replica is not a failure.
                    if p.error_code == kafka_protocol::error::ResponseError::ElectionNotNeeded.code() {
                        println!("{name}\tno election needed");
                    } else {
                        failed += 1;
                        println!("{e}");
                    }
                }
            }
        }
    }
    println!("{elected} elected, {failed} failed");
    if failed > 0 {
        bail!("{failed} elections failed");
    }
    Ok(())
}

/// Prints the quorum's status and each member's replication, as `kafka-metadata-quorum describe
/// --status --replication` does.
pub async fn quorum(conn: &mut Connection) -> anyhow::Result<()> {
    let response = conn.request(1, &DescribeQuorumRequest::default(), TIMEOUT).await?;
    check(response.error_code, response.error_message.as_ref(), "DescribeQuorum")?;
    let partition = response
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .context("DescribeQuorum answered without the metadata partition")?;
    let ids = |list: &[kafka_protocol::messages::describe_quorum_response::ReplicaState]| {
        list.iter().map(|r| r.replica_id.0.to_string()).collect::<Vec<_>>().join(",")
    };
    let max_lag =
        partition
            .current_voters
            .iter()
            .map(|v| {
                if v.log_end_offset < 0 {
                    partition.high_watermark
                } else {
                    partition.high_watermark - v.log_end_offset
                }
            })
            .max()
            .unwrap_or(0)
            .max(0);
    println!("LeaderId:\t{}", partition.leader_id.0);
    println!("LeaderEpoch:\t{}", partition.leader_epoch);
    println!("HighWatermark:\t{}", partition.high_watermark);
    println!("MaxFollowerLag:\t{max_lag}");
    println!("CurrentVoters:\t[{}]", ids(&partition.current_voters));
    println!("CurrentObservers:\t[{}]", ids(&partition.observers));
    println!();
    println!("NodeId\tLogEndOffset\tLag\tStatus");
    let rows = partition.current_voters.iter().map(|r| (r, true)).chain(partition.observers.iter().map(|r| (r, false)));
    for (r, voter) in rows {
        let status = if r.replica_id == partition.leader_id {
            "Leader"
        } else if voter {
            "Follower"
        } else {
            "Observer"
        };
        let lag = if r.log_end_offset < 0 {
            "-".to_string()
        } else {
            (partition.high_watermark - r.log_end_offset).max(0).to_string()
        };
        println!("{}\t{}\t{lag}\t{status}", r.replica_id.0, r.log_end_offset);
    }
    Ok(())
}

/// Adds (`add`) or removes a voter of the metadata quorum, then prints the voters.
pub async fn change_voter(conn: &mut Connection, id: i32, add: bool) -> anyhow::Result<()> {
    if add {
        let request = AddRaftVoterRequest::default().with_voter_id(id).with_timeout_ms(TIMEOUT.as_millis() as i32);
        let response = conn.request(0, &request, TIMEOUT).await?;
        check(response.error_code, response.error_message.as_ref(), &format!("adding voter {id}"))?;
        println!("node {id} is a voter");
    } else {
        let request = RemoveRaftVoterRequest::default().with_voter_id(id);
        let response = conn.request(0, &request, TIMEOUT).await?;
        check(response.error_code, response.error_message.as_ref(), &format!("removing voter {id}"))?;
        println!("node {id} is no longer a voter");
    }
    quorum(conn).await
}

/// Prints the log directories of every broker (or of `broker`): capacity, free space and the
/// replicas each holds.
pub async fn log_dirs(client: &Client, conn: &mut Connection, broker: Option<i32>) -> anyhow::Result<()> {
    let metadata = conn.request(9, &MetadataRequest::default().with_topics(None), TIMEOUT).await?;
    let brokers: Vec<_> = metadata.brokers.iter().filter(|b| broker.is_none_or(|id| b.node_id.0 == id)).collect();
    if brokers.is_empty() {
        bail!("no such broker in the cluster's metadata");
    }
    let gib = |b: i64| if b < 0 { "?".to_string() } else { format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64) };
    for b in brokers {
        // DescribeLogDirs answers for the broker asked: talk to each one.
        let at = Client { bootstrap: format!("{}:{}", b.host, b.port), security: client.security.clone() };
        let mut one = at.connect().await.with_context(|| format!("connecting to broker {}", b.node_id.0))?;
        let response = one.request(4, &DescribeLogDirsRequest::default().with_topics(None), TIMEOUT).await?;
        check(response.error_code, None, &format!("DescribeLogDirs on broker {}", b.node_id.0))?;
        for dir in &response.results {
            let state = if dir.error_code == 0 { "online" } else { "OFFLINE" };
            let replicas: usize = dir.topics.iter().map(|t| t.partitions.len()).sum();
            let size: i64 = dir.topics.iter().flat_map(|t| t.partitions.iter()).map(|p| p.partition_size).sum();
            println!(
                "Broker: {}\tLogDir: {}\t{state}\tTotal: {}\tUsable: {}\tReplicas: {replicas}\tSize: {}",
                b.node_id.0,
                dir.log_dir,
                gib(dir.total_bytes),
                gib(dir.usable_bytes),
                gib(size)
            );
            for t in &dir.topics {
                for p in &t.partitions {
                    println!(
                        "\t{}-{}\tSize: {}\tOffsetLag: {}",
                        t.name.0, p.partition_index, p.partition_size, p.offset_lag
                    );
                }
            }
        }
    }
    Ok(())
}
