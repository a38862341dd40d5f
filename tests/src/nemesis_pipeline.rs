//! The nemesis's agent → broker → sink pipeline: a thread appends numbered lines to a log file,
//! `millrace agent` tails it into a topic, `millrace sink` writes the topic into a file
//! (`[[file]]`, Elasticsearch bulk format). At the end every line must be in the sink's file
//! (redelivery after a rebalance is allowed, the sink is at-least-once) and exactly once in the
//! topic (the agent's producer is idempotent with unlimited retries) — except the lines an agent
//! killed with SIGKILL reads again from its checkpoint after the restart: a copy of a line at or
//! past the checkpoint it left on disk is allowed, one below it (a line it had acknowledged and
//! checkpointed) fails the run.

use crate::cluster::StoredRecord;
use crate::component::Component;
use crate::nemesis_faults::{Kind, Rng};
use crate::nemesis_resends::{classify_duplicates, EpochBumps};
use crate::wait_for;
use anyhow::Context;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Prefix of every pipeline line; the line is `<prefix><n>`.
const PREFIX: &str = "nemesis-line-";
/// How long the sink may deliver nothing new at the end before the missing lines count as lost.
const DRAIN_STALL: Duration = Duration::from_secs(60);
/// Lines appended per 100 ms.
const LINES_PER_TICK: u64 = 5;

/// The running pipeline.
pub struct Pipeline {
    agent: Component,
    sink: Component,
    out: PathBuf,
    /// The tailed file and the agent's registry: what the agent acknowledged.
    input: PathBuf,
    registry: PathBuf,
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    writer: Option<JoinHandle<anyhow::Result<()>>>,
    /// Per agent kill: the lines it may send again, from its checkpoint to what it could have
    /// read (end exclusive).
    reread: Vec<(u64, u64)>,
}

/// The pipeline process a fault kills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// `millrace agent`.
    Agent,
    /// `millrace sink`.
    Sink,
}

/// What arrived.
#[derive(Debug, Default, Clone)]
pub struct PipelineReport {
    /// Lines written to the agent's file.
    pub written: u64,
    /// Distinct lines in the sink's file.
    pub delivered: u64,
    /// Lines missing from the sink's file (examples in `missing_examples`).
    pub lost: u64,
    /// The first few missing line numbers.
    pub missing_examples: Vec<u64>,
    /// Extra copies in the sink's file (at-least-once redelivery).
    pub redelivered: u64,
    /// Lines the agent's checkpoint covers (it had the broker's acknowledgement for them).
    pub acknowledged: u64,
    /// Acknowledged lines the topic does not hold at all: lost.
    pub topic_missing: u64,
    /// The first few of them.
    pub topic_missing_examples: Vec<u64>,
    /// Lines past the checkpoint not in the topic: still the agent's to send (re-read at its
    /// next start), a liveness matter.
    pub topic_pending: u64,
    /// Lines the topic holds more than once, other than the agent's logged re-sends and its
    /// re-reads after a kill.
    pub topic_duplicates: u64,
    /// Lines the topic holds more than once that an agent kill allows: at or past the
    /// checkpoint the killed agent left (see [`Pipeline::kill`]).
    pub topic_reread: u64,
    /// The agent kills' windows of lines it may send again.
    pub reread_windows: Vec<(u64, u64)>,
    /// Lines the agent's producer sent again after an epoch bump it logged
    /// (crate::nemesis_resends), stored twice under two epochs.
    pub topic_client_resends: u64,
    /// The first few duplicated line numbers in the topic.
    pub topic_duplicate_examples: Vec<u64>,
    /// The agent or the sink not stopping cleanly on SIGTERM (then killed), with its log.
    pub stop_errors: Vec<String>,
}

/// The line number of a record or document that carries a pipeline line in `message`.
fn line_number(json: &str) -> Option<u64> {
    let doc: serde_json::Value = serde_json::from_str(json).ok()?;
    doc.get("message")?.as_str()?.strip_prefix(PREFIX)?.trim().parse().ok()
}

