//! Power loss (issue 16): a broker, and an agent, whose data directories live on powerfs — a FUSE
//! filesystem that drops every write not made durable by fsync when the power is cut. Under load
//! the power is cut at random moments, the process restarts on what survived, and:
//! - broker: every record acknowledged with acks=all is still at its acknowledged offset;
//! - agent: every line written reaches the broker (duplicates allowed, counted), and the
//!   checkpoint found after a cut never points past what the broker has.
//!
//! Cuts per test: `MILLRACE_POWER_CUTS` (default 5); the random moments and the torn-write choices
//! come from `MILLRACE_POWER_SEED` (printed, so a failure can be replayed). FUSE is required: a
//! machine without it fails these tests.

use millrace_powerfs::{CutMode, PowerMount};
use millrace_tests::component::Component;
use millrace_tests::{
    broker_command, free_port, is_ready_line, millrace, millrace_bin, python_bin, python_script, run, wait_for,
    BrokerProcess, LoggedProcess,
};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn cuts() -> usize {
    std::env::var("MILLRACE_POWER_CUTS").ok().and_then(|v| v.parse().ok()).unwrap_or(5)
}

fn rng(test: &str) -> fastrand::Rng {
    let seed =
        std::env::var("MILLRACE_POWER_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| fastrand::u64(..));
    eprintln!("{test}: MILLRACE_POWER_SEED={seed}");
    fastrand::Rng::with_seed(seed)
}

/// Every other cut is torn: part of the unsynced pages survive, as after a partial writeback.
fn mode(cut: usize, rng: &mut fastrand::Rng) -> CutMode {
    if cut.is_multiple_of(2) {
        CutMode::Strict
    } else {
        CutMode::Torn { seed: rng.u64(..) }
    }
}

/// A broker whose data directory is on the power-loss mount; its config and log are not.
struct MountedBroker {
    process: LoggedProcess,
    config: PathBuf,
    port: u16,
}

impl MountedBroker {
    fn start(dir: &Path, data_dir: &Path) -> anyhow::Result<MountedBroker> {
        let port = free_port();
        let config = dir.join("broker.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = {:?}\nlisten = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:{}\"\n\
                 [log]\nsegment_bytes = \"256KiB\"\n",
                data_dir.display().to_string(),
                free_port()
            ),
        )?;
        let mut broker = MountedBroker { process: LoggedProcess::new(dir.join("broker.log")), config, port };
        broker.spawn()?;
        Ok(broker)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        self.process.spawn(broker_command(&self.config, &[]))?;
        let kafka = self.bootstrap();
        self.process.wait_for_line("the broker to be ready", Duration::from_secs(60), |l| is_ready_line(l, &kafka))
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Every file under `dir` with its size, for failure messages.
fn tree(dir: &Path) -> String {
    let mut out = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            let len = e.metadata().map(|m| m.len()).unwrap_or(0);
            out.push_str(&format!("  {} {len}\n", path.strip_prefix(dir).unwrap_or(&path).display()));
        }
    }
    out
}

/// Every record of `topic`: (partition, offset) → value.
fn read_records(bootstrap: &str, topic: &str) -> anyhow::Result<BTreeMap<(i32, i64), String>> {
    let out = run("kcat", &["-C", "-b", bootstrap, "-t", topic, "-e", "-q", "-f", "%p %o %s\\n"], None, T)?;
    anyhow::ensure!(out.status.success(), "kcat failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut records = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()) {
        let mut parts = line.splitn(3, ' ');
        let (Some(p), Some(o), Some(v)) = (parts.next(), parts.next(), parts.next()) else {
            anyhow::bail!("unexpected kcat line {line:?}");
        };
        let previous = records.insert((p.parse()?, o.parse()?), v.to_string());
        anyhow::ensure!(previous.is_none(), "offset {p}/{o} was read twice");
    }
    Ok(records)
}

const T: Duration = Duration::from_secs(60);

/// The acknowledged records: value → (partition, offset). Only whole lines count (the producer
/// writes one line per write(2), so a kill never leaves half a line that parses).
fn acked(path: &Path) -> anyhow::Result<HashMap<String, (i32, i64)>> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = HashMap::new();
    for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let [value, p, o] = parts[..] {
            out.insert(value.to_string(), (p.parse()?, o.parse()?));
        }
    }
    Ok(out)
}

fn spawn_producer(bootstrap: &str, prefix: &str, acked: &Path, log: &Path) -> anyhow::Result<Child> {
    Ok(Command::new(python_bin())
        .arg(python_script("acked_producer.py"))
        .args(["--bootstrap", bootstrap, "--topic", "power", "--prefix", prefix, "--rate", "5000", "--acked"])
        .arg(acked)
        .stdout(Stdio::null())
        .stderr(std::fs::OpenOptions::new().create(true).append(true).open(log)?)
        .spawn()?)
}

