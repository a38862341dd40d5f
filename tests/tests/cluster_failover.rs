//! Failover of a 3-broker cluster under a Jepsen-style workload (issue 4): idempotent acks=all
//! producers and concurrent consumers run throughout (tests/python/jepsen_workload.py) while
//! brokers are killed, paused or cut off; afterwards a final read and tests/python/jepsen_checker.py
//! must find no lost acknowledged write, no offset holding two values, no duplicate and no
//! consumer going backwards, writes must have resumed promptly after every fault, and every
//! replica's log on disk must equal the final read.
//!
//! The partition tests need network namespaces (root); elsewhere they print `skipping: …`.

use anyhow::Context;
use millrace_tests::jepsen::{final_log, longest_partition_gap, unix_now, Workload};
use millrace_tests::{python, python_bin, wait_for, Cluster};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const TOPIC_CONFIG: &[&str] = &["min.insync.replicas=2"];
/// Longest time any partition may go without an acknowledged write when its leader is killed:
/// session timeout (3 s), election, and the clients' metadata refresh.
const MAX_GAP_AFTER_KILL_S: f64 = 10.0;
/// The same when its leader is cut off: requests in flight to it hang until the workload's
/// request timeout (10 s) before the client looks for the new leader.
const MAX_GAP_AFTER_PARTITION_S: f64 = 25.0;
/// Upper bound for flushing, the final read and the check once the workload is told to stop.
const FINISH: Duration = Duration::from_secs(150);
const ELECTION: Duration = Duration::from_secs(30);
const CATCH_UP: Duration = Duration::from_secs(60);
const RESUME: Duration = Duration::from_secs(30);

fn cluster_toml(replica_lag: &str, session_timeout: &str) -> String {
    format!(
        "[replication]\nreplica_lag_time_max = \"{replica_lag}\"\ndefault_replication_factor = 3\n\n\
         [controller]\nbroker_session_timeout = \"{session_timeout}\"\nbroker_heartbeat_interval = \"500ms\"\n"
    )
}

/// The acks=all workload from the root namespace, bootstrapping from every broker. It runs until
/// told to stop (the duration is only a backstop).
fn start_workload(cluster: &Cluster, dir: &Path, topic: &str, partitions: i32) -> anyhow::Result<Workload> {
    let bootstrap = cluster.bootstrap();
    let partitions = partitions.to_string();
    let args = ["--bootstrap", &bootstrap, "--topic", topic, "--partitions", &partitions, "--duration", "300"];
    Workload::start("acks=all workload", Command::new(python_bin()), dir, &args)
}

fn anomaly_counts(summary: &Value) -> String {
    summary["anomalies"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v["count"])).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The workload exits non-zero on any anomaly (so `finish` already failed); this checks the
/// verdict once more and the availability bound, and prints the numbers.
fn assert_valid(summary: &Value, max_gap_s: f64) {
    let gap = longest_partition_gap(summary);
    eprintln!(
        "acked {} (without offset {}) read {} final {} unacked-present {} | {} | longest per-partition ack gap \
         {gap:.2}s, gaps > 1s: {}",
        summary["acked"],
        summary["stats"]["acked_without_offset"],
        summary["stats"]["read"],
        summary["stats"]["final"],
        summary["stats"]["unacked_present"],
        anomaly_counts(summary),
        summary["gaps"]["over_threshold_per_partition"]
    );
    for key in ["consumer_client_errors", "consumer_offset_resets", "producer_client_errors"] {
        let counts: Vec<&Value> =
            summary[key].as_array().map(|a| a.iter().map(|e| &e["count"]).collect()).unwrap_or_default();
        eprintln!("{key}: {counts:?}");
    }
    assert_eq!(summary["valid"], Value::Bool(true), "checker verdict:\n{summary:#}");
    assert!(summary["acked"].as_u64().unwrap_or(0) > 0, "nothing acknowledged:\n{summary:#}");
    assert!(
        gap < max_gap_s,
        "a partition went {gap:.1}s without an acknowledged write (limit {max_gap_s}s): {}",
        summary["gaps"]["over_threshold_per_partition"]
    );
}

