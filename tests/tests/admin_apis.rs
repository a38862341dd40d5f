//! The day-2 admin APIs on a real 3-broker cluster, driven as an operator would: `millrace topic
//! alter` and `cluster alter-config` (IncrementalAlterConfigs) change settings that `topic
//! describe` (librdkafka's DescribeConfigs) then shows; `topic delete-records` (librdkafka's
//! DeleteRecords) moves every replica's log start, which survives a leader change and a restart
//! (its wait for a silent in-sync follower ends at the request's timeout);
//! `cluster elect-leaders` gives a partition back to its preferred replica; `cluster quorum` and
//! `cluster log-dirs` describe the metadata quorum and each broker's disks; an unclean election brings
//! back a partition whose only in-sync replica is gone, losing what only that replica had.

use anyhow::Context;
use millrace_tests::{millrace, millrace_bin, python_bin, run, wait_for, Cluster};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// `millrace ARGS`, failing or not: (success, stdout + stderr).
fn millrace_outcome(args: &[&str]) -> anyhow::Result<(bool, String)> {
    let bin = millrace_bin().display().to_string();
    match run(&bin, args, None, T) {
        Ok(out) => Ok((true, String::from_utf8_lossy(&out.stdout).into_owned())),
        Err(e) => Ok((false, format!("{e:#}"))),
    }
}

/// The `Configs:` column of `millrace topic describe TOPIC`.
fn topic_configs(bootstrap: &str, topic: &str) -> anyhow::Result<String> {
    let out = millrace(&["topic", "describe", topic, "--bootstrap", bootstrap])?;
    let line = out.lines().find(|l| l.starts_with("Topic:")).unwrap_or_default();
    Ok(line.split("Configs: ").nth(1).unwrap_or_default().split('\t').next().unwrap_or_default().to_string())
}

/// Waits until `topic describe` shows (or, with `present` false, no longer shows) `setting`.
fn wait_config(bootstrap: &str, topic: &str, setting: &str, present: bool) -> anyhow::Result<()> {
    wait_for(&format!("{topic} configs {} {setting}", if present { "show" } else { "drop" }), T, || {
        let configs = topic_configs(bootstrap, topic)?;
        Ok(configs.split(',').any(|c| c == setting) == present)
    })
}

#[test]
fn settings_change_while_the_cluster_runs() -> anyhow::Result<()> {
    let cluster = Cluster::start(3, "")?;
    let bootstrap = cluster.bootstrap();
    cluster.create_topic("alt", 2, 3, &["retention.ms=86400000"])?;

    let altered = millrace(&[
        "topic",
        "alter",
        "alt",
        "--add-config",
        "retention.ms=3600000",
        "--add-config",
        "segment.bytes=1048576",
        "--bootstrap",
        &bootstrap,
    ])?;
    assert!(altered.contains("altered topic alt"), "{altered}");
    wait_config(&bootstrap, "alt", "retention.ms=3600000", true)?;
    wait_config(&bootstrap, "alt", "segment.bytes=1048576", true)?;

    // A bad value is refused by name and changes nothing.
    let (ok, out) =
        millrace_outcome(&["topic", "alter", "alt", "--add-config", "retention.ms=soon", "--bootstrap", &bootstrap])?;
    assert!(!ok && out.contains("InvalidConfig") && out.contains("retention.ms"), "{out}");
    let (ok, out) =
        millrace_outcome(&["topic", "alter", "nope", "--add-config", "retention.ms=1", "--bootstrap", &bootstrap])?;
    assert!(!ok && out.contains("UnknownTopicOrPartition"), "{out}");
    assert!(topic_configs(&bootstrap, "alt")?.contains("retention.ms=3600000"));

    // Back to the default.
    millrace(&["topic", "alter", "alt", "--delete-config", "segment.bytes", "--bootstrap", &bootstrap])?;
    wait_config(&bootstrap, "alt", "segment.bytes=1048576", false)?;

    // A cluster-wide default reaches every broker and every topic without its own setting.
    let out = millrace(&[
        "cluster",
        "alter-config",
        "--add-config",
        "log.retention.bytes=536870912",
        "--bootstrap",
        &bootstrap,
    ])?;
    assert!(out.contains("every broker"), "{out}");
    wait_config(&bootstrap, "alt", "retention.bytes=536870912", true)?;
    for id in cluster.ids() {
        let one = cluster.broker(id).kafka_addr();
        wait_config(&one, "alt", "retention.bytes=536870912", true)?;
    }
    let (ok, out) = millrace_outcome(&[
        "cluster",
        "alter-config",
        "--add-config",
        "listeners=PLAINTEXT://:1",
        "--bootstrap",
        &bootstrap,
    ])?;
    assert!(!ok && out.contains("InvalidConfig") && out.contains("log.retention.ms"), "names what can change: {out}");
    Ok(())
}

