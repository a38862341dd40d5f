//! millrace sinks: consumer-group workers that forward topics to Elasticsearch (logs) and
//! InfluxDB (metrics) with no loss and no duplicates, or to local files in either's format.
//!
//! Layout:
//! - [`worker`]: one sink — consumer thread, batching, writing with retries, dead letters,
//!   committing only what the destination accepted, rebalances and draining.
//! - [`destination`]: the trait each destination implements; [`elasticsearch`], [`influxdb`]
//!   and [`file`] implement it.
//! - [`dead_letter`]: the dead-letter topic. [`retry`]: backoff. [`metrics`]: `/metrics`.

pub mod dead_letter;
pub mod destination;
pub mod elasticsearch;
pub mod file;
pub mod influxdb;
pub mod metrics;
pub mod record;
pub mod retry;
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
}

/// Runs every sink of `config` until `shutdown` turns true, then drains them.
pub async fn run(config: SinkConfig, shutdown: watch::Receiver<bool>) -> Result<(), SinkError> {
    let metrics = Arc::new(metrics::SinkMetrics::new().map_err(|e| SinkError::Metrics(e.to_string()))?);
    if let Some(addr) = config.sink.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| SinkError::Metrics(format!("binding {addr}: {e}")))?;
        tokio::spawn(metrics::serve(listener, metrics.clone(), shutdown.clone()));
        tracing::info!(%addr, "metrics endpoint listening");
    }
    let mut sinks = tokio::task::JoinSet::new();
    for settings in &config.elasticsearch {
        let destination = elasticsearch::Elasticsearch::new(settings)
            .map_err(|reason| SinkError::Destination { sink: settings.common.name.clone(), reason })?;
        let spec = worker::SinkSpec { common: settings.common.clone(), source: config.source.clone(), destination };
        sinks.spawn(worker::run(spec, metrics.clone(), shutdown.clone()));
    }
    for settings in &config.influxdb {
        let destination = influxdb::InfluxDb::new(settings)
            .map_err(|reason| SinkError::Destination { sink: settings.common.name.clone(), reason })?;
        let spec = worker::SinkSpec { common: settings.common.clone(), source: config.source.clone(), destination };
        sinks.spawn(worker::run(spec, metrics.clone(), shutdown.clone()));
    }
    for settings in &config.file {
        let destination = file::FileDestination::new(settings)
            .map_err(|reason| SinkError::Destination { sink: settings.common.name.clone(), reason })?;
        let spec = worker::SinkSpec { common: settings.common.clone(), source: config.source.clone(), destination };
        sinks.spawn(worker::run(spec, metrics.clone(), shutdown.clone()));
    }
    let mut result = Ok(());
    while let Some(done) = sinks.join_next().await {
        match done {
            Ok(Err(e)) => {
                tracing::error!(error = %e, "a sink stopped");
                result = Err(e);
            }
            Err(e) => tracing::error!(error = %e, "a sink task panicked"),
            Ok(Ok(())) => {}
        }
    }
    result
}
