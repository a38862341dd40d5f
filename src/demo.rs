//! `millrace demo`: the whole pipeline on one machine. A 3-broker cluster, an agent tailing a
//! generated nginx access log and sampling this machine's metrics, and sinks writing Elasticsearch
//! bulk and InfluxDB line-protocol files (or to real servers) — all child processes of this
//! executable, with configs, data, logs and output in one directory. Then `millrace top` on a
//! terminal, or a status line every few seconds.
//!
//! With `--secure` the same pipeline runs with a throw-away CA, SASL_SSL between every client and
//! broker, TLS with certificates between brokers, SCRAM users for the agent, the sink and the
//! operator, and least-privilege ACLs (see `secure.rs` for how the first users get in).
//!
//! On stop (Ctrl-C, SIGTERM, `--duration`, quitting `top`) the generator stops first, then the
//! agent; the sinks get a bounded wait to write what is in the topics, then the sink and the
//! brokers stop. On a start-up failure everything started is killed and the directory is kept
//! for its logs.

mod banner;
mod children;
mod configs;
mod generator;
mod pki;
mod secure;
mod status;

use anyhow::{bail, Context};
use children::Children;
use configs::{Layout, LogsOut, MetricsOut, BROKERS, DEAD_LETTER_TOPIC, LOGS_TOPIC, METRICS_TOPIC};
use generator::Generator;
use rdkafka::types::RDKafkaErrorCode;
use secure::User;
use status::Probe;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, Signal, SignalKind};

/// How long the brokers may take to form the cluster.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(90);
/// How long topic creation and leader election may take.
const TOPICS_TIMEOUT: Duration = Duration::from_secs(30);
/// Status line period.
const STATUS_EVERY: Duration = Duration::from_secs(5);
/// How long the sinks get at the end to write what is left in the topics.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);
/// Stop bounds before SIGKILL: the agent, the sink (which drains for up to 30 s), the brokers.
const AGENT_STOP: Duration = Duration::from_secs(10);
const SINK_STOP: Duration = Duration::from_secs(40);
const BROKER_STOP: Duration = Duration::from_secs(20);
/// A `millrace top` that fails sooner than this did not start (no terminal, say): the demo shows
/// status lines instead.
const TOP_START: Duration = Duration::from_secs(5);

/// Arguments of `millrace demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Directory for configs, data, logs and output; kept afterwards. It must be new or empty.
    /// Default: a temporary directory, removed on exit.
    #[arg(long, value_name = "PATH")]
    dir: Option<PathBuf>,
    /// Keep the temporary directory on exit.
    #[arg(long)]
    keep: bool,
    /// Access-log lines generated per second.
    #[arg(long, value_name = "N", default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    rate: u32,
    /// Stop generating lines after SECS (the rest of the pipeline keeps running).
    #[arg(long, value_name = "SECS")]
    generate_for: Option<u64>,
    /// Stop the demo after it has run for SECS (start-up not counted).
    #[arg(long, value_name = "SECS")]
    duration: Option<u64>,
    /// Print a status line every few seconds instead of running `millrace top`.
    #[arg(long)]
    no_top: bool,
    /// Send the logs to this Elasticsearch (e.g. http://127.0.0.1:9200) instead of a file.
    #[arg(long, value_name = "URL")]
    elasticsearch: Option<String>,
    /// Send the metrics to this InfluxDB 1.x (e.g. http://127.0.0.1:8086) instead of a file.
    #[arg(long, value_name = "URL")]
    influxdb: Option<String>,
    /// InfluxDB database (created if missing).
    #[arg(long, value_name = "NAME", default_value = "millrace")]
    influxdb_database: String,
    /// Secure everything: a throw-away CA in the directory, SASL_SSL (SCRAM-SHA-512) for the
    /// agent, the sink and the operator, TLS with certificates between brokers, ACLs giving the
    /// agent and the sink only what they need. `operator.properties` is the way in for the CLIs.
    #[arg(long)]
    secure: bool,
}

/// SIGINT, SIGTERM and SIGHUP (the terminal went away), installed before any child starts so
/// that none of them can end the demo without its children being stopped.
struct Signals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        let install = |kind| signal(kind).context("installing a signal handler");
        Ok(Signals {
            interrupt: install(SignalKind::interrupt())?,
            terminate: install(SignalKind::terminate())?,
            hangup: install(SignalKind::hangup())?,
        })
    }

    /// The next stop request.
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
            _ = self.hangup.recv() => {}
        }
    }
}

