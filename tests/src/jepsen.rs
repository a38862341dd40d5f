//! Runs `tests/python/jepsen_workload.py` in the background while a test injects faults.
//!
//! The workload writes into its output directory `progress.json` (rewritten every 200 ms),
//! and at the end `history.json`, `final.json` (the final read) and `summary.json` (the checker's
//! verdict, also printed on its stdout). It stops producing when `DIR/stop` appears or after
//! `--duration`, then flushes, reads every partition to its end and checks.

use crate::cluster::LogRecords;
use crate::{python_script, wait_for};
use anyhow::{bail, Context};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A snapshot of `progress.json`.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    /// Seconds since the workload started.
    pub elapsed: f64,
    /// `producing`, `flushing`, `final` or `done`.
    pub phase: String,
    /// Acknowledged writes so far.
    pub acked: u64,
    /// Writes that failed (delivery error).
    pub failed: u64,
    /// Records read by the concurrent consumers.
    pub reads: u64,
    /// Acknowledged writes per partition.
    pub acked_per_partition: BTreeMap<i32, u64>,
}

impl Progress {
    fn parse(value: &Value) -> Progress {
        let count = |key: &str| value.get(key).and_then(Value::as_u64).unwrap_or(0);
        let acked_per_partition = value
            .get("acked_per_partition")
            .and_then(Value::as_object)
            .map(|m| m.iter().filter_map(|(p, n)| Some((p.parse().ok()?, n.as_u64()?))).collect())
            .unwrap_or_default();
        Progress {
            elapsed: value.get("elapsed").and_then(Value::as_f64).unwrap_or(0.0),
            phase: value.get("phase").and_then(Value::as_str).unwrap_or_default().to_string(),
            acked: count("acked"),
            failed: count("failed"),
            reads: count("reads"),
            acked_per_partition,
        }
    }

    /// Acks of `partition` so far.
    pub fn acked_on(&self, partition: i32) -> u64 {
        self.acked_per_partition.get(&partition).copied().unwrap_or(0)
    }
}

/// A running `jepsen_workload.py run`; killed when dropped.
pub struct Workload {
    name: String,
    child: Option<Child>,
    dir: PathBuf,
}

