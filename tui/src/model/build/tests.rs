use super::*;
use crate::fixture;
use crate::model::{BrokerState, Trend};

fn at(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
}

#[test]
fn rate_is_the_counter_delta_over_elapsed_seconds() {
    assert_eq!(rate(Some((100.0, at(10))), (300.0, at(12))), Some(100.0));
    assert_eq!(rate(None, (300.0, at(12))), None, "one reading has no rate");
    assert_eq!(rate(Some((500.0, at(10))), (300.0, at(12))), None, "a reset counter has no rate");
    assert_eq!(rate(Some((100.0, at(12))), (300.0, at(12))), None, "no time passed");
    assert_eq!(rate(Some((100.0, at(14))), (300.0, at(12))), None, "clock went backwards");
}

#[test]
fn trend_reads_the_slope_of_recent_lag() {
    assert_eq!(trend(&[]), Trend::Unknown);
    assert_eq!(trend(&[5, 10]), Trend::Unknown);
    assert_eq!(trend(&[0, 0, 0, 0]), Trend::Steady);
    assert_eq!(trend(&[100, 200, 300, 400]), Trend::Growing);
    assert_eq!(trend(&[400, 300, 200, 100]), Trend::Shrinking);
    // A consumer keeping up wobbles around a level: steady.
    assert_eq!(trend(&[1_000, 1_030, 990, 1_010, 1_000, 980, 1_020]), Trend::Steady);
    // Only the last 10 refreshes count: an old climb followed by a plateau is steady.
    let mut history: Vec<u64> = (0..20).map(|i| i * 100).collect();
    history.extend([2_000; 10]);
    assert_eq!(trend(&history), Trend::Steady);
}

#[test]
fn history_keeps_the_last_entries() {
    let mut history = Vec::new();
    for i in 0..100 {
        history = push_history(&history, i);
    }
    assert_eq!(history.len(), HISTORY_LEN);
    assert_eq!(history.first(), Some(&40));
    assert_eq!(history.last(), Some(&99));
}

#[test]
fn lag_counts_from_the_log_start_when_nothing_is_committed() {
    assert_eq!(lag(Some(90), Some(0), Some(100)), (Some(10), false));
    assert_eq!(lag(Some(120), Some(0), Some(100)), (Some(0), false), "committed past the end (truncation)");
    assert_eq!(lag(None, Some(40), Some(100)), (Some(60), true));
    assert_eq!(lag(Some(5), Some(0), None), (None, false), "unknown end");
}

#[test]
fn next_snapshot_computes_records_rates_from_the_previous_one() {
    let first = fixture::small(1);
    let web = first.topic("web-logs").unwrap();
    assert_eq!(web.partitions[0].records_rate, None, "no rate after one refresh");
    let second = fixture::small(2);
    let web = second.topic("web-logs").unwrap();
    // p0 grows by 40 records per step of 2 s.
    assert_eq!(web.partitions[0].records_rate, Some(20.0));
    assert_eq!(web.records_rate(), Some(20.0 + 10.0 + 5.0));
    assert_eq!(web.under_replicated(), 1);
    assert_eq!(second.topic("metrics").unwrap().offline(), 1);
}

#[test]
fn brokers_missing_from_metadata_are_down_and_rates_come_from_two_scrapes() {
    let snapshot = fixture::small(2);
    let states: Vec<(i32, BrokerState)> = snapshot.brokers.iter().map(|b| (b.id, b.state)).collect();
    assert_eq!(states, vec![(1, BrokerState::Up), (2, BrokerState::Up), (3, BrokerState::Down)]);
    let b1 = &snapshot.brokers[0];
    assert!(b1.is_controller);
    assert_eq!(b1.bytes_in_rate, Some(25_000.0));
    assert_eq!(b1.bytes_out_rate, Some(60_000.0));
    assert_eq!(b1.leads, 2);
    let summary = snapshot.summary();
    assert_eq!((summary.brokers_up, summary.brokers_total), (2, 3));
    assert_eq!((summary.partitions, summary.under_replicated, summary.offline), (5, 1, 1));
    // Topic bytes: both brokers report web-logs.
    assert_eq!(snapshot.topic("web-logs").unwrap().bytes_in_rate, Some(25_000.0 + 50_000.0));
    assert_eq!(snapshot.topic("web-logs").unwrap().size_bytes(), Some(3_145_728));
}

