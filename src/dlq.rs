//! `millrace dlq replay`: sends the records of a sink's dead-letter topic back to the topics they
//! came from, after the cause was fixed (a mapping, a permission, an index). Each keeps its key,
//! value, timestamp and `millrace.origin.*` headers, so the sink writes it where, and with the
//! document id, it would have had the first time. Progress is committed as a consumer group of
//! the dead-letter topic once the brokers acknowledged the replayed records, so a second run
//! sends only what was dead-lettered since.

use crate::client::Client;
use anyhow::{bail, Context};
use millrace_sinks::record::{origin_from_headers, ORIGIN_OFFSET, ORIGIN_PARTITION, ORIGIN_TOPIC};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(15);

/// `millrace dlq` arguments.
#[derive(clap::Args)]
pub struct DlqArgs {
    #[command(flatten)]
    client: crate::client::ClientArgs,
    #[command(subcommand)]
    command: DlqCommand,
}

#[derive(clap::Subcommand)]
enum DlqCommand {
    /// Send dead letters back to their original topics (after fixing why they were refused).
    Replay {
        /// The dead-letter topic (a sink's `dead_letter_topic`).
        #[arg(long)]
        topic: String,
        /// Only dead letters from this original topic.
        #[arg(long)]
        only_topic: Option<String>,
        /// The consumer group that remembers what was replayed.
        #[arg(long, default_value = "millrace-dlq-replay")]
        group: String,
        /// Count what would be replayed, per original topic, without sending or committing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Runs a `dlq` subcommand.
pub async fn run(args: DlqArgs) -> anyhow::Result<()> {
    let client = args.client.client()?;
    match args.command {
        DlqCommand::Replay { topic, only_topic, group, dry_run } => {
            tokio::task::spawn_blocking(move || replay(&client, &topic, only_topic.as_deref(), &group, dry_run))
                .await??
        }
    }
    Ok(())
}

/// What a replay did.
#[derive(Default)]
struct Tally {
    /// Replayed (or, dry, to replay) per original topic.
    by_topic: BTreeMap<String, u64>,
    /// Without origin headers: not a dead letter; left alone.
    no_origin: u64,
    /// From another original topic than `--only-topic`.
    other_topic: u64,
}

fn replay(client: &Client, topic: &str, only: Option<&str>, group: &str, dry_run: bool) -> anyhow::Result<()> {
    let mut config = client.rdkafka_config("millrace-dlq-replay");
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest");
    let consumer: BaseConsumer = config.create().context("creating the consumer")?;
    let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT).context("fetching metadata")?;
    let Some(t) = metadata.topics().first().filter(|t| t.error().is_none() && !t.partitions().is_empty()) else {
        bail!("topic {topic} does not exist");
    };
    // What is there now is replayed; dead letters arriving meanwhile wait for the next run.
    let mut wanted = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for p in t.partitions() {
        let (_, high) = consumer.fetch_watermarks(topic, p.id(), TIMEOUT).context("reading the end offsets")?;
        ends.insert(p.id(), high);
        wanted.add_partition(topic, p.id());
    }
    let committed = consumer.committed_offsets(wanted, TIMEOUT).context("reading the group's offsets")?;
    let mut start = TopicPartitionList::new();
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    for e in committed.elements() {
        let offset = match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        };
        next.insert(e.partition(), offset);
        start.add_partition_offset(topic, e.partition(), Offset::Offset(offset))?;
    }
    consumer.assign(&start).context("assigning the dead-letter partitions")?;

    let mut producer_config = client.rdkafka_config("millrace-dlq-replay");
    producer_config.set("acks", "all").set("enable.idempotence", "true").set("message.timeout.ms", "30000");
    let producer: BaseProducer<DeliveryCounter> =
        producer_config.create_with_context(DeliveryCounter::default()).context("creating the producer")?;
    let mut tally = Tally::default();
    let deadline = Instant::now() + Duration::from_secs(300);
    while next.iter().any(|(p, offset)| ends.get(p).is_some_and(|end| offset < end)) {
        if Instant::now() > deadline {
            bail!("the dead-letter topic was not read to its end within 5 minutes; nothing was committed");
        }
        let Some(polled) = consumer.poll(Duration::from_millis(500)) else { continue };
        let message = polled.context("reading the dead-letter topic")?;
        next.insert(message.partition(), message.offset() + 1);
        if ends.get(&message.partition()).is_some_and(|end| message.offset() >= *end) {
            continue;
        }
        let headers = message.headers();
        let origin = headers.and_then(|h| origin_from_headers(h.iter().map(|h| (h.key, h.value))));
        let Some(origin) = origin else {
            tally.no_origin += 1;
            continue;
        };
        if only.is_some_and(|o| o != origin.topic) {
            tally.other_topic += 1;
            continue;
        }
        *tally.by_topic.entry(origin.topic.to_string()).or_default() += 1;
        if dry_run {
            continue;
        }
        let (partition, offset) = (origin.partition.to_string(), origin.offset.to_string());
        let replayed_from = format!("{topic}/{}@{}", message.partition(), message.offset());
        let headers = OwnedHeaders::new()
            .insert(Header { key: ORIGIN_TOPIC, value: Some(origin.topic) })
            .insert(Header { key: ORIGIN_PARTITION, value: Some(&partition) })
            .insert(Header { key: ORIGIN_OFFSET, value: Some(&offset) })
            .insert(Header { key: "millrace.replayed.from", value: Some(&replayed_from) });
        let mut record = BaseRecord::<[u8], [u8]>::to(origin.topic).headers(headers);
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(ts) = message.timestamp().to_millis() {
            record = record.timestamp(ts);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    r,
                )) => {
                    record = r;
                    producer.poll(Duration::from_millis(50));
                }
                Err((e, _)) => bail!("replaying to {}: {e}; nothing was committed", origin.topic),
            }
        }
        producer.poll(Duration::ZERO);
    }
    if !dry_run {
        producer.flush(Duration::from_secs(60)).context("waiting for the brokers to acknowledge the replay")?;
        let failed = producer.context().failed.load(Ordering::Relaxed);
        if failed > 0 {
            bail!("{failed} replayed records were not acknowledged; nothing was committed, run it again");
        }
        let mut progress = TopicPartitionList::new();
        for (p, offset) in &next {
            progress.add_partition_offset(topic, *p, Offset::Offset(*offset))?;
        }
        consumer.commit(&progress, CommitMode::Sync).context("committing the replay's progress")?;
    }
    let verb = if dry_run { "would replay" } else { "replayed" };
    let total: u64 = tally.by_topic.values().sum();
    println!("{verb} {total} dead letters from {topic}");
    for (origin, count) in &tally.by_topic {
        println!("\t{origin}\t{count}");
    }
    if tally.no_origin > 0 {
        println!("skipped {} records without millrace.origin.* headers", tally.no_origin);
    }
    if tally.other_topic > 0 {
        println!("skipped {} dead letters of other topics", tally.other_topic);
    }
    Ok(())
}

/// Counts deliveries the brokers refused.
#[derive(Default)]
struct DeliveryCounter {
    failed: Arc<AtomicU64>,
}

impl rdkafka::ClientContext for DeliveryCounter {}

impl rdkafka::producer::ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            tracing::warn!(error = %e, "a replayed record was not delivered");
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}
