//! confluent-kafka (librdkafka) and kafka-python producers and consumers against a real broker,
//! with every compression codec and with idempotence.

use millrace_tests::{millrace, python, BrokerProcess};
use std::time::Duration;

const T: Duration = Duration::from_secs(180);

#[test]
fn confluent_kafka_round_trips_with_every_codec_and_idempotence() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("ck-{codec}");
        millrace(&["topic", "create", &topic, "--partitions", "3", "--bootstrap", &bootstrap])?;
        let out = python(
            "roundtrip_confluent.py",
            &[
                "--bootstrap",
                &bootstrap,
                "--topic",
                &topic,
                "--partitions",
                "3",
                "--compression",
                codec,
                "--idempotence",
            ],
            T,
        )?;
        assert!(out.contains("OK 2000 records on 3 partitions"), "{codec}: {out}");
    }
    Ok(())
}

#[test]
fn confluent_kafka_acks_one_without_idempotence() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    millrace(&["topic", "create", "ck-acks1", "--partitions", "2", "--bootstrap", &bootstrap])?;
    let out = python(
        "roundtrip_confluent.py",
        &["--bootstrap", &bootstrap, "--topic", "ck-acks1", "--partitions", "2", "--acks", "1"],
        T,
    )?;
    assert!(out.contains("OK 2000 records"), "{out}");
    Ok(())
}

#[test]
fn kafka_python_round_trips_with_every_codec() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("kp-{codec}");
        millrace(&["topic", "create", &topic, "--partitions", "3", "--bootstrap", &bootstrap])?;
        let mut args =
            vec!["--bootstrap", bootstrap.as_str(), "--topic", topic.as_str(), "--partitions", "3", "--idempotence"];
        if codec != "none" {
            args.extend(["--compression", codec]);
        }
        let out = python("roundtrip_kafka_python.py", &args, T)?;
        assert!(out.contains("OK 1000 records on 3 partitions"), "{codec}: {out}");
    }
    Ok(())
}

#[test]
fn confluent_kafka_admin_client() -> anyhow::Result<()> {
    let broker = BrokerProcess::start("")?;
    let out = python("admin_check.py", &["--bootstrap", &broker.bootstrap()], T)?;
    assert!(out.contains("OK admin"), "{out}");
    Ok(())
}
