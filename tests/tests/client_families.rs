//! Two more Kafka client families against real brokers: kafkajs 2.x (pure JavaScript,
//! `tests/js/kafkajs_check.js`) and Sarama (Go, Debian's golang-github-shopify-sarama-dev, the
//! client of Telegraf and older Beats; `tests/go/sarama_check`). Each round trip creates a topic,
//! produces keyed records with headers (acks=all), consumes them back in a consumer group and
//! commits, and checks every record, the committed offsets against the end offsets, the group
//! listings and descriptions, the topic's configs and the metadata; the committed offsets are
//! checked once more with `millrace group describe`. The day-2 admin calls (AlterConfigs,
//! DeleteRecords) have a test each per client, so that a failure names its API; neither kafkajs
//! 2.2 nor Debian's Sarama 1.22 has IncrementalAlterConfigs.
//!
//! The scripts print a final `OK …` line and exit 0 only when every check holds. Missing tools
//! fail the tests with the command that installs them (`./scripts/install-deps.sh --tests`).

use millrace_tests::clients::{kafkajs, ok_line, require_kafkajs, sarama, sarama_check_bin};
use millrace_tests::{group_offsets, millrace, millrace_bin, wait_for, BrokerProcess, Cluster};
use std::time::{Duration, Instant};

/// Bound on one run of a check script (each also bounds itself, a little below this).
const T: Duration = Duration::from_secs(120);
/// A short first rebalance, so that a lone group member gets its partitions at once.
const GROUPS_TOML: &str = "[groups]\ninitial_rebalance_delay = \"300ms\"\n";
const RECORDS: usize = 300;
const PARTITIONS: usize = 3;

/// `millrace group describe`'s view of `group`: one row per partition of the topic, each
/// committed at its log-end offset, and `records` records in all.
fn check_group_committed(bootstrap: &str, group: &str, partitions: usize, records: usize) -> anyhow::Result<()> {
    let described = millrace(&["group", "describe", group, "--bootstrap", bootstrap])?;
    let rows = group_offsets(&described, group);
    anyhow::ensure!(rows.len() == partitions, "{partitions} partitions expected for {group}:\n{described}");
    let mut total = 0;
    for (committed, end) in &rows {
        anyhow::ensure!(committed == end, "{group} committed {committed} of a partition ending at {end}:\n{described}");
        total += end.parse::<usize>().map_err(|e| anyhow::anyhow!("log-end offset {end:?}: {e}\n{described}"))?;
    }
    anyhow::ensure!(total == records, "{group}'s partitions end at offsets adding up to {total}, not {records}");
    Ok(())
}

/// A 3-broker cluster whose brokers all name the active controller in Metadata: a broker can be
/// registered before it knows the metadata-quorum leader, and meanwhile answers controller id -1,
/// which Sarama's `NewClusterAdmin` takes as "controller is not available" without retrying.
fn three_brokers() -> anyhow::Result<Cluster> {
    let cluster = Cluster::start(3, GROUPS_TOML)?;
    wait_for("every broker to name the controller in Metadata", Duration::from_secs(30), || {
        let views = cluster.cluster_views();
        Ok(views.iter().all(|(_, view)| view.as_ref().is_ok_and(|v| v.controller >= 1)))
    })?;
    Ok(cluster)
}

/// Prints a test's wall time when dropped: broker start-up, the check and tear-down, not the
/// build of the millrace binary (done first). Each test then checks its client is installed
/// (building the Sarama program) before it starts brokers.
struct Clock {
    what: &'static str,
    started: Instant,
}

fn clock(what: &'static str) -> Clock {
    millrace_bin();
    Clock { what, started: Instant::now() }
}

impl Drop for Clock {
    fn drop(&mut self) {
        eprintln!("{}: {:.1?} in all", self.what, self.started.elapsed());
    }
}

/// Runs a check, prints its wall time, and returns its `OK` line.
fn timed(what: &str, check: impl FnOnce() -> anyhow::Result<String>) -> anyhow::Result<String> {
    let started = Instant::now();
    let out = check()?;
    eprintln!("{what}: {:.1?}", started.elapsed());
    Ok(ok_line(&out)?.to_string())
}

