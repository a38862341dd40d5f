//! Reads the cluster through Kafka APIs only (so any Kafka-compatible cluster works), plus each
//! broker's Prometheus endpoint where there is one.
//!
//! A refresh, in stages (brokers in parallel within a stage, one request in flight per
//! connection): Metadata (+ DescribeCluster) from the first broker that answers; per leader,
//! ListOffsets earliest and latest for all its partitions, ListGroups, and every ~30 s
//! DescribeConfigs for the admin address; FindCoordinator only for groups whose coordinator is
//! not cached; per coordinator, DescribeGroups and OffsetFetch batched; one Fetch of what is new
//! in the pipeline's status topic (`__millrace_status`); then `/metrics`.
//! Connections are kept between refreshes; every request has a timeout and is counted.

mod actions;
mod conn;
mod decode;
pub use decode::assigned_partitions;
mod metrics;
mod plan;
pub mod records;
mod rounds;
mod status;
mod tail;

pub use conn::{Versions, APIS_USED};
pub use metrics::MetricsSource;
pub use plan::{plan_requests, ClusterShape};

use crate::model::{RawBroker, RawCluster, RawGroup, RawTopic, RequestCounts};
use conn::Conn;
use decode::ListedGroup;
use kafka_protocol::messages::{DescribeClusterResponse, DescribeQuorumResponse, MetadataResponse};
use millrace_protocol::client::Security;
use millrace_protocol::ClientError;
use rounds::{broker_round, coordinator_round, Offsets, TopicPartition};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

/// How the poller reaches the cluster.
#[derive(Clone, Debug)]
pub struct PollerConfig {
    /// Bootstrap addresses, HOST:PORT, tried in order.
    pub bootstrap: Vec<String>,
    /// Where per-broker metrics come from.
    pub metrics: MetricsSource,
    /// Deadline of each request (and of each connection attempt).
    pub request_timeout: Duration,
    /// How often brokers are asked for their configuration (admin address).
    pub configs_every: Duration,
    /// TLS and SASL for the brokers' listener (default: PLAINTEXT).
    pub security: Security,
}

/// What one refresh produced.
#[derive(Debug)]
pub enum Poll {
    /// Metadata answered; parts may still have failed (marked per broker or group).
    Answered(RawCluster),
    /// No broker answered Metadata.
    Unreachable {
        /// The last error.
        error: String,
        /// Requests tried.
        requests: RequestCounts,
        /// Time spent.
        took: Duration,
    },
}

/// Keeps connections, coordinators and admin addresses between refreshes.
pub struct Poller {
    config: PollerConfig,
    conns: HashMap<String, Conn>,
    /// The address that answered Metadata last, tried first.
    last_good: Option<String>,
    /// Broker id → address, from the latest Metadata.
    known: BTreeMap<i32, String>,
    coordinators: HashMap<String, i32>,
    metrics_urls: HashMap<i32, String>,
    configs_asked: HashMap<i32, Instant>,
    http: reqwest::Client,
    /// The pipeline's status records read so far.
    status: status::StatusTable,
}