/// Offsets of partition 0 of `topic` as kcat reads them from the beginning, through `bootstrap`.
fn offsets_from_beginning(bootstrap: &str, topic: &str) -> anyhow::Result<Vec<i64>> {
    let out = run(
        "kcat",
        &["-b", bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q", "-f", "%o\n"],
        None,
        T,
    )?;
    Ok(String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect())
}

/// Three brokers and a one-partition topic on all three holding records 0 to 99; the cluster and
/// its bootstrap.
fn three_brokers_with_100_records(topic: &str, extra_toml: &str) -> anyhow::Result<(Cluster, String)> {
    let cluster = Cluster::start(3, extra_toml)?;
    let bootstrap = cluster.bootstrap();
    cluster.create_topic(topic, 1, 3, &[])?;
    let body: String = (0..100).map(|n| format!("record-{n}\n")).collect();
    run("kcat", &["-b", &bootstrap, "-P", "-t", topic, "-p", "0", "-X", "acks=all"], Some(body.as_bytes()), T)?;
    Ok((cluster, bootstrap))
}

#[test]
fn deleted_records_stay_deleted_across_leaders_and_restarts() -> anyhow::Result<()> {
    let (mut cluster, bootstrap) = three_brokers_with_100_records("del", "")?;
    assert_eq!(offsets_from_beginning(&bootstrap, "del")?.len(), 100);

    let out =
        millrace(&["topic", "delete-records", "del", "--partition", "0", "--before", "40", "--bootstrap", &bootstrap])?;
    assert!(out.contains("del-0\tLogStartOffset: 40"), "{out}");
    let offsets = offsets_from_beginning(&bootstrap, "del")?;
    assert_eq!(offsets, (40..100).collect::<Vec<i64>>(), "consumers start at the new log start");
    let (ok, out) =
        millrace_outcome(&["topic", "delete-records", "del", "--before", "1000", "--bootstrap", &bootstrap])?;
    assert!(!ok && out.contains("out of range"), "past the end is refused: {out}");

    // The followers took the new log start too: a new leader serves from 40.
    let leader = cluster.describe("del")?[0].leader;
    cluster.kill9(leader);
    cluster.wait_new_leader("del", 0, leader, T)?;
    let live = cluster.live_bootstrap();
    assert_eq!(offsets_from_beginning(&live, "del")?.first(), Some(&40), "the new leader's log start");

    // The old leader comes back from its checkpoint, catches up, and leads again on request.
    cluster.restart(leader)?;
    cluster.wait_isr_full("del", T)?;
    let preferred = cluster.describe("del")?[0].replicas[0];
    let out = millrace(&["cluster", "elect-leaders", "--topic", "del", "--bootstrap", &live])?;
    assert!(out.contains("del-0\telected") || out.contains("del-0\tno election needed"), "{out}");
    cluster.wait_partitions("del", "the preferred replica leads", T, |parts| parts[0].leader == preferred)?;
    let bootstrap = cluster.bootstrap();
    // Every replica, asked as leader in turn, starts at 40.
    for id in cluster.ids() {
        if cluster.describe("del")?[0].leader != id {
            // Make `id` the preferred replica, then elect it.
            let replicas = replicas_led_by(id);
            millrace(&[
                "cluster",
                "reassign",
                "--topic",
                "del",
                "--partition",
                "0",
                "--replicas",
                &replicas,
                "--bootstrap",
                &bootstrap,
            ])?;
            cluster.wait_partitions("del", &format!("{id} preferred"), T, |parts| parts[0].replicas[0] == id)?;
            let out = millrace(&[
                "cluster",
                "elect-leaders",
                "--topic",
                "del",
                "--partition",
                "0",
                "--bootstrap",
                &bootstrap,
            ])?;
            assert!(out.contains("del-0\telected"), "{out}");
            cluster.wait_partitions("del", &format!("{id} leads"), T, |parts| parts[0].leader == id)?;
        }
        assert_eq!(offsets_from_beginning(&bootstrap, "del")?.first(), Some(&40), "broker {id} as leader");
    }

    let quorum = millrace(&["cluster", "quorum", "--bootstrap", &bootstrap])?;
    assert!(quorum.contains("LeaderId:") && quorum.contains("CurrentVoters:\t[1,2,3]"), "{quorum}");
    let followers = quorum.lines().filter(|l| l.ends_with("\tFollower") || l.ends_with("\tLeader")).count();
    assert_eq!(followers, 3, "{quorum}");

    let dirs = millrace(&["cluster", "log-dirs", "--bootstrap", &bootstrap])?;
    for id in cluster.ids() {
        assert!(dirs.contains(&format!("Broker: {id}\t")), "{dirs}");
    }
    assert_eq!(dirs.matches("\tdel-0\tSize: ").count(), 3, "{dirs}");
    assert!(!dirs.contains("OFFLINE"), "{dirs}");
    Ok(())
}

/// DeleteRecords answers once every in-sync follower has moved its log start too (as Kafka's
/// delayed DeleteRecords does): the leader killed the moment the answer arrives leaves no
/// replica that could lead with the deleted records.
#[test]
fn a_delete_records_answer_means_every_in_sync_replica_moved() -> anyhow::Result<()> {
    let (mut cluster, _) = three_brokers_with_100_records("gone", "")?;
    cluster.wait_isr_full("gone", T)?;
    let leader = cluster.describe("gone")?[0].leader;
    // Followers are parked in their long-poll fetches now: nothing new to read.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let out = millrace(&[
        "topic",
        "delete-records",
        "gone",
        "--partition",
        "0",
        "--before",
        "60",
        "--bootstrap",
        &cluster.broker(leader).kafka_addr(),
    ])?;
    cluster.kill9(leader);
    assert!(out.contains("gone-0\tLogStartOffset: 60"), "{out}");
    cluster.wait_new_leader("gone", 0, leader, T)?;
    let live = cluster.live_bootstrap();
    assert_eq!(offsets_from_beginning(&live, "gone")?.first(), Some(&60), "the new leader serves deleted records");
    Ok(())
}

