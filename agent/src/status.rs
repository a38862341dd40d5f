//! The agent's status records (the status crate): its inputs, lag, disk buffer and drops every
//! `agent.status_interval`, for `millrace top`'s Agents view. Best effort: the pipeline never
//! waits for them.

use millrace_config::agent::AgentConfig;
use millrace_status::publish::{now_ms, Publisher, StatusTask};
use millrace_status::{AgentStatus, ComponentKind, RunState, Status};

/// Starts publishing `figures()` as host `host`, unless `agent.status_interval` is 0. A producer
/// that cannot be created is logged, not fatal.
pub fn start(
    config: &AgentConfig,
    host: &str,
    mut figures: impl FnMut() -> AgentStatus + Send + 'static,
) -> Option<StatusTask> {
    let interval = config.agent.status_interval.as_duration();
    if interval.is_zero() {
        return None;
    }
    let properties = config.output.security.rdkafka_properties();
    let client_id = format!("millrace-agent-status-{host}");
    let publisher = match Publisher::new(&config.output.bootstrap, &properties, &client_id, interval) {
        Ok(publisher) => publisher,
        Err(e) => {
            tracing::warn!(error = %e, "the status publisher could not be created; running without it");
            return None;
        }
    };
    let (host, started_ms, pid) = (host.to_string(), now_ms(), std::process::id());
    let interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
    let snapshot = move || {
        vec![Status {
            v: millrace_status::record::VERSION,
            kind: ComponentKind::Agent,
            host: host.clone(),
            name: host.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid,
            started_ms,
            time_ms: now_ms(),
            interval_ms,
            state: RunState::Running,
            agent: Some(figures()),
            sink: None,
        }]
    };
    Some(StatusTask::spawn(publisher, snapshot))
}