/// Lost acknowledged records (absent, or another value at their offset) and values stored twice.
fn check_acked(acked: &HashMap<String, (i32, i64)>, records: &BTreeMap<(i32, i64), String>) -> (Vec<String>, usize) {
    let mut lost: Vec<String> = acked
        .iter()
        .filter(|(value, at)| records.get(at) != Some(*value))
        .map(|(value, at)| format!("{value} acked at {at:?}, found {:?}", records.get(at)))
        .collect();
    lost.sort();
    let mut seen = HashMap::new();
    for value in records.values() {
        *seen.entry(value).or_insert(0usize) += 1;
    }
    (lost, seen.values().filter(|&&n| n > 1).map(|n| n - 1).sum())
}

#[test]
fn broker_power_cuts_lose_no_acknowledged_record() -> anyhow::Result<()> {
    millrace_bin();
    let mut rng = rng("broker");
    let dir = tempfile::tempdir()?;
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt)?;
    let mut mount = PowerMount::mount(&mnt)?;
    // A disk's flush takes a while: cuts then often land between a write and its fsync.
    mount.set_sync_latency(Duration::from_millis(3));
    let t0 = Instant::now();
    let mut broker = MountedBroker::start(dir.path(), &mount.path().join("data"))?;
    let bootstrap = broker.bootstrap();
    eprintln!("broker up in {:?}", t0.elapsed());
    millrace(&["topic", "create", "power", "--partitions", "3", "--bootstrap", &bootstrap])?;
    eprintln!("topic in {:?}", t0.elapsed());
    let acked_path = dir.path().join("acked.txt");
    let producer_log = dir.path().join("producer.log");
    let started = Instant::now();
    let mut duplicates = 0;
    for cut in 0..cuts() {
        let before = acked(&acked_path)?.len();
        let mut producer = spawn_producer(&bootstrap, &format!("c{cut}"), &acked_path, &producer_log)?;
        // Under load: some records acknowledged, then a random moment.
        wait_for("acknowledged records under load", T, || Ok(acked(&acked_path)?.len() > before + 200)).map_err(
            |e| {
                let producer = std::fs::read_to_string(&producer_log).unwrap_or_default();
                let tail: String = producer.lines().rev().take(20).collect::<Vec<_>>().join("\n");
                anyhow::anyhow!(
                    "cut {cut}: {e:#}; producer (last lines, reversed):\n{tail}\nbroker:\n{}",
                    broker.process.fresh_log()
                )
            },
        )?;
        std::thread::sleep(Duration::from_millis(rng.u64(0..1500)));
        let cut_mode = mode(cut, &mut rng);
        let report = mount.cut_power(cut_mode, || {
            broker.process.kill9();
            let _ = producer.kill();
            let _ = producer.wait();
        })?;
        eprintln!("cut {cut} at {:?}: {report:?}", t0.elapsed());
        let survived = tree(mount.path());
        broker.spawn().map_err(|e| anyhow::anyhow!("restart after cut {cut} ({cut_mode:?}): {e:#}"))?;
        let acked = acked(&acked_path)?;
        let records = read_records(&bootstrap, "power")
            .map_err(|e| anyhow::anyhow!("after cut {cut} ({cut_mode:?}): {e:#}; what survived:\n{survived}"))?;
        let (lost, dups) = check_acked(&acked, &records);
        anyhow::ensure!(
            lost.is_empty(),
            "after cut {cut} ({cut_mode:?}) {} of {} acknowledged records are lost, e.g. {:?}; broker log:\n{}",
            lost.len(),
            acked.len(),
            &lost[..lost.len().min(5)],
            broker.process.fresh_log()
        );
        duplicates = dups;
        eprintln!("cut {cut} ({cut_mode:?}): {} acknowledged so far, all present", acked.len());
    }
    let acknowledged = acked(&acked_path)?.len();
    // Torn cuts leave partial batches at segment tails; recovery must have cut some of them.
    let torn_tails_cut = broker.process.log().matches("recovery cut").count();
    println!(
        "power-loss broker: cuts={} acknowledged={acknowledged} lost=0 duplicates={duplicates} \
         torn_tails_cut={torn_tails_cut} fsyncs={} dir_fsyncs={} in {:.0?}",
        cuts(),
        mount.stats().file_syncs,
        mount.stats().dir_syncs,
        started.elapsed()
    );
    Ok(())
}

/// Fixed-length lines, so a byte offset in the file is a line number.
const LINE: u64 = 15;

fn line(n: u64) -> String {
    format!("line-{n:09}\n")
}

/// Appends numbered lines to `path` until stopped; `written` counts them.
fn writer(path: PathBuf, stop: Arc<AtomicBool>, written: Arc<AtomicU64>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(&path) else { return };
        while !stop.load(Ordering::SeqCst) {
            let from = written.load(Ordering::SeqCst);
            let text: String = (from..from + 20).map(line).collect();
            if file.write_all(text.as_bytes()).is_err() {
                return;
            }
            written.store(from + 20, Ordering::SeqCst);
            // About 2000 lines a second.
            std::thread::sleep(Duration::from_millis(10));
        }
    })
}

