//! Rendering: pure functions of (UI state, snapshot) into a ratatui frame. The screen is a
//! header (cluster summary, refresh age and cost, and a red banner when the cluster cannot be
//! reached), the current view's table, a prompt line and key hints.

mod brokers;
mod format;
mod group_detail;
mod groups;
mod help;
mod partitions;
mod pipeline;
mod tail;
mod topics;

pub use format::{age, bytes, bytes_rate, clock, ids, mini_sparkline, rate};

use crate::app::{AppState, Mode, View};
use crate::model::Snapshot;
use ratatui::backend::TestBackend;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, TableState};
use ratatui::Frame;

/// Yellow: under-replicated, growing lag.
pub(crate) const WARN: Style = Style::new().fg(Color::Yellow);
/// Red and bold: offline, down, unreachable.
pub(crate) const ALARM: Style = Style::new().fg(Color::Red).add_modifier(Modifier::BOLD);
pub(crate) const DIM: Style = Style::new().fg(Color::DarkGray);
const KEY: Style = Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD);

/// APIs in the order a refresh sends them.
const API_ORDER: [&str; 11] = [
    "ApiVersions",
    "Metadata",
    "DescribeCluster",
    "DescribeQuorum",
    "ListOffsets",
    "ListGroups",
    "DescribeConfigs",
    "FindCoordinator",
    "DescribeGroups",
    "OffsetFetch",
    "Fetch",
];

