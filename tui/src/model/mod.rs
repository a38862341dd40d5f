//! What the screen shows, as plain data: a [`Snapshot`] of the cluster built from one refresh's
//! [`RawCluster`] and the previous snapshot. Nothing here does I/O; rates, lag and trends are
//! pure functions of (previous snapshot, new raw data) in [`build`].

pub mod build;
pub mod pipeline;
pub mod tail;

pub use build::{rate, trend};
pub use pipeline::{AgentRow, Health, SinkRow};
pub use tail::{RawTail, Tail, TailRow};

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// Refreshes of lag history kept per group (the sparkline's width).
pub const HISTORY_LEN: usize = 60;

/// Requests one refresh sent, per Kafka API, plus HTTP scrapes of `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Kafka requests per API name (`Metadata`, `ListOffsets`, …).
    pub kafka: BTreeMap<&'static str, u32>,
    /// HTTP GETs of Prometheus endpoints.
    pub http: u32,
}

impl RequestCounts {
    /// Counts one Kafka request of `api`.
    pub fn add(&mut self, api: &'static str) {
        *self.kafka.entry(api).or_default() += 1;
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &RequestCounts) {
        for (api, n) in &other.kafka {
            *self.kafka.entry(api).or_default() += n;
        }
        self.http += other.http;
    }

    /// Kafka requests of every API.
    pub fn kafka_total(&self) -> u32 {
        self.kafka.values().sum()
    }

    /// Kafka requests of one API.
    pub fn get(&self, api: &str) -> u32 {
        self.kafka.get(api).copied().unwrap_or(0)
    }
}

/// Counters read from one broker's `/metrics` at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsSample {
    /// When the scrape answered.
    pub at: Option<SystemTime>,
    /// Sum of the per-topic bytes-in counters.
    pub bytes_in: f64,
    /// Sum of the per-topic bytes-out counters.
    pub bytes_out: f64,
    /// Per topic: (bytes in, bytes out) counters.
    pub topics: BTreeMap<String, (f64, f64)>,
    /// Per (topic, partition): bytes of log on this broker's disk.
    pub partition_sizes: BTreeMap<(String, i32), u64>,
}

/// One broker as a refresh found it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawBroker {
    /// Broker id.
    pub id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// Rack, if configured.
    pub rack: Option<String>,
    /// Reported fenced by DescribeCluster.
    pub fenced: bool,
    /// Why the broker did not answer a request this refresh.
    pub error: Option<String>,
    /// Its Prometheus endpoint, if known.
    pub metrics_url: Option<String>,
    /// What the endpoint answered this refresh.
    pub metrics: Option<MetricsSample>,
    /// Its part in the metadata quorum, where the cluster answers DescribeQuorum.
    pub quorum: Option<QuorumMember>,
}

/// A broker's part in the metadata quorum (KRaft), as DescribeQuorum reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuorumMember {
    /// The active controller.
    Leader,
    /// A voter, with how many metadata records it is behind (None: unknown).
    Voter {
        /// Records behind the leader's high watermark.
        lag: Option<i64>,
    },
    /// A non-voting member receiving the metadata log.
    Observer {
        /// Records behind the leader's high watermark.
        lag: Option<i64>,
    },
}

impl QuorumMember {
    /// How the brokers table shows it.
    pub fn describe(&self) -> String {
        let behind = |lag: &Option<i64>| match lag {
            Some(n) if *n > 0 => format!(", {n} behind"),
            Some(_) => String::new(),
            None => ", lag unknown".to_string(),
        };
        match self {
            QuorumMember::Leader => "leader".to_string(),
            QuorumMember::Voter { lag } => format!("voter{}", behind(lag)),
            QuorumMember::Observer { lag } => format!("observer{}", behind(lag)),
        }
    }
}

/// One partition as Metadata and ListOffsets described it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawPartition {
    /// Partition index.
    pub index: i32,
    /// Leader id, -1 when offline.
    pub leader: i32,
    /// Replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Replicas whose log directory is offline.
    pub offline_replicas: Vec<i32>,
    /// A partition-level error from Metadata or ListOffsets.
    pub error: Option<String>,
    /// Earliest offset (ListOffsets -2).
    pub log_start: Option<i64>,
    /// Latest offset (ListOffsets -1).
    pub log_end: Option<i64>,
}

