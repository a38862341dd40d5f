//! millrace agent: tails log files, receives syslog and stdin, samples host metrics and scrapes
//! Prometheus endpoints, and ships every event to the broker at least once.
//!
//! Layout (events flow top to bottom):
//! - [`inputs`]: the sources — [`inputs::file`] (tailing with rotation, identity and multiline),
//!   [`inputs::syslog`] (UDP/TCP, RFC 3164/5424), [`inputs::host_metrics`] (CPU, memory, disk,
//!   network, load), [`inputs::prometheus`] (scraping `/metrics` text), and stdin.
//! - [`event`]: the record format (log documents and metric points).
//! - [`transform`]: the steps applied to each event (modules, grok, dissect, event time…).
//! - [`route`]: an event's topic and partition key, fixed or from its fields.
//! - [`pipeline`]: envelopes, processors and per-file acknowledgement tracking.
//! - [`channel`]: the byte-bounded queue between the inputs and the output (the inputs'
//!   backpressure).
//! - [`output`]: the librdkafka producer; delivery reports advance checkpoints.
//! - [`buffer`]: the disk buffer for events that cannot be read again while the broker is away.
//! - [`checkpoint`]: the registry of file positions, written atomically.
//! - [`memory`]: giving memory back to the OS after a burst.
//! - [`metrics`]: the agent's Prometheus endpoint (served by the shared `metrics-endpoint`).
//! - [`status`]: the status records for `millrace top`'s Agents view (the status crate).
//!
//! This file wires them together ([`run`]) and stops them in order on shutdown: inputs first,
//! then the output drains what the broker has not acknowledged.

pub mod buffer;
pub mod channel;
pub mod checkpoint;
pub mod event;
pub mod inputs;
pub mod memory;
pub mod metrics;
pub mod output;
pub mod pipeline;
pub mod route;
mod sender;
pub mod status;
pub mod throttle;
pub mod transform;

use crate::channel::EventSender;
use crate::checkpoint::Registry;
use crate::inputs::file::{FileStates, FileTailer};
use crate::output::Output;
use crate::pipeline::Envelope;
use millrace_config::AgentConfig;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Encoded bytes waiting between the inputs and the producer (the producer's own queue is bounded
/// by `output.queue_bytes`).
const CHANNEL_BYTES: usize = 4 << 20;
/// How often the agent looks whether a burst is over (and its memory can be given back).
const QUIET_CHECK: Duration = Duration::from_secs(2);
/// How long a stopping agent waits for the broker to acknowledge what is queued, in all: taking
/// the queue and flushing the producer share this one deadline.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopping agent waits for its inputs to stop (before the drain).
const INPUT_STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a stopping agent waits for the sender thread once told to stop: it then gives up
/// waiting for room, so only a disk buffer write can hold it.
const SENDER_STOP_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// The metrics listener could not be bound or registered.
    #[error("metrics endpoint: {0}")]
    Metrics(String),
    /// The producer can send nothing more; restarting resends from the checkpoints.
    #[error("the broker producer hit a fatal error; restart the agent (it resumes from its checkpoints)")]
    FatalOutput,
    /// The data directory cannot be created or written.
    #[error("the data directory {path} cannot be written: {source}")]
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
    millrace_status::publish::machine_host_name()
}

/// File states of the running inputs, by input name (read by checkpoints and metrics).
type SharedStates = Arc<std::sync::Mutex<Vec<(String, Arc<FileStates>)>>>;