impl Workload {
    /// Starts `<launcher> jepsen_workload.py run ARGS --out DIR --stop-file DIR/stop`, where
    /// `launcher` is the Python interpreter command (e.g. `Command::new(python_bin())`, or
    /// `cluster.command_in(id, python_bin())` to run it inside a broker's network namespace).
    /// `dir` must exist; stdout and stderr go to `DIR/stdout.txt` and `DIR/stderr.txt`.
    pub fn start(name: &str, mut launcher: Command, dir: &Path, args: &[&str]) -> anyhow::Result<Workload> {
        let stdout = std::fs::File::create(dir.join("stdout.txt"))?;
        let stderr = std::fs::File::create(dir.join("stderr.txt"))?;
        let child = launcher
            .arg(python_script("jepsen_workload.py"))
            .arg("run")
            .args(args)
            .arg("--out")
            .arg(dir)
            .arg("--stop-file")
            .arg(dir.join("stop"))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("spawning workload {name}"))?;
        Ok(Workload { name: name.to_string(), child: Some(child), dir: dir.to_path_buf() })
    }

    /// The output directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The latest progress, if the workload wrote any.
    pub fn progress(&self) -> Option<Progress> {
        let text = std::fs::read_to_string(self.dir.join("progress.json")).ok()?;
        serde_json::from_str::<Value>(&text).ok().map(|v| Progress::parse(&v))
    }

    /// The workload's stdout and stderr so far.
    pub fn output(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        let stderr = read("stderr.txt");
        let lines: Vec<&str> = stderr.lines().collect();
        let tail = lines[lines.len().saturating_sub(60)..].join("\n");
        format!(
            "--- {} stdout ---\n{}\n--- {} stderr (last 60 lines) ---\n{tail}",
            self.name,
            read("stdout.txt"),
            self.name
        )
    }

    fn fail_if_exited(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut() {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                bail!("workload {} exited early with {status}\n{}", self.name, self.output());
            }
        }
        Ok(())
    }

    /// Waits until `check` holds for the progress (fails at once if the workload exits).
    pub fn wait_progress(
        &mut self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&Progress) -> bool,
    ) -> anyhow::Result<Progress> {
        let mut latest = None;
        let waited = wait_for(&format!("workload {}: {what}", self.name), timeout, || {
            self.fail_if_exited()?;
            latest = self.progress();
            Ok(latest.as_ref().is_some_and(&check))
        });
        waited.with_context(|| format!("latest progress: {latest:?}"))?;
        latest.context("no progress")
    }

    /// Waits until at least `n` writes were acknowledged.
    pub fn wait_acked(&mut self, n: u64, timeout: Duration) -> anyhow::Result<Progress> {
        self.wait_progress(&format!("{n} acknowledged writes"), timeout, |p| p.acked >= n)
    }

    /// Waits until every partition in `since` got at least `n` more acknowledgements than then:
    /// writes flow everywhere again.
    pub fn wait_more_acks(&mut self, since: &Progress, n: u64, timeout: Duration) -> anyhow::Result<Progress> {
        let base = since.acked_per_partition.clone();
        anyhow::ensure!(!base.is_empty(), "no partitions in the baseline progress {since:?}");
        self.wait_progress(&format!("{n} more acks on every partition"), timeout, |p| {
            base.iter().all(|(&partition, &before)| p.acked_on(partition) >= before + n)
        })
    }

    /// Asks the workload to stop producing (it then flushes, reads and checks).
    pub fn request_stop(&self) -> anyhow::Result<()> {
        std::fs::write(self.dir.join("stop"), b"stop\n").context("writing the stop file")
    }

    /// Stops the workload and waits (bounded) for its exit. Returns `summary.json`; fails with
    /// the workload's output when it exits non-zero (an anomaly or an error) or takes too long.
    pub fn finish(&mut self, timeout: Duration) -> anyhow::Result<Value> {
        self.request_stop()?;
        let deadline = Instant::now() + timeout;
        let mut child = self.child.take().with_context(|| format!("workload {} is not running", self.name))?;
        let Some(status) = crate::wait_or_kill(&mut child, deadline)? else {
            bail!("workload {} did not finish within {timeout:?} of the stop request\n{}", self.name, self.output());
        };
        if !status.success() {
            bail!("workload {} failed with {status}\n{}", self.name, self.output());
        }
        let summary = std::fs::read_to_string(self.dir.join("summary.json"))
            .with_context(|| format!("reading the summary of workload {}\n{}", self.name, self.output()))?;
        serde_json::from_str(&summary).with_context(|| format!("parsing {summary}"))
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The longest gap between consecutive acknowledgements on any single partition, from a summary.
pub fn longest_partition_gap(summary: &Value) -> f64 {
    summary["gaps"]["longest_per_partition_s"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_f64).fold(0.0, f64::max))
        .unwrap_or(f64::INFINITY)
}

/// The final read of a finished workload (`DIR/final.json`): `(offset, value)` per partition, in
/// offset order.
pub fn final_log(dir: &Path) -> anyhow::Result<BTreeMap<i32, LogRecords>> {
    let text = std::fs::read_to_string(dir.join("final.json")).context("reading final.json")?;
    let records: Vec<Value> = serde_json::from_str(&text).context("parsing final.json")?;
    let mut log: BTreeMap<i32, LogRecords> = BTreeMap::new();
    for record in records {
        let (Some(partition), Some(offset), Some(value)) =
            (record["partition"].as_i64(), record["offset"].as_i64(), record["value"].as_str())
        else {
            bail!("malformed final record {record}");
        };
        // The workload writes a null value as "<null>".
        let value = (value != "<null>").then(|| value.to_string());
        log.entry(partition as i32).or_default().push((offset, value));
    }
    for records in log.values_mut() {
        records.sort_by_key(|(offset, _)| *offset);
    }
    Ok(log)
}

/// Seconds since the Unix epoch (the workload's clock).
pub fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}
