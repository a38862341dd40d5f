//! `millrace topic tail`: a console consumer for operators — the records of a topic from a
//! chosen point (the beginning, the end, an offset, a time, or the last N per partition), as
//! plain values or one JSON object per record with key, headers and timestamp (dead letters
//! carry their reason in headers). It reads without a consumer group, so it commits nothing and
//! moves no sink's offsets.

use crate::client::Client;
use anyhow::{bail, Context};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::io::Write;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Arguments of `millrace topic tail`.
#[derive(clap::Args)]
pub struct TailArgs {
    /// Topic.
    topic: String,
    /// Where to start: `beginning`, `end` (default: only new records), an offset, a time
    /// (RFC 3339, e.g. 2026-12-04T09:00:00Z), or `-N` for the last N records of each partition.
    #[arg(long, default_value = "end", allow_hyphen_values = true)]
    from: String,
    /// Only these partitions (repeatable); all when absent.
    #[arg(long = "partition")]
    partitions: Vec<i32>,
    /// Stop after this many records.
    #[arg(long)]
    count: Option<u64>,
    /// Stop at the end of every partition instead of waiting for more.
    #[arg(long)]
    exit: bool,
    /// `value` (one line per record), or `json`: {topic, partition, offset, timestamp, key,
    /// headers, value}, text where it is UTF-8 and base64 where not.
    #[arg(long, default_value = "value")]
    format: TailFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum TailFormat {
    Value,
    Json,
}

/// Where reading starts.
#[derive(Debug, PartialEq)]
enum From {
    Beginning,
    End,
    Offset(i64),
    Time(i64),
    Last(i64),
}

fn parse_from(text: &str) -> anyhow::Result<From> {
    Ok(match text {
        "beginning" | "earliest" => From::Beginning,
        "end" | "latest" => From::End,
        _ if text.starts_with('-') => From::Last(
            text[1..]
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .with_context(|| format!("--from {text}: -N needs a count, e.g. -10"))?,
        ),
        _ if text.bytes().all(|b| b.is_ascii_digit()) => From::Offset(text.parse()?),
        _ => From::Time(
            chrono::DateTime::parse_from_rfc3339(text)
                .with_context(|| format!("--from {text}: not beginning, end, an offset, -N or an RFC 3339 time"))?
                .timestamp_millis(),
        ),
    })
}

/// Text where it is UTF-8, else base64 (so any record prints as JSON).
fn bytes_value(bytes: Option<&[u8]>) -> serde_json::Value {
    use base64::Engine;
    match bytes {
        None => serde_json::Value::Null,
        Some(b) => match std::str::from_utf8(b) {
            Ok(text) => serde_json::Value::from(text),
            Err(_) => serde_json::json!({ "base64": base64::engine::general_purpose::STANDARD.encode(b) }),
        },
    }
}

/// Reads and prints until `--count`, the end with `--exit`, or forever.
pub fn tail(client: &Client, args: &TailArgs) -> anyhow::Result<()> {
    let from = parse_from(&args.from)?;
    let consumer: BaseConsumer = client
        .rdkafka_config("millrace-tail")
        // Assigned partitions, no group: nothing is committed.
        .set("group.id", "millrace-tail")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .context("creating the Kafka client")?;
    let metadata = consumer.fetch_metadata(Some(&args.topic), TIMEOUT).context("fetching metadata")?;
    let Some(topic) = metadata.topics().iter().find(|t| t.name() == args.topic && t.error().is_none()) else {
        bail!("topic {} does not exist", args.topic);
    };
    let partitions: Vec<i32> = topic
        .partitions()
        .iter()
        .map(|p| p.id())
        .filter(|p| args.partitions.is_empty() || args.partitions.contains(p))
        .collect();
    if partitions.is_empty() {
        bail!("topic {} has none of the partitions {:?}", args.topic, args.partitions);
    }
    let mut assignment = TopicPartitionList::new();
    for &p in &partitions {
        let offset = match from {
            From::Beginning => Offset::Beginning,
            From::End => Offset::End,
            From::Offset(o) => Offset::Offset(o),
            From::Last(n) => Offset::OffsetTail(n),
            From::Time(ms) => Offset::Offset(ms),
        };
        assignment.add_partition_offset(&args.topic, p, offset)?;
    }
    if let From::Time(_) = from {
        // ListOffsets by time: the first record at or after it (the end where none is).
        assignment = consumer.offsets_for_times(assignment, TIMEOUT).context("finding offsets by time")?;
    }
    consumer.assign(&assignment).context("assigning the partitions")?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut printed = 0u64;
    let mut at_end = std::collections::BTreeSet::new();
    let started = Instant::now();
    loop {
        if args.count.is_some_and(|n| printed >= n) {
            return Ok(());
        }
        let Some(polled) = consumer.poll(Duration::from_millis(200)) else {
            // A partition with nothing to read at all never reports its end: give it time.
            if args.exit && at_end.len() < partitions.len() && started.elapsed() > TIMEOUT {
                return Ok(());
            }
            continue;
        };
        let message = match polled {
            Ok(message) => message,
            Err(rdkafka::error::KafkaError::PartitionEOF(p)) => {
                at_end.insert(p);
                if args.exit && at_end.len() == partitions.len() {
                    return Ok(());
                }
                continue;
            }
            Err(e) => bail!("reading {}: {e}", args.topic),
        };
        at_end.remove(&message.partition());
        match args.format {
            TailFormat::Value => {
                out.write_all(message.payload().unwrap_or_default())?;
                out.write_all(b"\n")?;
            }
            TailFormat::Json => {
                let headers: Vec<serde_json::Value> = message
                    .headers()
                    .map(|hs| {
                        hs.iter().map(|h| serde_json::json!({ "key": h.key, "value": bytes_value(h.value) })).collect()
                    })
                    .unwrap_or_default();
                let record = serde_json::json!({
                    "topic": message.topic(),
                    "partition": message.partition(),
                    "offset": message.offset(),
                    "timestamp": message.timestamp().to_millis(),
                    "key": bytes_value(message.key()),
                    "headers": headers,
                    "value": bytes_value(message.payload()),
                });
                writeln!(out, "{record}")?;
            }
        }
        out.flush()?;
        printed += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starting_points_as_operators_write_them() {
        assert_eq!(parse_from("beginning").ok(), Some(From::Beginning));
        assert_eq!(parse_from("latest").ok(), Some(From::End));
        assert_eq!(parse_from("42").ok(), Some(From::Offset(42)));
        assert_eq!(parse_from("-5").ok(), Some(From::Last(5)));
        assert_eq!(parse_from("2026-12-04T09:00:00Z").ok(), Some(From::Time(1_796_374_800_000)));
        assert!(parse_from("-0").is_err());
        assert!(parse_from("yesterday").is_err());
        assert_eq!(bytes_value(Some(b"\xff")), serde_json::json!({"base64": "/w=="}));
    }
}
