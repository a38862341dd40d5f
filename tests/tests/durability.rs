//! Crash safety: kill -9 during production loses nothing acknowledged; torn or garbage segment
//! tails are cut at start-up and the valid prefix survives.

use millrace_tests::{millrace, python, python_script, run, wait_until, BrokerProcess};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(180);

fn acked_lines(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path).map(|t| t.lines().count()).unwrap_or(0)
}

#[test]
fn kill_9_during_production_loses_no_acknowledged_record() -> anyhow::Result<()> {
    let mut broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    millrace(&["topic", "create", "crash", "--partitions", "3", "--bootstrap", &bootstrap])?;
    let dir = tempfile::tempdir()?;
    let acked = dir.path().join("acked.txt");
    let python_bin = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    // The producer's output goes to a file: a pipe nobody reads would block it once librdkafka
    // has logged 64 KiB of reconnect attempts, and a failure must show what the client said.
    let producer_log = dir.path().join("producer.log");
    let log_file = std::fs::File::create(&producer_log)?;
    let mut producer = Command::new(python_bin)
        .arg(python_script("acked_producer.py"))
        // Paced, so that production still runs when the broker dies and after it is back: an
        // unpaced producer on a fast machine can be done before the kill lands.
        .args(["--bootstrap", &bootstrap, "--topic", "crash", "--count", "60000", "--rate", "12000", "--acked"])
        .arg(&acked)
        .stdout(Stdio::from(log_file.try_clone()?))
        .stderr(Stdio::from(log_file))
        .spawn()?;
    let producer_said = || std::fs::read_to_string(&producer_log).unwrap_or_default();
    wait_until("20000 acknowledged records", Duration::from_secs(120), || acked_lines(&acked) >= 20_000)?;
    broker.kill9();
    let at_crash = acked_lines(&acked);
    anyhow::ensure!(at_crash < 60_000, "the producer was done before the kill: the test proves nothing");
    std::thread::sleep(Duration::from_millis(500));
    broker.restart()?;
    // The producer reconnects and finishes; idempotence must keep its retries from duplicating.
    let deadline = std::time::Instant::now() + Duration::from_secs(150);
    let status = loop {
        if let Some(status) = producer.try_wait()? {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = producer.kill();
            anyhow::bail!(
                "producer did not finish after the restart; it said:\n{}\nbroker log:\n{}",
                producer_said(),
                broker.log()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "producer failed: {status}; it said:\n{}\nbroker log:\n{}",
        producer_said(),
        broker.log()
    );
    let total = acked_lines(&acked);
    assert!(
        total > at_crash,
        "no record was acknowledged after the restart ({at_crash} before); the producer said:\n{}\nbroker log:\n{}",
        producer_said(),
        broker.log()
    );
    let out = python(
        "verify_acked.py",
        &["--bootstrap", &bootstrap, "--topic", "crash", "--partitions", "3", "--acked", &acked.display().to_string()],
        T,
    )?;
    assert!(out.contains("all present"), "{out}");
    Ok(())
}

fn produce_lines(bootstrap: &str, topic: &str, lines: std::ops::Range<usize>) -> anyhow::Result<()> {
    let input: String = lines.map(|i| format!("line-{i:06}\n")).collect();
    // One call is one batch (the torn-tail tests cut inside the last one): a long linger keeps
    // a loaded machine from flushing a call's lines in two batches.
    run("kcat", &["-b", bootstrap, "-t", topic, "-P", "-p", "0", "-X", "linger.ms=1000"], Some(input.as_bytes()), T)?;
    Ok(())
}

fn consume_all(bootstrap: &str, topic: &str) -> anyhow::Result<Vec<String>> {
    let out = run("kcat", &["-b", bootstrap, "-t", topic, "-C", "-e", "-q", "-p", "0"], None, T)?;
    Ok(String::from_utf8(out.stdout)?.lines().map(str::to_string).collect())
}

fn tail_segment(broker: &BrokerProcess, topic: &str) -> std::path::PathBuf {
    let dir = broker.data_dir.join(format!("{topic}-0"));
    let mut logs: Vec<_> = std::fs::read_dir(&dir)
        .expect("partition dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop().expect("a segment file")
}

#[test]
fn torn_tail_is_cut_and_valid_prefix_survives() -> anyhow::Result<()> {
    let mut broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    // Separate produce calls give separate batches, so a cut lands inside the last one.
    produce_lines(&bootstrap, "torn", 0..100)?;
    produce_lines(&bootstrap, "torn", 100..200)?;
    broker.stop()?;
    let segment = tail_segment(&broker, "torn");
    let len = std::fs::metadata(&segment)?.len();
    // Cut 10 bytes into the middle of the last batch, as a crash mid-write would.
    std::fs::OpenOptions::new().write(true).open(&segment)?.set_len(len - 10)?;
    broker.restart()?;
    let lines = consume_all(&bootstrap, "torn")?;
    let expected: Vec<String> = (0..100).map(|i| format!("line-{i:06}")).collect();
    assert_eq!(lines, expected, "the first batch must survive whole and the torn one be dropped");
    assert!(broker.log().contains("recovery cut"), "recovery did not report the cut:\n{}", broker.log());
    // New writes continue right after the valid prefix.
    produce_lines(&bootstrap, "torn", 500..510)?;
    let lines = consume_all(&bootstrap, "torn")?;
    assert_eq!(lines.len(), 110);
    assert_eq!(lines[100], "line-000500");
    Ok(())
}

#[test]
fn garbage_tail_is_cut_and_valid_prefix_survives() -> anyhow::Result<()> {
    let mut broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    produce_lines(&bootstrap, "garbage", 0..50)?;
    produce_lines(&bootstrap, "garbage", 50..80)?;
    broker.kill9();
    let segment = tail_segment(&broker, "garbage");
    let len = std::fs::metadata(&segment)?.len();
    // Overwrite the last 40 bytes (inside the second batch) with garbage, then append more.
    let mut file = std::fs::OpenOptions::new().write(true).open(&segment)?;
    use std::io::Seek;
    file.seek(std::io::SeekFrom::Start(len - 40))?;
    file.write_all(&[0xAB; 40])?;
    file.seek(std::io::SeekFrom::End(0))?;
    file.write_all(&[0x5A; 333])?;
    drop(file);
    broker.restart()?;
    let lines = consume_all(&bootstrap, "garbage")?;
    let expected: Vec<String> = (0..50).map(|i| format!("line-{i:06}")).collect();
    assert_eq!(lines, expected);
    Ok(())
}

#[test]
fn clean_restart_keeps_everything() -> anyhow::Result<()> {
    let mut broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    produce_lines(&bootstrap, "restart", 0..1000)?;
    broker.stop()?;
    broker.restart()?;
    let lines = consume_all(&bootstrap, "restart")?;
    assert_eq!(lines.len(), 1000);
    assert!(!broker.log().contains("recovery cut"), "a clean restart must not cut anything");
    Ok(())
}