/// Stops every broker cleanly and checks that each one's copy of every partition holds exactly
/// what the final read returned: the replicas converged (a cut-off leader truncated what only it
/// had, a restarted broker caught up).
fn assert_replicas_match_final(cluster: &mut Cluster, topic: &str, workload_dir: &Path) -> anyhow::Result<()> {
    let expected = final_log(workload_dir)?;
    for id in cluster.ids() {
        cluster.stop(id)?;
    }
    for (partition, records) in &expected {
        for id in cluster.ids() {
            let replica = cluster.replica_log(id, topic, *partition)?;
            if &replica != records {
                let diverge =
                    replica.iter().zip(records).position(|(a, b)| a != b).unwrap_or(replica.len().min(records.len()));
                panic!(
                    "broker {id}'s replica of {topic}-{partition} differs from the final read: {} vs {} records, \
                     first difference at index {diverge}: replica {:?}, final read {:?}",
                    replica.len(),
                    records.len(),
                    replica.get(diverge),
                    records.get(diverge)
                );
            }
        }
    }
    Ok(())
}

#[test]
fn leader_kill_no_acked_loss() -> anyhow::Result<()> {
    let mut cluster = Cluster::start(3, &cluster_toml("10s", "3s"))?;
    let topic = "jepsen-kill";
    cluster.create_topic(topic, 3, 3, TOPIC_CONFIG)?;
    let dir = tempfile::tempdir()?;
    let mut workload = start_workload(&cluster, dir.path(), topic, 3)?;
    let mut progress = workload.wait_acked(300, Duration::from_secs(60))?;
    for partition in 0..3 {
        let victim = cluster.leader_of(topic, partition)?;
        eprintln!("partition {partition}: kill -9 its leader, broker {victim}");
        cluster.kill9(victim);
        let successor = cluster.wait_new_leader(topic, partition, victim, ELECTION)?;
        eprintln!("partition {partition}: broker {successor} took over");
        progress = workload.wait_more_acks(&progress, 50, RESUME).context("writes after the kill")?;
        cluster.restart(victim)?;
        cluster.wait_isr_full(topic, CATCH_UP).with_context(|| format!("broker {victim} rejoining every ISR"))?;
        progress = workload.wait_more_acks(&progress, 50, RESUME).context("writes after the restart")?;
    }
    let summary = workload.finish(FINISH)?;
    assert_valid(&summary, MAX_GAP_AFTER_KILL_S);
    assert_replicas_match_final(&mut cluster, topic, dir.path())
}

#[test]
fn follower_pause_shrinks_and_reexpands_isr() -> anyhow::Result<()> {
    // The session timeout is well above the lag limit, so the follower leaves the ISR because it
    // lags (replica_lag_time_max), not because the controller fenced it.
    let mut cluster = Cluster::start(3, &cluster_toml("2s", "10s"))?;
    let topic = "jepsen-pause";
    cluster.create_topic(topic, 1, 3, TOPIC_CONFIG)?;
    let dir = tempfile::tempdir()?;
    let mut workload = start_workload(&cluster, dir.path(), topic, 1)?;
    workload.wait_acked(200, Duration::from_secs(60))?;
    let partition = cluster.describe(topic)?.remove(0);
    let leader = partition.leader;
    let follower = *partition.replicas.iter().find(|&&r| r != leader).context("no follower")?;
    eprintln!("leader {leader}: pausing follower {follower}");
    let paused_at = Instant::now();
    cluster.pause(follower)?;
    let shrunk = cluster.wait_partitions(
        topic,
        &format!("follower {follower} out of the ISR"),
        Duration::from_secs(8),
        |p| p[0].leader == leader && !p[0].isr.contains(&follower),
    )?;
    let took = paused_at.elapsed();
    eprintln!("ISR shrank to {:?} {took:?} after the pause", shrunk[0].isr);
    assert!(took >= Duration::from_secs(1), "follower removed {took:?} after pausing, before it could lag 2s");
    assert_eq!(shrunk[0].isr.len(), 2, "{shrunk:?}");
    // acks=all with min.insync.replicas=2 keeps working with the two in-sync replicas.
    let before = workload.progress().context("no progress")?;
    workload.wait_more_acks(&before, 100, RESUME).context("acks=all writes with the follower out of the ISR")?;
    cluster.resume(follower)?;
    cluster
        .wait_partitions(topic, &format!("follower {follower} back in the ISR"), CATCH_UP, |p| p[0].isr_complete())?;
    let summary = workload.finish(FINISH)?;
    assert_valid(&summary, MAX_GAP_AFTER_KILL_S);
    assert_replicas_match_final(&mut cluster, topic, dir.path())
}

