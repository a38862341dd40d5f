//! `millrace group reset-offsets`, as operators use `kafka-consumer-groups --reset-offsets`: a
//! sink's group (here kcat's balanced consumer, librdkafka) is rewound to replay everything, to
//! a point in time, or by a shift on one partition; `--dry-run` commits nothing; a group with an
//! active member is refused.

use millrace_tests::{millrace, run, wait_for, BrokerProcess, Drained};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn produce(bootstrap: &str, lines: std::ops::Range<u32>) -> anyhow::Result<()> {
    let body: String = lines.map(|n| format!("r-{n:03}\n")).collect();
    run("kcat", &["-b", bootstrap, "-t", "replay", "-P"], Some(body.as_bytes()), T)?;
    Ok(())
}

/// What the group's consumer reads from its committed offsets to the end (and commits).
fn consume(bootstrap: &str) -> anyhow::Result<Vec<String>> {
    let args = ["-b", bootstrap, "-G", "replayers", "replay", "-e", "-q", "-X", "auto.offset.reset=earliest"];
    let out = run("kcat", &args, None, T)?;
    let mut lines: Vec<String> = String::from_utf8(out.stdout)?.lines().map(str::to_string).collect();
    lines.sort();
    Ok(lines)
}

/// Committed offset per partition, from `millrace group describe`.
fn committed(bootstrap: &str) -> anyhow::Result<BTreeMap<i32, i64>> {
    let text = millrace(&["group", "describe", "replayers", "--bootstrap", bootstrap])?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("replayers "))
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            Some((cols.get(2)?.parse().ok()?, cols.get(3)?.parse().ok()?))
        })
        .collect())
}

/// `millrace group reset-offsets replayers …`, its output whether it succeeded or not.
fn reset(bootstrap: &str, args: &[&str]) -> anyhow::Result<std::process::Output> {
    let mut all = vec!["group", "reset-offsets", "replayers", "--bootstrap", bootstrap];
    all.extend_from_slice(args);
    let mut child = Command::new(millrace_tests::millrace_bin())
        .args(&all)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let drained = Drained::take(&mut child);
    // Bounded: a hung command fails the test instead of holding CI.
    let status = millrace_tests::wait_or_kill(&mut child, std::time::Instant::now() + T)?
        .ok_or_else(|| anyhow::anyhow!("reset-offsets {args:?} did not finish within {T:?}"))?;
    let (stdout, stderr) = drained.finish();
    Ok(std::process::Output { status, stdout, stderr })
}

fn names(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|n| format!("r-{n:03}")).collect()
}

#[test]
fn a_groups_offsets_are_reset_to_replay_and_refused_while_it_has_members() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("[groups]\ninitial_rebalance_delay = \"300ms\"\n")?;
    let b = broker.bootstrap();
    millrace(&["topic", "create", "replay", "--partitions", "2", "--bootstrap", &b])?;
    produce(&b, 0..10)?;
    std::thread::sleep(Duration::from_millis(1500));
    let between = chrono::Utc::now();
    std::thread::sleep(Duration::from_millis(1500));
    produce(&b, 10..20)?;
    assert_eq!(consume(&b)?, names(0..20));
    let at_end = committed(&b)?;
    assert_eq!(at_end.values().sum::<i64>(), 20, "{at_end:?}");

    // A dry run shows the plan and commits nothing.
    let dry = reset(&b, &["--topic", "replay", "--to-earliest", "--dry-run"])?;
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(dry.status.success() && text.contains("dry run"), "{text}");
    assert_eq!(committed(&b)?, at_end);

    // Everything again.
    let done = reset(&b, &["--topic", "replay", "--to-earliest"])?;
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    assert!(committed(&b)?.values().all(|o| *o == 0));
    // The lag in time: where records wait, the oldest was written seconds ago; a partition
    // without records (kcat's sticky partitioner may leave one empty) is caught up.
    let metrics = broker.admin_get("/metrics")?;
    let per_partition = |family: &str| -> BTreeMap<String, f64> {
        metrics
            .lines()
            .filter(|l| l.starts_with(&format!("{family}{{")) && l.contains("group=\"replayers\""))
            .filter_map(|l| {
                let partition = l.split("partition=\"").nth(1)?.split('"').next()?.to_string();
                Some((partition, l.rsplit(' ').next()?.parse().ok()?))
            })
            .collect()
    };
    let (records, seconds) =
        (per_partition("millrace_broker_group_lag"), per_partition("millrace_broker_group_lag_seconds"));
    assert_eq!(records.keys().collect::<Vec<_>>(), seconds.keys().collect::<Vec<_>>(), "{metrics}");
    assert!(records.values().any(|r| *r > 0.0), "{records:?}");
    for (partition, behind) in &records {
        let age = seconds[partition];
        if *behind > 0.0 {
            assert!((1.0..600.0).contains(&age), "partition {partition}: {behind} records, {age} s");
        } else {
            assert_eq!(age, 0.0, "partition {partition} is caught up");
        }
    }
    assert_eq!(consume(&b)?, names(0..20), "the whole topic replayed");

    // From a point in time: only what came after it.
    let at = between.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let done = reset(&b, &["--topic", "replay", "--to-datetime", &at])?;
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    assert_eq!(consume(&b)?, names(10..20), "replayed since {at}");

    // One partition back by two.
    let before = committed(&b)?;
    let done = reset(&b, &["--topic", "replay:0", "--shift-by", "-2"])?;
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let after = committed(&b)?;
    assert_eq!(after.get(&0).copied(), before.get(&0).map(|o| (o - 2).max(0)));
    assert_eq!(after.get(&1), before.get(&1), "partition 1 untouched");

    // A running consumer: refused, offsets unchanged.
    let mut member = Command::new("kcat")
        .args(["-b", &b, "-G", "replayers", "replay", "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let listed = wait_for("the consumer to join", T, || {
        Ok(millrace(&["group", "describe", "replayers", "--bootstrap", &b])?.contains("Members: 1"))
    });
    let refused = reset(&b, &["--topic", "replay", "--to-earliest"]);
    let _ = member.kill();
    let _ = member.wait();
    listed?;
    let refused = refused?;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("active member"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    Ok(())
}
