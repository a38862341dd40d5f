//! The nemesis runner (issue 16): a 3-broker cluster in network namespaces, each broker's wall
//! clock under libfaketime so one can be stepped without touching the host's clock (RF=3,
//! `min.insync.replicas=2`) under a seeded random schedule of overlapping faults
//! ([`crate::nemesis_faults`]), while idempotent acks=all producers, plain consumers and a
//! consumer group run the Jepsen-style workload (tests/python/jepsen_workload.py) and an agent →
//! broker → file-sink pipeline ships numbered lines ([`crate::nemesis_pipeline`]); its agent and
//! its sink are SIGKILLed during some episodes and restarted after them.
//!
//! After every episode the run waits (bounded) until every partition has a full ISR again and
//! writes flow on every partition, so a fault the cluster does not recover from fails the run.
//! At the end the workload's checker judges the history (lost, duplicated, inconsistent
//! offsets, non-monotonic reads, consumer skips, unexplained resets, per-producer order, holes,
//! group skips and rewinds), no write may have been acknowledged while two brokers were down,
//! every pipeline line must have arrived, and the brokers are stopped to compare every replica's
//! log on disk. [`Outcome::summary_line`] is the one-line result; [`Outcome::failures`] lists
//! every anomaly with its evidence.
//!
//! Parameters from the environment (see [`Config::from_env`]): `MILLRACE_NEMESIS_FAULTS` (at
//! least this many faults), `MILLRACE_NEMESIS_DURATION` (and at least this many seconds of
//! faults), `MILLRACE_NEMESIS_SEED` (default: from the clock; always printed).

use crate::cluster::{Cluster, LogRecords, StoredRecord};
use crate::jepsen::{final_log, Workload};
use crate::nemesis_faults::{Nemesis, Rng};
use crate::nemesis_pipeline::{pipeline_fault, Pipeline, PipelineReport};
use crate::nemesis_resends::{
    classify_duplicates, logged_agent_epoch_bumps, logged_epoch_bumps, order_breaks_without, DuplicateKinds, EpochBumps,
};
use crate::python_bin;
use anyhow::Context;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The workload's topic and its partitions.
const TOPIC: &str = "nemesis";
const PARTITIONS: i32 = 6;
/// The pipeline's topic and its partitions.
const PIPELINE_TOPIC: &str = "nemesis-pipeline";
const PIPELINE_PARTITIONS: i32 = 3;
/// Bound on recovering a full ISR everywhere after an episode (restarted brokers catch up).
const RECOVERY: Duration = Duration::from_secs(240);
/// Bound on writes flowing again on every partition after an episode.
const RESUME: Duration = Duration::from_secs(180);
/// Bound on the workload's flush, final read and check.
const FINISH: Duration = Duration::from_secs(400);
/// Bound on the sink catching up at the end.
const PIPELINE_DRAIN: Duration = Duration::from_secs(240);

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Inject at least this many faults…
    pub faults: u64,
    /// …and keep injecting for at least this long.
    pub duration: Duration,
    /// The schedule's seed.
    pub seed: u64,
    /// Whether the pipeline's liveness — the sink delivering every line by the end, the agent
    /// and sink stopping on SIGTERM — fails the run (the default) or is only reported as a
    /// warning (`MILLRACE_NEMESIS_LIVENESS=relaxed`, for exploring a schedule past a known
    /// liveness fault). Lines the agent never got into the topic fail the run either way.
    pub strict_liveness: bool,
}

