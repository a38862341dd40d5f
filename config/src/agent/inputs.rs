//! `[inputs]` of the agent configuration: files, Prometheus scrapes, host metrics, syslog and
//! stdin, with their defaults and the rules each input's keys must follow.

use super::transforms::{self, Module, Transform};
use crate::error::ConfigError;
use crate::http_client::{transport_problems, transport_warnings, BasicAuth, ClientTls, Credentials};
use crate::secret::{resolve, Secret};
use crate::template::{legal_topic, Template};
use crate::units::{ByteSize, DurationMs};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// All inputs, by type.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Inputs {
    /// File tailing inputs.
    pub file: Vec<FileInput>,
    /// Prometheus scrape inputs.
    pub prometheus: Vec<PrometheusInput>,
    /// Host metrics inputs (from /proc).
    pub host_metrics: Vec<HostMetricsInput>,
    /// Syslog receivers.
    pub syslog: Vec<SyslogInput>,
    /// Lines from the agent's standard input (at most one).
    pub stdin: Vec<StdinInput>,
}

impl Inputs {
    /// Every input's name and kind (`file`, `prometheus`, `host_metrics`, `syslog`, `stdin`).
    pub fn names_and_kinds(&self) -> Vec<(String, &'static str)> {
        let mut all = Vec::new();
        all.extend(self.file.iter().map(|i| (i.name.clone(), "file")));
        all.extend(self.prometheus.iter().map(|i| (i.name.clone(), "prometheus")));
        all.extend(self.host_metrics.iter().map(|i| (i.name.clone(), "host_metrics")));
        all.extend(self.syslog.iter().map(|i| (i.name.clone(), "syslog")));
        all.extend(self.stdin.iter().map(|i| (i.name.clone(), "stdin")));
        all
    }
}

/// Lines read from standard input until it closes.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StdinInput {
    /// Name (`input.name`).
    pub name: String,
    /// Topic the lines go to.
    pub topic: String,
    /// Longer lines are cut.
    #[serde(default = "default_max_line")]
    pub max_line_bytes: ByteSize,
    /// Processors.
    #[serde(default)]
    pub processors: Processors,
    /// Steps applied to each event in order, before `processors`.
    #[serde(default)]
    pub transforms: Vec<Transform>,
}

/// Transport of a syslog receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogProtocol {
    /// One datagram per message.
    Udp,
    /// Octet-counted or newline framing (RFC 6587), detected per message.
    Tcp,
}

/// A syslog receiver (RFC 3164 and RFC 5424).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogInput {
    /// Name (`input.name`).
    pub name: String,
    /// Topic the messages go to.
    pub topic: String,
    /// Address to listen on, e.g. `0.0.0.0:514`.
    pub listen: SocketAddr,
    /// udp or tcp.
    pub protocol: SyslogProtocol,
    /// Longer messages are truncated.
    #[serde(default = "default_syslog_max")]
    pub max_message_bytes: ByteSize,
    /// TCP: connections served at once; further ones wait in the listen backlog until one closes.
    #[serde(default = "default_syslog_connections")]
    pub max_connections: usize,
    /// TCP: a connection silent this long is closed, freeing its slot (senders such as rsyslog
    /// reconnect when they next have something to say).
    #[serde(default = "default_syslog_idle")]
    pub idle_timeout: DurationMs,
    /// TCP only: receive over TLS (syslog over TLS, RFC 5425; its port is 6514).
    #[serde(default)]
    pub tls: Option<SyslogTls>,
    /// Processors.
    #[serde(default)]
    pub processors: Processors,
    /// Steps applied to each event in order, before `processors`.
    #[serde(default)]
    pub transforms: Vec<Transform>,
}

/// The certificate a syslog-over-TLS receiver presents, and what it asks of senders.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogTls {
    /// PEM certificate chain (leaf first).
    pub certificate_file: PathBuf,
    /// PEM private key of the certificate.
    pub key_file: PathBuf,
    /// PEM CA certificates that sign the senders' client certificates.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Whether senders must present a certificate signed by `ca_file` (RFC 5425 §5.2's
    /// certificate-based authorization of senders).
    #[serde(default)]
    pub client_auth: crate::ClientAuth,
}

