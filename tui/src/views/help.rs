//! Key bindings.

use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

const KEYS: [(&str, &str); 22] = [
    (":brokers  :b", "brokers: state, controller, partitions led, bytes in/out per second"),
    (":topics   :t", "topics: partitions, under-replicated, offline, records/s, bytes/s"),
    (":partitions :p [TOPIC]", "partitions: leader, replicas, ISR, offsets, records/s"),
    (":groups   :g [GROUP]", "consumer groups: state, members, lag and its trend"),
    (":agents   :a", "agents (from __millrace_status): inputs, events/s, file lag, buffer, drops"),
    (":sinks    :s", "sinks (from __millrace_status): destination, written/s, lag, failures, dead letters"),
    ("enter", "open the selected topic or group"),
    ("t   :tail TOPIC", "the latest records of the selected topic (key, value, headers)"),
    ("E", "elect preferred leaders (all, the selected topic, or the topic shown), asked first"),
    ("R", "reset the selected group's offsets to latest or earliest (empty groups), asked first"),
    ("esc", "clear the filter, else go back"),
    ("/", "filter rows by substring (partitions also by `under`, `offline`)"),
    ("j k ↑ ↓", "move"),
    ("g G", "first / last row"),
    ("PgUp PgDn", "page"),
    ("r", "refresh now"),
    ("?", "this help (again to close)"),
    ("q  ctrl-c", "quit"),
    ("", ""),
    ("yellow", "under-replicated partition, growing lag"),
    ("red", "OFFLINE partition (no leader), broker down, cluster unreachable"),
    ("red (pipeline)", "agent or sink silent for 3 intervals (killed, hung, cut off), destination failing"),
];

/// Draws the key bindings.
pub fn render(frame: &mut Frame, area: Rect) {
    let lines: Vec<Line<'static>> = KEYS.iter().map(|(key, what)| Line::raw(format!("  {key:<26}{what}"))).collect();
    frame.render_widget(Paragraph::new(lines).block(Block::new().borders(Borders::ALL).title(" help ")), area);
}