/// One generation of inputs: started from a configuration, stopped on reload or shutdown.
struct InputSet {
    stop: Arc<AtomicBool>,
    stop_tasks: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl InputSet {
    /// Starts every input of `config`, resuming files from `known`.
    async fn start(
        config: &AgentConfig,
        host: &str,
        tx: &EventSender,
        known: &std::collections::BTreeMap<inputs::file::FileKey, checkpoint::FileCheckpoint>,
        states: &SharedStates,
    ) -> Result<InputSet, AgentError> {
        let stop = Arc::new(AtomicBool::new(false));
        let (stop_tasks, stopped) = watch::channel(false);
        let mut set = InputSet { stop: stop.clone(), stop_tasks, threads: Vec::new(), tasks: Vec::new() };
        let mut file_states = Vec::new();
        let failed = |input: &str| {
            let input = input.to_string();
            move |reason| AgentError::Input { input, reason }
        };
        for input in &config.inputs.file {
            let state = Arc::new(FileStates::default());
            let limit = output::max_record_bytes(&config.output);
            let tailer = FileTailer::new(input.clone(), host.to_string(), known.clone(), state.clone(), limit)
                .map_err(failed(&input.name))?;
            let (tx, stop) = (tx.clone(), stop.clone());
            set.threads.push(std::thread::spawn(move || tailer.run(tx, stop)));
            file_states.push((input.name.clone(), state));
        }
        // Credentials over plain HTTP, certificate checks turned off: allowed, but said at every
        // start and reload.
        for warning in config.warnings() {
            tracing::warn!(%warning, "insecure scrape settings");
        }
        for input in &config.inputs.prometheus {
            let task = inputs::prometheus_task(input.clone(), host.to_string(), tx.clone(), stopped.clone())
                .map_err(failed(&input.name))?;
            set.tasks.push(tokio::spawn(task));
        }
        for input in &config.inputs.syslog {
            let task = inputs::syslog_task(input.clone(), host.to_string(), tx.clone(), stopped.clone())
                .await
                .map_err(failed(&input.name))?;
            set.tasks.push(tokio::spawn(task));
        }
        for input in &config.inputs.host_metrics {
            let task = inputs::host_metrics_task(input.clone(), host.to_string(), tx.clone(), stopped.clone())
                .map_err(failed(&input.name))?;
            set.tasks.push(tokio::spawn(task));
        }
        *states.lock().unwrap_or_else(|p| p.into_inner()) = file_states;
        Ok(set)
    }

    /// Stops every input and waits for it (file inputs finish their current handover), for at
    /// most [`INPUT_STOP_TIMEOUT`]: an input blocked for good (a file on a hung mount, a tailer
    /// waiting for room the stalled output never makes) is left behind, logged. Nothing is lost
    /// by that: a checkpoint covers only lines the broker acknowledged.
    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.stop_tasks.send(true);
        let deadline = tokio::time::Instant::now() + INPUT_STOP_TIMEOUT;
        let mut left = 0;
        for thread in self.threads {
            while !thread.is_finished() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if thread.is_finished() {
                let _ = thread.join();
            } else {
                left += 1;
            }
        }
        for mut task in self.tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                left += 1;
            }
        }
        if left > 0 {
            tracing::warn!(inputs = left, waited = ?INPUT_STOP_TIMEOUT, "inputs did not stop in time; left behind (their unacknowledged lines are read again at the next start)");
        }
    }
}

