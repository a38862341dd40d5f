//! Harness for `tests/python/es_test_server.py`, a test double of Elasticsearch 8's `_bulk` API.
//!
//! No real Elasticsearch can be installed where these tests run, so sink tests talk to this
//! server instead. It follows the documented `_bulk` contract (NDJSON bodies, gzip, per-item
//! results and errors in request order, version conflicts, dynamic-mapping conflicts, data
//! streams, whole-request 400/401/406/413/429/503 answers) and adds, under `/_test/`, fault
//! injection (`configure`) and inspection of what was stored (`docs`, `stats`). The module
//! docstring of the Python script lists its options and its known deviations from Elasticsearch.
//! [`EsTestServer::start_https`] serves HTTPS with a certificate of a test CA, as Elasticsearch 8
//! does by default. [`EsTestServer::start_nodes`] runs several nodes of one cluster (one store);
//! [`EsTestServer::stop_node`] closes a node's listener so connecting to it is refused, and
//! [`EsTestServer::start_node`] opens it again on the same port with every document kept. The
//! `/_test/` calls go to a separate control port that stays up meanwhile.

use crate::https::{exchange, TlsClient};
use crate::pki::CertFiles;
use crate::{python_bin, python_script, wait_until, LoggedProcess};
use anyhow::{bail, Context};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A running `es_test_server.py` on a free port; killed when dropped.
pub struct EsTestServer {
    process: LoggedProcess,
    port: u16,
    /// The plain-HTTP listener of `/_test/`, up while nodes stop.
    control_port: u16,
    /// Every node's port; the first is `port`.
    node_ports: Vec<u16>,
    /// Set when it serves HTTPS: the helpers trust its CA.
    tls: Option<TlsClient>,
    _dir: tempfile::TempDir,
}

impl EsTestServer {
    /// Starts the server over HTTPS with `cert` (signed by the CA in `ca_file`, which the
    /// helpers trust), plus `extra_args` as for [`EsTestServer::start`].
    pub fn start_https(cert: &CertFiles, ca_file: &Path, extra_args: &[&str]) -> anyhow::Result<EsTestServer> {
        let (cert_path, key_path) = (cert.cert.display().to_string(), cert.key.display().to_string());
        let mut args = vec!["--tls-cert", &cert_path, "--tls-key", &key_path];
        args.extend_from_slice(extra_args);
        let mut server = EsTestServer::start(&args)?;
        server.tls = Some(TlsClient::trusting(ca_file)?);
        Ok(server)
    }

    /// Starts the server with `extra_args` (e.g. `["--basic", "elastic:changeme"]`,
    /// `["--reject-every", "3"]`) and waits (bounded) until it has written its port file.
    pub fn start(extra_args: &[&str]) -> anyhow::Result<EsTestServer> {
        EsTestServer::start_nodes(1, extra_args)
    }

    /// Starts `nodes` nodes of one cluster (they share documents, settings and counters).
    pub fn start_nodes(nodes: usize, extra_args: &[&str]) -> anyhow::Result<EsTestServer> {
        let dir = tempfile::Builder::new().prefix("millrace-es-").tempdir()?;
        let port_file = dir.path().join("port");
        let control_port_file = dir.path().join("control-port");
        let mut process = LoggedProcess::new(dir.path().join("es_test_server.log"));
        let mut command = Command::new(python_bin());
        command
            .arg(python_script("es_test_server.py"))
            .args(["--port", "0", "--port-file"])
            .arg(&port_file)
            .arg("--control-port-file")
            .arg(&control_port_file)
            .args(["--nodes", &nodes.to_string()])
            .args(extra_args);
        process.spawn(command)?;
        // The server writes the port file with a rename once it listens, so a file that exists is
        // complete; parsing still guards against anything unexpected in it.
        let mut port = None;
        let mut exit = None;
        let waited =
            wait_until("the Elasticsearch test server to write its port file", Duration::from_secs(20), || {
                port = std::fs::read_to_string(&port_file).ok().and_then(|text| text.trim().parse::<u16>().ok());
                if port.is_some() {
                    return true;
                }
                exit = process.exited();
                exit.is_some()
            });
        if let Some(status) = exit {
            bail!("es_test_server.py exited with {status} before listening; log:\n{}", process.log());
        }
        waited.with_context(|| format!("es_test_server.py log:\n{}", process.log()))?;
        let port = port.context("the port file vanished")?;
        // Written before the port file.
        let control_port = std::fs::read_to_string(&control_port_file)
            .context("reading the control port file")?
            .trim()
            .parse::<u16>()
            .context("parsing the control port file")?;
        let mut server = EsTestServer { process, port, control_port, node_ports: vec![port], tls: None, _dir: dir };
        let described = server.expect_ok("GET", "/_test/nodes", b"")?;
        server.node_ports = described["nodes"]
            .as_array()
            .map(|nodes| {
                nodes.iter().filter_map(|n| n["port"].as_u64()).filter_map(|p| u16::try_from(p).ok()).collect()
            })
            .unwrap_or_default();
        anyhow::ensure!(server.node_ports.len() == nodes, "GET /_test/nodes: {described}");
        Ok(server)
    }