impl Config {
    /// From `MILLRACE_NEMESIS_FAULTS`, `MILLRACE_NEMESIS_DURATION` (seconds) and
    /// `MILLRACE_NEMESIS_SEED`, with the given defaults for the first two and a clock-derived
    /// seed.
    pub fn from_env(default_faults: u64, default_duration: Duration) -> anyhow::Result<Config> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let number = |name: &str| -> anyhow::Result<Option<u64>> {
            var(name)
                .map(|v| v.trim().parse::<u64>().with_context(|| format!("{name}={v} is not a number")))
                .transpose()
        };
        let clock_seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64 ^ u64::from(std::process::id()))
            .unwrap_or(1);
        Ok(Config {
            faults: number("MILLRACE_NEMESIS_FAULTS")?.unwrap_or(default_faults),
            duration: number("MILLRACE_NEMESIS_DURATION")?.map_or(default_duration, Duration::from_secs),
            seed: number("MILLRACE_NEMESIS_SEED")?.unwrap_or(clock_seed),
            strict_liveness: var("MILLRACE_NEMESIS_LIVENESS").is_none_or(|v| v.trim() != "relaxed"),
        })
    }
}

/// How the replicas compared.
#[derive(Debug, Default)]
pub struct ReplicaReport {
    /// Partitions compared (each on every broker).
    pub partitions: usize,
    /// Brokers per partition.
    pub replicas: usize,
    /// One line of evidence per divergent partition.
    pub divergent: Vec<String>,
    /// Workload values stored more than once, by how (see [`classify_duplicates`]).
    pub duplicates: DuplicateKinds,
    /// Per-producer order breaks in the stored logs once the client's re-sends are taken out
    /// (see [`order_breaks_without`]).
    pub order_breaks_without_resends: u64,
}

/// The result of a run.
#[derive(Debug)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// The summary line.
    pub summary_line: String,
    /// Every anomaly, with evidence; empty when the run is clean.
    pub failures: Vec<String>,
    /// Liveness findings that do not fail a non-strict run (see [`Config::strict_liveness`]).
    pub warnings: Vec<String>,
    /// The fault schedule as it ran.
    pub schedule: Vec<String>,
    /// The checker's summary.
    pub checker: Value,
    /// Figures behind the summary line: the group's sessions and commits, reads, writes that
    /// failed or stayed unanswered, the longest per-partition stall of acknowledgements.
    pub detail_line: String,
}

fn cluster_toml() -> String {
    "[replication]\nreplica_lag_time_max = \"10s\"\ndefault_replication_factor = 3\n\n\
     [controller]\nbroker_session_timeout = \"3s\"\nbroker_heartbeat_interval = \"500ms\"\n"
        .to_string()
}

fn start_workload(cluster: &Cluster, dir: &Path) -> anyhow::Result<Workload> {
    let bootstrap = cluster.bootstrap();
    let partitions = PARTITIONS.to_string();
    let args = [
        "--bootstrap",
        &bootstrap,
        "--topic",
        TOPIC,
        "--partitions",
        &partitions,
        "--producers",
        "2",
        "--consumers",
        "1",
        "--group-consumers",
        "2",
        "--group-id",
        "nemesis-group",
        "--rate",
        "100",
        // A write may wait out a whole episode (two-down plus restarts) before it succeeds.
        "--message-timeout-ms",
        "300000",
        "--flush-timeout",
        "240",
        "--final-timeout",
        "240",
        "--duration",
        "86400",
    ];
    // librdkafka's `eos` debug context logs the producers' epoch bumps, which tell their
    // re-sends from the broker's de-duplication failures (crate::nemesis_resends).
    let debug = match std::env::var("MILLRACE_JEPSEN_PRODUCER_DEBUG") {
        Ok(d) if d.split(',').any(|c| c.trim() == "eos" || c.trim() == "all") => d,
        Ok(d) if !d.trim().is_empty() => format!("{d},eos"),
        _ => "eos".to_string(),
    };
    let mut python = Command::new(python_bin());
    python.env("MILLRACE_JEPSEN_PRODUCER_DEBUG", debug);
    Workload::start("nemesis workload", python, dir, &args)
}

fn anomaly(summary: &Value, name: &str) -> u64 {
    summary["anomalies"][name]["count"].as_u64().unwrap_or(0)
}