/// Runs the agent until `shutdown` turns true, then drains: inputs stop, queued events are
/// sent and acknowledged (up to 30 s), and the checkpoints are written. A configuration arriving
/// on `reload` (SIGHUP) replaces the inputs without losing positions: the old inputs stop, the
/// checkpoints are written, and the new inputs resume from them. Output settings apply at restart.
pub async fn run(
    config: AgentConfig,
    mut shutdown: watch::Receiver<bool>,
    mut reload: tokio::sync::mpsc::Receiver<AgentConfig>,
) -> Result<(), AgentError> {
    let mut config = config;
    let data_dir = config.agent.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .map_err(|source| AgentError::DataDir { path: data_dir.display().to_string(), source })?;
    check_data_dir(&data_dir)?;
    let host = host_name(&config);
    let registry = Arc::new(Registry::new(&data_dir));
    let output = Arc::new(Output::new(&config.output)?);
    let metrics = Arc::new(metrics::AgentMetrics::new().map_err(|e| AgentError::Metrics(e.to_string()))?);
    let (tx, rx) = channel::channel(CHANNEL_BYTES);
    let states: SharedStates = Arc::default();
    let mut running = Some(InputSet::start(&config, &host, &tx, &registry.load(), &states).await?);
    // Standard input is read for the agent's whole life (a reload cannot reopen it) on a detached
    // thread: a blocking read must not hold up the shutdown.
    let stdin_stop = Arc::new(AtomicBool::new(false));
    for input in &config.inputs.stdin {
        let (input, host, tx, stop) = (input.clone(), host.clone(), tx.clone(), stdin_stop.clone());
        std::thread::spawn(move || match inputs::read_stdin(&input, &host, &tx, &stop) {
            Ok(()) => tracing::info!(input = %input.name, "standard input closed"),
            Err(e) => tracing::error!(input = %input.name, error = %e, "standard input failed"),
        });
    }
    // Disk buffer level, kept by the sender thread for the metrics endpoint.
    let buffered = Arc::new(std::sync::atomic::AtomicU64::new(0));
    // The queues' levels and the file states now, for `/metrics` and the status records.
    let levels: Arc<dyn Fn() -> metrics::QueueLevels + Send + Sync> = {
        let (output, tx, buffered) = (output.clone(), tx.clone(), buffered.clone());
        Arc::new(move || metrics::QueueLevels {
            in_flight: i64::from(output.in_flight()),
            queued_bytes: tx.queued_bytes() as u64,
            disk_buffer_bytes: buffered.load(Ordering::Relaxed),
        })
    };
    let file_states = {
        let states = states.clone();
        move || states.lock().unwrap_or_else(|p| p.into_inner()).clone()
    };
    if let Some(addr) = config.agent.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| AgentError::Metrics(format!("binding {addr}: {e}")))?;
        let (metrics, output, levels, file_states) =
            (metrics.clone(), output.clone(), levels.clone(), file_states.clone());
        let render: Arc<dyn Fn() -> String + Send + Sync> =
            Arc::new(move || metrics.render(&output.stats, levels(), &file_states()));
        tokio::spawn(metrics::serve(listener, render, shutdown.clone()));
        tracing::info!(%addr, "metrics endpoint listening");
    }
    // The inputs' names and kinds, for the status records (replaced on reload).
    let input_kinds = Arc::new(std::sync::Mutex::new(config.inputs.names_and_kinds()));
    let status = {
        let (metrics, output, input_kinds) = (metrics.clone(), output.clone(), input_kinds.clone());
        let capacity = config.agent.disk_buffer_bytes.0;
        status::start(&config, &host, move || {
            let inputs = input_kinds.lock().unwrap_or_else(|p| p.into_inner()).clone();
            metrics.status(&output.stats, levels(), &file_states(), &inputs, capacity)
        })
    };
    let disk_buffer = match config.agent.disk_buffer_bytes.0 {
        0 => None,
        max => match buffer::DiskBuffer::open(&data_dir.join("buffer"), max) {
            Ok(buffer) => Some(buffer),
            // A full disk passes with room to come; without the buffer such events wait for the
            // producer instead (backpressure) until a restart finds room.
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => {
                tracing::warn!(error = %e, "the disk buffer cannot be opened on a full disk; running without it until a restart");
                None
            }
            Err(e) => return Err(AgentError::Input { input: "disk buffer".into(), reason: e.to_string() }),
        },
    };
    let sender_stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let mut sender = sender::Sender {
            output: output.clone(),
            metrics: metrics.clone(),
            buffer: disk_buffer,
            when_full: config.agent.when_buffer_full,
            buffered: buffered.clone(),
            buffer_throttle: throttle::Throttle::new(throttle::REPEAT_EVERY),
        };
        let (stop, runtime) = (sender_stop.clone(), tokio::runtime::Handle::current());
        std::thread::spawn(move || sender.run(rx, &stop, runtime))
    };
    let save = {
        let (registry, states) = (registry.clone(), states.clone());
        let save_throttle = std::sync::Mutex::new(throttle::Throttle::new(throttle::REPEAT_EVERY));
        move || {
            let states = states.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let all: Vec<_> = states.iter().flat_map(|(_, s)| s.checkpoints()).collect();
            let result = registry.save(&all);
            let mut throttle = save_throttle.lock().unwrap_or_else(|p| p.into_inner());
            match result {
                Err(e) => {
                    if let Some(left_out) = throttle.failure(std::time::Instant::now()) {
                        tracing::error!(error = %e, left_out, "cannot write the checkpoint registry; the last one written stays (lines after it are sent again after a restart, none are skipped)");
                    }
                }
                Ok(()) if throttle.success() => {
                    tracing::info!(path = %registry.path().display(), "the checkpoint registry is written again");
                }
                Ok(()) => {}
            }
        }
    };
    tracing::info!(host = %host, bootstrap = %config.output.bootstrap, "agent running");
    let mut tick = tokio::time::interval(config.agent.checkpoint_interval.as_duration());
    let mut quiet_check = tokio::time::interval(QUIET_CHECK);
    let mut handed_over = 0u64;
    let mut since_trim = 0u64;
    let mut fatal = false;
    loop {
        tokio::select! {
            _ = tick.tick() => save(),
            _ = quiet_check.tick() => {
                if output.stats.fatal.load(Ordering::Acquire) {
                    // Nothing more can be acknowledged, so no checkpoint moves: stop, and let the
                    // supervisor's restart send the rest again.
                    fatal = true;
                    break;
                }
                // Give a burst's memory back once nothing moved for a whole interval.
                let now = output.stats.delivered.load(Ordering::Relaxed);
                let quiet = now == handed_over && output.in_flight() == 0 && tx.queued_bytes() == 0;
                if quiet && now > since_trim {
                    since_trim = now;
                    tokio::task::spawn_blocking(memory::release_free_memory);
                }
                handed_over = now;
            }
            _ = shutdown.changed() => break,
            Some(new) = reload.recv() => {
                if let Some(set) = running.take() {
                    set.stop().await;
                }
                // Let what the old inputs sent be acknowledged first, so the new ones resume
                // exactly after it instead of sending it again.
                let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                while (tx.queued_bytes() > 0 || output.in_flight() > 0) && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                save();
                let (old_output, new_output) = (&config.output, &new.output);
                let output_changed =
                    new_output.bootstrap != old_output.bootstrap || new_output.security != old_output.security;
                if output_changed || new.agent.data_dir != config.agent.data_dir {
                    tracing::warn!("output and data_dir changes take effect at the next restart");
                }
                config = new;
                *input_kinds.lock().unwrap_or_else(|p| p.into_inner()) = config.inputs.names_and_kinds();
                running = match InputSet::start(&config, &host, &tx, &registry.load(), &states).await {
                    Ok(set) => Some(set),
                    Err(e) => {
                        tracing::error!(error = %e, "the reloaded configuration could not start; stopping");
                        break;
                    }
                };
                tracing::info!("configuration reloaded; inputs resumed from their checkpoints");
            }
        }
    }
    tracing::info!("stopping: draining inputs and the output");
    stdin_stop.store(true, Ordering::Relaxed);
    if let Some(set) = running.take() {
        set.stop().await;
    }
    // One deadline for the whole drain, so the stop stays within the documented grace however
    // the time splits between taking the queue and the acknowledgements. Wait for the sender to
    // take everything queued (not for the channel to close: a detached stdin reader may still
    // hold a sender half).
    let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
    while tx.queued_bytes() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(tx);
    sender_stop.store(true, Ordering::Relaxed);
    let sender_deadline = tokio::time::Instant::now() + SENDER_STOP_TIMEOUT;
    while !sender.is_finished() && tokio::time::Instant::now() < sender_deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if !sender.is_finished() {
        tracing::warn!("the sender did not stop in time; left behind");
    }
    let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
    let output_ref = output.clone();
    tokio::task::spawn_blocking(move || {
        if !output_ref.flush(remaining) {
            tracing::warn!(
                in_flight = output_ref.in_flight(),
                "not every record was acknowledged before the drain timeout; they are sent again on restart"
            );
        }
    })
    .await
    .ok();
    save();
    if let Some(status) = status {
        status.stop().await;
    }
    tracing::info!("agent stopped; checkpoints written");
    if fatal {
        return Err(AgentError::FatalOutput);
    }
    Ok(())
}

