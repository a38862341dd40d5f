//! Brokers: state, controller, part in the metadata quorum (and how far behind), partitions led,
//! bytes in/out per second.

use super::format::{bytes_rate, count};
use super::{render_table, table_block, ALARM};
use crate::app::{broker_rows, AppState};
use crate::model::{BrokerRow, BrokerState, Snapshot};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::widgets::Row;
use ratatui::Frame;

const HEADER: [&str; 11] = [
    "ID",
    "ADDRESS",
    "RACK",
    "STATE",
    "CONTROLLER",
    "QUORUM",
    "LEADS",
    "REPLICAS",
    "BYTES-IN/S",
    "BYTES-OUT/S",
    "NOTE",
];

/// Draws the brokers table.
pub fn render(frame: &mut Frame, area: Rect, state: &AppState, snapshot: &Snapshot) {
    let filter = &state.frame().filter;
    let brokers = broker_rows(snapshot, filter);
    let row = |b: &&BrokerRow| {
        let note = b.error.clone().or_else(|| b.metrics_url.is_none().then(|| "no metrics endpoint".to_string()));
        let style = if b.state == BrokerState::Up { Style::new() } else { ALARM };
        Row::new(vec![
            b.id.to_string(),
            b.address.clone(),
            b.rack.clone().unwrap_or_else(|| "-".into()),
            b.state.word().to_string(),
            if b.is_controller { "yes".into() } else { String::new() },
            b.quorum.map_or_else(|| "-".to_string(), |q| q.describe()),
            count(b.leads as i64),
            count(b.replicas as i64),
            bytes_rate(b.bytes_in_rate),
            bytes_rate(b.bytes_out_rate),
            note.unwrap_or_default(),
        ])
        .style(style)
    };
    let widths = [
        Constraint::Length(4),
        Constraint::Min(22),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(10),
        Constraint::Length(16),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(12),
        Constraint::Length(12),
        Constraint::Fill(2),
    ];
    let block = table_block("brokers", brokers.len(), snapshot.brokers.len(), filter);
    render_table(frame, area, (block, &HEADER, &widths), &brokers, Some(state.frame().selected), row);
}
