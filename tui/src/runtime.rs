//! The terminal program: a poller task refreshing every interval (never two refreshes at once)
//! and publishing snapshots, and a UI loop redrawing on keys, snapshots and a 1 s tick. The
//! terminal is put back (raw mode off, main screen) on every exit, and by a panic hook.

use crate::app::{parse_command, update, Action, AppState, Key, Msg, View};
use crate::model::Snapshot;
use crate::poller::{MetricsSource, Poll, Poller, PollerConfig};
use crate::views;
use crossterm::event::{Event, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, watch, Notify};

/// Options of `millrace top`.
#[derive(Clone, Debug)]
pub struct Options {
    /// Comma-separated HOST:PORT list.
    pub bootstrap: String,
    /// TLS and SASL towards the brokers.
    pub security: millrace_protocol::client::Security,
    /// Who the brokers take this client for and how it connects (`User:alice over SASL_SSL`).
    pub identity: String,
    /// Time between refreshes.
    pub interval: Duration,
    /// Deadline of each request.
    pub request_timeout: Duration,
    /// `--metrics`: Prometheus endpoints instead of asking brokers.
    pub metrics: Option<String>,
    /// Print one screen as text and exit.
    pub once: bool,
    /// Width of the `--once` screen.
    pub width: u16,
    /// Height of the `--once` screen.
    pub height: u16,
    /// Initial view, as a `:` command (`groups`, `p web-logs`…).
    pub view: String,
}

/// What can stop `millrace top`.
#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    /// A bad option.
    #[error("{0}")]
    Options(String),
    /// The terminal could not be set up or drawn on.
    #[error("the terminal could not be set up or drawn on")]
    Terminal(#[from] std::io::Error),
    /// `--once` could not reach the cluster (the screen with the reason was printed).
    #[error("cluster unreachable: {0}")]
    Unreachable(String),
    /// The refresh task ended.
    #[error("the refresh task stopped")]
    PollerStopped,
}

/// How often brokers are asked for their admin address.
const CONFIGS_EVERY: Duration = Duration::from_secs(30);

/// The snapshot after one refresh.
pub fn next_snapshot(previous: &Snapshot, poll: Poll, now: SystemTime) -> Snapshot {
    match poll {
        Poll::Answered(raw) => Snapshot::next(previous, raw, now),
        Poll::Unreachable { error, requests, took } => Snapshot::unreachable(previous, error, now, requests, took),
    }
}

/// Runs `millrace top`: interactive, or with `once` one screen printed to stdout.
pub async fn run(options: Options) -> Result<(), TuiError> {
    let view = parse_command(&options.view).map_err(TuiError::Options)?;
    let bootstrap: Vec<String> =
        options.bootstrap.split(',').map(str::trim).filter(|a| !a.is_empty()).map(str::to_string).collect();
    if bootstrap.is_empty() {
        return Err(TuiError::Options("--bootstrap names no broker".into()));
    }
    let metrics = match &options.metrics {
        Some(spec) => MetricsSource::parse(spec).map_err(|e| TuiError::Options(format!("--metrics: {e}")))?,
        None => MetricsSource::Discover,
    };
    let config = PollerConfig {
        bootstrap,
        metrics,
        request_timeout: options.request_timeout,
        configs_every: CONFIGS_EVERY,
        security: options.security.clone(),
    };
    let poller = Poller::new(config).map_err(TuiError::Options)?;
    if options.once {
        once(poller, &options, view).await
    } else {
        interactive(poller, &options, view).await
    }
}

/// The snapshot before the first refresh.
fn first_snapshot(options: &Options) -> Snapshot {
    Snapshot { identity: options.identity.clone(), ..Snapshot::waiting(&options.bootstrap) }
}

/// Two refreshes `interval` apart (so rates are filled in), then the screen as text.
async fn once(mut poller: Poller, options: &Options, view: View) -> Result<(), TuiError> {
    let state = AppState::new(view, SystemTime::now());
    let tail = state.tail_topic().map(str::to_string);
    let mut snapshot =
        next_snapshot(&first_snapshot(options), poller.poll_with(tail.as_deref()).await, SystemTime::now());
    if snapshot.error.is_none() {
        tokio::time::sleep(options.interval).await;
        snapshot = next_snapshot(&snapshot, poller.poll_with(tail.as_deref()).await, SystemTime::now());
    }
    let state = AppState { now: SystemTime::now(), ..state };
    print!("{}", views::render_to_text(&state, &snapshot, options.width, options.height));
    match snapshot.error {
        Some(e) => Err(TuiError::Unreachable(e)),
        None => Ok(()),
    }
}

