//! The sinks' Prometheus endpoint (`sink.metrics_listen`, `GET /metrics`): records forwarded,
//! retried and dead-lettered, write failures, batch sizes and latencies per sink, and consumer lag
//! per partition.

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
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

/// Serves `GET /metrics` (anything else: 404), one request per connection, until shutdown.
pub async fn serve(listener: TcpListener, metrics: Arc<SinkMetrics>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            let read =
                tokio::time::timeout(std::time::Duration::from_secs(5), reader.read_line(&mut request_line)).await;
            if !matches!(read, Ok(Ok(n)) if n > 0) {
                return;
            }
            // Skip the headers up to the blank line.
            let mut header = String::new();
            while matches!(reader.read_line(&mut header).await, Ok(n) if n > 2) {
                header.clear();
            }
            let found = request_line.split_whitespace().nth(1) == Some("/metrics");
            let (status, body) =
                if found { ("200 OK", metrics.render()) } else { ("404 Not Found", "not found\n".into()) };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let mut stream = reader.into_inner();
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
        });
    }
}
