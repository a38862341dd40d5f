//! The last records of one topic (`t` on a topic, `:tail TOPIC`): time, partition, offset,
//! key, value and headers — a console consumer's view, the dead-letter topic's included.

use super::format::clock;
use super::{render_table, table_block, ALARM};
use crate::app::{tail_rows, AppState};
use crate::model::{Snapshot, TailRow};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Row};
use ratatui::Frame;
use std::time::{Duration, UNIX_EPOCH};

const HEADER: [&str; 6] = ["TIME", "PARTITION", "OFFSET", "KEY", "VALUE", "HEADERS"];

/// Draws the tail of `topic`, newest at the bottom and selected at first.
pub fn render(frame: &mut Frame, area: Rect, state: &AppState, snapshot: &Snapshot, topic: &str) {
    let filter = &state.frame().filter;
    let rows = tail_rows(snapshot, topic, filter);
    let error = snapshot.tail.as_ref().filter(|t| t.topic == topic).and_then(|t| t.error.clone());
    let [table_area, error_area] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(u16::from(error.is_some()))]).areas(area);
    let row = |r: &&TailRow| {
        let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(r.timestamp).unwrap_or(0));
        Row::new(vec![
            clock(at),
            r.partition.to_string(),
            r.offset.to_string(),
            r.key.clone(),
            r.value.clone(),
            r.headers.clone(),
        ])
    };
    let widths = [
        Constraint::Length(12),
        Constraint::Length(9),
        Constraint::Length(10),
        Constraint::Length(16),
        Constraint::Fill(3),
        Constraint::Fill(1),
    ];
    let total = snapshot.tail.as_ref().filter(|t| t.topic == topic).map_or(0, |t| t.records.len());
    let block = table_block(&format!("tail of {topic}"), rows.len(), total, filter);
    // Until the user moves, the newest record is selected (and so in view).
    let selected = if state.frame().selected == 0 { rows.len().saturating_sub(1) } else { state.frame().selected };
    render_table(frame, table_area, (block, &HEADER, &widths), &rows, Some(selected), row);
    if let Some(error) = error {
        frame.render_widget(Paragraph::new(Line::styled(format!(" {error}"), ALARM)), error_area);
    }
}
