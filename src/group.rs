//! `millrace group list|describe|reset-offsets`: consumer groups as `kafka-consumer-groups`
//! shows and rewinds them, over the Kafka protocol (ListGroups, DescribeGroups, OffsetFetch,
//! ListOffsets, OffsetCommit) so it works against any Kafka-compatible cluster.

use crate::client::Client;
use anyhow::{bail, Context};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
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
    /// Moves a group's committed offsets (to replay, or to skip), as `kafka-consumer-groups
    /// --reset-offsets`; refused while the group has members.
    ResetOffsets(ResetArgs),
}

/// Arguments of `millrace group reset-offsets`.
#[derive(clap::Args)]
struct ResetArgs {
    /// Group id.
    group: String,
    /// `TOPIC` (every partition) or `TOPIC:0,2`; repeat for several topics.
    #[arg(long = "topic", required_unless_present = "all_topics")]
    topics: Vec<String>,
    /// Every topic the group has committed offsets for.
    #[arg(long)]
    all_topics: bool,
    #[command(flatten)]
    target: ResetTarget,
    /// Print the new offsets without committing them.
    #[arg(long, conflicts_with = "execute")]
    dry_run: bool,
    /// Commit them (the default; accepted for `kafka-consumer-groups` habits).
    #[arg(long)]
    execute: bool,
}

/// Where the offsets go: exactly one of these.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct ResetTarget {
    /// The first offset still stored.
    #[arg(long)]
    to_earliest: bool,
    /// The end of the partition (skip everything not read yet).
    #[arg(long)]
    to_latest: bool,
    /// The first record at or after this time: RFC 3339 (`2026-12-04T09:00:00Z`), or
    /// `YYYY-MM-DDTHH:MM:SS[.sss]` read as UTC.
    #[arg(long)]
    to_datetime: Option<String>,
    /// The first record at or after now minus this: `PT1H30M`, `P1D` (ISO 8601), or `90m`, `2h`.
    #[arg(long)]
    by_duration: Option<String>,
    /// The committed offset plus N (negative: back), kept within the partition.
    #[arg(long, allow_hyphen_values = true)]
    shift_by: Option<i64>,
    /// This offset, kept within the partition.
    #[arg(long)]
    to_offset: Option<i64>,
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
        GroupCommand::ResetOffsets(reset) => reset_offsets(&client, &reset),
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

/// Where one partition's offset goes, from what is known of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Earliest,
    Latest,
    /// The first offset at or after this time (ms), as ListOffsets finds it.
    Time(i64),
    Shift(i64),
    Offset(i64),
}

/// The new offset of a partition holding `low..high` whose committed offset is `committed`;
/// `at_time` is ListOffsets' answer for a time plan (None: no record that late, so the end).
fn new_offset(plan: Plan, low: i64, high: i64, committed: Option<i64>, at_time: Option<i64>) -> i64 {
    let wanted = match plan {
        Plan::Earliest => low,
        Plan::Latest => high,
        Plan::Time(_) => at_time.unwrap_or(high),
        // Kafka shifts from the committed offset, or from the end when there is none.
        Plan::Shift(n) => committed.unwrap_or(high).saturating_add(n),
        Plan::Offset(n) => n,
    };
    wanted.clamp(low, high.max(low))
}

/// `PT1H30M`, `P1DT2H`, `PT45S` (ISO 8601, as Kafka's tool takes), or `90m`, `2h`, `1d`.
fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let Some(iso) = text.strip_prefix('P') else {
        return millrace_config::units::DurationMs::parse(text)
            .map(|d| Duration::from_millis(d.0))
            .map_err(|e| anyhow::anyhow!("--by-duration {text}: {e}"));
    };
    let mut seconds = 0f64;
    let mut in_time = false;
    let mut number = String::new();
    for c in iso.chars() {
        match c {
            'T' if number.is_empty() => in_time = true,
            '0'..='9' | '.' => number.push(c),
            unit => {
                let n: f64 =
                    number.parse().map_err(|_| anyhow::anyhow!("--by-duration {text}: not an ISO 8601 duration"))?;
                number.clear();
                seconds += n * match (unit, in_time) {
                    ('D', false) => 86_400.0,
                    ('W', false) => 604_800.0,
                    ('H', true) => 3_600.0,
                    ('M', true) => 60.0,
                    ('S', true) => 1.0,
                    _ => bail!("--by-duration {text}: `{unit}` is not a unit here (use e.g. PT1H30M or P1D)"),
                };
            }
        }
    }
    anyhow::ensure!(number.is_empty() && seconds > 0.0, "--by-duration {text}: not an ISO 8601 duration");
    Ok(Duration::from_secs_f64(seconds))
}