fn default_syslog_max() -> ByteSize {
    ByteSize(64 << 10)
}
/// Most syslog TCP connections one listener allows.
pub const MAX_SYSLOG_CONNECTIONS: usize = 65_536;
fn default_syslog_connections() -> usize {
    1024
}
fn default_syslog_idle() -> DurationMs {
    DurationMs(600_000)
}

/// Which host-metric groups are sampled (all by default).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct HostCollectors {
    /// Total CPU usage.
    pub cpu: bool,
    /// Also per core.
    pub per_cpu: bool,
    /// Memory.
    pub memory: bool,
    /// Swap.
    pub swap: bool,
    /// Disk usage per mount.
    pub disk: bool,
    /// Disk I/O per device.
    pub diskio: bool,
    /// Network interfaces.
    pub net: bool,
    /// Load average, uptime, CPU count.
    pub load: bool,
    /// Process counts by state.
    pub processes: bool,
}

impl Default for HostCollectors {
    fn default() -> Self {
        HostCollectors {
            cpu: true,
            per_cpu: true,
            memory: true,
            swap: true,
            disk: true,
            diskio: true,
            net: true,
            load: true,
            processes: true,
        }
    }
}

/// A host metrics input: samples /proc every `interval`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HostMetricsInput {
    /// Name (`input.name`).
    pub name: String,
    /// Topic the points go to.
    pub topic: String,
    /// Sampling period.
    #[serde(default = "default_metrics_interval")]
    pub interval: DurationMs,
    /// Where /proc is (a host's /proc mounted into a container, say).
    #[serde(default = "default_proc_root")]
    pub proc_root: PathBuf,
    /// Which groups are sampled.
    #[serde(default)]
    pub collectors: HostCollectors,
    /// Processors.
    #[serde(default)]
    pub processors: Processors,
    /// Steps applied to each event in order, before `processors`.
    #[serde(default)]
    pub transforms: Vec<Transform>,
}

fn default_proc_root() -> PathBuf {
    PathBuf::from("/proc")
}

/// A Prometheus scrape input: every `interval`, each URL's text exposition becomes metric points.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusInput {
    /// Name (`input.name`).
    pub name: String,
    /// Topic the points go to.
    pub topic: String,
    /// Endpoints, e.g. `http://127.0.0.1:9100/metrics` or `https://…`.
    pub urls: Vec<String>,
    /// Scrape period.
    #[serde(default = "default_metrics_interval")]
    pub interval: DurationMs,
    /// Per-scrape timeout.
    #[serde(default = "default_scrape_timeout")]
    pub timeout: DurationMs,
    /// Largest response body accepted.
    #[serde(default = "default_scrape_body")]
    pub max_body_bytes: ByteSize,
    /// Processors.
    #[serde(default)]
    pub processors: Processors,
    /// Steps applied to each event in order, before `processors`.
    #[serde(default)]
    pub transforms: Vec<Transform>,
    /// TLS of `https://` endpoints (Prometheus' `tls_config`).
    #[serde(default)]
    pub tls: ClientTls,
    /// Sent as `Authorization: Bearer …` (Prometheus' `bearer_token`).
    #[serde(default)]
    pub bearer_token: Option<Secret>,
    /// File holding the bearer token, read at load time.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// HTTP basic authentication (Prometheus' `basic_auth`).
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
}

impl PrometheusInput {
    /// Reads the `*_file` secrets; `at` is the table's dotted prefix with its dot.
    fn resolve_secrets(&mut self, origin: &str, at: &str) -> Vec<ConfigError> {
        let mut problems: Vec<ConfigError> =
            resolve(origin, at, "bearer_token", &mut self.bearer_token, self.bearer_token_file.as_ref())
                .into_iter()
                .collect();
        if let Some(basic) = &mut self.basic_auth {
            problems.extend(basic.resolve_secrets(origin, &format!("{at}basic_auth.")));
        }
        problems
    }

