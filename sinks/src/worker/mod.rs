//! One sink: a consumer-group member that reads its topics, batches and encodes records on a
//! consumer thread, and writes batches to its destination on the async side — up to
//! `max_in_flight` batches at once while the next fills. This module wires the parts together:
//! `batch` (the batch buffer), `consumer` (librdkafka: the group, rebalances, commits), `fetch`
//! (fetching with millrace's own client, one task per leader), `read` (the consumer thread),
//! `writer` (retries, verdicts, dead letters) and `commits` (what may be committed, in what
//! order).
//!
//! Delivery rules:
//! - A batch's offsets become committable only after every record in it, and in every batch taken
//!   before it, was accepted by the destination or acknowledged by the dead-letter topic; they
//!   are committed at most every [`COMMIT_INTERVAL`] (and at once on revocation and shutdown);
//!   until then it is retried (backoff with jitter, `Retry-After` honoured), so a destination that
//!   is down stalls the sink and its lag grows, and nothing is dropped.
//! - On a rebalance, the partitions being revoked are dropped from the batch being filled (their
//!   records are read again by the new owner from the last commit), and the revocation waits,
//!   bounded, for the batch in flight to be written and committed.
//! - SIGTERM: consuming stops, what was read is written and committed (for up to
//!   [`DRAIN_TIMEOUT`]), and the consumer leaves its group.

mod batch;
mod commits;
mod consumer;
mod fetch;
mod read;
mod writer;

use crate::dead_letter::DeadLetterTopic;
use crate::destination::Destination;
use crate::metrics::SinkMetrics;
use crate::SinkError;
use batch::Batch;
use consumer::{create_consumer, Shared};
use fetch::FetchSettings;
use futures_util::stream::{FuturesOrdered, StreamExt};
use millrace_config::sink::{Common, SourceSettings};
use rdkafka::consumer::{CommitMode, Consumer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use writer::{Delivery, Writer};

/// How long a stopping sink keeps writing what it has read.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often finished batches' offsets are committed: each commit is a write to the offsets topic,
/// and a crash between commits only means records are written again, which the destinations
/// absorb (same ids, same points).
pub const COMMIT_INTERVAL: Duration = Duration::from_secs(1);

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
    let shared = Arc::new(Shared::new(&name, metrics.clone()));
    let fetch_settings = FetchSettings::new(&name, &source)
        .map_err(|e| SinkError::Source { sink: name.clone(), reason: format!("{e:#}") })?;
    let (chunks, fetcher) = fetch::start(shared.fetch.clone(), fetch_settings, metrics.clone());
    let consumer = Arc::new(create_consumer(&common, &source, shared.clone())?);
    let topics: Vec<&str> = common.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(|e| SinkError::Kafka {
        sink: name.clone(),
        context: "subscribing",
        source: e,
    })?;
    let dead_letters = match &common.dead_letter_topic {
        Some(topic) => Some(DeadLetterTopic::new(&source, topic, &name).map_err(|e| SinkError::Kafka {
            sink: name.clone(),
            context: "creating the dead-letter producer",
            source: e,
        })?),
        None => None,
    };
    let destination = Arc::new(destination);
    tracing::info!(sink = %name, kind = destination.kind(), topics = ?common.topics, group = %common.group, "sink running");

    // One batch queued while the writer is busy: the consumer thread waits rather than read on.
    let (batches_tx, mut batches) = tokio::sync::mpsc::channel::<Batch>(1);
    let stop_reading = Arc::new(AtomicBool::new(false));
    let reader = {
        let (consumer, destination, shared, stop) =
            (consumer.clone(), destination.clone(), shared.clone(), stop_reading.clone());
        let common = common.clone();
        std::thread::Builder::new()
            .name(format!("sink-{name}"))
            .spawn(move || read::read_loop(&consumer, &*destination, &common, &shared, &stop, batches_tx, chunks))
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
    // Batches being written, handed back in the order they were taken: a batch written early
    // still counts against `max_in_flight` until those before it are done. The commit order
    // itself is kept by the commit bookkeeping.
    let mut in_flight = FuturesOrdered::new();
    let mut reader_done = false;
    while !(reader_done && in_flight.is_empty()) {
        tokio::select! {
            batch = batches.recv(), if !reader_done && in_flight.len() < common.max_in_flight => match batch {
                Some(batch) => {
                    let ticket = shared.batch_taken(batch.commit_offsets());
                    let writer = &writer;
                    in_flight.push_back(async move {
                        let delivery = writer.deliver(&batch).await;
                        (ticket, delivery, batch)
                    });
                }
                None => reader_done = true,
            },
            Some((ticket, delivery, batch)) = in_flight.next(), if !in_flight.is_empty() => {
                shared.batch_finished(ticket, delivery == Delivery::Written);
                shared.recycle(batch);
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
    shared.fetch.close();
    fetcher.abort();
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
