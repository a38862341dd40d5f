//! The publisher: one small librdkafka producer per process, a record per component every
//! interval, and a last `stopped` record on a clean stop. Status is best effort: a record that
//! cannot be sent within an interval is dropped (the next one supersedes it), and failures are
//! logged once a minute, never passed on to the pipeline.

use crate::record::{RunState, Status, STATUS_TOPIC};
use millrace_producer::AsyncProducer;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureRecord;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long the last record of a clean stop may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);
/// Failures are logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// A producer for status records.
pub struct Publisher {
    producer: AsyncProducer,
    interval: Duration,
    warned: Option<Instant>,
}

impl Publisher {
    /// A producer for `bootstrap`, with the client's security `properties` (the same the
    /// component uses for its data) and `client_id`; records every `interval`.
    pub fn new(
        bootstrap: &str,
        properties: &[(&str, String)],
        client_id: &str,
        interval: Duration,
    ) -> Result<Publisher, KafkaError> {
        let timeout_ms = interval.as_millis().clamp(1_000, 60_000).to_string();
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", bootstrap)
            .set("client.id", client_id)
            // One copy is enough for a record the next one supersedes.
            .set("acks", "1")
            .set("enable.idempotence", "false")
            // A record older than an interval is worth nothing.
            .set("message.timeout.ms", &timeout_ms)
            .set("linger.ms", "5")
            .set("queue.buffering.max.messages", "1000");
        for (key, value) in properties {
            config.set(*key, value);
        }
        Ok(Publisher { producer: AsyncProducer::new(&config, "status-producer")?, interval, warned: None })
    }

    /// Sends `status`, waiting at most `timeout`.
    pub async fn send(&mut self, status: &Status, timeout: Duration) {
        let (key, value) = (status.key(), status.encode());
        let record = FutureRecord::to(STATUS_TOPIC).key(&key).payload(&value);
        let result = match tokio::time::timeout(timeout, self.producer.send(record, Duration::ZERO)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("not acknowledged within {timeout:?}")),
        };
        match result {
            Ok(()) if self.warned.take().is_some() => {
                tracing::info!(topic = STATUS_TOPIC, "status records are published again");
            }
            Ok(()) => {}
            Err(error) => {
                if self.warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                    tracing::warn!(topic = STATUS_TOPIC, %error, "publishing the status record failed (does the principal may write the topic?); the pipeline is not affected");
                    self.warned = Some(Instant::now());
                }
            }
        }
    }

    /// Publishes `snapshot()` for every component every interval until `shutdown` turns true,
    /// then their `stopped` records.
    pub async fn run(mut self, mut snapshot: impl FnMut() -> Vec<Status>, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !*shutdown.borrow_and_update() {
            tokio::select! {
                _ = tick.tick() => {
                    for status in snapshot() {
                        self.send(&status, self.interval).await;
                    }
                }
                changed = shutdown.changed() => if changed.is_err() { break },
            }
        }
        for mut status in snapshot() {
            status.state = RunState::Stopped;
            self.send(&status, STOP_TIMEOUT).await;
        }
        let _ = self.producer.flush(STOP_TIMEOUT);
    }
}

/// A running [`Publisher::run`].
pub struct StatusTask {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl StatusTask {
    /// Runs `publisher` on `snapshot` until [`StatusTask::stop`].
    pub fn spawn(publisher: Publisher, snapshot: impl FnMut() -> Vec<Status> + Send + 'static) -> StatusTask {
        let (stop, stopped) = watch::channel(false);
        StatusTask { stop, task: tokio::spawn(publisher.run(snapshot, stopped)) }
    }

    /// Publishes the last (`stopped`) records and waits a bounded time for them; called once
    /// the component finished its own stop, so `stopped` means delivered and drained.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(STOP_TIMEOUT * 2, self.task).await.is_err() {
            tracing::warn!("the last status records were not sent in time");
        }
    }
}

/// Wall-clock milliseconds, for the records' times.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The machine's host name (`/proc/sys/kernel/hostname`), `localhost` when unreadable.
pub fn machine_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
