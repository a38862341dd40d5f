//! The sender thread: moves events from the inputs' queue to the producer, through the disk
//! buffer for events that cannot be read again.

use crate::channel::EventReceiver;
use crate::output::Output;
use crate::pipeline::Envelope;
use crate::{buffer, metrics, throttle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Moves events from the inputs to the producer. File lines (which carry an acknowledgement)
/// wait for room in the producer's queue; events that cannot be read again go to the disk buffer
/// while the queue is full (and while older ones wait there, to keep their order), and are fed
/// back as room appears.
pub(crate) struct Sender {
    pub(crate) output: Arc<Output>,
    pub(crate) metrics: Arc<metrics::AgentMetrics>,
    pub(crate) buffer: Option<buffer::DiskBuffer>,
    pub(crate) when_full: millrace_config::agent::WhenFull,
    /// The disk buffer's pending bytes, for the metrics.
    pub(crate) buffered: Arc<std::sync::atomic::AtomicU64>,
    /// Failed disk buffer writes (a full disk fails every event).
    pub(crate) buffer_throttle: throttle::Throttle,
}

impl Sender {
    pub(crate) fn run(&mut self, mut rx: EventReceiver, stop: &AtomicBool, runtime: tokio::runtime::Handle) {
        loop {
            self.drain_buffer();
            if let Some(buffer) = &self.buffer {
                self.buffered.store(buffer.pending_bytes(), Ordering::Relaxed);
            }
            // While events wait on disk, look for room often; otherwise sleep until an event
            // arrives, waking now and then to notice the stop request.
            let waiting = self.buffer.as_ref().is_some_and(|b| !b.is_empty());
            let wait = if waiting { Duration::from_millis(10) } else { Duration::from_millis(200) };
            match runtime.block_on(async { tokio::time::timeout(wait, rx.recv()).await }) {
                Ok(Some(batch)) => self.dispatch(batch, stop),
                Ok(None) => break,
                Err(_) if stop.load(Ordering::Relaxed) && rx.is_empty() => break,
                Err(_) => {}
            }
        }
        if let Some(buffer) = self.buffer.as_mut() {
            buffer.close();
        }
    }

    /// Hands a batch (from one input) on. With `stop` set, waiting for room gives up: an unsent
    /// file line is read again after the restart (its checkpoint never covered it).
    fn dispatch(&mut self, batch: Vec<Envelope>, stop: &AtomicBool) {
        let Some(input) = batch.first().map(|e| e.input.clone()) else { return };
        let (count, bytes) = (batch.len(), batch.iter().map(|e| e.payload.len()).sum());
        self.metrics.events(&input, count, bytes);
        for envelope in batch {
            self.dispatch_one(envelope, stop);
        }
    }

    fn dispatch_one(&mut self, envelope: Envelope, stop: &AtomicBool) {
        let stopping = || stop.load(Ordering::Relaxed);
        let Some(buffer) = self.buffer.as_mut().filter(|_| envelope.ack.is_none()) else {
            // Replayable (a file line) or no disk buffer: wait for room.
            let _ = self.output.send(envelope, &stopping);
            return;
        };
        let key = envelope.key.as_deref().map(str::as_bytes);
        if buffer.is_empty() && self.output.try_send_raw(&envelope.topic, key, &envelope.payload) {
            return;
        }
        let record = buffer::Record {
            topic: envelope.topic.to_string(),
            key: key.map(<[u8]>::to_vec),
            payload: envelope.payload,
        };
        let pushed = buffer.push(&record);
        match &pushed {
            Err(e) => {
                if let Some(left_out) = self.buffer_throttle.failure(std::time::Instant::now()) {
                    tracing::error!(error = %e, left_out, policy = ?self.when_full, "cannot write the disk buffer; events that cannot be read again are handled as with a full buffer");
                }
            }
            Ok(true) if self.buffer_throttle.success() => tracing::info!("the disk buffer is written again"),
            Ok(_) => {}
        }
        match pushed {
            Ok(true) => {}
            Ok(false) | Err(_) => match self.when_full {
                millrace_config::agent::WhenFull::Drop => self.metrics.dropped(&envelope.input),
                millrace_config::agent::WhenFull::Block => {
                    while !self.output.try_send_raw(&record.topic, record.key.as_deref(), &record.payload) {
                        if stopping() {
                            self.metrics.dropped(&envelope.input);
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            },
        }
    }

    /// Feeds buffered events to the producer while it has room.
    fn drain_buffer(&mut self) {
        let Some(buffer) = self.buffer.as_mut() else { return };
        loop {
            match buffer.front() {
                Ok(Some(record)) => {
                    if !self.output.try_send_raw(&record.topic, record.key.as_deref(), &record.payload) {
                        return;
                    }
                    buffer.pop();
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(error = %e, "reading the disk buffer failed; skipping the rest of its segment");
                    buffer.pop();
                    return;
                }
            }
        }
    }
}
