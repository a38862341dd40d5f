//! Made-up clusters for tests, the render benchmark and documentation screenshots: the same
//! [`RawCluster`] shapes a refresh produces, fed through the real [`Snapshot::next`].

use crate::model::{
    MemberRow, MetricsSample, QuorumMember, RawBroker, RawCluster, RawGroup, RawPartition, RawTopic, Snapshot,
};
use millrace_status::{AgentStatus, ComponentKind, DestinationState, InputStatus, RunState, SinkStatus, Status};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// Seconds between fixture refreshes.
pub const STEP_SECONDS: u64 = 2;

/// Time of fixture refresh `step` (a fixed date, so rendered text is reproducible).
pub fn time(step: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000 + step * STEP_SECONDS)
}

/// Size of a synthetic cluster.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Brokers (ids 1..=n).
    pub brokers: i32,
    /// Topics.
    pub topics: usize,
    /// Partitions per topic.
    pub partitions: i32,
    /// Consumer groups, each reading one topic.
    pub groups: usize,
}

fn broker(id: i32, metrics: Option<MetricsSample>) -> RawBroker {
    RawBroker {
        id,
        host: format!("broker-{id}.example"),
        port: 9092,
        rack: None,
        fenced: false,
        error: None,
        metrics_url: Some(format!("http://broker-{id}.example:9644/metrics")),
        metrics,
        // Broker 1 leads the quorum, 2 and 3 vote (3 a little behind), others observe.
        quorum: Some(match id {
            1 => QuorumMember::Leader,
            2 => QuorumMember::Voter { lag: Some(0) },
            3 => QuorumMember::Voter { lag: Some(12) },
            _ => QuorumMember::Observer { lag: Some(0) },
        }),
    }
}

fn member(id: usize, client: &str, assignment: Vec<(String, i32)>) -> MemberRow {
    MemberRow {
        member_id: format!("{client}-{id:04}-5f2c"),
        instance_id: None,
        client_id: client.to_string(),
        host: format!("/10.0.0.{}", id % 250 + 1),
        assignment,
    }
}

/// Refresh `step` of a cluster of `shape`: every partition grows by a few records per step,
/// every group commits a little behind, broker counters grow.
pub fn raw(shape: Shape, step: u64) -> RawCluster {
    let step_i = step as i64;
    let topics: Vec<RawTopic> = (0..shape.topics)
        .map(|t| RawTopic {
            name: format!("topic-{t:03}"),
            internal: false,
            error: None,
            partitions: (0..shape.partitions)
                .map(|p| {
                    let leader = (t as i32 + p) % shape.brokers + 1;
                    let replicas: Vec<i32> =
                        (0..3.min(shape.brokers)).map(|r| (leader - 1 + r) % shape.brokers + 1).collect();
                    RawPartition {
                        index: p,
                        leader,
                        isr: replicas.clone(),
                        replicas,
                        offline_replicas: Vec::new(),
                        error: None,
                        log_start: Some(0),
                        log_end: Some(1_000 + step_i * (10 + i64::from(p))),
                    }
                })
                .collect(),
        })
        .collect();
    let groups = (0..shape.groups)
        .map(|g| {
            let topic = format!("topic-{:03}", g % shape.topics.max(1));
            let committed = (0..shape.partitions)
                .map(|p| (topic.clone(), p, 1_000 + step_i * (10 + i64::from(p)) - (g as i64 % 7) * step_i))
                .collect();
            let assignment = (0..shape.partitions).map(|p| (topic.clone(), p)).collect();
            RawGroup {
                id: format!("group-{g:03}"),
                state: "Stable".into(),
                protocol_type: "consumer".into(),
                protocol: "range".into(),
                coordinator: Some(g as i32 % shape.brokers + 1),
                members: vec![member(g, "rdkafka", assignment)],
                committed,
                error: None,
            }
        })
        .collect();
    let brokers = (1..=shape.brokers)
        .map(|id| {
            let mut sample = MetricsSample { at: Some(time(step)), ..MetricsSample::default() };
            for t in 0..shape.topics {
                let bytes = (step * 10_000 * (t as u64 + 1)) as f64;
                sample.topics.insert(format!("topic-{t:03}"), (bytes, bytes * 2.0));
                sample.bytes_in += bytes;
                sample.bytes_out += bytes * 2.0;
            }
            broker(id, Some(sample))
        })
        .collect();
    RawCluster {
        statuses: Vec::new(),
        tail: None,
        notice: None,
        cluster_id: Some("synthetic".into()),
        controller: Some(1),
        brokers,
        topics,
        groups,
        requests: Default::default(),
        took: Duration::from_millis(12),
    }
}

/// A synthetic cluster after `steps` refreshes.
pub fn synthetic(shape: Shape, steps: u64) -> Snapshot {
    let mut snapshot = Snapshot::waiting("broker-1.example:9092");
    for step in 0..steps {
        snapshot = Snapshot::next(&snapshot, raw(shape, step), time(step));
    }
    snapshot
}

fn partition(index: i32, leader: i32, replicas: &[i32], isr: &[i32], start: i64, end: i64) -> RawPartition {
    RawPartition {
        index,
        leader,
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
        offline_replicas: Vec::new(),
        error: None,
        log_start: (leader >= 0).then_some(start),
        log_end: (leader >= 0).then_some(end),
    }
}

