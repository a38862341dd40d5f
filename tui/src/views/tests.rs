use super::*;
use crate::app::{update, AppState, Key, Msg, View};
use crate::fixture;
use crate::model::RequestCounts;
use std::time::Duration;

/// Three seconds after the small fixture's latest refresh.
fn now() -> std::time::SystemTime {
    fixture::time(4) + Duration::from_secs(3)
}

fn screen_of(state: &AppState, snapshot: &Snapshot) -> String {
    render_to_text(state, snapshot, 160, 30)
}

fn screen(view: View, snapshot: &Snapshot) -> String {
    screen_of(&AppState::new(view, now()), snapshot)
}

fn line_with<'a>(screen: &'a str, needle: &str) -> &'a str {
    screen.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("no line with {needle:?} in\n{screen}"))
}

#[test]
fn header_summarises_the_cluster_and_the_refresh_cost() {
    let text = screen(View::Brokers, &fixture::small(5));
    let first = text.lines().next().unwrap();
    assert!(first.contains("brokers 2/3 up"), "{first}");
    assert!(first.contains("partitions 5: 1 under-replicated, 1 offline"), "{first}");
    assert!(first.contains("controller 1"), "{first}");
    let second = text.lines().nth(1).unwrap();
    assert!(second.contains("refreshed 3s ago"), "{second}");
    assert!(second.contains("cost 10 req + 2 scrapes: Metadata 1, DescribeCluster 1, ListOffsets 4"), "{second}");
    assert!(!text.contains("unreachable"));
    assert!(!second.contains(" as "), "no identity given, none shown: {second}");
    let secure = Snapshot { identity: "User:alice over SASL_SSL (SCRAM-SHA-512)".into(), ..fixture::small(5) };
    let text = screen(View::Brokers, &secure);
    let second = text.lines().nth(1).unwrap();
    assert!(second.contains("as User:alice over SASL_SSL (SCRAM-SHA-512)"), "{second}");
}

#[test]
fn brokers_show_state_controller_and_byte_rates() {
    let text = screen(View::Brokers, &fixture::small(5));
    let b1 = line_with(&text, "broker-1.example:9092");
    assert!(b1.contains("up") && b1.contains("yes") && b1.contains("24.4 KiB/s"), "{b1}");
    assert!(b1.contains("leader"), "the quorum's leader: {b1}");
    let b2 = line_with(&text, "broker-2.example:9092");
    assert!(b2.contains("voter") && !b2.contains("behind"), "{b2}");
    let b3 = line_with(&text, "broker-3.example:9092");
    assert!(b3.contains("down") && b3.contains("missing from metadata"), "{b3}");
}

#[test]
fn partitions_mark_under_replicated_and_offline() {
    let text = screen(View::Partitions { topic: None }, &fixture::small(5));
    let under = line_with(&text, "under-replicated    ");
    // web-logs-1: leader 2, replicas 2,3, ISR 2.
    assert!(under.contains("web-logs") && under.contains("2,3") && under.contains(" 2 "), "{under}");
    let offline = line_with(&text, "  none  ");
    assert!(offline.contains("metrics") && offline.contains("OFFLINE"), "{offline}");
    let healthy = line_with(&text, "1,360");
    assert!(healthy.contains("20/s") && healthy.contains("3.0 MiB") && healthy.contains("ok"), "{healthy}");
}

#[test]
fn topics_summarise_their_partitions() {
    let text = screen(View::Topics, &fixture::small(5));
    let web = line_with(&text, "web-logs");
    assert!(web.contains("35/s") && web.contains("73.2 KiB/s") && web.contains("2,730"), "{web}");
    assert!(line_with(&text, "metrics ").contains("OFFLINE"));
}

#[test]
fn unreachable_cluster_shows_a_banner_with_the_age_of_the_data() {
    let good = fixture::small(5);
    let stale = Snapshot::unreachable(
        &good,
        "broker 127.0.0.1:9092: connecting: Connection refused".into(),
        now(),
        RequestCounts::default(),
        Duration::from_millis(2),
    );
    let text = screen_of(&AppState::new(View::Topics, now() + Duration::from_secs(6)), &stale);
    let banner = line_with(&text, "cluster unreachable");
    assert!(banner.contains("Connection refused"), "{banner}");
    assert!(banner.contains("showing data from 9s ago, retrying"), "{banner}");
    // The old data stays on screen.
    line_with(&text, "web-logs");
    let never = Snapshot::unreachable(
        &Snapshot::waiting("127.0.0.1:9092"),
        "refused".into(),
        now(),
        RequestCounts::default(),
        Duration::ZERO,
    );
    assert!(screen(View::Topics, &never).contains("cluster unreachable: refused — no data yet, retrying"));
    assert!(screen(View::Topics, &Snapshot::waiting("127.0.0.1:9092")).contains("connecting to 127.0.0.1:9092"));
}

