//! The admin HTTP listener: `GET /metrics` (Prometheus text format) and `GET /health`, served by
//! the shared HTTP server of the metrics-endpoint crate.
//!
//! Bounded like the Kafka listener, with fixed limits: at most [`MAX_CONNECTIONS`] at once
//! ([`MAX_CONNECTIONS_PER_IP`] per address, admitted by the broker's [`ConnectionLimiter`] before
//! anything is read), a request head of at most [`MAX_HEAD`] bytes that must arrive within
//! [`HEAD_TIMEOUT`], and a response that must be taken within [`WRITE_TIMEOUT`] after that.

use crate::metrics::{GroupLag, PartitionGauges};
use crate::server::{ConnectionLimiter, ConnectionSlot};
use crate::Broker;
use millrace_metrics_endpoint::{Admission, Closed, Limits, Reply, Router, PROMETHEUS_TEXT};
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
        .route("/health", move || Reply::ok("application/json", health(&broker)));
    millrace_metrics_endpoint::serve_with(listener, "admin", router, LIMITS, Admit(limiter), shutdown).await;
}

/// The per-partition and per-group figures a scrape shows, read from the hosted replicas.
fn scrape(broker: &Broker) -> (Vec<PartitionGauges>, Vec<GroupLag>) {
    broker.metrics.offline_log_dirs.set(broker.catalog.log_dirs().offline_count() as i64);
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
    let lags = broker
        .groups
        .committed()
        .into_iter()
        .filter_map(|c| {
            let partition = broker.catalog.partition(&c.topic, c.partition)?;
            let (_, end) = partition.offsets();
            Some(GroupLag {
                group: c.group,
                topic: c.topic,
                partition: c.partition,
                committed: c.offset,
                log_end_offset: end,
            })
        })
        .collect();
    (partitions, lags)
}

/// The `/health` body: `degraded` with the failed log directories while any is offline.
fn health(broker: &Broker) -> String {
    let offline: Vec<serde_json::Value> = broker
        .catalog
        .log_dirs()
        .all()
        .iter()
        .filter_map(|d| Some(serde_json::json!({"path": d.path().display().to_string(), "error": d.failure()?})))
        .collect();
    let body = serde_json::json!({
        "status": if offline.is_empty() { "ok" } else { "degraded" },
        "node_id": broker.config.node_id,
        "cluster_id": broker.cluster_id(),
        "topics": broker.catalog.all().len(),
        "offline_log_dirs": offline,
    });
    format!("{body}\n")
}
