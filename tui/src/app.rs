//! UI state and its update: keys, snapshots and clock ticks in, a new state out. No I/O, so
//! every key binding is unit-tested.
//!
//! Keys follow k9s: `:` jumps to a view (`:brokers`, `:topics`, `:groups`, `:partitions`,
//! `:agents`, `:sinks`, or `:b` `:t` `:g` `:p` `:a` `:s`), `/` filters by substring, `j`/`k` or arrows move, `g`/`G` go to the
//! top/bottom, PgUp/PgDn page, Enter drills down, Esc clears the filter or goes back, `?` help,
//! `r` refreshes now, `q` or Ctrl-C quits. `t` tails the selected topic (`:tail TOPIC`). Changes
//! are asked first: `E` elects preferred leaders, `R` resets an idle group's offsets.

mod action;
pub use action::{Action, Question};

use crate::model::{
    AgentRow, BrokerRow, GroupPartitionRow, GroupRow, PartitionRow, SinkRow, Snapshot, TailRow, TopicRow,
};
use std::time::SystemTime;

/// A key, independent of the terminal library.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// A printable character.
    Char(char),
    /// A character with Control held.
    Ctrl(char),
    /// Enter.
    Enter,
    /// Escape.
    Esc,
    /// Backspace.
    Backspace,
    /// Up arrow.
    Up,
    /// Down arrow.
    Down,
    /// Page up.
    PageUp,
    /// Page down.
    PageDown,
    /// Home.
    Home,
    /// End.
    End,
}

/// What is on screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum View {
    /// Brokers.
    Brokers,
    /// Topics.
    Topics,
    /// Partitions of one topic, or of every topic.
    Partitions {
        /// The topic, None for all.
        topic: Option<String>,
    },
    /// Consumer groups.
    Groups,
    /// One group: members, lag per partition, lag history.
    GroupDetail {
        /// Group id.
        group: String,
    },
    /// The latest records of a topic.
    Tail {
        /// The topic.
        topic: String,
    },
    /// Agents, from their status records.
    Agents,
    /// Sinks, from their status records.
    Sinks,
    /// Key bindings.
    Help,
}

impl View {
    /// Title for the frame and breadcrumbs.
    pub fn title(&self) -> String {
        match self {
            View::Brokers => "brokers".into(),
            View::Topics => "topics".into(),
            View::Partitions { topic: Some(t) } => format!("partitions of {t}"),
            View::Partitions { topic: None } => "partitions".into(),
            View::Groups => "groups".into(),
            View::GroupDetail { group } => format!("group {group}"),
            View::Tail { topic } => format!("tail of {topic}"),
            View::Agents => "agents".into(),
            View::Sinks => "sinks".into(),
            View::Help => "help".into(),
        }
    }
}

/// One level of the navigation stack: a view with its own cursor and filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The view.
    pub view: View,
    /// Selected row among the filtered rows.
    pub selected: usize,
    /// Substring filter on names.
    pub filter: String,
}

impl Frame {
    /// A view at its first row, unfiltered.
    pub fn new(view: View) -> Frame {
        Frame { view, selected: 0, filter: String::new() }
    }
}

/// What typed keys go to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Keys are commands.
    Normal,
    /// Typing a `:` command.
    Command(String),
    /// Typing a `/` filter (applied while typing).
    Filter,
    /// A question before a change; a choice key confirms, anything else cancels.
    Confirm(Question),
}

/// The whole UI state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppState {
    /// Navigation stack; the last frame is shown. Never empty.
    pub stack: Vec<Frame>,
    /// Input mode.
    pub mode: Mode,
    /// The user asked to quit.
    pub quit: bool,
    /// The user asked for a refresh now (the runtime clears it).
    pub refresh_requested: bool,
    /// A one-line message (unknown command…), cleared by the next key.
    pub message: Option<String>,
    /// The clock, for ages ("3s ago").
    pub now: SystemTime,
    /// Rows moved by PgUp/PgDn.
    pub page: usize,
    /// A confirmed change for the runtime to send (it takes it).
    pub pending_action: Option<Action>,
}

/// Something that changes the state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// A key was pressed.
    Key(Key),
    /// A new snapshot arrived (the caller keeps it; selection is clamped to its rows).
    Snapshot,
    /// The clock ticked.
    Tick(SystemTime),
    /// The terminal has `rows` lines.
    Resize(u16),
}

