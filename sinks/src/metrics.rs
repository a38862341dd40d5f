//! The sinks' Prometheus endpoint (`sink.metrics_listen`, `GET /metrics`): records forwarded,
//! retried and dead-lettered, write failures, batch sizes and latencies per sink, and consumer lag
//! per partition.

use millrace_status::{DestinationState, SinkStatus};
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
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
    /// What each sink's destination did last, for the status records.
    destinations: Mutex<HashMap<String, (DestinationState, Option<String>)>>,
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
            destinations: Mutex::default(),
        })
    }

    /// `sink`'s destination accepted a write.
    pub fn destination_ok(&self, sink: &str) {
        let mut destinations = self.destinations.lock().unwrap_or_else(|p| p.into_inner());
        // Once per batch: no allocation once the sink has an entry.
        match destinations.get_mut(sink) {
            Some(entry) => entry.0 = DestinationState::Ok,
            None => {
                destinations.insert(sink.to_string(), (DestinationState::Ok, None));
            }
        }
    }

    /// `sink`'s destination refused a write (whole, or every record of it for now).
    pub fn destination_failing(&self, sink: &str, reason: &str) {
        let mut destinations = self.destinations.lock().unwrap_or_else(|p| p.into_inner());
        *destinations.entry(sink.to_string()).or_default() =
            (DestinationState::Failing, Some(millrace_status::record::short_error(reason)));
    }

    /// The figures of `sink`'s status record (destination, target, group and topics left to
    /// the caller).
    pub fn status(&self, sink: &str) -> SinkStatus {
        let (destination_state, last_error) =
            self.destinations.lock().unwrap_or_else(|p| p.into_inner()).get(sink).cloned().unwrap_or_default();
        let lags: Vec<i64> = self
            .registry
            .gather()
            .iter()
            .filter(|family| family.name().ends_with("consumer_lag"))
            .flat_map(|family| family.get_metric().iter())
            .filter(|m| m.get_label().iter().any(|l| l.name() == "sink" && l.value() == sink))
            .map(|m| m.get_gauge().get_value() as i64)
            .collect();
        SinkStatus {
            forwarded_total: self.forwarded.with_label_values(&[sink]).get(),
            retried_total: self.retried.with_label_values(&[sink]).get(),
            dead_lettered_total: self.dead_lettered.with_label_values(&[sink]).get(),
            write_failures_total: self.write_failures.with_label_values(&[sink]).get(),
            lag_records: (!lags.is_empty()).then(|| lags.iter().sum()),
            destination_state,
            last_error,
            ..SinkStatus::default()
        }
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
