//! What the brokers report: partitions and the cluster as their Metadata and DescribeCluster
//! answers show them, the waits on those views, and replica logs read from disk.

use super::{Cluster, METADATA_TIMEOUT};
use crate::{millrace, wait_for, KafkaConn};
use anyhow::{bail, Context};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{DescribeClusterRequest, MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::path::PathBuf;
use std::time::Duration;

/// One partition as a broker reports it in Metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition index.
    pub partition: i32,
    /// Leader broker id, -1 when offline.
    pub leader: i32,
    /// Leader epoch.
    pub leader_epoch: i32,
    /// Assigned replicas.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Partition-level error code (0 = none).
    pub error_code: i16,
}

impl PartitionInfo {
    /// True when every assigned replica is in sync.
    pub fn isr_complete(&self) -> bool {
        let (mut isr, mut replicas) = (self.isr.clone(), self.replicas.clone());
        isr.sort_unstable();
        replicas.sort_unstable();
        !replicas.is_empty() && isr == replicas
    }
}

/// Asks the broker at `addr` for `topic`'s partitions (Metadata v9, no auto-creation).
pub fn fetch_partitions(addr: &str, topic: &str, timeout: Duration) -> anyhow::Result<Vec<PartitionInfo>> {
    let mut conn = KafkaConn::connect_addr(addr, timeout)?;
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(topic.to_string()))))
        ]))
        .with_allow_auto_topic_creation(false);
    let response = conn.request(9, &request).with_context(|| format!("Metadata from {addr}"))?;
    let entry = response
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
        .with_context(|| format!("{addr} returned no entry for topic {topic}"))?;
    if entry.error_code != 0 {
        bail!("{addr}: topic {topic} has error code {}", entry.error_code);
    }
    if entry.partitions.is_empty() {
        bail!("{addr}: topic {topic} has no partitions");
    }
    let mut partitions: Vec<PartitionInfo> = entry
        .partitions
        .iter()
        .map(|p| PartitionInfo {
            partition: p.partition_index,
            leader: p.leader_id.0,
            leader_epoch: p.leader_epoch,
            replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
            isr: p.isr_nodes.iter().map(|b| b.0).collect(),
            error_code: p.error_code,
        })
        .collect();
    partitions.sort_by_key(|p| p.partition);
    Ok(partitions)
}

/// What one broker's DescribeCluster says about the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterView {
    /// Unfenced brokers, sorted: those that may lead partitions.
    pub brokers: Vec<i32>,
    /// Every registered broker, fenced ones too, sorted.
    pub registered: Vec<i32>,
    /// `controller_id`: the active controller (metadata-quorum leader), -1 when unknown.
    pub controller: i32,
}

/// Asks the broker at `addr` for the brokers, fenced or not, and the controller (DescribeCluster
/// v2 with `include_fenced_brokers`; Metadata lists fenced brokers too).
pub fn fetch_cluster_view(addr: &str, timeout: Duration) -> anyhow::Result<ClusterView> {
    let mut conn = KafkaConn::connect_addr(addr, timeout)?;
    let request = DescribeClusterRequest::default().with_include_fenced_brokers(true);
    let response = conn.request(2, &request).with_context(|| format!("DescribeCluster from {addr}"))?;
    anyhow::ensure!(response.error_code == 0, "DescribeCluster from {addr}: error {}", response.error_code);
    let mut brokers: Vec<i32> = response.brokers.iter().filter(|b| !b.is_fenced).map(|b| b.broker_id.0).collect();
    let mut registered: Vec<i32> = response.brokers.iter().map(|b| b.broker_id.0).collect();
    brokers.sort_unstable();
    registered.sort_unstable();
    Ok(ClusterView { brokers, registered, controller: response.controller_id.0 })
}

impl Cluster {
    /// `millrace topic create` with `--topic-config` entries, then waits until every live broker
    /// shows every partition with a live leader and a full ISR.
    pub fn create_topic(&self, name: &str, partitions: i32, replication: i32, configs: &[&str]) -> anyhow::Result<()> {
        let bootstrap = self.live_bootstrap();
        let (partitions_arg, replication_arg) = (partitions.to_string(), replication.to_string());
        let mut args =
            vec!["topic", "create", name, "--partitions", &partitions_arg, "--replication-factor", &replication_arg];
        for config in configs {
            args.extend(["--topic-config", config]);
        }
        args.extend(["--bootstrap", &bootstrap]);
        // The CLI gives up after 10 s; on a loaded machine a fresh cluster can take longer, and
        // the topic may exist by then. Try again (bounded) unless it does.
        let mut attempt = 1;
        while let Err(e) = millrace(&args) {
            if self.describe(name).is_ok_and(|parts| !parts.is_empty()) {
                break;
            }
            anyhow::ensure!(attempt < 3, "creating topic {name} failed {attempt} times, the last: {e:#}");
            eprintln!("creating topic {name} failed ({e:#}); trying again");
            attempt += 1;
            std::thread::sleep(Duration::from_secs(1));
        }
        let parts = self.wait_isr_full(name, Duration::from_secs(60))?;
        anyhow::ensure!(parts.len() == partitions as usize, "{name} has {} partitions: {parts:?}", parts.len());
        anyhow::ensure!(
            parts.iter().all(|p| p.replicas.len() == replication as usize),
            "{name} does not have {replication} replicas per partition: {parts:?}"
        );
        Ok(())
    }

