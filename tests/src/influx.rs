//! A private InfluxDB 1.x for tests and benchmarks: `influxd` from the Debian package `influxdb`
//! (1.6), run with a generated config in a temporary directory, on free loopback ports, with its
//! output in a log file. The packaged service is never used. The helpers speak HTTP/1.1 over
//! `std::net::TcpStream` (or TLS over it, [`crate::https`]), so the tests crate needs no HTTP
//! client. [`InfluxProcess::start_https`] runs it behind TLS with authentication and an admin.

pub mod v2;

use crate::https::{exchange, TlsClient};
use crate::pki::CertFiles;
use crate::{free_port, wait_until, LoggedProcess};
use anyhow::{bail, Context};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Start-up bound: well under a second on an empty data directory, longer when a big benchmark's
/// WAL is replayed after kill -9.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// influxd waits up to 30 s for its services to close on SIGTERM, then exits anyway.
const STOP_TIMEOUT: Duration = Duration::from_secs(40);

/// A running `influxd`; killed, and its directory removed, when dropped.
pub struct InfluxProcess {
    process: LoggedProcess,
    /// HTTP API port on 127.0.0.1 (kept across restarts).
    pub http_port: u16,
    /// RPC (backup/restore) port on 127.0.0.1; a free port, so parallel instances do not all
    /// want the default 8088.
    pub rpc_port: u16,
    /// The temporary directory: `influxdb.conf`, `influxd.log`, `meta/`, `data/`, `wal/`.
    pub dir: PathBuf,
    bin: PathBuf,
    config_path: PathBuf,
    http_toml: String,
    /// Set when it serves HTTPS: the helpers trust its CA.
    tls: Option<TlsClient>,
    /// The admin user the helpers authenticate as (`u`/`p` parameters) when auth is enabled.
    admin: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl InfluxProcess {
    /// Starts influxd in a fresh temporary directory and waits until it answers `GET /ping`.
    pub fn start() -> anyhow::Result<InfluxProcess> {
        InfluxProcess::start_with_http("")
    }

    /// Like [`InfluxProcess::start`], with `http_toml` (`key = value` lines) added to the `[http]`
    /// table, e.g. `max-body-size = 1000` to get 413 answers.
    pub fn start_with_http(http_toml: &str) -> anyhow::Result<InfluxProcess> {
        InfluxProcess::start_inner(http_toml, None)
    }

    /// Starts influxd serving HTTPS only with `cert` (signed by the CA in `ca_file`, which the
    /// helpers trust) and `auth-enabled = true`, then creates the admin user `admin` (allowed
    /// without credentials while no user exists, as on a fresh install); the helpers then query
    /// as it. Writes need credentials: the admin's, or a user made with [`InfluxProcess::query`].
    pub fn start_https(cert: &CertFiles, ca_file: &Path, admin: (&str, &str)) -> anyhow::Result<InfluxProcess> {
        let http_toml = format!(
            "  https-enabled = true\n  https-certificate = {:?}\n  https-private-key = {:?}\n  auth-enabled = true\n",
            cert.cert.display().to_string(),
            cert.key.display().to_string()
        );
        let mut influx = InfluxProcess::start_inner(&http_toml, Some(TlsClient::trusting(ca_file)?))?;
        let (user, password) = admin;
        let statement =
            format!("CREATE USER {} WITH PASSWORD {} WITH ALL PRIVILEGES", quote_ident(user), quote_string(password));
        influx.post_query(None, &statement).context("creating the admin user")?;
        influx.admin = Some((user.to_string(), password.to_string()));
        Ok(influx)
    }

    fn start_inner(http_toml: &str, tls: Option<TlsClient>) -> anyhow::Result<InfluxProcess> {
        let bin = influxd_bin()?;
        let tmp = tempfile::Builder::new().prefix("millrace-influx-").tempdir()?;
        let dir = tmp.path().to_path_buf();
        let mut influx = InfluxProcess {
            process: LoggedProcess::new(dir.join("influxd.log")),
            http_port: 0,
            rpc_port: 0,
            config_path: dir.join("influxdb.conf"),
            dir,
            bin,
            http_toml: http_toml.to_string(),
            tls,
            admin: None,
            _dir: tmp,
        };
        // A port found free can be taken by another test before influxd binds it: retry once.
        let mut attempts = 0;
        loop {
            attempts += 1;
            influx.http_port = free_port();
            influx.rpc_port = free_port();
            while influx.rpc_port == influx.http_port {
                influx.rpc_port = free_port();
            }
            std::fs::write(&influx.config_path, influx.config())?;
            match influx.spawn() {
                Ok(()) => return Ok(influx),
                Err(e) if attempts < 2 && port_taken(&influx.process.fresh_log()) => {
                    eprintln!("retrying influxd start on other ports: {e:#}");
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The generated config. influxd ignores unknown keys silently, so every key here was checked
    /// against the output of `influxd config` (1.6.7~rc0).
    fn config(&self) -> String {
        let path = |name: &str| format!("{:?}", self.dir.join(name).display().to_string());
        format!(
            r#"# Generated by millrace-tests (tests/src/influx.rs) for one private test instance.
# Debian's build names the usage-reporting switch `reporting-enabled`, upstream 1.x names it
# `reporting-disabled`; influxd ignores keys it does not know, so both are set.
reporting-enabled = false
reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"

[meta]
  dir = {meta}

[data]
  dir = {data}
  wal-dir = {wal}
  # The HTTP access log already shows each query.
  query-log-enabled = false

[monitor]
  # No _internal database: the server holds only what the test wrote.
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http}"
  # One access-log line per request with its status: shows what a sink sent.
  log-enabled = true
{http_toml}

[logging]
  # Not "warn": start-up waits for the info line "Listening on HTTP".
  level = "info"

[[graphite]]
  enabled = false

[[collectd]]
  enabled = false

[[opentsdb]]
  enabled = false

[[udp]]
  enabled = false
"#,
            rpc = self.rpc_port,
            meta = path("meta"),
            data = path("data"),
            wal = path("wal"),
            http = self.http_port,
            http_toml = self.http_toml,
        )
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let mut command = Command::new(&self.bin);
        command.arg("-config").arg(&self.config_path);
        // INFLUXDB_* variables override the config file: keep the caller's out.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("INFLUXDB_") {
                command.env_remove(key);
            }
        }
        self.process.spawn(command)?;
        let addr = self.http_addr();
        // `msg="Listening on HTTP" … addr=127.0.0.1:PORT https=false`: the space keeps port 80 from
        // matching 8086.
        let listening = format!("addr={addr} ");
        let mut exit = None;
        let ready = wait_until(&format!("influxd to answer GET /ping on {addr}"), START_TIMEOUT, || {
            // The log line proves that this influxd bound the port, so the 204 cannot come from
            // another process holding it.
            let bound =
                self.process.fresh_log().lines().any(|l| l.contains("Listening on HTTP") && l.contains(&listening));
            if bound && self.ping() {
                return true;
            }
            exit = self.process.exited();
            exit.is_some()
        });
        if let Some(status) = exit {
            bail!("influxd exited with {status} during start-up; log tail:\n{}", self.fresh_log_tail(30));
        }
        if let Err(e) = ready {
            self.process.kill9();
            bail!("{e}; log tail:\n{}", self.fresh_log_tail(30));
        }
        Ok(())
    }

    /// `127.0.0.1:PORT` of the HTTP API.
    pub fn http_addr(&self) -> String {
        format!("127.0.0.1:{}", self.http_port)
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS), the URL a sink is configured with.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.http_addr())
    }

