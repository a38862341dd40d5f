//! The agent on a full disk (issue 16): its data_dir on a small tmpfs that fills up while lines
//! keep being appended to a file elsewhere and host metrics are sampled. The agent neither
//! crashes nor spins, says clearly (and not every checkpoint interval) that it cannot write its
//! registry or its disk buffer, and skips no line: the registry keeps its last good version, which
//! only covers acknowledged lines. Killed while the disk is full it starts again (with a warning);
//! given room, then killed and restarted, every line written is in the broker (duplicates
//! counted, none lost). A data_dir it cannot write at all (read-only) stops the start with an
//! error naming it.
//!
//! Mounting needs root (as in CI); elsewhere the tests print `skipping`.

use millrace_tests::component::Component;
use millrace_tests::disks::SmallDisk;
use millrace_tests::{run, wait_for, BrokerProcess};
use serde_json::Value;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);

fn agent_toml(data_dir: &Path, logs: &Path, bootstrap: &str) -> String {
    format!(
        "[agent]\ndata_dir = {:?}\nhost_name = \"web-full\"\ncheckpoint_interval = \"200ms\"\n\n\
         [output]\nbootstrap = \"{bootstrap}\"\nqueue_bytes = \"1MiB\"\n\n\
         [[inputs.file]]\nname = \"app\"\ntopic = \"app-logs\"\ninclude = [{:?}]\nscan_interval = \"200ms\"\n\n\
         [[inputs.host_metrics]]\nname = \"host\"\ntopic = \"metrics\"\ninterval = \"200ms\"\n",
        data_dir.display().to_string(),
        logs.join("*.log").display().to_string(),
    )
}

/// Appends numbered lines to `path` every 50 ms until stopped; what was written is in `written`.
struct Writer {
    stop: Arc<AtomicBool>,
    /// Held while the topic is read: a consumer reading to the end of a topic that keeps growing
    /// may never get there.
    pause: Arc<Mutex<()>>,
    written: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl Writer {
    fn start(path: PathBuf) -> Writer {
        let (stop, written) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
        let pause = Arc::new(Mutex::new(()));
        let thread = {
            let (stop, written, pause) = (stop.clone(), written.clone(), pause.clone());
            std::thread::spawn(move || {
                let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let _paused = pause.lock().map_err(|_| anyhow::anyhow!("pause lock poisoned"))?;
                    let lines: Vec<String> = (n..n + 20).map(|i| format!("line-{i:07}")).collect();
                    file.write_all((lines.join("\n") + "\n").as_bytes())?;
                    written.lock().map_err(|_| anyhow::anyhow!("writer lock poisoned"))?.extend(lines);
                    n += 20;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(())
            })
        };
        Writer { stop, pause, written, thread: Some(thread) }
    }

    /// Appends `count` lines `burst-{tag}-{n}` at once (alongside the steady ones).
    fn burst(&self, path: &Path, tag: &str, count: usize) -> anyhow::Result<()> {
        let _paused = self.pause.lock().map_err(|_| anyhow::anyhow!("pause lock poisoned"))?;
        let lines: Vec<String> = (0..count).map(|n| format!("burst-{tag}-{n:06} {}", "b".repeat(200))).collect();
        let mut file = std::fs::OpenOptions::new().append(true).open(path)?;
        file.write_all((lines.join("\n") + "\n").as_bytes())?;
        self.written.lock().map_err(|_| anyhow::anyhow!("writer lock poisoned"))?.extend(lines);
        Ok(())
    }

    /// The messages on the topic, read while no line is written.
    fn messages(&self, bootstrap: &str) -> anyhow::Result<HashMap<String, usize>> {
        let _paused = self.pause.lock().map_err(|_| anyhow::anyhow!("pause lock poisoned"))?;
        read_messages(bootstrap)
    }

    fn count(&self) -> usize {
        self.written.lock().map(|w| w.len()).unwrap_or(0)
    }

    fn finish(mut self) -> anyhow::Result<Vec<String>> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().map_err(|_| anyhow::anyhow!("the writer panicked"))??;
        }
        Ok(std::mem::take(&mut *self.written.lock().map_err(|_| anyhow::anyhow!("writer lock poisoned"))?))
    }
}

/// How many records hold each message.
fn read_messages(bootstrap: &str) -> anyhow::Result<HashMap<String, usize>> {
    let out = run(
        "kcat",
        &["-C", "-b", bootstrap, "-t", "app-logs", "-e", "-q", "-f", "%s\\n"],
        None,
        Duration::from_secs(60),
    )?;
    let mut seen = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()) {
        let doc: Value = serde_json::from_str(line)?;
        *seen.entry(doc["message"].as_str().unwrap_or_default().to_string()).or_default() += 1;
    }
    Ok(seen)
}

/// The agent's CPU time (user + system) in clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces): state is the first, utime the 12th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    Ok(field(11) + field(12))
}