/// One topic as Metadata described it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawTopic {
    /// Topic name.
    pub name: String,
    /// Internal topic (`__consumer_offsets`).
    pub internal: bool,
    /// A topic-level error.
    pub error: Option<String>,
    /// Its partitions.
    pub partitions: Vec<RawPartition>,
}

/// One member of a consumer group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberRow {
    /// Member id given by the coordinator.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host as the coordinator saw it.
    pub host: String,
    /// (topic, partition) assigned to it, decoded from the consumer protocol.
    pub assignment: Vec<(String, i32)>,
}

/// One consumer group as a refresh found it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawGroup {
    /// Group id.
    pub id: String,
    /// `Stable`, `Empty`, `PreparingRebalance`, …
    pub state: String,
    /// `consumer`, `connect`, … (empty for groups that only commit offsets).
    pub protocol_type: String,
    /// The chosen assignor (`range`, …).
    pub protocol: String,
    /// The coordinator's broker id.
    pub coordinator: Option<i32>,
    /// Members and their assignments.
    pub members: Vec<MemberRow>,
    /// Committed offsets: (topic, partition, offset).
    pub committed: Vec<(String, i32, i64)>,
    /// Why the group could not be described or its offsets fetched.
    pub error: Option<String>,
}

/// Everything one refresh read from the cluster.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawCluster {
    /// Cluster id.
    pub cluster_id: Option<String>,
    /// Active controller (DescribeCluster, else Metadata).
    pub controller: Option<i32>,
    /// Brokers in Metadata (and fenced ones DescribeCluster reported).
    pub brokers: Vec<RawBroker>,
    /// Topics.
    pub topics: Vec<RawTopic>,
    /// Consumer groups.
    pub groups: Vec<RawGroup>,
    /// The latest status record of every agent and sink (`__millrace_status`).
    pub statuses: Vec<millrace_status::Status>,
    /// The latest records of the tailed topic, when one is.
    pub tail: Option<RawTail>,
    /// The outcome of a change the user confirmed, once sent.
    pub notice: Option<String>,
    /// Requests this refresh sent.
    pub requests: RequestCounts,
    /// How long the refresh took.
    pub took: Duration,
}

/// A broker's state as shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerState {
    /// In Metadata and answering.
    Up,
    /// Reported fenced by the cluster.
    Fenced,
    /// Seen before and now missing from Metadata, or not answering.
    Down,
}

impl BrokerState {
    /// Lower-case word for the table.
    pub fn word(self) -> &'static str {
        match self {
            BrokerState::Up => "up",
            BrokerState::Fenced => "fenced",
            BrokerState::Down => "down",
        }
    }
}

/// A broker row.
#[derive(Clone, Debug, PartialEq)]
pub struct BrokerRow {
    /// Broker id.
    pub id: i32,
    /// host:port.
    pub address: String,
    /// Rack.
    pub rack: Option<String>,
    /// Up, fenced or down.
    pub state: BrokerState,
    /// The active controller.
    pub is_controller: bool,
    /// Why it is down, or what failed talking to it.
    pub error: Option<String>,
    /// Partitions it leads.
    pub leads: usize,
    /// Partition replicas it hosts.
    pub replicas: usize,
    /// Prometheus endpoint.
    pub metrics_url: Option<String>,
    /// Bytes appended per second, from two consecutive scrapes.
    pub bytes_in_rate: Option<f64>,
    /// Bytes sent to consumers per second.
    pub bytes_out_rate: Option<f64>,
    /// The latest scrape, kept to compute the next rates.
    pub metrics: Option<MetricsSample>,
    /// Its part in the metadata quorum.
    pub quorum: Option<QuorumMember>,
}

