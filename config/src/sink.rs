//! Sink configuration: `millrace sink --config sink.toml` (see `config/examples/sink.toml`).
//!
//! One process runs any number of sinks; each is a consumer-group member reading its topics and
//! writing to one destination (Elasticsearch, InfluxDB, or a local file in either's format).
//! Processes with the same sink `group` share the partitions.

use crate::error::ConfigError;
use crate::http_client::{transport_problems, transport_warnings, ClientTls, Credentials};
use crate::kafka_client::KafkaClientSecurity;
use crate::secret::{resolve, Secret};
use crate::units::{ByteSize, DurationMs};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The whole sink configuration file.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkConfig {
    /// Process-wide settings.
    pub sink: SinkSettings,
    /// Where records are read from.
    pub source: SourceSettings,
    /// Elasticsearch (or OpenSearch) sinks.
    pub elasticsearch: Vec<ElasticsearchSink>,
    /// InfluxDB sinks.
    pub influxdb: Vec<InfluxDbSink>,
    /// Sinks appending to local files (Elasticsearch bulk or line protocol).
    pub file: Vec<FileSink>,
}

/// Process-wide settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkSettings {
    /// Prometheus `/metrics` listener; none when absent.
    pub metrics_listen: Option<SocketAddr>,
    /// `host` of the status records; the machine's host name when absent.
    pub host_name: Option<String>,
    /// How often each sink publishes its status to `__millrace_status` (read by `millrace top`);
    /// 0 turns it off.
    pub status_interval: DurationMs,
}

impl Default for SinkSettings {
    fn default() -> Self {
        SinkSettings { metrics_listen: None, host_name: None, status_interval: DurationMs(5_000) }
    }
}

/// The broker the sinks consume from.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceSettings {
    /// Brokers to bootstrap from, `HOST:PORT[,HOST:PORT…]`.
    pub bootstrap: String,
    /// How the consumers (and dead-letter producers) reach the brokers: `security_protocol`,
    /// `sasl_*` and `ssl_*` keys directly in `[source]`, Kafka's client property names with `_`
    /// for `.`.
    #[serde(flatten)]
    pub security: KafkaClientSecurity,
    /// Where a group without committed offsets starts: `earliest` or `latest`.
    pub start_at: StartFrom,
    /// Further librdkafka consumer settings, by their librdkafka names. Properties a key above
    /// sets (`security.protocol`, `sasl.username`, `ssl.ca.location`…) are refused here.
    pub librdkafka: BTreeMap<String, String>,
}

impl Default for SourceSettings {
    fn default() -> Self {
        SourceSettings {
            bootstrap: "127.0.0.1:9092".into(),
            security: KafkaClientSecurity::default(),
            start_at: StartFrom::Earliest,
            librdkafka: BTreeMap::new(),
        }
    }
}

/// Start position of a group that has no committed offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StartFrom {
    /// The oldest retained record (nothing already in the topic is skipped).
    Earliest,
    /// Only records produced from now on.
    Latest,
}

/// What every sink has: its topics, group, batching, retries and dead-letter topic.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Common {
    /// Name (metrics, logs); unique in the file.
    pub name: String,
    /// Topics to consume.
    pub topics: Vec<String>,
    /// Consumer group; processes with the same group share the partitions.
    pub group: String,
    /// A batch is written once it holds this many records…
    #[serde(default = "default_batch_events")]
    pub batch_max_events: usize,
    /// …or this many encoded bytes…
    #[serde(default = "default_batch_bytes")]
    pub batch_max_bytes: ByteSize,
    /// …or its first record waited this long.
    #[serde(default = "default_batch_timeout")]
    pub batch_timeout: DurationMs,
    /// Batches being written at once. Above 1 the next write does not wait for the answer to the
    /// last (hiding the destination's round trip); offsets are still committed in order.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Compress request bodies with gzip.
    #[serde(default)]
    pub gzip: bool,
    /// First wait before retrying a failed write; doubles (with jitter) up to `retry_max`.
    #[serde(default = "default_retry_initial")]
    pub retry_initial: DurationMs,
    /// Longest wait between retries.
    #[serde(default = "default_retry_max")]
    pub retry_max: DurationMs,
    /// Timeout of one request to the destination.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: DurationMs,
    /// Topic for records the destination refuses for good (with the error and origin in
    /// headers); without one such records are logged and skipped.
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
}