fn count_lines(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn a_full_data_dir_loses_no_line_and_the_agent_recovers() -> anyhow::Result<()> {
    let scratch = tempfile::Builder::new().prefix("millrace-agentfull-").tempdir()?;
    let Some(disk) = SmallDisk::mount(scratch.path().join("small"), "1m")? else { return Ok(()) };
    let mut broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    let logs = scratch.path().join("logs");
    std::fs::create_dir_all(&logs)?;
    let data_dir = disk.path().join("agent-data");
    let toml = agent_toml(&data_dir, &logs, &bootstrap);
    let mut agent = Component::start("agent", scratch.path(), "agent", &toml)?;
    let writer = Writer::start(logs.join("app.log"));
    let messages = |bootstrap: &str| writer.messages(bootstrap);
    wait_for("the first lines in the broker", T, || Ok(messages(&bootstrap)?.len() >= 100))
        .map_err(|e| anyhow::anyhow!("{e}; agent log:\n{}", agent.log()))?;

    disk.fill_to_the_brim()?;
    let registry = data_dir.join("registry.json").display().to_string();
    wait_for("the agent to report the registry it cannot write", T, || {
        Ok(agent.log().contains("cannot write the checkpoint registry") && agent.log().contains(&registry))
    })
    .map_err(|e| anyhow::anyhow!("{e}; agent log:\n{}", agent.log()))?;
    // The broker away for a while: the producer's queue fills with lines, and metrics, which
    // cannot be read again, go for the disk buffer, which is full too.
    broker.kill9();
    // More than the producer's queue holds, so it is full when metrics come.
    writer.burst(&logs.join("app.log"), "outage", 8000)?;
    std::thread::sleep(Duration::from_secs(8));
    broker.restart()?;
    let pid = agent.process().pid().ok_or_else(|| anyhow::anyhow!("the agent is not running"))?;
    let before = cpu_ticks(pid)?;
    std::thread::sleep(Duration::from_secs(5));
    let ticks = cpu_ticks(pid)? - before;
    eprintln!("agent CPU while the disk is full: {ticks} ticks in 5 s");
    assert!(agent.is_running(), "the agent died on the full disk; log:\n{}", agent.log());
    // 100 ticks a second is one core: a spinning loop would use all of one.
    assert!(ticks < 400, "the agent used {ticks} ticks of CPU in 5 s on a full disk (spinning?)");
    let log = agent.log();
    eprintln!(
        "while full: {} registry errors, {} disk buffer errors logged",
        count_lines(&log, "cannot write the checkpoint registry"),
        count_lines(&log, "cannot write the disk buffer")
    );
    assert!(
        count_lines(&log, "cannot write the checkpoint registry") <= 2,
        "the registry error floods the log:\n{log}"
    );
    assert!(count_lines(&log, "cannot write the disk buffer") <= 2, "the disk buffer error floods the log:\n{log}");
    let full_at = writer.count();
    wait_for("lines written while the disk is full in the broker", T, || Ok(messages(&bootstrap)?.len() >= full_at))
        .map_err(|e| anyhow::anyhow!("{e}; agent log:\n{}", agent.log()))?;

    // Killed while the disk is full, and started again on it: it runs, with a warning.
    agent.kill9();
    agent.spawn()?;
    agent.process().wait_for_line("the restarted agent running", T, |l| l.contains("agent running"))?;
    assert!(agent.log().contains("the data directory is full"), "no warning at start:\n{}", agent.log());
    let restarted_at = writer.count();
    wait_for("lines written after the restart on a full disk", T, || Ok(messages(&bootstrap)?.len() >= restarted_at))
        .map_err(|e| anyhow::anyhow!("{e}; agent log:\n{}", agent.log()))?;

    // Room again: the registry is written again, then kill -9 and a restart lose nothing.
    disk.grow("64m")?;
    wait_for("the registry to be written again", T, || Ok(agent.log().contains("registry is written again")))
        .map_err(|e| anyhow::anyhow!("{e}; agent log:\n{}", agent.log()))?;
    agent.kill9();
    std::thread::sleep(Duration::from_millis(500));
    agent.spawn()?;
    std::thread::sleep(Duration::from_secs(2));
    let expected = writer.finish()?;
    wait_for("every line in the broker", Duration::from_secs(120), || {
        let seen = read_messages(&bootstrap)?;
        Ok(expected.iter().all(|l| seen.contains_key(l)))
    })
    .map_err(|e| anyhow::anyhow!("{e}; agent log:\n{}", agent.log()))?;
    let seen = read_messages(&bootstrap)?;
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    let lost = expected.iter().filter(|l| !seen.contains_key(*l)).count();
    eprintln!(
        "{} lines written, {} records, {duplicates} duplicates, {lost} lost",
        expected.len(),
        seen.values().sum::<usize>()
    );
    assert_eq!(lost, 0);
    let log = agent.log();
    let problems: Vec<&str> = log.lines().filter(|l| l.contains(" WARN ") || l.contains(" ERROR ")).take(20).collect();
    eprintln!("what the agent said:\n{}", problems.join("\n"));
    let started = Instant::now();
    agent.stop(Duration::from_secs(45))?;
    eprintln!("stopped {:?} after SIGTERM", started.elapsed());
    Ok(())
}

#[test]
fn a_data_dir_that_cannot_be_written_stops_the_start_with_its_path() -> anyhow::Result<()> {
    let scratch = tempfile::Builder::new().prefix("millrace-agentro-").tempdir()?;
    let Some(disk) = SmallDisk::mount(scratch.path().join("small"), "1m")? else { return Ok(()) };
    let data_dir = disk.path().join("agent-data");
    std::fs::create_dir_all(&data_dir)?;
    disk.remount("ro")?;
    let logs = scratch.path().join("logs");
    std::fs::create_dir_all(&logs)?;
    // No broker is needed: the agent must refuse before it connects.
    let toml = agent_toml(&data_dir, &logs, "127.0.0.1:9");
    let mut agent = Component::start("agent", scratch.path(), "agent", &toml)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = agent.process().exited() {
            break status;
        }
        anyhow::ensure!(Instant::now() < deadline, "the agent runs on a read-only data_dir; log:\n{}", agent.log());
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = agent.log();
    eprintln!("{log}");
    assert!(!status.success(), "the agent exited with {status}");
    assert!(log.contains(&data_dir.display().to_string()) && log.contains("cannot be written"), "{log}");
    disk.remount("rw")?;
    Ok(())
}
