//! Agents and sinks as shown, from their status records (`__millrace_status`): health, rates
//! between two records, and why a row is not green. Pure: the time is given.

use millrace_status::{DestinationState, RunState, Status};

/// Stopped components stay listed this long after their last record.
pub const STOPPED_SHOWN_MS: i64 = 60 * 60 * 1000;
/// A disk buffer this full is a warning.
pub const BUFFER_WARNING: f64 = 0.8;

/// How a component is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    /// Delivering.
    Ok,
    /// Delivering, but something needs a look (drops, dead letters, a buffer filling).
    Warning,
    /// Not delivering: silent (killed, hung, cut off) or its destination failing.
    Down,
    /// Stopped cleanly.
    Stopped,
}

impl Health {
    /// The word shown.
    pub fn word(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Warning => "warning",
            Health::Down => "down",
            Health::Stopped => "stopped",
        }
    }
}

/// One agent.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentRow {
    /// Its latest record.
    pub status: Status,
    /// Health.
    pub health: Health,
    /// Why it is not ok (empty when ok).
    pub reason: String,
    /// Events read per second over its inputs.
    pub events_rate: Option<f64>,
    /// Records acknowledged per second.
    pub delivered_rate: Option<f64>,
    /// Bytes of tailed files not yet acknowledged, over its file inputs.
    pub lag_bytes: Option<u64>,
    /// Disk buffer fill, 0..=1 (None: no disk buffer).
    pub buffer_fill: Option<f64>,
    /// Events dropped since it started.
    pub dropped_total: u64,
}

/// One sink.
#[derive(Clone, Debug, PartialEq)]
pub struct SinkRow {
    /// Its latest record.
    pub status: Status,
    /// Health.
    pub health: Health,
    /// Why it is not ok (empty when ok).
    pub reason: String,
    /// Records written per second.
    pub forwarded_rate: Option<f64>,
    /// Records dead-lettered per second.
    pub dead_letter_rate: Option<f64>,
}

fn rate(previous: Option<&Status>, current: &Status, counter: impl Fn(&Status) -> Option<u64>) -> Option<f64> {
    let previous = previous?;
    let seconds = (current.time_ms - previous.time_ms) as f64 / 1000.0;
    let (before, now) = (counter(previous)?, counter(current)?);
    (seconds > 0.0 && now >= before).then(|| (now - before) as f64 / seconds)
}

/// Whether `counter` grew between the two records.
fn rose(previous: Option<&Status>, current: &Status, counter: impl Fn(&Status) -> Option<u64>) -> bool {
    match (previous.and_then(&counter), counter(current)) {
        (Some(before), Some(now)) => now > before,
        _ => false,
    }
}

fn age(ms: i64) -> String {
    match ms / 1000 {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s => format!("{}h", s / 3600),
    }
}

/// Stopped or silent, with the reason; None when it is running and heard from.
fn liveness(status: &Status, now_ms: i64) -> Option<(Health, String)> {
    let age_ms = now_ms - status.time_ms;
    if status.state == RunState::Stopped {
        return Some((Health::Stopped, format!("stopped {} ago", age(age_ms))));
    }
    status.is_silent(now_ms).then(|| (Health::Down, format!("silent for {}", age(age_ms))))
}