fn default_batch_events() -> usize {
    5_000
}
fn default_batch_bytes() -> ByteSize {
    ByteSize(5 << 20)
}
fn default_batch_timeout() -> DurationMs {
    DurationMs(1_000)
}
fn default_max_in_flight() -> usize {
    2
}
fn default_retry_initial() -> DurationMs {
    DurationMs(200)
}
fn default_retry_max() -> DurationMs {
    DurationMs(30_000)
}
fn default_request_timeout() -> DurationMs {
    DurationMs(30_000)
}

/// Bulk action for Elasticsearch documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BulkAction {
    /// Create or overwrite (a replay overwrites the same `_id`).
    Index,
    /// Create only; an existing `_id` (a replay) counts as done. Required for data streams.
    Create,
}

/// An Elasticsearch or OpenSearch sink (`[[elasticsearch]]`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticsearchSink {
    /// Topics, group, batching, retries.
    #[serde(flatten)]
    pub common: Common,
    /// Base URLs of the nodes, e.g. `https://10.0.0.5:9200`; requests rotate over them.
    pub endpoints: Vec<String>,
    /// Target index, with strftime fields taken from the record's `@timestamp`
    /// (`logs-%Y.%m.%d`), or a data stream's name with `data_stream = true`.
    #[serde(default = "default_index")]
    pub index: String,
    /// Write into a data stream (forces the `create` action).
    #[serde(default)]
    pub data_stream: bool,
    /// Bulk action.
    #[serde(default = "default_action")]
    pub action: BulkAction,
    /// What the records are: JSON documents (the agent's, or any producer's), or plain text
    /// each sent as a document's `message`.
    #[serde(default)]
    pub format: DocumentFormat,
    /// An ingest pipeline every document goes through (`_bulk?pipeline=…`), for those who parse
    /// in Elasticsearch instead of on the agent.
    #[serde(default)]
    pub pipeline: Option<String>,
    /// Basic authentication user name.
    #[serde(default)]
    pub username: Option<String>,
    /// Basic authentication password.
    #[serde(default)]
    pub password: Option<Secret>,
    /// File holding the password (read at load time, trailing newline dropped).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// API key (the base64 `id:key` credential sent as `Authorization: ApiKey …`).
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// File holding the API key.
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// TLS of `https://` endpoints.
    #[serde(default)]
    pub tls: ClientTls,
    /// What `millrace sink setup` installs for this sink: an index template and an ILM policy.
    #[serde(default)]
    pub setup: ElasticsearchSetup,
}

/// `[elasticsearch.setup]`: the index template (ECS mappings for the agent's fields and modules,
/// settings, data stream) and ILM policy `millrace sink setup` installs, as `filebeat setup` does.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ElasticsearchSetup {
    /// Index template name; `millrace-<sink name>` when absent.
    pub template_name: Option<String>,
    /// Template priority (above the built-in `logs-*-*` template's 100).
    pub priority: u32,
    /// Primary shards of new indices.
    pub shards: u32,
    /// Replicas of new indices.
    pub replicas: u32,
    /// Attach an ILM policy.
    pub ilm: bool,
    /// ILM policy name; `millrace-<sink name>` when absent.
    pub ilm_policy: Option<String>,
    /// Roll a data stream's write index over at this age (Elasticsearch time units, `30d`).
    pub rollover_max_age: String,
    /// … or at this primary shard size (`50gb`).
    pub rollover_max_primary_shard_size: String,
    /// Delete indices this long after rollover (or creation, for daily indices); never when
    /// absent.
    pub delete_after: Option<String>,
}