/// Runs the demo until it is stopped.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    if !args.influxdb_database.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        || args.influxdb_database.is_empty()
    {
        bail!("--influxdb-database `{}`: use letters, digits, `_` and `-`", args.influxdb_database);
    }
    let mut signals = Signals::install()?;
    let exe = std::env::current_exe().context("finding the millrace executable")?;
    let (dir, temporary) = prepare_dir(args.dir.as_deref())?;
    let logs_out = match &args.elasticsearch {
        Some(url) => LogsOut::Elasticsearch(url.clone()),
        None => LogsOut::File(Layout::default_logs_file(&dir)),
    };
    let metrics_out = match &args.influxdb {
        Some(url) => MetricsOut::InfluxDb { url: url.clone(), database: args.influxdb_database.clone() },
        None => MetricsOut::File(Layout::default_metrics_file(&dir)),
    };
    // Configuration mistakes (a bad URL) are reported before anything starts.
    let layout = match Layout::new(&dir, logs_out, metrics_out, args.secure).and_then(|l| l.configs().map(|_| l)) {
        Ok(layout) => layout,
        Err(e) => {
            if temporary {
                let _ = std::fs::remove_dir_all(&dir);
            }
            return Err(e);
        }
    };
    let secured = if args.secure { " (secured: SASL_SSL, TLS between brokers, ACLs)" } else { "" };
    println!("millrace demo: starting {BROKERS} brokers, an agent and the sinks in {}{secured}", dir.display());
    let mut demo =
        Demo { exe, layout, children: Children::default(), generator: None, probe: None, running_since: None };
    let started = tokio::select! {
        started = demo.start(args.rate, args.generate_for) => started.map(|()| true),
        () = signals.recv() => Ok(false),
    };
    if let Err(e) = started {
        drop(demo);
        eprintln!("millrace demo: start-up failed; everything started was killed; {} is kept", dir.display());
        return Err(e);
    }
    let outcome = match started {
        Ok(true) => {
            banner::print(&demo, &args, temporary);
            demo.watch(&args, &mut signals).await
        }
        _ => Ok(()),
    };
    if let Err(e) = &outcome {
        eprintln!("millrace demo: {e:#}; stopping");
    }
    demo.shutdown(&mut signals).await;
    drop(demo);
    if outcome.is_ok() && temporary && !args.keep {
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => println!("removed {}", dir.display()),
            Err(e) => eprintln!("removing {}: {e}", dir.display()),
        }
    } else {
        println!("kept {}", dir.display());
    }
    outcome
}

/// The demo directory: `dir` (created, and required to be empty) or a new temporary one; the
/// flag says whether it is temporary.
fn prepare_dir(dir: Option<&Path>) -> anyhow::Result<(PathBuf, bool)> {
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating --dir {}", dir.display()))?;
        let mut entries = std::fs::read_dir(dir).with_context(|| format!("reading --dir {}", dir.display()))?;
        if entries.next().is_some() {
            bail!(
                "--dir {}: the directory is not empty; fix: pass a new or empty directory \
                 (the demo starts a fresh cluster there)",
                dir.display()
            );
        }
        let dir = std::fs::canonicalize(dir).with_context(|| format!("resolving --dir {}", dir.display()))?;
        return Ok((dir, false));
    }
    for n in 0..1000 {
        let dir = std::env::temp_dir().join(format!("millrace-demo-{}-{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok((dir, true)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    bail!("could not create a temporary directory in {}", std::env::temp_dir().display())
}

/// The last `n` lines of a log file, indented, for an error message.
fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| format!("    {l}\n")).collect()
}

fn broker_name(id: i32) -> String {
    format!("broker-{id}")
}

/// The running demo.
struct Demo {
    exe: PathBuf,
    layout: Layout,
    children: Children,
    generator: Option<Generator>,
    probe: Option<Probe>,
    /// When the pipeline was up and running.
    running_since: Option<Instant>,
}

impl Demo {
    /// Starts everything: brokers, topics, generator, agent, sink.
    async fn start(&mut self, rate: u32, generate_for: Option<u64>) -> anyhow::Result<()> {
        self.start_brokers().await?;
        self.create_users_and_acls().await?;
        self.create_topics().await?;
        self.probe = Some(Probe::new(&self.layout)?);
        let access_log = self.layout.access_log();
        let generator = Generator::start(&access_log, rate, generate_for.map(Duration::from_secs))
            .with_context(|| format!("starting the access-log generator on {}", access_log.display()))?;
        self.generator = Some(generator);
        if let MetricsOut::InfluxDb { url, database } = &self.layout.metrics_out {
            create_influx_database(url, database).await;
        }
        for (name, config) in [("agent", self.layout.agent_config()), ("sink", self.layout.sink_config())] {
            let config = config.to_string_lossy().into_owned();
            self.children.spawn_logged(name, &self.exe, &[name, "--config", &config], &self.layout.log_file(name))?;
        }
        Ok(())
    }

