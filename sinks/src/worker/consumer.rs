//! The Kafka side of a sink: the librdkafka consumer's configuration and callbacks (rebalances,
//! commit results, lag statistics), the state they share with the writer, the consumer thread
//! that cuts batches, and its topic-name cache.

use super::batch::Batch;
use super::commits::{Commits, Offsets, Ticket};
use crate::destination::Destination;
use crate::metrics::SinkMetrics;
use crate::record::SourceRecord;
use crate::SinkError;
use millrace_config::sink::{Common, SourceSettings, StartFrom};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Headers;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a revocation waits for the batches in flight.
const REVOKE_WAIT: Duration = Duration::from_secs(15);
/// Emptied batches kept for reuse.
const SPARE_BATCHES: usize = 2;
/// How often librdkafka reports statistics (the lag gauges come from them).
const STATISTICS_INTERVAL_MS: &str = "2000";

/// The sink's consumer.
pub type SinkConsumer = BaseConsumer<SinkContext>;

/// State shared by the consumer thread, its rebalance callbacks and the writer.
pub struct Shared {
    sink: String,
    /// Partitions revoked since the consumer thread last looked.
    revoked: Mutex<Vec<(String, i32)>>,
    /// Whether `revoked` has entries: checked per record, where a lock would cost more.
    revocations_pending: AtomicBool,
    /// Batches the writer holds and the offsets ready to commit.
    commits: Mutex<Commits>,
    /// Written batches, emptied, for the consumer thread to fill again.
    spare: Mutex<Vec<Batch>>,
    /// Signalled when the writer holds no batch.
    idle: Condvar,
    metrics: Arc<SinkMetrics>,
}

impl Shared {
    /// State for the sink named `sink`.
    pub fn new(sink: &str, metrics: Arc<SinkMetrics>) -> Shared {
        Shared {
            sink: sink.to_string(),
            revoked: Mutex::default(),
            revocations_pending: AtomicBool::new(false),
            commits: Mutex::default(),
            spare: Mutex::default(),
            idle: Condvar::new(),
            metrics,
        }
    }

    /// A panic elsewhere must not stop commits: the bookkeeping stays consistent between calls.
    fn commits(&self) -> MutexGuard<'_, Commits> {
        self.commits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The writer takes a batch ending at `offsets`.
    pub fn batch_taken(&self, offsets: Offsets) -> Ticket {
        self.commits().begin(offsets)
    }

    /// The writer is done with the batch of `ticket`: `written` whole, or given up.
    pub fn batch_finished(&self, ticket: Ticket, written: bool) {
        let mut commits = self.commits();
        if written {
            commits.written(ticket);
        } else {
            commits.abandoned(ticket);
        }
        if commits.outstanding() == 0 {
            self.idle.notify_all();
        }
    }

    /// Hands a batch the writer is done with back for reuse.
    pub fn recycle(&self, mut batch: Batch) {
        batch.clear();
        let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
        // As many as can be in use at once are allocated anyway; more would only hold memory.
        if spare.len() < SPARE_BATCHES {
            spare.push(batch);
        }
    }

    /// An empty batch to fill: a recycled one if there is one.
    fn next_batch(&self, previous: &Batch) -> Batch {
        let spare = self.spare.lock().unwrap_or_else(|p| p.into_inner()).pop();
        spare.unwrap_or_else(|| Batch::sized_like(previous))
    }