/// Rows of the agents in `statuses`; `previous` gives rates (a row whose record did not change
/// keeps its rates).
pub fn agents(previous: &[AgentRow], statuses: &[Status], now_ms: i64) -> Vec<AgentRow> {
    let mut rows: Vec<AgentRow> = statuses
        .iter()
        .filter(|s| s.agent.is_some() && shown(s, now_ms))
        .map(|status| {
            let before = previous.iter().find(|r| r.status.key() == status.key());
            let unchanged = before.filter(|b| b.status.time_ms == status.time_ms);
            let before_status = before.map(|b| &b.status);
            let figures = status.agent.clone().unwrap_or_default();
            let events = |s: &Status| s.agent.as_ref().map(|a| a.inputs.iter().map(|i| i.events_total).sum());
            let dropped = |s: &Status| s.agent.as_ref().map(|a| a.inputs.iter().map(|i| i.dropped_total).sum());
            let delivered = |s: &Status| s.agent.as_ref().map(|a| a.delivered_total);
            let errors = |s: &Status| s.agent.as_ref().map(|a| a.delivery_errors_total);
            let buffer_fill = (figures.disk_buffer_capacity_bytes > 0)
                .then(|| figures.disk_buffer_bytes as f64 / figures.disk_buffer_capacity_bytes as f64);
            let lags: Vec<u64> = figures.inputs.iter().filter_map(|i| i.lag_bytes).collect();
            let (health, reason) = liveness(status, now_ms).unwrap_or_else(|| {
                if buffer_fill.is_some_and(|f| f >= BUFFER_WARNING) {
                    let percent = buffer_fill.unwrap_or_default() * 100.0;
                    (Health::Warning, format!("disk buffer {percent:.0}% full"))
                } else if rose(before_status, status, dropped) {
                    (Health::Warning, "dropping events (disk buffer full)".to_string())
                } else if rose(before_status, status, errors) {
                    (Health::Warning, "records refused by the brokers".to_string())
                } else {
                    (Health::Ok, String::new())
                }
            });
            AgentRow {
                health,
                reason,
                events_rate: unchanged.map_or_else(|| rate(before_status, status, events), |b| b.events_rate),
                delivered_rate: unchanged.map_or_else(|| rate(before_status, status, delivered), |b| b.delivered_rate),
                lag_bytes: (!lags.is_empty()).then(|| lags.iter().sum()),
                buffer_fill,
                dropped_total: dropped(status).unwrap_or_default(),
                status: status.clone(),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        (a.status.host.as_str(), a.status.name.as_str()).cmp(&(b.status.host.as_str(), b.status.name.as_str()))
    });
    rows
}

/// Rows of the sinks in `statuses`; `previous` gives rates.
pub fn sinks(previous: &[SinkRow], statuses: &[Status], now_ms: i64) -> Vec<SinkRow> {
    let mut rows: Vec<SinkRow> = statuses
        .iter()
        .filter(|s| s.sink.is_some() && shown(s, now_ms))
        .map(|status| {
            let before = previous.iter().find(|r| r.status.key() == status.key());
            let unchanged = before.filter(|b| b.status.time_ms == status.time_ms);
            let before_status = before.map(|b| &b.status);
            let figures = status.sink.clone().unwrap_or_default();
            let forwarded = |s: &Status| s.sink.as_ref().map(|k| k.forwarded_total);
            let dead = |s: &Status| s.sink.as_ref().map(|k| k.dead_lettered_total);
            let (health, reason) = liveness(status, now_ms).unwrap_or_else(|| {
                if figures.destination_state == DestinationState::Failing {
                    let error = figures.last_error.clone().unwrap_or_default();
                    (Health::Down, format!("{} failing: {error}", figures.destination))
                } else if rose(before_status, status, dead) {
                    (Health::Warning, "dead-lettering records".to_string())
                } else {
                    (Health::Ok, String::new())
                }
            });
            SinkRow {
                health,
                reason,
                forwarded_rate: unchanged.map_or_else(|| rate(before_status, status, forwarded), |b| b.forwarded_rate),
                dead_letter_rate: unchanged.map_or_else(|| rate(before_status, status, dead), |b| b.dead_letter_rate),
                status: status.clone(),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        (a.status.name.as_str(), a.status.host.as_str()).cmp(&(b.status.name.as_str(), b.status.host.as_str()))
    });
    rows
}

/// Running components always; stopped ones for [`STOPPED_SHOWN_MS`].
fn shown(status: &Status, now_ms: i64) -> bool {
    status.state == RunState::Running || now_ms - status.time_ms <= STOPPED_SHOWN_MS
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use millrace_status::{AgentStatus, ComponentKind, InputStatus, SinkStatus};

    fn agent(time_ms: i64, events: u64, dropped: u64, buffered: u64) -> Status {
        Status {
            v: 1,
            kind: ComponentKind::Agent,
            host: "web-1".into(),
            name: "web-1".into(),
            version: "0.1.0".into(),
            pid: 1,
            started_ms: 0,
            time_ms,
            interval_ms: 5_000,
            state: RunState::Running,
            agent: Some(AgentStatus {
                inputs: vec![InputStatus {
                    name: "app".into(),
                    kind: "file".into(),
                    events_total: events,
                    dropped_total: dropped,
                    lag_bytes: Some(10),
                }],
                delivered_total: events,
                disk_buffer_bytes: buffered,
                disk_buffer_capacity_bytes: 100,
                ..AgentStatus::default()
            }),
            sink: None,
        }
    }

    fn sink(time_ms: i64, forwarded: u64, state: DestinationState) -> Status {
        Status {
            kind: ComponentKind::Sink,
            name: "es".into(),
            agent: None,
            sink: Some(SinkStatus {
                destination: "elasticsearch".into(),
                forwarded_total: forwarded,
                destination_state: state,
                last_error: Some("503 Service Unavailable".into()),
                ..SinkStatus::default()
            }),
            ..agent(time_ms, 0, 0, 0)
        }
    }

    #[test]
    fn an_agent_delivering_is_ok_with_rates_between_its_records() {
        let first = agents(&[], &[agent(10_000, 100, 0, 0)], 11_000);
        assert_eq!((first[0].health, first[0].events_rate), (Health::Ok, None));
        let second = agents(&first, &[agent(15_000, 600, 0, 0)], 16_000);
        assert_eq!(second[0].events_rate, Some(100.0));
        assert_eq!(second[0].lag_bytes, Some(10));
        let same = agents(&second, &[agent(15_000, 600, 0, 0)], 17_000);
        assert_eq!(same[0].events_rate, Some(100.0), "kept while no new record came");
    }

    #[test]
    fn an_agent_silent_for_three_intervals_is_down() {
        let rows = agents(&[], &[agent(10_000, 1, 0, 0)], 25_001);
        assert_eq!(rows[0].health, Health::Down);
        assert_eq!(rows[0].reason, "silent for 15s");
    }

    #[test]
    fn drops_and_a_filling_buffer_are_warnings() {
        let first = agents(&[], &[agent(10_000, 1, 0, 10)], 10_000);
        let dropping = agents(&first, &[agent(15_000, 2, 3, 10)], 15_000);
        assert_eq!(
            (dropping[0].health, dropping[0].reason.as_str()),
            (Health::Warning, "dropping events (disk buffer full)")
        );
        let full = agents(&[], &[agent(10_000, 1, 0, 85)], 10_000);
        assert_eq!((full[0].health, full[0].reason.as_str()), (Health::Warning, "disk buffer 85% full"));
    }

    #[test]
    fn a_sink_whose_destination_fails_is_down_and_a_killed_one_goes_silent() {
        let failing = sinks(&[], &[sink(10_000, 5, DestinationState::Failing)], 10_000);
        assert_eq!(failing[0].health, Health::Down);
        assert_eq!(failing[0].reason, "elasticsearch failing: 503 Service Unavailable");
        let ok = sinks(&[], &[sink(10_000, 5, DestinationState::Ok)], 10_000);
        assert_eq!(ok[0].health, Health::Ok);
        let killed = sinks(&ok, &[sink(10_000, 5, DestinationState::Ok)], 40_000);
        assert_eq!((killed[0].health, killed[0].reason.as_str()), (Health::Down, "silent for 30s"));
    }

    #[test]
    fn stopped_components_are_shown_for_an_hour_then_left_out() {
        let mut stopped = sink(10_000, 5, DestinationState::Ok);
        stopped.state = RunState::Stopped;
        let rows = sinks(&[], std::slice::from_ref(&stopped), 70_000);
        assert_eq!((rows[0].health, rows[0].reason.as_str()), (Health::Stopped, "stopped 60s ago"));
        assert!(sinks(&[], &[stopped], 10_000 + STOPPED_SHOWN_MS + 1).is_empty());
    }
}
