//! The admin HTTP listener: `GET /metrics` (Prometheus text format), `GET /health` (readiness:
//! 200 when the broker should get traffic, 503 with the reasons when not) and `GET /live`
//! (liveness: 200 while the process serves at all), served by the shared HTTP server of the
//! metrics-endpoint crate.
//!
//! Bounded like the Kafka listener, with fixed limits: at most [`MAX_CONNECTIONS`] at once
//! ([`MAX_CONNECTIONS_PER_IP`] per address, admitted by the broker's [`ConnectionLimiter`] before
//! anything is read), a request head of at most [`MAX_HEAD`] bytes that must arrive within
//! [`HEAD_TIMEOUT`], and a response that must be taken within [`WRITE_TIMEOUT`] after that.

use crate::metrics::{GroupLag, PartitionGauges};
use crate::server::{ConnectionLimiter, ConnectionSlot};
use crate::Broker;
use millrace_metrics_endpoint::{Admission, Closed, Limits, Reply, Router, StatusCode, PROMETHEUS_TEXT};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Open admin connections; scrapers and health checks need a handful.
pub const MAX_CONNECTIONS: usize = 64;
/// Open admin connections from one address.
pub const MAX_CONNECTIONS_PER_IP: usize = 16;
/// Largest request head (request line and headers).
pub const MAX_HEAD: usize = 8192;
/// Time for the whole request head to arrive, however it trickles in.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for the client to take the response.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The admin listener's limits.
const LIMITS: Limits = Limits {
    max_head_bytes: MAX_HEAD,
    max_headers: 64,
    header_timeout: HEAD_TIMEOUT,
    connection_timeout: Duration::from_secs(HEAD_TIMEOUT.as_secs() + WRITE_TIMEOUT.as_secs()),
};

/// Admits connections through the broker's limiter, which also counts the ones closed for a limit.
struct Admit(Arc<ConnectionLimiter>);

impl Admission for Admit {
    type Slot = ConnectionSlot;

    fn admit(&self, peer: SocketAddr) -> Option<ConnectionSlot> {
        self.0.admit(peer)
    }

    fn closed(&self, slot: &ConnectionSlot, why: Closed) {
        slot.limiter().closed(why.label());
    }
}

/// Serves the admin endpoints until shutdown.
pub async fn serve(listener: TcpListener, broker: Arc<Broker>, shutdown: watch::Receiver<bool>) {
    let limiter = Arc::new(ConnectionLimiter::new(
        "admin",
        MAX_CONNECTIONS,
        MAX_CONNECTIONS_PER_IP,
        broker.metrics.listeners.clone(),
    ));
    let metrics = broker.clone();
    let router = Router::new()
        .route("/metrics", move || {
            let (partitions, lags) = scrape(&metrics);
            Reply::ok(PROMETHEUS_TEXT, metrics.metrics.render(&partitions, &lags))
        })
        .route("/health", move || health(&broker))
        .route("/live", || Reply::ok("application/json", "{\"status\":\"alive\"}\n".to_string()));
    millrace_metrics_endpoint::serve_with(listener, "admin", router, LIMITS, Admit(limiter), shutdown).await;
}

/// The per-partition and per-group figures a scrape shows, read from the hosted replicas.
fn scrape(broker: &Broker) -> (Vec<PartitionGauges>, Vec<GroupLag>) {
    broker.metrics.offline_log_dirs.set(broker.catalog.log_dirs().offline_count() as i64);
    let active_controller = broker.cluster.controller_id() == broker.config.node_id;
    let min_isr = |topic: &str| {
        broker.catalog.get(topic).map_or(1, |t| usize::try_from(t.config.min_insync_replicas).unwrap_or(1))
    };
    let counts =
        crate::health::partition_health(&broker.cluster.metadata(), broker.config.node_id, active_controller, min_isr);
    let health = &broker.metrics.health;
    health.under_replicated_partitions.set(counts.under_replicated);
    health.under_min_isr_partitions.set(counts.under_min_isr);
    health.offline_partitions.set(counts.offline);
    health.active_controller.set(i64::from(active_controller));
    health.quorum_max_follower_lag.set(broker.cluster.quorum_max_follower_lag());
    health.ready.set(i64::from(crate::health::not_ready_reasons(&readiness(broker)).is_empty()));
    let mut partitions = Vec::new();
    for topic in broker.catalog.all() {
        for partition in topic.partitions.values() {
            let (log_start_offset, high_watermark) = partition.offsets();
            let (size_bytes, segments) = partition.size();
            partitions.push(PartitionGauges {
                topic: topic.name.clone(),
                partition: partition.index,
                log_start_offset,
                high_watermark,
                log_end_offset: partition.log_end_offset(),
                leader: partition.leader_epoch_if_leader().is_some(),
                size_bytes,
                segments,
            });
        }
    }
    let now_ms = crate::clock::now_ms();
    let lags = broker
        .groups
        .committed()
        .into_iter()
        .filter_map(|c| {
            let partition = broker.catalog.partition(&c.topic, c.partition)?;
            let (start, end) = partition.offsets();
            let lag_seconds =
                if c.offset < end { oldest_unread_age(&partition, c.offset.max(start), now_ms) } else { 0.0 };
            Some(GroupLag {
                group: c.group,
                topic: c.topic,
                partition: c.partition,
                committed: c.offset,
                log_end_offset: end,
                lag_seconds,
            })
        })
        .collect();
    (partitions, lags)
}

/// Seconds since the first timestamp of the batch holding `offset` (the first record a group has
/// not consumed; at most a batch's span older than that record). 0 when it cannot be read.
fn oldest_unread_age(partition: &crate::partition::Partition, offset: i64, now_ms: i64) -> f64 {
    let Ok(read) = partition.read(offset, 1, true) else { return 0.0 };
    match crate::log::batch::BatchHeader::parse(&read.data) {
        Ok(header) if header.base_timestamp > 0 => (now_ms - header.base_timestamp).max(0) as f64 / 1000.0,
        _ => 0.0,
    }
}

/// What readiness is decided from, read off the broker.
fn readiness(broker: &Broker) -> crate::health::ReadinessInputs {
    crate::health::ReadinessInputs {
        registered_unfenced: broker.cluster.is_active(),
        since_heartbeat: broker.cluster.since_heartbeat(),
        session_timeout: broker.cluster.session_timeout(),
        offline_log_dirs: broker
            .catalog
            .log_dirs()
            .all()
            .iter()
            .filter_map(|d| Some((d.path().display().to_string(), d.failure()?.to_string())))
            .collect(),
    }
}

/// `/health`: 200 and `ok` when ready; 503 with the reasons otherwise (`degraded` when only log
/// directories are offline: the broker still serves the others).
fn health(broker: &Broker) -> Reply {
    let inputs = readiness(broker);
    let reasons = crate::health::not_ready_reasons(&inputs);
    let status = if reasons.is_empty() {
        "ok"
    } else if reasons.len() == inputs.offline_log_dirs.len() {
        "degraded"
    } else {
        "unavailable"
    };
    let offline: Vec<serde_json::Value> =
        inputs.offline_log_dirs.iter().map(|(path, error)| serde_json::json!({"path": path, "error": error})).collect();
    let body = serde_json::json!({
        "status": status,
        "reasons": reasons,
        "node_id": broker.config.node_id,
        "cluster_id": broker.cluster_id(),
        "active_controller": broker.cluster.controller_id() == broker.config.node_id,
        "topics": broker.catalog.all().len(),
        "offline_log_dirs": offline,
    });
    Reply {
        status: if reasons.is_empty() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE },
        content_type: "application/json",
        body: format!("{body}\n"),
    }
}
