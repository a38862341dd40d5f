//! `millrace demo` as a user runs it: a 3-broker cluster, the agent tailing the generated access
//! log, and the sinks writing Elasticsearch bulk and line-protocol files, then a clean stop with
//! nothing left running. `--secure` the same over SASL_SSL with ACLs: records still flow, the
//! client port refuses plaintext, the agent's credentials cannot read, and the operator sees the
//! agent and both sinks delivering in `millrace top`'s Agents and Sinks views.

use anyhow::{bail, Context};
use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
use millrace_tests::{millrace, millrace_bin, wait_for, wait_or_kill, KafkaConn};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Start-up (up to 90 s for the cluster), the run, the catch-up and the ordered stop.
const DEMO_BOUND: Duration = Duration::from_secs(300);
/// Bound on one kcat or CLI call against the running demo.
const CLIENT_BOUND: Duration = Duration::from_secs(30);

/// Each demo is three brokers, an agent and a sink; several at once on a two-core machine only
/// measure the machine. The tests of this file take turns.
static ONE_DEMO_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_demo_at_a_time() -> MutexGuard<'static, ()> {
    // A failed test's panic poisons the lock; the next demo may still run.
    ONE_DEMO_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Starts `millrace demo ARGS…` with stdout and stderr in `<tmp>/demo.out`.
fn start_demo(tmp: &Path, args: &[&str]) -> anyhow::Result<(Child, PathBuf)> {
    let output = tmp.join("demo.out");
    let file = std::fs::File::create(&output)?;
    let child = Command::new(millrace_bin())
        .arg("demo")
        .args(args)
        // The default demo directory is made in the temporary directory: the test's own.
        .env("TMPDIR", tmp)
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .context("starting millrace demo")?;
    Ok((child, output))
}

/// Waits (bounded) for the demo to exit; returns its output. Fails unless it exited 0.
fn wait_for_exit(child: &mut Child, output: &Path) -> anyhow::Result<String> {
    let status = wait_or_kill(child, Instant::now() + DEMO_BOUND)?;
    let text = std::fs::read_to_string(output).unwrap_or_default();
    let Some(status) = status else { bail!("the demo did not exit within {DEMO_BOUND:?}; output:\n{text}") };
    anyhow::ensure!(status.success(), "the demo exited with {status}; output:\n{text}");
    Ok(text)
}

/// Processes whose command line mentions `dir` (every child's `--config` is in it).
fn processes_in(dir: &Path) -> anyhow::Result<String> {
    let out = Command::new("pgrep").arg("-fa").arg(dir.as_os_str()).output().context("running pgrep")?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The value of `key` in the banner (`  key   value`).
fn banner(output: &str, key: &str) -> Option<String> {
    output.lines().find_map(|l| l.trim_start().strip_prefix(key)).map(|v| v.trim().to_string())
}

/// Waits for the running demo's first status line; returns the output so far. On failure the
/// demo is killed.
fn wait_for_status(child: &mut Child, output: &Path) -> anyhow::Result<String> {
    let read = || std::fs::read_to_string(output).unwrap_or_default();
    let outcome = wait_for("the demo's first status line", Duration::from_secs(150), || {
        anyhow::ensure!(child.try_wait()?.is_none(), "the demo exited early; output:\n{}", read());
        Ok(read().lines().any(|l| l.starts_with('[')))
    });
    if let Err(e) = outcome {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e.context(read()));
    }
    Ok(read())
}

