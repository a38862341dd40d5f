//! The pure update: (previous snapshot, new raw data, time) → next snapshot. Rates come from
//! the difference between two refreshes, lag from committed offsets against log end offsets,
//! trends from the lag history.

use super::{
    BrokerRow, BrokerState, GroupPartitionRow, GroupRow, MetricsSample, PartitionRow, RawBroker, RawCluster, RawGroup,
    RequestCounts, Snapshot, TopicRow, Trend, HISTORY_LEN,
};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

/// Refreshes the trend looks back over.
const TREND_WINDOW: usize = 10;

/// Per-second rate of a counter between two readings; None without a previous reading, when no
/// time passed, or when the counter went backwards (a restart or a re-created topic).
pub fn rate(previous: Option<(f64, SystemTime)>, current: (f64, SystemTime)) -> Option<f64> {
    let (before, then) = previous?;
    let (now_value, now) = current;
    let seconds = now.duration_since(then).ok()?.as_secs_f64();
    if seconds <= 0.0 || now_value < before {
        return None;
    }
    Some((now_value - before) / seconds)
}

/// Direction of a lag history: the least-squares slope over the last refreshes, compared with
/// a threshold of 2% of the mean lag (at least one record per refresh) so that the wobble of a
/// consumer keeping up reads as steady.
pub fn trend(history: &[u64]) -> Trend {
    let window = &history[history.len().saturating_sub(TREND_WINDOW)..];
    if window.len() < 3 {
        return Trend::Unknown;
    }
    let n = window.len() as f64;
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = window.iter().map(|v| *v as f64).sum::<f64>() / n;
    let (mut covariance, mut variance) = (0.0, 0.0);
    for (i, value) in window.iter().enumerate() {
        let dx = i as f64 - mean_x;
        covariance += dx * (*value as f64 - mean_y);
        variance += dx * dx;
    }
    let slope = covariance / variance;
    let threshold = (0.02 * mean_y).max(1.0);
    if slope > threshold {
        Trend::Growing
    } else if slope < -threshold {
        Trend::Shrinking
    } else {
        Trend::Steady
    }
}

/// `history` with `value` appended, keeping the last [`HISTORY_LEN`].
pub fn push_history(history: &[u64], value: u64) -> Vec<u64> {
    let keep = history.len().min(HISTORY_LEN - 1);
    let mut next = Vec::with_capacity(keep + 1);
    next.extend_from_slice(&history[history.len() - keep..]);
    next.push(value);
    next
}

/// Lag of one partition and whether it is estimated: end − committed (never negative), or,
/// with nothing committed, end − log start (what the group would read from the beginning).
pub fn lag(committed: Option<i64>, log_start: Option<i64>, log_end: Option<i64>) -> (Option<i64>, bool) {
    let Some(end) = log_end else { return (None, committed.is_none()) };
    match committed {
        Some(c) => (Some((end - c).max(0)), false),
        None => (log_start.map(|s| (end - s).max(0)), true),
    }
}

impl Snapshot {
    /// The snapshot after a refresh that answered.
    pub fn next(previous: &Snapshot, raw: RawCluster, now: SystemTime) -> Snapshot {
        let controller = raw.controller;
        let brokers_raw = raw.brokers;
        let topics = build_topics(previous, raw.topics, &brokers_raw, now);
        let brokers = build_brokers(previous, brokers_raw, controller, &topics);
        let groups = build_groups(previous, raw.groups, &topics);
        let now_ms = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let agents = super::pipeline::agents(&previous.agents, &raw.statuses, now_ms);
        let sinks = super::pipeline::sinks(&previous.sinks, &raw.statuses, now_ms);
        Snapshot {
            source: previous.source.clone(),
            identity: previous.identity.clone(),
            taken_at: Some(now),
            attempted_at: Some(now),
            took: raw.took,
            cluster_id: raw.cluster_id,
            controller,
            brokers,
            topics,
            groups,
            agents,
            sinks,
            tail: raw.tail.map(super::tail::build),
            notice: raw.notice,
            requests: raw.requests,
            error: None,
        }
    }

    /// The snapshot after a refresh that reached no broker: the previous data, marked stale.
    pub fn unreachable(
        previous: &Snapshot,
        error: String,
        now: SystemTime,
        requests: RequestCounts,
        took: Duration,
    ) -> Snapshot {
        Snapshot { attempted_at: Some(now), error: Some(error), requests, took, notice: None, ..previous.clone() }
    }
}

type SizeIndex<'a> = HashMap<(&'a str, i32), u64>;

/// Log start and end offsets of a partition.
type StartEnd = (Option<i64>, Option<i64>);