/// How many times each line number occurs among `texts`.
fn occurrences<'a>(texts: impl Iterator<Item = &'a str>, number: impl Fn(&str) -> Option<u64>) -> HashMap<u64, u64> {
    let mut seen = HashMap::new();
    for n in texts.filter_map(number) {
        *seen.entry(n).or_default() += 1;
    }
    seen
}

/// The pipeline process to kill during episode `index` (0-based), if any: the agent in the second
/// and the sink in the fourth, so that even a short run has both; later one episode in five
/// each, at random.
pub fn pipeline_fault(index: u64, rng: &mut Rng) -> Option<(Part, Kind)> {
    match index {
        1 => Some((Part::Agent, Kind::AgentKill)),
        3 => Some((Part::Sink, Kind::SinkKill)),
        0 | 2 => None,
        _ => match rng.below(5) {
            0 => Some((Part::Agent, Kind::AgentKill)),
            1 => Some((Part::Sink, Kind::SinkKill)),
            _ => None,
        },
    }
}

impl Pipeline {
    /// Starts the agent and the sink on `bootstrap`, reading and writing `topic`, and the writer.
    pub fn start(dir: &Path, bootstrap: &str, topic: &str) -> anyhow::Result<Pipeline> {
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs)?;
        let input = logs.join("app.log");
        std::fs::write(&input, b"")?;
        let agent_toml = format!(
            "[agent]\ndata_dir = {:?}\ncheckpoint_interval = \"200ms\"\n\n[output]\nbootstrap = \"{bootstrap}\"\n\n\
             [[inputs.file]]\nname = \"app\"\ntopic = \"{topic}\"\ninclude = [{:?}]\nscan_interval = \"200ms\"\n",
            dir.join("agent-data").display().to_string(),
            input.display().to_string(),
        );
        let agent = Component::start("agent", dir, "agent", &agent_toml)?;
        let out = dir.join("sink-out.ndjson");
        let sink_toml = format!(
            "[source]\nbootstrap = \"{bootstrap}\"\n\n[[file]]\nname = \"out\"\ntopics = [\"{topic}\"]\n\
             group = \"nemesis-file\"\npath = {:?}\nformat = \"elasticsearch_bulk\"\n",
            out.display().to_string(),
        );
        let sink = Component::start("sink", dir, "sink", &sink_toml)?;
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let (thread_stop, thread_written) = (stop.clone(), written.clone());
        let registry = dir.join("agent-data").join("registry.json");
        let input_path = input.clone();
        let writer = std::thread::spawn(move || -> anyhow::Result<()> {
            let mut file = std::fs::OpenOptions::new().append(true).open(&input_path)?;
            while !thread_stop.load(Ordering::Relaxed) {
                let from = thread_written.load(Ordering::Relaxed);
                let text: String = (from..from + LINES_PER_TICK).map(|n| format!("{PREFIX}{n}\n")).collect();
                file.write_all(text.as_bytes()).context("appending pipeline lines")?;
                thread_written.store(from + LINES_PER_TICK, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok(())
        });
        Ok(Pipeline { agent, sink, out, input, registry, stop, written, writer: Some(writer), reread: Vec::new() })
    }

    /// SIGKILLs the agent or the sink; [`Pipeline::restart`] starts it again. For the agent it
    /// notes the lines it may send again after the restart: from the checkpoint in its registry to
    /// the end of what it could have read. Returns a description for the fault log.
    pub fn kill(&mut self, part: Part) -> anyhow::Result<String> {
        match part {
            Part::Agent => {
                self.agent.kill9();
                let from = self.acknowledged_lines()?;
                // The writer may be half-way through its next tick.
                let to = self.written() + LINES_PER_TICK;
                self.reread.push((from, to));
                Ok(format!("kill -9 the agent (checkpoint at line {from}, at most {to} lines written)"))
            }
            Part::Sink => {
                self.sink.kill9();
                Ok("kill -9 the sink".to_string())
            }
        }
    }

    /// Starts the killed agent or sink again with the same configuration and data.
    pub fn restart(&mut self, part: Part) -> anyhow::Result<()> {
        match part {
            Part::Agent => self.agent.spawn(),
            Part::Sink => self.sink.spawn(),
        }
    }

    /// Lines written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Fails when the agent or the sink exited (they must ride out every broker fault).
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.agent.is_running(), "the agent exited; log:\n{}", tail(&self.agent.log()));
        anyhow::ensure!(self.sink.is_running(), "the sink exited; log:\n{}", tail(&self.sink.log()));
        Ok(())
    }

    fn delivered(&self) -> HashMap<u64, u64> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        occurrences(text.lines(), line_number)
    }

    /// Stops writing, waits (bounded) until the sink's file holds every line, stops the agent
    /// and the sink, and counts.
    pub fn finish(&mut self, timeout: Duration) -> anyhow::Result<PipelineReport> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(writer) = self.writer.take() {
            writer.join().map_err(|_| anyhow::anyhow!("the line writer panicked"))??;
        }
        let written = self.written();
        // A timeout is not an error here: what is missing is reported as lost. A sink that made
        // no progress for DRAIN_STALL is not waited for any longer.
        let mut last = (0, std::time::Instant::now());
        let _ = wait_for(&format!("all {written} pipeline lines in the sink's file"), timeout, || {
            let delivered = self.delivered();
            if delivered.len() != last.0 {
                last = (delivered.len(), std::time::Instant::now());
            }
            let stalled = last.1.elapsed() >= DRAIN_STALL;
            Ok(stalled || (0..written).all(|n| delivered.contains_key(&n)))
        });
        let delivered = self.delivered();
        let missing: Vec<u64> = (0..written).filter(|n| !delivered.contains_key(n)).collect();
        let report = PipelineReport {
            written,
            delivered: delivered.len() as u64,
            lost: missing.len() as u64,
            missing_examples: missing.into_iter().take(10).collect(),
            redelivered: delivered.values().map(|c| c - 1).sum(),
            reread_windows: self.reread.clone(),
            ..PipelineReport::default()
        };
        let mut report = report;
        // A component that hangs on SIGTERM is a finding, not a reason to skip the rest of the
        // verdict (the replica comparison comes after).
        for (name, component) in [("agent", &mut self.agent), ("sink", &mut self.sink)] {
            // The agent bounds its own stop to about 40 s (5 s inputs, 30 s drain and flush, 5 s sender).
            if let Err(e) = component.stop(Duration::from_secs(45)) {
                component.kill9();
                report.stop_errors.push(format!("the {name} did not stop cleanly: {e:#}"));
            }
        }
        report.acknowledged = self.acknowledged_lines()?;
        Ok(report)
    }

    /// Lines of the tailed file below the agent's checkpoint (every line is one record).
    fn acknowledged_lines(&self) -> anyhow::Result<u64> {
        let registry: serde_json::Value = match std::fs::read(&self.registry) {
            Ok(bytes) => serde_json::from_slice(&bytes).context("parsing the agent's registry")?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e).context("reading the agent's registry"),
        };
        let offset =
            registry["files"].as_array().and_then(|files| files.iter().find_map(|f| f["offset"].as_u64())).unwrap_or(0);
        let text = std::fs::read(&self.input).context("reading the tailed file")?;
        let covered = text.get(..(offset as usize).min(text.len())).unwrap_or_default();
        Ok(covered.iter().filter(|b| **b == b'\n').count() as u64)
    }

    /// Adds the topic's duplicates to `report`, from the topic's records (one replica's log);
    /// `bumps` are the agent's logged epoch bumps.
    pub fn count_topic(report: &mut PipelineReport, partitions: &[Vec<StoredRecord>], bumps: &EpochBumps) {
        // Each record as its line number, so that copies compare by line.
        let lines: Vec<StoredRecord> = partitions
            .iter()
            .flatten()
            .filter_map(|r| {
                let n = line_number(r.value.as_deref()?)?;
                Some(StoredRecord { value: Some(n.to_string()), ..r.clone() })
            })
            .collect();
        let seen = occurrences(lines.iter().filter_map(|r| r.value.as_deref()), |v| v.parse().ok());
        let resent = classify_duplicates(&lines, bumps).client_resent;
        let mut duplicated: Vec<u64> =
            seen.iter().filter(|(n, &c)| c > 1 && !resent.contains(&n.to_string())).map(|(&n, _)| n).collect();
        duplicated.sort_unstable();
        let windows = report.reread_windows.clone();
        let reread = |n: u64| windows.iter().any(|(from, to)| (*from..*to).contains(&n));
        report.topic_reread = duplicated.iter().filter(|n| reread(**n)).count() as u64;
        duplicated.retain(|n| !reread(*n));
        report.topic_client_resends = resent.len() as u64;
        report.topic_duplicates = duplicated.len() as u64;
        report.topic_duplicate_examples = duplicated.into_iter().take(10).collect();
        let missing: Vec<u64> = (0..report.acknowledged).filter(|n| !seen.contains_key(n)).collect();
        report.topic_missing = missing.len() as u64;
        report.topic_missing_examples = missing.into_iter().take(10).collect();
        report.topic_pending = (report.acknowledged..report.written).filter(|n| !seen.contains_key(n)).count() as u64;
    }

    /// The agent's whole log.
    pub fn agent_log(&self) -> String {
        self.agent.log()
    }

    /// The agent's and the sink's logs (last lines), for failure messages.
    pub fn logs(&self) -> String {
        format!("--- agent log ---\n{}\n--- sink log ---\n{}", tail(&self.agent.log()), tail(&self.sink.log()))
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.agent.kill9();
        self.sink.kill9();
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_found_in_documents_and_records() {
        let texts = [
            r#"{"index":{"_index":"logs-2026.12.03"}}"#,
            r#"{"@timestamp":"x","message":"nemesis-line-7","host":"h"}"#,
            r#"{"message":"nemesis-line-7"}"#,
            r#"{"message":"other-3"}"#,
            "not json",
        ];
        let seen = occurrences(texts.iter().copied(), line_number);
        assert_eq!(seen.get(&7), Some(&2));
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn topic_copies_are_allowed_only_past_a_killed_agents_checkpoint_or_after_a_logged_bump() {
        let record = |offset, n: u64, epoch| StoredRecord {
            offset,
            value: Some(format!(r#"{{"message":"{PREFIX}{n}"}}"#)),
            producer_id: 4,
            producer_epoch: epoch,
        };
        let log = vec![
            record(0, 0, 0),
            record(1, 1, 0),
            record(2, 2, 0),
            record(3, 3, 0),
            // The agent killed with its checkpoint at line 2 sent 2 and 3 again.
            record(4, 2, 0),
            record(5, 3, 0),
            // Line 1 was below that checkpoint: sending it again is a failure.
            record(6, 1, 0),
            // Line 0 again under epoch 1, which the agent logged bumping to.
            record(7, 0, 1),
        ];
        let mut report =
            PipelineReport { written: 4, acknowledged: 4, reread_windows: vec![(2, 9)], ..PipelineReport::default() };
        Pipeline::count_topic(&mut report, std::slice::from_ref(&log), &EpochBumps::from([(4, 1)]));
        assert_eq!((report.topic_reread, report.topic_client_resends, report.topic_duplicates), (2, 1, 1));
        assert_eq!(report.topic_duplicate_examples, vec![1]);
        assert_eq!(report.topic_missing, 0);
        // Without the kill and the bump, every copy fails.
        let mut report = PipelineReport { written: 4, acknowledged: 4, ..PipelineReport::default() };
        Pipeline::count_topic(&mut report, &[log], &EpochBumps::new());
        assert_eq!((report.topic_reread, report.topic_client_resends, report.topic_duplicates), (0, 0, 4));
    }
}
