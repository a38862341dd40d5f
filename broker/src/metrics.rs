//! Prometheus metrics: request counts and latencies per API, bytes and records in/out per
//! topic, and per-partition log gauges refreshed at scrape time.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::collections::HashMap;
use std::time::Instant;

/// One hosted partition's log gauges, as of a scrape.
pub struct PartitionGauges {
    /// Topic.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// First offset in the log.
    pub log_start_offset: i64,
    /// High watermark.
    pub high_watermark: i64,
    /// Next offset to be written.
    pub log_end_offset: i64,
    /// Whether this broker leads it.
    pub leader: bool,
    /// Bytes on disk.
    pub size_bytes: u64,
    /// Segment count.
    pub segments: usize,
}

/// A group's committed offset on a hosted partition, and that partition's end.
pub struct GroupLag {
    /// Group id.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Committed offset.
    pub committed: i64,
    /// The partition's high watermark (what a consumer can reach).
    pub log_end_offset: i64,
    /// How old the first record the group has not consumed is (its batch's first timestamp),
    /// in seconds; 0 when the group is caught up.
    pub lag_seconds: f64,
}

/// All broker metrics, registered in their own registry.
pub struct Metrics {
    registry: Registry,
    /// Request counter and latency histogram per supported API, resolved once so the hot path
    /// neither formats a label nor hashes it per request.
    per_api: HashMap<ApiKey, (IntCounter, Histogram)>,
    topic_bytes_in: IntCounterVec,
    topic_bytes_out: IntCounterVec,
    topic_records_in: IntCounterVec,
    topic_records_out: IntCounterVec,
    topic_produce_errors: IntCounterVec,
    /// Open client connections.
    pub connections: IntGauge,
    /// Log directories taken offline by an I/O error (Kafka's OfflineLogDirectoryCount).
    pub offline_log_dirs: IntGauge,
    /// Idempotent producers' batches that were already in the log (a retry after a lost
    /// answer): acknowledged again, not written twice.
    pub duplicate_batches: IntCounter,
    /// Connections closed because of malformed or oversized frames.
    pub protocol_errors: IntCounter,
    /// Requests for APIs or versions this broker does not implement.
    pub unsupported_requests: IntCounter,
    /// Connection limits of the Kafka, controller and admin listeners.
    pub listeners: ListenerMetrics,
    /// Partition health, controller role, readiness and ISR changes.
    pub health: HealthMetrics,
    log_end_offset: IntGaugeVec,
    high_watermark: IntGaugeVec,
    is_leader: IntGaugeVec,
    replication_bytes_in: IntCounterVec,
    log_start_offset: IntGaugeVec,
    log_size_bytes: IntGaugeVec,
    log_segments: IntGaugeVec,
    group_committed_offset: IntGaugeVec,
    group_log_end_offset: IntGaugeVec,
    group_lag: IntGaugeVec,
    group_lag_seconds: prometheus::GaugeVec,
    log_flush_seconds: HistogramVec,
}

fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    let metric = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

fn gauge_vec(registry: &Registry, name: &str, help: &str) -> Result<IntGaugeVec, prometheus::Error> {
    labelled_gauge_vec(registry, name, help, &["topic", "partition"])
}