impl AppState {
    /// The state at start, showing `view`.
    pub fn new(view: View, now: SystemTime) -> AppState {
        let stack = match &view {
            View::Partitions { topic: Some(_) } => vec![Frame::new(View::Topics), Frame::new(view)],
            View::GroupDetail { .. } => vec![Frame::new(View::Groups), Frame::new(view)],
            View::Tail { .. } => vec![Frame::new(View::Topics), Frame::new(view)],
            _ => vec![Frame::new(view)],
        };
        AppState {
            stack,
            mode: Mode::Normal,
            quit: false,
            refresh_requested: false,
            message: None,
            now,
            page: 20,
            pending_action: None,
        }
    }

    /// The topic whose latest records are shown, if the tail view is open.
    pub fn tail_topic(&self) -> Option<&str> {
        match &self.frame().view {
            View::Tail { topic } => Some(topic),
            _ => None,
        }
    }

    /// The frame shown.
    pub fn frame(&self) -> &Frame {
        // The stack is never empty: every pop keeps the first frame.
        &self.stack[self.stack.len() - 1]
    }

    fn frame_mut(&mut self) -> &mut Frame {
        let last = self.stack.len() - 1;
        &mut self.stack[last]
    }
}

/// Parses a `:` command (also used for `--view`): a view name, optionally followed by a topic
/// or group (`:p web-logs`, `:g sink-elasticsearch`).
pub fn parse_command(text: &str) -> Result<View, String> {
    let mut words = text.split_whitespace();
    let name = words.next().unwrap_or_default().to_lowercase();
    let argument = words.next().map(str::to_string);
    match (name.as_str(), argument) {
        ("b" | "broker" | "brokers" | "no" | "nodes", None) => Ok(View::Brokers),
        ("t" | "topic" | "topics", None) => Ok(View::Topics),
        ("t" | "topic" | "topics" | "p" | "partition" | "partitions", Some(topic)) => {
            Ok(View::Partitions { topic: Some(topic) })
        }
        ("p" | "partition" | "partitions", None) => Ok(View::Partitions { topic: None }),
        ("g" | "group" | "groups" | "cg" | "consumergroups", None) => Ok(View::Groups),
        ("g" | "group" | "groups" | "cg", Some(group)) => Ok(View::GroupDetail { group }),
        ("tail", Some(topic)) => Ok(View::Tail { topic }),
        ("a" | "agent" | "agents", None) => Ok(View::Agents),
        ("s" | "sink" | "sinks", None) => Ok(View::Sinks),
        ("h" | "help" | "?", None) => Ok(View::Help),
        _ => Err(format!(
            "unknown command `{}` (try :brokers :topics :partitions :groups :agents :sinks :tail TOPIC :help)",
            text.trim()
        )),
    }
}

fn matches(filter: &str, name: &str) -> bool {
    filter.is_empty() || name.to_lowercase().contains(&filter.to_lowercase())
}

/// Brokers shown under `filter` (id, address or state).
pub fn broker_rows<'a>(snapshot: &'a Snapshot, filter: &str) -> Vec<&'a BrokerRow> {
    snapshot.brokers.iter().filter(|b| matches(filter, &format!("{} {} {}", b.id, b.address, b.state.word()))).collect()
}

/// Topics shown under `filter`.
pub fn topic_rows<'a>(snapshot: &'a Snapshot, filter: &str) -> Vec<&'a TopicRow> {
    snapshot.topics.iter().filter(|t| matches(filter, &t.name)).collect()
}

/// Partitions of `topic` (or all) shown under `filter` (`topic-partition`, or a status word:
/// `under`, `offline`).
pub fn partition_rows<'a>(snapshot: &'a Snapshot, topic: Option<&str>, filter: &str) -> Vec<&'a PartitionRow> {
    snapshot
        .topics
        .iter()
        .filter(|t| topic.is_none_or(|name| t.name == name))
        .flat_map(|t| t.partitions.iter())
        .filter(|p| {
            if filter.is_empty() {
                return true;
            }
            let status = if p.offline() {
                " offline"
            } else if p.under_replicated() {
                " under-replicated"
            } else {
                ""
            };
            matches(filter, &format!("{}-{}{status}", p.topic, p.partition))
        })
        .collect()
}

/// Groups shown under `filter`.
pub fn group_rows<'a>(snapshot: &'a Snapshot, filter: &str) -> Vec<&'a GroupRow> {
    snapshot.groups.iter().filter(|g| matches(filter, &g.id)).collect()
}