/// DeleteRecords through librdkafka (confluent-kafka) with an operation timeout of half a second:
/// prints `deleted <low watermark>` or `error <error name>` for partition 0 of the topic.
const DELETE_RECORDS_PY: &str = r#"
import sys
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient
bootstrap, topic, before = sys.argv[1], sys.argv[2], int(sys.argv[3])
admin = AdminClient({"bootstrap.servers": bootstrap})
futures = admin.delete_records([TopicPartition(topic, 0, before)], operation_timeout=0.5, request_timeout=30.0)
for future in futures.values():
    try:
        print("deleted", future.result().low_watermark)
    except Exception as e:
        print("error", e.args[0].name())
"#;

#[test]
fn a_delete_records_wait_for_a_silent_follower_ends_at_the_requests_timeout() -> anyhow::Result<()> {
    // Sessions and lag allowance far longer than the test: a client slow to start on a loaded
    // machine (seconds, in CI) must not see the paused follower fenced out of the ISR, after
    // which the request is rightly answered at once.
    let slow_fencing = "[controller]\nbroker_session_timeout = \"60s\"\nbroker_heartbeat_interval = \"500ms\"\n\n\
                        [replication]\nreplica_lag_time_max = \"60s\"\n";
    let (mut cluster, bootstrap) = three_brokers_with_100_records("slow", slow_fencing)?;
    cluster.wait_isr_full("slow", T)?;
    let partition = cluster.describe("slow")?[0].clone();
    let follower = partition.replicas.iter().copied().find(|&r| r != partition.leader).context("a follower")?;
    // Still in sync (its lag and session timeouts are a minute away; a probe finds its socket
    // listening) but fetching nothing: the new log start cannot reach it within the timeout.
    cluster.pause(follower)?;
    let started = std::time::Instant::now();
    let live = cluster.live_bootstrap();
    let out = run(&python_bin(), &["-c", DELETE_RECORDS_PY, &live, "slow", "60"], None, T);
    let waited = started.elapsed();
    cluster.resume(follower)?;
    let out = String::from_utf8_lossy(&out?.stdout).into_owned();
    assert_eq!(out.trim(), "error REQUEST_TIMED_OUT", "answered after {waited:?}");
    // Once the follower fetches again, the same request is answered. A follower paused for
    // seconds first reconnects (its fetch timed out as it woke), so the request is repeated.
    let mut last = String::new();
    wait_for("the DeleteRecords answer once the follower fetches again", T, || {
        let out = run(&python_bin(), &["-c", DELETE_RECORDS_PY, &bootstrap, "slow", "60"], None, T)?;
        last = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Ok(last == "deleted 60")
    })
    .with_context(|| format!("last answer: {last}"))?;
    Ok(())
}

