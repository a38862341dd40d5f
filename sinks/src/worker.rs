//! One sink: a consumer-group member that reads its topics, batches and encodes records on a
//! consumer thread, and writes batches to its destination on the async side — up to
//! `max_in_flight` batches at once while the next fills.
//!
//! Delivery rules:
//! - A batch's offsets become committable only after every record in it was accepted by the
//!   destination or acknowledged by the dead-letter topic; they are committed at most every
//!   [`COMMIT_INTERVAL`] (and at once on revocation and shutdown); until then it is retried (backoff with
//!   jitter, `Retry-After` honoured), so a destination that is down stalls the sink and its lag
//!   grows, and nothing is dropped.
//! - On a rebalance, the partitions being revoked are dropped from the batch being filled (their
//!   records are read again by the new owner from the last commit), and the revocation waits,
//!   bounded, for the batch in flight to be written and committed.
//! - SIGTERM: consuming stops, what was read is written and committed (for up to
//!   [`DRAIN_TIMEOUT`]), and the consumer leaves its group.

use crate::dead_letter::DeadLetters;
use crate::destination::{Destination, Verdict};
use crate::metrics::SinkMetrics;
use crate::record::SourceRecord;
use crate::retry::Backoff;
use crate::SinkError;
use futures_util::stream::{FuturesOrdered, StreamExt};
use millrace_config::sink::{Common, SourceSettings, StartFrom};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a stopping sink keeps writing what it has read.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often finished batches' offsets are committed: each commit is a write to the offsets topic,
/// and a crash between commits only means records are written again, which the destinations
/// absorb (same ids, same points).
pub const COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// How long a revocation waits for the batch in flight.
const REVOKE_WAIT: Duration = Duration::from_secs(15);
/// How often librdkafka reports statistics (the lag gauges come from them).
const STATISTICS_INTERVAL_MS: &str = "2000";

/// Where one record and its encoding lie in its batch's buffers.
struct Item {
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    timestamp_ms: Option<i64>,
    key: Option<Range<usize>>,
    payload: Range<usize>,
    /// The encoding's place in `Batch::encoded`, or why the record cannot be encoded.
    encoded: Result<Range<usize>, String>,
}

/// Records read together, written together, committed together. Records and encodings are
/// copied into two buffers per batch rather than allocated one by one: the consumer thread's
/// work per record is most of the sink's CPU, which on a small machine is CPU the destination
/// does not get.
#[derive(Default)]
struct Batch {
    items: Vec<Item>,
    /// Keys and payloads as read (a refused record is dead-lettered unchanged).
    originals: Vec<u8>,
    encoded: Vec<u8>,
    started: Option<Instant>,
}

impl Batch {
    /// An empty batch with room for one like `previous`.
    fn sized_like(previous: &Batch) -> Batch {
        Batch {
            items: Vec::with_capacity(previous.items.len()),
            originals: Vec::with_capacity(previous.originals.len()),
            encoded: Vec::with_capacity(previous.encoded.len()),
            started: None,
        }
    }

    /// Copies `record` in and encodes it.
    fn push<D: Destination>(&mut self, topic: &Arc<str>, record: &SourceRecord<'_>, destination: &D) {
        let copy = |buffer: &mut Vec<u8>, bytes: &[u8]| {
            buffer.extend_from_slice(bytes);
            buffer.len() - bytes.len()..buffer.len()
        };
        let key = record.key.map(|k| copy(&mut self.originals, k));
        let payload = copy(&mut self.originals, record.payload);
        let start = self.encoded.len();
        let encoded = match destination.encode(record, &mut self.encoded) {
            Ok(()) => Ok(start..self.encoded.len()),
            Err(e) => {
                self.encoded.truncate(start);
                Err(e)
            }
        };
        self.started.get_or_insert_with(Instant::now);
        self.items.push(Item {
            topic: topic.clone(),
            partition: record.partition,
            offset: record.offset,
            timestamp_ms: record.timestamp_ms,
            key,
            payload,
            encoded,
        });
    }

