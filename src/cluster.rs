//! `millrace cluster describe|reassign|reassignments|unregister|elect-leaders|quorum|add-voter|remove-voter|log-dirs|alter-config`:
//! cluster administration over the Kafka protocol (DescribeCluster, Metadata,
//! AlterPartitionReassignments, ListPartitionReassignments, UnregisterBroker; the rest in
//! [`crate::cluster_admin`]). Any broker answers; changes go through the metadata quorum.

use anyhow::bail;
use clap::{Args, Subcommand};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, DescribeClusterRequest, ListPartitionReassignmentsRequest,
    MetadataRequest, TopicName, UnregisterBrokerRequest,
};
use kafka_protocol::protocol::StrBytes;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(15);

/// `millrace cluster` arguments.
#[derive(Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    client: crate::client::ClientArgs,
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Brokers, the active controller, and partitions that are under-replicated or offline.
    Describe,
    /// Move a partition to another set of replicas online (or cancel an ongoing move).
    Reassign {
        /// Topic.
        #[arg(long)]
        topic: String,
        /// Partition.
        #[arg(long)]
        partition: i32,
        /// Target broker ids, preferred leader first, comma-separated.
        #[arg(long, value_delimiter = ',', required_unless_present = "cancel")]
        replicas: Vec<i32>,
        /// Cancel the ongoing reassignment instead.
        #[arg(long)]
        cancel: bool,
    },
    /// Ongoing reassignments.
    Reassignments,
    /// Remove a stopped broker from the cluster.
    Unregister {
        /// The broker's id.
        #[arg(long)]
        broker_id: i32,
    },
    /// Elect leaders now: preferred (give partitions back to their first replica) or unclean
    /// (give leaderless partitions an out-of-sync leader).
    ElectLeaders {
        /// Which leaders to elect.
        #[arg(long, value_enum, default_value = "preferred")]
        election: crate::cluster_admin::Election,
        /// Only this topic's partitions (every partition when omitted).
        #[arg(long)]
        topic: Option<String>,
        /// Only these partitions of --topic; repeatable.
        #[arg(long)]
        partition: Vec<i32>,
    },
    /// The metadata quorum: its leader, epoch, committed offset and each member's lag.
    Quorum,
    /// Make a running broker (a non-voting member of the metadata quorum) a voter.
    AddVoter {
        /// The broker's node id.
        #[arg(long)]
        id: i32,
    },
    /// Make a voter a non-voting member again (to replace it, or before retiring its machine).
    RemoveVoter {
        /// The voter's node id.
        #[arg(long)]
        id: i32,
    },
    /// Each broker's log directories: capacity, free space, replicas and their sizes.
    LogDirs {
        /// Only this broker.
        #[arg(long)]
        broker: Option<i32>,
    },
    /// Change broker settings that may change while running (log.retention.ms, log.segment.bytes,
    /// log.cleanup.policy, message.max.bytes, min.insync.replicas, …) on every broker, or on one.
    AlterConfig {
        /// Only this broker (the cluster-wide default when omitted).
        #[arg(long)]
        broker: Option<i32>,
        #[command(flatten)]
        changes: crate::topic_admin::ConfigChanges,
    },
}

pub(crate) fn check(code: i16, message: Option<&StrBytes>, what: &str) -> anyhow::Result<()> {
    if code == 0 {
        return Ok(());
    }
    let name = ResponseError::try_from_code(code).map_or_else(|| format!("error {code}"), |e| format!("{e:?}"));
    bail!("{what}: {name}{}", message.map(|m| format!(": {m}")).unwrap_or_default())
}