/// A replica list with `id` first, so a reassignment makes it the preferred leader.
fn replicas_led_by(id: i32) -> String {
    let mut ids = vec![id];
    ids.extend([1, 2, 3].into_iter().filter(|&r| r != id));
    ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

#[test]
fn an_unclean_election_brings_a_partition_back_when_its_in_sync_replica_is_gone() -> anyhow::Result<()> {
    let mut cluster = Cluster::start(3, "")?;
    cluster.create_topic("unc", 1, 2, &["min.insync.replicas=1"])?;
    let replicas = cluster.describe("unc")?[0].replicas.clone();
    let (first, second) = (replicas[0], replicas[1]);
    let produce = |bootstrap: &str, from: u32| -> anyhow::Result<()> {
        let body: String = (from..from + 10).map(|n| format!("u-{n}\n")).collect();
        run("kcat", &["-b", bootstrap, "-P", "-t", "unc", "-p", "0", "-X", "acks=all"], Some(body.as_bytes()), T)?;
        Ok(())
    };
    produce(&cluster.bootstrap(), 0)?;
    // `second` goes; `first` alone stays in sync and takes more; then `first` goes too.
    cluster.kill9(second);
    cluster.wait_partitions("unc", "the ISR shrunk to one", T, |p| p[0].isr == vec![first] && p[0].leader == first)?;
    produce(&cluster.live_bootstrap(), 10)?;
    cluster.kill9(first);
    cluster.restart(second)?;
    let live = cluster.live_bootstrap();
    cluster.wait_partitions("unc", "leaderless", T, |p| p[0].leader == -1)?;
    // A preferred election cannot help: the only in-sync replica is gone.
    let (ok, out) = millrace_outcome(&["cluster", "elect-leaders", "--topic", "unc", "--bootstrap", &live])?;
    assert!(!ok && out.contains("unc-0"), "{out}");
    let out = millrace(&["cluster", "elect-leaders", "--election", "unclean", "--topic", "unc", "--bootstrap", &live])?;
    assert!(out.contains("unc-0\telected"), "{out}");
    cluster.wait_partitions("unc", "the out-of-sync replica leads", T, |p| {
        p[0].leader == second && p[0].isr == vec![second]
    })?;
    // It serves what it had: the records written while it was away are lost, as an unclean
    // election warns.
    let offsets = offsets_from_beginning(&live, "unc")?;
    assert_eq!(offsets, (0..10).collect::<Vec<i64>>());
    Ok(())
}
