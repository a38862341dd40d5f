//! `millrace bench`: produce then consume N records through librdkafka and report throughput, and
//! the produce phase's per-record delivery latency (enqueue → delivery report) percentiles.
//! Benchmarks live here rather than in timed tests (see docs/benchmarks.md for the commands).

use anyhow::{bail, Context};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arguments of `millrace bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Broker to measure, and how to reach it (`--command-config` for TLS and SASL listeners).
    #[command(flatten)]
    client: crate::client::ClientArgs,
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
    /// Offer records at this steady rate (records per second) instead of as fast as possible, so
    /// the delivery latency is measured below saturation; 0 = unlimited.
    #[arg(long, default_value_t = 0)]
    rate: u64,
}

struct Counting {
    delivered: AtomicU64,
    failed: AtomicU64,
    /// Delivery latency of the successful records, in microseconds.
    latency: Histogram,
    /// Whether the warm-up record was delivered.
    warmed_up: AtomicBool,
}

/// Delivery opaque of the warm-up record, which is left out of every figure.
const WARM_UP: usize = usize::MAX;

/// Producer context; each record's delivery opaque is its enqueue time in nanoseconds since
/// `epoch`, so the delivery callback can measure enqueue → delivery report.
struct BenchContext {
    counts: Arc<Counting>,
    epoch: Instant,
}

impl ClientContext for BenchContext {}

impl ProducerContext for BenchContext {
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &DeliveryResult<'_>, enqueued_nanos: usize) {
        if enqueued_nanos == WARM_UP {
            self.counts.warmed_up.store(result.is_ok(), Ordering::Relaxed);
            return;
        }
        match result {
            Ok(_) => {
                let now = nanos_since(self.epoch);
                self.counts.latency.record(now.saturating_sub(enqueued_nanos) as u64 / 1_000);
                self.counts.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.counts.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn nanos_since(started: Instant) -> usize {
    usize::try_from(started.elapsed().as_nanos()).unwrap_or(usize::MAX)
}

/// Sub-buckets per power of two: values are kept with a relative error below 1/128 (0.8 %).
const SUB_BITS: u32 = 7;
const SUB_BUCKETS: usize = 1 << SUB_BITS;

/// A log-linear histogram of `u64` values (HDR-style): exact below 128, then 128 linear
/// sub-buckets per power of two. Lock-free, fixed size (58 × 128 counters), any number of values.
struct Histogram {
    buckets: Vec<AtomicU64>,
    max: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        let len = (64 - SUB_BITS as usize + 1) * SUB_BUCKETS;
        Histogram { buckets: (0..len).map(|_| AtomicU64::new(0)).collect(), max: AtomicU64::new(0) }
    }

    fn index(value: u64) -> usize {
        if value < SUB_BUCKETS as u64 {
            return value as usize;
        }
        let shift = 63 - value.leading_zeros() - SUB_BITS;
        let sub = (value >> shift) as usize - SUB_BUCKETS;
        (shift as usize + 1) * SUB_BUCKETS + sub
    }

    /// The smallest and largest value that fall into bucket `index`.
    fn bounds(index: usize) -> (u64, u64) {
        if index < SUB_BUCKETS {
            return (index as u64, index as u64);
        }
        let shift = (index / SUB_BUCKETS - 1) as u32;
        let low = ((SUB_BUCKETS + index % SUB_BUCKETS) as u64) << shift;
        (low, low + ((1u64 << shift) - 1))
    }

    fn record(&self, value: u64) {
        if let Some(bucket) = self.buckets.get(Self::index(value)) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.max.fetch_max(value, Ordering::Relaxed);
    }

    /// The value at quantile `q` (0..=1): the midpoint of the bucket holding the value of rank
    /// ⌈q·count⌉, capped at the maximum seen; `None` when nothing was recorded.
    fn quantile(&self, q: f64) -> Option<u64> {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0u64;
        for (index, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let (low, high) = Self::bounds(index);
                return Some((low + (high - low) / 2).min(self.max.load(Ordering::Relaxed)));
            }
        }
        Some(self.max.load(Ordering::Relaxed))
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

fn report_latency(args: &BenchArgs, latency: &Histogram) {
    let ms = |q: f64| latency.quantile(q).map_or("-".to_string(), |us| format!("{:.2}", us as f64 / 1000.0));
    let max = latency.max.load(Ordering::Relaxed) as f64 / 1000.0;
    let rate = if args.rate == 0 { "max".to_string() } else { args.rate.to_string() };
    println!(
        "produce_latency\trecord_size={}\tacks={}\trate={rate}\tp50_ms={}\tp99_ms={}\tmax_ms={max:.2}",
        args.record_size,
        args.acks,
        ms(0.50),
        ms(0.99),
    );
}

fn produce(args: &BenchArgs) -> anyhow::Result<()> {
    let counts = Arc::new(Counting {
        delivered: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        latency: Histogram::new(),
        warmed_up: AtomicBool::new(false),
    });
    let epoch = Instant::now();
    let producer: BaseProducer<BenchContext> = args
        .client
        .client()?
        .rdkafka_config("millrace-bench")
        .set("acks", &args.acks)
        .set("compression.type", &args.compression)
        .set("linger.ms", args.linger_ms.to_string())
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("enable.idempotence", if args.acks == "all" { "true" } else { "false" })
        .create_with_context(BenchContext { counts: counts.clone(), epoch })
        .context("creating the producer")?;
    let payload = vec![b'x'; args.record_size];
    // One record delivered before the clock starts, so that connection set-up and, with
    // idempotence, librdkafka's producer-id acquisition (its first attempt runs before any broker
    // connection is up and is retried after 500 ms) are not measured.
    producer
        .send(BaseRecord::with_opaque_to(&args.topic, WARM_UP).payload(&payload).key("warm-up"))
        .map_err(|(e, _)| anyhow::anyhow!("producing the warm-up record failed: {e}"))?;
    producer.flush(Duration::from_secs(60)).context("flushing the warm-up record")?;
    if !counts.warmed_up.load(Ordering::Relaxed) {
        bail!("the warm-up record was not delivered");
    }
    let started = Instant::now();
    let sending = AtomicBool::new(true);
    std::thread::scope(|scope| {
        if args.rate > 0 {
            // At a fixed rate, delivery reports are served as they come by a thread of their own,
            // which waits for them 100 ms at a time. Polling between records with a 1 ms timeout
            // was a busy loop: the client hands librdkafka the time left after each report in
            // whole milliseconds, rounded down, so below 1 ms it polls without waiting, and the
            // benchmark took a core from the brokers it measured.
            scope.spawn(|| {
                while sending.load(Ordering::Relaxed) {
                    producer.poll(Duration::from_millis(100));
                }
            });
        }
        let sent = send_records(args, &producer, started, epoch, &payload);
        sending.store(false, Ordering::Relaxed);
        sent
    })?;
    producer.flush(Duration::from_secs(300)).context("flushing the producer")?;
    let elapsed = started.elapsed();
    let failed = counts.failed.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} records failed delivery");
    }
    report("produce", args, counts.delivered.load(Ordering::Relaxed), elapsed);
    report_latency(args, &counts.latency);
    Ok(())
}

/// Sends the measured records: as fast as the producer's queue takes them, serving delivery
/// reports every 1000 records and while the queue is full; or, with `--rate`, each when it is
/// due, sleeping in between (the reports are then served by another thread).
fn send_records(
    args: &BenchArgs,
    producer: &BaseProducer<BenchContext>,
    started: Instant,
    epoch: Instant,
    payload: &[u8],
) -> anyhow::Result<()> {
    for i in 0..args.records {
        if args.rate > 0 {
            // Records are due at a steady pace from `started`; sleep until this one is due, at
            // least a millisecond at a time, so records go out in small bursts of rate/1000.
            let due = Duration::from_secs_f64(i as f64 / args.rate as f64);
            let elapsed = started.elapsed();
            if elapsed < due {
                std::thread::sleep((due - elapsed).max(Duration::from_millis(1)));
            }
        }
        let key = (i % 1024).to_string();
        let mut record = BaseRecord::with_opaque_to(&args.topic, nanos_since(epoch)).payload(payload).key(&key);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, back)) => {
                    if !matches!(e.rdkafka_error_code(), Some(rdkafka::types::RDKafkaErrorCode::QueueFull)) {
                        bail!("producing failed: {e}");
                    }
                    record = back;
                    if args.rate > 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    } else {
                        producer.poll(Duration::from_millis(1));
                    }
                }
            }
        }
        if args.rate == 0 && i % 1000 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    Ok(())
}

fn consume(args: &BenchArgs) -> anyhow::Result<()> {
    let consumer: BaseConsumer = args
        .client
        .client()?
        .rdkafka_config("millrace-bench")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_hold_their_values() {
        for value in (0..100_000u64).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let (low, high) = Histogram::bounds(Histogram::index(value));
            assert!(low <= value && value <= high, "{value} outside {low}..={high}");
            assert!((high - low) as f64 <= value as f64 / 128.0, "bucket of {value} too wide: {low}..={high}");
        }
    }

    #[test]
    fn histogram_quantiles() {
        let h = Histogram::new();
        assert_eq!(h.quantile(0.5), None);
        for v in 1..=1000u64 {
            h.record(v * 10);
        }
        let within = |got: Option<u64>, want: u64| got.is_some_and(|g| g.abs_diff(want) as f64 <= want as f64 / 128.0);
        assert!(within(h.quantile(0.5), 5_000), "{:?}", h.quantile(0.5));
        assert!(within(h.quantile(0.99), 9_900), "{:?}", h.quantile(0.99));
        assert_eq!(h.quantile(1.0), Some(10_000));
        assert_eq!(h.max.load(Ordering::Relaxed), 10_000);
    }
}
