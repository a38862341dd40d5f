//! `millrace top` as an operator sees it: the real binary in a tmux pane against a real 3-broker
//! cluster. It must show the brokers, a group's lag, partitions with their ISR; when a broker is
//! killed its partitions turn under-replicated on screen, and they recover when it returns; when
//! the whole cluster is gone it says so and recovers once it is back; `q` quits cleanly. The
//! confirmed actions work on it: `R` resets the idle group to the latest offsets, `E` gives the
//! partitions back to their preferred leaders after the restart.

use anyhow::Context;
use millrace_tests::tmux::{row, TmuxPane};
use millrace_tests::{millrace_bin, python_bin, Cluster};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

const TOPIC: &str = "orders";
const GROUP: &str = "tui-readers";
const SCREEN: Duration = Duration::from_secs(30);
/// Session timeout (3 s) fences the killed broker and shrinks every ISR; then a refresh or two.
const FENCED: Duration = Duration::from_secs(40);
const CATCH_UP: Duration = Duration::from_secs(60);

fn cluster_toml() -> &'static str {
    "[replication]\nreplica_lag_time_max = \"3s\"\ndefault_replication_factor = 3\n\n\
     [controller]\nbroker_session_timeout = \"3s\"\nbroker_heartbeat_interval = \"500ms\"\n\
     auto_leader_rebalance = false\n"
}

fn produce(bootstrap: &str, from: usize, count: usize) -> anyhow::Result<()> {
    let mut kcat = Command::new("kcat")
        .args(["-P", "-b", bootstrap, "-t", TOPIC, "-X", "acks=all", "-K", ":"])
        .stdin(Stdio::piped())
        .spawn()
        .context("starting kcat (is it installed?)")?;
    let mut stdin = kcat.stdin.take().context("kcat stdin")?;
    for i in from..from + count {
        // Keyed, so the records spread over every partition.
        writeln!(stdin, "customer-{i}:order {i}")?;
    }
    drop(stdin);
    anyhow::ensure!(kcat.wait()?.success(), "kcat -P failed");
    Ok(())
}

/// A consumer group that read everything produced so far and committed it synchronously, then
/// left (confluent-kafka; kcat's periodic auto-commit would leave the offsets to chance).
fn consume_all_as_group(bootstrap: &str, expected: usize) -> anyhow::Result<()> {
    let script = r#"
import sys
from confluent_kafka import Consumer
bootstrap, group, topic, expected = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
              "enable.auto.commit": False})
c.subscribe([topic])
read = 0
for _ in range(600):
    m = c.poll(0.1)
    if m is not None and m.error() is None:
        read += 1
    if read == expected:
        break