    /// True when `GET /ping` answers 204 within 2 s (false while stopped, killed or SIGSTOPped).
    pub fn ping(&self) -> bool {
        let answer =
            request_over(&self.http_addr(), self.tls.as_ref(), "GET", "/ping", &[], b"", Duration::from_secs(2));
        matches!(answer, Ok((204, _)))
    }

    /// The admin's `u`/`p` query parameters when auth is enabled.
    fn credentials(&self) -> Vec<(&str, &str)> {
        self.admin.as_ref().map(|(u, p)| vec![("u", u.as_str()), ("p", p.as_str())]).unwrap_or_default()
    }

    /// `CREATE DATABASE "name"` (a no-op when it exists).
    pub fn create_database(&self, name: &str) -> anyhow::Result<()> {
        self.post_query(None, &format!("CREATE DATABASE {}", quote_ident(name))).map(drop)
    }

    /// `POST /write?db=DB&precision=PRECISION` with a line-protocol body. Returns the status and
    /// body whatever they are (204; 400 with `partial write: …`; 404 `database not found`; 413),
    /// so that tests can check how a sink's batch was answered; fails only when there is no
    /// answer. An empty `precision` means influxd's default, nanoseconds.
    pub fn write(&self, db: &str, precision: &str, body: impl AsRef<[u8]>) -> anyhow::Result<(u16, String)> {
        let mut params = vec![("db", db)];
        if !precision.is_empty() {
            params.push(("precision", precision));
        }
        params.extend(self.credentials());
        let path = format!("/write?{}", form_encode(&params));
        let headers = [("Content-Type", "text/plain; charset=utf-8")];
        request_over(
            &self.http_addr(),
            self.tls.as_ref(),
            "POST",
            &path,
            &headers,
            body.as_ref(),
            Duration::from_secs(60),
        )
    }