    /// The record at `index`, as it was read.
    fn record(&self, index: usize) -> SourceRecord<'_> {
        let item = &self.items[index];
        SourceRecord {
            topic: &item.topic,
            partition: item.partition,
            offset: item.offset,
            key: item.key.clone().map(|k| &self.originals[k]),
            payload: &self.originals[item.payload.clone()],
            timestamp_ms: item.timestamp_ms,
        }
    }

    /// The encoding of the record at `index`, unless it could not be encoded.
    fn encoded(&self, index: usize) -> Option<&[u8]> {
        self.items[index].encoded.as_ref().ok().map(|r| &self.encoded[r.clone()])
    }

    /// The batch without the records of `revoked` partitions (encoded again: revocations are rare).
    fn without<D: Destination>(&self, revoked: &BTreeSet<(String, i32)>, destination: &D) -> Batch {
        let mut kept = Batch::sized_like(self);
        for (i, item) in self.items.iter().enumerate() {
            if !revoked.contains(&(item.topic.to_string(), item.partition)) {
                kept.push(&item.topic, &self.record(i), destination);
            }
        }
        if !kept.items.is_empty() {
            kept.started = self.started;
        }
        kept
    }

    /// The offsets to commit once the batch is done: per partition, one past its last record.
    fn commit_offsets(&self) -> BTreeMap<(Arc<str>, i32), i64> {
        let mut next = BTreeMap::new();
        for item in &self.items {
            let entry = next.entry((item.topic.clone(), item.partition)).or_insert(0);
            *entry = (*entry).max(item.offset + 1);
        }
        next
    }
}

/// State shared by the consumer thread, its rebalance callbacks and the writer.
struct Shared {
    sink: String,
    /// Partitions revoked since the consumer thread last looked.
    revoked: Mutex<Vec<(String, i32)>>,
    /// Whether `revoked` has entries: checked per record, where a lock would cost more.
    revocations_pending: AtomicBool,
    /// Batches the writer has taken and not finished.
    busy: Mutex<usize>,
    idle: Condvar,
    metrics: Arc<SinkMetrics>,
    /// Offsets of finished batches not yet committed (next offset per partition).
    uncommitted: Mutex<BTreeMap<(Arc<str>, i32), i64>>,
}

impl Shared {
    /// Adds a finished batch's offsets.
    fn finished(&self, offsets: BTreeMap<(Arc<str>, i32), i64>) {
        let mut uncommitted = self.uncommitted.lock().unwrap_or_else(|p| p.into_inner());
        for (partition, next) in offsets {
            let entry = uncommitted.entry(partition).or_insert(next);
            *entry = (*entry).max(next);
        }
    }

    /// Commits what finished since the last commit.
    fn commit(&self, consumer: &SinkConsumer, mode: CommitMode) {
        let offsets = std::mem::take(&mut *self.uncommitted.lock().unwrap_or_else(|p| p.into_inner()));
        if offsets.is_empty() {
            return;
        }
        let mut list = TopicPartitionList::new();
        for ((topic, partition), next) in &offsets {
            if list.add_partition_offset(topic, *partition, Offset::Offset(*next)).is_err() {
                return;
            }
        }
        if let Err(e) = consumer.commit(&list, mode) {
            tracing::warn!(sink = %self.sink, error = %e, "committing offsets failed; the records will be read and written again");
        }
    }

    fn batch_taken(&self) {
        *self.busy.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    }

    fn batch_finished(&self) {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        *busy = busy.saturating_sub(1);
        if *busy == 0 {
            self.idle.notify_all();
        }
    }

    /// Waits up to `timeout` for the writer to finish its batches; false if it did not.
    fn wait_idle(&self, timeout: Duration) -> bool {
        let guard = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) =
            self.idle.wait_timeout_while(guard, timeout, |busy| *busy > 0).unwrap_or_else(|p| p.into_inner());
        *guard == 0
    }
}

/// Rebalance handling: see the module documentation.
struct SinkContext {
    shared: Arc<Shared>,
}

