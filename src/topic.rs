//! `millrace topic create|list|describe|delete|tail|alter|delete-records`: topic administration
//! over the Kafka protocol, so it works against any Kafka-compatible broker; `tail` is in
//! [`crate::topic_tail`], `alter` and `delete-records` in [`crate::topic_admin`].

use crate::client::Client;
use anyhow::{anyhow, bail, Context};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);

/// Arguments of `millrace topic`.
#[derive(clap::Args)]
pub struct TopicArgs {
    #[command(flatten)]
    client: crate::client::ClientArgs,
    #[command(subcommand)]
    command: TopicCommand,
}

#[derive(clap::Subcommand)]
enum TopicCommand {
    /// Create a topic.
    Create {
        /// Topic name.
        name: String,
        /// Number of partitions.
        #[arg(long)]
        partitions: i32,
        /// Replicas per partition; -1 takes the brokers' default (3, or fewer in a smaller cluster).
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        replication_factor: i32,
        /// Topic setting, Kafka style (e.g. retention.ms=3600000); repeatable.
        #[arg(long = "topic-config", value_name = "KEY=VALUE")]
        topic_config: Vec<String>,
    },
    /// List topics.
    List,
    /// Show partitions (leader, replicas, ISR, log start/end offsets) and settings.
    Describe {
        /// Topics to describe; all when omitted.
        names: Vec<String>,
    },
    /// Delete a topic and its data.
    Delete {
        /// Topic name.
        name: String,
    },
    /// Print a topic's records from a chosen point (a console consumer; joins no group).
    Tail(crate::topic_tail::TailArgs),
    /// Change a topic's settings while it runs (e.g. lower retention.ms during a disk-pressure
    /// incident); settings not named keep their values.
    Alter {
        /// Topic name.
        name: String,
        #[command(flatten)]
        changes: crate::topic_admin::ConfigChanges,
    },
    /// Delete a topic's records before an offset (consumers then start at it; whole segments
    /// below it are removed from disk).
    DeleteRecords {
        /// Topic name.
        name: String,
        /// Partition; repeatable; every partition when omitted.
        #[arg(long)]
        partition: Vec<i32>,
        /// Delete the records before this offset; -1 deletes everything committed so far.
        #[arg(long, allow_negative_numbers = true)]
        before: i64,
    },
}

fn client_config(client: &Client) -> ClientConfig {
    let mut config = client.rdkafka_config("millrace-topic");
    config.set("socket.timeout.ms", "10000");
    config
}

fn admin(client: &Client) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    client_config(client).create().context("creating the Kafka admin client")
}

/// Creates topic `name` with Kafka-named `settings`. The outer error means the cluster could not
/// be asked; the inner one is the cluster's refusal (e.g. `TopicAlreadyExists`).
pub async fn create(
    client: &Client,
    name: &str,
    partitions: i32,
    replication_factor: i32,
    settings: &[(&str, &str)],
) -> anyhow::Result<Result<(), RDKafkaErrorCode>> {
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT)).request_timeout(Some(TIMEOUT));
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication_factor));
    for (key, value) in settings {
        topic = topic.set(key, value);
    }
    let results = admin(client)?.create_topics([&topic], &options).await?;
    for result in results {
        if let Err((_, code)) = result {
            return Ok(Err(code));
        }
    }
    Ok(Ok(()))
}