    /// Runs InfluxQL `q` against `db` (`POST /query`, timestamps as epoch milliseconds) and
    /// returns the JSON answer. Fails on an HTTP error and on a statement error (which influxd
    /// reports with status 200 inside `results[i].error`, e.g. `database not found: x`).
    pub fn query(&self, db: &str, q: &str) -> anyhow::Result<Value> {
        self.post_query(Some(db), q)
    }

    /// POST, not GET: 1.6 runs statements that change anything (CREATE …) over GET only with a
    /// deprecation warning.
    fn post_query(&self, db: Option<&str>, q: &str) -> anyhow::Result<Value> {
        let mut params = vec![("q", q), ("epoch", "ms")];
        if let Some(db) = db {
            params.push(("db", db));
        }
        let form = form_encode(&params);
        // influxd reads `u` and `p` from the URL only, never from a form body.
        let credentials = self.credentials();
        let path =
            if credentials.is_empty() { "/query".to_string() } else { format!("/query?{}", form_encode(&credentials)) };
        let headers = [("Content-Type", "application/x-www-form-urlencoded")];
        let timeout = Duration::from_secs(60);
        let (status, body) =
            request_over(&self.http_addr(), self.tls.as_ref(), "POST", &path, &headers, form.as_bytes(), timeout)?;
        if status != 200 {
            bail!("query {q:?}: HTTP {status}: {}", body.trim_end());
        }
        let json: Value =
            serde_json::from_str(&body).with_context(|| format!("query {q:?}: the answer is not JSON: {body}"))?;
        for result in json["results"].as_array().into_iter().flatten() {
            if let Some(error) = result.get("error") {
                bail!("query {q:?}: {error}");
            }
        }
        Ok(json)
    }

    /// Number of points stored in `measurement`: the rows of `SELECT * FROM measurement`.
    ///
    /// Not `SELECT count(*)`: it counts each field's non-null values separately, so when points
    /// carry different fields no one count (nor their max) is the number of points. A raw query
    /// returns one row per point (series and timestamp), so this is exact, at the price of
    /// shipping every point; for millions of points count a field that every point carries with
    /// [`InfluxProcess::query`] instead.
    pub fn count_points(&self, db: &str, measurement: &str) -> anyhow::Result<u64> {
        let q = format!("SELECT * FROM {}", quote_ident(measurement));
        let json = self.query(db, &q)?;
        let mut rows = 0;
        for result in json["results"].as_array().into_iter().flatten() {
            for series in result["series"].as_array().into_iter().flatten() {
                // Set when max-row-limit cut the answer short; the count would be wrong.
                if series["partial"] == Value::Bool(true) || result["partial"] == Value::Bool(true) {
                    bail!("query {q:?}: the answer is partial (max-row-limit)");
                }
                rows += series["values"].as_array().map_or(0, Vec::len) as u64;
            }
        }
        Ok(rows)
    }

