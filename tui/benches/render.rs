//! Cost of one refresh of `millrace top` on a cluster of 1,000 partitions (50 topics × 20, 3
//! brokers) and 100 consumer groups: the pure model update (rates, lag, trends), drawing each
//! view on a 200×60 screen, and the Kafka requests a refresh sends, counted by the poller's own
//! planning code. `cargo bench -p millrace-tui --bench render`.

use millrace_tui::app::{update, AppState, Key, Msg, View};
use millrace_tui::fixture::{self, Shape};
use millrace_tui::model::{RequestCounts, Snapshot};
use millrace_tui::poller::{plan_requests, ClusterShape, Versions};
use millrace_tui::views;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::hint::black_box;
use std::time::Instant;

const SHAPE: Shape = Shape { brokers: 3, topics: 50, partitions: 20, groups: 100 };
const REFRESHES: u64 = 200;
const FRAMES: u32 = 200;

fn describe(counts: &RequestCounts) -> String {
    let per_api: Vec<String> = counts.kafka.iter().map(|(api, n)| format!("{api} {n}")).collect();
    format!("{} Kafka requests ({}) + {} metrics scrapes", counts.kafka_total(), per_api.join(", "), counts.http)
}

fn main() {
    // Model: every refresh's raw data is prepared first, so only the update is timed.
    let raws: Vec<_> = (0..REFRESHES).map(|step| fixture::raw(SHAPE, step)).collect();
    let mut snapshot = Snapshot::waiting("bench:9092");
    let started = Instant::now();
    for (step, raw) in raws.into_iter().enumerate() {
        snapshot = Snapshot::next(&snapshot, raw, fixture::time(step as u64));
    }
    let elapsed = started.elapsed();
    let summary = snapshot.summary();
    println!(
        "model update: {:.3} ms per refresh ({} partitions, {} groups, {} refreshes)",
        elapsed.as_secs_f64() * 1e3 / REFRESHES as f64,
        summary.partitions,
        summary.groups,
        REFRESHES
    );

    // Rendering: the same terminal redrawn, as the UI loop does.
    let mut terminal = match Terminal::new(TestBackend::new(200, 60)) {
        Ok(t) => t,
        Err(e) => panic!("test backend: {e}"),
    };
    let now = fixture::time(REFRESHES);
    let views = [
        ("brokers", View::Brokers),
        ("topics", View::Topics),
        ("partitions (all 1,000)", View::Partitions { topic: None }),
        ("partitions of a topic", View::Partitions { topic: Some("topic-025".into()) }),
        ("groups", View::Groups),
        ("group detail", View::GroupDetail { group: "group-042".into() }),
    ];
    for (name, view) in views {
        // Select a row in the middle so the table scrolls.
        let mut state = AppState::new(view, now);
        for _ in 0..500 {
            state = update(state, Msg::Key(Key::Char('j')), &snapshot);
        }
        let started = Instant::now();
        for _ in 0..FRAMES {
            let drawn = terminal.draw(|frame| views::render(frame, &state, &snapshot));
            black_box(drawn.is_ok());
        }
        println!(
            "render {name}: {:.3} ms per frame (200x60)",
            started.elapsed().as_secs_f64() * 1e3 / f64::from(FRAMES)
        );
    }
    let started = Instant::now();
    let text = views::render_to_text(&AppState::new(View::Groups, now), &snapshot, 200, 60);
    println!("render_to_text groups: {:.3} ms ({} bytes)", started.elapsed().as_secs_f64() * 1e3, text.len());

    // Requests per refresh, from the poller's planning code.
    let mut shape = ClusterShape {
        brokers: snapshot.brokers.iter().map(|b| b.id).collect(),
        metrics_endpoints: snapshot.brokers.len() as u32,
        ..ClusterShape::default()
    };
    for p in snapshot.topics.iter().flat_map(|t| t.partitions.iter()) {
        shape.partitions_by_leader.entry(p.leader).or_default().push((p.topic.clone(), p.partition));
    }
    for g in &snapshot.groups {
        shape.groups_by_coordinator.entry(g.coordinator.unwrap_or(1)).or_default().push(g.id.clone());
    }
    println!(
        "requests per steady refresh (Kafka 3.x+ brokers): {}",
        describe(&plan_requests(&shape, &Versions::latest()))
    );
    let first = ClusterShape {
        uncached_groups: snapshot.groups.iter().map(|g| g.id.clone()).collect(),
        describe_configs: true,
        ..shape.clone()
    };
    println!(
        "requests on the first refresh (+1 ApiVersions per new connection): {}",
        describe(&plan_requests(&first, &Versions::latest()))
    );
    println!(
        "requests per steady refresh (Kafka 2.x brokers, OffsetFetch v7): {}",
        describe(&plan_requests(&shape, &Versions::kafka_2()))
    );
}
