//! The consumer thread: serves librdkafka's group events, decodes the fetcher's record sets in
//! place, encodes each record into the batch being filled, and cuts batches by count, bytes and
//! time for the writer (waiting while one is already queued: backpressure).

use super::batch::Batch;
use super::consumer::{Shared, SinkConsumer};
use super::fetch::{Chunk, Chunks, DECOMPRESSED_BATCH_CAP};
use crate::destination::Destination;
use crate::record::SourceRecord;
use millrace_config::sink::Common;
use millrace_protocol::records::{batches, RecordsError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long a bad batch waits before it is fetched again.
const REREAD_AFTER: Duration = Duration::from_secs(1);
/// Inflated batches are read in a buffer kept between batches up to this size.
const SCRATCH_KEPT: usize = 8 << 20;
/// The longest the thread waits for records before serving librdkafka's events again.
const LONGEST_WAIT: Duration = Duration::from_millis(100);

/// The batch being filled and where full ones go.
struct Filling<'a> {
    batch: Batch,
    batches: mpsc::Sender<Batch>,
    common: &'a Common,
    shared: &'a Shared,
    /// Time spent waiting for records since the last cut (logged with the cut).
    dry: Duration,
}

impl Filling<'_> {
    fn full(&self) -> bool {
        self.batch.len() >= self.common.batch_max_events
            || self.batch.encoded_bytes() as u64 >= self.common.batch_max_bytes.0
    }

    fn old(&self) -> bool {
        self.batch.started().is_some_and(|s| s.elapsed() >= self.common.batch_timeout.as_duration())
    }

    /// Hands the batch to the writer; false once the writer is gone.
    fn cut(&mut self) -> bool {
        let next = self.shared.next_batch(&self.batch);
        let (records, send_start) = (self.batch.len(), Instant::now());
        if self.batches.blocking_send(std::mem::replace(&mut self.batch, next)).is_err() {
            return false;
        }
        tracing::debug!(sink = %self.common.name, records, dry_ms = self.dry.as_millis() as u64, blocked_ms = send_start.elapsed().as_millis() as u64, "batch cut");
        self.dry = Duration::ZERO;
        true
    }

    /// How long to wait for records: until the batch is due, at most [`LONGEST_WAIT`].
    fn wait(&self) -> Duration {
        let max_wait = self.common.batch_timeout.as_duration();
        self.batch.started().map_or(LONGEST_WAIT, |s| max_wait.saturating_sub(s.elapsed())).min(LONGEST_WAIT)
    }
}

/// Runs until `stop` or until the writer or the fetcher is gone.
pub fn read_loop<D: Destination>(
    consumer: &SinkConsumer,
    destination: &D,
    common: &Common,
    shared: &Shared,
    stop: &AtomicBool,
    batches: mpsc::Sender<Batch>,
    mut chunks: Chunks,
) {
    let mut filling = Filling { batch: Batch::default(), batches, common, shared, dry: Duration::ZERO };
    let mut scratch = Vec::new();
    let mut warned_at: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        // Rebalances, commit results and errors. librdkafka fetches nothing (its partitions
        // are paused), so a message here was fetched before the pause took hold: dropped, the
        // fetcher reads it.
        if let Some(Err(e)) = consumer.poll(Duration::ZERO) {
            // Broker errors are transient here (librdkafka reconnects); say so now and then.
            if warned_at.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
                tracing::warn!(sink = %common.name, error = %e, "consumer error");
                warned_at = Some(Instant::now());
            }
        }
        shared.start_assigned(consumer);
        let dry_start = Instant::now();
        let Ok(chunk) = chunks.next(filling.wait()) else { break };
        if chunk.is_none() {
            filling.dry += dry_start.elapsed();
        }
        if let Some(revoked) = shared.take_revoked() {
            filling.batch = filling.batch.without(&revoked, destination);
        }
        if let Some(chunk) = chunk.filter(|c| shared.fetch.current(c)) {
            if !read_chunk(&chunk, &mut filling, destination, &mut scratch) {
                return;
            }
            // One huge compressed batch must not keep its inflated size allocated for good.
            if scratch.capacity() > SCRATCH_KEPT {
                scratch = Vec::new();
            }
        }
        if (filling.full() || filling.old()) && !filling.cut() {
            return;
        }
    }
    if !filling.batch.is_empty() {
        let _ = filling.batches.blocking_send(filling.batch);
    }
}

/// Encodes `chunk`'s records into the batch, cutting full batches on the way; false once the
/// writer is gone. A batch that cannot be read is fetched again after a pause, and nothing
/// after it is read before it: skipping it would lose its records.
fn read_chunk<D: Destination>(
    chunk: &Chunk,
    filling: &mut Filling<'_>,
    destination: &D,
    scratch: &mut Vec<u8>,
) -> bool {
    let (topic, partition) = (&chunk.key.0, chunk.key.1);
    for batch in batches(&chunk.records) {
        let (shared, common) = (filling.shared, filling.common);
        let failed = |offset: i64, e: RecordsError| {
            tracing::error!(sink = %common.name, %topic, partition, offset, error = %e, "a record batch cannot be read; fetching it again");
            shared.fetch.partitions().reread(&chunk.key, chunk.generation, offset, Instant::now() + REREAD_AFTER);
            shared.fetch.wake();
        };
        let batch = match batch {
            Ok(batch) => batch,
            // The fetcher kept whole batches only; a header it could read reads the same here.
            Err(e) => {
                failed(chunk.fetch_offset, e);
                return true;
            }
        };
        if batch.is_control() || batch.next_offset() <= chunk.fetch_offset {
            continue;
        }
        let base = batch.base_offset().max(chunk.fetch_offset);
        let records = match batch.records(scratch, DECOMPRESSED_BATCH_CAP) {
            Ok(records) => records,
            Err(e) => {
                failed(base, e);
                return true;
            }
        };
        // Records before a bad one are taken; reading resumes at the bad one.
        let mut next = base;
        for record in records {
            let record = match record {
                Ok(record) => record,
                Err(e) => {
                    failed(next, e);
                    return true;
                }
            };
            if record.offset < chunk.fetch_offset {
                continue;
            }
            next = record.offset + 1;
            let headers = record.headers.clone();
            let source = SourceRecord {
                topic,
                partition,
                offset: record.offset,
                key: record.key,
                payload: record.value.unwrap_or_default(),
                timestamp_ms: (record.timestamp_ms >= 0).then_some(record.timestamp_ms),
                // Only replayed dead letters carry headers worth reading.
                replayed_from: if headers.is_empty() {
                    None
                } else {
                    crate::record::origin_from_headers(
                        headers.filter_map(|(k, v)| std::str::from_utf8(k).ok().map(|k| (k, v))),
                    )
                },
            };
            filling.batch.push(topic, &source, destination);
            if filling.full() && !filling.cut() {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests;
