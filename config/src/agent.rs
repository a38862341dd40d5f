//! Agent configuration: `millrace agent --config agent.toml` (see `config/examples/agent.toml`).

mod inputs;
pub mod transforms;

pub use inputs::{
    FileInput, HostCollectors, HostMetricsInput, InputSteps, Inputs, PartitionKey, Processors, PrometheusInput,
    StartAt, StdinInput, SyslogInput, SyslogProtocol, SyslogTls, MAX_SYSLOG_CONNECTIONS,
};

use crate::error::ConfigError;
use crate::kafka_client::KafkaClientSecurity;
use crate::units::{ByteSize, DurationMs};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The whole agent configuration file.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Agent-wide settings.
    pub agent: AgentSettings,
    /// Where events go.
    pub output: OutputSettings,
    /// Event sources.
    pub inputs: Inputs,
}

/// Agent-wide settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSettings {
    /// `host.name` of every event; the machine's host name when absent.
    pub host_name: Option<String>,
    /// Checkpoint registry (`registry.json`) and disk buffer live here.
    pub data_dir: PathBuf,
    /// Prometheus `/metrics` listener; none when absent.
    pub metrics_listen: Option<SocketAddr>,
    /// How often file checkpoints are written (they are also written at shutdown).
    pub checkpoint_interval: DurationMs,
    /// Disk space for events that cannot be read again (metrics, syslog, stdin) while the
    /// broker is away; 0 turns the disk buffer off. File lines never need it: their inputs pause.
    pub disk_buffer_bytes: ByteSize,
    /// What happens to such events when the disk buffer is full.
    pub when_buffer_full: WhenFull,
    /// How often the agent publishes its status to `__millrace_status` (read by `millrace top`);
    /// 0 turns it off.
    pub status_interval: DurationMs,
}

/// Policy for events that cannot be read again once the disk buffer is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WhenFull {
    /// Drop them (counted in `millrace_agent_events_dropped_total`): sampling goes on.
    Drop,
    /// Wait: the inputs pause (syslog senders see backpressure).
    Block,
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            host_name: None,
            data_dir: PathBuf::from("millrace-agent-data"),
            metrics_listen: None,
            checkpoint_interval: DurationMs(1_000),
            disk_buffer_bytes: ByteSize(256 << 20),
            when_buffer_full: WhenFull::Drop,
            status_interval: DurationMs(5_000),
        }
    }
}

/// Compression of record batches sent to the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4 (the default: cheap on CPU).
    Lz4,
    /// Zstandard.
    Zstd,
}

/// Acknowledgement level of produce requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Acks {
    /// Every in-sync replica has the record (the default; required for no loss).
    All,
    /// The partition leader has it.
    #[serde(rename = "1")]
    One,
}

/// The broker output (librdkafka).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputSettings {
    /// Brokers to bootstrap from, `HOST:PORT[,HOST:PORT…]`.
    pub bootstrap: String,
    /// How the producer reaches the brokers: `security_protocol`, `sasl_*` and `ssl_*` keys
    /// directly in `[output]`, Kafka's client property names with `_` for `.`.
    #[serde(flatten)]
    pub security: KafkaClientSecurity,
    /// Acknowledgement level.
    pub acks: Acks,
    /// Idempotent producer: retries never duplicate or reorder records.
    pub idempotence: bool,
    /// Batch compression.
    pub compression: Compression,
    /// How long a batch may wait for more records.
    pub linger: DurationMs,
    /// Largest batch per partition.
    pub batch_bytes: ByteSize,
    /// Records waiting for the broker, in bytes; inputs pause when it is full. It bounds the
    /// agent's memory during a backlog (default 16 MiB, ~32,000 typical log records).
    pub queue_bytes: ByteSize,
    /// Further librdkafka settings, by their librdkafka names. Properties a key above sets
    /// (`security.protocol`, `sasl.username`, `ssl.ca.location`…) are refused here.
    pub librdkafka: BTreeMap<String, String>,
}

impl Default for OutputSettings {
    fn default() -> Self {
        OutputSettings {
            bootstrap: "127.0.0.1:9092".into(),
            security: KafkaClientSecurity::default(),
            acks: Acks::All,
            idempotence: true,
            compression: Compression::Lz4,
            linger: DurationMs(5),
            batch_bytes: ByteSize(1 << 20),
            queue_bytes: ByteSize(16 << 20),
            librdkafka: BTreeMap::new(),
        }
    }
}

impl AgentConfig {
    /// Every problem in the configuration (empty when valid); `origin` names the file.
    pub fn problems(&self, origin: &str) -> Vec<ConfigError> {
        let mut problems = Vec::new();
        let mut bad =
            |key: &str, problem: &str, fix: &str| problems.push(ConfigError::invalid(origin, key, problem, fix));
        if self.output.bootstrap.trim().is_empty() {
            bad("output.bootstrap", "is empty", "give the brokers, e.g. \"10.0.0.1:9092,10.0.0.2:9092\"");
        }
        if self.output.queue_bytes.0 < 1 << 20 {
            bad("output.queue_bytes", "is below 1 MiB", "use e.g. \"64MiB\"");
        }
        if self.agent.checkpoint_interval.0 == 0 {
            bad("agent.checkpoint_interval", "must be positive", "use e.g. \"1s\"");
        }
        let output = &self.output;
        problems.extend(output.security.problems(origin, "output."));
        problems.extend(KafkaClientSecurity::passthrough_problems(origin, "output.librdkafka.", &output.librdkafka));
        problems.extend(self.inputs.problems(origin));
        problems
    }

    /// Reads the `*_file` secrets into their values (at load time, before
    /// [`AgentConfig::problems`]); an unreadable file is a problem naming the key.
    pub fn resolve_secrets(&mut self, origin: &str) -> Vec<ConfigError> {
        let mut problems: Vec<ConfigError> =
            self.output.security.resolve_secrets(origin, "output.").into_iter().collect();
        problems.extend(self.inputs.resolve_secrets(origin));
        problems
    }

    /// What is allowed but risky (credentials over plain HTTP, certificate checks turned off),
    /// for warnings at start-up.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = self.output.security.warnings("output", &self.output.librdkafka);
        warnings.extend(self.inputs.warnings());
        warnings
    }
}

#[cfg(test)]
mod tests;