/// The tailed records of `topic` shown under `filter` (key, value or headers).
pub fn tail_rows<'a>(snapshot: &'a Snapshot, topic: &str, filter: &str) -> Vec<&'a TailRow> {
    match &snapshot.tail {
        Some(tail) if tail.topic == topic => tail
            .records
            .iter()
            .filter(|r| filter.is_empty() || matches(filter, &format!("{} {} {}", r.key, r.value, r.headers)))
            .collect(),
        _ => Vec::new(),
    }
}

/// Agents shown under `filter` (host, state word or note).
pub fn agent_rows<'a>(snapshot: &'a Snapshot, filter: &str) -> Vec<&'a AgentRow> {
    snapshot
        .agents
        .iter()
        .filter(|a| matches(filter, &format!("{} {} {}", a.status.host, a.health.word(), a.reason)))
        .collect()
}

/// Sinks shown under `filter` (name, host, destination, state word or note).
pub fn sink_rows<'a>(snapshot: &'a Snapshot, filter: &str) -> Vec<&'a SinkRow> {
    snapshot
        .sinks
        .iter()
        .filter(|s| {
            let destination = s.status.sink.as_ref().map_or("", |k| k.destination.as_str());
            matches(
                filter,
                &format!("{} {} {destination} {} {}", s.status.name, s.status.host, s.health.word(), s.reason),
            )
        })
        .collect()
}

/// Partitions of a group shown under `filter`.
pub fn group_partition_rows<'a>(group: &'a GroupRow, filter: &str) -> Vec<&'a GroupPartitionRow> {
    group
        .partitions
        .iter()
        .filter(|p| filter.is_empty() || matches(filter, &format!("{}-{}", p.topic, p.partition)))
        .collect()
}

/// Rows in `frame` under its filter.
pub fn row_count(frame: &Frame, snapshot: &Snapshot) -> usize {
    match &frame.view {
        View::Brokers => broker_rows(snapshot, &frame.filter).len(),
        View::Topics => topic_rows(snapshot, &frame.filter).len(),
        View::Partitions { topic } => partition_rows(snapshot, topic.as_deref(), &frame.filter).len(),
        View::Groups => group_rows(snapshot, &frame.filter).len(),
        View::GroupDetail { group } => {
            snapshot.group(group).map_or(0, |g| group_partition_rows(g, &frame.filter).len())
        }
        View::Tail { topic } => tail_rows(snapshot, topic, &frame.filter).len(),
        View::Agents => agent_rows(snapshot, &frame.filter).len(),
        View::Sinks => sink_rows(snapshot, &frame.filter).len(),
        View::Help => 0,
    }
}

/// The view Enter opens from the selected row of `frame`.
fn drill_down(frame: &Frame, snapshot: &Snapshot) -> Option<View> {
    match &frame.view {
        View::Topics => topic_rows(snapshot, &frame.filter)
            .get(frame.selected)
            .map(|t| View::Partitions { topic: Some(t.name.clone()) }),
        View::Groups => {
            group_rows(snapshot, &frame.filter).get(frame.selected).map(|g| View::GroupDetail { group: g.id.clone() })
        }
        _ => None,
    }
}

/// The state after `msg`; `snapshot` is what is shown (for row counts and drill-down).
pub fn update(mut state: AppState, msg: Msg, snapshot: &Snapshot) -> AppState {
    match msg {
        Msg::Key(key) => {
            state.message = None;
            state = match state.mode.clone() {
                Mode::Normal => normal_key(state, key, snapshot),
                Mode::Command(text) => command_key(state, key, text),
                Mode::Filter => filter_key(state, key),
                Mode::Confirm(question) => confirm_key(state, key, question),
            };
        }
        Msg::Snapshot => {}
        Msg::Tick(now) => state.now = now,
        // Header, footer and table header take about 8 lines.
        Msg::Resize(rows) => state.page = usize::from(rows.saturating_sub(8)).max(1),
    }
    clamp(&mut state, snapshot);
    state
}

fn clamp(state: &mut AppState, snapshot: &Snapshot) {
    let rows = row_count(state.frame(), snapshot);
    let frame = state.frame_mut();
    frame.selected = frame.selected.min(rows.saturating_sub(1));
}

fn jump(state: &mut AppState, view: View) {
    let now = state.now;
    let page = state.page;
    *state = AppState { page, ..AppState::new(view, now) };
}