/// Refresh `step` of a small cluster with one of each problem: broker 3 is down,
/// `web-logs-1` is under-replicated, `metrics-1` is offline, group `sink-elasticsearch` falls
/// behind, `sink-influxdb` keeps up, `audit` has a member without committed offsets.
pub fn small_raw(step: u64) -> RawCluster {
    let s = step as i64;
    let mut requests = crate::model::RequestCounts::default();
    for (api, n) in [("Metadata", 1), ("DescribeCluster", 1), ("ListOffsets", 4), ("ListGroups", 2)] {
        for _ in 0..n {
            requests.add(api);
        }
    }
    requests.add("DescribeGroups");
    requests.add("OffsetFetch");
    requests.http = 2;
    let metrics = |id: u64| MetricsSample {
        at: Some(time(step)),
        bytes_in: (step * 50_000 * id) as f64,
        bytes_out: (step * 120_000 * id) as f64,
        topics: BTreeMap::from([("web-logs".to_string(), ((step * 50_000 * id) as f64, (step * 120_000 * id) as f64))]),
        partition_sizes: BTreeMap::from([(("web-logs".to_string(), 0), 3_145_728)]),
    };
    RawCluster {
        cluster_id: Some("mr-4f1c".into()),
        controller: Some(1),
        brokers: vec![broker(1, Some(metrics(1))), broker(2, Some(metrics(2)))],
        topics: vec![
            RawTopic {
                name: "web-logs".into(),
                internal: false,
                error: None,
                partitions: vec![
                    partition(0, 1, &[1, 2], &[1, 2], 0, 1_200 + 40 * s),
                    partition(1, 2, &[2, 3], &[2], 100, 900 + 20 * s),
                    partition(2, 1, &[1, 2], &[1, 2], 0, 450 + 10 * s),
                ],
            },
            RawTopic {
                name: "metrics".into(),
                internal: false,
                error: None,
                partitions: vec![partition(0, 2, &[2, 1], &[2, 1], 0, 5_000), partition(1, -1, &[3], &[], 0, 0)],
            },
        ],
        groups: vec![
            RawGroup {
                id: "sink-elasticsearch".into(),
                state: "Stable".into(),
                protocol_type: "consumer".into(),
                protocol: "range".into(),
                coordinator: Some(1),
                members: vec![member(7, "es-sink", vec![("web-logs".into(), 0), ("web-logs".into(), 1)])],
                committed: vec![("web-logs".into(), 0, 1_000 + 5 * s), ("web-logs".into(), 1, 800)],
                error: None,
            },
            RawGroup {
                id: "sink-influxdb".into(),
                state: "Stable".into(),
                protocol_type: "consumer".into(),
                protocol: "roundrobin".into(),
                coordinator: Some(2),
                members: vec![member(8, "influx-sink", vec![("metrics".into(), 0)])],
                committed: vec![("metrics".into(), 0, 4_990)],
                error: None,
            },
            RawGroup {
                id: "audit".into(),
                state: "Stable".into(),
                protocol_type: "consumer".into(),
                protocol: "range".into(),
                coordinator: Some(1),
                members: vec![member(9, "auditor", vec![("web-logs".into(), 2)])],
                committed: Vec::new(),
                error: None,
            },
        ],
        statuses: statuses(step),
        tail: None,
        notice: None,
        requests,
        took: Duration::from_millis(23),
    }
}

/// The pipeline of the small cluster: agent `web-1` delivering, agent `web-2` silent since the
/// start, sink `es` writing, sink `influx` whose InfluxDB answers 503.
pub fn statuses(step: u64) -> Vec<Status> {
    let ms = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let base = |kind, host: &str, name: &str, at: SystemTime| Status {
        v: 1,
        kind,
        host: host.into(),
        name: name.into(),
        version: "0.1.0".into(),
        pid: 4242,
        started_ms: ms(time(0)),
        time_ms: ms(at),
        interval_ms: 5_000,
        state: RunState::Running,
        agent: None,
        sink: None,
    };
    let agent = |events: u64| AgentStatus {
        inputs: vec![InputStatus {
            name: "nginx".into(),
            kind: "file".into(),
            events_total: events,
            dropped_total: 0,
            lag_bytes: Some(2_048),
        }],
        delivered_total: events,
        delivery_errors_total: 0,
        in_flight: 12,
        disk_buffer_bytes: 0,
        disk_buffer_capacity_bytes: 256 << 20,
    };
    let sink = |destination: &str, target: &str, forwarded: u64, state, error: Option<&str>| SinkStatus {
        destination: destination.into(),
        target: target.into(),
        group: format!("sink-{destination}"),
        topics: vec!["web-logs".into()],
        forwarded_total: forwarded,
        write_failures_total: u64::from(error.is_some()) * step,
        lag_records: Some(120),
        destination_state: state,
        last_error: error.map(str::to_string),
        ..SinkStatus::default()
    };
    vec![
        Status { agent: Some(agent(1_000 + 400 * step)), ..base(ComponentKind::Agent, "web-1", "web-1", time(step)) },
        Status {
            agent: Some(agent(50)),
            ..base(ComponentKind::Agent, "web-2", "web-2", time(0) - Duration::from_secs(60))
        },
        Status {
            sink: Some(sink("elasticsearch", "https://es-1:9200", 900 + 380 * step, DestinationState::Ok, None)),
            ..base(ComponentKind::Sink, "sink-1", "es", time(step))
        },
        Status {
            sink: Some(sink(
                "influxdb",
                "http://influx:8086",
                4_990,
                DestinationState::Failing,
                Some("503 Service Unavailable"),
            )),
            ..base(ComponentKind::Sink, "sink-1", "influx", time(step))
        },
    ]
}

/// The small cluster after `steps` refreshes; broker 3 was up in the first one only.
pub fn small(steps: u64) -> Snapshot {
    let mut snapshot = Snapshot::waiting("127.0.0.1:9092");
    for step in 0..steps {
        let mut raw = small_raw(step);
        if step == 0 {
            raw.brokers.push(broker(3, None));
        }
        snapshot = Snapshot::next(&snapshot, raw, time(step));
    }
    snapshot
}
