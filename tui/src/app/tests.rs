use super::*;
use crate::fixture;

fn press(state: AppState, keys: &[Key], snapshot: &Snapshot) -> AppState {
    keys.iter().fold(state, |s, k| update(s, Msg::Key(*k), snapshot))
}

fn typed(text: &str) -> Vec<Key> {
    text.chars().map(Key::Char).collect()
}

fn start(view: View) -> AppState {
    AppState::new(view, fixture::time(0))
}

#[test]
fn colon_commands_jump_between_views() {
    let snapshot = fixture::small(2);
    let mut keys = vec![Key::Char(':')];
    keys.extend(typed("groups"));
    keys.push(Key::Enter);
    let state = press(start(View::Brokers), &keys, &snapshot);
    assert_eq!(state.frame().view, View::Groups);
    assert_eq!(state.mode, Mode::Normal);
    for (command, view) in [
        ("b", View::Brokers),
        ("t", View::Topics),
        ("p", View::Partitions { topic: None }),
        ("p web-logs", View::Partitions { topic: Some("web-logs".into()) }),
        ("g audit", View::GroupDetail { group: "audit".into() }),
        ("help", View::Help),
    ] {
        let mut keys = vec![Key::Char(':')];
        keys.extend(typed(command));
        keys.push(Key::Enter);
        let state = press(start(View::Groups), &keys, &snapshot);
        assert_eq!(state.frame().view, view, ":{command}");
    }
}

#[test]
fn unknown_commands_say_so_and_esc_cancels() {
    let snapshot = fixture::small(2);
    let mut keys = vec![Key::Char(':')];
    keys.extend(typed("nope"));
    keys.push(Key::Enter);
    let state = press(start(View::Topics), &keys, &snapshot);
    assert_eq!(state.frame().view, View::Topics);
    assert!(state.message.as_deref().unwrap_or_default().contains("unknown command `nope`"));
    let state = press(state, &[Key::Char(':'), Key::Char('g'), Key::Esc], &snapshot);
    assert_eq!((state.frame().view.clone(), state.mode.clone()), (View::Topics, Mode::Normal));
    assert_eq!(state.message, None, "a key clears the message");
}

#[test]
fn moving_stays_within_the_rows() {
    let snapshot = fixture::small(2);
    let state = start(View::Partitions { topic: None });
    assert_eq!(row_count(state.frame(), &snapshot), 5);
    let state = press(state, &[Key::Char('j'), Key::Down, Key::Char('j')], &snapshot);
    assert_eq!(state.frame().selected, 3);
    let state = press(state, &[Key::Down, Key::Down, Key::Down], &snapshot);
    assert_eq!(state.frame().selected, 4, "stops at the last row");
    let state = press(state, &[Key::Char('g')], &snapshot);
    assert_eq!(state.frame().selected, 0);
    let state = press(state, &[Key::Char('G')], &snapshot);
    assert_eq!(state.frame().selected, 4);
    let state = press(state, &[Key::Char('k'), Key::Up], &snapshot);
    assert_eq!(state.frame().selected, 2);
    let state = update(state, Msg::Resize(10), &snapshot);
    assert_eq!(state.page, 2);
    let state = press(state, &[Key::PageUp], &snapshot);
    assert_eq!(state.frame().selected, 0);
    let state = press(state, &[Key::PageDown, Key::PageDown, Key::PageDown], &snapshot);
    assert_eq!(state.frame().selected, 4);
}

#[test]
fn filter_narrows_rows_and_esc_clears_it() {
    let snapshot = fixture::small(2);
    let mut keys = vec![Key::Char('/')];
    keys.extend(typed("web"));
    let state = press(start(View::Partitions { topic: None }), &keys, &snapshot);
    assert_eq!(state.mode, Mode::Filter);
    assert_eq!(row_count(state.frame(), &snapshot), 3);
    let state = press(state, &[Key::Enter], &snapshot);
    assert_eq!((state.mode.clone(), state.frame().filter.as_str()), (Mode::Normal, "web"));
    // In normal mode, j moves instead of typing.
    let state = press(state, &[Key::Char('j')], &snapshot);
    assert_eq!(state.frame().selected, 1);
    let state = press(state, &[Key::Esc], &snapshot);
    assert_eq!(state.frame().filter, "");
    assert_eq!(row_count(state.frame(), &snapshot), 5);
    // Status words filter too.
    let state =
        press(start(View::Partitions { topic: None }), &[Key::Char('/'), Key::Char('o'), Key::Char('f')], &snapshot);
    assert_eq!(partition_rows(&snapshot, None, &state.frame().filter)[0].topic, "metrics");
    // Backspace edits; Esc while typing clears.
    let state = press(state, &[Key::Backspace, Key::Backspace, Key::Esc], &snapshot);
    assert_eq!((state.mode.clone(), state.frame().filter.as_str()), (Mode::Normal, ""));
}

#[test]
fn enter_drills_down_and_esc_goes_back_to_the_same_row() {
    let snapshot = fixture::small(2);
    // Topics sorted by name: metrics, web-logs.
    let state = press(start(View::Topics), &[Key::Char('j'), Key::Enter], &snapshot);
    assert_eq!(state.frame().view, View::Partitions { topic: Some("web-logs".into()) });
    assert_eq!(row_count(state.frame(), &snapshot), 3);
    let state = press(state, &[Key::Esc], &snapshot);
    assert_eq!(state.frame().view, View::Topics);
    assert_eq!(state.frame().selected, 1);
    // Groups sorted: audit, sink-elasticsearch, sink-influxdb.
    let state = press(start(View::Groups), &[Key::Char('j'), Key::Enter], &snapshot);
    assert_eq!(state.frame().view, View::GroupDetail { group: "sink-elasticsearch".into() });
    // Esc at the root stays.
    let state = press(start(View::Brokers), &[Key::Esc, Key::Enter], &snapshot);
    assert_eq!(state.stack.len(), 1);
}

