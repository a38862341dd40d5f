//! The status record: JSON (readable with `kcat -t __millrace_status`), with a version so
//! readers can skip what they do not know, keyed `<kind>/<host>/<name>` so compaction keeps the
//! latest per component.

use serde::{Deserialize, Serialize};

/// The compacted topic every agent and sink publishes to (created by the brokers).
pub const STATUS_TOPIC: &str = "__millrace_status";
/// The largest record a reader decodes: a status is a few hundred bytes; anything this large
/// was not written by a millrace component.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;
/// The version written; readers accept it and anything older.
pub const VERSION: u32 = 1;
/// Last errors are cut to this many bytes (at a character boundary).
pub const MAX_ERROR_BYTES: usize = 300;
/// A component is silent once its last record is older than this many intervals.
pub const SILENT_AFTER_INTERVALS: u64 = 3;

/// Why a record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// Larger than [`MAX_RECORD_BYTES`].
    #[error("status record of {0} bytes is larger than {MAX_RECORD_BYTES}")]
    TooLarge(usize),
    /// Not a status record.
    #[error("status record is not valid: {0}")]
    Invalid(#[from] serde_json::Error),
    /// Written by a newer version than this reader knows.
    #[error("status record version {0} is newer than {VERSION}")]
    NewerVersion(u32),
}

/// Which part of the pipeline a record describes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ComponentKind {
    /// `millrace agent`.
    Agent,
    /// One sink of a `millrace sink` process.
    Sink,
}

impl ComponentKind {
    /// The key's first part.
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentKind::Agent => "agent",
            ComponentKind::Sink => "sink",
        }
    }
}

/// Whether the component runs.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Running; a record follows every interval.
    Running,
    /// Stopped cleanly (its last record): silence after it is expected.
    Stopped,
}

/// What a sink's destination did lately.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum DestinationState {
    /// Nothing written or failed since the sink started.
    #[default]
    Idle,
    /// The last write was accepted.
    Ok,
    /// The last write failed (the sink retries it).
    Failing,
}

/// One record.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Status {
    /// Record version ([`VERSION`]).
    pub v: u32,
    /// Agent or sink.
    pub kind: ComponentKind,
    /// Host name.
    pub host: String,
    /// The agent's host name, or the sink's name.
    pub name: String,
    /// millrace version.
    pub version: String,
    /// Process id.
    pub pid: u32,
    /// Wall-clock ms at which the process started.
    pub started_ms: i64,
    /// Wall-clock ms of this record.
    pub time_ms: i64,
    /// How often records are published, in ms.
    pub interval_ms: u64,
    /// Running or stopped.
    pub state: RunState,
    /// An agent's figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentStatus>,
    /// A sink's figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink: Option<SinkStatus>,
}

/// An agent's figures; counters are totals since its start.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct AgentStatus {
    /// Per input.
    pub inputs: Vec<InputStatus>,
    /// Records the brokers acknowledged.
    pub delivered_total: u64,
    /// Records refused for good.
    pub delivery_errors_total: u64,
    /// Records in the producer, not yet acknowledged.
    pub in_flight: i64,
    /// Bytes waiting in the disk buffer.
    pub disk_buffer_bytes: u64,
    /// The disk buffer's size (0: none).
    pub disk_buffer_capacity_bytes: u64,
}

/// One input of an agent.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct InputStatus {
    /// Input name.
    pub name: String,
    /// `file`, `syslog`, `host_metrics`, `prometheus` or `stdin`.
    pub kind: String,
    /// Events read.
    pub events_total: u64,
    /// Events dropped because the disk buffer was full.
    pub dropped_total: u64,
    /// Bytes of its files not yet acknowledged (files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_bytes: Option<u64>,
}