impl ClientContext for SinkContext {
    /// Consumer lag per partition from librdkafka's statistics: its high watermark minus the
    /// committed offset.
    fn stats(&self, statistics: rdkafka::Statistics) {
        for (topic, stats) in &statistics.topics {
            for (partition, p) in &stats.partitions {
                if *partition < 0 || p.consumer_lag < 0 {
                    continue; // the internal "unassigned" partition, or nothing known yet
                }
                self.shared
                    .metrics
                    .lag
                    .with_label_values(&[self.shared.sink.as_str(), topic, &partition.to_string()])
                    .set(p.consumer_lag);
            }
        }
    }
}

impl ConsumerContext for SinkContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            let revoked: Vec<(String, i32)> =
                partitions.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
            tracing::info!(sink = %self.shared.sink, partitions = revoked.len(), "partitions revoked; finishing the batch in flight");
            self.shared.revoked.lock().unwrap_or_else(|p| p.into_inner()).extend(revoked);
            self.shared.revocations_pending.store(true, Ordering::Release);
            if !self.shared.wait_idle(REVOKE_WAIT) {
                tracing::warn!(sink = %self.shared.sink, "the batch in flight is still not written; its records will be read again by the partitions' next owner");
            }
            // Hand the partitions over at exactly what was written.
            self.shared.commit(consumer, CommitMode::Sync);
        }
    }

    fn commit_callback(&self, result: rdkafka::error::KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            tracing::warn!(sink = %self.shared.sink, error = %e, "committing offsets failed; the records will be read and written again");
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            let assigned: Vec<String> =
                partitions.elements().iter().map(|e| format!("{}/{}", e.topic(), e.partition())).collect();
            tracing::info!(sink = %self.shared.sink, partitions = ?assigned, "partitions assigned");
        }
    }
}

type SinkConsumer = BaseConsumer<SinkContext>;

/// Everything one sink needs to run.
pub struct SinkSpec<D> {
    /// Topics, group, batching and retry settings.
    pub common: Common,
    /// Where records are read from.
    pub source: SourceSettings,
    /// Where records are written.
    pub destination: D,
}