#[test]
fn group_lag_history_and_trend() {
    let snapshot = fixture::small(5);
    let es = snapshot.group("sink-elasticsearch").unwrap();
    // p0: end 1200+40s, committed 1000+5s; p1: end 900+20s, committed 800. At s=4.
    assert_eq!(es.partitions[0].lag, Some(1_360 - 1_020));
    assert_eq!(es.partitions[1].lag, Some(980 - 800));
    assert_eq!(es.total_lag, 340 + 180);
    assert_eq!(es.lag_history.len(), 5);
    assert_eq!(es.trend, Trend::Growing);
    assert_eq!(es.partitions[0].owner.as_deref(), Some("es-sink"));
    let influx = snapshot.group("sink-influxdb").unwrap();
    assert_eq!(influx.total_lag, 10);
    assert_eq!(influx.trend, Trend::Steady);
    let audit = snapshot.group("audit").unwrap();
    assert!(audit.partitions[0].estimated);
    assert_eq!(audit.partitions[0].lag, Some(490), "end 490 − log start 0");
}

#[test]
fn a_failed_refresh_keeps_the_data_and_says_when_it_was_read() {
    let good = fixture::small(2);
    let later = fixture::time(5);
    let stale =
        Snapshot::unreachable(&good, "connection refused".into(), later, RequestCounts::default(), Duration::ZERO);
    assert_eq!(stale.error.as_deref(), Some("connection refused"));
    assert_eq!(stale.taken_at, good.taken_at);
    assert_eq!(stale.attempted_at, Some(later));
    assert_eq!(stale.topics, good.topics);
    // The next good refresh clears the error and measures rates against the stale data.
    let recovered = Snapshot::next(&stale, fixture::small_raw(6), fixture::time(6));
    assert_eq!(recovered.error, None);
    // p0 grew 40 × (6 − 1) records in 10 s.
    assert_eq!(recovered.topic("web-logs").unwrap().partitions[0].records_rate, Some(20.0));
}

#[test]
fn a_group_that_could_not_be_read_keeps_its_history() {
    let good = fixture::small(3);
    let mut raw = fixture::small_raw(3);
    raw.groups[0].error = Some("coordinator not available".into());
    raw.groups[0].committed.clear();
    let next = Snapshot::next(&good, raw, fixture::time(3));
    let es = next.group("sink-elasticsearch").unwrap();
    assert_eq!(es.lag_history, good.group("sink-elasticsearch").unwrap().lag_history);
}

#[test]
fn a_group_whose_coordinator_is_down_keeps_its_last_known_lag() {
    let good = fixture::small(3);
    let mut raw = fixture::small_raw(3);
    raw.groups[0].error = Some("coordinator 1 is not answering".into());
    raw.groups[0].committed.clear();
    raw.groups[0].members.clear();
    let next = Snapshot::next(&good, raw, fixture::time(3));
    let es = next.group("sink-elasticsearch").unwrap();
    let before = good.group("sink-elasticsearch").unwrap();
    assert_eq!(es.total_lag, before.total_lag);
    assert_eq!(es.partitions, before.partitions);
    assert_eq!(es.error.as_deref(), Some("coordinator 1 is not answering"));
}

#[test]
fn unknown_log_ends_make_the_total_a_lower_bound_and_skip_the_history() {
    let good = fixture::small(3);
    let mut raw = fixture::small_raw(3);
    // web-logs-1's leader did not answer ListOffsets.
    raw.topics[0].partitions[1].log_end = None;
    let next = Snapshot::next(&good, raw, fixture::time(3));
    let es = next.group("sink-elasticsearch").unwrap();
    assert_eq!(es.lag_unknown, 1);
    assert_eq!(es.partitions[1].lag, None);
    assert_eq!(es.lag_history, good.group("sink-elasticsearch").unwrap().lag_history);
}

#[test]
fn a_broker_gone_before_the_first_refresh_is_down_when_partitions_name_it() {
    // Broker 3 is not in Metadata at all, but web-logs-1 and metrics-1 list it as a replica.
    let snapshot = Snapshot::next(&Snapshot::waiting("127.0.0.1:9092"), fixture::small_raw(0), at(0));
    let b3 = snapshot.brokers.iter().find(|b| b.id == 3).expect("broker 3 inferred from replica lists");
    assert_eq!(b3.state, BrokerState::Down);
    assert_eq!(b3.replicas, 2);
    let summary = snapshot.summary();
    assert_eq!((summary.brokers_up, summary.brokers_total), (2, 3));
}
