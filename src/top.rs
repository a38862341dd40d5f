//! `millrace top`: the terminal UI (the `millrace-tui` crate) for any Kafka-compatible cluster.

use anyhow::Context;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `millrace top`.
#[derive(clap::Args)]
pub struct TopArgs {
    #[command(flatten)]
    client: crate::client::ClientArgs,
    /// Time between refreshes ("2s", "500ms").
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    interval: Duration,
    /// Deadline of each request to a broker.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    request_timeout: Duration,
    /// Prometheus endpoints instead of asking each broker: URL or ID=URL, comma-separated
    /// (plain URLs are given to brokers in id order).
    #[arg(long)]
    metrics: Option<String>,
    /// Print one screen as text and exit (two refreshes --interval apart, so rates are shown).
    #[arg(long)]
    once: bool,
    /// Width of the --once screen.
    #[arg(long, default_value_t = 160)]
    width: u16,
    /// Height of the --once screen.
    #[arg(long, default_value_t = 48)]
    height: u16,
    /// First view, as typed after `:` — brokers, topics, partitions [TOPIC], groups [GROUP],
    /// agents, sinks, tail TOPIC.
    #[arg(long, default_value = "brokers")]
    view: String,
    /// Write logs to this file (the terminal belongs to the UI; without it logs are dropped,
    /// or with --once written to stderr).
    #[arg(long)]
    log_file: Option<PathBuf>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let ms = millrace_config::units::DurationMs::parse(text)?.0;
    if ms == 0 {
        return Err("must be more than 0".into());
    }
    Ok(Duration::from_millis(ms))
}

/// Logs for `top`: to `--log-file`, to stderr with `--once`, else nowhere.
pub fn init_tracing(args: &TopArgs, filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MILLRACE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false);
    match (&args.log_file, args.once) {
        (Some(path), _) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening the log file {}", path.display()))?;
            builder.with_writer(std::sync::Mutex::new(file)).init();
        }
        (None, true) => builder.with_writer(std::io::stderr).init(),
        (None, false) => {}
    }
    Ok(())
}

/// Runs `millrace top`.
pub async fn run(args: TopArgs) -> anyhow::Result<()> {
    let client = args.client.client()?;
    let options = millrace_tui::Options {
        identity: crate::client::principal(&client.security)?,
        security: crate::client::protocol_security(&client.security)?,
        bootstrap: client.bootstrap,
        interval: args.interval,
        request_timeout: args.request_timeout,
        metrics: args.metrics,
        once: args.once,
        width: args.width,
        height: args.height,
        view: args.view,
    };
    millrace_tui::run(options).await?;
    Ok(())
}