fn build_topics(
    previous: &Snapshot,
    raw: Vec<super::RawTopic>,
    brokers: &[RawBroker],
    now: SystemTime,
) -> Vec<TopicRow> {
    let previous_end: HashMap<(&str, i32), i64> = previous
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .filter_map(|p| Some(((p.topic.as_str(), p.partition), p.log_end?)))
        .collect();
    let previous_samples: HashMap<i32, &MetricsSample> =
        previous.brokers.iter().filter_map(|b| Some((b.id, b.metrics.as_ref()?))).collect();
    // Sizes as each broker reports them; a partition's size is its leader's.
    let sizes: HashMap<i32, SizeIndex<'_>> = brokers
        .iter()
        .filter_map(|b| {
            let sample = b.metrics.as_ref()?;
            Some((b.id, sample.partition_sizes.iter().map(|((t, p), s)| ((t.as_str(), *p), *s)).collect()))
        })
        .collect();
    let mut topics: Vec<TopicRow> = raw
        .into_iter()
        .map(|topic| {
            let mut partitions: Vec<PartitionRow> = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let before = previous_end.get(&(topic.name.as_str(), p.index)).copied();
                    let records_rate = match (before, p.log_end, previous.taken_at) {
                        (Some(b), Some(e), Some(then)) => rate(Some((b as f64, then)), (e as f64, now)),
                        _ => None,
                    };
                    let size_bytes = sizes.get(&p.leader).and_then(|s| s.get(&(topic.name.as_str(), p.index)).copied());
                    PartitionRow {
                        topic: topic.name.clone(),
                        partition: p.index,
                        leader: p.leader,
                        replicas: p.replicas,
                        isr: p.isr,
                        offline_replicas: p.offline_replicas,
                        log_start: p.log_start,
                        log_end: p.log_end,
                        records_rate,
                        size_bytes,
                        error: p.error,
                    }
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            let (bytes_in_rate, bytes_out_rate) = topic_byte_rates(&topic.name, brokers, &previous_samples);
            TopicRow {
                name: topic.name,
                internal: topic.internal,
                error: topic.error,
                partitions,
                bytes_in_rate,
                bytes_out_rate,
            }
        })
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    topics
}

/// Bytes in and out per second of one topic, summed over the brokers with two scrapes.
fn topic_byte_rates(
    topic: &str,
    brokers: &[RawBroker],
    previous: &HashMap<i32, &MetricsSample>,
) -> (Option<f64>, Option<f64>) {
    let (mut bytes_in, mut bytes_out) = (None, None);
    for broker in brokers {
        let (Some(sample), Some(before)) = (broker.metrics.as_ref(), previous.get(&broker.id)) else { continue };
        let (Some(now), Some(then)) = (sample.at, before.at) else { continue };
        let current = sample.topics.get(topic).copied().unwrap_or_default();
        let earlier = before.topics.get(topic).copied().unwrap_or_default();
        if let Some(r) = rate(Some((earlier.0, then)), (current.0, now)) {
            *bytes_in.get_or_insert(0.0) += r;
        }
        if let Some(r) = rate(Some((earlier.1, then)), (current.1, now)) {
            *bytes_out.get_or_insert(0.0) += r;
        }
    }
    (bytes_in, bytes_out)
}

fn build_brokers(
    previous: &Snapshot,
    raw: Vec<RawBroker>,
    controller: Option<i32>,
    topics: &[TopicRow],
) -> Vec<BrokerRow> {
    let mut leads: HashMap<i32, usize> = HashMap::new();
    let mut replicas: HashMap<i32, usize> = HashMap::new();
    for p in topics.iter().flat_map(|t| t.partitions.iter()) {
        *leads.entry(p.leader).or_default() += 1;
        for r in &p.replicas {
            *replicas.entry(*r).or_default() += 1;
        }
    }
    let before: HashMap<i32, &BrokerRow> = previous.brokers.iter().map(|b| (b.id, b)).collect();
    let mut rows: BTreeMap<i32, BrokerRow> = BTreeMap::new();
    for b in raw {
        let earlier = before.get(&b.id).and_then(|row| row.metrics.as_ref());
        let rate_of = |pick: fn(&MetricsSample) -> f64| {
            let (sample, earlier) = (b.metrics.as_ref()?, earlier?);
            rate(Some((pick(earlier), earlier.at?)), (pick(sample), sample.at?))
        };
        let state = if b.fenced {
            BrokerState::Fenced
        } else if b.error.is_some() {
            BrokerState::Down
        } else {
            BrokerState::Up
        };
        let row = BrokerRow {
            id: b.id,
            address: format!("{}:{}", b.host, b.port),
            rack: b.rack.clone(),
            state,
            is_controller: controller == Some(b.id),
            error: b.error.clone(),
            leads: leads.get(&b.id).copied().unwrap_or(0),
            replicas: replicas.get(&b.id).copied().unwrap_or(0),
            metrics_url: b.metrics_url.clone(),
            bytes_in_rate: rate_of(|s| s.bytes_in),
            bytes_out_rate: rate_of(|s| s.bytes_out),
            // Keep the last good scrape so one failed scrape does not lose the next rate.
            metrics: b.metrics.clone().or_else(|| earlier.cloned()),
            quorum: b.quorum,
        };
        rows.insert(b.id, row);
    }
    // Seen before, missing now: stopped, or fenced by a cluster that omits fenced brokers.
    for old in &previous.brokers {
        rows.entry(old.id).or_insert_with(|| BrokerRow {
            state: BrokerState::Down,
            is_controller: false,
            error: Some("missing from metadata (stopped or fenced)".to_string()),
            leads: leads.get(&old.id).copied().unwrap_or(0),
            replicas: replicas.get(&old.id).copied().unwrap_or(0),
            bytes_in_rate: None,
            bytes_out_rate: None,
            // A broker missing from the metadata: its quorum role is not known any more.
            quorum: None,
            ..old.clone()
        });
    }
    // Never seen but holding replicas: a broker that was already gone when this TUI started
    // (Metadata lists only live brokers; partitions still name it among their replicas).
    for (&id, &count) in &replicas {
        if id >= 0 {
            rows.entry(id).or_insert_with(|| BrokerRow {
                id,
                address: "-".to_string(),
                rack: None,
                state: BrokerState::Down,
                is_controller: false,
                error: Some("missing from metadata, named as a replica (stopped or fenced)".to_string()),
                leads: leads.get(&id).copied().unwrap_or(0),
                replicas: count,
                metrics_url: None,
                bytes_in_rate: None,
                bytes_out_rate: None,
                metrics: None,
                quorum: None,
            });
        }
    }
    rows.into_values().collect()
}

