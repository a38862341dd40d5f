//! millrace sinks: consumer-group workers that forward topics to Elasticsearch (logs) and
//! InfluxDB (metrics) with no loss and no duplicates, or to local files in either's format.
//!
//! Layout:
//! - [`worker`]: one sink — consumer thread, batching, writing with retries, dead letters,
//!   committing only what the destination accepted, rebalances and draining.
//! - [`destination`]: the trait each destination implements; [`elasticsearch`], [`influxdb`]
//!   and [`file`](mod@file) implement it, the first two over the request shell in [`http`].
//! - `scan`: the strict, allocation-free JSON reader both encoders pick fields with; `rfc3339`:
//!   their reading of `@timestamp`.
//! - [`status`]: each sink's status records for `millrace top` (the status crate).
//! - [`dead_letter`]: the dead-letter topic. [`retry`]: backoff. [`metrics`]: `/metrics`, served
//!   by the metrics-endpoint crate with bounded heads, times and connections.

pub mod dead_letter;
pub mod destination;
pub mod elasticsearch;
pub mod file;
pub mod http;
pub mod influxdb;
pub mod metrics;
pub mod record;
pub mod retry;
pub(crate) mod rfc3339;
pub(crate) mod scan;
pub mod status;
pub mod worker;

use millrace_config::SinkConfig;
use std::sync::Arc;
use tokio::sync::watch;

/// Errors that stop a sink process.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A consumer or producer could not be created or subscribed.
    #[error("sink {sink}: {context}: {source}")]
    Kafka {
        /// The sink's name.
        sink: String,
        /// What was being done.
        context: &'static str,
        /// librdkafka's error.
        source: rdkafka::error::KafkaError,
    },
    /// A destination's settings cannot be used.
    #[error("sink {sink}: {reason}")]
    Destination {
        /// The sink's name.
        sink: String,
        /// What is wrong.
        reason: String,
    },
    /// The source's settings cannot be used (TLS files, fetch properties).
    #[error("sink {sink}: [source]: {reason}")]
    Source {
        /// The sink's name.
        sink: String,
        /// What is wrong.
        reason: String,
    },
    /// An operating-system resource failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// The metrics endpoint could not start.
    #[error("metrics endpoint: {0}")]
    Metrics(String),
    /// A sink's task panicked (a bug): the process stops the others and exits with an error, so
    /// its supervisor restarts it rather than leaving the sink dead.
    #[error("sink {sink} panicked; the other sinks were stopped")]
    Panicked {
        /// The sink's name.
        sink: String,
    },
}

/// Runs every sink of `config` until `shutdown` turns true, then drains them. A sink that fails or
/// panics stops the others too, and the error is returned.
pub async fn run(config: SinkConfig, mut shutdown: watch::Receiver<bool>) -> Result<(), SinkError> {
    // Credentials over plain HTTP, certificate checks turned off: allowed, but said at every start.
    for warning in config.warnings() {
        tracing::warn!(%warning, "insecure destination settings");
    }
    // What the sinks watch: the caller's shutdown, or one of them failing.
    let (stop_tx, stop) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    {
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            let _ = shutdown.wait_for(|s| *s).await;
            let _ = stop_tx.send(true);
        });
    }
    let metrics = Arc::new(metrics::SinkMetrics::new().map_err(|e| SinkError::Metrics(e.to_string()))?);
    if let Some(addr) = config.sink.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| SinkError::Metrics(format!("binding {addr}: {e}")))?;
        tokio::spawn(metrics::serve(listener, metrics.clone(), stop.clone()));
        tracing::info!(%addr, "metrics endpoint listening");
    }
    let mut sinks = Sinks::default();
    for settings in &config.elasticsearch {
        let destination = elasticsearch::Elasticsearch::new(settings)
            .map_err(|reason| SinkError::Destination { sink: settings.common.name.clone(), reason })?;
        let spec = worker::SinkSpec { common: settings.common.clone(), source: config.source.clone(), destination };
        sinks.spawn(&settings.common.name, worker::run(spec, metrics.clone(), stop.clone()));
    }
    for settings in &config.influxdb {
        let destination = influxdb::InfluxDb::new(settings)
            .map_err(|reason| SinkError::Destination { sink: settings.common.name.clone(), reason })?;
        let spec = worker::SinkSpec { common: settings.common.clone(), source: config.source.clone(), destination };
        sinks.spawn(&settings.common.name, worker::run(spec, metrics.clone(), stop.clone()));
    }
    for settings in &config.file {
        let destination = file::FileDestination::new(settings)
            .map_err(|reason| SinkError::Destination { sink: settings.common.name.clone(), reason })?;
        let spec = worker::SinkSpec { common: settings.common.clone(), source: config.source.clone(), destination };
        sinks.spawn(&settings.common.name, worker::run(spec, metrics.clone(), stop.clone()));
    }
    let status = status::start(&config, metrics.clone());
    let result = sinks
        .join(|| {
            let _ = stop_tx.send(true);
        })
        .await;
    if let Some(status) = status {
        status.stop().await;
    }
    result
}

/// The running sinks, by task id so a panic can be reported with the sink's name.
#[derive(Default)]
struct Sinks {
    tasks: tokio::task::JoinSet<Result<(), SinkError>>,
    names: std::collections::HashMap<tokio::task::Id, String>,
}

impl Sinks {
    fn spawn(&mut self, name: &str, sink: impl std::future::Future<Output = Result<(), SinkError>> + Send + 'static) {
        let id = self.tasks.spawn(sink).id();
        self.names.insert(id, name.to_string());
    }

    /// Waits for every sink; at the first failure or panic, `stop_all` asks the others to drain
    /// and stop. The first error is returned.
    async fn join(mut self, stop_all: impl Fn()) -> Result<(), SinkError> {
        let mut result = Ok(());
        while let Some(done) = self.tasks.join_next_with_id().await {
            let error = match done {
                Ok((_, Ok(()))) => continue,
                Ok((_, Err(e))) => e,
                Err(e) => {
                    let sink = self.names.get(&e.id()).cloned().unwrap_or_else(|| "?".into());
                    SinkError::Panicked { sink }
                }
            };
            tracing::error!(error = %error, "a sink stopped; stopping the others");
            stop_all();
            if result.is_ok() {
                result = Err(error);
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn a_panicking_sink_stops_the_others_and_is_an_error() {
        let (stop_tx, stop) = watch::channel(false);
        let mut sinks = Sinks::default();
        let mut healthy_stop = stop.clone();
        let drained = Arc::new(AtomicBool::new(false));
        let drained_flag = drained.clone();
        sinks.spawn("healthy", async move {
            let _ = healthy_stop.wait_for(|s| *s).await;
            drained_flag.store(true, Ordering::Relaxed);
            Ok(())
        });
        sinks.spawn("buggy", async {
            tokio::task::yield_now().await;
            panic!("a bug in a destination");
        });
        let joined = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            sinks.join(|| {
                let _ = stop_tx.send(true);
            }),
        )
        .await;
        assert!(matches!(joined, Ok(Err(SinkError::Panicked { ref sink })) if sink == "buggy"), "{joined:?}");
        assert!(drained.load(Ordering::Relaxed), "the healthy sink was asked to stop and drained");
    }
}
