//! Test harness: starts real `millrace broker` processes on free ports in temporary directories,
//! runs real third-party clients (kcat, confluent-kafka, kafka-python) against them, and waits
//! with bounded timeouts that fail with a clear message.

use anyhow::{bail, Context};
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Path of the `millrace` binary, built once per test process with the same profile.
pub fn millrace_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = workspace_root();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // Tests are built without --release in CI; match the binary to the test profile.
        let release = !cfg!(debug_assertions);
        let mut build = Command::new(cargo);
        build.current_dir(&root).args(["build", "-q", "-p", "millrace", "--bin", "millrace"]);
        if release {
            build.arg("--release");
        }
        let status = build.status().expect("running cargo build for the millrace binary");
        assert!(status.success(), "cargo build of the millrace binary failed");
        let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root.join("target"));
        target.join(if release { "release" } else { "debug" }).join("millrace")
    })
    .clone()
}

/// A TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("binding an ephemeral port")
}

/// Polls `check` every 50 ms until it returns true or `timeout` passes.
pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("timed out after {timeout:?} waiting for {what}")
}

/// A running broker process; killed when dropped.
pub struct BrokerProcess {
    child: Option<Child>,
    /// Data directory (kept across restarts).
    pub data_dir: PathBuf,
    /// Kafka listener port.
    pub port: u16,
    /// Admin HTTP port.
    pub admin_port: u16,
    config_path: PathBuf,
    log_path: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl BrokerProcess {
    /// Starts a broker in a fresh temporary directory. `extra_toml` is appended to the generated
    /// config and may hold `[log]`, `[topics]` or `[server]` tables.
    pub fn start(extra_toml: &str) -> anyhow::Result<BrokerProcess> {
        let dir = tempfile::Builder::new().prefix("millrace-test-").tempdir()?;
        let data_dir = dir.path().join("data");
        let config_path = dir.path().join("broker.toml");
        let log_path = dir.path().join("broker.log");
        let mut broker =
            BrokerProcess { child: None, data_dir, port: 0, admin_port: 0, config_path, log_path, _dir: Some(dir) };
        // A port found free can be taken by another test before the broker binds it: retry.
        let mut attempts = 0;
        loop {
            attempts += 1;
            broker.port = free_port();
            broker.admin_port = free_port();
            let config = format!(
                "data_dir = {:?}\nlisten = \"127.0.0.1:{}\"\nadmin_listen = \"127.0.0.1:{}\"\n{extra_toml}\n",
                broker.data_dir.display().to_string(),
                broker.port,
                broker.admin_port
            );
            std::fs::write(&broker.config_path, config)?;
            match broker.spawn() {
                Ok(()) => return Ok(broker),
                Err(e) if attempts < 3 && broker.log().contains("binding the") => {
                    eprintln!("retrying broker start on other ports: {e}");
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `127.0.0.1:PORT` of the Kafka listener.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log_path)?;
        let log_start = log.metadata().map(|m| m.len() as usize).unwrap_or(0);
        let child = Command::new(millrace_bin())
            .args(["broker", "--config"])
            .arg(&self.config_path)
            .env("MILLRACE_LOG", "info,millrace_broker=debug")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawning millrace broker")?;
        self.child = Some(child);
        // Readiness is read from this broker's own log, so a port taken meanwhile by another
        // process can never be mistaken for this broker listening.
        let ready_line = format!("kafka={}:{}", "127.0.0.1", self.port);
        let log_path = self.log_path.clone();
        let ready = wait_until("the broker to log that it is ready", Duration::from_secs(30), || {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(_)) = child.try_wait() {
                    return true;
                }
            }
            std::fs::read(&log_path)
                .map(|log| {
                    let fresh = String::from_utf8_lossy(log.get(log_start..).unwrap_or_default()).into_owned();
                    fresh.lines().any(|l| l.contains("broker ready") && l.contains(&ready_line))
                })
                .unwrap_or(false)
        });
        if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
            bail!("broker exited at start-up with {status}; log:\n{}", self.log());
        }
        ready.with_context(|| format!("broker log:\n{}", self.log()))
    }

    /// The broker's combined stdout/stderr so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log_path) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// SIGKILL: no clean shutdown, no final fsync.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a clean exit (bounded).
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    bail!("broker exited with {status} on SIGTERM; log:\n{}", self.log());
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("broker did not stop within 20s of SIGTERM; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the broker again on the same ports and data directory.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.spawn()
    }