    /// Problems of the URLs, TLS and credentials.
    fn transport_problems(&self, origin: &str, at: &str) -> Vec<ConfigError> {
        let mut problems =
            transport_problems(origin, at, "urls", &self.urls, "set basic_auth (or bearer_token) instead");
        problems.extend(self.tls.problems(origin, &format!("{at}tls.")));
        if let Some(basic) = &self.basic_auth {
            problems.extend(basic.problems(origin, &format!("{at}basic_auth.")));
            if self.bearer_token.is_some() || self.bearer_token_file.is_some() {
                problems.push(ConfigError::invalid(
                    origin,
                    &format!("{at}basic_auth"),
                    "and bearer_token are both set; a request carries one Authorization header",
                    "keep one of them",
                ));
            }
        }
        problems
    }
}

fn default_metrics_interval() -> DurationMs {
    DurationMs(10_000)
}
fn default_scrape_timeout() -> DurationMs {
    DurationMs(5_000)
}
fn default_scrape_body() -> ByteSize {
    ByteSize(10 << 20)
}

/// Where a file input starts reading a file it has no checkpoint for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    /// From its first byte.
    Beginning,
    /// From its current end (only new lines).
    End,
}

/// What decides the partition of an event: `"file"`, `"host"`, `"none"`, or a format string of
/// event fields (`"%{[source.ip]}"`; an event whose fields are all missing gets no key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartitionKey {
    /// Host and file path: all lines of one file stay in order on one partition (the default).
    File,
    /// Host name: everything of one host on one partition.
    Host,
    /// No key: spread evenly.
    None,
    /// Rendered from each event's fields.
    Template(String),
}

impl<'de> Deserialize<'de> for PartitionKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.as_str() {
            "file" => Ok(PartitionKey::File),
            "host" => Ok(PartitionKey::Host),
            "none" => Ok(PartitionKey::None),
            _ if Template::is_template(&text) => Ok(PartitionKey::Template(text)),
            _ => Err(serde::de::Error::custom(format!(
                "`{text}` is not a key: use \"file\", \"host\", \"none\" or fields such as \"%{{[source.ip]}}\""
            ))),
        }
    }
}

impl Serialize for PartitionKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(match self {
            PartitionKey::File => "file",
            PartitionKey::Host => "host",
            PartitionKey::None => "none",
            PartitionKey::Template(text) => text,
        })
    }
}

/// Processors applied to every event of an input, in this order.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Processors {
    /// Drop events whose `message` matches any of these regular expressions.
    pub drop_matching: Vec<String>,
    /// Set these fields (dotted paths) to these values.
    pub add_fields: BTreeMap<String, String>,
    /// Move fields (dotted paths): `from = "to"`.
    pub rename_fields: BTreeMap<String, String>,
}

/// A file tailing input.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileInput {
    /// Name (metrics, `input.name`).
    pub name: String,
    /// Topic the lines go to.
    pub topic: String,
    /// Glob patterns of files to tail.
    pub include: Vec<String>,
    /// Glob patterns excluded (matched against the full path).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Start position for files without a checkpoint.
    #[serde(default = "default_start_at")]
    pub start_at: StartAt,
    /// Longer lines are cut to this and flagged (`log.flags: ["truncated"]`), as are lines whose
    /// record would exceed what the producer may send (`message.max.bytes`).
    #[serde(default = "default_file_max_line")]
    pub max_line_bytes: ByteSize,
    /// Whether paths found by the patterns may be symbolic links (and files opened through
    /// them). Off by default: an agent reading as root must not be pointed at `/etc/shadow` by
    /// whoever can write a link into a watched directory.
    #[serde(default)]
    pub follow_symlinks: bool,
    /// How often the patterns are re-scanned for new, rotated and deleted files.
    #[serde(default = "default_scan")]
    pub scan_interval: DurationMs,
    /// A regular expression matching the first line of a multiline event (e.g. a log line's
    /// timestamp); following lines that do not match are appended to it.
    #[serde(default)]
    pub multiline_start: Option<String>,
    /// A pending multiline event is sent after this much quiet.
    #[serde(default = "default_multiline_timeout")]
    pub multiline_timeout: DurationMs,
    /// Decode each line as a JSON object and merge its keys into the event.
    #[serde(default)]
    pub json: bool,
    /// Partition key.
    #[serde(default = "default_key")]
    pub key: PartitionKey,
    /// Parsing presets for a kind of log (`"nginx"`, `"apache"`, `"syslog"`…); its steps run
    /// before `transforms`.
    #[serde(default)]
    pub module: Option<Module>,
    /// With a module: keep the line as read in `event.original`.
    #[serde(default = "keep_original")]
    pub keep_original: bool,
    /// With a module: the zone of log times that carry none (nginx error logs, syslog): an IANA
    /// name; UTC when absent.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Processors.
    #[serde(default)]
    pub processors: Processors,
    /// Steps applied to each event in order, before `processors`.
    #[serde(default)]
    pub transforms: Vec<Transform>,
}