#[test]
fn controller_leader_partitioned() -> anyhow::Result<()> {
    let Some(mut cluster) = Cluster::start_netns(3, &cluster_toml("10s", "3s"))? else { return Ok(()) };
    let topic = "jepsen-quorum";
    cluster.create_topic(topic, 3, 3, TOPIC_CONFIG)?;
    let dir = tempfile::tempdir()?;
    let mut workload = start_workload(&cluster, dir.path(), topic, 3)?;
    workload.wait_acked(300, Duration::from_secs(60))?;
    let known_leader = cluster.quorum_leader();
    let victim = known_leader.unwrap_or(1);
    eprintln!("isolating broker {victim} (metadata quorum leader: {known_leader:?})");
    cluster.isolate(victim)?;
    // The majority moves every partition the victim led and keeps taking writes.
    let before = workload.progress().context("no progress")?;
    cluster.wait_leader_elected(topic, ELECTION).context("leaders on the majority side")?;
    workload.wait_more_acks(&before, 50, RESUME).context("writes while the quorum leader is cut off")?;
    if known_leader.is_some() {
        let successor = cluster.wait_quorum_leader_change(victim, ELECTION)?;
        eprintln!("broker {successor} now leads the metadata quorum");
    }
    cluster.heal(victim)?;
    cluster.wait_isr_full(topic, CATCH_UP).with_context(|| format!("broker {victim} rejoining after the heal"))?;
    if known_leader.is_some() {
        // The healed broker learns the new quorum leader like everyone else.
        wait_for("all brokers to agree on the quorum leader after the heal", ELECTION, || {
            Ok(cluster.quorum_leader().is_some())
        })?;
    }
    let before = workload.progress().context("no progress")?;
    workload.wait_more_acks(&before, 50, RESUME).context("writes after the heal")?;
    let summary = workload.finish(FINISH)?;
    assert_valid(&summary, MAX_GAP_AFTER_PARTITION_S);
    assert_replicas_match_final(&mut cluster, topic, dir.path())
}

#[test]
fn cut_off_leader_truncates_unacked_writes() -> anyhow::Result<()> {
    let Some(mut cluster) = Cluster::start_netns(3, &cluster_toml("10s", "3s"))? else { return Ok(()) };
    let topic = "jepsen-cutoff";
    cluster.create_topic(topic, 1, 3, TOPIC_CONFIG)?;
    let main_dir = tempfile::tempdir()?;

    let rogue_dir = tempfile::tempdir()?;
    let mut main = start_workload(&cluster, main_dir.path(), topic, 1)?;
    main.wait_acked(200, Duration::from_secs(60))?;
    let leader = cluster.leader_of(topic, 0)?;
    // An acks=1 producer on the leader's side of the coming partition: inside its namespace,
    // talking to it alone. Without idempotence and with no retries it never duplicates.
    let leader_addr = cluster.broker(leader).kafka_addr();
    let rogue_args = [
        "--bootstrap",
        &leader_addr,
        "--topic",
        topic,
        "--partitions",
        "1",
        "--acks",
        "1",
        "--producers",
        "1",
        "--consumers",
        "0",
        "--value-prefix",
        "r",
        "--no-final",
        "--message-timeout-ms",
        "10000",
        "--request-timeout-ms",
        "5000",
        "--flush-timeout",
        "15",
        "--duration",
        "300",
    ];
    let mut rogue = Workload::start(
        "acks=1 producer beside the leader",
        cluster.command_in(leader, python_bin()),
        rogue_dir.path(),
        &rogue_args,
    )?;
    rogue.wait_acked(100, Duration::from_secs(30))?;
    let isolated_at = unix_now();
    eprintln!("isolating leader {leader}");
    cluster.isolate(leader)?;
    let before = main.progress().context("no progress")?;
    let successor = cluster.wait_new_leader(topic, 0, leader, ELECTION)?;
    eprintln!("broker {successor} leads on the majority side");
    main.wait_more_acks(&before, 100, RESUME).context("acks=all writes through the majority")?;
    let rogue_summary = rogue.finish(Duration::from_secs(60))?;
    eprintln!("acks=1 producer: {} acked, {} failed", rogue_summary["acked"], rogue_summary["failed"]);
    cluster.heal(leader)?;
    cluster.wait_isr_full(topic, CATCH_UP).with_context(|| format!("broker {leader} rejoining after the heal"))?;
    let before = main.progress().context("no progress")?;
    main.wait_more_acks(&before, 50, RESUME).context("writes after the heal")?;
    let summary = main.finish(FINISH)?;
    assert_valid(&summary, MAX_GAP_AFTER_PARTITION_S);

    // What the cut-off leader acknowledged more than a second after the cut cannot have reached
    // any other replica: it must be gone, and nothing it acknowledged may sit at another offset.
    let history = rogue_dir.path().join("history.json").display().to_string();
    let final_read = main_dir.path().join("final.json").display().to_string();
    let after = format!("{:.3}", isolated_at + 1.0);
    let out = python(
        "jepsen_workload.py",
        &["truncation", "--history", &history, "--final", &final_read, "--after", &after],
        Duration::from_secs(60),
    )?;
    let report: Value = serde_json::from_str(&out).with_context(|| format!("parsing {out}"))?;
    eprintln!("truncation report: {report:#}");
    assert_eq!(report["valid"], Value::Bool(true), "{report:#}");
    let cut_off = report["cut_off_acked"].as_u64().unwrap_or(0);
    assert!(
        cut_off > 0,
        "the cut-off leader acknowledged no acks=1 write after the isolation, so nothing tested its truncation: {report:#}"
    );
    assert_eq!(report["truncated"].as_u64(), Some(cut_off), "{report:#}");
    // The old leader's own log no longer holds them either (not just the new leader's).
    assert_replicas_match_final(&mut cluster, topic, main_dir.path())
}

