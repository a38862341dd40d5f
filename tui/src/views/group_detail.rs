//! One group: its summary, a sparkline of total lag, members with their assignments, and lag
//! per partition.

use super::format::{count, opt_count, total_lag};
use super::{render_table, table_block, ALARM, WARN};
use crate::app::{group_partition_rows, AppState};
use crate::model::{GroupPartitionRow, MemberRow, Snapshot, Trend, HISTORY_LEN};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Sparkline};
use ratatui::Frame;

const MEMBER_HEADER: [&str; 4] = ["CLIENT-ID", "HOST", "MEMBER-ID", "ASSIGNED"];
const PARTITION_HEADER: [&str; 6] = ["TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG", "OWNER"];

/// Draws group `id`.
pub fn render(frame: &mut Frame, area: Rect, state: &AppState, snapshot: &Snapshot, id: &str) {
    let Some(group) = snapshot.group(id) else {
        let text = format!("group {id} is not in the latest refresh (deleted, or its coordinator is down)");
        frame.render_widget(Paragraph::new(Line::styled(text, WARN)).block(Block::new().borders(Borders::ALL)), area);
        return;
    };
    let member_rows = group.members.len().min(6) as u16;
    let [info, spark, members, partitions] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(6),
        Constraint::Length(member_rows + 3),
        Constraint::Min(4),
    ])
    .areas(area);

    let trend_style = match group.trend {
        Trend::Growing => WARN,
        _ => Style::new(),
    };
    let estimated = group.partitions.iter().any(|p| p.estimated && p.lag.is_some());
    let mut first = vec![
        Span::raw(format!(
            " group {}  state {}  protocol {} ({})  coordinator {}  members {}  lag ",
            group.id,
            if group.state.is_empty() { "-" } else { &group.state },
            if group.protocol.is_empty() { "-" } else { &group.protocol },
            if group.protocol_type.is_empty() { "-" } else { &group.protocol_type },
            group.coordinator.map_or("-".to_string(), |c| c.to_string()),
            group.members.len(),
        )),
        Span::raw(total_lag(group.total_lag, group.lag_unknown)),
        Span::raw("  trend "),
        Span::styled(group.trend.word(), trend_style),
    ];
    if let Some(e) = &group.error {
        first.push(Span::styled(format!("  error: {e}"), ALARM));
    }
    let second = if estimated {
        Line::styled(" ~ nothing committed: lag counted from the log start", WARN)
    } else {
        Line::raw("")
    };
    frame.render_widget(Paragraph::new(vec![Line::from(first), second]), info);

    let max = group.lag_history.iter().copied().max().unwrap_or(0);
    let spark_block = Block::new().borders(Borders::ALL).title(format!(
        " total lag, last {} of {HISTORY_LEN} refreshes (max {}) ",
        group.lag_history.len(),
        count(max as i64)
    ));
    // The newest refreshes that fit, oldest on the left.
    let width = usize::from(spark.width.saturating_sub(2));
    let data: Vec<u64> = group.lag_history[group.lag_history.len().saturating_sub(width)..].to_vec();
    frame.render_widget(Sparkline::default().block(spark_block).data(&data).style(trend_style), spark);

    let member_row = |m: &MemberRow| {
        let assigned: Vec<String> = m.assignment.iter().map(|(t, p)| format!("{t}-{p}")).collect();
        Row::new(vec![
            m.client_id.clone(),
            m.host.clone(),
            m.member_id.clone(),
            if assigned.is_empty() { "-".to_string() } else { assigned.join(",") },
        ])
    };
    let widths = [Constraint::Length(20), Constraint::Length(18), Constraint::Length(40), Constraint::Fill(1)];
    let block = table_block("members", group.members.len(), group.members.len(), "");
    render_table(frame, members, (block, &MEMBER_HEADER, &widths), &group.members, None, member_row);

    let filter = &state.frame().filter;
    let shown = group_partition_rows(group, filter);
    let partition_row = |p: &&GroupPartitionRow| {
        let lag = match (p.lag, p.estimated) {
            (Some(l), true) => format!("~{}", count(l)),
            (Some(l), false) => count(l),
            (None, _) => "-".to_string(),
        };
        Row::new(vec![
            p.topic.clone(),
            p.partition.to_string(),
            opt_count(p.committed),
            opt_count(p.log_end),
            lag,
            p.owner.clone().unwrap_or_else(|| "-".into()),
        ])
    };
    let widths = [
        Constraint::Min(20),
        Constraint::Length(9),
        Constraint::Length(14),
        Constraint::Length(14),
        Constraint::Length(12),
        Constraint::Fill(1),
    ];
    let block = table_block("lag per partition", shown.len(), group.partitions.len(), filter);
    render_table(
        frame,
        partitions,
        (block, &PARTITION_HEADER, &widths),
        &shown,
        Some(state.frame().selected),
        partition_row,
    );
}