#[test]
fn kafkajs_round_trip_with_a_group_on_three_brokers() -> anyhow::Result<()> {
    let _clock = clock("kafkajs_round_trip_with_a_group_on_three_brokers");
    require_kafkajs()?;
    let cluster = three_brokers()?;
    let bootstrap = cluster.bootstrap();
    let group = "kafkajs-roundtrip";
    let (records, partitions) = (RECORDS.to_string(), PARTITIONS.to_string());
    let line = timed("kafkajs roundtrip", || {
        kafkajs(
            &[
                "--bootstrap",
                &bootstrap,
                "--topic",
                "kafkajs-rt",
                "--mode",
                "roundtrip",
                "--partitions",
                &partitions,
                "--replication",
                "3",
                "--brokers",
                "3",
                "--records",
                &records,
                "--group",
                group,
                "--timeout-ms",
                "100000",
            ],
            T,
        )
    })?;
    assert!(
        line.starts_with(&format!("OK kafkajs roundtrip {RECORDS} records on {PARTITIONS} partitions (replication 3)")),
        "{line}"
    );
    check_group_committed(&bootstrap, group, PARTITIONS, RECORDS)
}

#[test]
fn kafkajs_alter_configs_sets_retention() -> anyhow::Result<()> {
    let _clock = clock("kafkajs_alter_configs_sets_retention");
    require_kafkajs()?;
    let broker = BrokerProcess::start(GROUPS_TOML)?;
    let line = timed("kafkajs alter-configs", || {
        kafkajs(&["--bootstrap", &broker.bootstrap(), "--topic", "kafkajs-alter", "--mode", "alter-configs"], T)
    })?;
    assert_eq!(line, "OK kafkajs alter-configs retention.ms=123456789 on kafkajs-alter");
    Ok(())
}

#[test]
fn kafkajs_delete_topic_records_moves_the_low_watermark() -> anyhow::Result<()> {
    let _clock = clock("kafkajs_delete_topic_records_moves_the_low_watermark");
    require_kafkajs()?;
    let broker = BrokerProcess::start(GROUPS_TOML)?;
    let line = timed("kafkajs delete-records", || {
        kafkajs(
            &[
                "--bootstrap",
                &broker.bootstrap(),
                "--topic",
                "kafkajs-delete",
                "--mode",
                "delete-records",
                "--records",
                "300",
            ],
            T,
        )
    })?;
    assert_eq!(line, "OK kafkajs delete-records low watermark 120 of 300 on kafkajs-delete");
    Ok(())
}

#[test]
fn sarama_round_trip_with_a_group_on_three_brokers() -> anyhow::Result<()> {
    let _clock = clock("sarama_round_trip_with_a_group_on_three_brokers");
    sarama_check_bin()?;
    let cluster = three_brokers()?;
    let bootstrap = cluster.bootstrap();
    let group = "sarama-roundtrip";
    let (records, partitions) = (RECORDS.to_string(), PARTITIONS.to_string());
    let line = timed("sarama roundtrip", || {
        sarama(
            &[
                "-bootstrap",
                &bootstrap,
                "-topic",
                "sarama-rt",
                "-mode",
                "roundtrip",
                "-partitions",
                &partitions,
                "-replication",
                "3",
                "-brokers",
                "3",
                "-records",
                &records,
                "-group",
                group,
                "-timeout",
                "100s",
            ],
            T,
        )
    })?;
    assert!(
        line.starts_with(&format!("OK sarama roundtrip {RECORDS} records on {PARTITIONS} partitions (replication 3)")),
        "{line}"
    );
    check_group_committed(&bootstrap, group, PARTITIONS, RECORDS)
}

#[test]
fn sarama_alter_config_sets_retention() -> anyhow::Result<()> {
    let _clock = clock("sarama_alter_config_sets_retention");
    sarama_check_bin()?;
    let broker = BrokerProcess::start(GROUPS_TOML)?;
    let line = timed("sarama alter-config", || {
        sarama(&["-bootstrap", &broker.bootstrap(), "-topic", "sarama-alter", "-mode", "alter-config"], T)
    })?;
    assert_eq!(line, "OK sarama alter-config retention.ms=123456789 on sarama-alter");
    Ok(())
}

#[test]
fn sarama_delete_records_moves_the_oldest_offset() -> anyhow::Result<()> {
    let _clock = clock("sarama_delete_records_moves_the_oldest_offset");
    sarama_check_bin()?;
    let broker = BrokerProcess::start(GROUPS_TOML)?;
    let line = timed("sarama delete-records", || {
        sarama(
            &[
                "-bootstrap",
                &broker.bootstrap(),
                "-topic",
                "sarama-delete",
                "-mode",
                "delete-records",
                "-records",
                "300",
            ],
            T,
        )
    })?;
    assert_eq!(line, "OK sarama delete-records oldest offset 120 of 300 on sarama-delete");
    Ok(())
}