fn normal_key(mut state: AppState, key: Key, snapshot: &Snapshot) -> AppState {
    let rows = row_count(state.frame(), snapshot);
    let page = state.page;
    match key {
        Key::Char('q') | Key::Ctrl('c') => state.quit = true,
        Key::Char(':') => state.mode = Mode::Command(String::new()),
        Key::Char('/') => {
            state.mode = Mode::Filter;
            let frame = state.frame_mut();
            frame.filter.clear();
            frame.selected = 0;
        }
        Key::Char('?') => {
            if state.frame().view == View::Help {
                if state.stack.len() > 1 {
                    state.stack.pop();
                }
            } else {
                state.stack.push(Frame::new(View::Help));
            }
        }
        Key::Char('r') => state.refresh_requested = true,
        Key::Char(c @ ('E' | 'R')) => match action::ask(state.frame(), snapshot, c) {
            Some(Ok(question)) => state.mode = Mode::Confirm(question),
            Some(Err(why)) => state.message = Some(why),
            None => {}
        },
        Key::Char('t') => {
            let topic = match &state.frame().view {
                View::Topics => {
                    topic_rows(snapshot, &state.frame().filter).get(state.frame().selected).map(|t| t.name.clone())
                }
                View::Partitions { topic } => topic.clone(),
                _ => None,
            };
            if let Some(topic) = topic {
                state.stack.push(Frame::new(View::Tail { topic }));
                state.refresh_requested = true;
            }
        }
        Key::Char('j') | Key::Down => {
            let frame = state.frame_mut();
            frame.selected = (frame.selected + 1).min(rows.saturating_sub(1));
        }
        Key::Char('k') | Key::Up => {
            let frame = state.frame_mut();
            frame.selected = frame.selected.saturating_sub(1);
        }
        Key::Char('g') | Key::Home => state.frame_mut().selected = 0,
        Key::Char('G') | Key::End => state.frame_mut().selected = rows.saturating_sub(1),
        Key::PageDown | Key::Ctrl('f') => {
            let frame = state.frame_mut();
            frame.selected = (frame.selected + page).min(rows.saturating_sub(1));
        }
        Key::PageUp | Key::Ctrl('b') => {
            let frame = state.frame_mut();
            frame.selected = frame.selected.saturating_sub(page);
        }
        Key::Enter => {
            if let Some(view) = drill_down(state.frame(), snapshot) {
                state.stack.push(Frame::new(view));
            }
        }
        Key::Esc => {
            if !state.frame().filter.is_empty() {
                state.frame_mut().filter.clear();
            } else if state.stack.len() > 1 {
                state.stack.pop();
            }
        }
        _ => {}
    }
    state
}

fn command_key(mut state: AppState, key: Key, mut text: String) -> AppState {
    match key {
        Key::Esc => state.mode = Mode::Normal,
        Key::Ctrl('c') => state.quit = true,
        Key::Enter => {
            state.mode = Mode::Normal;
            match text.trim() {
                "" => {}
                "q" | "quit" | "q!" => state.quit = true,
                command => match parse_command(command) {
                    Ok(view) => jump(&mut state, view),
                    Err(e) => state.message = Some(e),
                },
            }
        }
        Key::Backspace => {
            if text.pop().is_none() {
                state.mode = Mode::Normal;
            } else {
                state.mode = Mode::Command(text);
            }
        }
        Key::Char(c) => {
            text.push(c);
            state.mode = Mode::Command(text);
        }
        _ => {}
    }
    state
}

fn confirm_key(mut state: AppState, key: Key, question: Question) -> AppState {
    state.mode = Mode::Normal;
    let chosen = match key {
        Key::Char(c) => question.choices.into_iter().find(|(k, _)| *k == c).map(|(_, action)| action),
        Key::Ctrl('c') => {
            state.quit = true;
            None
        }
        _ => None,
    };
    match chosen {
        Some(action) => {
            state.message = Some("sent; the result shows after the next refresh".to_string());
            state.pending_action = Some(action);
        }
        None => state.message = Some("cancelled".to_string()),
    }
    state
}

fn filter_key(mut state: AppState, key: Key) -> AppState {
    match key {
        Key::Esc => {
            state.mode = Mode::Normal;
            state.frame_mut().filter.clear();
        }
        Key::Enter => state.mode = Mode::Normal,
        Key::Ctrl('c') => state.quit = true,
        Key::Backspace => {
            state.frame_mut().filter.pop();
        }
        Key::Char(c) => {
            let frame = state.frame_mut();
            frame.filter.push(c);
            frame.selected = 0;
        }
        _ => {}
    }
    state
}

#[cfg(test)]
mod tests;