/// The line numbers on the topic (with repeats), from the agent's JSON records.
fn lines_at_broker(bootstrap: &str) -> anyhow::Result<Vec<u64>> {
    let records = read_records(bootstrap, "app-logs")?;
    let mut out = Vec::with_capacity(records.len());
    for doc in records.values() {
        let doc: serde_json::Value = serde_json::from_str(doc)?;
        let message = doc["message"].as_str().unwrap_or_default();
        let n = message.strip_prefix("line-").and_then(|n| n.parse().ok());
        out.push(n.ok_or_else(|| anyhow::anyhow!("unexpected record {doc}"))?);
    }
    Ok(out)
}

/// The offset of the tailed file in the agent's checkpoint registry (0 without one).
fn checkpoint_offset(data_dir: &Path) -> anyhow::Result<u64> {
    let Ok(text) = std::fs::read_to_string(data_dir.join("registry.json")) else { return Ok(0) };
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("registry.json after a cut: {e}: {text:?}"))?;
    Ok(doc["files"].as_array().into_iter().flatten().filter_map(|f| f["offset"].as_u64()).max().unwrap_or(0))
}

#[test]
fn agent_power_cuts_lose_no_line_and_never_checkpoint_past_the_broker() -> anyhow::Result<()> {
    // Built before the clock starts: the writer's lines pile up while cargo runs.
    millrace_bin();
    let mut rng = rng("agent");
    let broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    let dir = tempfile::tempdir()?;
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt)?;
    std::fs::create_dir(dir.path().join("logs"))?;
    let mut mount = PowerMount::mount(&mnt)?;
    let data_dir = mount.path().join("agent-data");
    let log_file = dir.path().join("logs").join("app.log");
    let toml = format!(
        "[agent]\ndata_dir = {:?}\nhost_name = \"power\"\ncheckpoint_interval = \"100ms\"\n\n\
         [output]\nbootstrap = \"{bootstrap}\"\n\n\
         [[inputs.file]]\nname = \"app\"\ntopic = \"app-logs\"\ninclude = [{:?}]\nscan_interval = \"100ms\"\n",
        data_dir.display().to_string(),
        log_file.display().to_string(),
    );
    let mut agent = Component::start("agent", dir.path(), "agent", &toml)?;
    let (stop, written) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let writing = writer(log_file, stop.clone(), written.clone());
    let started = Instant::now();
    let mut max_checkpoint = 0;
    for cut in 0..cuts() {
        std::thread::sleep(Duration::from_millis(1000 + rng.u64(0..2000)));
        let cut_mode = mode(cut, &mut rng);
        let report = mount.cut_power(cut_mode, || agent.kill9())?;
        eprintln!("agent cut {cut} ({cut_mode:?}) at {:?}: {report:?}", started.elapsed());
        // What survived must be backed by the broker: every line before the checkpoint is there.
        let checkpoint = checkpoint_offset(&data_dir)?;
        let at_broker: std::collections::HashSet<u64> = lines_at_broker(&bootstrap)?.into_iter().collect();
        let missing = (0..checkpoint / LINE).find(|n| !at_broker.contains(n));
        anyhow::ensure!(
            missing.is_none(),
            "after cut {cut} ({cut_mode:?}) the checkpoint is at byte {checkpoint} (line {}) but line {missing:?} is \
             not at the broker; agent log:\n{}",
            checkpoint / LINE,
            agent.log()
        );
        max_checkpoint = max_checkpoint.max(checkpoint);
        agent.spawn()?;
    }
    stop.store(true, Ordering::SeqCst);
    writing.join().map_err(|_| anyhow::anyhow!("the writer panicked"))?;
    let total = written.load(Ordering::SeqCst);
    let mut lines = Vec::new();
    let arrived = wait_for("every line at the broker", Duration::from_secs(60), || {
        lines = lines_at_broker(&bootstrap)?;
        let distinct: std::collections::HashSet<&u64> = lines.iter().collect();
        Ok(distinct.len() as u64 >= total)
    });
    let distinct: std::collections::HashSet<u64> = lines.iter().copied().collect();
    let lost = (0..total).filter(|n| !distinct.contains(n)).count();
    let duplicates = lines.len() - distinct.len();
    println!(
        "power-loss agent: cuts={} lines={total} lost={lost} duplicates={duplicates} checkpoint_max={max_checkpoint} \
         fsyncs={} dir_fsyncs={} in {:.0?}",
        cuts(),
        mount.stats().file_syncs,
        mount.stats().dir_syncs,
        started.elapsed()
    );
    arrived.map_err(|e| anyhow::anyhow!("{e:#}: {lost} of {total} lines lost; agent log:\n{}", agent.log()))?;
    anyhow::ensure!(lost == 0);
    // Duplicates come only from lines sent but not yet checkpointed at a cut, well under a second's
    // worth each; a registry lost with its directory resends everything.
    anyhow::ensure!(duplicates as u64 <= total / 4, "{duplicates} duplicates of {total} lines");
    agent.stop(Duration::from_secs(30))?;
    Ok(())
}
