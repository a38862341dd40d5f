//! millrace agent: tails log files (and, as issue 5 progresses, samples host metrics, receives
//! syslog and scrapes Prometheus endpoints) and ships everything to the broker, at least once.
//!
//! Layout:
//! - [`event`]: the record format (log documents and metric points).
//! - [`inputs`]: sources of events ([`inputs::file`]: file tailing).
//! - [`pipeline`]: envelopes, processors and per-file acknowledgement tracking.
//! - [`output`]: the librdkafka producer; delivery reports advance checkpoints.
//! - [`checkpoint`]: the registry of file positions, written atomically.

pub mod checkpoint;
pub mod event;
pub mod inputs;
pub mod output;
pub mod pipeline;

use crate::checkpoint::Registry;
use crate::inputs::file::{FileStates, FileTailer};
use crate::output::Output;
use crate::pipeline::Envelope;
use millrace_config::AgentConfig;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Events waiting between the inputs and the producer (the producer's own queue is bounded in
/// bytes by `output.queue_bytes`).
const CHANNEL_EVENTS: usize = 4096;
/// How long a stopping agent waits for the broker to acknowledge what is queued.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors that stop the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The producer could not be created.
    #[error(transparent)]
    Output(#[from] output::OutputError),
    /// An input could not be set up.
    #[error("input {input}: {reason}")]
    Input {
        /// Input name.
        input: String,
        /// What is wrong.
        reason: String,
    },
    /// Creating the data directory failed.
    #[error("creating the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// The `host.name` of events: configured, else the machine's host name.
pub fn host_name(config: &AgentConfig) -> String {
    if let Some(name) = &config.agent.host_name {
        return name.clone();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Runs the agent until `shutdown` turns true, then drains: inputs stop, queued events are
/// sent and acknowledged (up to 30 s), and the checkpoints are written.
pub async fn run(config: AgentConfig, mut shutdown: watch::Receiver<bool>) -> Result<(), AgentError> {
    let data_dir = config.agent.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .map_err(|source| AgentError::DataDir { path: data_dir.display().to_string(), source })?;
    let host = host_name(&config);
    let registry = Arc::new(Registry::new(&data_dir));
    let known = registry.load();
    let output = Arc::new(Output::new(&config.output)?);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Envelope>(CHANNEL_EVENTS);
    let stop = Arc::new(AtomicBool::new(false));
    let mut states = Vec::new();
    let mut inputs = Vec::new();
    for input in &config.inputs.file {
        let state = Arc::new(FileStates::default());
        let tailer = FileTailer::new(input.clone(), host.clone(), known.clone(), state.clone())
            .map_err(|reason| AgentError::Input { input: input.name.clone(), reason })?;
        let (tx, stop) = (tx.clone(), stop.clone());
        inputs.push(std::thread::spawn(move || tailer.run(tx, stop)));
        states.push(state);
    }
    for input in &config.inputs.prometheus {
        let task = inputs::prometheus_task(input.clone(), host.clone(), tx.clone(), shutdown.clone())
            .map_err(|reason| AgentError::Input { input: input.name.clone(), reason })?;
        tokio::spawn(task);
    }
    for input in &config.inputs.syslog {
        let task = inputs::syslog_task(input.clone(), host.clone(), tx.clone(), shutdown.clone())
            .await
            .map_err(|reason| AgentError::Input { input: input.name.clone(), reason })?;
        tokio::spawn(task);
    }
    for input in &config.inputs.host_metrics {
        let task = inputs::host_metrics_task(input.clone(), host.clone(), tx.clone(), shutdown.clone())
            .map_err(|reason| AgentError::Input { input: input.name.clone(), reason })?;
        tokio::spawn(task);
    }
    drop(tx);
    let sender = {
        let output = output.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            while let Some(envelope) = rx.blocking_recv() {
                // At shutdown the queue is still sent: the inputs stopped, so it is bounded.
                if output.send(envelope, &|| false).is_err() {
                    break;
                }
            }
            drop(stop);
        })
    };
    let save = {
        let registry = registry.clone();
        let states = states.clone();
        move || {
            let all: Vec<_> = states.iter().flat_map(|s| s.checkpoints()).collect();
            if let Err(e) = registry.save(&all) {
                tracing::error!(error = %e, "writing checkpoints failed");
            }
        }
    };
    tracing::info!(host = %host, inputs = inputs.len(), bootstrap = %config.output.bootstrap, "agent running");
    let mut tick = tokio::time::interval(config.agent.checkpoint_interval.as_duration());
    loop {
        tokio::select! {
            _ = tick.tick() => save(),
            _ = shutdown.changed() => break,
        }
    }
    tracing::info!("stopping: draining inputs and the output");
    stop.store(true, Ordering::Relaxed);
    let output_ref = output.clone();
    tokio::task::spawn_blocking(move || {
        for input in inputs {
            let _ = input.join();
        }
        let _ = sender.join();
        if !output_ref.flush(DRAIN_TIMEOUT) {
            tracing::warn!(
                in_flight = output_ref.in_flight(),
                "not every record was acknowledged before the drain timeout; they are sent again on restart"
            );
        }
    })
    .await
    .ok();
    save();
    tracing::info!("agent stopped; checkpoints written");
    Ok(())
}

/// `--once`: runs every input once and writes the events to `out` as JSON lines instead of
/// sending them (like `telegraf --test`). Nothing is checkpointed.
pub fn run_once(config: &AgentConfig, out: &mut dyn std::io::Write) -> Result<usize, AgentError> {
    let host = host_name(config);
    let mut count = 0;
    for input in &config.inputs.file {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Envelope>(CHANNEL_EVENTS);
        let tailer = FileTailer::new(input.clone(), host.clone(), Default::default(), Default::default())
            .map_err(|reason| AgentError::Input { input: input.name.clone(), reason })?;
        let reader = std::thread::spawn(move || tailer.run_once(&tx));
        count += print_envelopes(std::iter::from_fn(|| rx.blocking_recv()), out);
        // Unblocks the reader should the output have stopped early.
        drop(rx);
        let _ = reader.join();
    }
    for input in &config.inputs.host_metrics {
        let envelopes = inputs::host_metrics_once(input, &host)
            .map_err(|reason| AgentError::Input { input: input.name.clone(), reason })?;
        count += print_envelopes(envelopes, out);
    }
    for input in &config.inputs.prometheus {
        let envelopes = tokio::runtime::Handle::current()
            .block_on(inputs::prometheus_once(input, &host))
            .map_err(|reason| AgentError::Input { input: input.name.clone(), reason })?;
        count += print_envelopes(envelopes, out);
    }
    Ok(count)
}

/// Writes each envelope's document as one JSON line; returns how many were written.
fn print_envelopes(envelopes: impl IntoIterator<Item = Envelope>, out: &mut dyn std::io::Write) -> usize {
    let mut count = 0;
    for envelope in envelopes {
        let line = serde_json::to_string(&envelope.doc).unwrap_or_default();
        if writeln!(out, "{line}").is_err() {
            break;
        }
        count += 1;
    }
    count
}