    /// Writes the configs and starts the brokers; starts over on other ports when one was taken
    /// by someone else between choosing and binding it.
    async fn start_brokers(&mut self) -> anyhow::Result<()> {
        let names: Vec<String> = self.layout.brokers.iter().map(|b| broker_name(b.id)).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        for attempt in 1..=3 {
            self.layout.write_configs()?;
            let mut log_starts = Vec::new();
            for broker in self.layout.brokers.clone() {
                let log = self.layout.log_file(&broker_name(broker.id));
                log_starts.push((log.clone(), std::fs::metadata(&log).map_or(0, |m| m.len())));
                let config = self.layout.broker_config(broker.id).to_string_lossy().into_owned();
                self.children.spawn_logged(
                    &broker_name(broker.id),
                    &self.exe,
                    &["broker", "--config", &config],
                    &log,
                )?;
            }
            let error = match self.wait_for_cluster().await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let port_taken = log_starts.iter().any(|(log, start)| {
                std::fs::read(log).is_ok_and(|text| {
                    String::from_utf8_lossy(text.get(*start as usize..).unwrap_or_default())
                        .contains("Address already in use")
                })
            });
            if attempt == 3 || !port_taken {
                return Err(error);
            }
            println!("a port was taken by another process meanwhile; starting over on other ports");
            self.children.stop(&names, BROKER_STOP).await;
            for broker in &self.layout.brokers {
                let data = self.layout.broker_data(broker.id);
                match std::fs::remove_dir_all(&data) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(e).with_context(|| format!("removing {}", data.display()))
                    }
                    _ => {}
                }
            }
            self.layout.pick_ports()?;
        }
        bail!("the brokers did not start")
    }

    /// Waits until every broker lists all brokers as registered and unfenced (DescribeCluster). Asked on the bootstrap listeners: no user exists yet.
    async fn wait_for_cluster(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + CLUSTER_TIMEOUT;
        let security = crate::client::protocol_security(&self.layout.bootstrap_client().security)?;
        loop {
            if let Some(exited) = self.children.exited().into_iter().next() {
                let tail = exited.log.as_deref().map(|l| log_tail(l, 15)).unwrap_or_default();
                bail!("{exited} during start-up; its last lines:\n{tail}");
            }
            let mut waiting_for = None;
            for broker in &self.layout.brokers {
                let answer = status::metadata(&broker.bootstrap_addr(), &security, &[], Duration::from_secs(2)).await;
                let problem = match answer {
                    Ok((ids, _)) if ids.len() == BROKERS as usize => continue,
                    Ok((ids, _)) => format!("broker {} lists brokers {ids:?} so far", broker.id),
                    Err(e) => format!("broker {}: {e}", broker.id),
                };
                waiting_for = Some((broker.id, problem));
                break;
            }
            let Some((id, problem)) = waiting_for else { return Ok(()) };
            if Instant::now() > deadline {
                bail!(
                    "the brokers did not form a cluster within {CLUSTER_TIMEOUT:?} ({problem}); read {}",
                    self.layout.log_file(&broker_name(id)).display()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// With `--secure`: creates the SCRAM users and the ACLs (retried: a quorum that just formed
    /// may still be electing a leader).
    async fn create_users_and_acls(&mut self) -> anyhow::Result<()> {
        let Some(secure) = &self.layout.secure else { return Ok(()) };
        let admin = self.layout.bootstrap_client();
        let deadline = Instant::now() + TOPICS_TIMEOUT;
        loop {
            match secure::create_users_and_acls(&admin, secure).await {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    return Err(e.context(format!(
                        "creating the demo's users and ACLs; read {}",
                        self.layout.logs_dir().display()
                    )))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    /// Creates the topics (3 replicas each) and waits until every partition has a leader on
    /// every broker, as the agent and the sink will see them.
    async fn create_topics(&mut self) -> anyhow::Result<()> {
        let operator = self.layout.client(User::Operator);
        let deadline = Instant::now() + TOPICS_TIMEOUT;
        for (topic, partitions) in
            [(LOGS_TOPIC, configs::PARTITIONS), (METRICS_TOPIC, configs::PARTITIONS), (DEAD_LETTER_TOPIC, 1)]
        {
            loop {
                let problem = match crate::topic::create(&operator, topic, partitions, BROKERS, &[]).await {
                    // Exists: an earlier attempt that timed out went through after all.
                    Ok(Ok(())) | Ok(Err(RDKafkaErrorCode::TopicAlreadyExists)) => break,
                    Ok(Err(code)) => format!("{code} ({code:?})"),
                    Err(e) => format!("{e:#}"),
                };
                if Instant::now() > deadline {
                    bail!("creating topic {topic} failed: {problem}; read {}", self.layout.logs_dir().display());
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        // With --secure this also waits for every broker to know the users and the ACLs: the
        // agent and the sink log in and see their topics (Metadata hides what they may not see).
        let all = [LOGS_TOPIC, METRICS_TOPIC, DEAD_LETTER_TOPIC];
        let viewers: Vec<(User, &[&str])> = match self.layout.secure {
            Some(_) => vec![(User::Agent, &all[..2]), (User::Sink, &all[..])],
            None => vec![(User::Operator, &all[..])],
        };
        let mut viewers_security = Vec::new();
        for (user, topics) in viewers {
            viewers_security.push((
                user,
                crate::client::protocol_security(&self.layout.client(user).security)?,
                topics,
            ));
        }
        loop {
            let mut waiting_for = None;
            'brokers: for broker in &self.layout.brokers {
                for (user, security, topics) in &viewers_security {
                    let led = status::metadata(&broker.kafka_addr(), security, topics, Duration::from_secs(2)).await;
                    if !led.as_ref().is_ok_and(|(_, led)| !led.is_empty() && led.iter().all(|l| *l)) {
                        let answer = led.map_or_else(|e| format!("{e:#}"), |(_, led)| format!("leaders {led:?}"));
                        waiting_for = Some(format!("broker {} as {}: {answer}", broker.id, user.name()));
                        break 'brokers;
                    }
                }
            }
            let Some(problem) = waiting_for else { return Ok(()) };
            if Instant::now() > deadline {
                bail!(
                    "the partitions of {all:?} have no leader after {TOPICS_TIMEOUT:?} ({problem}); read {}",
                    self.layout.logs_dir().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Runs until a stop request, `--duration`, the user quitting `top`, or a failure.
    async fn watch(&mut self, args: &DemoArgs, signals: &mut Signals) -> anyhow::Result<()> {
        use std::io::IsTerminal;
        let started = Instant::now();
        self.running_since = Some(started);
        let deadline = args.duration.map(|s| started + Duration::from_secs(s));
        let mut top_started = None;
        if !args.no_top && std::io::stdout().is_terminal() {
            let bootstrap = self.layout.bootstrap();
            let mut top = vec!["top".to_string(), "--bootstrap".to_string(), bootstrap];
            if let Some(secure) = &self.layout.secure {
                top.extend(["--command-config".to_string(), secure.operator_properties.display().to_string()]);
            }
            let top: Vec<&str> = top.iter().map(String::as_str).collect();
            self.children.spawn_foreground("top", &self.exe, &top)?;
            top_started = Some(Instant::now());
        }
        // Said after `top` is gone: it owns the screen meanwhile.
        let mut deferred: Vec<String> = Vec::new();
        let mut next_status = started + STATUS_EVERY;
        loop {
            tokio::select! {
                () = signals.recv() => return Ok(()),
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                println!("--duration reached");
                return Ok(());
            }
            for exited in self.children.exited() {
                match exited.name.as_str() {
                    "top" if exited.status.success() => return Ok(()),
                    "top" if top_started.is_some_and(|t| t.elapsed() < TOP_START) => {
                        println!("millrace top exited ({}); printing status lines instead", exited.status);
                        top_started = None;
                    }
                    "top" => bail!("millrace top exited ({})", exited.status),
                    "agent" | "sink" => bail!("{exited}"),
                    _ => deferred.push(format!("warning: {exited}; the cluster goes on without it")),
                }
            }
            if let Some(generator) = self.generator.as_mut() {
                let done = args.generate_for.is_some_and(|s| started.elapsed() >= Duration::from_secs(s));
                if !generator.is_running() && !done {
                    generator.stop().context("the access-log generator stopped")?;
                }
            }
            if top_started.is_some() || Instant::now() < next_status {
                continue;
            }
            next_status += STATUS_EVERY;
            for message in deferred.drain(..) {
                println!("{message}");
            }
            if let Some(probe) = &self.probe {
                println!("{}", self.status_line(probe, started).await);
            }
        }
    }

    async fn status_line(&self, probe: &Probe, started: Instant) -> String {
        let sample = probe.sample().await;
        // Counted after the sample, so that what was written never exceeds what was generated.
        let (generated, generating) = self.generator.as_ref().map_or((0, false), |g| (g.lines(), g.is_running()));
        sample.line(started.elapsed(), generated, generating)
    }

    /// Stops everything in order: `top`, generator, agent, (the sinks catch up), sink, brokers.
    async fn shutdown(&mut self, signals: &mut Signals) {
        let started = self.running_since.unwrap_or_else(Instant::now);
        self.stop(&["top"], AGENT_STOP).await;
        let mut generated = 0;
        if let Some(generator) = self.generator.as_mut() {
            if let Err(e) = generator.stop() {
                eprintln!("the access-log generator failed: {e}");
            }
            generated = generator.lines();
            println!("stopped the generator after {generated} lines");
        }
        // The agent and the sinks get a bounded time to ship every line; a stop request skips it.
        let mut patient = self.children.is_running("sink");
        if patient && self.children.is_running("agent") {
            println!("waiting up to {CATCH_UP_TIMEOUT:?} for every line to reach the output (Ctrl-C skips)");
            let shipped = |s: &status::Sample| s.records(LOGS_TOPIC) >= Some(generated as i64) && s.caught_up();
            patient = self.catch_up(signals, shipped).await.is_some_and(|(_, patient)| patient);
        }
        self.stop(&["agent"], AGENT_STOP).await;
        if self.children.is_running("sink") {
            // What the agent sent while stopping.
            let done = if patient { status::Sample::caught_up } else { |_: &status::Sample| true };
            if let Some((sample, _)) = self.catch_up(signals, done).await {
                println!("final {}", sample.line(started.elapsed(), generated, false));
            }
        }
        // Its clients would only wait for the brokers going away.
        self.probe = None;
        self.stop(&["sink"], SINK_STOP).await;
        let brokers: Vec<String> = self.layout.brokers.iter().map(|b| broker_name(b.id)).collect();
        let brokers: Vec<&str> = brokers.iter().map(String::as_str).collect();
        self.stop(&brokers, BROKER_STOP).await;
        println!("stopped the agent, the sink and the brokers");
    }

    /// Samples until `done` holds or [`CATCH_UP_TIMEOUT`] passes; returns the last sample, and
    /// false when a stop request cut the wait short.
    async fn catch_up(
        &self,
        signals: &mut Signals,
        done: impl Fn(&status::Sample) -> bool,
    ) -> Option<(status::Sample, bool)> {
        let probe = self.probe.as_ref()?;
        let deadline = Instant::now() + CATCH_UP_TIMEOUT;
        loop {
            let sample = probe.sample().await;
            if done(&sample) || Instant::now() >= deadline {
                return Some((sample, true));
            }
            tokio::select! {
                () = signals.recv() => return Some((sample, false)),
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// Stops the children named in `names` (SIGTERM, then SIGKILL after `timeout`) and says
    /// which did not stop cleanly.
    async fn stop(&mut self, names: &[&str], timeout: Duration) {
        for (name, status) in self.children.stop(names, timeout).await {
            let log = self.layout.log_file(&name);
            match status {
                Some(status) if status.success() => {}
                Some(status) => eprintln!("{name} exited with {status}; read {}", log.display()),
                None => eprintln!("{name} did not stop in time and was killed; read {}", log.display()),
            }
        }
    }
}

/// Creates the InfluxDB database (best effort: the sink says so if it is missing).
async fn create_influx_database(url: &str, database: &str) {
    let created = async {
        let mut query = reqwest::Url::parse(url)?.join("/query")?;
        query.query_pairs_mut().append_pair("q", &format!("CREATE DATABASE \"{database}\""));
        let response = status::http_client()?.post(query).body("").send().await?;
        let code = response.status();
        let body = response.text().await?;
        anyhow::ensure!(code.as_u16() == 200, "HTTP {}: {}", code.as_u16(), body.trim());
        Ok::<(), anyhow::Error>(())
    };
    if let Err(e) = created.await {
        eprintln!("creating InfluxDB database {database} at {url}: {e:#}");
    }
}