    /// `topic`'s partitions as broker `id` reports them.
    pub fn describe_from(&self, id: i32, topic: &str) -> anyhow::Result<Vec<PartitionInfo>> {
        fetch_partitions(&self.broker(id).kafka_addr(), topic, METADATA_TIMEOUT)
    }

    /// `topic`'s partitions as the first live broker that answers reports them.
    pub fn describe(&self, topic: &str) -> anyhow::Result<Vec<PartitionInfo>> {
        let mut errors = Vec::new();
        for id in self.live_ids() {
            match self.describe_from(id, topic) {
                Ok(parts) => return Ok(parts),
                Err(e) => errors.push(format!("broker {id}: {e:#}")),
            }
        }
        bail!("no live broker described {topic}: [{}]", errors.join("; "))
    }

    /// Every live broker's view of `topic`.
    pub fn views(&self, topic: &str) -> Vec<(i32, anyhow::Result<Vec<PartitionInfo>>)> {
        self.live_ids().into_iter().map(|id| (id, self.describe_from(id, topic))).collect()
    }

    /// Waits until `check` holds for `topic` in the view of every live broker (at least one);
    /// returns the view of the first. The error shows every view of the last attempt.
    pub fn wait_partitions(
        &self,
        topic: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&[PartitionInfo]) -> bool,
    ) -> anyhow::Result<Vec<PartitionInfo>> {
        let mut last = String::new();
        let mut found = None;
        let waited = wait_for(&format!("{topic}: {what}"), timeout, || {
            let views = self.views(topic);
            last = views
                .iter()
                .map(|(id, view)| match view {
                    Ok(parts) => format!("broker {id} sees {parts:?}"),
                    Err(e) => format!("broker {id}: {e:#}"),
                })
                .collect::<Vec<_>>()
                .join("\n");
            let ok = !views.is_empty() && views.iter().all(|(_, v)| v.as_ref().is_ok_and(|parts| check(parts)));
            if ok {
                found = views.into_iter().next().and_then(|(_, v)| v.ok());
            }
            Ok(ok)
        });
        waited.with_context(|| format!("last views:\n{last}"))?;
        found.context("no view")
    }

    fn leaders_live(&self, parts: &[PartitionInfo]) -> bool {
        parts.iter().all(|p| p.error_code == 0 && p.leader >= 1 && p.leader <= self.brokers.len() as i32)
            && parts.iter().all(|p| self.is_live(p.leader))
    }

    /// Waits until every partition of `topic` has a live leader in every live broker's view.
    pub fn wait_leader_elected(&self, topic: &str, timeout: Duration) -> anyhow::Result<Vec<PartitionInfo>> {
        self.wait_partitions(topic, "every partition led by a live broker", timeout, |parts| self.leaders_live(parts))
    }

    /// Waits until `partition` of `topic` is led by a live broker other than `old` (and every
    /// other partition by a live broker), in every live broker's view; returns the new leader.
    pub fn wait_new_leader(&self, topic: &str, partition: i32, old: i32, timeout: Duration) -> anyhow::Result<i32> {
        let what = format!("partition {partition} led by a live broker other than {old}");
        let parts = self.wait_partitions(topic, &what, timeout, |parts| {
            self.leaders_live(parts) && parts.iter().any(|p| p.partition == partition && p.leader != old)
        })?;
        parts.iter().find(|p| p.partition == partition).map(|p| p.leader).context("partition vanished")
    }

    /// Waits until every partition of `topic` has a live leader and all its replicas in sync, in
    /// every live broker's view.
    pub fn wait_isr_full(&self, topic: &str, timeout: Duration) -> anyhow::Result<Vec<PartitionInfo>> {
        self.wait_partitions(topic, "every partition with a live leader and a full ISR", timeout, |parts| {
            self.leaders_live(parts) && parts.iter().all(PartitionInfo::isr_complete)
        })
    }

    /// Current leader of `partition` (from the first live broker that answers); an error when it
    /// has none.
    pub fn leader_of(&self, topic: &str, partition: i32) -> anyhow::Result<i32> {
        let parts = self.describe(topic)?;
        let p =
            parts.iter().find(|p| p.partition == partition).with_context(|| format!("{topic} has no {partition}"))?;
        anyhow::ensure!(p.leader >= 0, "{topic}-{partition} has no leader: {p:?}");
        Ok(p.leader)
    }

    /// `(offset, value)` of every record broker `id` holds on disk for `topic`-`partition`. Stop
    /// the broker first ([`Cluster::stop`]) so that everything it accepted is in the files.
    pub fn replica_log(&self, id: i32, topic: &str, partition: i32) -> anyhow::Result<LogRecords> {
        read_segments(&self.broker(id).data_dir.join(format!("{topic}-{partition}")))
            .with_context(|| format!("reading broker {id}'s replica of {topic}-{partition}"))
    }

    /// As [`Cluster::replica_log`], with each record's producer id and epoch.
    pub fn replica_records(&self, id: i32, topic: &str, partition: i32) -> anyhow::Result<Vec<StoredRecord>> {
        read_stored(&self.broker(id).data_dir.join(format!("{topic}-{partition}")))
            .with_context(|| format!("reading broker {id}'s replica of {topic}-{partition}"))
    }

    /// Every live broker's [`ClusterView`].
    pub fn cluster_views(&self) -> Vec<(i32, anyhow::Result<ClusterView>)> {
        self.live_ids()
            .into_iter()
            .map(|id| (id, fetch_cluster_view(&self.broker(id).kafka_addr(), METADATA_TIMEOUT)))
            .collect()
    }

    /// The metadata-quorum leader: the `controller_id` every live broker reports in Metadata, if
    /// they all answer and agree on one. Failing that, the newest
    /// `metadata quorum leader … leader=N` line in the live brokers' logs, if any.
    pub fn quorum_leader(&self) -> Option<i32> {
        let views = self.cluster_views();
        let controllers: Vec<i32> = views.iter().filter_map(|(_, v)| v.as_ref().ok().map(|v| v.controller)).collect();
        if controllers.len() == views.len() && controllers.first().is_some_and(|&c| c >= 1) {
            if controllers.iter().all(|c| *c == controllers[0]) {
                return Some(controllers[0]);
            }
            return None;
        }
        self.quorum_leader_from_logs()
    }

    fn quorum_leader_from_logs(&self) -> Option<i32> {
        let mut newest: Option<(String, i32)> = None;
        for id in self.live_ids() {
            let log = self.broker(id).process.fresh_log();
            let Some(line) = log.lines().rev().find(|l| l.contains("metadata quorum leader")) else { continue };
            let Some(leader) = line
                .split_once("metadata quorum leader")
                .and_then(|(_, fields)| fields.split_whitespace().find_map(|f| f.strip_prefix("leader=")))
                .and_then(|v| v.trim_matches('"').parse().ok())
            else {
                continue;
            };
            // Lines start with an RFC 3339 UTC timestamp, so text order is time order.
            let stamp = line.split_whitespace().next().unwrap_or_default().to_string();
            if newest.as_ref().is_none_or(|(s, _)| stamp > *s) {
                newest = Some((stamp, leader));
            }
        }
        newest.map(|(_, leader)| leader)
    }

    /// Waits until the live brokers agree on a metadata-quorum leader other than `old` (see
    /// [`Cluster::quorum_leader`]); returns it.
    pub fn wait_quorum_leader_change(&self, old: i32, timeout: Duration) -> anyhow::Result<i32> {
        let mut leader = None;
        wait_for(&format!("the live brokers to agree on a metadata quorum leader other than {old}"), timeout, || {
            leader = self.quorum_leader().filter(|&l| l != old);
            Ok(leader.is_some())
        })?;
        leader.context("no leader")
    }
}

