//! `millrace group list|describe`: consumer groups as `kafka-consumer-groups` shows them, read
//! over the Kafka protocol (ListGroups, DescribeGroups, OffsetFetch, ListOffsets) so it works
//! against any Kafka-compatible cluster.

use crate::client::Client;
use anyhow::{bail, Context};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);

/// Arguments of `millrace group`.
#[derive(clap::Args)]
pub struct GroupArgs {
    #[command(flatten)]
    client: crate::client::ClientArgs,
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(clap::Subcommand)]
enum GroupCommand {
    /// List groups with their state.
    List,
    /// Members, assignments, committed offsets, log end offsets and lag of a group.
    Describe {
        /// Group id.
        group: String,
    },
}

fn consumer(client: &Client, group: &str) -> anyhow::Result<BaseConsumer> {
    client
        .rdkafka_config("millrace-group")
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .context("creating the Kafka client")
}

/// Runs a group subcommand.
pub async fn run(args: GroupArgs) -> anyhow::Result<()> {
    let client = args.client.client()?;
    tokio::task::spawn_blocking(move || match args.command {
        GroupCommand::List => list(&client),
        GroupCommand::Describe { group } => describe(&client, &group),
    })
    .await?
}

fn list(target: &Client) -> anyhow::Result<()> {
    let client = consumer(target, "millrace-group-list")?;
    let groups = client.fetch_group_list(None, TIMEOUT).context("listing groups")?;
    println!("{:<40} {:<22} {:<10} MEMBERS", "GROUP", "STATE", "PROTOCOL");
    for group in groups.groups() {
        println!("{:<40} {:<22} {:<10} {}", group.name(), group.state(), group.protocol(), group.members().len());
    }
    Ok(())
}

struct Row {
    committed: Option<i64>,
    end: i64,
    member: Option<(String, String, String)>,
}

fn describe(target: &Client, group_id: &str) -> anyhow::Result<()> {
    let client = consumer(target, group_id)?;
    let list = client.fetch_group_list(Some(group_id), TIMEOUT).context("describing the group")?;
    let Some(group) = list.groups().iter().find(|g| g.name() == group_id) else {
        bail!("group {group_id} was not returned by the broker");
    };
    let mut rows: BTreeMap<(String, i32), Row> = BTreeMap::new();
    for member in group.members() {
        for (topic, partition) in member.assignment().map(millrace_tui::poller::assigned_partitions).unwrap_or_default()
        {
            let owner = (member.id().to_string(), member.client_host().to_string(), member.client_id().to_string());
            rows.insert((topic, partition), Row { committed: None, end: -1, member: Some(owner) });
        }
    }
    // Committed offsets: ask for every partition of every non-internal topic.
    let metadata = client.fetch_metadata(None, TIMEOUT).context("fetching metadata")?;
    let mut wanted = TopicPartitionList::new();
    for topic in metadata.topics().iter().filter(|t| !t.name().starts_with("__")) {
        for p in topic.partitions() {
            wanted.add_partition(topic.name(), p.id());
        }
    }
    if wanted.count() > 0 {
        let committed = client.committed_offsets(wanted, TIMEOUT).context("fetching committed offsets")?;
        for element in committed.elements() {
            if let Offset::Offset(offset) = element.offset() {
                rows.entry((element.topic().to_string(), element.partition()))
                    .or_insert(Row { committed: None, end: -1, member: None })
                    .committed = Some(offset);
            }
        }
    }
    for ((topic, partition), row) in rows.iter_mut() {
        row.end = client.fetch_watermarks(topic, *partition, TIMEOUT).map(|(_, high)| high).unwrap_or(-1);
    }
    let total_lag: i64 = rows.values().filter_map(|r| r.committed.map(|c| (r.end - c).max(0))).sum();
    println!(
        "Group: {group_id}\tState: {}\tProtocol: {}\tMembers: {}\tTotalLag: {total_lag}",
        group.state(),
        if group.protocol().is_empty() { "-" } else { group.protocol() },
        group.members().len()
    );
    println!();
    println!(
        "{:<30} {:<30} {:>9} {:>15} {:>15} {:>10}  {:<50} {:<18} CLIENT-ID",
        "GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST"
    );
    for ((topic, partition), row) in &rows {
        let (member, host, client) = row.member.clone().unwrap_or_else(|| ("-".into(), "-".into(), "-".into()));
        let committed = row.committed.map_or("-".to_string(), |c| c.to_string());
        let lag = row.committed.map_or("-".to_string(), |c| (row.end - c).max(0).to_string());
        println!(
            "{group_id:<30} {topic:<30} {partition:>9} {committed:>15} {:>15} {lag:>10}  {member:<50} {host:<18} {client}",
            row.end
        );
    }
    Ok(())
}