/// Acknowledgements inside any two-down window (after its grace): (count, examples).
fn acked_while_two_down(dir: &Path, windows: &[(f64, f64)]) -> anyhow::Result<(u64, Vec<Value>)> {
    let text = std::fs::read_to_string(dir.join("history.json")).context("reading history.json")?;
    let history: Value = serde_json::from_str(&text).context("parsing history.json")?;
    let mut count = 0;
    let mut examples = Vec::new();
    for ack in history["acked"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let time = ack["time"].as_f64().unwrap_or(0.0);
        if windows.iter().any(|&(from, to)| time >= from && time <= to) {
            count += 1;
            if examples.len() < 5 {
                examples.push(ack.clone());
            }
        }
    }
    Ok((count, examples))
}

/// Stops every broker and compares every broker's log of every partition of `topics`; the
/// workload topic's logs must also equal the final read. Returns the report and the pipeline
/// topic's records (from broker 1).
fn compare_replicas(
    cluster: &mut Cluster,
    final_read: &BTreeMap<i32, LogRecords>,
    bumps: &EpochBumps,
) -> anyhow::Result<(ReplicaReport, Vec<Vec<StoredRecord>>)> {
    for id in cluster.ids() {
        cluster.stop(id)?;
    }
    let mut report = ReplicaReport { replicas: cluster.ids().len(), ..ReplicaReport::default() };
    let mut pipeline = Vec::new();
    for (topic, partitions) in [(TOPIC, PARTITIONS), (PIPELINE_TOPIC, PIPELINE_PARTITIONS)] {
        for partition in 0..partitions {
            report.partitions += 1;
            let mut logs = Vec::new();
            for id in cluster.ids() {
                logs.push((id, cluster.replica_log(id, topic, partition)?));
            }
            let (first_id, first) = &logs[0];
            let mut evidence = Vec::new();
            for (id, log) in &logs[1..] {
                if log != first {
                    evidence.push(difference(&format!("broker {id}"), log, &format!("broker {first_id}"), first));
                }
            }
            if topic == TOPIC {
                let stored = cluster.replica_records(*first_id, topic, partition)?;
                let found = classify_duplicates(&stored, bumps);
                report.duplicates.add(found.kinds);
                report.order_breaks_without_resends += order_breaks_without(&stored, &found.client_resent);
                let expected = final_read.get(&partition).cloned().unwrap_or_default();
                if &expected != first {
                    evidence.push(difference(&format!("broker {first_id}"), first, "the final read", &expected));
                }
            } else {
                pipeline.push(cluster.replica_records(*first_id, topic, partition)?);
            }
            if !evidence.is_empty() {
                report.divergent.push(format!("{topic}-{partition}: {}", evidence.join("; ")));
            }
        }
    }
    Ok((report, pipeline))
}

fn difference(a_name: &str, a: &LogRecords, b_name: &str, b: &LogRecords) -> String {
    let at = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    format!(
        "{a_name} has {} records, {b_name} {}; first difference at index {at}: {:?} vs {:?}",
        a.len(),
        b.len(),
        a.get(at),
        b.get(at)
    )
}