    /// The URL of node `n` (0 is [`EsTestServer::url`]).
    pub fn node_url(&self, n: usize) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.node_ports.get(n).copied().unwrap_or(self.port))
    }

    /// Closes node `n`'s listener and cuts its connections: connecting to its port is refused
    /// until [`EsTestServer::start_node`].
    pub fn stop_node(&self, n: usize) -> anyhow::Result<()> {
        let answer = self.expect_ok("POST", &format!("/_test/nodes/{n}/stop"), b"")?;
        anyhow::ensure!(answer["listening"] == false, "node {n} still listening: {answer}");
        Ok(())
    }

    /// Opens node `n`'s listener again, on the same port, with the cluster's data as it was.
    pub fn start_node(&self, n: usize) -> anyhow::Result<()> {
        let answer = self.expect_ok("POST", &format!("/_test/nodes/{n}/start"), b"")?;
        anyhow::ensure!(answer["listening"] == true, "node {n} not listening: {answer}");
        Ok(())
    }

    /// One counter of [`EsTestServer::stats`] (a path like `items_by_status/409`), 0 when absent.
    pub fn counter(&self, path: &str) -> anyhow::Result<u64> {
        let stats = self.stats()?;
        Ok(path.split('/').fold(&stats, |value, key| &value[key]).as_u64().unwrap_or(0))
    }

    /// `http://127.0.0.1:PORT` (`https://` when started with TLS), the URL to give a sink.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stored documents in order of first write, each `{"index", "data_stream", "id", "version",
    /// "seq_no", "source"}`; `index` may be a name, data stream, comma list or wildcard pattern.
    pub fn docs(&self, index: Option<&str>) -> anyhow::Result<Vec<Value>> {
        let path = match index {
            Some(index) => format!("/_test/docs?index={}", percent_encode(index)),
            None => "/_test/docs".to_string(),
        };
        let body = self.expect_ok("GET", &path, b"")?;
        match body.get("docs") {
            Some(Value::Array(docs)) => Ok(docs.clone()),
            _ => bail!("GET {path}: no docs array in {body}"),
        }
    }

    /// The server's counters: `bulk_requests`, `items`, `items_by_status`, `rejected_requests_429`,
    /// `rejected_items_429`, `down_503`, `too_large_413`, `unauthorized_401`, `gzip_requests`,
    /// `max_items_in_a_request`, `bytes_received`, `bytes_decompressed`, `requests`,
    /// `bulk_requests_by_node`, `injected_items_500`, `injected_items_503`, `forbidden_items_403`,
    /// `blocked_items_403`, `dropped_responses`, `dropped_items`.
    pub fn stats(&self) -> anyhow::Result<Value> {
        self.expect_ok("GET", "/_test/stats", b"")
    }

    /// Changes fault injection at run time, e.g. `{"reject_every": 3}`, `{"down": true}`,
    /// `{"item_429_every": 2, "latency_ms": 50}`, `{"max_body_bytes": 1000}`, `{"strict_types": true}`,
    /// `{"legacy_parsing_errors": true}` (mapping failures named `mapper_parsing_exception`, as before
    /// Elasticsearch 8.8, instead of `document_parsing_exception`), `{"item_503_every": 3}`,
    /// `{"forbidden_indices": ["secret-*"]}`, `{"drop_response_next": 2}`.
    pub fn configure(&self, json: &str) -> anyhow::Result<()> {
        self.expect_ok("POST", "/_test/config", json.as_bytes()).map(drop)
    }

    /// Forgets documents, indices, mappings, data streams and counters (settings stay).
    pub fn reset(&self) -> anyhow::Result<()> {
        self.expect_ok("POST", "/_test/reset", b"").map(drop)
    }

    /// POSTs an NDJSON body to `/_bulk` and returns the parsed 200 response.
    pub fn bulk(&self, ndjson: &str) -> anyhow::Result<Value> {
        self.expect_ok("POST", "/_bulk", ndjson.as_bytes())
    }

    /// One HTTP/1.1 request with a JSON/NDJSON body (`Content-Type: application/x-ndjson`);
    /// returns the status and the body, whatever the status.
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> anyhow::Result<(u16, String)> {
        let addr = format!("127.0.0.1:{}", self.port);
        http_exchange(&addr, self.tls.as_ref(), method, path, body)
    }

    /// The server's log: one line per request.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// A `/_test/` call on the control port, else an Elasticsearch call on node 0.
    fn expect_ok(&self, method: &str, path: &str, body: &[u8]) -> anyhow::Result<Value> {
        let (status, text) = if path.starts_with("/_test/") {
            http_exchange(&format!("127.0.0.1:{}", self.control_port), None, method, path, body)?
        } else {
            self.request(method, path, body)?
        };
        if status != 200 {
            bail!("{method} {path} answered {status}: {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("{method} {path}: answer is not JSON: {text}"))
    }
}

/// One HTTP/1.1 request with a JSON/NDJSON body to `addr`; the status and the body, whatever the status.
fn http_exchange(
    addr: &str,
    tls: Option<&TlsClient>,
    method: &str,
    path: &str,
    body: &[u8],
) -> anyhow::Result<(u16, String)> {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    let response =
        exchange(addr, tls, &request, Duration::from_secs(30)).with_context(|| format!("{method} {path}"))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .with_context(|| format!("{method} {path}: no HTTP status in {head:?}"))?;
    Ok((status, body.to_string()))
}

impl Drop for EsTestServer {
    fn drop(&mut self) {
        self.process.kill9();
    }
}

/// Percent-encodes everything but unreserved characters and the `,`/`*` of index expressions.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b',' | b'*' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
