//! Consumer groups across a coordinator failover (issue 4): the coordinator of a group is the
//! leader of its `__consumer_offsets` partition. Killing it moves the group to the new leader of
//! that partition, which loads the committed offsets from its replica: none may be lost, so the
//! group resumes exactly where it committed.

use millrace_tests::{python, Cluster};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);

fn values(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("v-{i}")).collect()
}

#[test]
fn committed_offsets_survive_a_coordinator_kill() -> anyhow::Result<()> {
    let mut cluster = Cluster::start(3, "[replication]\ndefault_replication_factor = 3\n")?;
    let topic = "orders";
    cluster.create_topic(topic, 1, 3, &["min.insync.replicas=2"])?;
    let script = "coordinator_failover.py";
    let bootstrap = cluster.bootstrap();
    let common = ["--bootstrap", bootstrap.as_str(), "--topic", topic];
    let acked = python(script, &[&["produce"], &common[..], &["--count", "300"]].concat(), TIMEOUT)?;
    assert_eq!(acked.trim(), "300");

    // First member of the group reads and commits the first 120 records.
    let group = ["--group", "billing"];
    let first = python(script, &[&["consume"], &common[..], &group, &["--count", "120"]].concat(), TIMEOUT)?;
    let first: Vec<String> = serde_json::from_str(first.trim())?;
    assert_eq!(first, values(0..120));

    let coordinator: i32 =
        python(script, &[&["coordinator", "--bootstrap", bootstrap.as_str()][..], &group].concat(), TIMEOUT)?
            .trim()
            .parse()?;
    eprintln!("kill -9 broker {coordinator}, the coordinator of the group");
    cluster.kill9(coordinator);
    let survivors = cluster.live_bootstrap();
    let new_coordinator: i32 =
        python(script, &[&["coordinator", "--bootstrap", survivors.as_str()][..], &group].concat(), TIMEOUT)?
            .trim()
            .parse()?;
    assert_ne!(new_coordinator, coordinator, "the group moved to another broker");

    // The group resumes at its committed offset on the new coordinator: nothing re-read, nothing skipped.
    let live = ["--bootstrap", survivors.as_str(), "--topic", topic];
    let second = python(script, &[&["consume"], &live[..], &group, &["--count", "180"]].concat(), TIMEOUT)?;
    let second: Vec<String> = serde_json::from_str(second.trim())?;
    assert_eq!(second, values(120..300));

    // After the old coordinator returns, it no longer owns the group, and the offsets stay put.
    cluster.restart(coordinator)?;
    cluster.wait_isr_full("__consumer_offsets", TIMEOUT)?;
    let committed = python(
        script,
        &[&["committed"], &["--bootstrap", bootstrap.as_str(), "--topic", topic][..], &group].concat(),
        TIMEOUT,
    )?;
    let committed: serde_json::Value = serde_json::from_str(committed.trim())?;
    assert_eq!(committed["0"], 300, "committed offsets after the failover and the restart: {committed}");
    Ok(())
}