/// Runs a sink until `shutdown` turns true, then drains.
pub async fn run<D: Destination>(
    spec: SinkSpec<D>,
    metrics: Arc<SinkMetrics>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), SinkError> {
    let SinkSpec { common, source, destination } = spec;
    let name = common.name.clone();
    let shared = Arc::new(Shared {
        sink: name.clone(),
        revoked: Mutex::default(),
        revocations_pending: AtomicBool::new(false),
        busy: Mutex::new(0),
        idle: Condvar::new(),
        metrics: metrics.clone(),
        uncommitted: Mutex::default(),
    });
    let consumer = Arc::new(create_consumer(&common, &source, shared.clone())?);
    let topics: Vec<&str> = common.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(|e| SinkError::Kafka {
        sink: name.clone(),
        context: "subscribing",
        source: e,
    })?;
    let dead_letters = match &common.dead_letter_topic {
        Some(topic) => Some(DeadLetters::new(&source.bootstrap, topic, &name).map_err(|e| SinkError::Kafka {
            sink: name.clone(),
            context: "creating the dead-letter producer",
            source: e,
        })?),
        None => None,
    };
    let destination = Arc::new(destination);
    tracing::info!(sink = %name, kind = destination.kind(), topics = ?common.topics, group = %common.group, "sink running");

    let (batches_tx, mut batches) = tokio::sync::mpsc::channel::<Batch>(1);
    let stop_reading = Arc::new(AtomicBool::new(false));
    let reader = {
        let (consumer, destination, shared, stop) =
            (consumer.clone(), destination.clone(), shared.clone(), stop_reading.clone());
        let common = common.clone();
        std::thread::Builder::new()
            .name(format!("sink-{name}"))
            .spawn(move || read_loop(&consumer, &*destination, &common, &shared, &stop, batches_tx))
            .map_err(|e| SinkError::Io { context: format!("starting the consumer thread of sink {name}"), source: e })?
    };

    // Writing stops for good DRAIN_TIMEOUT after the shutdown request.
    let (abandon_tx, abandon) = watch::channel(false);
    let writer = Writer {
        name: name.clone(),
        destination,
        dead_letters,
        metrics,
        backoff: (common.retry_initial.as_duration(), common.retry_max.as_duration()),
        abandon,
    };
    let mut draining = false;
    let mut commit_tick = tokio::time::interval(COMMIT_INTERVAL);
    commit_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Batches being written, finished in the order they were taken: a batch's offsets become
    // committable only after every batch before it.
    let mut in_flight = FuturesOrdered::new();
    let mut reader_done = false;
    while !(reader_done && in_flight.is_empty()) {
        tokio::select! {
            batch = batches.recv(), if !reader_done && in_flight.len() < common.max_in_flight => match batch {
                Some(batch) => {
                    shared.batch_taken();
                    in_flight.push_back(writer.deliver(batch));
                }
                None => reader_done = true,
            },
            Some(offsets) = in_flight.next(), if !in_flight.is_empty() => {
                if let Some(offsets) = offsets {
                    shared.finished(offsets);
                }
                shared.batch_finished();
            },
            // Without waiting for the answer: commits go out in order on the coordinator
            // connection; a failure is logged by the commit callback.
            _ = commit_tick.tick() => shared.commit(&consumer, CommitMode::Async),
            _ = shutdown.changed(), if !draining => {
                draining = true;
                tracing::info!(sink = %name, "stopping: writing what was read, then leaving the group");
                stop_reading.store(true, Ordering::Relaxed);
                let abandon_tx = abandon_tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(DRAIN_TIMEOUT).await;
                    let _ = abandon_tx.send(true);
                });
            }
        }
    }
    drop(in_flight);
    let _ = tokio::task::spawn_blocking(move || reader.join()).await;
    // Commit what was written, then close: leaving the group moves the partitions on at once.
    tokio::task::spawn_blocking(move || {
        shared.commit(&consumer, CommitMode::Sync);
        consumer.unsubscribe();
        drop(consumer);
    })
    .await
    .ok();
    tracing::info!(sink = %name, "sink stopped");
    Ok(())
}

fn create_consumer(common: &Common, source: &SourceSettings, shared: Arc<Shared>) -> Result<SinkConsumer, SinkError> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &source.bootstrap)
        .set("group.id", &common.group)
        .set("client.id", format!("millrace-sink-{}", common.name))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set(
            "auto.offset.reset",
            match source.start_at {
                StartFrom::Earliest => "earliest",
                StartFrom::Latest => "latest",
            },
        )
        .set("session.timeout.ms", "10000")
        // librdkafka prefetches up to 64 MiB per consumer by default; a batch or two ahead is
        // plenty for a sink that waits on its destination anyway.
        .set("queued.max.messages.kbytes", "8192")
        .set("fetch.max.bytes", "8388608")
        // Once that queue is full, librdkafka would otherwise wait a whole second before fetching
        // again: the sink would run dry every few batches.
        .set("fetch.queue.backoff.ms", "10")
        .set("statistics.interval.ms", STATISTICS_INTERVAL_MS)
        .set("heartbeat.interval.ms", "1000");
    for (key, value) in &source.librdkafka {
        config.set(key, value);
    }
    config.create_with_context(SinkContext { shared }).map_err(|e| SinkError::Kafka {
        sink: common.name.clone(),
        context: "creating the consumer",
        source: e,
    })
}