/// Runs a topic subcommand.
pub async fn run(args: TopicArgs) -> anyhow::Result<()> {
    let client = args.client.client()?;
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT)).request_timeout(Some(TIMEOUT));
    match args.command {
        TopicCommand::Create { name, partitions, replication_factor, topic_config } => {
            let mut pairs = Vec::new();
            for entry in &topic_config {
                let (key, value) = entry
                    .split_once('=')
                    .ok_or_else(|| anyhow!("--topic-config `{entry}` is not KEY=VALUE, e.g. retention.ms=3600000"))?;
                pairs.push((key.trim(), value.trim()));
            }
            // Check locally first so typos get a precise message instead of INVALID_CONFIG.
            millrace_config::TopicOverrides::from_pairs(pairs.iter().copied())?;
            match create(&client, &name, partitions, replication_factor, &pairs).await? {
                Ok(()) => println!("created topic {name} with {partitions} partitions"),
                Err(code) => bail!("creating topic {name} failed: {code} ({code:?})"),
            }
        }
        TopicCommand::Delete { name } => {
            let results = admin(&client)?.delete_topics(&[&name], &options).await?;
            for result in results {
                match result {
                    Ok(deleted) => println!("deleted topic {deleted}"),
                    Err((topic, code)) => bail!("deleting topic {topic} failed: {code} ({code:?})"),
                }
            }
        }
        TopicCommand::List => {
            let listing = client.clone();
            let names = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
                let consumer: BaseConsumer = client_config(&listing).create()?;
                let metadata = consumer.fetch_metadata(None, TIMEOUT).context("fetching metadata")?;
                Ok(metadata.topics().iter().map(|t| t.name().to_string()).collect())
            })
            .await??;
            for name in names {
                println!("{name}");
            }
        }
        TopicCommand::Describe { names } => describe(&client, names, &options).await?,
        TopicCommand::Alter { name, changes } => {
            let done =
                crate::topic_admin::alter_configs(&client, crate::topic_admin::RESOURCE_TOPIC, &name, &changes).await?;
            println!("altered topic {name}: {done}");
        }
        TopicCommand::DeleteRecords { name, partition, before } => {
            crate::topic_admin::delete_records(&client, &name, &partition, before).await?
        }
        TopicCommand::Tail(tail) => {
            tokio::task::spawn_blocking(move || crate::topic_tail::tail(&client, &tail)).await??
        }
    }
    Ok(())
}

/// A topic as shown by `describe`: name, topic-level error, partitions.
struct TopicRows {
    name: String,
    error: Option<String>,
    partitions: Vec<PartitionRow>,
}

struct PartitionRow {
    id: i32,
    leader: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    start: i64,
    end: i64,
    error: Option<String>,
}

async fn describe(client: &Client, names: Vec<String>, options: &AdminOptions) -> anyhow::Result<()> {
    let owned = client.clone();
    let wanted = names.clone();
    let topics = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<TopicRows>> {
        let consumer: BaseConsumer = client_config(&owned).create()?;
        let metadata = consumer.fetch_metadata(None, TIMEOUT).context("fetching metadata")?;
        let mut out = Vec::new();
        for topic in metadata.topics() {
            if !wanted.is_empty() && !wanted.iter().any(|w| w == topic.name()) {
                continue;
            }
            let mut rows = Vec::new();
            for p in topic.partitions() {
                let (start, end) = consumer.fetch_watermarks(topic.name(), p.id(), TIMEOUT).unwrap_or((-1, -1));
                rows.push(PartitionRow {
                    id: p.id(),
                    leader: p.leader(),
                    replicas: p.replicas().to_vec(),
                    isr: p.isr().to_vec(),
                    start,
                    end,
                    error: p.error().map(|e| format!("{e:?}")),
                });
            }
            rows.sort_by_key(|r| r.id);
            out.push(TopicRows {
                name: topic.name().to_string(),
                error: topic.error().map(|e| format!("{e:?}")),
                partitions: rows,
            });
        }
        Ok(out)
    })
    .await??;
    for name in &names {
        if !topics.iter().any(|t| &t.name == name) {
            bail!("topic {name} does not exist");
        }
    }
    let admin = admin(client)?;
    for TopicRows { name, error, partitions: rows } in topics {
        let configs = admin.describe_configs([&ResourceSpecifier::Topic(&name)], options).await?;
        let mut settings = Vec::new();
        for resource in configs.into_iter().flatten() {
            for entry in resource.entries {
                if !entry.is_default {
                    settings.push(format!("{}={}", entry.name, entry.value.unwrap_or_default()));
                }
            }
        }
        let under_replicated = rows.iter().filter(|r| r.isr.len() < r.replicas.len()).count();
        println!(
            "Topic: {name}\tPartitions: {}\tReplicationFactor: {}\tUnderReplicated: {under_replicated}\tConfigs: {}{}",
            rows.len(),
            rows.first().map_or(0, |r| r.replicas.len()),
            if settings.is_empty() { "-".to_string() } else { settings.join(",") },
            error.map(|e| format!("\tError: {e}")).unwrap_or_default()
        );
        let join = |ids: &[i32]| ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        for row in rows {
            let state = if row.leader < 0 {
                "\tOFFLINE"
            } else if row.isr.len() < row.replicas.len() {
                "\tUNDER-REPLICATED"
            } else {
                ""
            };
            println!(
                "\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}\tLogStartOffset: {}\tLogEndOffset: {}{}{}",
                row.id,
                row.leader,
                join(&row.replicas),
                join(&row.isr),
                row.start,
                row.end,
                state,
                row.error.map(|e| format!("\tError: {e}")).unwrap_or_default()
            );
        }
    }
    Ok(())
}