fn default_start_at() -> StartAt {
    StartAt::Beginning
}
fn default_max_line() -> ByteSize {
    ByteSize(1 << 20)
}
/// Filebeat's `max_bytes` default.
fn default_file_max_line() -> ByteSize {
    ByteSize(10 << 20)
}
fn default_scan() -> DurationMs {
    DurationMs(1_000)
}
fn default_multiline_timeout() -> DurationMs {
    DurationMs(1_000)
}
fn keep_original() -> bool {
    true
}
fn default_key() -> PartitionKey {
    PartitionKey::File
}

/// An input's key prefix, topic and steps (see [`Inputs::non_file_inputs`]).
pub struct InputSteps<'a> {
    /// `inputs.<type>[<n>]`.
    pub at: String,
    /// Its topic setting.
    pub topic: &'a str,
    /// Its simple processors.
    pub processors: &'a Processors,
    /// Its transforms.
    pub transforms: &'a [Transform],
}

/// Problems of an input's topic (a name, or a format string of event fields) and partition key.
fn route_problems(origin: &str, at: &str, topic: &str, key: Option<&PartitionKey>) -> Vec<ConfigError> {
    let mut problems = Vec::new();
    let mut bad = |key: &str, problem: String, fix: &str| {
        problems.push(ConfigError::invalid(origin, &format!("{at}.{key}"), problem, fix));
    };
    if topic.is_empty() {
        // Said by the input's own check.
    } else if Template::is_template(topic) {
        match Template::parse(topic) {
            Err(e) => bad("topic", e, "write fields as %{[event.dataset]:default}"),
            Ok(template) => {
                for field in template.fields_without_default() {
                    bad(
                        "topic",
                        format!("`%{{[{field}]}}` has no default, and an event without the field would have no topic"),
                        "add one after a colon, e.g. %{[event.dataset]:other}",
                    );
                }
                for text in template.fixed_texts() {
                    if !text.is_empty() && !legal_topic(text) {
                        bad(
                            "topic",
                            format!("`{text}` has characters a topic name cannot have"),
                            "use letters, digits, '.', '_' and '-' (field values are cleaned the same way when sent)",
                        );
                    }
                }
            }
        }
    } else if !legal_topic(topic) {
        bad(
            "topic",
            format!("`{topic}` is not a legal topic name"),
            "use at most 249 letters, digits, '.', '_' and '-'",
        );
    }
    if let Some(PartitionKey::Template(text)) = key {
        if let Err(e) = Template::parse(text) {
            bad("key", e, "write fields as %{[source.ip]}");
        }
    }
    problems
}