impl Default for ElasticsearchSetup {
    fn default() -> Self {
        // Filebeat's default policy: roll over at 30 days or 50 GB, keep forever.
        ElasticsearchSetup {
            template_name: None,
            priority: 200,
            shards: 1,
            replicas: 1,
            ilm: true,
            ilm_policy: None,
            rollover_max_age: "30d".into(),
            rollover_max_primary_shard_size: "50gb".into(),
            delete_after: None,
        }
    }
}

/// Whether `text` is an Elasticsearch time value (`30d`, `12h`, `0ms`).
fn es_time(text: &str) -> bool {
    let unit = text.trim_start_matches(|c: char| c.is_ascii_digit());
    unit.len() < text.len() && matches!(unit, "d" | "h" | "m" | "s" | "ms" | "micros" | "nanos")
}

/// Whether `text` is an Elasticsearch byte size (`50gb`).
fn es_size(text: &str) -> bool {
    let unit = text.trim_start_matches(|c: char| c.is_ascii_digit());
    unit.len() < text.len() && matches!(unit, "b" | "kb" | "mb" | "gb" | "tb" | "pb")
}

fn default_index() -> String {
    "logs-%Y.%m.%d".into()
}
fn default_action() -> BulkAction {
    BulkAction::Index
}

/// InfluxDB write API version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InfluxApi {
    /// `POST /write?db=…&rp=…&precision=…` (InfluxDB 1.x).
    V1,
    /// `POST /api/v2/write?org=…&bucket=…&precision=…` with a token (InfluxDB 2.x, 1.8+).
    V2,
}

/// Timestamp precision of written points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Nanoseconds.
    Ns,
    /// Microseconds.
    Us,
    /// Milliseconds (the agent's resolution).
    Ms,
    /// Seconds.
    S,
}

impl Precision {
    /// The query-string value.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Ns => "ns",
            Precision::Us => "u",
            Precision::Ms => "ms",
            Precision::S => "s",
        }
    }
}

/// An InfluxDB sink (`[[influxdb]]`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxDbSink {
    /// Topics, group, batching, retries.
    #[serde(flatten)]
    pub common: Common,
    /// Base URL, e.g. `https://10.0.0.6:8086`.
    pub url: String,
    /// Write API.
    #[serde(default = "default_api")]
    pub api: InfluxApi,
    /// v1: database.
    #[serde(default)]
    pub database: Option<String>,
    /// v1: retention policy (the database's default when absent).
    #[serde(default)]
    pub retention_policy: Option<String>,
    /// v1: user name (basic authentication).
    #[serde(default)]
    pub username: Option<String>,
    /// v1: password.
    #[serde(default)]
    pub password: Option<Secret>,
    /// v1: file holding the password (read at load time, trailing newline dropped).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// v2: organization.
    #[serde(default)]
    pub org: Option<String>,
    /// v2: bucket.
    #[serde(default)]
    pub bucket: Option<String>,
    /// v2: API token (`Authorization: Token …`).
    #[serde(default)]
    pub token: Option<Secret>,
    /// v2: file holding the token.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Timestamp precision.
    #[serde(default = "default_precision")]
    pub precision: Precision,
    /// What the records are: the agent's metric records, or line protocol written by another
    /// producer (Telegraf's `outputs.kafka` with its default `data_format = "influx"`).
    #[serde(default)]
    pub format: InfluxRecordFormat,
    /// The units of the records' own timestamps with `format = "influx"` (default `ns`, as
    /// Telegraf writes line protocol) or `"json"` (default `s`, Telegraf's
    /// `json_timestamp_units`); they are re-expressed in `precision`.
    #[serde(default)]
    pub input_precision: Option<Precision>,
    /// TLS of an `https://` URL.
    #[serde(default)]
    pub tls: ClientTls,
}

/// The format of the records an Elasticsearch sink reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentFormat {
    /// A JSON object per record, sent as it is (anything else is dead-lettered).
    #[default]
    Json,
    /// Any bytes: the record becomes `{"@timestamp": <the record's time>, "message": <its text>}`.
    Text,
}

