//! Harness for `tests/python/influx2_test_server.py`, a contract server for InfluxDB 2's write API
//! (`POST /api/v2/write`): no InfluxDB 2 package is reachable where these tests run (the Debian
//! InfluxDB is 1.6, without `/api/v2/write`), so the sink's `api = "v2"` is tested against this
//! server, which follows the documented answers (204, 400 for a line that does not parse, 401,
//! 404, 413, 422 for a partial write, 429/503 with `Retry-After`). The script's docstring lists
//! them and its deviations.

use super::http_request;
use crate::{python_bin, python_script, wait_until, LoggedProcess};
use anyhow::{bail, Context};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

/// A running `influx2_test_server.py` on a free port; killed when dropped.
pub struct Influx2Server {
    process: LoggedProcess,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Influx2Server {
    /// Starts the server for organization `org` with `buckets`, accepting `Token <token>`, plus
    /// `extra_args` (e.g. `["--max-body-bytes", "20000"]`); waits (bounded) for its port file.
    pub fn start(org: &str, buckets: &[&str], token: &str, extra_args: &[&str]) -> anyhow::Result<Influx2Server> {
        let dir = tempfile::Builder::new().prefix("millrace-influx2-").tempdir()?;
        let port_file = dir.path().join("port");
        let mut process = LoggedProcess::new(dir.path().join("influx2_test_server.log"));
        let mut command = Command::new(python_bin());
        command.arg(python_script("influx2_test_server.py")).args(["--port", "0", "--port-file"]).arg(&port_file);
        command.args(["--org", org, "--token", token]);
        for bucket in buckets {
            command.args(["--bucket", bucket]);
        }
        command.args(extra_args);
        process.spawn(command)?;
        let mut port = None;
        let mut exit = None;
        let waited = wait_until("the InfluxDB 2 contract server's port file", Duration::from_secs(20), || {
            // Written with a rename once listening: a file that exists is complete.
            port = std::fs::read_to_string(&port_file).ok().and_then(|text| text.trim().parse::<u16>().ok());
            exit = if port.is_none() { process.exited() } else { None };
            port.is_some() || exit.is_some()
        });
        if let Some(status) = exit {
            bail!("influx2_test_server.py exited with {status}; log:\n{}", process.log());
        }
        waited.with_context(|| format!("influx2_test_server.py log:\n{}", process.log()))?;
        let port = port.context("the port file vanished")?;
        Ok(Influx2Server { process, port, _dir: dir })
    }

    /// `http://127.0.0.1:PORT`, the `url` to give a sink.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stored points of `bucket`, each `{"bucket", "measurement", "tags", "fields", "time_ns"}`.
    pub fn points(&self, bucket: &str) -> anyhow::Result<Vec<Value>> {
        let answer = self.test_api("GET", &format!("/_test/points?bucket={bucket}"), b"")?;
        answer["points"].as_array().cloned().with_context(|| format!("no points array in {answer}"))
    }

    /// Counters: `requests_by_status`, `points_written`, `points_dropped`, `precisions`,
    /// `max_lines_in_a_request`.
    pub fn stats(&self) -> anyhow::Result<Value> {
        self.test_api("GET", "/_test/stats", b"")
    }

    /// Fault injection, e.g. `{"throttle_next": 2, "unavailable_next": 1, "retry_after": 1}`.
    pub fn configure(&self, json: &str) -> anyhow::Result<()> {
        self.test_api("POST", "/_test/config", json.as_bytes()).map(drop)
    }

    /// `POST /api/v2/write?QUERY` with `headers`; the status and body, whatever the status.
    pub fn write(&self, query: &str, headers: &[(&str, &str)], body: &[u8]) -> anyhow::Result<(u16, String)> {
        http_request(&format!("127.0.0.1:{}", self.port), "POST", &format!("/api/v2/write?{query}"), headers, body)
    }

    /// The server's log.
    pub fn log(&self) -> String {
        self.process.log()
    }

    fn test_api(&self, method: &str, path: &str, body: &[u8]) -> anyhow::Result<Value> {
        let (status, text) = http_request(&format!("127.0.0.1:{}", self.port), method, path, &[], body)?;
        anyhow::ensure!(status == 200, "{method} {path} answered {status}: {text}");
        serde_json::from_str(&text).with_context(|| format!("{method} {path}: not JSON: {text}"))
    }
}

impl Drop for Influx2Server {
    fn drop(&mut self) {
        self.process.kill9();
    }
}