    /// SIGTERM and wait for influxd's clean exit (bounded).
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let status = self.process.terminate(STOP_TIMEOUT).context("influxd stop")?;
        if !status.success() {
            bail!("influxd exited with {status} on SIGTERM; log tail:\n{}", self.fresh_log_tail(30));
        }
        Ok(())
    }

    /// SIGKILL: no clean shutdown. Points answered with 204 are in the fsynced WAL and survive.
    pub fn kill9(&mut self) {
        self.process.kill9();
    }

    /// Sends a signal by name, e.g. `STOP`/`CONT` for a destination that hangs rather than refuses.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        self.process.signal(signal)
    }

    /// True while influxd runs (a stopped or killed one is reaped).
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// Starts influxd again on the same ports, config and data (stopping it first if it runs),
    /// for "the destination was down, then came back" tests. Fails if another process took one
    /// of the ports meanwhile.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        if self.process.is_running() {
            self.stop()?;
        }
        self.spawn().context("influxd restart")
    }

    /// The generated `influxdb.conf`.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Everything influxd logged so far, across restarts (start-up, HTTP access log, errors).
    pub fn log(&self) -> String {
        self.process.log()
    }

    fn fresh_log_tail(&self, lines: usize) -> String {
        let log = self.process.fresh_log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for InfluxProcess {
    /// Kills influxd before the temporary directory (a field) is removed.
    fn drop(&mut self) {
        self.process.kill9();
    }
}

/// The `influxd` to run: `$INFLUXD` if set, else the first one on `PATH`.
pub fn influxd_bin() -> anyhow::Result<PathBuf> {
    find_influxd(std::env::var_os("INFLUXD"), std::env::var_os("PATH"))
}

fn find_influxd(influxd: Option<std::ffi::OsString>, path: Option<std::ffi::OsString>) -> anyhow::Result<PathBuf> {
    if let Some(bin) = influxd {
        let bin = PathBuf::from(bin);
        anyhow::ensure!(bin.is_file(), "INFLUXD={} is not a file", bin.display());
        return Ok(bin);
    }
    std::env::split_paths(&path.unwrap_or_default())
        .map(|dir| dir.join("influxd"))
        .find(|bin| bin.is_file())
        .context("influxd is not installed (Debian package influxdb): run ./scripts/install-deps.sh --tests")
}

/// True when influxd's start-up failed because another process holds one of its ports
/// (`listen tcp 127.0.0.1:PORT: bind: address already in use`).
fn port_taken(log: &str) -> bool {
    log.contains("address already in use")
}

/// An InfluxQL identifier in double quotes (measurement and database names may hold spaces,
/// commas, quotes).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// An InfluxQL string literal in single quotes (passwords).
pub fn quote_string(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// `k1=v1&k2=v2`, percent-encoded: valid as a URL query and as an
/// `application/x-www-form-urlencoded` body.
pub fn form_encode(params: &[(&str, &str)]) -> String {
    params.iter().map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v))).collect::<Vec<_>>().join("&")
}

/// Percent-encodes every byte except RFC 3986's unreserved characters.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One HTTP/1.1 request to `addr` (`HOST:PORT`) on its own connection (`Connection: close`).
/// Returns the status and the body (de-chunked: influxd chunks `/query` answers) whatever the
/// status; fails only when there is no complete answer. Bounded: 5 s to connect, 60 s per read.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<(u16, String)> {
    http_request_timeout(addr, method, path, headers, body, Duration::from_secs(60))
}

