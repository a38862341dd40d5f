//! `millrace`: one binary for every component of the pipeline.

mod acl;
mod bench;
mod client;
mod cluster;
mod cluster_admin;
mod demo;
mod dlq;
mod group;
mod panics;
mod top;
mod topic;
mod topic_admin;
mod topic_tail;
mod user;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// millrace — agent → Kafka-compatible broker → sinks.
#[derive(Parser)]
#[command(name = "millrace", version, about)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker.
    Broker(BrokerArgs),
    /// Run the agent: tail files and ship them to the broker.
    Agent(AgentArgs),
    /// Run sink workers: forward topics to Elasticsearch and InfluxDB as consumer groups.
    Sink(SinkArgs),
    /// Create, list, describe or delete topics on any Kafka-compatible broker.
    Topic(topic::TopicArgs),
    /// List consumer groups or describe one: members, assignments, committed offsets and lag.
    Group(group::GroupArgs),
    /// Describe the cluster and its metadata quorum, move partitions, elect leaders, change broker settings.
    Cluster(cluster::ClusterArgs),
    /// Send a sink's dead letters back to their original topics once the cause is fixed.
    Dlq(dlq::DlqArgs),
    /// Create, delete or list SCRAM users (credentials kept in the metadata quorum).
    User(user::UserArgs),
    /// Add, list or remove Kafka ACLs (kept in the metadata quorum, enforced with [authorization]).
    Acl(acl::AclArgs),
    /// Terminal UI for any Kafka-compatible cluster: brokers, partitions, ISR health, group lag.
    Top(top::TopArgs),
    /// Measure produce and consume throughput against a broker with librdkafka.
    Bench(bench::BenchArgs),
    /// Run the whole pipeline on this machine: 3 brokers, an agent tailing a generated access log, sinks to files.
    Demo(demo::DemoArgs),
}

#[derive(clap::Args)]
struct BrokerArgs {
    /// TOML configuration file (see config/examples/broker.toml); flags below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory for partition data.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Kafka protocol listener, HOST:PORT.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Admin HTTP listener (/metrics, /health), HOST:PORT.
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// Address clients are told to connect to, HOST:PORT.
    #[arg(long)]
    advertised_listener: Option<String>,
    /// This broker's id.
    #[arg(long)]
    node_id: Option<i32>,
    /// Metadata-quorum listener (Raft and broker heartbeats), HOST:PORT.
    #[arg(long)]
    controller_listen: Option<SocketAddr>,
    /// The metadata quorum: ID@HOST:PORT of every voter's controller listener, comma-separated.
    #[arg(long, value_delimiter = ',')]
    voters: Option<Vec<String>>,
    /// Check the configuration and exit.
    #[arg(long)]
    check_config: bool,
}

/// Log filter unless `MILLRACE_LOG` says otherwise. openraft reports every failed RPC to a
/// stopped voter at ERROR twice a second; the broker logs the consequences (fencing) itself.
const DEFAULT_LOG_FILTER: &str =
    "info,openraft=warn,openraft::replication=off,openraft::engine::handler::replication_handler=off";

#[derive(clap::Args)]
struct AgentArgs {
    /// TOML configuration file (see config/examples/agent.toml).
    #[arg(long)]
    config: PathBuf,
    /// Check the configuration, report every problem, and exit.
    #[arg(long)]
    check_config: bool,
    /// Run the inputs once and print the events to stdout instead of sending them.
    #[arg(long)]
    once: bool,
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = false)]
struct SinkArgs {
    #[command(subcommand)]
    action: Option<SinkAction>,
    /// TOML configuration file (see config/examples/sink.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Check the configuration, report every problem, and exit.
    #[arg(long)]
    check_config: bool,
}

#[derive(Subcommand)]
enum SinkAction {
    /// Install what the Elasticsearch sinks' indices need (an ILM policy and an index template
    /// with ECS mappings, data stream settings), as `filebeat setup` does; safe to run again.
    Setup {
        /// Replace templates and policies of the same names that millrace did not make.
        #[arg(long)]
        overwrite: bool,
    },
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MILLRACE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The UI owns the terminal: its logs go to --log-file (or stderr with --once) only.
    match &cli.command {
        Command::Top(args) => top::init_tracing(args, DEFAULT_LOG_FILTER)?,
        _ => init_tracing(cli.log_format),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("millrace")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Broker(args) => run_broker(args).await,
            Command::Agent(args) => run_agent(args).await,
            Command::Sink(args) => run_sink(args).await,
            Command::Topic(args) => topic::run(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Group(args) => group::run(args).await,
            Command::Dlq(args) => dlq::run(args).await,
            Command::Cluster(args) => cluster::run(args).await,
            Command::User(args) => user::run(args).await,
            Command::Acl(args) => acl::run(args).await,
            Command::Top(args) => top::run(args).await,
            Command::Demo(args) => demo::run(args).await,
        }
    })
}

