//! Partitions: leader, replicas, ISR, offsets, records per second; under-replicated rows in
//! yellow, offline ones in bold red.

use super::format::{ids, opt_bytes, opt_count, rate};
use super::{render_table, table_block, ALARM, WARN};
use crate::app::{partition_rows, AppState};
use crate::model::{PartitionRow, Snapshot};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::widgets::Row;
use ratatui::Frame;

const HEADER: [&str; 11] = [
    "TOPIC",
    "PARTITION",
    "LEADER",
    "REPLICAS",
    "ISR",
    "OFFLINE-REPLICAS",
    "LOG-START",
    "LOG-END",
    "RECORDS/S",
    "SIZE",
    "STATUS",
];

/// Draws the partitions of `topic`, or of every topic.
pub fn render(frame: &mut Frame, area: Rect, state: &AppState, snapshot: &Snapshot, topic: Option<&str>) {
    let filter = &state.frame().filter;
    let partitions = partition_rows(snapshot, topic, filter);
    let total = partition_rows(snapshot, topic, "").len();
    let row = |p: &&PartitionRow| {
        let (status, style) = if p.offline() {
            ("OFFLINE".to_string(), ALARM)
        } else if p.under_replicated() {
            ("under-replicated".to_string(), WARN)
        } else {
            ("ok".to_string(), Style::new())
        };
        let status = match &p.error {
            Some(e) => format!("{status} ({e})"),
            None => status,
        };
        Row::new(vec![
            p.topic.clone(),
            p.partition.to_string(),
            if p.offline() { "none".to_string() } else { p.leader.to_string() },
            ids(&p.replicas),
            ids(&p.isr),
            if p.offline_replicas.is_empty() { String::new() } else { ids(&p.offline_replicas) },
            opt_count(p.log_start),
            opt_count(p.log_end),
            rate(p.records_rate),
            opt_bytes(p.size_bytes),
            status,
        ])
        .style(style)
    };
    let widths = [
        Constraint::Min(16),
        Constraint::Length(9),
        Constraint::Length(6),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(16),
        Constraint::Length(12),
        Constraint::Length(14),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Fill(1),
    ];
    let title = match topic {
        Some(t) => format!("partitions of {t}"),
        None => "partitions".to_string(),
    };
    let block = table_block(&title, partitions.len(), total, filter);
    render_table(frame, area, (block, &HEADER, &widths), &partitions, Some(state.frame().selected), row);
}