/// Runs a cluster subcommand.
pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    let mut conn = args.client.client()?.connect().await?;
    match args.command {
        ClusterCommand::Describe => {
            let cluster = conn.request(0, &DescribeClusterRequest::default(), TIMEOUT).await?;
            check(cluster.error_code, cluster.error_message.as_ref(), "DescribeCluster")?;
            println!("Cluster: {}\tController: {}", cluster.cluster_id, cluster.controller_id.0);
            for b in &cluster.brokers {
                println!("\tBroker: {}\t{}:{}", b.broker_id.0, b.host, b.port);
            }
            let metadata = conn.request(9, &MetadataRequest::default().with_topics(None), TIMEOUT).await?;
            let (mut under, mut offline) = (0, 0);
            for topic in &metadata.topics {
                let name = topic.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
                for p in &topic.partitions {
                    let state = if p.leader_id.0 < 0 {
                        offline += 1;
                        "OFFLINE"
                    } else if p.isr_nodes.len() < p.replica_nodes.len() {
                        under += 1;
                        "UNDER-REPLICATED"
                    } else {
                        continue;
                    };
                    let ids = |v: &[BrokerId]| v.iter().map(|b| b.0.to_string()).collect::<Vec<_>>().join(",");
                    println!(
                        "\t{name}-{}\tLeader: {}\tReplicas: {}\tIsr: {}\t{state}",
                        p.partition_index,
                        p.leader_id.0,
                        ids(&p.replica_nodes),
                        ids(&p.isr_nodes)
                    );
                }
            }
            println!("Partitions: {} under-replicated, {} offline", under, offline);
        }
        ClusterCommand::Reassign { topic, partition, replicas, cancel } => {
            let target = if cancel { None } else { Some(replicas.iter().map(|r| BrokerId(*r)).collect()) };
            let request = AlterPartitionReassignmentsRequest::default().with_timeout_ms(10_000).with_topics(vec![
                ReassignableTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partitions(vec![ReassignablePartition::default()
                        .with_partition_index(partition)
                        .with_replicas(target)]),
            ]);
            let response = conn.request(0, &request, TIMEOUT).await?;
            check(response.error_code, response.error_message.as_ref(), "AlterPartitionReassignments")?;
            for t in &response.responses {
                for p in &t.partitions {
                    check(p.error_code, p.error_message.as_ref(), &format!("{}-{}", t.name.0, p.partition_index))?;
                }
            }
            if cancel {
                println!("cancelled the reassignment of {topic}-{partition}");
            } else {
                println!("reassigning {topic}-{partition} to {replicas:?}");
            }
        }
        ClusterCommand::Reassignments => {
            let response = conn.request(0, &ListPartitionReassignmentsRequest::default(), TIMEOUT).await?;
            check(response.error_code, response.error_message.as_ref(), "ListPartitionReassignments")?;
            let ids = |v: &[BrokerId]| v.iter().map(|b| b.0.to_string()).collect::<Vec<_>>().join(",");
            for t in &response.topics {
                for p in &t.partitions {
                    println!(
                        "{}-{}\tReplicas: {}\tAdding: {}\tRemoving: {}",
                        t.name.0,
                        p.partition_index,
                        ids(&p.replicas),
                        ids(&p.adding_replicas),
                        ids(&p.removing_replicas)
                    );
                }
            }
        }
        ClusterCommand::Unregister { broker_id } => {
            let response = conn
                .request(0, &UnregisterBrokerRequest::default().with_broker_id(BrokerId(broker_id)), TIMEOUT)
                .await?;
            check(response.error_code, response.error_message.as_ref(), "UnregisterBroker")?;
            println!("unregistered broker {broker_id}");
        }
        ClusterCommand::ElectLeaders { election, topic, partition } => {
            crate::cluster_admin::elect_leaders(&mut conn, election, topic, partition).await?
        }
        ClusterCommand::Quorum => crate::cluster_admin::quorum(&mut conn).await?,
        ClusterCommand::AddVoter { id } => crate::cluster_admin::change_voter(&mut conn, id, true).await?,
        ClusterCommand::RemoveVoter { id } => crate::cluster_admin::change_voter(&mut conn, id, false).await?,
        ClusterCommand::LogDirs { broker } => {
            crate::cluster_admin::log_dirs(&args.client.client()?, &mut conn, broker).await?
        }
        ClusterCommand::AlterConfig { broker, changes } => {
            let entity = broker.map(|b| b.to_string()).unwrap_or_default();
            let client = args.client.client()?;
            let done =
                crate::topic_admin::alter_configs(&client, crate::topic_admin::RESOURCE_BROKER, &entity, &changes)
                    .await?;
            let what = broker.map_or("every broker".to_string(), |b| format!("broker {b}"));
            println!("altered {what}: {done}");
        }
    }
    Ok(())
}