/// The format of the records an InfluxDB sink reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InfluxRecordFormat {
    /// The agent's metric records (JSON: `name`, `tags`, `fields`, `@timestamp`).
    #[default]
    Millrace,
    /// InfluxDB line protocol, one or more points per record (Telegraf's `data_format = "influx"`).
    Influx,
    /// Telegraf's JSON, one metric or a `{"metrics": […]}` batch per record (`data_format = "json"`).
    Json,
}

impl InfluxDbSink {
    /// The units of the records' own timestamps: as configured, else what Telegraf writes in
    /// the format.
    pub fn input_precision(&self) -> Precision {
        self.input_precision.unwrap_or(match self.format {
            InfluxRecordFormat::Json => Precision::S,
            InfluxRecordFormat::Millrace | InfluxRecordFormat::Influx => Precision::Ns,
        })
    }
}

fn default_api() -> InfluxApi {
    InfluxApi::V1
}
fn default_precision() -> Precision {
    Precision::Ms
}

/// What a file sink writes: the exact encoding one of the network destinations would send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// `_bulk` NDJSON: an `index` action line then the document, as the Elasticsearch sink sends;
    /// the file can be replayed with `curl --data-binary @file …/_bulk`.
    ElasticsearchBulk,
    /// InfluxDB line protocol, one point per line, as the InfluxDB sink sends.
    LineProtocol,
}

/// A sink appending to a local file (`[[file]]`): for trying the pipeline without Elasticsearch
/// or InfluxDB, or for keeping a plain copy. Each batch is appended and fsynced before its
/// offsets are committed.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileSink {
    /// Topics, group, batching, retries.
    #[serde(flatten)]
    pub common: Common,
    /// File to append to; created (with its directory) when missing.
    pub path: PathBuf,
    /// Encoding of the records.
    pub format: FileFormat,
    /// `elasticsearch_bulk` only: the `_index` of each action line, with strftime fields taken from
    /// the record's `@timestamp` (default `logs-%Y.%m.%d`).
    #[serde(default)]
    pub index: Option<String>,
    /// `line_protocol` only: timestamp precision of the points (default `ms`).
    #[serde(default)]
    pub precision: Option<Precision>,
}

impl FileSink {
    /// The index template in effect.
    pub fn index_or_default(&self) -> String {
        self.index.clone().unwrap_or_else(default_index)
    }

    /// The precision in effect.
    pub fn precision_or_default(&self) -> Precision {
        self.precision.unwrap_or_else(default_precision)
    }
}

/// What is wrong with an Elasticsearch index template (nothing when valid), each with its fix.
fn index_problems(index: &str) -> Vec<(String, &'static str)> {
    let mut problems = Vec::new();
    if crate::template::Template::is_template(index) {
        match crate::template::Template::parse(index) {
            Err(e) => problems.push((e, "write fields as %{[event.dataset]:generic}")),
            Ok(template) => {
                for field in template.fields_without_default() {
                    problems.push((
                        format!(
                            "`%{{[{field}]}}` has no default, and a document without the field would have no index"
                        ),
                        "add one after a colon, e.g. %{[event.dataset]:generic}",
                    ));
                }
                for part in &template.parts {
                    match part {
                        crate::template::Part::Literal(text) => problems.extend(strftime_problems(text)),
                        crate::template::Part::Field { default: Some(default), .. }
                            if default.is_empty()
                                || default.chars().any(|c| c.is_uppercase() || INDEX_FORBIDDEN.contains(c)) =>
                        {
                            problems.push((
                                format!("the default `{default}` cannot be part of an index name"),
                                "use lower-case letters, digits, '.', '_' or '-'",
                            ));
                        }
                        crate::template::Part::Field { .. } => {}
                    }
                }
            }
        }
        return problems;
    }
    if index.is_empty() {
        problems.push((format!("`{index}` is empty or has capitals"), "use e.g. \"logs-%Y.%m.%d\""));
    }
    problems.extend(strftime_problems(index));
    problems
}