/// The consumer thread: polls, encodes, cuts batches by count, bytes and time, and hands them to
/// the writer (waiting while one is already queued: backpressure).
fn read_loop<D: Destination>(
    consumer: &SinkConsumer,
    destination: &D,
    common: &Common,
    shared: &Shared,
    stop: &AtomicBool,
    batches: tokio::sync::mpsc::Sender<Batch>,
) {
    let max_wait = common.batch_timeout.as_duration();
    let mut batch = Batch::default();
    let mut warned_at: Option<Instant> = None;
    let mut topic_names = TopicNames::default();
    let mut dry = Duration::ZERO;
    while !stop.load(Ordering::Relaxed) {
        // Ask for a ready message first: reading the clock for the wait on every record costs
        // more than the poll.
        let mut polled = consumer.poll(Duration::ZERO);
        // The batch's age is checked whenever the consumer ran dry, and every 256 records.
        let ran_dry = polled.is_none();
        if ran_dry {
            let dry_start = Instant::now();
            let wait = batch.started.map_or(Duration::from_millis(100), |s| max_wait.saturating_sub(s.elapsed()));
            polled = consumer.poll(wait.min(Duration::from_millis(100)));
            dry += dry_start.elapsed();
        }
        let mut check_time = true;
        match polled {
            Some(Ok(message)) => {
                let topic = topic_names.get(message.topic());
                let record = SourceRecord {
                    topic: &topic,
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message.key(),
                    payload: message.payload().unwrap_or_default(),
                    timestamp_ms: message.timestamp().to_millis(),
                };
                batch.push(&topic, &record, destination);
                check_time = ran_dry || batch.items.len() % 256 == 0;
            }
            // Broker errors are transient here (librdkafka reconnects); say so now and then.
            Some(Err(e)) if warned_at.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) => {
                tracing::warn!(sink = %common.name, error = %e, "consumer error");
                warned_at = Some(Instant::now());
            }
            Some(Err(_)) => {}
            None => {}
        }
        if shared.revocations_pending.load(Ordering::Relaxed)
            && shared.revocations_pending.swap(false, Ordering::AcqRel)
        {
            let revoked = std::mem::take(&mut *shared.revoked.lock().unwrap_or_else(|p| p.into_inner()));
            let revoked: BTreeSet<(String, i32)> = revoked.into_iter().collect();
            batch = batch.without(&revoked, destination);
        }
        let due = batch.items.len() >= common.batch_max_events
            || batch.encoded.len() as u64 >= common.batch_max_bytes.0
            || (check_time && batch.started.is_some_and(|s| s.elapsed() >= max_wait));
        if due {
            let next = Batch::sized_like(&batch);
            let (records, send_start) = (batch.items.len(), Instant::now());
            if batches.blocking_send(std::mem::replace(&mut batch, next)).is_err() {
                return;
            }
            tracing::debug!(sink = %common.name, records, dry_ms = dry.as_millis() as u64, blocked_ms = send_start.elapsed().as_millis() as u64, "batch cut");
            dry = Duration::ZERO;
        }
    }
    if !batch.items.is_empty() {
        let _ = batches.blocking_send(batch);
    }
}

/// One shared name per topic rather than an allocation per record.
#[derive(Default)]
struct TopicNames {
    names: std::collections::HashMap<String, Arc<str>>,
    /// The last one given: consecutive records mostly share a topic, compared before hashed.
    last: Option<Arc<str>>,
}

impl TopicNames {
    fn get(&mut self, topic: &str) -> Arc<str> {
        if let Some(last) = self.last.as_ref().filter(|last| &***last == topic) {
            return Arc::clone(last);
        }
        let name = Arc::clone(self.names.entry(topic.to_string()).or_insert_with(|| Arc::from(topic)));
        self.last = Some(Arc::clone(&name));
        name
    }
}

/// The async half: writes a batch until every record is accepted or dead-lettered.
struct Writer<D> {
    name: String,
    destination: Arc<D>,
    dead_letters: Option<DeadLetters>,
    metrics: Arc<SinkMetrics>,
    backoff: (Duration, Duration),
    abandon: watch::Receiver<bool>,
}