/// Checks that every line of `<dir>/access.log` became exactly one bulk document in the output
/// file, identified by its origin; returns how many lines there were.
fn each_line_became_one_document(dir: &Path) -> anyhow::Result<usize> {
    let access = std::fs::read(dir.join("access.log"))?;
    let mut lines: Vec<(u64, &str)> = Vec::new();
    let mut offset = 0u64;
    for line in access.split_inclusive(|b| *b == b'\n') {
        anyhow::ensure!(line.ends_with(b"\n"), "the generator left a partial line at offset {offset}");
        lines.push((offset, std::str::from_utf8(&line[..line.len() - 1])?));
        offset += line.len() as u64;
    }
    let bulk = std::fs::read_to_string(dir.join("out/elasticsearch-bulk.ndjson"))?;
    let bulk_lines: Vec<&str> = bulk.lines().collect();
    assert_eq!(bulk_lines.len() % 2, 0, "bulk actions and documents come in pairs");
    let mut by_offset: HashMap<u64, (String, String)> = HashMap::new();
    for pair in bulk_lines.chunks(2) {
        let action: Value = serde_json::from_str(pair[0]).with_context(|| format!("action line {}", pair[0]))?;
        let doc: Value = serde_json::from_str(pair[1]).with_context(|| format!("document {}", pair[1]))?;
        let id = action["index"]["_id"].as_str().with_context(|| format!("no _id in {}", pair[0]))?.to_string();
        assert!(action["index"]["_index"].as_str().is_some_and(|i| i.starts_with("logs-")), "{}", pair[0]);
        let at = doc["log"]["offset"].as_u64().with_context(|| format!("no log.offset in {}", pair[1]))?;
        assert!(id.ends_with(&format!(":{at}")), "_id {id} is not the line's origin (offset {at})");
        // The demo's agent parses its lines with the nginx module: the line as read is kept in
        // event.original, and the document carries its fields.
        let message = doc["event"]["original"].as_str().unwrap_or_default().to_string();
        assert_eq!(doc["event"]["dataset"], "nginx.access", "parsed by the module: {}", pair[1]);
        assert!(doc["http"]["response"]["status_code"].is_u64(), "the status is a number: {}", pair[1]);
        assert!(doc["source"]["ip"].is_string() && doc["url"]["path"].is_string(), "{}", pair[1]);
        assert!(doc.get("tags").is_none(), "no parse failure: {}", pair[1]);
        if let Some((earlier, _)) = by_offset.insert(at, (id.clone(), message)) {
            bail!("the line at offset {at} was written twice ({earlier} and {id})");
        }
    }
    for (at, line) in &lines {
        let (_, message) = by_offset.get(at).with_context(|| format!("the line at offset {at} is missing: {line}"))?;
        assert_eq!(message, line, "document of offset {at}");
    }
    assert_eq!(by_offset.len(), lines.len(), "documents that match no line");
    Ok(lines.len())
}

#[test]
fn demo_ships_every_line_and_host_metrics_then_stops_cleanly() -> anyhow::Result<()> {
    let _turn = one_demo_at_a_time();
    let tmp = tempfile::Builder::new().prefix("millrace-demo-test-").tempdir()?;
    let dir = tmp.path().join("demo");
    let dir_arg = dir.display().to_string();
    let args = ["--no-top", "--duration", "40", "--generate-for", "20", "--rate", "200", "--dir", &dir_arg];
    let (mut child, output) = start_demo(tmp.path(), &args)?;
    let text = wait_for_exit(&mut child, &output)?;
    let dir = std::fs::canonicalize(&dir)?;

    // Nothing of the demo runs any more, and the banner's processes are gone.
    let left = processes_in(&dir)?;
    assert!(left.is_empty(), "processes left running:\n{left}");
    let processes = banner(&text, "processes").with_context(|| format!("no processes line in:\n{text}"))?;
    for entry in processes.split(", ") {
        let pid = entry.rsplit(' ').next().unwrap_or_default();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&cmdline).contains(&dir_arg), "{entry} still runs");
    }

    // The three brokers came up and formed the cluster.
    for id in 1..=3 {
        let log = std::fs::read_to_string(dir.join(format!("logs/broker-{id}.log")))?;
        assert!(log.contains("broker ready"), "broker {id} never got ready:\n{log}");
    }
    let status: Vec<&str> = text.lines().filter(|l| l.starts_with('[')).collect();
    assert!(status.iter().any(|l| l.contains("brokers 1:up 2:up 3:up")), "{text}");
    // Once generation stopped, the logs group caught up while the demo still ran.
    assert!(status.iter().any(|l| l.contains("(stopped)") && l.contains("lag demo-logs 0,")), "{text}");
    let last = text.lines().find(|l| l.starts_with("final ")).with_context(|| format!("no final line:\n{text}"))?;
    assert!(last.contains("lag demo-logs 0, demo-metrics 0"), "{last}");

    // Every generated line became exactly one bulk document, identified by its origin.
    let lines = each_line_became_one_document(&dir)?;
    assert!(lines >= 3000, "only {lines} lines generated in 20 s at 200/s");

    // Host metrics arrived as line-protocol points.
    let points = std::fs::read_to_string(dir.join("out/metrics.lp"))?;
    let measurements: Vec<&str> = points.lines().filter_map(|l| l.split([',', ' ']).next()).collect();
    for wanted in ["cpu", "mem"] {
        assert!(measurements.contains(&wanted), "no {wanted} point in:\n{points}");
    }
    for point in points.lines() {
        let timestamp = point.rsplit(' ').next().unwrap_or_default();
        assert!(timestamp.len() == 13 && timestamp.bytes().all(|b| b.is_ascii_digit()), "{point}");
    }

    // The configurations the demo wrote pass the components' own checks.
    for (component, file) in [("broker", "broker-1.toml"), ("agent", "agent.toml"), ("sink", "sink.toml")] {
        let out = millrace(&[component, "--config", &dir.join(file).display().to_string(), "--check-config"])?;
        assert!(out.contains("configuration is valid"), "{file}: {out}");
    }
    Ok(())
}

