//! The sinks' Prometheus endpoint (`sink.metrics_listen`, `GET /metrics`): records forwarded,
//! retried and dead-lettered, write failures, batch sizes and latencies per sink, and consumer lag
//! per partition.

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Counters of every sink in the process, labelled by sink name.
pub struct SinkMetrics {
    registry: Registry,
    /// Records the destination accepted.
    pub forwarded: IntCounterVec,
    /// Records written again after a refusal for now (429, 5xx, a failed request).
    pub retried: IntCounterVec,
    /// Records sent to the dead-letter topic (or skipped without one).
    pub dead_lettered: IntCounterVec,
    /// Whole requests that failed.
    pub write_failures: IntCounterVec,
    /// Records per batch.
    pub batch_records: HistogramVec,
    /// Seconds from a batch's hand-over to its commit.
    pub batch_seconds: HistogramVec,
    /// High watermark minus the committed offset, per partition.
    pub lag: IntGaugeVec,
}

impl SinkMetrics {
    /// Registers every metric.
    pub fn new() -> Result<SinkMetrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("millrace_sink".into()), None)?;
        let counter = |name: &str, help: &str| IntCounterVec::new(Opts::new(name, help), &["sink"]);
        let forwarded = counter("records_forwarded_total", "Records the destination accepted")?;
        let retried = counter("records_retried_total", "Records written again after a temporary refusal")?;
        let dead_lettered =
            counter("records_dead_lettered_total", "Records refused for good, sent to the dead-letter topic")?;
        let write_failures = counter("write_failures_total", "Requests to the destination that failed as a whole")?;
        let batch_records = HistogramVec::new(
            HistogramOpts::new("batch_records", "Records per batch")
                .buckets(vec![1.0, 10.0, 100.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 50000.0]),
            &["sink"],
        )?;
        let batch_seconds = HistogramVec::new(
            HistogramOpts::new("batch_seconds", "Seconds from a batch's hand-over to its offsets' commit")
                .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]),
            &["sink"],
        )?;
        let lag = IntGaugeVec::new(
            Opts::new("consumer_lag", "Records in the partition after the sink's committed offset"),
            &["sink", "topic", "partition"],
        )?;
        for collector in [&forwarded, &retried, &dead_lettered, &write_failures] {
            registry.register(Box::new(collector.clone()))?;
        }
        registry.register(Box::new(batch_records.clone()))?;
        registry.register(Box::new(batch_seconds.clone()))?;
        registry.register(Box::new(lag.clone()))?;
        Ok(SinkMetrics {
            registry,
            forwarded,
            retried,
            dead_lettered,
            write_failures,
            batch_records,
            batch_seconds,
            lag,
        })
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Serves `GET /metrics` (anything else: 404) until shutdown, within the limits of the metrics-endpoint crate.
pub async fn serve(listener: TcpListener, metrics: Arc<SinkMetrics>, shutdown: watch::Receiver<bool>) {
    millrace_metrics_endpoint::serve(listener, Arc::new(move || metrics.render()), shutdown).await;
}