impl<D: Destination> Writer<D> {
    /// Sleeps `wait`; false if the drain deadline passed meanwhile.
    async fn pause(&self, wait: Duration) -> bool {
        let mut abandon = self.abandon.clone();
        if *abandon.borrow() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => true,
            _ = abandon.wait_for(|a| *a) => false,
        }
    }

    /// Writes `batch`; returns the offsets to commit, or None when it was abandoned at shutdown
    /// (nothing of it is committed, so all of it is read again).
    async fn deliver(&self, batch: Batch) -> Option<BTreeMap<(Arc<str>, i32), i64>> {
        let started = Instant::now();
        let sink = self.name.as_str();
        let offsets = batch.commit_offsets();
        let records = batch.items.len();
        self.metrics.batch_records.with_label_values(&[sink]).observe(batch.items.len() as f64);
        let mut rejected: Vec<(usize, String)> = Vec::new();
        let mut pending: Vec<usize> = Vec::new();
        for (i, item) in batch.items.iter().enumerate() {
            match &item.encoded {
                Ok(_) => pending.push(i),
                Err(e) => rejected.push((i, e.clone())),
            }
        }
        let mut backoff = Backoff::new(self.backoff.0, self.backoff.1);
        while !pending.is_empty() {
            let bodies: Vec<&[u8]> = pending.iter().filter_map(|&i| batch.encoded(i)).collect();
            match self.destination.write(&bodies).await {
                Ok(verdicts) => {
                    let mut retry = Vec::new();
                    let mut accepted = 0u64;
                    let mut reason = None;
                    for (&i, verdict) in pending.iter().zip(verdicts) {
                        match verdict {
                            Verdict::Accepted => accepted += 1,
                            Verdict::Retry(why) => {
                                retry.push(i);
                                reason.get_or_insert(why);
                            }
                            Verdict::Reject(why) => rejected.push((i, why)),
                        }
                    }
                    self.metrics.forwarded.with_label_values(&[sink]).inc_by(accepted);
                    pending = retry;
                    if let Some(reason) = reason {
                        self.metrics.retried.with_label_values(&[sink]).inc_by(pending.len() as u64);
                        let wait = backoff.next_wait();
                        tracing::warn!(sink, records = pending.len(), %reason, ?wait, "records refused for now; retrying them");
                        if !self.pause(wait).await {
                            return None;
                        }
                    }
                }
                Err(failure) => {
                    self.metrics.write_failures.with_label_values(&[sink]).inc();
                    let wait = failure.retry_after.unwrap_or_else(|| backoff.next_wait());
                    tracing::warn!(sink, records = pending.len(), reason = %failure.reason, attempt = backoff.attempts(), ?wait, "write failed; retrying");
                    if !self.pause(wait).await {
                        return None;
                    }
                }
            }
        }
        for (i, error) in rejected {
            if !self.dead_letter(&batch.record(i), &error).await {
                return None;
            }
        }
        self.metrics.batch_seconds.with_label_values(&[sink]).observe(started.elapsed().as_secs_f64());
        tracing::debug!(sink, records, written_ms = started.elapsed().as_millis() as u64, "batch done");
        Some(offsets)
    }

    /// Sends one refused record to the dead-letter topic, retrying until the broker takes it;
    /// false if the drain deadline passed first.
    async fn dead_letter(&self, record: &SourceRecord<'_>, error: &str) -> bool {
        let sink = self.name.as_str();
        self.metrics.dead_lettered.with_label_values(&[sink]).inc();
        let Some(dead_letters) = &self.dead_letters else {
            tracing::error!(sink, origin = %record.origin(), %error, "record refused for good and no dead_letter_topic is configured; skipped");
            return true;
        };
        let mut backoff = Backoff::new(self.backoff.0, self.backoff.1);
        loop {
            match dead_letters.send(record, error).await {
                Ok(()) => {
                    tracing::warn!(sink, origin = %record.origin(), %error, topic = dead_letters.topic(), "record refused for good; sent to the dead-letter topic");
                    return true;
                }
                Err(e) => {
                    let wait = backoff.next_wait();
                    tracing::warn!(sink, error = %e, ?wait, "writing to the dead-letter topic failed; retrying");
                    if !self.pause(wait).await {
                        return false;
                    }
                }
            }
        }
    }
}
