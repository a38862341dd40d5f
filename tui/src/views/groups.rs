//! Consumer groups: state, members, total lag, its trend and a small history.

use super::format::{mini_sparkline, total_lag};
use super::{render_table, table_block, ALARM, WARN};
use crate::app::{group_rows, AppState};
use crate::model::{GroupRow, Snapshot, Trend};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::widgets::Row;
use ratatui::Frame;

const HEADER: [&str; 10] =
    ["GROUP", "STATE", "PROTOCOL", "MEMBERS", "COORDINATOR", "PARTITIONS", "LAG", "TREND", "HISTORY", "NOTE"];

/// Refreshes shown in the HISTORY column.
const HISTORY_WIDTH: usize = 20;

/// Draws the groups table.
pub fn render(frame: &mut Frame, area: Rect, state: &AppState, snapshot: &Snapshot) {
    let filter = &state.frame().filter;
    let groups = group_rows(snapshot, filter);
    let row = |g: &&GroupRow| {
        let style = if g.error.is_some() {
            ALARM
        } else if g.trend == Trend::Growing {
            WARN
        } else {
            Style::new()
        };
        let protocol = match (g.protocol.is_empty(), g.protocol_type.is_empty()) {
            (false, _) => g.protocol.clone(),
            (true, false) => g.protocol_type.clone(),
            (true, true) => "-".to_string(),
        };
        Row::new(vec![
            g.id.clone(),
            if g.state.is_empty() { "-".to_string() } else { g.state.clone() },
            protocol,
            g.members.len().to_string(),
            g.coordinator.map_or("-".to_string(), |c| c.to_string()),
            g.partitions.len().to_string(),
            total_lag(g.total_lag, g.lag_unknown),
            g.trend.word().to_string(),
            mini_sparkline(&g.lag_history, HISTORY_WIDTH),
            match (&g.error, g.lag_unknown) {
                (Some(e), _) => e.clone(),
                (None, 0) => String::new(),
                (None, n) => format!("lag unknown on {n} partition(s)"),
            },
        ])
        .style(style)
    };
    let widths = [
        Constraint::Min(24),
        Constraint::Length(19),
        Constraint::Length(12),
        Constraint::Length(7),
        Constraint::Length(11),
        Constraint::Length(10),
        Constraint::Length(12),
        Constraint::Length(9),
        Constraint::Length(HISTORY_WIDTH as u16),
        Constraint::Fill(1),
    ];
    let block = table_block("groups", groups.len(), snapshot.groups.len(), filter);
    render_table(frame, area, (block, &HEADER, &widths), &groups, Some(state.frame().selected), row);
}