c.commit(asynchronous=False)
c.close()
print(read)
"#;
    let output = Command::new(python_bin())
        .args(["-c", script, bootstrap, GROUP, TOPIC, &expected.to_string()])
        .output()
        .context("running the Python consumer")?;
    let read = String::from_utf8_lossy(&output.stdout).trim().to_string();
    anyhow::ensure!(
        read == expected.to_string(),
        "the group read {read:?} of {expected} records: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

#[test]
fn top_shows_a_broker_loss_as_under_replicated_partitions_and_recovers() -> anyhow::Result<()> {
    let mut cluster = Cluster::start(3, cluster_toml())?;
    cluster.create_topic(TOPIC, 3, 3, &["min.insync.replicas=2"])?;
    let bootstrap = cluster.bootstrap();
    produce(&bootstrap, 0, 300)?;
    consume_all_as_group(&bootstrap, 300)?;
    produce(&bootstrap, 300, 200)?; // the group is now 200 behind

    let bin = millrace_bin();
    let bin = bin.to_str().context("binary path")?;
    let log_dir = tempfile::tempdir()?;
    let log = log_dir.path().join("top.log");
    let log = log.to_str().context("log path")?;
    let pane = TmuxPane::start(
        bin,
        &["top", "--bootstrap", &bootstrap, "--interval", "1s", "--log-file", log, "--view", "brokers"],
        160,
        45,
    )?;
    let screen = pane.wait_for_screen("three brokers up", SCREEN, |s| s.contains("brokers 3/3 up"))?;
    let mut leaders = 0;
    for id in cluster.ids() {
        let broker_row = row(&screen, &cluster.broker(id).kafka_addr()).with_context(|| format!("broker {id} row"))?;
        assert!(broker_row.contains(" up "), "broker {id} not shown up: {broker_row}\n{screen}");
        // Its part in the metadata quorum (DescribeQuorum): one leader, the others voters.
        assert!(broker_row.contains("leader") || broker_row.contains("voter"), "{broker_row}\n{screen}");
        leaders += usize::from(broker_row.contains("leader"));
    }
    assert_eq!(leaders, 1, "{screen}");

    pane.type_command("groups")?;
    pane.wait_for_screen("the group with a lag of 200", SCREEN, |s| {
        row(s, GROUP).is_some_and(|r| r.split_whitespace().any(|w| w == "200"))
    })?;
    // The group is empty (its consumer left): reset it to the latest offsets, after the question.
    pane.send_keys(&["R"])?;
    pane.wait_for_screen("the reset question", SCREEN, |s| {
        s.contains(&format!("reset group {GROUP}")) && s.contains("skipping 200")
    })?;
    pane.send_keys(&["l"])?;
    pane.wait_for_screen("the group caught up by the reset", SCREEN, |s| {
        s.contains("reset to the latest offsets")
            && row(s, GROUP).is_some_and(|r| r.split_whitespace().nth(6) == Some("0"))
    })?;

    pane.type_command(&format!("partitions {TOPIC}"))?;
    let healthy = pane.wait_for_screen("three healthy partitions", SCREEN, |s| {
        s.lines().filter(|l| l.contains(&format!("│{TOPIC} ")) && l.contains(" ok")).count() == 3
    })?;
    eprintln!("before the kill:\n{healthy}");

    let victim = cluster.leader_of(TOPIC, 0)?;
    eprintln!("kill -9 broker {victim}, the leader of {TOPIC}-0");
    cluster.kill9(victim);
    let degraded = pane.wait_for_screen("every partition under-replicated, 2 of 3 brokers up", FENCED, |s| {
        s.contains("brokers 2/3 up")
            && s.lines().filter(|l| l.contains(&format!("│{TOPIC} ")) && l.contains("under-replicated")).count() == 3
    })?;
    eprintln!("after the kill:\n{degraded}");
    for line in degraded.lines().filter(|l| l.contains(&format!("│{TOPIC} "))) {
        let leader = line.split_whitespace().nth(2).unwrap_or_default();
        assert_ne!(leader, victim.to_string(), "the killed broker still leads: {line}");
    }

    cluster.restart(victim)?;
    pane.wait_for_screen("the partitions in sync again", CATCH_UP, |s| {
        s.contains("brokers 3/3 up")
            && s.lines().filter(|l| l.contains(&format!("│{TOPIC} ")) && l.contains(" ok")).count() == 3
    })?;
    // The restarted broker leads nothing; electing preferred leaders (asked first) gives each
    // partition back to its first replica.
    let led_by_preferred = |s: &str| {
        s.lines().filter(|l| l.contains(&format!("│{TOPIC} "))).all(|l| {
            let words: Vec<&str> = l.trim_start_matches('│').split_whitespace().collect();
            words.len() > 3 && words[3].split(',').next() == Some(words[2])
        })
    };
    pane.send_keys(&["E"])?;
    let asked = pane.wait_for_screen("the election question", SCREEN, |s| {
        s.contains("elect preferred leaders for") || s.contains("led by its preferred replica")
    })?;
    anyhow::ensure!(!led_by_preferred(&asked), "every partition already led by its preferred replica:\n{asked}");
    pane.send_keys(&["y"])?;
    let elected = pane.wait_for_screen("every partition led by its preferred replica", SCREEN, |s| {
        s.contains("elected") && led_by_preferred(s)
    })?;
    eprintln!("after the election:\n{elected}");

    // The whole cluster away: a banner, the last data kept; back: it recovers by itself.
    for id in cluster.ids() {
        cluster.stop(id)?;
    }
    pane.wait_for_screen("the unreachable banner", SCREEN, |s| s.contains("cluster unreachable"))?;
    cluster.restart_all(&cluster.ids())?;
    pane.wait_for_screen("recovery after the cluster returned", CATCH_UP, |s| {
        !s.contains("cluster unreachable") && s.contains("brokers 3/3 up")
    })?;

    pane.send_keys(&["q"])?;
    let mut status = None;
    for _ in 0..50 {
        status = pane.exit_status()?;
        if status.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status, Some(0), "millrace top did not exit 0 on q; screen:\n{}", pane.screen()?);
    Ok(())
}