#[test]
fn help_toggles_quit_and_refresh() {
    let snapshot = fixture::small(2);
    let state = press(start(View::Topics), &[Key::Char('?')], &snapshot);
    assert_eq!(state.frame().view, View::Help);
    let state = press(state, &[Key::Char('?')], &snapshot);
    assert_eq!(state.frame().view, View::Topics);
    let state = press(state, &[Key::Char('r')], &snapshot);
    assert!(state.refresh_requested);
    assert!(press(start(View::Topics), &[Key::Char('q')], &snapshot).quit);
    assert!(press(start(View::Topics), &[Key::Ctrl('c')], &snapshot).quit);
    // q typed into a filter is a letter, not quit.
    let state = press(start(View::Topics), &[Key::Char('/'), Key::Char('q')], &snapshot);
    assert!(!state.quit);
    assert_eq!(state.frame().filter, "q");
}

#[test]
fn a_snapshot_with_fewer_rows_clamps_the_selection() {
    let big = fixture::small(2);
    let state = press(start(View::Partitions { topic: None }), &[Key::Char('G')], &big);
    assert_eq!(state.frame().selected, 4);
    let mut smaller = big.clone();
    smaller.topics.truncate(1);
    let state = update(state, Msg::Snapshot, &smaller);
    assert_eq!(state.frame().selected, 1);
    let state = update(state, Msg::Tick(fixture::time(9)), &smaller);
    assert_eq!(state.now, fixture::time(9));
}

#[test]
fn elect_asks_first_and_sends_only_partitions_led_by_another_replica() {
    let mut snapshot = fixture::small(2);
    let state = press(start(View::Topics), &[Key::Char('E')], &snapshot);
    assert_eq!(state.mode, Mode::Normal);
    assert!(state.message.as_deref().is_some_and(|m| m.contains("led by its preferred replica")), "{state:?}");
    // web-logs-0 (replicas 1, 2; both in sync) now led by 2.
    let web_logs = snapshot.topics.iter_mut().find(|t| t.name == "web-logs").unwrap();
    web_logs.partitions[0].leader = 2;
    let asked = press(start(View::Partitions { topic: Some("web-logs".into()) }), &[Key::Char('E')], &snapshot);
    let Mode::Confirm(question) = &asked.mode else { panic!("no question: {asked:?}") };
    assert!(question.text.contains("1 partition(s) of web-logs"), "{}", question.text);
    let cancelled = press(asked.clone(), &[Key::Char('n')], &snapshot);
    assert_eq!((cancelled.pending_action.clone(), cancelled.message.as_deref()), (None, Some("cancelled")));
    let confirmed = press(asked, &[Key::Char('y')], &snapshot);
    assert_eq!(
        confirmed.pending_action,
        Some(Action::ElectPreferred { scope: "web-logs".into(), partitions: vec![("web-logs".into(), 0)] })
    );
}

#[test]
fn reset_is_refused_for_an_active_group_and_offers_latest_or_earliest_for_an_empty_one() {
    let mut snapshot = fixture::small(2);
    let refused = press(start(View::GroupDetail { group: "sink-elasticsearch".into() }), &[Key::Char('R')], &snapshot);
    assert!(refused.message.as_deref().is_some_and(|m| m.contains("has 1 member(s)")), "{refused:?}");
    snapshot.groups.iter_mut().find(|g| g.id == "sink-elasticsearch").unwrap().members.clear();
    let asked = press(start(View::GroupDetail { group: "sink-elasticsearch".into() }), &[Key::Char('R')], &snapshot);
    let Mode::Confirm(question) = &asked.mode else { panic!("no question: {asked:?}") };
    assert!(question.text.contains("[l] to latest") && question.text.contains("[e] to earliest"), "{}", question.text);
    let latest = press(asked.clone(), &[Key::Char('l')], &snapshot);
    let Some(Action::ResetOffsets { to, offsets, .. }) = latest.pending_action else { panic!("{latest:?}") };
    let ends: Vec<i64> = offsets.iter().map(|(_, _, o)| *o).collect();
    let expected: Vec<i64> = snapshot
        .group("sink-elasticsearch")
        .unwrap()
        .partitions
        .iter()
        .map(|p| {
            snapshot
                .topic(&p.topic)
                .unwrap()
                .partitions
                .iter()
                .find(|q| q.partition == p.partition)
                .unwrap()
                .log_end
                .unwrap()
        })
        .collect();
    assert_eq!((to, ends), ("latest", expected));
    let earliest = press(asked, &[Key::Char('e')], &snapshot);
    assert!(matches!(earliest.pending_action, Some(Action::ResetOffsets { to: "earliest", .. })));
}

#[test]
fn t_tails_the_selected_topic() {
    let snapshot = fixture::small(2);
    let state = press(start(View::Topics), &[Key::Char('t')], &snapshot);
    let first = topic_rows(&snapshot, "")[0].name.clone();
    assert_eq!(state.frame().view, View::Tail { topic: first.clone() });
    assert_eq!(state.tail_topic(), Some(first.as_str()));
    let back = press(state, &[Key::Esc], &snapshot);
    assert_eq!((back.frame().view.clone(), back.tail_topic()), (View::Topics, None));
    let mut keys = vec![Key::Char(':')];
    keys.extend(typed("tail dead-letters"));
    keys.push(Key::Enter);
    let state = press(start(View::Brokers), &keys, &snapshot);
    assert_eq!(state.tail_topic(), Some("dead-letters"));
}
