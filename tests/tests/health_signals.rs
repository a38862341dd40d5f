//! What operators alert on, with real broker processes: a replica lost makes its partitions
//! under-replicated (and under `min.insync.replicas` when two are lost) on the leader's
//! `/metrics`, counted as ISR shrinks and, after the restart, expands; the active controller is
//! the one broker with `active_controller 1`; the active controller cut off from the rest of the
//! quorum stops being ready (`/health` answers 503 with the reason) while `/live` still answers
//! 200.

use millrace_tests::{wait_for, Cluster};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// The value of an unlabelled metric in Prometheus text.
fn gauge(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn metric(cluster: &Cluster, id: i32, name: &str) -> anyhow::Result<f64> {
    let metrics = cluster.admin_get(id, "/metrics")?;
    gauge(&metrics, name).ok_or_else(|| anyhow::anyhow!("no {name} on broker {id}"))
}

#[test]
fn replica_loss_shows_in_the_leaders_gauges_and_a_cut_off_broker_is_not_ready() -> anyhow::Result<()> {
    let mut cluster = Cluster::start(3, "")?;
    cluster.create_topic("watched", 3, 3, &["min.insync.replicas=2"])?;
    wait_for("every partition fully in sync", T, || Ok(cluster.describe("watched")?.iter().all(|p| p.isr.len() == 3)))?;
    // The brokers create __consumer_offsets as the cluster forms: settled before any kill, so the
    // gauges below count only what the test does.
    wait_for("__consumer_offsets created and in sync", T, || {
        let offsets = cluster.describe("__consumer_offsets")?;
        Ok(!offsets.is_empty() && offsets.iter().all(|p| p.isr.len() == p.replicas.len()))
    })?;
    for id in cluster.ids() {
        assert_eq!(metric(&cluster, id, "millrace_broker_under_replicated_partitions")?, 0.0);
        let (status, body) = cluster.admin_status(id, "/health")?;
        assert_eq!(status, 200, "broker {id}: {body}");
    }
    wait_for("one active controller", T, || {
        let mut sum = 0.0;
        for id in cluster.ids() {
            sum += metric(&cluster, id, "millrace_broker_active_controller")?;
        }
        Ok(sum == 1.0)
    })?;

    // Broker 3 goes: the partitions it followed are under-replicated on their leaders.
    let leader = cluster.leader_of("watched", 0)?;
    let victim = cluster.ids().into_iter().find(|id| *id != leader).unwrap_or(3);
    cluster.kill9(victim);
    wait_for("the leader to report under-replicated partitions", T, || {
        Ok(metric(&cluster, leader, "millrace_broker_under_replicated_partitions")? >= 1.0)
    })?;
    assert!(metric(&cluster, leader, "millrace_broker_isr_shrinks_total")? >= 1.0);
    assert_eq!(
        metric(&cluster, leader, "millrace_broker_under_min_isr_partitions")?,
        0.0,
        "two of three still in sync"
    );

    // Back: the ISR expands and the gauge returns to 0.
    cluster.restart(victim)?;
    wait_for("the partitions to be fully in sync again", T, || {
        Ok(cluster.describe("watched")?.iter().all(|p| p.isr.len() == 3))
    })?;
    wait_for("the gauge back at 0", T, || {
        Ok(metric(&cluster, leader, "millrace_broker_under_replicated_partitions")? == 0.0)
    })?;
    assert!(metric(&cluster, leader, "millrace_broker_isr_expands_total")? >= 1.0);

    // The two others stop: the last one hears no heartbeat answer and is no longer ready.
    // The active controller is the hard case: cut off, it still answers its own heartbeats.
    let mut last = leader;
    for id in cluster.ids() {
        if metric(&cluster, id, "millrace_broker_active_controller")? == 1.0 {
            last = id;
        }
    }
    let others: Vec<i32> = cluster.ids().into_iter().filter(|id| *id != last).collect();
    for id in &others {
        cluster.pause(*id)?;
    }
    wait_for("the cut-off broker to stop being ready", T, || Ok(cluster.admin_status(last, "/health")?.0 == 503))?;
    let (_, body) = cluster.admin_status(last, "/health")?;
    assert!(body.contains("has not answered a heartbeat"), "{body}");
    assert_eq!(cluster.admin_status(last, "/live")?.0, 200, "alive all the same");
    assert_eq!(metric(&cluster, last, "millrace_broker_ready")?, 0.0);
    for id in &others {
        cluster.resume(*id)?;
    }
    wait_for("ready again once the quorum answers", T, || Ok(cluster.admin_status(last, "/health")?.0 == 200))?;
    Ok(())
}