/// A broker killed with `kill -9` is fenced as soon as the active controller finds it gone (its
/// heartbeat connection closed, and nothing listens at its address any more), not when its
/// session expires: the session here is 60 s and each new leader must appear within 20 s. Once
/// for a broker that is not the active controller, once for the active controller's own process
/// (the new controller probes the brokers it has not heard from).
#[test]
fn killed_brokers_are_fenced_before_their_session_expires() -> anyhow::Result<()> {
    const FENCE_WAIT: Duration = Duration::from_secs(20);
    let mut cluster = Cluster::start(3, &cluster_toml("10s", "60s"))?;
    let topic = "fence-fast";
    cluster.create_topic(topic, 3, 3, TOPIC_CONFIG)?;
    let mut controller = -1;
    wait_for("an agreed active controller", ELECTION, || {
        controller = cluster.quorum_leader().unwrap_or(-1);
        Ok(controller >= 1)
    })?;
    let parts = cluster.describe(topic)?;
    let led_by = |id: i32| parts.iter().find(|p| p.leader == id).map(|p| p.partition);
    let plain = cluster.ids().into_iter().find(|&id| id != controller && led_by(id).is_some());
    let plain = plain.context("no partition led by a broker other than the controller")?;
    for victim in [plain, controller] {
        let parts = cluster.describe(topic)?;
        let partition = parts.iter().find(|p| p.leader == victim).map(|p| p.partition);
        let partition = partition.with_context(|| format!("broker {victim} leads nothing: {parts:?}"))?;
        eprintln!("kill -9 broker {victim}, leader of {topic}-{partition} (active controller: {controller})");
        let killed_at = Instant::now();
        cluster.kill9(victim);
        let successor = cluster.wait_new_leader(topic, partition, victim, FENCE_WAIT).with_context(|| {
            format!("no new leader for {topic}-{partition} within {FENCE_WAIT:?} of killing broker {victim}")
        })?;
        eprintln!("broker {successor} took over {:?} after the kill", killed_at.elapsed());
        cluster.restart(victim)?;
        cluster.wait_isr_full(topic, CATCH_UP).with_context(|| format!("broker {victim} rejoining every ISR"))?;
    }
    Ok(())
}

/// A restarted broker's local metadata is stale: while it was down its leadership moved. Until
/// its registration of this run reaches its metadata (then everything committed before is
/// known), it takes no role from that stale state — above all not leader of the old epoch,
/// which would take writes no follower fetches.
#[test]
fn a_restarted_leader_takes_no_role_from_stale_metadata() -> anyhow::Result<()> {
    let t = Duration::from_secs(60);
    let mut cluster = Cluster::start(3, "")?;
    cluster.create_topic("stale", 1, 3, TOPIC_CONFIG)?;
    cluster.wait_isr_full("stale", t)?;
    let old = cluster.describe("stale")?[0].clone();
    cluster.kill9(old.leader);
    cluster.wait_new_leader("stale", 0, old.leader, t)?;
    let logged = cluster.log(old.leader).len();
    cluster.restart(old.leader)?;
    cluster.wait_isr_full("stale", t)?;
    let log = cluster.log(old.leader);
    let since_restart = log.get(logged..).unwrap_or_default();
    let stale_role = format!("became leader partition=stale-0 leader_epoch={} ", old.leader_epoch);
    assert!(!since_restart.contains(&stale_role), "it led the old epoch again after its restart:\n{since_restart}");
    assert!(since_restart.contains("became follower partition=stale-0"), "{since_restart}");
    Ok(())
}