#[test]
fn a_filter_hides_rows_and_is_shown_in_the_title() {
    let snapshot = fixture::small(5);
    let mut state = AppState::new(View::Topics, now());
    for key in [Key::Char('/'), Key::Char('m'), Key::Char('e'), Key::Char('t')] {
        state = update(state, Msg::Key(key), &snapshot);
    }
    let text = screen_of(&state, &snapshot);
    assert!(text.contains("topics[1/2] </met>"), "{text}");
    assert!(!text.contains("web-logs"), "{text}");
    assert!(line_with(&text, "/met█").starts_with('/'), "the prompt shows the filter being typed");
}

#[test]
fn group_detail_shows_lag_per_partition_and_the_trend() {
    let snapshot = fixture::small(5);
    let text = screen(View::GroupDetail { group: "sink-elasticsearch".into() }, &snapshot);
    assert!(line_with(&text, "group sink-elasticsearch").contains("lag 520  trend growing"));
    assert!(text.contains("total lag, last 5 of 60 refreshes (max 520)"));
    let p0 = line_with(&text, "1,360");
    assert!(p0.contains("1,020") && p0.contains("340") && p0.contains("es-sink"), "{p0}");
    assert!(line_with(&text, "es-sink-0007").contains("web-logs-0,web-logs-1"));
    assert!(text.contains("groups › group sink-elasticsearch"), "breadcrumbs");
    // Nothing committed: the lag counts from the log start, marked.
    let audit = screen(View::GroupDetail { group: "audit".into() }, &snapshot);
    assert!(line_with(&audit, "~490").contains("web-logs"), "{audit}");
    assert!(audit.contains("nothing committed: lag counted from the log start"));
    let gone = screen(View::GroupDetail { group: "deleted".into() }, &snapshot);
    assert!(gone.contains("group deleted is not in the latest refresh"));
}

#[test]
fn groups_list_lag_trend_and_history() {
    let text = screen(View::Groups, &fixture::small(5));
    let es = line_with(&text, "sink-elasticsearch");
    assert!(es.contains("520") && es.contains("growing") && es.contains('█'), "{es}");
    assert!(line_with(&text, "sink-influxdb").contains("steady"));
}

#[test]
fn command_line_help_and_messages() {
    let snapshot = fixture::small(5);
    let mut state = AppState::new(View::Topics, now());
    for key in [Key::Char(':'), Key::Char('g'), Key::Char('r')] {
        state = update(state, Msg::Key(key), &snapshot);
    }
    assert!(screen_of(&state, &snapshot).contains(":gr█"));
    state = update(state, Msg::Key(Key::Enter), &snapshot);
    assert!(screen_of(&state, &snapshot).contains("unknown command `gr`"));
    let help = screen(View::Help, &snapshot);
    assert!(help.contains("refresh now") && help.contains(":partitions :p [TOPIC]"));
}

#[test]
fn the_selection_stays_visible_in_a_long_table() {
    let shape = fixture::Shape { brokers: 3, topics: 50, partitions: 20, groups: 10 };
    let snapshot = fixture::synthetic(shape, 2);
    let mut state = AppState::new(View::Partitions { topic: None }, now());
    state = update(state, Msg::Key(Key::Char('G')), &snapshot);
    let text = screen_of(&state, &snapshot);
    assert!(text.contains("partitions[1000]"));
    let last = text.lines().any(|l| l.split_whitespace().take(3).eq(["│topic-049", "19", "3"]));
    assert!(last, "the last partition is on screen:\n{text}");
    assert!(!text.contains("topic-000"), "{text}");
}

#[test]
fn agents_and_sinks_show_health_rates_and_why_one_is_red() {
    let snapshot = fixture::small(5);
    let agents = screen(View::Agents, &snapshot);
    let web1 = line_with(&agents, "web-1");
    assert!(web1.contains(" ok ") && web1.contains("200/s") && web1.contains("2.0 KiB"), "{web1}\n{agents}");
    let web2 = line_with(&agents, "web-2");
    assert!(web2.contains(" down ") && web2.contains("silent for"), "{web2}");
    let sinks = screen(View::Sinks, &snapshot);
    let es = line_with(&sinks, "│es ");
    assert!(es.contains("elasticsearch") && es.contains(" ok ") && es.contains("190/s"), "{es}\n{sinks}");
    let influx = line_with(&sinks, "│influx ");
    assert!(influx.contains(" down ") && influx.contains("influxdb failing: 503 Service Unavailable"), "{influx}");
    let header = sinks.lines().next().unwrap();
    assert!(header.contains("pipeline 4: 2 down"), "{header}");
}

#[test]
fn a_down_component_is_drawn_red() {
    use ratatui::style::Color;
    let snapshot = fixture::small(5);
    let mut terminal = ratatui::Terminal::new(TestBackend::new(160, 30)).unwrap();
    terminal.draw(|f| render(f, &AppState::new(View::Sinks, now()), &snapshot)).unwrap();
    let buffer = terminal.backend().buffer();
    let text = buffer_text(buffer);
    let y = text.lines().position(|l| l.contains("│influx ")).unwrap() as u16;
    let x = text.lines().nth(y as usize).unwrap().chars().position(|c| c == 'i').unwrap() as u16;
    assert_eq!(buffer[(x, y)].fg, Color::Red);
    let y = text.lines().position(|l| l.contains("│es ")).unwrap() as u16;
    assert_ne!(buffer[(x, y)].fg, Color::Red);
}