/// Characters Elasticsearch refuses in index names (besides capitals).
pub const INDEX_FORBIDDEN: &str = "\\/*?\"<>| ,#:%";

/// Problems of literal index text with strftime fields.
fn strftime_problems(text: &str) -> Vec<(String, &'static str)> {
    let mut problems = Vec::new();
    // Capitals are only allowed in strftime fields (`%Y`).
    let literal: String =
        text.split('%').enumerate().map(|(n, part)| if n == 0 { part } else { part.get(1..).unwrap_or("") }).collect();
    if literal != literal.to_lowercase() {
        problems.push((format!("`{text}` is empty or has capitals"), "use e.g. \"logs-%Y.%m.%d\""));
    }
    if chrono::format::StrftimeItems::new(text).any(|i| matches!(i, chrono::format::Item::Error)) {
        problems.push((format!("`{text}` has an unknown % field"), "use strftime fields such as %Y.%m.%d"));
    }
    problems
}

impl SinkConfig {
    /// Every problem in the configuration (empty when valid); `origin` names the file.
    pub fn problems(&self, origin: &str) -> Vec<ConfigError> {
        let mut problems = Vec::new();
        // Collected apart: `bad` below holds `problems` borrowed.
        let mut problems_of_transport = Vec::new();
        let mut bad =
            |key: String, problem: String, fix: &str| problems.push(ConfigError::invalid(origin, &key, problem, fix));
        if self.source.bootstrap.trim().is_empty() {
            bad("source.bootstrap".into(), "is empty".into(), "give the brokers, e.g. \"10.0.0.1:9092\"");
        }
        if self.elasticsearch.is_empty() && self.influxdb.is_empty() && self.file.is_empty() {
            bad(
                "elasticsearch / influxdb / file".into(),
                "no sink is configured".into(),
                "add an [[elasticsearch]], [[influxdb]] or [[file]] table",
            );
        }
        let mut names = std::collections::BTreeSet::new();
        let commons = self
            .elasticsearch
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("elasticsearch[{i}]"), &s.common))
            .chain(self.influxdb.iter().enumerate().map(|(i, s)| (format!("influxdb[{i}]"), &s.common)))
            .chain(self.file.iter().enumerate().map(|(i, s)| (format!("file[{i}]"), &s.common)));
        for (table, common) in commons {
            let at = |key: &str| format!("{table}.{key}");
            if common.name.is_empty() || !names.insert(common.name.clone()) {
                bad(at("name"), format!("`{}` is empty or used twice", common.name), "give every sink its own name");
            }
            if common.topics.is_empty() || common.topics.iter().any(String::is_empty) {
                bad(at("topics"), "lists no topic (or an empty name)".into(), "e.g. topics = [\"app-logs\"]");
            }
            if common.group.is_empty() {
                bad(at("group"), "is empty".into(), "name the consumer group, e.g. \"millrace-es\"");
            }
            if common.batch_max_events == 0 {
                bad(at("batch_max_events"), "must be positive".into(), "use e.g. 5000");
            }
            if !(1..=16).contains(&common.max_in_flight) {
                bad(at("max_in_flight"), format!("is {}", common.max_in_flight), "use 1 to 16, e.g. 2");
            }
            if common.batch_max_bytes.0 < 1024 {
                bad(at("batch_max_bytes"), "is below 1 KiB".into(), "use e.g. \"5MiB\"");
            }
            if common.batch_timeout.0 == 0 || common.request_timeout.0 == 0 || common.retry_initial.0 == 0 {
                bad(
                    at("batch_timeout"),
                    "batch_timeout, request_timeout and retry_initial must be positive".into(),
                    "use e.g. \"1s\", \"30s\" and \"200ms\"",
                );
            }
            if common.retry_max.0 < common.retry_initial.0 {
                bad(at("retry_max"), "is below retry_initial".into(), "use e.g. \"30s\"");
            }
            if common.dead_letter_topic.as_ref().is_some_and(|t| t.is_empty() || common.topics.contains(t)) {
                bad(
                    at("dead_letter_topic"),
                    "is empty or one of the sink's own topics".into(),
                    "name a separate topic, e.g. \"dead-letters\"",
                );
            }
        }
        for (i, es) in self.elasticsearch.iter().enumerate() {
            let at = |key: &str| format!("elasticsearch[{i}].{key}");
            if es.endpoints.is_empty() {
                bad(at("endpoints"), "lists no node".into(), "e.g. endpoints = [\"http://127.0.0.1:9200\"]");
            }
            let at_table = format!("elasticsearch[{i}].");
            problems_of_transport.extend(transport_problems(
                origin,
                &at_table,
                "endpoints",
                &es.endpoints,
                "set username and password (or password_file) instead",
            ));
            problems_of_transport.extend(es.tls.problems(origin, &format!("{at_table}tls.")));
            for (problem, fix) in index_problems(&es.index) {
                bad(at("index"), problem, fix);
            }
            if es.pipeline.as_deref().is_some_and(str::is_empty) {
                bad(at("pipeline"), "is empty".into(), "name an ingest pipeline, e.g. \"nginx-access\", or remove it");
            }
            let setup = &es.setup;
            if !es_time(&setup.rollover_max_age) {
                bad(
                    at("setup.rollover_max_age"),
                    format!("`{}` is not a time", setup.rollover_max_age),
                    "use e.g. \"30d\"",
                );
            }
            if !es_size(&setup.rollover_max_primary_shard_size) {
                bad(
                    at("setup.rollover_max_primary_shard_size"),
                    format!("`{}` is not a size", setup.rollover_max_primary_shard_size),
                    "use e.g. \"50gb\"",
                );
            }
            if let Some(after) = setup.delete_after.as_ref().filter(|t| !es_time(t)) {
                bad(at("setup.delete_after"), format!("`{after}` is not a time"), "use e.g. \"90d\"");
            }
            if setup.shards == 0 {
                bad(at("setup.shards"), "must be at least 1".into(), "use 1");
            }
            if es.data_stream && es.action != BulkAction::Create {
                bad(at("action"), "data streams only accept `create`".into(), "set action = \"create\"");
            }
            if es.username.is_some() != (es.password.is_some() || es.password_file.is_some()) {
                bad(at("username"), "username and password go together".into(), "give both or neither");
            }
        }
        for (i, influx) in self.influxdb.iter().enumerate() {
            let at = |key: &str| format!("influxdb[{i}].{key}");
            let at_table = format!("influxdb[{i}].");
            problems_of_transport.extend(transport_problems(
                origin,
                &at_table,
                "url",
                std::slice::from_ref(&influx.url),
                "set username and password (or password_file), or token, instead",
            ));
            problems_of_transport.extend(influx.tls.problems(origin, &format!("{at_table}tls.")));
            match influx.api {
                InfluxApi::V1 if influx.database.as_deref().is_none_or(str::is_empty) => {
                    bad(at("database"), "is required with api = \"v1\"".into(), "e.g. database = \"metrics\"")
                }
                InfluxApi::V2 if influx.bucket.as_deref().is_none_or(str::is_empty) => {
                    bad(at("bucket"), "is required with api = \"v2\"".into(), "e.g. bucket = \"metrics\"")
                }
                InfluxApi::V2 if influx.org.as_deref().is_none_or(str::is_empty) => {
                    bad(at("org"), "is required with api = \"v2\"".into(), "e.g. org = \"ops\"")
                }
                _ => {}
            }
            if influx.input_precision.is_some() && influx.format == InfluxRecordFormat::Millrace {
                bad(
                    at("input_precision"),
                    "is only read with format = \"influx\" or \"json\"".into(),
                    "remove it: metric records carry RFC 3339 times",
                );
            }
            if influx.username.is_some() != (influx.password.is_some() || influx.password_file.is_some()) {
                bad(at("username"), "username and password go together".into(), "give both or neither");
            }
        }
        let mut paths = std::collections::BTreeSet::new();
        for (i, file) in self.file.iter().enumerate() {
            let at = |key: &str| format!("file[{i}].{key}");
            if file.path.as_os_str().is_empty() {
                bad(at("path"), "is empty".into(), "name the file to append to, e.g. \"out/logs.ndjson\"");
            } else if !paths.insert(file.path.clone()) {
                // Two sinks appending to one file would interleave partial batches.
                bad(
                    at("path"),
                    format!("`{}` is used by another [[file]] sink", file.path.display()),
                    "give every file sink its own path",
                );
            }
            if file.common.gzip {
                bad(at("gzip"), "does not apply to a file sink".into(), "remove it; files are written uncompressed");
            }
            match file.format {
                FileFormat::ElasticsearchBulk => {
                    if file.precision.is_some() {
                        bad(
                            at("precision"),
                            "only applies to format = \"line_protocol\"".into(),
                            "remove it, or use format = \"line_protocol\"",
                        );
                    }
                    for (problem, fix) in file.index.as_deref().map(index_problems).unwrap_or_default() {
                        bad(at("index"), problem, fix);
                    }
                }
                FileFormat::LineProtocol => {
                    if file.index.is_some() {
                        bad(
                            at("index"),
                            "only applies to format = \"elasticsearch_bulk\"".into(),
                            "remove it, or use format = \"elasticsearch_bulk\"",
                        );
                    }
                }
            }
        }
        problems.extend(problems_of_transport);
        problems.extend(self.source.security.problems(origin, "source."));
        problems.extend(KafkaClientSecurity::passthrough_problems(
            origin,
            "source.librdkafka.",
            &self.source.librdkafka,
        ));
        problems
    }

    /// Reads the `*_file` secrets into their values (at load time, before [`SinkConfig::problems`]);
    /// a file that cannot be read, or a secret given twice, is a problem naming the key.
    pub fn resolve_secrets(&mut self, origin: &str) -> Vec<ConfigError> {
        let mut problems: Vec<ConfigError> =
            self.source.security.resolve_secrets(origin, "source.").into_iter().collect();
        for (i, es) in self.elasticsearch.iter_mut().enumerate() {
            let at = format!("elasticsearch[{i}].");
            problems.extend(resolve(origin, &at, "password", &mut es.password, es.password_file.as_ref()));
            problems.extend(resolve(origin, &at, "api_key", &mut es.api_key, es.api_key_file.as_ref()));
        }
        for (i, influx) in self.influxdb.iter_mut().enumerate() {
            let at = format!("influxdb[{i}].");
            problems.extend(resolve(origin, &at, "password", &mut influx.password, influx.password_file.as_ref()));
            problems.extend(resolve(origin, &at, "token", &mut influx.token, influx.token_file.as_ref()));
        }
        problems
    }

    /// What is allowed but risky (credentials over plain HTTP, certificate checks turned off),
    /// for warnings at start-up.
    pub fn warnings(&self) -> Vec<String> {
        let credentials = |configured: bool| if configured { Credentials::Configured } else { Credentials::None };
        let mut warnings = self.source.security.warnings("source", &self.source.librdkafka);
        for (i, es) in self.elasticsearch.iter().enumerate() {
            let configured = credentials(es.password.is_some() || es.api_key.is_some());
            warnings.extend(transport_warnings(&format!("elasticsearch[{i}]"), &es.endpoints, configured, &es.tls));
        }
        for (i, influx) in self.influxdb.iter().enumerate() {
            let configured = credentials(influx.password.is_some() || influx.token.is_some());
            let url = std::slice::from_ref(&influx.url);
            warnings.extend(transport_warnings(&format!("influxdb[{i}]"), url, configured, &influx.tls));
        }
        warnings
    }
}

#[cfg(test)]
mod tests;