/// Whether the agent can keep its state in `data_dir`, checked at start like Filebeat and
/// Vector do: a directory it may not write (permissions, a read-only file system) is an error
/// naming it, as no checkpoint could ever be kept. A full disk only warns: it is a passing state,
/// the lines are still sent, and checkpoints are written again as soon as there is room.
fn check_data_dir(data_dir: &std::path::Path) -> Result<(), AgentError> {
    let probe = data_dir.join(".write-probe");
    let failed = |source| AgentError::DataDir { path: data_dir.display().to_string(), source };
    let written = std::fs::File::create(&probe).and_then(|mut file| std::io::Write::write_all(&mut file, b"probe"));
    let _ = std::fs::remove_file(&probe);
    match written {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded) => {
            tracing::warn!(path = %data_dir.display(), error = %e, "the data directory is full: checkpoints cannot be written until there is room (lines are sent; after a restart those since the last checkpoint are sent again)");
            Ok(())
        }
        Err(e) => Err(failed(e)),
    }
}

/// The inputs' transforms and modules compiled as the inputs compile them at start (grok
/// patterns, time formats and zones, GeoIP databases), for `--check-config`: one line per input
/// that would not start, naming it and the step.
pub fn transform_problems(config: &AgentConfig) -> Vec<String> {
    use crate::pipeline::Processors;
    let inputs = &config.inputs;
    let mut compiled = Vec::new();
    for (i, f) in inputs.file.iter().enumerate() {
        let module = f.module.map(|m| (m, f.keep_original, f.timezone.as_deref()));
        compiled.push((format!("inputs.file[{i}]"), Processors::with_transforms(&f.processors, module, &f.transforms)));
    }
    for input in inputs.non_file_inputs() {
        compiled.push((input.at, Processors::with_transforms(input.processors, None, input.transforms)));
    }
    compiled.into_iter().filter_map(|(at, result)| result.err().map(|e| format!("{at}: {e}"))).collect()
}

