//! The agent's Prometheus endpoint (`agent.metrics_listen`, `GET /metrics`): events and bytes per
//! input, delivery counters and errors, the idempotent producer's epoch bumps, records waiting in the producer, and per-file read lag
//! (bytes in the file not yet acknowledged by the broker).

use crate::inputs::file::FileStates;
use crate::output::OutputStats;
use prometheus::{Encoder, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The agent's metrics.
pub struct AgentMetrics {
    registry: Registry,
    events: IntCounterVec,
    event_bytes: IntCounterVec,
    dropped: IntCounterVec,
    delivered: IntGauge,
    delivered_bytes: IntGauge,
    delivery_errors: IntGauge,
    epoch_bumps: IntGauge,
    in_flight: IntGauge,
    queued_bytes: IntGauge,
    disk_buffer_bytes: IntGauge,
    file_lag: IntGaugeVec,
}

/// Levels of the agent's queues at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueLevels {
    /// Records in the producer, not yet acknowledged.
    pub in_flight: i64,
    /// Encoded bytes between the inputs and the producer.
    pub queued_bytes: u64,
    /// Bytes waiting in the disk buffer.
    pub disk_buffer_bytes: u64,
}

impl AgentMetrics {
    /// Registers every metric.
    pub fn new() -> Result<AgentMetrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("millrace_agent".into()), None)?;
        let events =
            IntCounterVec::new(Opts::new("events_total", "Events handed to the output, per input"), &["input"])?;
        let event_bytes =
            IntCounterVec::new(Opts::new("event_bytes_total", "Encoded event bytes handed to the output"), &["input"])?;
        let dropped = IntCounterVec::new(
            Opts::new("events_dropped_total", "Events dropped because the disk buffer was full"),
            &["input"],
        )?;
        let delivered = IntGauge::new("delivered_total", "Records the broker acknowledged")?;
        let delivered_bytes = IntGauge::new("delivered_bytes_total", "Bytes of records the broker acknowledged")?;
        let delivery_errors =
            IntGauge::new("delivery_errors_total", "Records the broker or producer refused for good")?;
        let epoch_bumps = IntGauge::new(
            "producer_epoch_bumps_total",
            "Times the idempotent producer bumped its epoch and sent its unacknowledged records again",
        )?;
        let in_flight = IntGauge::new("output_in_flight", "Records queued in the producer, not yet acknowledged")?;
        let queued_bytes = IntGauge::new("queue_bytes", "Encoded bytes waiting between the inputs and the producer")?;
        let disk_buffer_bytes = IntGauge::new("disk_buffer_bytes", "Bytes waiting in the disk buffer")?;
        let file_lag = IntGaugeVec::new(
            Opts::new("file_lag_bytes", "Bytes of a tailed file not yet acknowledged by the broker"),
            &["input", "path"],
        )?;
        registry.register(Box::new(events.clone()))?;
        registry.register(Box::new(event_bytes.clone()))?;
        registry.register(Box::new(dropped.clone()))?;
        registry.register(Box::new(delivered.clone()))?;
        registry.register(Box::new(delivered_bytes.clone()))?;
        registry.register(Box::new(delivery_errors.clone()))?;
        registry.register(Box::new(epoch_bumps.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(queued_bytes.clone()))?;
        registry.register(Box::new(disk_buffer_bytes.clone()))?;
        registry.register(Box::new(file_lag.clone()))?;
        Ok(AgentMetrics {
            registry,
            events,
            event_bytes,
            dropped,
            delivered,
            delivered_bytes,
            delivery_errors,
            epoch_bumps,
            in_flight,
            queued_bytes,
            disk_buffer_bytes,
            file_lag,
        })
    }

    /// Counts `count` events of `input`, `bytes` long once encoded.
    pub fn events(&self, input: &str, count: usize, bytes: usize) {
        self.events.with_label_values(&[input]).inc_by(count as u64);
        self.event_bytes.with_label_values(&[input]).inc_by(bytes as u64);
    }

    /// Counts an event of `input` dropped because the disk buffer was full.
    pub fn dropped(&self, input: &str) {
        self.dropped.with_label_values(&[input]).inc();
    }

    /// The text exposition, refreshed from the output and the tailed files.
    pub fn render(&self, output: &OutputStats, levels: QueueLevels, files: &[(String, Arc<FileStates>)]) -> String {
        self.delivered.set(output.delivered.load(Ordering::Relaxed) as i64);
        self.delivered_bytes.set(output.delivered_bytes.load(Ordering::Relaxed) as i64);
        self.delivery_errors.set(output.failed.load(Ordering::Relaxed) as i64);
        self.epoch_bumps.set(output.epoch_bumps.load(Ordering::Relaxed) as i64);
        self.in_flight.set(levels.in_flight);
        self.queued_bytes.set(levels.queued_bytes as i64);
        self.disk_buffer_bytes.set(levels.disk_buffer_bytes as i64);
        self.file_lag.reset();
        for (input, states) in files {
            for c in states.checkpoints() {
                self.file_lag.with_label_values(&[input.as_str(), c.path.as_str()]).set(file_lag(&c) as i64);
            }
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl AgentMetrics {
    /// The figures of the status record: `inputs` (name, kind) with their counters and file lag.
    pub fn status(
        &self,
        output: &OutputStats,
        levels: QueueLevels,
        files: &[(String, Arc<FileStates>)],
        inputs: &[(String, &'static str)],
        disk_buffer_capacity_bytes: u64,
    ) -> millrace_status::AgentStatus {
        let inputs = inputs
            .iter()
            .map(|(name, kind)| {
                let lag_bytes = files
                    .iter()
                    .find(|(input, _)| input == name)
                    .map(|(_, states)| states.checkpoints().iter().map(file_lag).sum());
                millrace_status::InputStatus {
                    name: name.clone(),
                    kind: (*kind).to_string(),
                    events_total: self.events.with_label_values(&[name.as_str()]).get(),
                    dropped_total: self.dropped.with_label_values(&[name.as_str()]).get(),
                    lag_bytes,
                }
            })
            .collect();
        millrace_status::AgentStatus {
            inputs,
            delivered_total: output.delivered.load(Ordering::Relaxed),
            delivery_errors_total: output.failed.load(Ordering::Relaxed),
            in_flight: levels.in_flight,
            disk_buffer_bytes: levels.disk_buffer_bytes,
            disk_buffer_capacity_bytes,
        }
    }
}

/// Bytes of a tailed file after its checkpoint (the file's size now, or nothing if it is gone).
fn file_lag(c: &crate::checkpoint::FileCheckpoint) -> u64 {
    std::fs::metadata(&c.path).map_or(c.offset, |m| m.len()).saturating_sub(c.offset)
}

/// Serves `GET /metrics` (anything else: 404) until shutdown, within the limits of the
/// metrics-endpoint crate; `render` produces the body.
pub async fn serve(listener: TcpListener, render: millrace_metrics_endpoint::Render, shutdown: watch::Receiver<bool>) {
    millrace_metrics_endpoint::serve(listener, render, shutdown).await;
}
