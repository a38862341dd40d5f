//! The pipeline from its own status records: agents (inputs, events, file lag, disk buffer,
//! drops) and sinks (destination, written, lag, failures, dead letters). Red: silent or its
//! destination failing; yellow: drops, dead letters, a filling buffer; grey: stopped.

use super::format::{count, opt_bytes, opt_count, rate};
use super::{render_table, table_block, ALARM, DIM, WARN};
use crate::app::{agent_rows, sink_rows, AppState};
use crate::model::{AgentRow, Health, SinkRow, Snapshot};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::widgets::Row;
use ratatui::Frame;

const AGENT_HEADER: [&str; 11] =
    ["HOST", "STATE", "INPUTS", "EVENTS/S", "SENT/S", "FILE LAG", "BUFFER", "DROPPED", "SEEN", "VERSION", "NOTE"];
const SINK_HEADER: [&str; 10] =
    ["SINK", "HOST", "DESTINATION", "STATE", "WRITTEN/S", "LAG", "FAILURES", "DLQ/S", "SEEN", "NOTE (or target)"];

fn style(health: Health) -> Style {
    match health {
        Health::Ok => Style::new(),
        Health::Warning => WARN,
        Health::Down => ALARM,
        Health::Stopped => DIM,
    }
}

/// Seconds since a record written at `time_ms`, by the screen's clock.
fn seen(state: &AppState, time_ms: i64) -> String {
    let now_ms = state.now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    format!("{}s ago", (now_ms - time_ms).max(0) / 1000)
}

/// Draws the agents table.
pub fn render_agents(frame: &mut Frame, area: Rect, state: &AppState, snapshot: &Snapshot) {
    let filter = &state.frame().filter;
    let agents = agent_rows(snapshot, filter);
    let row = |a: &&AgentRow| {
        let figures = a.status.agent.clone().unwrap_or_default();
        Row::new(vec![
            a.status.host.clone(),
            a.health.word().to_string(),
            figures.inputs.len().to_string(),
            rate(a.events_rate),
            rate(a.delivered_rate),
            opt_bytes(a.lag_bytes),
            a.buffer_fill.map_or("-".to_string(), |f| format!("{:.0}%", f * 100.0)),
            count(i64::try_from(a.dropped_total).unwrap_or(i64::MAX)),
            seen(state, a.status.time_ms),
            a.status.version.clone(),
            a.reason.clone(),
        ])
        .style(style(a.health))
    };
    let widths = [
        Constraint::Length(18),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Fill(1),
    ];
    let block = table_block("agents", agents.len(), snapshot.agents.len(), filter);
    render_table(frame, area, (block, &AGENT_HEADER, &widths), &agents, Some(state.frame().selected), row);
}

/// Draws the sinks table.
pub fn render_sinks(frame: &mut Frame, area: Rect, state: &AppState, snapshot: &Snapshot) {
    let filter = &state.frame().filter;
    let sinks = sink_rows(snapshot, filter);
    let row = |s: &&SinkRow| {
        let figures = s.status.sink.clone().unwrap_or_default();
        Row::new(vec![
            s.status.name.clone(),
            s.status.host.clone(),
            figures.destination.clone(),
            s.health.word().to_string(),
            rate(s.forwarded_rate),
            opt_count(figures.lag_records),
            count(i64::try_from(figures.write_failures_total).unwrap_or(i64::MAX)),
            rate(s.dead_letter_rate),
            seen(state, s.status.time_ms),
            if s.reason.is_empty() { figures.target.clone() } else { s.reason.clone() },
        ])
        .style(style(s.health))
    };
    let widths = [
        Constraint::Length(16),
        Constraint::Length(12),
        Constraint::Length(13),
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(9),
        Constraint::Fill(1),
    ];
    let block = table_block("sinks", sinks.len(), snapshot.sinks.len(), filter);
    render_table(frame, area, (block, &SINK_HEADER, &widths), &sinks, Some(state.frame().selected), row);
}