/// Runs the nemesis. `Ok(None)` when network namespaces are unavailable and a skip is allowed
/// (see [`crate::netns::skip_or_fail`]); an error when the harness itself fails (a broker that
/// does not come back within its bound also lands here, with the logs).
pub fn run(config: &Config, work_dir: &Path) -> anyhow::Result<Option<Outcome>> {
    eprintln!(
        "nemesis: seed={} faults>={} duration>={}s (replay with MILLRACE_NEMESIS_SEED={})",
        config.seed,
        config.faults,
        config.duration.as_secs(),
        config.seed
    );
    let Some(mut cluster) = Cluster::start_netns_clocked(3, &cluster_toml())? else { return Ok(None) };
    cluster.create_topic(TOPIC, PARTITIONS, 3, &["min.insync.replicas=2"])?;
    cluster.create_topic(PIPELINE_TOPIC, PIPELINE_PARTITIONS, 3, &["min.insync.replicas=2"])?;
    let workload_dir = work_dir.join("workload");
    std::fs::create_dir_all(&workload_dir)?;
    let mut workload = start_workload(&cluster, &workload_dir)?;
    let mut pipeline = Pipeline::start(&work_dir.join("pipeline"), &cluster.bootstrap(), PIPELINE_TOPIC)?;
    workload.wait_acked(300, Duration::from_secs(120))?;
    let mut nemesis = Nemesis::new(config.seed, TOPIC, PARTITIONS);
    // Its own generator, so that the brokers' schedule of a seed stays what it was before
    // pipeline kills were added.
    let mut pipeline_rng = Rng::new(config.seed ^ 0x9e37_79b9_7f4a_7c15);
    let started = Instant::now();
    let mut episodes = 0u64;
    while nemesis.record.total() < config.faults || started.elapsed() < config.duration {
        let before = workload.progress().context("no workload progress")?;
        let killed = pipeline_fault(episodes, &mut pipeline_rng);
        episodes += 1;
        if let Some((part, kind)) = killed {
            let what = pipeline.kill(part)?;
            nemesis.record.count(kind);
            nemesis.record.note(format!("start {}: {what}", kind.name()));
        }
        let episode = nemesis.episode(&mut cluster).and_then(|()| {
            // Down for the whole broker episode, so the restart meets whatever it left.
            if let Some((part, kind)) = killed {
                nemesis.record.note(format!("end {}: restarting it", kind.name()));
                pipeline.restart(part)?;
            }
            cluster.wait_isr_full(TOPIC, RECOVERY)?;
            cluster.wait_isr_full(PIPELINE_TOPIC, RECOVERY)?;
            workload.wait_more_acks(&before, 20, RESUME).context("writes resuming on every partition")?;
            pipeline.check_running()
        });
        if let Err(e) = episode {
            return Err(e.context(format!(
                "seed {}: the cluster did not recover from an episode; schedule so far:\n{}\n{}\n{}",
                config.seed,
                nemesis.record.log.join("\n"),
                cluster.log_tails(60),
                workload.output()
            )));
        }
        eprintln!(
            "nemesis: {} faults after {:.0}s, {} acked, {} pipeline lines written",
            nemesis.record.total(),
            started.elapsed().as_secs_f64(),
            workload.progress().map(|p| p.acked).unwrap_or(0),
            pipeline.written()
        );
    }
    // The checker's verdict is in the summary; a non-zero exit for anomalies is judged below, so
    // only read it here.
    let finished = workload.finish(FINISH);
    let checker = match finished {
        Ok(summary) => summary,
        Err(e) => {
            let text = std::fs::read_to_string(workload_dir.join("summary.json"))
                .with_context(|| format!("the workload failed without a summary: {e:#}"))?;
            serde_json::from_str(&text).with_context(|| format!("parsing the summary after {e:#}"))?
        }
    };
    let mut pipeline_report: PipelineReport = pipeline.finish(PIPELINE_DRAIN)?;
    let (two_down_acks, two_down_examples) = acked_while_two_down(&workload_dir, &nemesis.record.two_down_windows)?;
    let final_read = final_log(&workload_dir)?;
    let client_log = std::fs::read_to_string(workload_dir.join("stderr.txt")).context("reading the workload's log")?;
    let (replicas, pipeline_topic) = compare_replicas(&mut cluster, &final_read, &logged_epoch_bumps(&client_log))?;
    Pipeline::count_topic(&mut pipeline_report, &pipeline_topic, &logged_agent_epoch_bumps(&pipeline.agent_log()));
    Ok(Some(judge(config, &nemesis, checker, pipeline_report, replicas, (two_down_acks, two_down_examples))))
}