fn build_groups(previous: &Snapshot, raw: Vec<RawGroup>, topics: &[TopicRow]) -> Vec<GroupRow> {
    let offsets: HashMap<(&str, i32), StartEnd> = topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| ((p.topic.as_str(), p.partition), (p.log_start, p.log_end)))
        .collect();
    let before: HashMap<&str, &GroupRow> = previous.groups.iter().map(|g| (g.id.as_str(), g)).collect();
    let mut groups: Vec<GroupRow> = raw
        .into_iter()
        .map(|g| {
            let earlier = before.get(g.id.as_str()).copied();
            // Nothing read this time: show the last known state with the error, not zero lag.
            if let (Some(error), Some(earlier)) = (&g.error, earlier) {
                if g.committed.is_empty() && g.members.is_empty() {
                    return GroupRow { error: Some(error.clone()), coordinator: g.coordinator, ..earlier.clone() };
                }
            }
            group_row(g, earlier, &offsets)
        })
        .collect();
    groups.sort_by(|a, b| a.id.cmp(&b.id));
    groups
}

fn group_row(g: RawGroup, earlier: Option<&GroupRow>, offsets: &HashMap<(&str, i32), StartEnd>) -> GroupRow {
    let mut rows: BTreeMap<(String, i32), GroupPartitionRow> = BTreeMap::new();
    for member in &g.members {
        for (topic, partition) in &member.assignment {
            rows.entry((topic.clone(), *partition)).or_insert_with(|| partition_row(topic, *partition)).owner =
                Some(member.client_id.clone());
        }
    }
    for (topic, partition, offset) in &g.committed {
        rows.entry((topic.clone(), *partition)).or_insert_with(|| partition_row(topic, *partition)).committed =
            Some(*offset);
    }
    let (mut total_lag, mut lag_unknown) = (0, 0);
    for row in rows.values_mut() {
        let (start, end) = offsets.get(&(row.topic.as_str(), row.partition)).copied().unwrap_or((None, None));
        row.log_end = end;
        (row.lag, row.estimated) = lag(row.committed, start, end);
        match row.lag {
            Some(l) => total_lag += l,
            None => lag_unknown += 1,
        }
    }
    let previous_history = earlier.map_or(&[][..], |e| e.lag_history.as_slice());
    // A group read only in part keeps its history rather than recording a false drop.
    let lag_history = if g.error.is_some() || lag_unknown > 0 {
        previous_history.to_vec()
    } else {
        push_history(previous_history, total_lag.max(0) as u64)
    };
    GroupRow {
        trend: trend(&lag_history),
        id: g.id,
        state: g.state,
        protocol_type: g.protocol_type,
        protocol: g.protocol,
        coordinator: g.coordinator,
        members: g.members,
        partitions: rows.into_values().collect(),
        total_lag,
        lag_unknown,
        lag_history,
        error: g.error,
    }
}

fn partition_row(topic: &str, partition: i32) -> GroupPartitionRow {
    GroupPartitionRow {
        topic: topic.to_string(),
        partition,
        committed: None,
        log_end: None,
        lag: None,
        estimated: false,
        owner: None,
    }
}

#[cfg(test)]
mod tests;
