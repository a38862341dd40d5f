//! Consumer groups with real clients: confluent-kafka members sharing partitions through crashes
//! and graceful leaves (eager and cooperative-sticky), kcat -G, kafka-python, several groups,
//! committed offsets across a broker kill -9, and `millrace group describe`.

use millrace_tests::{millrace, python, python_script, run, wait_until, BrokerProcess};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);
const GROUPS_TOML: &str = "[groups]\ninitial_rebalance_delay = \"300ms\"\n";

/// A `group_worker.py` process.
struct Worker {
    child: Option<Child>,
    out: PathBuf,
}

impl Worker {
    fn spawn(
        dir: &std::path::Path,
        name: &str,
        bootstrap: &str,
        group: &str,
        topic: &str,
        strategy: &str,
    ) -> anyhow::Result<Worker> {
        let out = dir.join(format!("{name}.log"));
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let child = Command::new(python)
            .arg(python_script("group_worker.py"))
            .args(["--bootstrap", bootstrap, "--group", group, "--topic", topic, "--strategy", strategy, "--out"])
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(Worker { child: Some(child), out })
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.out).map(|t| t.lines().map(str::to_string).collect()).unwrap_or_default()
    }

    /// Partitions currently owned, per the last OWNED line.
    fn owned(&self) -> BTreeSet<i32> {
        self.lines()
            .iter()
            .rev()
            .find_map(|l| l.strip_prefix("OWNED "))
            .map(|rest| {
                rest.split_once(' ').map_or("", |(_, list)| list).split(',').filter_map(|p| p.parse().ok()).collect()
            })
            .unwrap_or_default()
    }

    /// (partition, offset, value) of every processed record.
    fn records(&self) -> Vec<(i32, i64, String)> {
        self.lines()
            .iter()
            .filter_map(|l| l.strip_prefix("REC "))
            .filter_map(|rest| {
                let mut parts = rest.splitn(3, ' ');
                Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.to_string()))
            })
            .collect()
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn terminate(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            run("kill", &["-TERM", &child.id().to_string()], None, T)?;
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait()?.is_none() {
                anyhow::ensure!(Instant::now() < deadline, "worker did not exit after SIGTERM");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn produce(bootstrap: &str, topic: &str, range: std::ops::Range<usize>) -> anyhow::Result<()> {
    let input: String = range.map(|i| format!("k{}:v-{i:06}\n", i % 29)).collect();
    run("kcat", &["-b", bootstrap, "-t", topic, "-P", "-K", ":"], Some(input.as_bytes()), T)?;
    Ok(())
}

/// True when the workers' owned sets are disjoint and cover 0..partitions.
fn covers(workers: &[&Worker], partitions: i32) -> bool {
    let sets: Vec<BTreeSet<i32>> = workers.iter().map(|w| w.owned()).collect();
    let total: usize = sets.iter().map(|s| s.len()).sum();
    let union: BTreeSet<i32> = sets.iter().flatten().copied().collect();
    total == partitions as usize && union == (0..partitions).collect()
}

fn consumed_values(workers: &[&Worker]) -> BTreeSet<String> {
    workers.iter().flat_map(|w| w.records()).map(|(_, _, v)| v).collect()
}

fn expect_all_consumed(workers: &[&Worker], upto: usize, what: &str) -> anyhow::Result<()> {
    let expected: BTreeSet<String> = (0..upto).map(|i| format!("v-{i:06}")).collect();
    wait_until(what, T, || consumed_values(workers).is_superset(&expected))
}

fn group_scenario(strategy: &str) -> anyhow::Result<()> {
    let broker = BrokerProcess::start(GROUPS_TOML)?;
    let b = broker.bootstrap();
    let dir = tempfile::tempdir()?;
    millrace(&["topic", "create", "shared", "--partitions", "6", "--bootstrap", &b])?;
    produce(&b, "shared", 0..3000)?;
    let group = format!("workers-{strategy}");
    let mut w0 = Worker::spawn(dir.path(), "w0", &b, &group, "shared", strategy)?;
    let mut w1 = Worker::spawn(dir.path(), "w1", &b, &group, "shared", strategy)?;
    let w2 = Worker::spawn(dir.path(), "w2", &b, &group, "shared", strategy)?;
    wait_until("three members to split 6 partitions", T, || {
        covers(&[&w0, &w1, &w2], 6) && [&w0, &w1, &w2].iter().all(|w| !w.owned().is_empty())
    })?;
    expect_all_consumed(&[&w0, &w1, &w2], 3000, "the first 3000 records")?;

    // A crash: no LeaveGroup; the session timeout (6 s) must hand the partitions over.
    w0.kill9();
    let crashed = Instant::now();
    wait_until("the survivors to take over after a crash", Duration::from_secs(30), || covers(&[&w1, &w2], 6))?;
    let takeover = crashed.elapsed();
    assert!(takeover < Duration::from_secs(15), "crash takeover took {takeover:?}");
    produce(&b, "shared", 3000..6000)?;
    expect_all_consumed(&[&w0, &w1, &w2], 6000, "records produced after the crash")?;

    // A graceful leave rebalances at once, well within the session timeout.
    w1.terminate()?;
    let left = Instant::now();
    wait_until("the last member to own everything after a leave", Duration::from_secs(30), || covers(&[&w2], 6))?;
    let handover = left.elapsed();
    assert!(handover < Duration::from_secs(5), "graceful leave took {handover:?}");
    produce(&b, "shared", 6000..7000)?;
    expect_all_consumed(&[&w0, &w1, &w2], 7000, "records produced after the leave")?;

    // At least once and nothing skipped: every offset of every partition was processed.
    let mut seen: BTreeMap<i32, BTreeSet<i64>> = BTreeMap::new();
    for (partition, offset, _) in [&w0, &w1, &w2].iter().flat_map(|w| w.records()) {
        seen.entry(partition).or_default().insert(offset);
    }
    let total: usize = seen.values().map(|s| s.len()).sum();
    assert_eq!(total, 7000, "distinct offsets processed");
    for (partition, offsets) in &seen {
        let max = offsets.iter().max().copied().unwrap_or(-1);
        assert_eq!(offsets.len() as i64, max + 1, "partition {partition} has a gap");
    }
    eprintln!("{strategy}: crash takeover {takeover:?}, graceful leave {handover:?}");
    Ok(())
}

#[test]
fn eager_group_shares_partitions_through_crash_and_leave() -> anyhow::Result<()> {
    group_scenario("range")
}

#[test]
fn cooperative_sticky_group_shares_partitions_through_crash_and_leave() -> anyhow::Result<()> {
    group_scenario("cooperative-sticky")
}

fn kcat_group(bootstrap: &str, group: &str, topic: &str) -> anyhow::Result<BTreeSet<String>> {
    let out =
        run("kcat", &["-b", bootstrap, "-G", group, topic, "-e", "-q", "-X", "auto.offset.reset=earliest"], None, T)?;
    Ok(String::from_utf8(out.stdout)?.lines().map(str::to_string).collect())
}

#[test]
fn kcat_groups_each_see_every_record_and_resume() -> anyhow::Result<()> {
    let broker = BrokerProcess::start(GROUPS_TOML)?;
    let b = broker.bootstrap();
    millrace(&["topic", "create", "fanout", "--partitions", "3", "--bootstrap", &b])?;
    produce(&b, "fanout", 0..200)?;
    let all: BTreeSet<String> = (0..200).map(|i| format!("v-{i:06}")).collect();
    assert_eq!(kcat_group(&b, "group-a", "fanout")?, all, "group-a");
    assert_eq!(kcat_group(&b, "group-b", "fanout")?, all, "group-b");
    // Committed: a second run of a group sees only what is new.
    assert!(kcat_group(&b, "group-a", "fanout")?.is_empty());
    produce(&b, "fanout", 200..210)?;
    let new: BTreeSet<String> = (200..210).map(|i| format!("v-{i:06}")).collect();
    assert_eq!(kcat_group(&b, "group-a", "fanout")?, new);
    let listing = millrace(&["group", "list", "--bootstrap", &b])?;
    assert!(listing.contains("group-a") && listing.contains("group-b"), "{listing}");
    Ok(())
}

#[test]
fn kafka_python_group_consumer() -> anyhow::Result<()> {
    let broker = BrokerProcess::start(GROUPS_TOML)?;
    let b = broker.bootstrap();
    millrace(&["topic", "create", "kp-group", "--partitions", "2", "--bootstrap", &b])?;
    produce(&b, "kp-group", 0..100)?;
    let args = ["--bootstrap", b.as_str(), "--group", "kp", "--topic", "kp-group"];
    let out = python("kafka_python_group.py", &[&args[..], &["--expect", "100"]].concat(), Duration::from_secs(120))?;
    assert_eq!(out.lines().count(), 100);
    produce(&b, "kp-group", 100..120)?;
    let out = python("kafka_python_group.py", &[&args[..], &["--expect", "20"]].concat(), Duration::from_secs(120))?;
    let expected: Vec<String> = (100..120).map(|i| format!("v-{i:06}")).collect();
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);
    Ok(())
}

#[test]
fn committed_offsets_survive_kill_9() -> anyhow::Result<()> {
    let mut broker = BrokerProcess::start(GROUPS_TOML)?;
    let b = broker.bootstrap();
    millrace(&["topic", "create", "durable-offsets", "--partitions", "3", "--bootstrap", &b])?;
    produce(&b, "durable-offsets", 0..300)?;
    assert_eq!(kcat_group(&b, "keeper", "durable-offsets")?.len(), 300);
    broker.kill9();
    broker.restart()?;
    assert!(kcat_group(&b, "keeper", "durable-offsets")?.is_empty(), "offsets were lost in the crash");
    produce(&b, "durable-offsets", 300..310)?;
    let new: BTreeSet<String> = (300..310).map(|i| format!("v-{i:06}")).collect();
    assert_eq!(kcat_group(&b, "keeper", "durable-offsets")?, new, "the consumer resumes from its committed position");
    Ok(())
}

/// Parses `millrace group describe` rows: (partition → (current, end, lag, consumer)).
fn describe_rows(text: &str) -> BTreeMap<i32, (i64, i64, i64, String)> {
    text.lines()
        .filter(|l| !l.starts_with("Group:") && !l.starts_with("GROUP") && !l.trim().is_empty())
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((
                f.get(2)?.parse().ok()?,
                (f.get(3)?.parse().ok()?, f.get(4)?.parse().ok()?, f.get(5)?.parse().ok()?, f.get(6)?.to_string()),
            ))
        })
        .collect()
}