fn judge(
    config: &Config,
    nemesis: &Nemesis,
    checker: Value,
    pipeline: PipelineReport,
    replicas: ReplicaReport,
    two_down: (u64, Vec<Value>),
) -> Outcome {
    let record = &nemesis.record;
    let count = |name| anomaly(&checker, name);
    let mut failures = Vec::new();
    let kinds = replicas.duplicates;
    // The client's logged re-sends (crate::nemesis_resends) account for the checker's duplicates
    // only when every stored duplicate is one of them, and for its order breaks only when the
    // stored logs keep each producer's order once they are taken out.
    let resends = kinds.client_resent > 0;
    let explains_duplicates = resends && kinds.failures() == 0 && count("duplicates") == kinds.client_resent;
    let explains_order = resends && replicas.order_breaks_without_resends == 0;
    let explained =
        |name: &str| (name == "duplicates" && explains_duplicates) || (name == "producer_order" && explains_order);
    if checker["valid"] != Value::Bool(true) {
        let mut failing = Vec::new();
        let mut any = false;
        if let Some(anomalies) = checker["anomalies"].as_object() {
            for (name, a) in anomalies {
                if a["count"].as_u64().unwrap_or(0) > 0 {
                    any = true;
                    if !explained(name) {
                        failing.push(format!("{name}: {}", a));
                    }
                }
            }
        }
        if !failing.is_empty() || !any {
            failures.push(format!("the checker found anomalies:\n{}", failing.join("\n")));
        }
    }
    if kinds.failures() > 0 {
        failures.push(format!(
            "stored twice, by producer epoch: {} values within one epoch or from two producers (the broker's \
             de-duplication), {} under an epoch their producer never logged bumping to, {} re-sent by the client \
             after an epoch bump it logged (confluentinc/librdkafka#4953)",
            kinds.within_one_epoch, kinds.resent_unexplained, kinds.client_resent
        ));
    }
    if let Some(problems) = checker["problems"].as_array().filter(|p| !p.is_empty()) {
        failures.push(format!("the workload had problems: {problems:?}"));
    }
    if checker["acked"].as_u64().unwrap_or(0) == 0 {
        failures.push("nothing was acknowledged".into());
    }
    if two_down.0 > 0 {
        failures.push(format!("{} writes acknowledged while two brokers were down: {:?}", two_down.0, two_down.1));
    }
    if pipeline.topic_missing > 0 {
        failures.push(format!(
            "{} pipeline lines the agent's checkpoint covers are not in the topic (lost), e.g. {:?}",
            pipeline.topic_missing, pipeline.topic_missing_examples
        ));
    }
    let mut liveness = Vec::new();
    if pipeline.lost > 0 {
        liveness.push(format!(
            "{} pipeline lines were not delivered by the sink by the end ({} of them still the agent's to \
             send, past its checkpoint), e.g. {:?}",
            pipeline.lost, pipeline.topic_pending, pipeline.missing_examples
        ));
    }
    liveness.extend(pipeline.stop_errors.iter().cloned());
    let mut warnings = Vec::new();
    if config.strict_liveness {
        failures.extend(liveness);
    } else {
        warnings.extend(liveness);
    }
    if pipeline.topic_duplicates > 0 {
        failures.push(format!(
            "{} pipeline lines are in the topic more than once, e.g. {:?}",
            pipeline.topic_duplicates, pipeline.topic_duplicate_examples
        ));
    }
    for divergent in &replicas.divergent {
        failures.push(format!("divergent replicas: {divergent}"));
    }
    let replica_text = if replicas.divergent.is_empty() {
        format!("identical({}x{} partitions)", replicas.replicas, replicas.partitions)
    } else {
        format!("DIVERGENT({} of {} partitions)", replicas.divergent.len(), replicas.partitions)
    };
    let summary_line = format!(
        "nemesis: seed={} faults={} ({}; reassignment ongoing at {} kills) acked={} lost={} duplicated={} \
         client-resends={} inconsistent={} non-monotonic={} skips={} resets={} order={} holes={} group-skips={} group-rewinds={} \
         acked-two-down={} replicas={} pipeline lines={}/{} undelivered={} agent-acked={} topic-missing={} \
         topic-pending={} topic-duplicates={} topic-client-resends={} topic-reread={} redelivered={}",
        config.seed,
        record.total(),
        record.counts_text(),
        record.reassign_in_progress,
        checker["acked"],
        count("lost") + count("lost_read"),
        count("duplicates") - if explains_duplicates { kinds.client_resent } else { 0 },
        kinds.client_resent,
        count("inconsistent_offsets"),
        count("nonmonotonic"),
        count("skips"),
        count("offset_resets"),
        if explains_order { 0 } else { count("producer_order") },
        count("holes"),
        count("group_skips"),
        count("group_rewinds"),
        two_down.0,
        replica_text,
        pipeline.delivered,
        pipeline.written,
        pipeline.lost,
        pipeline.acknowledged,
        pipeline.topic_missing,
        pipeline.topic_pending,
        pipeline.topic_duplicates,
        pipeline.topic_client_resends,
        pipeline.topic_reread,
        pipeline.redelivered,
    );
    let group = &checker["stats"]["group"];
    let detail_line = format!(
        "nemesis detail: group sessions={} (with reads {}) commits={} (ok {}) group-reads={} consumer-reads={} \
         final={} failed-writes={} unanswered={} unacked-present={} longest-ack-gap={:.1}s",
        group["sessions"],
        group["sessions_read"],
        group["commits"],
        group["commits_ok"],
        group["reads"],
        checker["stats"]["read"],
        checker["stats"]["final"],
        checker["failed"],
        checker["indeterminate"],
        checker["stats"]["unacked_present"],
        crate::jepsen::longest_partition_gap(&checker),
    );
    Outcome { seed: config.seed, summary_line, failures, warnings, schedule: record.log.clone(), checker, detail_line }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean_checker() -> Value {
        serde_json::json!({
            "valid": true,
            "acked": 10,
            "problems": [],
            "anomalies": {"lost": {"count": 0}, "duplicates": {"count": 0}},
            "stats": {"group": {"sessions": 2}},
        })
    }

    fn outcome(checker: Value, pipeline: PipelineReport, replicas: ReplicaReport, two_down: u64) -> Outcome {
        let config = Config { faults: 1, duration: Duration::ZERO, seed: 9, strict_liveness: false };
        judge(&config, &Nemesis::new(9, TOPIC, PARTITIONS), checker, pipeline, replicas, (two_down, Vec::new()))
    }

    #[test]
    fn a_clean_run_passes_and_any_anomaly_fails() {
        let replicas = || ReplicaReport { partitions: 9, replicas: 3, ..ReplicaReport::default() };
        let clean = outcome(clean_checker(), PipelineReport::default(), replicas(), 0);
        assert!(clean.failures.is_empty(), "{:?}", clean.failures);
        assert!(clean.summary_line.contains("replicas=identical(3x9 partitions)"), "{}", clean.summary_line);

        let mut lost = clean_checker();
        lost["valid"] = Value::Bool(false);
        lost["anomalies"]["lost"]["count"] = 1.into();
        let failed = outcome(lost, PipelineReport::default(), replicas(), 0);
        assert!(failed.summary_line.contains(" lost=1 "), "{}", failed.summary_line);
        assert_eq!(failed.failures.len(), 1, "{:?}", failed.failures);

        let acked_two_down = outcome(clean_checker(), PipelineReport::default(), replicas(), 3);
        assert_eq!(acked_two_down.failures.len(), 1);

        // A line the agent never got into the topic is lost: always a failure.
        let pipeline = PipelineReport { written: 5, acknowledged: 5, topic_missing: 1, ..PipelineReport::default() };
        assert_eq!(outcome(clean_checker(), pipeline, replicas(), 0).failures.len(), 1);
        // One in the topic that the sink did not deliver is liveness: a warning unless strict.
        let pipeline = PipelineReport { written: 5, delivered: 4, lost: 1, ..PipelineReport::default() };
        let relaxed = outcome(clean_checker(), pipeline.clone(), replicas(), 0);
        assert_eq!((relaxed.failures.len(), relaxed.warnings.len()), (0, 1), "{:?}", relaxed.failures);
        let config = Config { faults: 1, duration: Duration::ZERO, seed: 9, strict_liveness: true };
        let strict =
            judge(&config, &Nemesis::new(9, TOPIC, PARTITIONS), clean_checker(), pipeline, replicas(), (0, Vec::new()));
        assert_eq!(strict.failures.len(), 1);

        let divergent = ReplicaReport { divergent: vec!["nemesis-0: broker 2 has 3 records".into()], ..replicas() };
        let failed = outcome(clean_checker(), PipelineReport::default(), divergent, 0);
        assert!(failed.summary_line.contains("DIVERGENT(1 of 9 partitions)"), "{}", failed.summary_line);
        assert_eq!(failed.failures.len(), 1);
    }

    #[test]
    fn only_the_clients_logged_re_sends_excuse_duplicates_and_order_breaks() {
        let mut checker = clean_checker();
        checker["valid"] = Value::Bool(false);
        checker["anomalies"]["duplicates"]["count"] = 2.into();
        checker["anomalies"]["producer_order"] = serde_json::json!({"count": 1});
        let replicas = |kinds, order_breaks_without_resends| ReplicaReport {
            partitions: 9,
            replicas: 3,
            duplicates: kinds,
            order_breaks_without_resends,
            ..ReplicaReport::default()
        };
        let resent = DuplicateKinds { client_resent: 2, ..DuplicateKinds::default() };
        let passed = outcome(checker.clone(), PipelineReport::default(), replicas(resent, 0), 0);
        assert!(passed.failures.is_empty(), "{:?}", passed.failures);
        assert!(
            passed.summary_line.contains(" duplicated=0 client-resends=2 ")
                && passed.summary_line.contains(" order=0 "),
            "{}",
            passed.summary_line
        );
        // An order break that remains without the re-sends fails.
        let order = outcome(checker.clone(), PipelineReport::default(), replicas(resent, 1), 0);
        assert_eq!(order.failures.len(), 1, "{:?}", order.failures);
        assert!(order.failures[0].contains("producer_order"), "{:?}", order.failures);
        // One duplicate the broker let through fails, and the checker's duplicates with it.
        let broker = DuplicateKinds { client_resent: 1, within_one_epoch: 1, ..DuplicateKinds::default() };
        let failed = outcome(checker.clone(), PipelineReport::default(), replicas(broker, 0), 0);
        assert_eq!(failed.failures.len(), 2, "{:?}", failed.failures);
        assert!(failed.summary_line.contains(" duplicated=2 client-resends=1 "), "{}", failed.summary_line);
        // More duplicates in the reads than the stored re-sends account for fail too.
        let fewer = DuplicateKinds { client_resent: 1, ..DuplicateKinds::default() };
        assert_eq!(outcome(checker, PipelineReport::default(), replicas(fewer, 0), 0).failures.len(), 1);
    }

    #[test]
    fn acknowledgements_inside_two_down_windows_are_counted() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let history = serde_json::json!({"acked": [
            {"value": "p0-1", "time": 100.0}, {"value": "p0-2", "time": 105.0}, {"value": "p0-3", "time": 111.0}
        ]});
        std::fs::write(dir.path().join("history.json"), history.to_string())?;
        let (count, examples) = acked_while_two_down(dir.path(), &[(104.0, 110.0), (200.0, 210.0)])?;
        assert_eq!(count, 1);
        assert_eq!(examples[0]["value"], "p0-2");
        Ok(())
    }

    #[test]
    fn differences_name_the_first_divergent_record() {
        let a: LogRecords = vec![(0, Some("x".into())), (1, Some("y".into()))];
        let b: LogRecords = vec![(0, Some("x".into())), (1, Some("z".into())), (2, None)];
        let text = difference("broker 2", &a, "broker 1", &b);
        assert!(text.contains("first difference at index 1"), "{text}");
        assert!(text.contains("2 records, broker 1 3"), "{text}");
    }
}