/// A `--to-datetime` value as ms since the epoch.
fn parse_datetime(text: &str) -> anyhow::Result<i64> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(at.timestamp_millis());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(at) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Ok(at.and_utc().timestamp_millis());
        }
    }
    bail!("--to-datetime {text}: use e.g. 2026-12-04T09:00:00Z or 2026-12-04T09:00:00.000 (UTC)")
}

impl ResetTarget {
    fn plan(&self) -> anyhow::Result<Plan> {
        Ok(if self.to_earliest {
            Plan::Earliest
        } else if self.to_latest {
            Plan::Latest
        } else if let Some(at) = &self.to_datetime {
            Plan::Time(parse_datetime(at)?)
        } else if let Some(ago) = &self.by_duration {
            let now = chrono::Utc::now().timestamp_millis();
            Plan::Time(now.saturating_sub(i64::try_from(parse_duration(ago)?.as_millis()).unwrap_or(i64::MAX)))
        } else if let Some(n) = self.shift_by {
            Plan::Shift(n)
        } else if let Some(n) = self.to_offset {
            Plan::Offset(n)
        } else {
            bail!("say where the offsets go: --to-earliest, --to-latest, --to-datetime, --by-duration, --shift-by or --to-offset")
        })
    }
}

fn reset_offsets(target: &Client, args: &ResetArgs) -> anyhow::Result<()> {
    let plan = args.target.plan()?;
    let group_id = args.group.as_str();
    let client = consumer(target, group_id)?;
    let list = client.fetch_group_list(Some(group_id), TIMEOUT).context("describing the group")?;
    if let Some(group) = list.groups().iter().find(|g| g.name() == group_id) {
        // As Kafka's tool: members would overwrite the new offsets with their next commit.
        if !group.members().is_empty() {
            bail!(
                "group {group_id} has {} active member(s) (state {}): stop its consumers first, then reset",
                group.members().len(),
                group.state()
            );
        }
    }
    let metadata = client.fetch_metadata(None, TIMEOUT).context("fetching metadata")?;
    let partitions_of = |topic: &str| -> anyhow::Result<Vec<i32>> {
        let found = metadata.topics().iter().find(|t| t.name() == topic).filter(|t| t.error().is_none());
        let found = found.ok_or_else(|| anyhow::anyhow!("topic {topic} does not exist"))?;
        Ok(found.partitions().iter().map(|p| p.id()).collect())
    };
    let mut wanted = TopicPartitionList::new();
    if args.all_topics {
        let mut every = TopicPartitionList::new();
        for topic in metadata.topics().iter().filter(|t| !t.name().starts_with("__")) {
            for p in topic.partitions() {
                every.add_partition(topic.name(), p.id());
            }
        }
        let committed = client.committed_offsets(every, TIMEOUT).context("fetching committed offsets")?;
        for e in committed.elements().iter().filter(|e| matches!(e.offset(), Offset::Offset(_))) {
            wanted.add_partition(e.topic(), e.partition());
        }
    }
    for spec in &args.topics {
        let (topic, only) = match spec.split_once(':') {
            Some((topic, list)) => {
                let chosen: Vec<i32> = list
                    .split(',')
                    .map(|p| p.trim().parse().map_err(|_| anyhow::anyhow!("--topic {spec}: `{p}` is not a partition")))
                    .collect::<anyhow::Result<_>>()?;
                (topic, Some(chosen))
            }
            None => (spec.as_str(), None),
        };
        let all = partitions_of(topic)?;
        for p in only.unwrap_or_else(|| all.clone()) {
            anyhow::ensure!(all.contains(&p), "topic {topic} has no partition {p}");
            wanted.add_partition(topic, p);
        }
    }
    anyhow::ensure!(wanted.count() > 0, "no partition to reset (the group has committed nothing?)");
    let committed = client.committed_offsets(wanted.clone(), TIMEOUT).context("fetching committed offsets")?;
    let at_time = match plan {
        Plan::Time(ms) => {
            let mut times = TopicPartitionList::new();
            for e in wanted.elements() {
                times.add_partition_offset(e.topic(), e.partition(), Offset::Offset(ms))?;
            }
            Some(client.offsets_for_times(times, TIMEOUT).context("finding offsets by time (ListOffsets)")?)
        }
        _ => None,
    };
    let mut new = TopicPartitionList::new();
    let mut rows = Vec::new();
    for e in wanted.elements() {
        let (low, high) = client
            .fetch_watermarks(e.topic(), e.partition(), TIMEOUT)
            .with_context(|| format!("reading the offsets of {}-{}", e.topic(), e.partition()))?;
        let current = committed.find_partition(e.topic(), e.partition()).and_then(|c| match c.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        });
        let found =
            at_time.as_ref().and_then(|t| t.find_partition(e.topic(), e.partition())).and_then(|f| match f.offset() {
                Offset::Offset(o) if o >= 0 => Some(o),
                _ => None,
            });
        let offset = new_offset(plan, low, high, current, found);
        new.add_partition_offset(e.topic(), e.partition(), Offset::Offset(offset))?;
        rows.push((e.topic().to_string(), e.partition(), current, offset));
    }
    println!("{:<30} {:<30} {:>9} {:>15} {:>15}", "GROUP", "TOPIC", "PARTITION", "PREVIOUS-OFFSET", "NEW-OFFSET");
    for (topic, partition, current, offset) in &rows {
        let previous = current.map_or("-".to_string(), |c| c.to_string());
        println!("{group_id:<30} {topic:<30} {partition:>9} {previous:>15} {offset:>15}");
    }
    if args.dry_run {
        println!("(dry run: nothing committed)");
        return Ok(());
    }
    client.commit(&new, CommitMode::Sync).context("committing the new offsets (OffsetCommit)")?;
    println!("committed {} offset(s) for group {group_id}", rows.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_offsets_stay_within_the_partition() {
        // Partition holding 10..50, committed at 30.
        assert_eq!(new_offset(Plan::Earliest, 10, 50, Some(30), None), 10);
        assert_eq!(new_offset(Plan::Latest, 10, 50, Some(30), None), 50);
        assert_eq!(new_offset(Plan::Shift(-5), 10, 50, Some(30), None), 25);
        assert_eq!(new_offset(Plan::Shift(-100), 10, 50, Some(30), None), 10);
        assert_eq!(new_offset(Plan::Shift(3), 10, 50, None, None), 50, "from the end when nothing is committed");
        assert_eq!(new_offset(Plan::Offset(5), 10, 50, None, None), 10);
        assert_eq!(new_offset(Plan::Offset(99), 10, 50, None, None), 50);
        assert_eq!(new_offset(Plan::Time(0), 10, 50, None, Some(42)), 42);
        assert_eq!(new_offset(Plan::Time(0), 10, 50, None, None), 50, "no record that late: the end");
    }

    #[test]
    fn durations_and_datetimes_as_kafkas_tool_takes_them() {
        assert_eq!(parse_duration("PT1H30M").ok(), Some(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("P1DT2H").ok(), Some(Duration::from_secs(93_600)));
        assert_eq!(parse_duration("PT0.5S").ok(), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("90m").ok(), Some(Duration::from_secs(5_400)));
        assert!(parse_duration("P1H").is_err(), "hours belong after T");
        assert!(parse_duration("PT").is_err());
        assert_eq!(parse_datetime("2026-12-04T09:00:00Z").ok(), Some(1_796_374_800_000));
        assert_eq!(parse_datetime("2026-12-04T10:00:00+01:00").ok(), Some(1_796_374_800_000));
        assert_eq!(parse_datetime("2026-12-04T09:00:00.000").ok(), Some(1_796_374_800_000));
        assert!(parse_datetime("yesterday").is_err());
    }
}