/// [`http_request`] with `timeout` for each read and write (a SIGSTOPped server accepts
/// connections but never answers).
pub fn http_request_timeout(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> anyhow::Result<(u16, String)> {
    request_over(addr, None, method, path, headers, body, timeout)
}

/// [`http_request_timeout`] over TLS when `tls` is given.
fn request_over(
    addr: &str,
    tls: Option<&TlsClient>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> anyhow::Result<(u16, String)> {
    // The path may carry `p=` (a password): only the path's start is quoted in errors.
    let what = format!("{method} {addr}{}", path.split('?').next().unwrap_or_default());
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut request = request.into_bytes();
    request.extend_from_slice(body);
    // A server may answer (413) and close before reading all of a large body: `exchange` fails
    // on a failed send only when no answer follows.
    let raw = exchange(addr, tls, &request, timeout).with_context(|| what.clone())?;
    parse_response(&raw).with_context(|| what)
}

/// Status and body of a raw HTTP/1.1 response (`Content-Length`, chunked, or until close).
fn parse_response(raw: &[u8]) -> anyhow::Result<(u16, String)> {
    let head_end = find(raw, b"\r\n\r\n").context("incomplete response head")?;
    let head = String::from_utf8_lossy(raw.get(..head_end).unwrap_or_default());
    let rest = raw.get(head_end + 4..).unwrap_or_default();
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let status = match status_line.split_whitespace().collect::<Vec<_>>()[..] {
        [version, code, ..] if version.starts_with("HTTP/1.") => code.parse::<u16>().ok(),
        _ => None,
    }
    .with_context(|| format!("bad status line {status_line:?}"))?;
    let header = |name: &str| {
        head.lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    let body = if header("Transfer-Encoding").is_some_and(|te| te.to_ascii_lowercase().contains("chunked")) {
        decode_chunked(rest)?
    } else if let Some(length) = header("Content-Length") {
        let length: usize = length.parse().with_context(|| format!("bad Content-Length {length:?}"))?;
        rest.get(..length).with_context(|| format!("truncated body: {} of {length} bytes", rest.len()))?.to_vec()
    } else {
        rest.to_vec()
    };
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// The payload of a `Transfer-Encoding: chunked` body (trailers ignored).
fn decode_chunked(mut data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n").context("chunked body: missing chunk-size line")?;
        let line = String::from_utf8_lossy(data.get(..line_end).unwrap_or_default()).into_owned();
        let hex = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(hex, 16).with_context(|| format!("chunked body: bad chunk size {line:?}"))?;
        data = data.get(line_end + 2..).unwrap_or_default();
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(data.get(..size).context("chunked body: truncated chunk")?);
        data = data.get(size + 2..).context("chunked body: missing CRLF after a chunk")?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_influxd_says_how_to_install_it() {
        let error = find_influxd(None, Some("/nonexistent:/also/not".into())).map_err(|e| e.to_string());
        assert_eq!(
            error,
            Err("influxd is not installed (Debian package influxdb): run ./scripts/install-deps.sh --tests".into())
        );
        assert!(find_influxd(Some("/nonexistent/influxd".into()), None).is_err());
    }

    #[test]
    fn responses_with_content_length_chunks_or_neither() {
        let plain = b"HTTP/1.1 404 Not Found\r\ncontent-length: 5\r\n\r\nabcdeEXTRA";
        assert_eq!(parse_response(plain).unwrap(), (404, "abcde".to_string()));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-Trailer: t\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), (200, "{\"a\":1}".to_string()));
        assert_eq!(parse_response(b"HTTP/1.0 204 No Content\r\n\r\n").unwrap(), (204, String::new()));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab").is_err());
        assert!(parse_response(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn query_parameters_are_percent_encoded() {
        assert_eq!(
            form_encode(&[("q", "SELECT * FROM \"a b\" WHERE t='x&y=z'"), ("db", "d~1.x_y-z")]),
            "q=SELECT%20%2A%20FROM%20%22a%20b%22%20WHERE%20t%3D%27x%26y%3Dz%27&db=d~1.x_y-z"
        );
        assert_eq!(url_encode("é+%"), "%C3%A9%2B%25");
        assert_eq!(quote_ident(r#"a "b" \c"#), r#""a \"b\" \\c""#);
    }
}