async fn interactive(poller: Poller, options: &Options, view: View) -> Result<(), TuiError> {
    let (tx, rx) = watch::channel(Arc::new(first_snapshot(options)));
    let refresh = Arc::new(Notify::new());
    let (tail_tx, tail_rx) = watch::channel(None);
    let (actions_tx, actions_rx) = mpsc::channel(4);
    let requests = Requests { tail: tail_rx, actions: actions_rx };
    let poll_task = tokio::spawn(poll_loop(poller, options.interval, tx, refresh.clone(), requests));
    let asks = Asks { refresh: &refresh, tail: tail_tx, actions: actions_tx };
    let result = match ratatui::try_init() {
        Ok(mut terminal) => ui_loop(&mut terminal, rx, asks, view).await,
        Err(e) => Err(TuiError::Terminal(e)),
    };
    ratatui::restore();
    poll_task.abort();
    result
}

/// What the screen asks of the refresh task: the topic to tail, and confirmed changes.
struct Requests {
    tail: watch::Receiver<Option<String>>,
    actions: mpsc::Receiver<Action>,
}

/// The screen's side of [`Requests`], and the refresh-now signal.
struct Asks<'a> {
    refresh: &'a Notify,
    tail: watch::Sender<Option<String>>,
    actions: mpsc::Sender<Action>,
}

/// Refreshes every `interval` (or at once when asked, when the tailed topic changes, and after a
/// confirmed change, whose outcome the next snapshot carries), one refresh at a time, and
/// publishes each snapshot; a refresh slower than the interval delays the next instead of
/// overlapping.
async fn poll_loop(
    mut poller: Poller,
    interval: Duration,
    tx: watch::Sender<Arc<Snapshot>>,
    refresh: Arc<Notify>,
    mut requests: Requests,
) {
    let mut current = tx.borrow().clone();
    let mut notice = None;
    loop {
        let started = tokio::time::Instant::now();
        let tail = requests.tail.borrow_and_update().clone();
        let mut poll = poller.poll_with(tail.as_deref()).await;
        if let Poll::Answered(raw) = &mut poll {
            raw.notice = notice.take();
        }
        current = Arc::new(next_snapshot(&current, poll, SystemTime::now()));
        if tx.send(current.clone()).is_err() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(started + interval) => {}
            _ = refresh.notified() => {}
            _ = requests.tail.changed() => {}
            Some(action) = requests.actions.recv() => notice = Some(poller.act(&action).await),
        }
    }
}

async fn ui_loop(
    terminal: &mut ratatui::DefaultTerminal,
    mut rx: watch::Receiver<Arc<Snapshot>>,
    asks: Asks<'_>,
    view: View,
) -> Result<(), TuiError> {
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut snapshot = rx.borrow_and_update().clone();
    let mut state = AppState::new(view, SystemTime::now());
    state = update(state, Msg::Resize(terminal.size()?.height), &snapshot);
    loop {
        terminal.draw(|frame| views::render(frame, &state, &snapshot))?;
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(Event::Key(key))) => {
                    if let Some(key) = map_key(key) {
                        state = update(state, Msg::Key(key), &snapshot);
                    }
                }
                Some(Ok(Event::Resize(_, rows))) => state = update(state, Msg::Resize(rows), &snapshot),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(TuiError::Terminal(e)),
                None => return Ok(()),
            },
            changed = rx.changed() => {
                if changed.is_err() {
                    return Err(TuiError::PollerStopped);
                }
                snapshot = rx.borrow_and_update().clone();
                state = update(state, Msg::Snapshot, &snapshot);
                if let Some(notice) = &snapshot.notice {
                    state.message = Some(notice.clone());
                }
                state = update(state, Msg::Tick(SystemTime::now()), &snapshot);
            }
            _ = tick.tick() => state = update(state, Msg::Tick(SystemTime::now()), &snapshot),
            _ = terminate.recv() => return Ok(()),
        }
        if state.quit {
            return Ok(());
        }
        if state.refresh_requested {
            state.refresh_requested = false;
            asks.refresh.notify_one();
        }
        if let Some(action) = state.pending_action.take() {
            if asks.actions.try_send(action).is_err() {
                state.message = Some("a change is still being sent; try again".to_string());
            }
        }
        let tail = state.tail_topic().map(str::to_string);
        if *asks.tail.borrow() != tail {
            let _ = asks.tail.send(tail);
        }
    }
}

/// A terminal key as an app key; releases and keys without a binding are None.
fn map_key(event: KeyEvent) -> Option<Key> {
    if event.kind != KeyEventKind::Press {
        return None;
    }
    Some(match event.code {
        KeyCode::Char(c) if event.modifiers.contains(KeyModifiers::CONTROL) => Key::Ctrl(c),
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        _ => return None,
    })
}