/// A partition row.
#[derive(Clone, Debug, PartialEq)]
pub struct PartitionRow {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Leader id, -1 when offline.
    pub leader: i32,
    /// Replicas.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Offline replicas.
    pub offline_replicas: Vec<i32>,
    /// Earliest offset.
    pub log_start: Option<i64>,
    /// Latest offset.
    pub log_end: Option<i64>,
    /// Records appended per second (log end offset delta between snapshots).
    pub records_rate: Option<f64>,
    /// Bytes on the leader's disk (from its `/metrics`).
    pub size_bytes: Option<u64>,
    /// An error reported for the partition.
    pub error: Option<String>,
}

impl PartitionRow {
    /// No leader.
    pub fn offline(&self) -> bool {
        self.leader < 0
    }

    /// Has a leader, but fewer in-sync replicas than replicas.
    pub fn under_replicated(&self) -> bool {
        !self.offline() && self.isr.len() < self.replicas.len()
    }
}

/// A topic row with its partitions.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicRow {
    /// Topic name.
    pub name: String,
    /// Internal topic.
    pub internal: bool,
    /// A topic-level error.
    pub error: Option<String>,
    /// Partitions by index.
    pub partitions: Vec<PartitionRow>,
    /// Bytes appended per second, summed over brokers.
    pub bytes_in_rate: Option<f64>,
    /// Bytes sent to consumers per second, summed over brokers.
    pub bytes_out_rate: Option<f64>,
}

fn sum_some<T: std::iter::Sum<T>>(values: impl Iterator<Item = Option<T>>) -> Option<T> {
    let mut any = false;
    let total = values.flatten().inspect(|_| any = true).sum();
    any.then_some(total)
}

impl TopicRow {
    /// Under-replicated partitions.
    pub fn under_replicated(&self) -> usize {
        self.partitions.iter().filter(|p| p.under_replicated()).count()
    }

    /// Offline partitions.
    pub fn offline(&self) -> usize {
        self.partitions.iter().filter(|p| p.offline()).count()
    }

    /// Largest replica count.
    pub fn replication_factor(&self) -> usize {
        self.partitions.iter().map(|p| p.replicas.len()).max().unwrap_or(0)
    }

    /// Records stored (end − start, over partitions with both known).
    pub fn records(&self) -> Option<i64> {
        sum_some(self.partitions.iter().map(|p| Some(p.log_end? - p.log_start?)))
    }

    /// Records appended per second.
    pub fn records_rate(&self) -> Option<f64> {
        sum_some(self.partitions.iter().map(|p| p.records_rate))
    }

    /// Bytes on the leaders' disks.
    pub fn size_bytes(&self) -> Option<u64> {
        sum_some(self.partitions.iter().map(|p| p.size_bytes))
    }
}

/// Which way a group's lag is going over its recent history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trend {
    /// Lag rises: consumers fall behind.
    Growing,
    /// Lag falls: consumers catch up.
    Shrinking,
    /// Lag about flat.
    Steady,
    /// Too few refreshes to tell.
    Unknown,
}

impl Trend {
    /// Lower-case word for the table.
    pub fn word(self) -> &'static str {
        match self {
            Trend::Growing => "growing",
            Trend::Shrinking => "shrinking",
            Trend::Steady => "steady",
            Trend::Unknown => "-",
        }
    }
}

/// One partition of a group: committed offset, log end and lag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupPartitionRow {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed offset, if any.
    pub committed: Option<i64>,
    /// Log end offset.
    pub log_end: Option<i64>,
    /// log end − committed, or log end − log start when nothing is committed.
    pub lag: Option<i64>,
    /// The lag counts from the log start because nothing is committed.
    pub estimated: bool,
    /// Client id of the member it is assigned to.
    pub owner: Option<String>,
}