/// `--once`: runs every input once and writes the events to `out` as JSON lines instead of
/// sending them (like `telegraf --test`). Nothing is checkpointed.
pub fn run_once(config: &AgentConfig, out: &mut dyn std::io::Write) -> Result<usize, AgentError> {
    let host = host_name(config);
    let mut count = 0;
    for input in &config.inputs.file {
        let (tx, mut rx) = channel::channel(CHANNEL_BYTES);
        let limit = output::max_record_bytes(&config.output);
        let tailer = FileTailer::new(input.clone(), host.clone(), Default::default(), Default::default(), limit)
            .map_err(|reason| AgentError::Input { input: input.name.clone(), reason })?;
        let reader = std::thread::spawn(move || tailer.run_once(&tx));
        count += print_envelopes(std::iter::from_fn(|| rx.blocking_recv()).flatten(), out);
        // Unblocks the reader should the output have stopped early.
        drop(rx);
        let _ = reader.join();
    }
    for input in &config.inputs.stdin {
        let (tx, mut rx) = channel::channel(CHANNEL_BYTES);
        let (input_ref, host_ref) = (input.clone(), host.clone());
        let reader =
            std::thread::spawn(move || inputs::read_stdin(&input_ref, &host_ref, &tx, &AtomicBool::new(false)));
        count += print_envelopes(std::iter::from_fn(|| rx.blocking_recv()).flatten(), out);
        drop(rx);
        if let Ok(Err(reason)) = reader.join() {
            return Err(AgentError::Input { input: input.name.clone(), reason });
        }
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
        if out.write_all(&envelope.payload).and_then(|()| out.write_all(b"\n")).is_err() {
            break;
        }
        count += 1;
    }
    count
}

#[cfg(test)]
mod shutdown_tests {
    use super::*;

    /// An input that never stops (a read on a hung mount, a statvfs that never returns) must not
    /// hold up the agent's stop for longer than the bound.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stopping_inputs_is_bounded_when_one_never_stops() {
        let (stop_tasks, _stopped) = watch::channel(false);
        let stuck = Arc::new(AtomicBool::new(true));
        let thread = {
            let stuck = stuck.clone();
            std::thread::spawn(move || {
                while stuck.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        let task = tokio::spawn(std::future::pending::<()>());
        let set =
            InputSet { stop: Arc::new(AtomicBool::new(false)), stop_tasks, threads: vec![thread], tasks: vec![task] };
        let started = std::time::Instant::now();
        set.stop().await;
        let took = started.elapsed();
        stuck.store(false, Ordering::Relaxed);
        assert!(took >= INPUT_STOP_TIMEOUT, "returned before the inputs stopped or the bound: {took:?}");
        assert!(took < INPUT_STOP_TIMEOUT + Duration::from_secs(2), "stopping the inputs took {took:?}");
    }
}

#[cfg(test)]
mod check_tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn check_config_compiles_the_transforms_as_the_start_would() {
        let text =
            "[[inputs.file]]\nname = \"web\"\ntopic = \"logs\"\ninclude = [\"/var/log/*.log\"]\nmodule = \"nginx\"\n\
                    [[inputs.file.transforms]]\ngrok = { patterns = [\"%{NOPE:x}\"] }\n\
                    [[inputs.stdin]]\nname = \"in\"\ntopic = \"logs\"\n\
                    [[inputs.stdin.transforms]]\ntimestamp = { field = \"t\", formats = [\"ISO8601\"] }\n";
        let config = millrace_config::parse_agent(text, "a.toml").unwrap();
        let problems = super::transform_problems(&config);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("inputs.file[0]: transforms[0] (grok): `%{NOPE:x}`"), "{problems:?}");
    }
}