impl Inputs {
    /// Every problem of the inputs, each naming its key under `inputs.`; `origin` names the file.
    pub(crate) fn problems(&self, origin: &str) -> Vec<ConfigError> {
        let mut problems = Vec::new();
        // Collected apart: `bad` below holds `problems` borrowed.
        let mut transport = Vec::new();
        let mut bad =
            |key: String, problem: String, fix: &str| problems.push(ConfigError::invalid(origin, &key, problem, fix));
        let mut names = std::collections::BTreeSet::new();
        for (i, input) in self.file.iter().enumerate() {
            let at = |key: &str| format!("inputs.file[{i}].{key}");
            if input.name.is_empty() || !names.insert(input.name.clone()) {
                bad(at("name"), format!("`{}` is empty or used twice", input.name), "give every input its own name");
            }
            if input.topic.is_empty() {
                bad(at("topic"), "is empty".into(), "name the topic the lines go to, e.g. \"logs\"");
            }
            if input.include.is_empty() {
                bad(at("include"), "lists no pattern".into(), "add a glob such as \"/var/log/nginx/*.log\"");
            }
            for pattern in input.include.iter().chain(&input.exclude) {
                if let Err(e) = glob::Pattern::new(pattern) {
                    bad(at("include"), format!("`{pattern}` is not a valid glob: {e}"), "fix the pattern");
                }
            }
            if input.max_line_bytes.0 < 64 {
                bad(at("max_line_bytes"), "is below 64 bytes".into(), "use e.g. \"1MiB\"");
            }
            if input.scan_interval.0 == 0 {
                bad(at("scan_interval"), "must be positive".into(), "use e.g. \"1s\"");
            }
            if let Some(re) = &input.multiline_start {
                if let Err(e) = regex::Regex::new(re) {
                    bad(at("multiline_start"), format!("is not a valid regular expression: {e}"), "fix the expression");
                }
            }
            for re in &input.processors.drop_matching {
                if let Err(e) = regex::Regex::new(re) {
                    bad(
                        at("processors.drop_matching"),
                        format!("`{re}` is not a valid regular expression: {e}"),
                        "fix the expression",
                    );
                }
            }
        }
        for (i, input) in self.prometheus.iter().enumerate() {
            let at = |key: &str| format!("inputs.prometheus[{i}].{key}");
            if input.name.is_empty() || !names.insert(input.name.clone()) {
                bad(at("name"), format!("`{}` is empty or used twice", input.name), "give every input its own name");
            }
            if input.topic.is_empty() {
                bad(at("topic"), "is empty".into(), "name the topic the points go to, e.g. \"metrics\"");
            }
            if input.urls.is_empty() {
                bad(at("urls"), "lists no endpoint".into(), "add e.g. \"http://127.0.0.1:9100/metrics\"");
            }
            transport.extend(input.transport_problems(origin, &at("")));
            if input.interval.0 == 0 || input.timeout.0 == 0 {
                bad(at("interval"), "interval and timeout must be positive".into(), "use e.g. \"10s\" and \"5s\"");
            }
        }
        if self.stdin.len() > 1 {
            bad("inputs.stdin".into(), "is configured more than once".into(), "keep one [[inputs.stdin]]");
        }
        for (i, input) in self.stdin.iter().enumerate() {
            if input.name.is_empty() || !names.insert(input.name.clone()) {
                bad(
                    format!("inputs.stdin[{i}].name"),
                    format!("`{}` is empty or used twice", input.name),
                    "give every input its own name",
                );
            }
            if input.topic.is_empty() {
                bad(format!("inputs.stdin[{i}].topic"), "is empty".into(), "name the topic the lines go to");
            }
        }
        for (i, input) in self.syslog.iter().enumerate() {
            let at = |key: &str| format!("inputs.syslog[{i}].{key}");
            if input.name.is_empty() || !names.insert(input.name.clone()) {
                bad(at("name"), format!("`{}` is empty or used twice", input.name), "give every input its own name");
            }
            if input.topic.is_empty() {
                bad(at("topic"), "is empty".into(), "name the topic the messages go to, e.g. \"syslog\"");
            }
            if input.max_message_bytes.0 < 480 {
                bad(at("max_message_bytes"), "is below 480 bytes (RFC 5424's minimum)".into(), "use e.g. \"64KiB\"");
            }
            if input.max_connections == 0 || input.max_connections > MAX_SYSLOG_CONNECTIONS {
                bad(
                    at("max_connections"),
                    format!("is {}, outside 1 to {MAX_SYSLOG_CONNECTIONS}", input.max_connections),
                    "use e.g. 1024 (and an open-files limit above it)",
                );
            }
            if input.idle_timeout.0 == 0 {
                bad(
                    at("idle_timeout"),
                    "must be positive".into(),
                    "use e.g. \"10m\" (a silent connection is closed after it)",
                );
            }
            if let Some(tls) = &input.tls {
                if input.protocol != SyslogProtocol::Tcp {
                    bad(at("tls"), "needs protocol = \"tcp\"".into(), "syslog over TLS (RFC 5425) runs over TCP");
                }
                if tls.client_auth != crate::ClientAuth::None && tls.ca_file.is_none() {
                    bad(
                        at("tls.ca_file"),
                        "is needed to check the senders' certificates".into(),
                        "set it to the CA that signs them, or client_auth = \"none\"",
                    );
                }
            }
        }
        for (i, input) in self.host_metrics.iter().enumerate() {
            let at = |key: &str| format!("inputs.host_metrics[{i}].{key}");
            if input.name.is_empty() || !names.insert(input.name.clone()) {
                bad(at("name"), format!("`{}` is empty or used twice", input.name), "give every input its own name");
            }
            if input.topic.is_empty() {
                bad(at("topic"), "is empty".into(), "name the topic the points go to, e.g. \"metrics\"");
            }
            if input.interval.0 < 100 {
                bad(at("interval"), "is below 100ms".into(), "use e.g. \"10s\"");
            }
        }
        problems.extend(transport);
        for (i, input) in self.file.iter().enumerate() {
            let at = format!("inputs.file[{i}]");
            problems.extend(route_problems(origin, &at, &input.topic, Some(&input.key)));
            problems.extend(transforms::problems(origin, &at, &input.transforms, input.timezone.as_deref()));
            if input.module.is_none() && input.timezone.is_some() {
                problems.push(ConfigError::invalid(
                    origin,
                    &format!("{at}.timezone"),
                    "applies to a module's times only",
                    "set module, or give the zone to a timestamp step (transforms … timestamp.timezone)",
                ));
            }
        }
        let others = self.non_file_inputs();
        for input in others {
            problems.extend(route_problems(origin, &input.at, input.topic, None));
            problems.extend(transforms::problems(origin, &input.at, input.transforms, None));
        }
        problems
    }