    /// Commits what became committable since the last commit.
    pub fn commit(&self, consumer: &SinkConsumer, mode: CommitMode) {
        let offsets = self.commits().take();
        // Partitions lost to the coordinator (session expired) are not ours to commit: it would
        // refuse the commit, and librdkafka holds the group's rejoin until a commit still waiting
        // for the coordinator is done. A batch the writer finishes after the loss is dropped
        // here; its records are read again by the next owner (at least once).
        if offsets.is_empty() || consumer.assignment_lost() {
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

    /// Waits up to `timeout` for the writer to finish its batches; false if it did not.
    fn wait_idle(&self, timeout: Duration) -> bool {
        let (commits, _) = self
            .idle
            .wait_timeout_while(self.commits(), timeout, |c| c.outstanding() > 0)
            .unwrap_or_else(|p| p.into_inner());
        commits.outstanding() == 0
    }

    /// Partitions revoked since the last call, if any.
    fn take_revoked(&self) -> Option<BTreeSet<(String, i32)>> {
        // The flag first: a lock per record would cost more than the record.
        if !(self.revocations_pending.load(Ordering::Relaxed) && self.revocations_pending.swap(false, Ordering::AcqRel))
        {
            return None;
        }
        let revoked = std::mem::take(&mut *self.revoked.lock().unwrap_or_else(|p| p.into_inner()));
        Some(revoked.into_iter().collect())
    }
}

/// Rebalance handling: see the worker's module documentation.
pub struct SinkContext {
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
            if consumer.assignment_lost() {
                // The coordinator already gave the partitions away (session expired, member
                // unknown): a commit now is refused at best, and an OffsetCommit still pending
                // when librdkafka rejoins holds back its next assignment. The next owner reads
                // from the last commit; what was written since is written again (at least once).
                tracing::warn!(sink = %self.shared.sink, "partitions lost, not handed over: the records written since the last commit will be written again");
                self.shared.commits().take();
                return;
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

/// A consumer that commits only what the sink says (no auto-commit, no auto offset store).
pub fn create_consumer(
    common: &Common,
    source: &SourceSettings,
    shared: Arc<Shared>,
) -> Result<SinkConsumer, SinkError> {
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
    // The operator's own settings win over the defaults above…
    for (key, value) in &source.librdkafka {
        config.set(key, value);
    }
    // …but not over the security keys (validation keeps them out of `librdkafka` anyway).
    for (key, value) in source.security.rdkafka_properties() {
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
pub fn read_loop<D: Destination>(
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
            let wait = batch.started().map_or(Duration::from_millis(100), |s| max_wait.saturating_sub(s.elapsed()));
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
                    // Only replayed dead letters carry headers worth reading.
                    replayed_from: message
                        .headers()
                        .and_then(|h| crate::record::origin_from_headers(h.iter().map(|h| (h.key, h.value)))),
                };
                batch.push(&topic, &record, destination);
                check_time = ran_dry || batch.len() % 256 == 0;
            }
            // Broker errors are transient here (librdkafka reconnects); say so now and then.
            Some(Err(e)) if warned_at.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) => {
                tracing::warn!(sink = %common.name, error = %e, "consumer error");
                warned_at = Some(Instant::now());
            }
            Some(Err(_)) => {}
            None => {}
        }
        if let Some(revoked) = shared.take_revoked() {
            batch = batch.without(&revoked, destination);
        }
        let due = batch.len() >= common.batch_max_events
            || batch.encoded_bytes() as u64 >= common.batch_max_bytes.0
            || (check_time && batch.started().is_some_and(|s| s.elapsed() >= max_wait));
        if due {
            let next = shared.next_batch(&batch);
            let (records, send_start) = (batch.len(), Instant::now());
            if batches.blocking_send(std::mem::replace(&mut batch, next)).is_err() {
                return;
            }
            tracing::debug!(sink = %common.name, records, dry_ms = dry.as_millis() as u64, blocked_ms = send_start.elapsed().as_millis() as u64, "batch cut");
            dry = Duration::ZERO;
        }
    }
    if !batch.is_empty() {
        let _ = batches.blocking_send(batch);
    }
}

/// One shared name per topic rather than an allocation per record.
#[derive(Default)]
struct TopicNames {
    names: HashMap<String, Arc<str>>,
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn topic_names_are_shared_not_copied() {
        let mut names = TopicNames::default();
        let logs = names.get("logs");
        assert!(Arc::ptr_eq(&logs, &names.get("logs")), "the last name again");
        let metrics = names.get("metrics");
        assert_eq!(&*metrics, "metrics");
        assert!(Arc::ptr_eq(&logs, &names.get("logs")), "an earlier name from the map");
        assert_eq!(names.names.len(), 2);
    }

    #[test]
    fn revocations_are_taken_once() {
        let shared = Shared::new("s", Arc::new(SinkMetrics::new().unwrap()));
        assert_eq!(shared.take_revoked(), None);
        shared.revoked.lock().unwrap().extend([("logs".to_string(), 1), ("logs".to_string(), 1)]);
        shared.revocations_pending.store(true, Ordering::Release);
        assert_eq!(shared.take_revoked(), Some([("logs".to_string(), 1)].into_iter().collect()));
        assert_eq!(shared.take_revoked(), None);
    }

    #[test]
    fn a_revocation_waits_for_the_writers_batches() {
        let shared = Arc::new(Shared::new("s", Arc::new(SinkMetrics::new().unwrap())));
        assert!(shared.wait_idle(Duration::ZERO), "idle with nothing taken");
        let first = shared.batch_taken(Offsets::new());
        let second = shared.batch_taken(Offsets::new());
        assert!(!shared.wait_idle(Duration::from_millis(10)), "two batches in hand");
        let writer = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                shared.batch_finished(second, true);
                shared.batch_finished(first, false);
            })
        };
        assert!(shared.wait_idle(Duration::from_secs(10)), "woken once the last is done");
        writer.join().unwrap();
    }
}
