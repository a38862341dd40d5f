//! The group side of a sink: the librdkafka consumer's configuration and callbacks
//! (rebalances, commit results) and the state they share with the fetcher, the consumer thread
//! and the writer. librdkafka runs the group and commits; its own fetching is paused (see
//! `fetch`).

use super::batch::Batch;
use super::commits::{Commits, Offsets, Ticket};
use super::fetch::state::Key;
use super::fetch::FetchShared;
use crate::metrics::SinkMetrics;
use crate::SinkError;
use millrace_config::sink::{Common, SourceSettings, StartFrom};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How long a revocation waits for the batches in flight.
const REVOKE_WAIT: Duration = Duration::from_secs(15);
/// Emptied batches kept for reuse.
const SPARE_BATCHES: usize = 2;
/// How long the consumer thread waits for the group's committed offsets of a new assignment.
const COMMITTED_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// The fetcher's partitions: positions, leaders, assignment generations.
    pub fetch: Arc<FetchShared>,
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
            fetch: Arc::default(),
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
    pub fn next_batch(&self, previous: &Batch) -> Batch {
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
            return;
        }
        let mut partitions = self.fetch.partitions();
        for ((topic, partition), next) in offsets {
            if let Some(lag) = partitions.committed(&(topic.clone(), partition), next) {
                self.metrics.lag.with_label_values(&[self.sink.as_str(), &topic, &partition.to_string()]).set(lag);
            }
        }
    }

    /// Starts fetching the partitions assigned since the last call, from the group's committed
    /// offsets (looked up here, on the consumer thread, not in the rebalance callback).
    pub fn start_assigned(&self, consumer: &SinkConsumer) {
        let pending = self.fetch.partitions().take_pending();
        if pending.is_empty() {
            return;
        }
        let mut list = TopicPartitionList::new();
        for (topic, partition) in &pending {
            list.add_partition(topic, *partition);
        }
        let committed = match consumer.committed_offsets(list, COMMITTED_TIMEOUT) {
            Ok(committed) => committed,
            Err(e) => {
                tracing::warn!(sink = %self.sink, error = %e, "cannot read the group's committed offsets; retrying");
                self.fetch.partitions().assign_pending(pending);
                std::thread::sleep(Duration::from_millis(200));
                return;
            }
        };
        let mut retry = Vec::new();
        {
            let mut partitions = self.fetch.partitions();
            for key in pending {
                let Some(element) = committed.find_partition(&key.0, key.1) else {
                    retry.push(key);
                    continue;
                };
                if let Err(e) = element.error() {
                    tracing::warn!(sink = %self.sink, topic = %key.0, partition = key.1, error = %e, "cannot read the committed offset; retrying");
                    retry.push(key);
                    continue;
                }
                let offset = match element.offset() {
                    Offset::Offset(n) if n >= 0 => Some(n),
                    _ => None,
                };
                tracing::debug!(sink = %self.sink, topic = %key.0, partition = key.1, ?offset, "fetching from the committed offset");
                partitions.start(key, offset);
            }
            partitions.assign_pending(retry);
        }
        self.fetch.wake();
    }

    /// Waits up to `timeout` for the writer to finish its batches; false if it did not.
    fn wait_idle(&self, timeout: Duration) -> bool {
        let (commits, _) = self
            .idle
            .wait_timeout_while(self.commits(), timeout, |c| c.outstanding() > 0)
            .unwrap_or_else(|p| p.into_inner());
        commits.outstanding() == 0
    }

    /// `revoked` are no longer this worker's: nothing more is fetched for them, chunks already
    /// fetched are dropped, the consumer thread takes them out of its batch, and their lag
    /// gauges go. Their lag is the next owner's to report; left at its last value, a gauge would
    /// count in this worker's status, and in any sum over the group's workers, for good.
    pub fn revoke(&self, revoked: Vec<(String, i32)>) {
        let keys: Vec<Key> = revoked.iter().map(|(t, p)| (Arc::from(t.as_str()), *p)).collect();
        // Under the partitions' lock, where the fetcher and the commits set the gauges: none is
        // set again after its removal (the fetch state no longer has the partition).
        let mut partitions = self.fetch.partitions();
        partitions.revoke(&keys);
        for (topic, partition) in &revoked {
            // An error only says this worker never had a lag for it.
            let _ = self.metrics.lag.remove_label_values(&[self.sink.as_str(), topic, &partition.to_string()]);
        }
        drop(partitions);
        self.revoked.lock().unwrap_or_else(|p| p.into_inner()).extend(revoked);
        self.revocations_pending.store(true, Ordering::Release);
    }

    /// Partitions revoked since the last call, if any.
    pub fn take_revoked(&self) -> Option<BTreeSet<(String, i32)>> {
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

/// librdkafka's statistics are off: the lag gauges come from the fetcher.
impl ClientContext for SinkContext {}

impl ConsumerContext for SinkContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            let revoked: Vec<(String, i32)> =
                partitions.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
            tracing::info!(sink = %self.shared.sink, partitions = revoked.len(), "partitions revoked; finishing the batch in flight");
            self.shared.revoke(revoked);
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

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            // The sink fetches for itself; librdkafka's fetcher would only duplicate the work.
            if let Err(e) = consumer.pause(partitions) {
                tracing::warn!(sink = %self.shared.sink, error = %e, "pausing librdkafka's fetching failed; its records are dropped unread");
            }
            self.shared
                .fetch
                .partitions()
                .assign_pending(partitions.elements().iter().map(|e| (Arc::<str>::from(e.topic()), e.partition())));
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
        // Its fetching is paused on every assignment (the sink fetches for itself); this bounds
        // what it may fetch before the pause takes hold.
        .set("queued.max.messages.kbytes", "1024")
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
    fn a_revoked_partitions_lag_is_no_longer_reported() {
        use crate::worker::fetch::state::Answer;
        let metrics = Arc::new(SinkMetrics::new().unwrap());
        let shared = Shared::new("s", metrics.clone());
        let key = |p: i32| (Arc::<str>::from("logs"), p);
        {
            // Two partitions read from offset 10 by broker 1, whose answers put the end at 20.
            let mut parts = shared.fetch.partitions();
            parts.start(key(0), Some(10));
            parts.start(key(1), Some(10));
            parts.set_leaders(|_| Some(crate::worker::fetch::state::Leader { id: 1, epoch: 0, topic_id: 0 }));
            let now = std::time::Instant::now();
            for target in parts.targets(1, now) {
                parts.answered(&target, Answer::Data { next: 20, high_watermark: 20 }, now);
            }
            assert_eq!(parts.committed(&key(1), 12), Some(8), "the lag comes from the commit");
        }
        for (partition, lag) in [(0, 5), (1, 8)] {
            metrics.lag.with_label_values(&["s", "logs", &partition.to_string()]).set(lag);
        }
        assert_eq!(metrics.status("s").lag_records, Some(13));
        shared.revoke(vec![("logs".to_string(), 1)]);
        assert_eq!(metrics.status("s").lag_records, Some(5), "only the partition still owned counts");
        assert!(!metrics.render().contains(r#"partition="1""#), "the revoked partition's gauge is gone");
        assert_eq!(shared.fetch.partitions().committed(&key(1), 15), None, "its lag is not computed again");
        assert_eq!(shared.fetch.partitions().committed(&key(0), 15), Some(5));
        assert_eq!(shared.take_revoked(), Some([("logs".to_string(), 1)].into_iter().collect()));
        // Revoking what was never measured is no error.
        shared.revoke(vec![("logs".to_string(), 9)]);
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
