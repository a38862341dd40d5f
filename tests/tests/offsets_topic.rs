//! `__consumer_offsets` as outside tools read it: a kafka-python group commits offsets, then
//! kafka-python reads the topic and a decoder written in Python from Kafka's record schemas
//! (tests/python/offsets_topic_check.py) finds the commits and the group's metadata where Kafka
//! would put them.

use millrace_tests::{millrace, python, BrokerProcess};
use std::time::Duration;

const T: Duration = Duration::from_secs(180);

#[test]
fn kafka_tools_decode_committed_offsets_and_group_metadata() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("[groups]\ninitial_rebalance_delay = \"300ms\"\noffsets_topic_partitions = 5\n")?;
    let bootstrap = broker.bootstrap();
    millrace(&["topic", "create", "fmt", "--partitions", "3", "--bootstrap", &bootstrap])?;
    let out = python(
        "offsets_topic_check.py",
        &["--bootstrap", &bootstrap, "--topic", "fmt", "--partitions", "3", "--group", "burrow-reads-this"],
        T,
    )?;
    assert!(out.contains("OK __consumer_offsets decoded from Kafka's schemas"), "{out}");
    Ok(())
}
