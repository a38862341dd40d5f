//! The agent scraping a Prometheus endpoint over HTTPS with a bearer token
//! (`tests/python/https_metrics_server.py`, certificate from a throw-away CA), through
//! `millrace agent --once`.
//!
//! Proves: with `tls.ca_file` and `bearer_token_file` the samples arrive (`up` = 1); a wrong
//! token is refused by the endpoint (`up` = 0, the 401 logged); without the CA the certificate
//! is refused (`up` = 0, the TLS error logged); the token never appears in the output.

use anyhow::Context;
use millrace_tests::pki::TestCa;
use millrace_tests::{millrace_bin, python_bin, python_script, run, wait_until, LoggedProcess};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The HTTPS endpoint; killed when dropped.
struct MetricsServer {
    process: LoggedProcess,
    port: u16,
}

impl MetricsServer {
    fn start(dir: &Path, ca: &TestCa, bearer: &str) -> anyhow::Result<MetricsServer> {
        let cert = ca.localhost("metrics")?;
        let port_file = dir.join("metrics.port");
        let mut process = LoggedProcess::new(dir.join("metrics-server.log"));
        let mut command = Command::new(python_bin());
        command
            .arg(python_script("https_metrics_server.py"))
            .arg("--port-file")
            .arg(&port_file)
            .arg("--tls-cert")
            .arg(&cert.cert)
            .arg("--tls-key")
            .arg(&cert.key)
            .args(["--bearer", bearer]);
        process.spawn(command)?;
        let mut port = None;
        wait_until("the HTTPS metrics server to write its port", Duration::from_secs(20), || {
            port = std::fs::read_to_string(&port_file).ok().and_then(|t| t.trim().parse().ok());
            port.is_some() || process.exited().is_some()
        })?;
        let port = port.with_context(|| format!("the server did not start; log:\n{}", process.log()))?;
        Ok(MetricsServer { process, port })
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.process.kill9();
    }
}

/// Runs `millrace agent --once` with one scrape input whose extra keys are `input_toml`;
/// returns the events printed and the log.
fn scrape_once(dir: &Path, name: &str, url: &str, input_toml: &str) -> anyhow::Result<(Vec<Value>, String)> {
    let config = dir.join(format!("{name}.toml"));
    let toml = format!(
        "[agent]\ndata_dir = {:?}\nhost_name = \"web-tls\"\n\n\
         [[inputs.prometheus]]\nname = \"{name}\"\ntopic = \"metrics\"\nurls = [\"{url}\"]\ntimeout = \"5s\"\n{input_toml}\n",
        dir.join("data").display().to_string()
    );
    std::fs::write(&config, toml)?;
    let bin = millrace_bin().display().to_string();
    let config = config.display().to_string();
    let out = run(&bin, &["agent", "--config", &config, "--once"], None, Duration::from_secs(60))?;
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr).into_owned());
    anyhow::ensure!(out.status.success(), "agent --once failed: {stderr}");
    let events = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    Ok((events, stderr))
}

/// The `up` field of the `prometheus_scrape` point.
fn up(events: &[Value]) -> Option<i64> {
    events.iter().find(|e| e["name"] == "prometheus_scrape").and_then(|e| e["fields"]["up"].as_i64())
}

#[test]
fn scrapes_over_https_with_a_bearer_token() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ca = TestCa::new(&dir.path().join("pki"), "millrace test CA")?;
    let token = "scrape-t0ken-s3cret";
    let server = MetricsServer::start(dir.path(), &ca, token)?;
    let url = format!("https://127.0.0.1:{}/metrics", server.port);
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n"))?;
    let ca_file = ca.ca_cert.display().to_string();

    let (events, log) = scrape_once(
        dir.path(),
        "good",
        &url,
        &format!("bearer_token_file = {:?}\ntls = {{ ca_file = {ca_file:?} }}", token_file.display().to_string()),
    )?;
    assert_eq!(up(&events), Some(1), "{events:#?}\n{log}");
    let sample = events.iter().find(|e| e["name"] == "secure_demo_up").context("the sample")?;
    assert_eq!(sample["tags"]["zone"], "a", "{sample}");
    assert_eq!(sample["tags"]["prometheus.url"], url.as_str(), "{sample}");
    assert!(events.iter().any(|e| e["name"] == "secure_demo_requests_total"), "{events:#?}");

    let (events, log) = scrape_once(
        dir.path(),
        "wrong",
        &url,
        &format!("bearer_token = \"not-the-token\"\ntls = {{ ca_file = {ca_file:?} }}"),
    )?;
    assert_eq!(up(&events), Some(0), "{events:#?}");
    assert!(log.contains("HTTP status 401"), "{log}");

    let (events, log) = scrape_once(
        dir.path(),
        "untrusted",
        &url,
        &format!("bearer_token_file = {:?}", token_file.display().to_string()),
    )?;
    assert_eq!(up(&events), Some(0), "{events:#?}");
    assert!(log.contains("UnknownIssuer"), "{log}");

    let served = server.process.log();
    assert!(served.contains("token accepted") && served.contains("token refused"), "{served}");
    assert!(!log.contains(token), "the token was logged:\n{log}");
    Ok(())
}