#[test]
fn demo_in_a_temporary_directory_stops_on_sigterm_and_removes_it() -> anyhow::Result<()> {
    let _turn = one_demo_at_a_time();
    let tmp = tempfile::Builder::new().prefix("millrace-demo-test-").tempdir()?;
    let (mut child, output) = start_demo(tmp.path(), &["--no-top", "--rate", "50"])?;
    let started = wait_for_status(&mut child, &output)?;
    let dir = PathBuf::from(banner(&started, "directory").unwrap_or_default().split(" (").next().unwrap_or_default());
    assert!(dir.starts_with(tmp.path()) && dir.is_dir(), "demo directory {dir:?}; output:\n{started}");
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
    assert!(status.success(), "kill -TERM failed");
    let text = wait_for_exit(&mut child, &output)?;
    assert!(text.contains("final "), "{text}");
    assert!(!dir.exists(), "the temporary demo directory {} was not removed:\n{text}", dir.display());
    let left = processes_in(&dir)?;
    assert!(left.is_empty(), "processes left running:\n{left}");
    Ok(())
}

/// kcat's options to log in to the demo as `user` (its password from the demo's secrets).
fn kcat_login(dir: &Path, user: &str) -> anyhow::Result<Vec<String>> {
    let password = std::fs::read_to_string(dir.join(format!("secrets/{user}.password")))?;
    let options = [
        "security.protocol=SASL_SSL".to_string(),
        "sasl.mechanisms=SCRAM-SHA-512".to_string(),
        format!("sasl.username={user}"),
        format!("sasl.password={}", password.trim_end()),
        format!("ssl.ca.location={}", dir.join("pki/ca.pem").display()),
    ];
    Ok(millrace_tests::kcat_properties(options))
}

/// `kcat -b BROKER <login as user> ARGS…`.
fn kcat_as(dir: &Path, user: &str, broker: &str, args: &[&str]) -> anyhow::Result<String> {
    millrace_tests::kcat(broker, &kcat_login(dir, user)?, args, None, CLIENT_BOUND)
}

/// The topic names of a `kcat -L -J` listing.
fn listed_topics(listing: &str) -> anyhow::Result<Vec<String>> {
    let metadata: Value = serde_json::from_str(listing).with_context(|| format!("kcat -L -J printed {listing}"))?;
    let topics = metadata["topics"].as_array().with_context(|| format!("no topics in {listing}"))?;
    let mut names: Vec<String> = topics.iter().filter_map(|t| t["topic"].as_str().map(str::to_string)).collect();
    names.sort();
    Ok(names)
}

/// What the running secured demo must refuse and allow, asked on broker `first`'s client port.
fn secured_access_is_least_privilege(dir: &Path, first: &str) -> anyhow::Result<()> {
    let operator = dir.join("operator.properties").display().to_string();
    // The operator's properties (the banner's way in) reach the client port and see every topic.
    let listed = millrace(&["topic", "list", "--bootstrap", first, "--command-config", &operator])?;
    for topic in ["logs", "metrics", "dead-letters"] {
        assert!(listed.lines().any(|l| l.trim() == topic), "the operator does not see {topic}:\n{listed}");
    }

    // The same port, in plaintext: neither ApiVersions nor then Metadata is answered.
    let mut plain = KafkaConn::connect_addr(first, Duration::from_secs(10))?;
    let versions = plain.request(3, &ApiVersionsRequest::default());
    let metadata = plain.request(9, &MetadataRequest::default());
    assert!(versions.is_err() && metadata.is_err(), "a plaintext client was answered: {versions:?} {metadata:?}");

    // The agent logs in and sees only its topics, and may not read them.
    let agent_sees = listed_topics(&kcat_as(dir, "agent", first, &["-L", "-J"])?)?;
    assert_eq!(agent_sees, ["__millrace_status", "logs", "metrics"]);
    let read = kcat_as(dir, "agent", first, &["-C", "-t", "logs", "-o", "beginning", "-c", "1", "-e", "-q"]);
    match read {
        Ok(out) => bail!("the agent's credentials read logs:\n{out}"),
        Err(e) => {
            let e = format!("{e:#}");
            assert!(e.contains("Topic authorization failed"), "the agent's read failed otherwise:\n{e}");
        }
    }
    // The sink's credentials read the same topic (so the refusal above is the agent's own).
    let records = kcat_as(dir, "sink", first, &["-C", "-t", "logs", "-o", "beginning", "-c", "3", "-e", "-q"])?;
    assert_eq!(records.lines().count(), 3, "the sink read:\n{records}");
    Ok(())
}

