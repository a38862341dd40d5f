//! ListOffsets by timestamp and retention moving the log start offset, seen by real clients.

use millrace_tests::{millrace, python, BrokerProcess};
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

#[test]
fn list_offsets_by_timestamp_earliest_and_latest() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("[log]\nindex_interval_bytes = 64\n")?;
    let bootstrap = broker.bootstrap();
    millrace(&["topic", "create", "times", "--partitions", "1", "--bootstrap", &bootstrap])?;
    let out = python("offsets_check.py", &["--bootstrap", &bootstrap, "--topic", "times"], T)?;
    assert!(out.contains("OK offsets"), "{out}");
    Ok(())
}

#[test]
fn retention_by_bytes_moves_log_start_offset() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("[log]\nretention_check_interval = \"200ms\"\n")?;
    let bootstrap = broker.bootstrap();
    millrace(&[
        "topic",
        "create",
        "small",
        "--partitions",
        "1",
        "--bootstrap",
        &bootstrap,
        "--topic-config",
        "segment.bytes=4096",
        "--topic-config",
        "retention.bytes=12000",
    ])?;
    let out = python("retention_check.py", &["--bootstrap", &bootstrap, "--topic", "small"], T)?;
    assert!(out.contains("OK retention"), "{out}");
    let described = millrace(&["topic", "describe", "small", "--bootstrap", &bootstrap])?;
    assert!(described.contains("retention.bytes=12000"), "{described}");
    Ok(())
}

#[test]
fn retention_by_time_moves_log_start_offset() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("[log]\nretention_check_interval = \"200ms\"\n")?;
    let bootstrap = broker.bootstrap();
    millrace(&[
        "topic",
        "create",
        "aged",
        "--partitions",
        "1",
        "--bootstrap",
        &bootstrap,
        "--topic-config",
        "segment.bytes=8192",
        "--topic-config",
        "retention.ms=60000",
    ])?;
    let out = python("retention_check.py", &["--bootstrap", &bootstrap, "--topic", "aged", "--old-timestamps"], T)?;
    assert!(out.contains("OK retention"), "{out}");
    Ok(())
}