    /// GET on the admin listener; returns the body.
    pub fn admin_get(&self, path: &str) -> anyhow::Result<String> {
        http_get(self.admin_port, path)
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A minimal HTTP GET against 127.0.0.1:`port`.
pub fn http_get(port: u16, path: &str) -> anyhow::Result<String> {
    use std::io::Write;
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    if !head.starts_with("HTTP/1.1 200") {
        bail!("GET {path}: {head}");
    }
    Ok(body.to_string())
}

/// Runs a command with stdin from `input`, killing it after `timeout`. Fails on a non-zero exit
/// with the command's output in the message.
pub fn run(program: &str, args: &[&str], input: Option<&[u8]>, timeout: Duration) -> anyhow::Result<Output> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {program}"))?;
    if let Some(input) = input {
        use std::io::Write;
        let mut stdin = child.stdin.take().context("stdin")?;
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let stdout = child.stdout.take().context("stdout")?;
    let stderr = child.stderr.take().context("stderr")?;
    let out_reader = std::thread::spawn(move || read_all(stdout));
    let err_reader = std::thread::spawn(move || read_all(stderr));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err_reader.join().unwrap_or_default();
            bail!(
                "{program} {args:?} did not finish within {timeout:?}; stderr:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output =
        Output { status, stdout: out_reader.join().unwrap_or_default(), stderr: err_reader.join().unwrap_or_default() };
    if !output.status.success() {
        bail!(
            "{program} {args:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output)
}

fn read_all(mut reader: impl Read) -> Vec<u8> {
    let mut buf = Vec::new();
    let _ = reader.read_to_end(&mut buf);
    buf
}

/// Runs `millrace ARGS…` and returns stdout.
pub fn millrace(args: &[&str]) -> anyhow::Result<String> {
    let bin = millrace_bin();
    let out = run(&bin.display().to_string(), args, None, Duration::from_secs(60))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Path of a Python client script in `tests/python/`.
pub fn python_script(name: &str) -> String {
    workspace_root().join("tests").join("python").join(name).display().to_string()
}

/// Runs a Python client script; it exits non-zero with a message when its checks fail.
pub fn python(script: &str, args: &[&str], timeout: Duration) -> anyhow::Result<String> {
    let path = python_script(script);
    let mut all = vec![path.as_str()];
    all.extend_from_slice(args);
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = run(&python, &all, None, timeout)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A raw Kafka protocol connection for tests that need exact control over requests, using the
/// `kafka-protocol` codecs.
pub struct KafkaConn {
    stream: TcpStream,
    next_correlation: i32,
}

impl KafkaConn {
    /// Connects to a broker.
    pub fn connect(port: u16) -> anyhow::Result<KafkaConn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        Ok(KafkaConn { stream, next_correlation: 1 })
    }

    /// Writes raw bytes (for malformed-input tests).
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        self.stream.write_all(bytes)
    }

    /// True when the broker closed the connection (read returns EOF or reset).
    pub fn is_closed_by_peer(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(self.stream.read(&mut buf), Ok(0) | Err(_))
    }

    /// Encodes a request frame at `version`; returns it with its correlation id.
    pub fn encode_request<R>(&mut self, version: i16, request: &R) -> anyhow::Result<(i32, Vec<u8>)>
    where
        R: kafka_protocol::protocol::Request,
    {
        use bytes::BufMut;
        use kafka_protocol::messages::{ApiKey, RequestHeader};
        use kafka_protocol::protocol::Encodable;
        let api_key = ApiKey::try_from(R::KEY).map_err(|_| anyhow::anyhow!("unknown api key {}", R::KEY))?;
        let correlation = self.next_correlation;
        self.next_correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(kafka_protocol::protocol::StrBytes::from_static_str("millrace-tests")));
        let mut body = bytes::BytesMut::new();
        header.encode(&mut body, api_key.request_header_version(version))?;
        request.encode(&mut body, version)?;
        let mut frame = bytes::BytesMut::new();
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        Ok((correlation, frame.to_vec()))
    }

    /// Reads one response frame and decodes it as the response to `R` at `version`.
    pub fn read_response<R>(&mut self, version: i16, correlation: i32) -> anyhow::Result<R::Response>
    where
        R: kafka_protocol::protocol::Request,
    {
        use kafka_protocol::messages::{ApiKey, ResponseHeader};
        use kafka_protocol::protocol::Decodable;
        let api_key = ApiKey::try_from(R::KEY).map_err(|_| anyhow::anyhow!("unknown api key {}", R::KEY))?;
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len)?;
        let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut buf)?;
        let mut buf = bytes::Bytes::from(buf);
        let header = ResponseHeader::decode(&mut buf, api_key.response_header_version(version))?;
        anyhow::ensure!(
            header.correlation_id == correlation,
            "correlation id {} != {correlation}",
            header.correlation_id
        );
        R::Response::decode(&mut buf, version)
    }

    /// Sends a request at `version` and decodes the response.
    pub fn request<R>(&mut self, version: i16, request: &R) -> anyhow::Result<R::Response>
    where
        R: kafka_protocol::protocol::Request,
    {
        let (correlation, frame) = self.encode_request(version, request)?;
        self.send_raw(&frame)?;
        self.read_response::<R>(version, correlation)
    }
}