/// The demo's agent and both sinks in `millrace top`'s Agents and Sinks views, delivering (their
/// status records, published under their least-privilege users), as the operator sees them.
fn pipeline_in_top(dir: &Path, first: &str) -> anyhow::Result<()> {
    let operator = dir.join("operator.properties").display().to_string();
    let top = |view: &str| {
        millrace(&[
            "top",
            "--bootstrap",
            first,
            "--command-config",
            &operator,
            "--once",
            "--view",
            view,
            "--width",
            "200",
        ])
    };
    let ok = |screen: &str, needle: &str| screen.lines().any(|l| l.contains(needle) && l.contains(" ok "));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (agents, sinks) = (top("agents")?, top("sinks")?);
        let agent_ok = agents.lines().any(|l| l.contains(" ok ") && l.contains("0.1.0"));
        if agent_ok && ok(&sinks, "│logs ") && ok(&sinks, "│metrics ") {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the demo's pipeline is not all ok in millrace top:\n{agents}\n{sinks}");
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

#[test]
fn secure_demo_ships_every_line_over_sasl_ssl_with_least_privilege() -> anyhow::Result<()> {
    let _turn = one_demo_at_a_time();
    let tmp = tempfile::Builder::new().prefix("millrace-demo-test-").tempdir()?;
    let dir = tmp.path().join("demo");
    let dir_arg = dir.display().to_string();
    let args = ["--secure", "--no-top", "--duration", "45", "--generate-for", "15", "--rate", "100", "--dir", &dir_arg];
    let (mut child, output) = start_demo(tmp.path(), &args)?;
    let started = wait_for_status(&mut child, &output)?;
    let dir = std::fs::canonicalize(&dir)?;
    let bootstrap = banner(&started, "brokers").with_context(|| format!("no brokers line in:\n{started}"))?;
    let first = bootstrap.split([',', ' ']).next().unwrap_or_default().to_string();
    assert!(started.contains("--command-config"), "the banner does not say how to log in:\n{started}");
    let checked = secured_access_is_least_privilege(&dir, &first).and_then(|()| pipeline_in_top(&dir, &first));
    if checked.is_err() {
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    }
    let text = wait_for_exit(&mut child, &output)?;
    checked.with_context(|| format!("demo output:\n{text}"))?;

    // End to end over SASL_SSL and ACLs: every generated line, once; the groups caught up.
    let lines = each_line_became_one_document(&dir)?;
    assert!(lines >= 1000, "only {lines} lines generated in 15 s at 100/s");
    let last = text.lines().find(|l| l.starts_with("final ")).with_context(|| format!("no final line:\n{text}"))?;
    assert!(last.contains("brokers 1:up 2:up 3:up") && last.contains("lag demo-logs 0, demo-metrics 0"), "{last}");
    let left = processes_in(&dir)?;
    assert!(left.is_empty(), "processes left running:\n{left}");

    // Keys and passwords are their owner's only, and no password shows in any log or output.
    use std::os::unix::fs::PermissionsExt;
    let mut private: Vec<PathBuf> =
        std::fs::read_dir(dir.join("secrets"))?.map(|e| Ok(e?.path())).collect::<anyhow::Result<_>>()?;
    for entry in std::fs::read_dir(dir.join("pki"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "key") {
            private.push(path);
        }
    }
    private.push(dir.join("operator.properties"));
    assert!(private.len() >= 3 + 5, "secrets and keys: {private:?}");
    for path in &private {
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
    let mut logs = vec![text];
    for entry in std::fs::read_dir(dir.join("logs"))? {
        logs.push(std::fs::read_to_string(entry?.path())?);
    }
    for user in ["agent", "sink", "operator"] {
        let password = std::fs::read_to_string(dir.join(format!("secrets/{user}.password")))?;
        let password = password.trim_end();
        assert!(password.len() >= 32, "{user}'s password is {} characters", password.len());
        assert!(!logs.iter().any(|log| log.contains(password)), "{user}'s password is in a log");
    }
    Ok(())
}