    /// Every input but the files (which also have a module), with its key prefix
    /// (`inputs.syslog[0]`), for checks that apply to all of them alike.
    pub fn non_file_inputs(&self) -> Vec<InputSteps<'_>> {
        fn steps<'a>(
            kind: &str,
            i: usize,
            topic: &'a str,
            processors: &'a Processors,
            transforms: &'a [Transform],
        ) -> InputSteps<'a> {
            InputSteps { at: format!("inputs.{kind}[{i}]"), topic, processors, transforms }
        }
        let mut all = Vec::new();
        all.extend(
            self.prometheus
                .iter()
                .enumerate()
                .map(|(i, x)| steps("prometheus", i, &x.topic, &x.processors, &x.transforms)),
        );
        all.extend(
            self.host_metrics
                .iter()
                .enumerate()
                .map(|(i, x)| steps("host_metrics", i, &x.topic, &x.processors, &x.transforms)),
        );
        all.extend(
            self.syslog.iter().enumerate().map(|(i, x)| steps("syslog", i, &x.topic, &x.processors, &x.transforms)),
        );
        all.extend(
            self.stdin.iter().enumerate().map(|(i, x)| steps("stdin", i, &x.topic, &x.processors, &x.transforms)),
        );
        all
    }

    /// Reads the inputs' `*_file` secrets into their values.
    pub(crate) fn resolve_secrets(&mut self, origin: &str) -> Vec<ConfigError> {
        let mut problems = Vec::new();
        for (i, input) in self.prometheus.iter_mut().enumerate() {
            problems.extend(input.resolve_secrets(origin, &format!("inputs.prometheus[{i}].")));
        }
        problems
    }

    /// What is allowed but risky in the inputs (credentials over plain HTTP, certificate checks
    /// turned off).
    pub(crate) fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for (i, input) in self.prometheus.iter().enumerate() {
            let credentials = if input.bearer_token.is_some() || input.basic_auth.is_some() {
                Credentials::Configured
            } else {
                Credentials::None
            };
            let table = format!("inputs.prometheus[{i}]");
            warnings.extend(transport_warnings(&table, &input.urls, credentials, &input.tls));
        }
        warnings
    }
}