fn labelled_gauge_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntGaugeVec, prometheus::Error> {
    let metric = IntGaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// What operators alert on (Kafka's ReplicaManager and KafkaController metrics under millrace's
/// names). The gauges are set at each scrape; the counters as ISR changes commit.
pub struct HealthMetrics {
    /// Partitions this broker leads whose ISR is smaller than their replica set.
    pub under_replicated_partitions: IntGauge,
    /// Partitions this broker leads whose ISR is below `min.insync.replicas`.
    pub under_min_isr_partitions: IntGauge,
    /// Partitions without a leader (reported by the active controller only).
    pub offline_partitions: IntGauge,
    /// 1 on the active controller, else 0 (the sum over brokers should be 1).
    pub active_controller: IntGauge,
    /// 1 while `/health` answers 200.
    pub ready: IntGauge,
    /// Metadata log entries the slowest voter is behind the active controller (0 elsewhere).
    pub quorum_max_follower_lag: IntGauge,
    /// Committed ISR changes of partitions this broker leads that removed members.
    pub isr_shrinks: IntCounter,
    /// … that added members.
    pub isr_expands: IntCounter,
}

impl HealthMetrics {
    fn new(registry: &Registry) -> Result<HealthMetrics, prometheus::Error> {
        let gauge = |name: &str, help: &str| -> Result<IntGauge, prometheus::Error> {
            let metric = IntGauge::new(name, help)?;
            registry.register(Box::new(metric.clone()))?;
            Ok(metric)
        };
        let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
            let metric = IntCounter::new(name, help)?;
            registry.register(Box::new(metric.clone()))?;
            Ok(metric)
        };
        Ok(HealthMetrics {
            under_replicated_partitions: gauge(
                "under_replicated_partitions",
                "Partitions this broker leads whose in-sync replicas are fewer than their replicas",
            )?,
            under_min_isr_partitions: gauge(
                "under_min_isr_partitions",
                "Partitions this broker leads whose in-sync replicas are below min.insync.replicas (acks=all fails)",
            )?,
            offline_partitions: gauge(
                "offline_partitions",
                "Partitions without a leader, as the active controller sees them (0 on other brokers)",
            )?,
            active_controller: gauge("active_controller", "1 where this node is the active controller, else 0")?,
            ready: gauge("ready", "1 while the broker is ready to serve (/health answers 200), else 0")?,
            quorum_max_follower_lag: gauge(
                "quorum_max_follower_lag",
                "Metadata log entries the slowest voter is behind, as the active controller sees it (0 on other brokers)",
            )?,
            isr_shrinks: counter("isr_shrinks_total", "ISR changes of led partitions that removed replicas")?,
            isr_expands: counter("isr_expands_total", "ISR changes of led partitions that added replicas")?,
        })
    }
}

/// What the connection limits of the listeners did. Created before the broker's other metrics,
/// because the controller serves its listener before the rest of the broker exists.
#[derive(Clone)]
pub struct ListenerMetrics {
    /// Connections closed on arrival, per listener and the limit that refused them.
    pub refused: IntCounterVec,
    /// Connections closed by the broker later, per listener and reason (idle, slow or oversized).
    pub closed: IntCounterVec,
    /// Bytes of the request memory budget (`server.queued_max_request_bytes`) in use.
    pub queued_request_bytes: IntGauge,
    /// SASL logins, by result (`success`, `failure`).
    pub authentications: IntCounterVec,
    /// How long requests waited for the request memory budget: the broker's request queue time.
    pub request_queue_wait: Histogram,
}

impl ListenerMetrics {
    /// Creates the metrics, not yet registered anywhere.
    pub fn new() -> Result<ListenerMetrics, prometheus::Error> {
        Ok(ListenerMetrics {
            refused: IntCounterVec::new(
                Opts::new("connections_refused_total", "Connections closed on arrival, per listener and limit"),
                &["listener", "reason"],
            )?,
            closed: IntCounterVec::new(
                Opts::new("connections_closed_total", "Connections closed by the broker, per listener and reason"),
                &["listener", "reason"],
            )?,
            queued_request_bytes: IntGauge::new(
                "queued_request_bytes",
                "Bytes of the request memory budget held by requests being read or processed",
            )?,
            authentications: IntCounterVec::new(
                Opts::new("sasl_authentications_total", "SASL logins on the Kafka listeners, by result"),
                &["result"],
            )?,
            request_queue_wait: Histogram::with_opts(
                HistogramOpts::new(
                    "request_queue_wait_seconds",
                    "Waits of requests for the request memory budget (server.queued_max_request_bytes) before \
                     they could be read whole: the broker's request queue time (only waits are counted)",
                )
                .buckets(vec![0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10.0]),
            )?,
        })
    }

    fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.refused.clone()))?;
        registry.register(Box::new(self.closed.clone()))?;
        registry.register(Box::new(self.authentications.clone()))?;
        registry.register(Box::new(self.request_queue_wait.clone()))?;
        registry.register(Box::new(self.queued_request_bytes.clone()))
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Metrics, prometheus::Error> {
        Metrics::with_listeners(ListenerMetrics::new()?)
    }

    /// Creates and registers every metric, including the listeners' that already exist.
    pub fn with_listeners(listeners: ListenerMetrics) -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("millrace_broker".into()), None)?;
        let request_seconds = HistogramVec::new(
            HistogramOpts::new(
                "request_duration_seconds",
                "Time from reading a request to its response being ready, per API",
            )
            .buckets(vec![
                0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["api"],
        )?;
        registry.register(Box::new(request_seconds.clone()))?;
        let log_flush_seconds = HistogramVec::new(
            HistogramOpts::new(
                "log_flush_duration_seconds",
                "fsyncs of partition logs (acks=all group commits and the background flush), per log \
                 directory: Kafka's LogFlushRateAndTimeMs",
            )
            .buckets(vec![0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0]),
            &["log_dir"],
        )?;
        registry.register(Box::new(log_flush_seconds.clone()))?;
        let connections = IntGauge::new("connections", "Open client connections")?;
        registry.register(Box::new(connections.clone()))?;
        let offline_log_dirs =
            IntGauge::new("offline_log_dirs", "Log directories offline after an I/O error (restart to recover)")?;
        registry.register(Box::new(offline_log_dirs.clone()))?;
        let duplicate_batches = IntCounter::new(
            "duplicate_batches_total",
            "Idempotent producer batches already in the log, acknowledged without being written again",
        )?;
        registry.register(Box::new(duplicate_batches.clone()))?;
        let protocol_errors =
            IntCounter::new("protocol_errors_total", "Connections closed for malformed or oversized requests")?;
        registry.register(Box::new(protocol_errors.clone()))?;
        let unsupported_requests = IntCounter::new(
            "unsupported_requests_total",
            "Requests for APIs or versions this broker does not implement",
        )?;
        registry.register(Box::new(unsupported_requests.clone()))?;
        listeners.register(&registry)?;
        let health = HealthMetrics::new(&registry)?;
        let requests = counter_vec(&registry, "requests_total", "Requests answered, per API", &["api"])?;
        let per_api = crate::api::SUPPORTED_APIS
            .iter()
            .map(|api| {
                let name = format!("{api:?}");
                (*api, (requests.with_label_values(&[&name]), request_seconds.with_label_values(&[&name])))
            })
            .collect();
        Ok(Metrics {
            registry: registry.clone(),
            per_api,
            log_flush_seconds,
            topic_bytes_in: counter_vec(
                &registry,
                "topic_bytes_in_total",
                "Record-batch bytes appended, per topic",
                &["topic"],
            )?,
            topic_bytes_out: counter_vec(
                &registry,
                "topic_bytes_out_total",
                "Record-batch bytes sent to consumers, per topic",
                &["topic"],
            )?,
            topic_records_in: counter_vec(
                &registry,
                "topic_records_in_total",
                "Records appended, per topic",
                &["topic"],
            )?,
            topic_records_out: counter_vec(
                &registry,
                "topic_records_out_total",
                "Records in batches sent to consumers, per topic",
                &["topic"],
            )?,
            topic_produce_errors: counter_vec(
                &registry,
                "topic_produce_errors_total",
                "Partition appends refused, per topic and Kafka error",
                &["topic", "error"],
            )?,
            connections,
            offline_log_dirs,
            duplicate_batches,
            protocol_errors,
            unsupported_requests,
            listeners,
            health,
            log_end_offset: gauge_vec(&registry, "log_end_offset", "Next offset to be written")?,
            high_watermark: gauge_vec(
                &registry,
                "partition_high_watermark",
                "Offset below which records are on every in-sync replica (visible to consumers)",
            )?,
            is_leader: gauge_vec(&registry, "partition_is_leader", "1 where this broker leads the partition, else 0")?,
            replication_bytes_in: counter_vec(
                &registry,
                "replication_bytes_in_total",
                "Record-batch bytes a follower copied from partition leaders, per topic",
                &["topic"],
            )?,
            log_start_offset: gauge_vec(&registry, "log_start_offset", "First offset still stored")?,
            log_size_bytes: gauge_vec(&registry, "log_size_bytes", "Bytes of segments on disk")?,
            log_segments: gauge_vec(&registry, "log_segments", "Number of segments")?,
            group_committed_offset: labelled_gauge_vec(
                &registry,
                "group_committed_offset",
                "Offset committed by a consumer group",
                &["group", "topic", "partition"],
            )?,
            group_log_end_offset: labelled_gauge_vec(
                &registry,
                "group_log_end_offset",
                "Log end offset of a partition a group has committed on",
                &["group", "topic", "partition"],
            )?,
            group_lag: labelled_gauge_vec(
                &registry,
                "group_lag",
                "Log end offset minus committed offset",
                &["group", "topic", "partition"],
            )?,
            group_lag_seconds: {
                let opts = Opts::new(
                    "group_lag_seconds",
                    "Age of the oldest record a group has not consumed yet (0 when caught up)",
                );
                let metric = prometheus::GaugeVec::new(opts, &["group", "topic", "partition"])?;
                registry.register(Box::new(metric.clone()))?;
                metric
            },
        })
    }

    /// Counts a request and its latency.
    pub fn observe_request(&self, api: ApiKey, started: Instant) {
        if let Some((count, seconds)) = self.per_api.get(&api) {
            count.inc();
            seconds.observe(started.elapsed().as_secs_f64());
        }
    }

    /// Counts appended bytes.
    pub fn bytes_in(&self, topic: &str, bytes: usize) {
        self.topic_bytes_in.with_label_values(&[topic]).inc_by(bytes as u64);
    }

    /// Counts bytes a follower copied from a leader.
    pub fn replication_bytes_in(&self, topic: &str, bytes: usize) {
        self.replication_bytes_in.with_label_values(&[topic]).inc_by(bytes as u64);
    }

    /// Counts appended records.
    pub fn records_in(&self, topic: &str, records: usize) {
        self.topic_records_in.with_label_values(&[topic]).inc_by(records as u64);
    }

    /// Counts fetched bytes, and the records in the batches they hold.
    pub fn bytes_out(&self, topic: &str, data: &[u8]) {
        self.topic_bytes_out.with_label_values(&[topic]).inc_by(data.len() as u64);
        let records = crate::log::batch::count_records(data);
        self.topic_records_out.with_label_values(&[topic]).inc_by(records);
    }

    /// Counts an idempotent producer's batch found already in the log.
    pub fn duplicate_batch(&self) {
        self.duplicate_batches.inc();
    }

    /// Counts a refused append.
    pub fn produce_errors(&self, topic: &str, error: ResponseError) {
        self.topic_produce_errors.with_label_values(&[topic, &format!("{error}")]).inc();
    }

    /// Gives each log directory its fsync-time histogram.
    pub fn attach_log_dirs(&self, dirs: &crate::log_dirs::LogDirs) {
        for dir in dirs.all() {
            let label = dir.path().display().to_string();
            dir.attach_flush_histogram(self.log_flush_seconds.with_label_values(&[&label]));
        }
    }

    /// Renders the text exposition format, refreshing the per-partition and per-group gauges
    /// from `partitions` and `lags` first (a snapshot the caller takes, so metrics need not
    /// know where partitions live).
    pub fn render(&self, partitions: &[PartitionGauges], lags: &[GroupLag]) -> String {
        for gauge in [
            &self.log_end_offset,
            &self.high_watermark,
            &self.is_leader,
            &self.log_start_offset,
            &self.log_size_bytes,
            &self.log_segments,
            &self.group_committed_offset,
            &self.group_log_end_offset,
            &self.group_lag,
        ] {
            // Deleted topics must disappear from the output.
            gauge.reset();
        }
        self.group_lag_seconds.reset();
        for p in partitions {
            let index = p.partition.to_string();
            let labels = [p.topic.as_str(), index.as_str()];
            self.log_end_offset.with_label_values(&labels).set(p.log_end_offset);
            self.high_watermark.with_label_values(&labels).set(p.high_watermark);
            self.is_leader.with_label_values(&labels).set(i64::from(p.leader));
            self.log_start_offset.with_label_values(&labels).set(p.log_start_offset);
            self.log_size_bytes.with_label_values(&labels).set(p.size_bytes as i64);
            self.log_segments.with_label_values(&labels).set(p.segments as i64);
        }
        for c in lags {
            let index = c.partition.to_string();
            let labels = [c.group.as_str(), c.topic.as_str(), index.as_str()];
            self.group_committed_offset.with_label_values(&labels).set(c.committed);
            self.group_log_end_offset.with_label_values(&labels).set(c.log_end_offset);
            self.group_lag.with_label_values(&labels).set((c.log_end_offset - c.committed).max(0));
            self.group_lag_seconds.with_label_values(&labels).set(c.lag_seconds);
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}
