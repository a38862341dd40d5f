//! The runbooks of docs/operations.md, each while an acks=all producer runs, and every
//! acknowledged record still there afterwards: a running broker becomes a voter (`cluster
//! add-voter`), a voter whose disk died is removed (`cluster remove-voter`), comes back on an
//! empty disk (a replaced machine) as a non-voting member and is added again; and a rolling
//! restart (an upgrade) of every broker in turn.

use millrace_tests::{millrace, python, python_bin, python_script, wait_for, Cluster, Drained};
use std::process::{Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// `millrace cluster quorum` through `bootstrap`: (leader, voters, observers).
fn quorum(bootstrap: &str) -> anyhow::Result<(i32, Vec<i32>, Vec<i32>)> {
    let out = millrace(&["cluster", "quorum", "--bootstrap", bootstrap])?;
    let field = |name: &str| -> String {
        out.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string()).unwrap_or_default()
    };
    let ids = |list: String| -> Vec<i32> {
        list.trim_matches(|c| c == '[' || c == ']').split(',').filter_map(|i| i.trim().parse().ok()).collect()
    };
    Ok((field("LeaderId:").parse()?, ids(field("CurrentVoters:")), ids(field("CurrentObservers:"))))
}

#[test]
fn a_voter_is_replaced_while_producers_run_and_nothing_is_lost() -> anyhow::Result<()> {
    let mut cluster = Cluster::start_with_voters(4, 3, "")?;
    let bootstrap = cluster.bootstrap();
    let (_, voters, observers) = quorum(&bootstrap)?;
    assert_eq!((voters, observers), (vec![1, 2, 3], vec![4]), "broker 4 starts as a non-voting member");
    cluster.create_topic("vq", 3, 3, &[])?;

    let scratch = tempfile::Builder::new().prefix("millrace-quorum-").tempdir()?;
    let acked = scratch.path().join("acked");
    let acked_arg = acked.display().to_string();
    let producer = start_producer(&bootstrap, "vq", 6000, 300, &acked_arg)?;

    // A running broker becomes the fourth voter.
    let out = millrace(&["cluster", "add-voter", "--id", "4", "--bootstrap", &bootstrap])?;
    assert!(out.contains("CurrentVoters:\t[1,2,3,4]"), "{out}");
    let (ok, out) = outcome(&["cluster", "add-voter", "--id", "9", "--bootstrap", &bootstrap]);
    assert!(!ok && out.contains("not a member"), "a node that never joined is refused: {out}");

    // A voter's disk dies: one that is not the active controller goes, data and all.
    let (leader, _, _) = quorum(&bootstrap)?;
    let victim = [2, 3].into_iter().find(|id| *id != leader).unwrap_or(2);
    cluster.kill9(victim);
    std::fs::remove_dir_all(&cluster.broker(victim).data_dir)?;
    let live = cluster.live_bootstrap();
    let (ok, out) = outcome(&["cluster", "remove-voter", "--id", &leader.to_string(), "--bootstrap", &live]);
    assert!(!ok && out.contains("active controller"), "the active controller is not removed under itself: {out}");
    let out = millrace(&["cluster", "remove-voter", "--id", &victim.to_string(), "--bootstrap", &live])?;
    assert!(out.contains(&format!("node {victim} is no longer a voter")), "{out}");
    let (_, voters, _) = quorum(&live)?;
    assert!(!voters.contains(&victim) && voters.len() == 3, "{voters:?}");

    // Its replacement (same id, empty disk) joins as a non-voting member, catches up, and votes.
    cluster.restart(victim)?;
    wait_for(&format!("broker {victim} observing the quorum"), T, || {
        Ok(quorum(&cluster.live_bootstrap())?.2.contains(&victim))
    })?;
    let out = millrace(&["cluster", "add-voter", "--id", &victim.to_string(), "--bootstrap", &cluster.bootstrap()])?;
    assert!(out.contains("CurrentVoters:\t[1,2,3,4]"), "{out}");

    cluster.wait_isr_full("vq", T)?;
    check_producer(producer, &cluster.bootstrap(), "vq", 3, &acked_arg)?;
    // The replacement holds the whole metadata log again.
    wait_for("every voter caught up", T, || {
        let out = millrace(&["cluster", "quorum", "--bootstrap", &cluster.bootstrap()])?;
        Ok(out.contains("MaxFollowerLag:\t0"))
    })?;
    Ok(())
}

/// Starts `acked_producer.py` on `topic`: `count` records at `rate` per second.
fn start_producer(
    bootstrap: &str,
    topic: &str,
    count: u32,
    rate: u32,
    acked: &str,
) -> anyhow::Result<(std::process::Child, Drained)> {
    let mut child = Command::new(python_bin())
        .arg(python_script("acked_producer.py"))
        .args(["--bootstrap", bootstrap, "--topic", topic, "--count", &count.to_string(), "--rate", &rate.to_string()])
        .args(["--acked", acked])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // librdkafka logs every refused connection while brokers restart: read as it goes.
    let drained = Drained::take(&mut child);
    Ok((child, drained))
}

/// Waits for the producer (bounded) and checks it delivered everything, then that every record
/// it was acknowledged is in `topic` at its offset.
fn check_producer(
    (mut producer, drained): (std::process::Child, Drained),
    bootstrap: &str,
    topic: &str,
    partitions: u32,
    acked: &str,
) -> anyhow::Result<()> {
    let status = millrace_tests::wait_or_kill(&mut producer, std::time::Instant::now() + Duration::from_secs(120))?;
    let (report, errors) = drained.finish();
    let (report, errors) = (String::from_utf8_lossy(&report), String::from_utf8_lossy(&errors));
    // librdkafka's own log lines (stderr) say why deliveries failed.
    let errors: String =
        errors.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    assert!(
        status.is_some_and(|s| s.success()) && report.contains("failed 0, undelivered 0"),
        "producer: {report}\nits last stderr lines:\n{errors}"
    );
    let partitions = partitions.to_string();
    let args = ["--bootstrap", bootstrap, "--topic", topic, "--partitions", &partitions, "--acked", acked];
    let out = python("verify_acked.py", &args, T)?;
    assert!(out.contains("all present"), "{out}");
    Ok(())
}

#[test]
fn a_rolling_restart_loses_nothing() -> anyhow::Result<()> {
    let mut cluster = Cluster::start(3, "")?;
    cluster.create_topic("roll", 3, 3, &[])?;
    let scratch = tempfile::Builder::new().prefix("millrace-roll-").tempdir()?;
    let acked = scratch.path().join("acked").display().to_string();
    let producer = start_producer(&cluster.bootstrap(), "roll", 5000, 250, &acked)?;
    // One broker at a time, as an upgrade goes: stop it cleanly, start it (the new binary), and
    // wait until its replicas are back in sync before the next.
    for id in cluster.ids() {
        cluster.stop(id)?;
        cluster.restart(id)?;
        cluster.wait_isr_full("roll", T)?;
        cluster.wait_isr_full("__consumer_offsets", T).ok();
    }
    check_producer(producer, &cluster.bootstrap(), "roll", 3, &acked)
}

/// `millrace ARGS`: (success, stdout or the error with stderr).
fn outcome(args: &[&str]) -> (bool, String) {
    match millrace(args) {
        Ok(out) => (true, out),
        Err(e) => (false, format!("{e:#}")),
    }
}
