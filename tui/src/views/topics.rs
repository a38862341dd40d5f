//! Topics: partitions, replication, under-replicated and offline counts, records and bytes.

use super::format::{bytes_rate, count, opt_bytes, opt_count, rate};
use super::{render_table, table_block, ALARM, WARN};
use crate::app::{topic_rows, AppState};
use crate::model::{Snapshot, TopicRow};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::widgets::Row;
use ratatui::Frame;

const HEADER: [&str; 11] = [
    "TOPIC",
    "PARTITIONS",
    "RF",
    "UNDER-REPL",
    "OFFLINE",
    "RECORDS",
    "RECORDS/S",
    "BYTES-IN/S",
    "BYTES-OUT/S",
    "SIZE",
    "NOTE",
];

/// Draws the topics table.
pub fn render(frame: &mut Frame, area: Rect, state: &AppState, snapshot: &Snapshot) {
    let filter = &state.frame().filter;
    let topics = topic_rows(snapshot, filter);
    let row = |t: &&TopicRow| {
        let (under, offline) = (t.under_replicated(), t.offline());
        let style = if offline > 0 {
            ALARM
        } else if under > 0 {
            WARN
        } else {
            Style::new()
        };
        let mut note = Vec::new();
        if offline > 0 {
            note.push("OFFLINE".to_string());
        }
        if t.internal {
            note.push("internal".into());
        }
        if let Some(e) = &t.error {
            note.push(e.clone());
        }
        Row::new(vec![
            t.name.clone(),
            t.partitions.len().to_string(),
            t.replication_factor().to_string(),
            count(under as i64),
            count(offline as i64),
            opt_count(t.records()),
            rate(t.records_rate()),
            bytes_rate(t.bytes_in_rate),
            bytes_rate(t.bytes_out_rate),
            opt_bytes(t.size_bytes()),
            note.join(", "),
        ])
        .style(style)
    };
    let widths = [
        Constraint::Min(20),
        Constraint::Length(10),
        Constraint::Length(3),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(14),
        Constraint::Length(10),
        Constraint::Length(12),
        Constraint::Length(12),
        Constraint::Length(10),
        Constraint::Fill(1),
    ];
    let block = table_block("topics", topics.len(), snapshot.topics.len(), filter);
    render_table(frame, area, (block, &HEADER, &widths), &topics, Some(state.frame().selected), row);
}
