//! Log compaction (`cleanup.policy=compact`) observed through confluent-kafka.

use millrace_tests::{python, BrokerProcess};
use std::time::Duration;

#[test]
fn compacted_topic_keeps_the_last_value_per_key_and_drops_old_tombstones() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("[log]\ncleaner_interval = \"300ms\"\n")?;
    let out = python("compaction_check.py", &["--bootstrap", &broker.bootstrap()], Duration::from_secs(180))?;
    assert!(out.contains("OK compaction"), "{out}");
    assert!(broker.log().contains("compacted"), "the cleaner should log its work:\n{}", broker.log());
    Ok(())
}

#[test]
fn compacted_topic_refuses_records_without_a_key() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let b = broker.bootstrap();
    millrace_tests::millrace(&[
        "topic",
        "create",
        "keyed-only",
        "--partitions",
        "1",
        "--topic-config",
        "cleanup.policy=compact",
        "--bootstrap",
        &b,
    ])?;
    let keyless = millrace_tests::run(
        "kcat",
        &["-b", &b, "-t", "keyed-only", "-P", "-X", "message.timeout.ms=5000"],
        Some(b"no key\n"),
        Duration::from_secs(30),
    );
    let err = keyless.expect_err("a keyless record on a compacted topic must be refused").to_string();
    // The broker's own refusal (INVALID_RECORD), not a timeout; the topic's name holds "key",
    // so only the error's words can tell.
    assert!(err.contains("Broker: Broker failed to validate record"), "{err}");
    millrace_tests::run(
        "kcat",
        &["-b", &b, "-t", "keyed-only", "-P", "-K", ":"],
        Some(b"a:1\n"),
        Duration::from_secs(30),
    )?;
    Ok(())
}