/// A consumer group row.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupRow {
    /// Group id.
    pub id: String,
    /// Group state.
    pub state: String,
    /// Protocol type (`consumer`).
    pub protocol_type: String,
    /// Assignor.
    pub protocol: String,
    /// Coordinator id.
    pub coordinator: Option<i32>,
    /// Members.
    pub members: Vec<MemberRow>,
    /// Partitions with a committed offset or an assignment.
    pub partitions: Vec<GroupPartitionRow>,
    /// Sum of known lags.
    pub total_lag: i64,
    /// Partitions whose lag is unknown (log end offset not read): `total_lag` is a lower bound.
    pub lag_unknown: usize,
    /// Total lag over the last refreshes, oldest first.
    pub lag_history: Vec<u64>,
    /// Direction of the lag.
    pub trend: Trend,
    /// What failed describing the group.
    pub error: Option<String>,
}

/// The cluster at one refresh, as shown.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// The bootstrap list asked.
    pub source: String,
    /// Who the brokers take this client for and how it connects (`User:alice over SASL_SSL`).
    pub identity: String,
    /// When the data shown was read; None before the first good refresh.
    pub taken_at: Option<SystemTime>,
    /// When the latest refresh (good or not) finished.
    pub attempted_at: Option<SystemTime>,
    /// How long the latest refresh took.
    pub took: Duration,
    /// Cluster id.
    pub cluster_id: Option<String>,
    /// Active controller.
    pub controller: Option<i32>,
    /// Brokers by id.
    pub brokers: Vec<BrokerRow>,
    /// Topics by name.
    pub topics: Vec<TopicRow>,
    /// Groups by id.
    pub groups: Vec<GroupRow>,
    /// Agents, from the status topic.
    pub agents: Vec<AgentRow>,
    /// Sinks, from the status topic.
    pub sinks: Vec<SinkRow>,
    /// The latest records of the tailed topic.
    pub tail: Option<Tail>,
    /// The outcome of the latest confirmed change.
    pub notice: Option<String>,
    /// Requests the latest refresh sent.
    pub requests: RequestCounts,
    /// Why the latest refresh failed: the cluster could not be reached.
    pub error: Option<String>,
}

/// Counts for the header line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Brokers up.
    pub brokers_up: usize,
    /// Brokers known.
    pub brokers_total: usize,
    /// Topics.
    pub topics: usize,
    /// Partitions.
    pub partitions: usize,
    /// Under-replicated partitions.
    pub under_replicated: usize,
    /// Offline partitions.
    pub offline: usize,
    /// Groups.
    pub groups: usize,
    /// Lag over every group.
    pub total_lag: i64,
    /// Group partitions whose lag is unknown (`total_lag` is then a lower bound).
    pub lag_unknown: usize,
    /// Agents and sinks shown.
    pub pipeline: usize,
    /// Of them, down (silent, or a destination failing).
    pub pipeline_down: usize,
}

impl Snapshot {
    /// The snapshot shown before the first refresh answers.
    pub fn waiting(source: &str) -> Snapshot {
        Snapshot { source: source.to_string(), ..Snapshot::default() }
    }

    /// Cluster-wide counts.
    pub fn summary(&self) -> Summary {
        let partitions = || self.topics.iter().flat_map(|t| t.partitions.iter());
        Summary {
            brokers_up: self.brokers.iter().filter(|b| b.state == BrokerState::Up).count(),
            brokers_total: self.brokers.len(),
            topics: self.topics.len(),
            partitions: partitions().count(),
            under_replicated: partitions().filter(|p| p.under_replicated()).count(),
            offline: partitions().filter(|p| p.offline()).count(),
            groups: self.groups.len(),
            total_lag: self.groups.iter().map(|g| g.total_lag).sum(),
            lag_unknown: self.groups.iter().map(|g| g.lag_unknown).sum(),
            pipeline: self.agents.len() + self.sinks.len(),
            pipeline_down: self.agents.iter().filter(|a| a.health == Health::Down).count()
                + self.sinks.iter().filter(|s| s.health == Health::Down).count(),
        }
    }

    /// A topic by name.
    pub fn topic(&self, name: &str) -> Option<&TopicRow> {
        self.topics.iter().find(|t| t.name == name)
    }

    /// A group by id.
    pub fn group(&self, id: &str) -> Option<&GroupRow> {
        self.groups.iter().find(|g| g.id == id)
    }
}