/// `(offset, value)` pairs of a partition's log in offset order (`None` for a null value).
pub type LogRecords = Vec<(i64, Option<String>)>;

/// A record as stored, with the idempotent producer that wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecord {
    /// Its offset.
    pub offset: i64,
    /// Its value (`None` for a null value).
    pub value: Option<String>,
    /// The batch's producer id (-1 without one).
    pub producer_id: i64,
    /// The batch's producer epoch.
    pub producer_epoch: i16,
}

/// `(offset, value)` of every record in the segment files of `dir` (a partition directory,
/// Kafka layout: `<topic>-<partition>/<base offset>.log`), in offset order. Stops at a torn or
/// zero-filled tail, as the broker's recovery would.
pub fn read_segments(dir: &std::path::Path) -> anyhow::Result<LogRecords> {
    Ok(read_stored(dir)?.into_iter().map(|r| (r.offset, r.value)).collect())
}

/// As [`read_segments`], with each record's producer id and epoch.
pub fn read_stored(dir: &std::path::Path) -> anyhow::Result<Vec<StoredRecord>> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segments.sort();
    anyhow::ensure!(!segments.is_empty(), "no segment files in {}", dir.display());
    let mut records = Vec::new();
    for segment in segments {
        let data = std::fs::read(&segment)?;
        let mut at = 0;
        // Each batch: base offset (8 bytes), length of the rest (4 bytes), the rest.
        while let Some(header) = data.get(at..at + 12) {
            let length = i32::from_be_bytes([header[8], header[9], header[10], header[11]]);
            let Some(end) = usize::try_from(length).ok().filter(|&l| l > 0).map(|l| at + 12 + l) else { break };
            let Some(batch) = data.get(at..end) else { break };
            let mut batch = bytes::Bytes::copy_from_slice(batch);
            let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut batch)
                .with_context(|| format!("decoding the batch at byte {at} of {}", segment.display()))?;
            for record in set.records {
                records.push(StoredRecord {
                    offset: record.offset,
                    value: record.value.map(|v| String::from_utf8_lossy(&v).into_owned()),
                    producer_id: record.producer_id,
                    producer_epoch: record.producer_epoch,
                });
            }
            at = end;
        }
    }
    Ok(records)
}