fn broker_config(args: &BrokerArgs) -> anyhow::Result<millrace_config::BrokerConfig> {
    let (mut config, origin) = match &args.config {
        Some(path) => (millrace_config::load_broker(path)?, path.display().to_string()),
        None => (millrace_config::BrokerConfig::default(), "defaults".to_string()),
    };
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(listen) = args.listen {
        config.listen = Some(listen);
    }
    if let Some(admin) = args.admin_listen {
        config.admin_listen = admin;
    }
    if let Some(advertised) = &args.advertised_listener {
        config.advertised_listener = Some(advertised.clone());
    }
    if let Some(node_id) = args.node_id {
        config.node_id = node_id;
    }
    if let Some(listen) = args.controller_listen {
        config.controller_listen = Some(listen);
    }
    if let Some(voters) = &args.voters {
        config.voters = voters.clone();
    }
    config.validate(&format!("{origin} with command-line overrides"))?;
    Ok(config)
}

async fn run_broker(args: BrokerArgs) -> anyhow::Result<()> {
    let config = broker_config(&args)?;
    if args.check_config {
        println!("configuration is valid");
        return Ok(());
    }
    let running = millrace_broker::start(config).await?;
    let shutdown_rx = shutdown_on_signal();
    running.serve(shutdown_rx).await?;
    Ok(())
}

/// Prints every problem of a configuration file and fails, or passes the configuration on.
fn report_problems<T>(
    loaded: Result<T, Vec<millrace_config::ConfigError>>,
    path: &std::path::Path,
) -> anyhow::Result<T> {
    loaded.or_else(|problems| {
        for problem in &problems {
            eprintln!("error: {problem}");
        }
        anyhow::bail!("{} problem(s) in {}", problems.len(), path.display())
    })
}

async fn run_sink(args: SinkArgs) -> anyhow::Result<()> {
    let path =
        args.config.ok_or_else(|| anyhow::anyhow!("--config <FILE> is required (see config/examples/sink.toml)"))?;
    let config = report_problems(millrace_config::load_sink(&path), &path)?;
    if let Some(SinkAction::Setup { overwrite }) = args.action {
        anyhow::ensure!(!config.elasticsearch.is_empty(), "{} has no [[elasticsearch]] sink to set up", path.display());
        for sink in &config.elasticsearch {
            let report = millrace_sinks::elasticsearch::setup::install(&sink.common.name, sink, overwrite)
                .await
                .map_err(|e| anyhow::anyhow!("sink {}: {e}", sink.common.name))?;
            for (object, outcome) in report {
                println!("{}: {object} {outcome}", sink.common.name);
            }
        }
        return Ok(());
    }
    if args.check_config {
        println!("configuration is valid");
        return Ok(());
    }
    panics::install();
    let shutdown_rx = shutdown_on_signal();
    millrace_sinks::run(config, shutdown_rx).await?;
    exit_status_after_panics()
}

/// An error once anything panicked, so the process exits non-zero and its supervisor restarts it.
fn exit_status_after_panics() -> anyhow::Result<()> {
    if panics::panicked() {
        anyhow::bail!("a task panicked (see the log above); stopped so that a supervisor restarts the process");
    }
    Ok(())
}

async fn run_agent(args: AgentArgs) -> anyhow::Result<()> {
    let config = report_problems(millrace_config::load_agent(&args.config), &args.config)?;
    let transforms = millrace_agent::transform_problems(&config);
    if !transforms.is_empty() {
        for problem in &transforms {
            eprintln!("{}: {problem}", args.config.display());
        }
        anyhow::bail!("{} has {} input(s) whose transforms do not compile", args.config.display(), transforms.len());
    }
    if args.check_config {
        println!("configuration is valid");
        return Ok(());
    }
    if args.once {
        let stdout = std::io::stdout();
        let count =
            tokio::task::spawn_blocking(move || millrace_agent::run_once(&config, &mut stdout.lock())).await??;
        eprintln!("{count} events");
        return Ok(());
    }
    panics::install();
    let shutdown_rx = shutdown_on_signal();
    // SIGHUP re-reads the file; an invalid file is reported and the running configuration kept.
    let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(1);
    let path = args.config.clone();
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("installing the SIGHUP handler")?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            match millrace_config::load_agent(&path) {
                Ok(config) => {
                    tracing::info!(path = %path.display(), "SIGHUP: reloading the configuration");
                    if reload_tx.send(config).await.is_err() {
                        return;
                    }
                }
                Err(problems) => {
                    for problem in problems {
                        tracing::error!(%problem, "SIGHUP: configuration not reloaded");
                    }
                }
            }
        }
    });
    millrace_agent::run(config, shutdown_rx, reload_rx).await?;
    exit_status_after_panics()
}

/// A watch that turns true at SIGTERM or Ctrl-C, or once anything panicked (with
/// [`panics::install`]).
fn shutdown_on_signal() -> tokio::sync::watch::Receiver<bool> {
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = wait_for_signal() => tracing::info!("signal received, stopping"),
            _ = panics::wait() => {}
        }
        let _ = shutdown_tx.send(true);
    });
    shutdown_rx
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