/// A sink's figures; counters are totals since its start.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct SinkStatus {
    /// `elasticsearch`, `influxdb` or `file`.
    pub destination: String,
    /// Where it writes (first endpoint, URL or path).
    pub target: String,
    /// Consumer group.
    pub group: String,
    /// Topics read.
    pub topics: Vec<String>,
    /// Records the destination accepted.
    pub forwarded_total: u64,
    /// Records written again after a temporary refusal.
    pub retried_total: u64,
    /// Records sent to the dead letters.
    pub dead_lettered_total: u64,
    /// Requests that failed as a whole.
    pub write_failures_total: u64,
    /// Records after the committed offsets, over its partitions (unknown before librdkafka's
    /// first statistics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_records: Option<i64>,
    /// What the destination did lately.
    pub destination_state: DestinationState,
    /// The last failure's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl Status {
    /// The record's key: `<kind>/<host>/<name>`.
    pub fn key(&self) -> String {
        key(self.kind, &self.host, &self.name)
    }

    /// The record's value.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain structs of strings and numbers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a record from a topic (any peer may have written it): bounded, versioned.
    pub fn decode(bytes: &[u8]) -> Result<Status, StatusError> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(StatusError::TooLarge(bytes.len()));
        }
        let status: Status = serde_json::from_slice(bytes)?;
        if status.v > VERSION {
            return Err(StatusError::NewerVersion(status.v));
        }
        Ok(status)
    }

    /// Whether a running component's last record is older than [`SILENT_AFTER_INTERVALS`]
    /// intervals at `now_ms` (a stopped one is never silent).
    pub fn is_silent(&self, now_ms: i64) -> bool {
        let allowed = self.interval_ms.max(1).saturating_mul(SILENT_AFTER_INTERVALS);
        self.state == RunState::Running
            && now_ms.saturating_sub(self.time_ms) > i64::try_from(allowed).unwrap_or(i64::MAX)
    }
}

/// The key of a component's records.
pub fn key(kind: ComponentKind, host: &str, name: &str) -> String {
    format!("{}/{host}/{name}", kind.as_str())
}

/// `error` cut to [`MAX_ERROR_BYTES`] at a character boundary.
pub fn short_error(error: &str) -> String {
    let mut end = error.len().min(MAX_ERROR_BYTES);
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    error[..end].to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sink() -> Status {
        Status {
            v: VERSION,
            kind: ComponentKind::Sink,
            host: "web-1".into(),
            name: "es".into(),
            version: "0.1.0".into(),
            pid: 42,
            started_ms: 1_000,
            time_ms: 10_000,
            interval_ms: 5_000,
            state: RunState::Running,
            agent: None,
            sink: Some(SinkStatus { destination: "elasticsearch".into(), forwarded_total: 7, ..Default::default() }),
        }
    }

    #[test]
    fn a_record_reads_back_and_is_keyed_by_kind_host_and_name() {
        let status = sink();
        assert_eq!(status.key(), "sink/web-1/es");
        assert_eq!(Status::decode(&status.encode()).unwrap(), status);
    }

    #[test]
    fn hostile_or_foreign_records_are_refused() {
        assert!(matches!(Status::decode(&vec![b' '; MAX_RECORD_BYTES + 1]), Err(StatusError::TooLarge(_))));
        assert!(matches!(Status::decode(b"{\"v\":1}"), Err(StatusError::Invalid(_))));
        let mut newer = sink();
        newer.v = VERSION + 1;
        assert!(matches!(Status::decode(&newer.encode()), Err(StatusError::NewerVersion(_))));
    }

    #[test]
    fn unknown_fields_of_an_older_or_equal_version_are_ignored() {
        let mut value: serde_json::Value = serde_json::from_slice(&sink().encode()).unwrap();
        value["later_field"] = serde_json::json!({"x": 1});
        assert_eq!(Status::decode(&serde_json::to_vec(&value).unwrap()).unwrap(), sink());
    }

    #[test]
    fn silence_is_three_intervals_without_a_record_unless_stopped() {
        let mut status = sink();
        assert!(!status.is_silent(25_000), "exactly three intervals");
        assert!(status.is_silent(25_001));
        status.state = RunState::Stopped;
        assert!(!status.is_silent(1_000_000));
    }

    #[test]
    fn errors_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_ERROR_BYTES);
        let cut = short_error(&long);
        assert!(cut.len() <= MAX_ERROR_BYTES && cut.len() >= MAX_ERROR_BYTES - 1);
        assert_eq!(short_error("short"), "short");
    }
}