/// Draws the whole screen.
pub fn render(frame: &mut Frame, state: &AppState, snapshot: &Snapshot) {
    let banner = banner(state, snapshot);
    let [header, banner_area, body, prompt, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(u16::from(banner.is_some())),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(Paragraph::new(header_lines(state, snapshot)), header);
    if let Some(banner) = banner {
        frame.render_widget(Paragraph::new(banner), banner_area);
    }
    match &state.frame().view {
        View::Brokers => brokers::render(frame, body, state, snapshot),
        View::Topics => topics::render(frame, body, state, snapshot),
        View::Partitions { topic } => partitions::render(frame, body, state, snapshot, topic.as_deref()),
        View::Groups => groups::render(frame, body, state, snapshot),
        View::GroupDetail { group } => group_detail::render(frame, body, state, snapshot, group),
        View::Tail { topic } => tail::render(frame, body, state, snapshot, topic),
        View::Agents => pipeline::render_agents(frame, body, state, snapshot),
        View::Sinks => pipeline::render_sinks(frame, body, state, snapshot),
        View::Help => help::render(frame, body),
    }
    frame.render_widget(Paragraph::new(prompt_line(state)), prompt);
    frame.render_widget(Paragraph::new(footer_line(state)), footer);
}

/// The screen as plain text, `width`×`height`, trailing spaces trimmed (for `--once`, tests and
/// documentation).
pub fn render_to_text(state: &AppState, snapshot: &Snapshot, width: u16, height: u16) -> String {
    let mut terminal = match ratatui::Terminal::new(TestBackend::new(width, height)) {
        Ok(t) => t,
        Err(e) => return format!("cannot render: {e}"),
    };
    if let Err(e) = terminal.draw(|frame| render(frame, state, snapshot)) {
        return format!("cannot render: {e}");
    }
    buffer_text(terminal.backend().buffer())
}

/// The text of a rendered buffer, one line per row, trailing spaces trimmed.
pub fn buffer_text(buffer: &ratatui::buffer::Buffer) -> String {
    let width = usize::from(buffer.area.width).max(1);
    let mut out = String::with_capacity(buffer.content.len() + usize::from(buffer.area.height));
    for row in buffer.content.chunks(width) {
        let mut line = String::with_capacity(width);
        for cell in row {
            line.push_str(cell.symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn header_lines(state: &AppState, snapshot: &Snapshot) -> Vec<Line<'static>> {
    let s = snapshot.summary();
    let mut first = vec![
        Span::styled(" millrace top ", Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)),
        Span::raw(format!("  cluster {}", short(snapshot.cluster_id.as_deref().unwrap_or("-"), 12))),
        Span::raw("  brokers "),
        Span::styled(
            format!("{}/{} up", s.brokers_up, s.brokers_total),
            if s.brokers_up < s.brokers_total { ALARM } else { Style::new() },
        ),
        Span::raw(format!("  controller {}", snapshot.controller.map_or("-".to_string(), |c| c.to_string()))),
        Span::raw(format!("  topics {}  partitions {}: ", s.topics, s.partitions)),
        Span::styled(
            format!("{} under-replicated", s.under_replicated),
            if s.under_replicated > 0 { WARN } else { Style::new() },
        ),
        Span::raw(", "),
        Span::styled(format!("{} offline", s.offline), if s.offline > 0 { ALARM } else { Style::new() }),
        Span::raw(format!("  groups {}: lag {}", s.groups, format::total_lag(s.total_lag, s.lag_unknown))),
        Span::raw(format!("  pipeline {}: ", s.pipeline)),
        Span::styled(format!("{} down", s.pipeline_down), if s.pipeline_down > 0 { ALARM } else { Style::new() }),
    ];
    if snapshot.taken_at.is_none() {
        first.truncate(1);
        first.push(Span::raw(format!("  {}", snapshot.source)));
    }
    let mut second = vec![Span::raw(" ")];
    match snapshot.taken_at {
        Some(taken) => second.push(Span::raw(format!(
            "refreshed {} ago ({}, {} ms)",
            age(state.now, taken),
            clock(taken),
            snapshot.took.as_millis()
        ))),
        None => second.push(Span::raw("no data yet")),
    }
    if !snapshot.identity.is_empty() {
        second.push(Span::raw(format!("  as {}", snapshot.identity)));
    }
    let requests = &snapshot.requests;
    // In the order a refresh sends them; totals first so a narrow terminal cuts only details.
    let per_api: Vec<String> = API_ORDER
        .iter()
        .filter_map(|api| requests.kafka.get(api).map(|n| format!("{api} {n}")))
        .chain(requests.kafka.iter().filter(|(api, _)| !API_ORDER.contains(api)).map(|(api, n)| format!("{api} {n}")))
        .collect();
    second.push(Span::styled(
        format!(
            "  cost {} req + {} scrape{}: {}",
            requests.kafka_total(),
            requests.http,
            if requests.http == 1 { "" } else { "s" },
            if per_api.is_empty() { "-".to_string() } else { per_api.join(", ") },
        ),
        DIM,
    ));
    vec![Line::from(first), Line::from(second)]
}

/// `text` cut to `max` characters, marked with an ellipsis.
fn short(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

fn banner(state: &AppState, snapshot: &Snapshot) -> Option<Line<'static>> {
    let style = Style::new().fg(Color::White).bg(Color::Red).add_modifier(Modifier::BOLD);
    match (&snapshot.error, snapshot.taken_at) {
        (Some(error), Some(taken)) => Some(Line::styled(
            format!(" cluster unreachable: {error} — showing data from {} ago, retrying ", age(state.now, taken)),
            style,
        )),
        (Some(error), None) => {
            Some(Line::styled(format!(" cluster unreachable: {error} — no data yet, retrying "), style))
        }
        (None, None) => Some(Line::styled(format!(" connecting to {} … ", snapshot.source), WARN)),
        (None, Some(_)) => None,
    }
}

fn prompt_line(state: &AppState) -> Line<'static> {
    match &state.mode {
        Mode::Command(text) => Line::from(vec![Span::styled(":", KEY), Span::raw(format!("{text}█"))]),
        Mode::Filter => Line::from(vec![Span::styled("/", KEY), Span::raw(format!("{}█", state.frame().filter))]),
        Mode::Confirm(question) => Line::styled(format!(" {}", question.text), WARN.add_modifier(Modifier::BOLD)),
        Mode::Normal => match &state.message {
            Some(message) => Line::styled(message.clone(), WARN),
            None => {
                let crumbs: Vec<String> = state.stack.iter().map(|f| f.view.title()).collect();
                Line::styled(format!(" {}", crumbs.join(" › ")), DIM)
            }
        },
    }
}

fn footer_line(state: &AppState) -> Line<'static> {
    let hints: &[(&str, &str)] = match (&state.mode, &state.frame().view) {
        (Mode::Command(_), _) => &[("enter", "go"), ("esc", "cancel"), ("b t p g a s", "views")],
        (Mode::Filter, _) => &[("enter", "keep filter"), ("esc", "clear")],
        (Mode::Confirm(_), _) => &[("choice", "confirm"), ("esc", "cancel")],
        (Mode::Normal, View::Topics) => &[
            (":", "view"),
            ("/", "filter"),
            ("enter", "open"),
            ("t", "tail"),
            ("E", "elect leaders"),
            ("esc", "back"),
            ("r", "refresh"),
            ("?", "help"),
            ("q", "quit"),
        ],
        (Mode::Normal, View::Groups | View::GroupDetail { .. }) => &[
            (":", "view"),
            ("/", "filter"),
            ("enter", "open"),
            ("R", "reset offsets"),
            ("esc", "back"),
            ("r", "refresh"),
            ("?", "help"),
            ("q", "quit"),
        ],
        (Mode::Normal, View::Brokers | View::Partitions { .. }) => &[
            (":", "view"),
            ("/", "filter"),
            ("j/k", "move"),
            ("E", "elect leaders"),
            ("esc", "back"),
            ("r", "refresh"),
            ("?", "help"),
            ("q", "quit"),
        ],
        (Mode::Normal, _) => &[
            (":", "view"),
            ("/", "filter"),
            ("j/k", "move"),
            ("esc", "back"),
            ("r", "refresh"),
            ("?", "help"),
            ("q", "quit"),
        ],
    };
    let mut spans = Vec::new();
    for (key, what) in hints {
        spans.push(Span::styled(format!(" <{key}>"), KEY));
        spans.push(Span::raw(format!(" {what}")));
    }
    Line::from(spans)
}

/// A framed table with a title, the row count and the filter, selection highlighted.
pub(crate) fn table_block(title: &str, shown: usize, total: usize, filter: &str) -> Block<'static> {
    let count = if shown == total { format!("[{total}]") } else { format!("[{shown}/{total}]") };
    let filter = if filter.is_empty() { String::new() } else { format!(" </{filter}>") };
    Block::new().borders(Borders::ALL).title(Line::styled(format!(" {title}{count}{filter} "), KEY))
}

/// Renders `items` as a table in `area`, `selected` highlighted and scrolled into view. Only
/// the rows that fit are built, so a long table costs what a screenful costs.
pub(crate) fn render_table<T>(
    frame: &mut Frame,
    area: Rect,
    (block, header, widths): (Block<'static>, &[&'static str], &[Constraint]),
    items: &[T],
    selected: Option<usize>,
    row: impl Fn(&T) -> Row<'static>,
) {
    // Borders and the header line take three rows.
    let visible = usize::from(area.height.saturating_sub(3)).max(1);
    let selected = selected.filter(|_| !items.is_empty()).map(|s| s.min(items.len() - 1));
    let offset = selected.map_or(0, |s| (s + 1).saturating_sub(visible));
    let end = (offset + visible).min(items.len());
    let rows: Vec<Row<'static>> = items[offset.min(end)..end].iter().map(row).collect();
    let table = Table::new(rows, widths.to_vec())
        .header(Row::new(header.to_vec()).style(Style::new().add_modifier(Modifier::BOLD)))
        .block(block)
        .column_spacing(2)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut table_state = TableState::new().with_selected(selected.map(|s| s - offset));
    frame.render_stateful_widget(table, area, &mut table_state);
}

#[cfg(test)]
mod tests;
