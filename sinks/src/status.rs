//! Each sink's status record (the status crate): destination state, failures, dead letters and
//! lag every `sink.status_interval`, for `millrace top`'s Sinks view. One producer per process;
//! best effort: the sinks never wait for it.

use crate::metrics::SinkMetrics;
use millrace_config::sink::{Common, SinkConfig};
use millrace_status::publish::{machine_host_name, now_ms, Publisher, StatusTask};
use millrace_status::{ComponentKind, RunState, Status};
use std::sync::Arc;

/// What a status record says of a sink besides its counters.
struct Described {
    name: String,
    destination: &'static str,
    target: String,
    group: String,
    topics: Vec<String>,
}

impl Described {
    fn new(common: &Common, destination: &'static str, target: String) -> Described {
        Described {
            name: common.name.clone(),
            destination,
            target,
            group: common.group.clone(),
            topics: common.topics.clone(),
        }
    }
}

/// Starts publishing every sink of `config`, unless `sink.status_interval` is 0 or there is no
/// sink. A producer that cannot be created is logged, not fatal.
pub fn start(config: &SinkConfig, metrics: Arc<SinkMetrics>) -> Option<StatusTask> {
    let interval = config.sink.status_interval.as_duration();
    let mut sinks: Vec<Described> = Vec::new();
    for s in &config.elasticsearch {
        sinks.push(Described::new(&s.common, "elasticsearch", s.endpoints.first().cloned().unwrap_or_default()));
    }
    for s in &config.influxdb {
        sinks.push(Described::new(&s.common, "influxdb", s.url.clone()));
    }
    for s in &config.file {
        sinks.push(Described::new(&s.common, "file", s.path.display().to_string()));
    }
    if interval.is_zero() || sinks.is_empty() {
        return None;
    }
    let host = config.sink.host_name.clone().unwrap_or_else(machine_host_name);
    let properties = config.source.security.rdkafka_properties();
    let client_id = format!("millrace-sink-status-{host}");
    let publisher = match Publisher::new(&config.source.bootstrap, &properties, &client_id, interval) {
        Ok(publisher) => publisher,
        Err(e) => {
            tracing::warn!(error = %e, "the status publisher could not be created; running without it");
            return None;
        }
    };
    let (started_ms, pid) = (now_ms(), std::process::id());
    let interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
    let snapshot = move || {
        let time_ms = now_ms();
        sinks
            .iter()
            .map(|d| {
                let mut figures = metrics.status(&d.name);
                figures.destination = d.destination.to_string();
                figures.target = d.target.clone();
                figures.group = d.group.clone();
                figures.topics = d.topics.clone();
                Status {
                    v: millrace_status::record::VERSION,
                    kind: ComponentKind::Sink,
                    host: host.clone(),
                    name: d.name.clone(),
                    version: env!("CARGO_PKG_VERSION").to_string(),
                    pid,
                    started_ms,
                    time_ms,
                    interval_ms,
                    state: RunState::Running,
                    agent: None,
                    sink: Some(figures),
                }
            })
            .collect()
    };
    Some(StatusTask::spawn(publisher, snapshot))
}