impl Poller {
    /// A poller with no connection yet.
    pub fn new(config: PollerConfig) -> Result<Poller, String> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .user_agent(concat!("millrace-top/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("creating the HTTP client: {e}"))?;
        Ok(Poller {
            config,
            conns: HashMap::new(),
            last_good: None,
            known: BTreeMap::new(),
            coordinators: HashMap::new(),
            metrics_urls: HashMap::new(),
            configs_asked: HashMap::new(),
            http,
            status: status::StatusTable::default(),
        })
    }

    /// Adds a bootstrap address, tried after the configured ones from the next refresh on (for
    /// a cluster that appears at a new address while the poller runs).
    pub fn add_bootstrap(&mut self, addr: impl Into<String>) {
        self.config.bootstrap.push(addr.into());
    }

    /// One refresh.
    pub async fn poll(&mut self) -> Poll {
        self.poll_with(None).await
    }

    /// One refresh, reading the last records of `tail` too (the tail pane is open).
    pub async fn poll_with(&mut self, tail: Option<&str>) -> Poll {
        let started = Instant::now();
        let mut counts = RequestCounts::default();
        let (metadata, cluster, quorum) = match self.metadata(&mut counts).await {
            Ok(found) => found,
            Err(error) => return Poll::Unreachable { error, requests: counts, took: started.elapsed() },
        };
        let mut topics = decode::topics(&metadata);
        let mut brokers = decode::brokers(&metadata, cluster.as_ref());
        if let Some(quorum) = &quorum {
            let roles = decode::quorum_roles(quorum);
            for b in &mut brokers {
                b.quorum = roles.get(&b.id).copied();
            }
        }
        let controller = cluster
            .as_ref()
            .map(|c| c.controller_id.0)
            .filter(|id| *id >= 0)
            .or_else(|| Some(metadata.controller_id.0).filter(|id| *id >= 0));
        let cluster_id = cluster
            .as_ref()
            .map(|c| c.cluster_id.to_string())
            .or_else(|| metadata.cluster_id.as_ref().map(|c| c.to_string()));
        self.known = brokers.iter().filter(|b| !b.fenced).map(|b| (b.id, format!("{}:{}", b.host, b.port))).collect();
        let listed = self.broker_stage(&mut topics, &mut brokers, &mut counts).await;
        let groups = self.group_stage(listed, &brokers, &mut counts).await;
        let statuses = self.status_stage(&topics, &brokers, &mut counts).await;
        let tail = match tail {
            Some(topic) => Some(self.tail_stage(topic, &topics, &brokers, &mut counts).await),
            None => None,
        };
        self.metrics_stage(&mut brokers, &mut counts).await;
        // Forget connections to brokers that left.
        let keep: HashSet<&String> = self.known.values().chain(self.config.bootstrap.iter()).collect();
        self.conns.retain(|addr, _| keep.contains(addr));
        Poll::Answered(RawCluster {
            cluster_id,
            controller,
            brokers,
            topics,
            groups,
            statuses,
            tail,
            notice: None,
            requests: counts,
            took: started.elapsed(),
        })
    }

    /// A cached connection or a new one.
    async fn conn(&mut self, addr: &str, counts: &mut RequestCounts) -> Result<Conn, ClientError> {
        match self.conns.remove(addr) {
            Some(conn) => Ok(conn),
            None => Conn::open(addr, self.config.request_timeout, &self.config.security, counts).await,
        }
    }

    /// Metadata (and DescribeCluster) from the first broker that answers: the last one that
    /// did, then the bootstrap list, then every broker known.
    async fn metadata(
        &mut self,
        counts: &mut RequestCounts,
    ) -> Result<(MetadataResponse, Option<DescribeClusterResponse>, Option<DescribeQuorumResponse>), String> {
        let mut candidates: Vec<String> = self.last_good.iter().cloned().collect();
        candidates.extend(self.config.bootstrap.iter().cloned());
        candidates.extend(self.known.values().cloned());
        let mut seen = HashSet::new();
        candidates.retain(|a| seen.insert(a.clone()));
        let timeout = self.config.request_timeout;
        let mut last_error = "no bootstrap address".to_string();
        for addr in candidates {
            let mut conn = match self.conn(&addr, counts).await {
                Ok(conn) => conn,
                Err(e) => {
                    last_error = e.to_string();
                    continue;
                }
            };
            let Some((version, request)) = plan::metadata(&conn.versions) else {
                last_error = format!("broker {addr} offers no Metadata version this tool speaks");
                continue;
            };
            let metadata = match conn.call(version, &request, timeout, counts).await {
                Ok(m) => m,
                Err(e) => {
                    last_error = e.to_string();
                    continue;
                }
            };
            let mut cluster = None;
            if let Some((version, request)) = plan::describe_cluster(&conn.versions) {
                match conn.call(version, &request, timeout, counts).await {
                    Ok(answer) if answer.error_code == 0 => cluster = Some(answer),
                    Ok(_) => {}
                    Err(e) => {
                        // Metadata answered, so use it; the connection is dropped.
                        tracing::debug!(error = %e, "DescribeCluster failed");
                        self.last_good = Some(addr);
                        return Ok((metadata, None, None));
                    }
                }
            }
            let mut quorum = None;
            if let Some((version, request)) = plan::describe_quorum(&conn.versions) {
                match conn.call(version, &request, timeout, counts).await {
                    Ok(answer) if answer.error_code == 0 => quorum = Some(answer),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "DescribeQuorum failed");
                        self.last_good = Some(addr);
                        return Ok((metadata, cluster, None));
                    }
                }
            }
            self.conns.insert(addr.clone(), conn);
            self.last_good = Some(addr);
            return Ok((metadata, cluster, quorum));
        }
        self.last_good = None;
        Err(last_error)
    }

    /// Per broker in parallel: ListOffsets for the partitions it leads, ListGroups, and when due
    /// DescribeConfigs. Fills offsets into `topics`, marks brokers that failed, and returns the
    /// groups listed.
    async fn broker_stage(
        &mut self,
        topics: &mut [RawTopic],
        brokers: &mut [RawBroker],
        counts: &mut RequestCounts,
    ) -> Vec<ListedGroup> {
        let mut led: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
        for t in topics.iter() {
            for p in t.partitions.iter().filter(|p| p.leader >= 0) {
                led.entry(p.leader).or_default().push((t.name.clone(), p.index));
            }
        }
        let discover = self.config.metrics == MetricsSource::Discover;
        let now = Instant::now();
        let timeout = self.config.request_timeout;
        let mut rounds = Vec::new();
        for b in brokers.iter().filter(|b| !b.fenced) {
            let addr = format!("{}:{}", b.host, b.port);
            let partitions = led.remove(&b.id).unwrap_or_default();
            let due = discover
                && self.configs_asked.get(&b.id).is_none_or(|at| now.duration_since(*at) >= self.config.configs_every);
            let cached = self.conns.remove(&addr);
            rounds.push(broker_round(b.id, addr, cached, partitions, due, timeout, self.config.security.clone()));
        }
        let mut listed: BTreeMap<String, ListedGroup> = BTreeMap::new();
        let mut offsets: HashMap<TopicPartition, Offsets> = HashMap::new();
        for (id, addr, conn, round) in futures::future::join_all(rounds).await {
            counts.merge(&round.counts);
            if let Some(conn) = conn {
                self.conns.insert(addr, conn);
            }
            if round.configs_asked {
                self.configs_asked.insert(id, now);
            }
            if let Some(broker) = brokers.iter_mut().find(|b| b.id == id) {
                broker.error = round.error;
                if let Some(listener) = round.admin_listener {
                    if let Some(url) = metrics::url_from_admin_listener(&listener, &broker.host) {
                        self.metrics_urls.insert(id, url);
                    }
                }
            }
            for ((topic, partition), latest, value) in round.offsets {
                let entry = offsets.entry((topic, partition)).or_default();
                match (value, latest) {
                    (Ok(v), false) => entry.start = Some(v),
                    (Ok(v), true) => entry.end = Some(v),
                    (Err(e), _) => entry.error = Some(e),
                }
            }
            for g in round.groups {
                listed.entry(g.id.clone()).or_insert(g);
            }
        }
        for t in topics.iter_mut() {
            for p in t.partitions.iter_mut() {
                if let Some(found) = offsets.remove(&(t.name.clone(), p.index)) {
                    p.log_start = found.start;
                    p.log_end = found.end;
                    p.error = p.error.take().or(found.error);
                }
            }
        }
        listed.into_values().collect()
    }

    /// FindCoordinator for groups without a live cached coordinator, then per coordinator in
    /// parallel DescribeGroups and OffsetFetch; groups whose coordinator moved are found again
    /// and asked once more within the same refresh.
    async fn group_stage(
        &mut self,
        listed: Vec<ListedGroup>,
        brokers: &[RawBroker],
        counts: &mut RequestCounts,
    ) -> Vec<RawGroup> {
        let live: HashMap<i32, String> = brokers
            .iter()
            .filter(|b| !b.fenced && b.error.is_none())
            .map(|b| (b.id, format!("{}:{}", b.host, b.port)))
            .collect();
        let mut groups: BTreeMap<String, RawGroup> = listed
            .into_iter()
            .map(|g| {
                let raw = RawGroup {
                    id: g.id.clone(),
                    state: g.state,
                    protocol_type: g.protocol_type,
                    ..RawGroup::default()
                };
                (g.id, raw)
            })
            .collect();
        self.coordinators.retain(|g, c| groups.contains_key(g) && live.contains_key(c));
        let mut pending: Vec<String> = groups.keys().cloned().collect();
        for _attempt in 0..2 {
            if pending.is_empty() {
                break;
            }
            let unknown: Vec<String> =
                pending.iter().filter(|g| !self.coordinators.contains_key(*g)).cloned().collect();
            self.find_coordinators(&unknown, &mut groups, counts).await;
            let mut by_coordinator: BTreeMap<i32, Vec<String>> = BTreeMap::new();
            for g in &pending {
                if let Some(c) = self.coordinators.get(g) {
                    by_coordinator.entry(*c).or_default().push(g.clone());
                }
            }
            let mut rounds = Vec::new();
            for (id, members) in by_coordinator {
                let Some(addr) = live.get(&id).cloned() else {
                    for g in members {
                        if let Some(raw) = groups.get_mut(&g) {
                            raw.coordinator = Some(id);
                            raw.error = Some(format!("coordinator {id} is not answering"));
                        }
                    }
                    continue;
                };
                let cached = self.conns.remove(&addr);
                let security = self.config.security.clone();
                rounds.push(coordinator_round(id, addr, cached, members, self.config.request_timeout, security));
            }
            pending.clear();
            for (id, addr, conn, round) in futures::future::join_all(rounds).await {
                counts.merge(&round.counts);
                if let Some(conn) = conn {
                    self.conns.insert(addr, conn);
                }
                for g in round.moved {
                    self.coordinators.remove(&g);
                    pending.push(g);
                }
                for (g, described) in round.described {
                    let Some(raw) = groups.get_mut(&g) else { continue };
                    raw.coordinator = Some(id);
                    match described {
                        Ok(d) => {
                            raw.state = d.state;
                            raw.protocol_type = d.protocol_type;
                            raw.protocol = d.protocol;
                            raw.members = d.members;
                            raw.error = None;
                        }
                        Err(e) => raw.error = Some(e),
                    }
                }
                for (g, committed) in round.committed {
                    let Some(raw) = groups.get_mut(&g) else { continue };
                    match committed {
                        Ok(offsets) => raw.committed = offsets,
                        Err(e) => raw.error = Some(raw.error.take().unwrap_or(e)),
                    }
                }
            }
        }
        for g in pending {
            if let Some(raw) = groups.get_mut(&g) {
                raw.error.get_or_insert_with(|| "coordinator moved twice during the refresh".into());
            }
        }
        groups.into_values().collect()
    }

    /// Asks any broker for the coordinators of `unknown` and caches them.
    async fn find_coordinators(
        &mut self,
        unknown: &[String],
        groups: &mut BTreeMap<String, RawGroup>,
        counts: &mut RequestCounts,
    ) {
        if unknown.is_empty() {
            return;
        }
        let Some(addr) = self.last_good.clone() else { return };
        let mut conn = match self.conn(&addr, counts).await {
            Ok(conn) => conn,
            Err(e) => {
                for g in unknown {
                    if let Some(raw) = groups.get_mut(g) {
                        raw.error = Some(format!("finding the coordinator: {e}"));
                    }
                }
                return;
            }
        };
        let Some((version, requests)) = plan::find_coordinator(unknown, &conn.versions) else {
            self.conns.insert(addr, conn);
            return;
        };
        let batched = version >= 4;
        for (i, request) in requests.iter().enumerate() {
            let asked = if batched { None } else { unknown.get(i).map(String::as_str) };
            match conn.call(version, request, self.config.request_timeout, counts).await {
                Ok(answer) => {
                    for (g, found) in decode::coordinators(&answer, asked) {
                        match found {
                            Ok(id) => {
                                self.coordinators.insert(g, id);
                            }
                            Err(code) => {
                                if let Some(raw) = groups.get_mut(&g) {
                                    raw.error = decode::error_name(code).map(|e| format!("FindCoordinator: {e}"));
                                }
                            }
                        }
                    }
                }
                Err(e) => {
                    for g in unknown {
                        groups.get_mut(g).map(|raw| raw.error.get_or_insert_with(|| format!("FindCoordinator: {e}")));
                    }
                    return;
                }
            }
        }
        self.conns.insert(addr, conn);
    }

    /// Scrapes every broker's `/metrics` in parallel.
    async fn metrics_stage(&mut self, brokers: &mut [RawBroker], counts: &mut RequestCounts) {
        let ids: Vec<i32> = brokers.iter().map(|b| b.id).collect();
        let timeout = self.config.request_timeout;
        let mut scrapes = Vec::new();
        for (i, b) in brokers.iter().enumerate() {
            let url = match &self.config.metrics {
                MetricsSource::Discover => self.metrics_urls.get(&b.id).cloned(),
                given => given.url_for(b.id, &ids),
            };
            let Some(url) = url else { continue };
            if b.fenced || b.error.is_some() {
                continue;
            }
            let http = self.http.clone();
            scrapes.push(async move { (i, url.clone(), metrics::scrape(&http, &url, timeout).await) });
        }
        for (i, url, result) in futures::future::join_all(scrapes).await {
            counts.http += 1;
            if let Some(b) = brokers.get_mut(i) {
                b.metrics_url = Some(url);
                match result {
                    Ok(sample) => b.metrics = Some(sample),
                    Err(e) => tracing::debug!(broker = b.id, error = %e, "metrics scrape failed"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
