//! A changeable metadata quorum, as the runbook in docs/operations.md does it: a running broker
//! becomes a voter (`cluster add-voter`), a voter whose disk died is removed (`cluster
//! remove-voter`), comes back on an empty disk as a non-voting member and is added again, all
//! while an acks=all producer runs; every acknowledged record is still there afterwards.

use millrace_tests::{millrace, python, python_bin, python_script, wait_for, Cluster};
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
    let mut producer = Command::new(python_bin())
        .arg(python_script("acked_producer.py"))
        .args(["--bootstrap", &bootstrap, "--topic", "vq", "--count", "6000", "--rate", "300", "--acked", &acked_arg])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;

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

    let status = millrace_tests::wait_or_kill(&mut producer, std::time::Instant::now() + Duration::from_secs(120))?;
    let mut report = String::new();
    if let Some(mut stdout) = producer.stdout.take() {
        std::io::Read::read_to_string(&mut stdout, &mut report)?;
    }
    assert!(status.is_some_and(|s| s.success()) && report.contains("failed 0, undelivered 0"), "producer: {report}");
    cluster.wait_isr_full("vq", T)?;
    let out = python(
        "verify_acked.py",
        &["--bootstrap", &cluster.bootstrap(), "--topic", "vq", "--partitions", "3", "--acked", &acked_arg],
        T,
    )?;
    assert!(out.contains("all present"), "{out}");
    // The replacement holds the whole metadata log again.
    wait_for("every voter caught up", T, || {
        let out = millrace(&["cluster", "quorum", "--bootstrap", &cluster.bootstrap()])?;
        Ok(out.contains("MaxFollowerLag:\t0"))
    })?;
    Ok(())
}

/// `millrace ARGS`: (success, stdout or the error with stderr).
fn outcome(args: &[&str]) -> (bool, String) {
    match millrace(args) {
        Ok(out) => (true, out),
        Err(e) => (false, format!("{e:#}")),
    }
}
