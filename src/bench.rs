//! `millrace bench`: produce then consume N records through librdkafka and report throughput.
//! Benchmarks live here rather than in timed tests (see docs/benchmarks.md for the commands).

use anyhow::{bail, Context};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arguments of `millrace bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Broker to measure.
    #[arg(long, default_value = "127.0.0.1:9092", env = "MILLRACE_BOOTSTRAP")]
    bootstrap: String,
    /// Topic to use (created by auto-creation or beforehand with the wanted partitions).
    #[arg(long, default_value = "bench")]
    topic: String,
    /// Records to produce and then consume.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    record_size: usize,
    /// Producer acks: 0, 1 or all.
    #[arg(long, default_value = "all")]
    acks: String,
    /// librdkafka compression.type.
    #[arg(long, default_value = "none")]
    compression: String,
    /// librdkafka linger.ms.
    #[arg(long, default_value_t = 5)]
    linger_ms: u32,
    /// Skip the consume phase.
    #[arg(long)]
    produce_only: bool,
}

struct Counting {
    delivered: AtomicU64,
    failed: AtomicU64,
}

struct BenchContext(Arc<Counting>);

impl ClientContext for BenchContext {}

impl ProducerContext for BenchContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.0.delivered.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.0.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

fn report(phase: &str, args: &BenchArgs, records: u64, elapsed: Duration) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let bytes = records as f64 * args.record_size as f64;
    println!(
        "{phase}\trecord_size={}\tacks={}\trecords={records}\tseconds={secs:.3}\trecords_per_sec={:.0}\tMiB_per_sec={:.1}",
        args.record_size,
        args.acks,
        records as f64 / secs,
        bytes / secs / (1 << 20) as f64
    );
}

fn produce(args: &BenchArgs) -> anyhow::Result<()> {
    let counts = Arc::new(Counting { delivered: AtomicU64::new(0), failed: AtomicU64::new(0) });
    let producer: BaseProducer<BenchContext> = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("acks", &args.acks)
        .set("compression.type", &args.compression)
        .set("linger.ms", args.linger_ms.to_string())
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("enable.idempotence", if args.acks == "all" { "true" } else { "false" })
        .create_with_context(BenchContext(counts.clone()))
        .context("creating the producer")?;
    let payload = vec![b'x'; args.record_size];
    let started = Instant::now();
    for i in 0..args.records {
        let key = (i % 1024).to_string();
        let mut record = BaseRecord::to(&args.topic).payload(&payload).key(&key);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, back)) => {
                    if !matches!(e.rdkafka_error_code(), Some(rdkafka::types::RDKafkaErrorCode::QueueFull)) {
                        bail!("producing failed: {e}");
                    }
                    record = back;
                    producer.poll(Duration::from_millis(1));
                }
            }
        }
        if i % 1000 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(300)).context("flushing the producer")?;
    let elapsed = started.elapsed();
    let failed = counts.failed.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} records failed delivery");
    }
    report("produce", args, counts.delivered.load(Ordering::Relaxed), elapsed);
    Ok(())
}

fn consume(args: &BenchArgs) -> anyhow::Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        // librdkafka requires a group id for assign(); nothing is committed to it.
        .set("group.id", "millrace-bench")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .create()
        .context("creating the consumer")?;
    let metadata = consumer.fetch_metadata(Some(&args.topic), Duration::from_secs(10))?;
    let mut assignment = TopicPartitionList::new();
    let mut expected = 0u64;
    for topic in metadata.topics() {
        for p in topic.partitions() {
            let (low, high) = consumer.fetch_watermarks(&args.topic, p.id(), Duration::from_secs(10))?;
            expected += (high - low) as u64;
            assignment.add_partition_offset(&args.topic, p.id(), Offset::Offset(low))?;
        }
    }
    let target = expected.min(args.records);
    consumer.assign(&assignment)?;
    let started = Instant::now();
    let mut received = 0u64;
    while received < target {
        match consumer.poll(Duration::from_secs(10)) {
            Some(Ok(message)) => {
                received += 1;
                let _ = message.payload();
            }
            Some(Err(e)) => bail!("consuming failed: {e}"),
            None => bail!("no record for 10s after {received} of {target}"),
        }
    }
    report("consume", args, received, started.elapsed());
    Ok(())
}

/// Runs the benchmark.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || {
        produce(&args)?;
        if !args.produce_only {
            consume(&args)?;
        }
        Ok(())
    })
    .await?
}
