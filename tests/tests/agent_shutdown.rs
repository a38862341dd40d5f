//! The agent's stop is bounded (issue 16): SIGTERM stops the inputs, waits up to 30 s for the
//! broker to acknowledge what is in flight, writes the checkpoints and exits, whatever hangs.
//! Two things once held it up for good: a tailer waiting for room in the queue while the broker
//! was away (the queue only drains into the broker), and a host metrics sample stuck in
//! `statvfs` of a mount point that never answers (awaited by the stop, and on the runtime's
//! blocking pool, which the runtime waits for when it shuts down). Neither may lose a line: the
//! checkpoints only cover what the broker acknowledged.

use millrace_tests::component::Component;
use millrace_tests::disks::skip_or_fail;
use millrace_tests::{millrace_bin, run, wait_for, BrokerProcess, LoggedProcess};
use serde_json::Value;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The documented grace (30 s) plus the inputs' stop (5 s), the sender's and some slack.
const STOP_BOUND: Duration = Duration::from_secs(45);

fn agent_toml(dir: &Path, bootstrap: &str, extra_inputs: &str) -> String {
    format!(
        "[agent]\ndata_dir = {:?}\nhost_name = \"web-stop\"\ncheckpoint_interval = \"200ms\"\n\n\
         [output]\nbootstrap = \"{bootstrap}\"\nqueue_bytes = \"1MiB\"\n\n\
         [[inputs.file]]\nname = \"app\"\ntopic = \"app-logs\"\ninclude = [{:?}]\nscan_interval = \"200ms\"\n\n\
         {extra_inputs}",
        dir.join("agent-data").display().to_string(),
        dir.join("logs").join("*.log").display().to_string(),
    )
}

/// Appends lines `"{tag}-{n}"` (padded, so a backlog fills the queues quickly).
fn write_lines(path: &Path, tag: &str, from: usize, count: usize) -> anyhow::Result<Vec<String>> {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    let lines: Vec<String> = (from..from + count).map(|n| format!("{tag}-{n:07} {}", "p".repeat(80))).collect();
    file.write_all((lines.join("\n") + "\n").as_bytes())?;
    Ok(lines)
}

/// How many records hold each message.
fn messages(bootstrap: &str, topic: &str) -> anyhow::Result<HashMap<String, usize>> {
    let out =
        run("kcat", &["-C", "-b", bootstrap, "-t", topic, "-e", "-q", "-f", "%s\\n"], None, Duration::from_secs(60))?;
    let mut seen = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()) {
        let doc: Value = serde_json::from_str(line)?;
        *seen.entry(doc["message"].as_str().unwrap_or_default().to_string()).or_default() += 1;
    }
    Ok(seen)
}

/// Waits until every line is on the topic; returns the duplicates.
fn all_arrived(bootstrap: &str, expected: &[String], log: impl Fn() -> String) -> anyhow::Result<usize> {
    wait_for("every line in the broker", Duration::from_secs(120), || {
        let seen = messages(bootstrap, "app-logs")?;
        Ok(expected.iter().all(|l| seen.contains_key(l)))
    })
    .map_err(|e| anyhow::anyhow!("{e}; agent log:\n{}", log()))?;
    let seen = messages(bootstrap, "app-logs")?;
    Ok(seen.values().map(|n| n - 1).sum())
}

#[test]
fn sigterm_while_the_broker_is_away_with_a_backlog_stops_in_time() -> anyhow::Result<()> {
    let mut broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("logs"))?;
    let app = dir.path().join("logs").join("app.log");
    let mut agent = Component::start("agent", dir.path(), "agent", &agent_toml(dir.path(), &bootstrap, ""))?;
    let mut expected = write_lines(&app, "app", 0, 1000)?;
    all_arrived(&bootstrap, &expected, || agent.log())?;
    broker.kill9();
    // Far more than the producer's queue (1 MiB) and the agent's own (4 MiB) hold: the tailer
    // ends up waiting for room that only the broker can make.
    expected.extend(write_lines(&app, "app", 1000, 60_000)?);
    std::thread::sleep(Duration::from_secs(3));
    let started = Instant::now();
    agent.stop(STOP_BOUND + Duration::from_secs(15))?;
    let took = started.elapsed();
    eprintln!("the agent stopped {took:?} after SIGTERM with the broker away");
    assert!(took < STOP_BOUND, "the agent took {took:?} to stop");
    assert!(agent.log().contains("not every record was acknowledged"), "the unacknowledged records were reported");
    // The stop's own purge of the producer's queue is not the broker refusing them.
    assert!(!agent.log().contains("refused a record"), "purged records were logged as refused");

    // Nothing was checkpointed past the broker's acknowledgements: all of it comes again.
    broker.restart()?;
    agent.spawn()?;
    let duplicates = all_arrived(&bootstrap, &expected, || agent.log())?;
    eprintln!("{} lines, {duplicates} duplicates", expected.len());
    agent.stop(STOP_BOUND)?;
    Ok(())
}

#[test]
fn sigterm_with_a_mount_point_that_never_answers_stops_in_time() -> anyhow::Result<()> {
    // A FUSE mount whose daemon never answers: every statvfs of it waits for good. It lives in a
    // mount namespace of the agent's own, so nothing else on the machine sees it, and it goes
    // away with the agent (which holds its device).
    let probe = Command::new("unshare").args(["-m", "--propagation", "private", "true"]).output();
    match probe {
        Ok(out) if out.status.success() && Path::new("/dev/fuse").exists() => {}
        Ok(out) => {
            let why = format!(
                "unshare: {}; /dev/fuse: {}",
                String::from_utf8_lossy(&out.stderr).trim(),
                Path::new("/dev/fuse").exists()
            );
            return skip_or_fail("mount a hung file system in a mount namespace", &why).map(|_: Option<()>| ());
        }
        Err(e) => return skip_or_fail("run unshare", &e.to_string()).map(|_: Option<()>| ()),
    }
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("logs"))?;
    let hung = dir.path().join("hung");
    std::fs::create_dir_all(&hung)?;
    let app = dir.path().join("logs").join("app.log");
    let config = dir.path().join("agent.toml");
    let metrics = "[[inputs.host_metrics]]\nname = \"host\"\ntopic = \"metrics\"\ninterval = \"1s\"\n";
    std::fs::write(&config, agent_toml(dir.path(), &bootstrap, metrics))?;
    let mut agent = LoggedProcess::new(dir.path().join("agent.log"));
    let mut command = Command::new("unshare");
    command
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("exec 3<>/dev/fuse && mount -t fuse -o fd=3,rootmode=40000,user_id=0,group_id=0 millrace-hung \"$0\" && exec \"$@\"")
        .arg(&hung)
        .arg(millrace_bin())
        .args(["agent", "--config"])
        .arg(&config)
        .env("MILLRACE_LOG", "info");
    agent.spawn(command)?;
    let expected = write_lines(&app, "app", 0, 1000)?;
    all_arrived(&bootstrap, &expected, || agent.log())?;
    // The first sample started at once and hangs on the mount; let it hang a while.
    std::thread::sleep(Duration::from_secs(6));
    let started = Instant::now();
    let status = agent.terminate(STOP_BOUND + Duration::from_secs(15))?;
    let took = started.elapsed();
    eprintln!("the agent stopped {took:?} after SIGTERM with a sample hanging");
    assert!(status.success(), "the agent exited with {status}; log:\n{}", agent.log());
    assert!(took < STOP_BOUND, "the agent took {took:?} to stop");
    assert!(agent.log().contains("sample is hanging"), "the hanging sample was reported; log:\n{}", agent.log());
    Ok(())
}