#[test]
fn group_describe_shows_lag_while_producing() -> anyhow::Result<()> {
    let broker = BrokerProcess::start(GROUPS_TOML)?;
    let b = broker.bootstrap();
    let dir = tempfile::tempdir()?;
    millrace(&["topic", "create", "lagging", "--partitions", "2", "--bootstrap", &b])?;
    produce(&b, "lagging", 0..500)?;
    let worker = Worker::spawn(dir.path(), "lag", &b, "laggers", "lagging", "range")?;
    expect_all_consumed(&[&worker], 500, "the backlog")?;
    // Keep producing while describing: every row must be consistent and owned by the live member.
    for round in 0..5 {
        produce(&b, "lagging", 500 + round * 200..700 + round * 200)?;
        let text = millrace(&["group", "describe", "laggers", "--bootstrap", &b])?;
        assert!(text.contains("State: Stable") && text.contains("Members: 1"), "{text}");
        let rows = describe_rows(&text);
        assert_eq!(rows.len(), 2, "{text}");
        for (partition, (current, end, lag, consumer)) in &rows {
            assert_eq!(*lag, end - current, "partition {partition}: {text}");
            assert!(consumer.starts_with("rdkafka"), "partition {partition} should show its consumer: {text}");
        }
    }
    // Once the producer stops, the lag drains to zero and the gauges agree.
    wait_until("lag to drain", T, || {
        millrace(&["group", "describe", "laggers", "--bootstrap", &b])
            .map(|t| describe_rows(&t).values().all(|(c, e, l, _)| *l == 0 && c == e && *e > 0))
            .unwrap_or(false)
    })?;
    let metrics = broker.admin_get("/metrics")?;
    let lag_lines: Vec<&str> =
        metrics.lines().filter(|l| l.starts_with("millrace_broker_group_lag{group=\"laggers\"")).collect();
    assert_eq!(lag_lines.len(), 2, "{metrics}");
    assert!(lag_lines.iter().all(|l| l.ends_with(" 0")), "{lag_lines:?}");
    Ok(())
}

#[test]
fn group_administration_with_admin_clients() -> anyhow::Result<()> {
    let broker = BrokerProcess::start(GROUPS_TOML)?;
    let out = python("group_admin_check.py", &["--bootstrap", &broker.bootstrap()], Duration::from_secs(120))?;
    assert!(out.contains("OK group admin"), "{out}");
    Ok(())
}

#[test]
fn clients_cannot_write_or_delete_the_offsets_topic() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let b = broker.bootstrap();
    let produced =
        run("kcat", &["-b", &b, "-t", "__consumer_offsets", "-P", "-X", "message.timeout.ms=5000"], Some(b"junk\n"), T);
    assert!(produced.is_err(), "a client wrote into __consumer_offsets");
    let deleted = millrace(&["topic", "delete", "__consumer_offsets", "--bootstrap", &b]);
    assert!(deleted.is_err(), "__consumer_offsets was deleted");
    let listing = millrace(&["topic", "list", "--bootstrap", &b])?;
    assert!(listing.lines().any(|l| l == "__consumer_offsets"), "{listing}");
    Ok(())
}
