//! Test harness: starts real `millrace broker` processes on free ports in temporary directories,
//! runs real third-party clients (kcat, confluent-kafka, kafka-python, kafkajs, Sarama) against
//! them, and waits with bounded timeouts that fail with a clear message.

pub mod clients;
pub mod cluster;
pub mod component;
pub mod disks;
pub mod es;
pub mod fuzz_entry;
pub mod https;
pub mod influx;
pub mod jepsen;
pub mod kafka;
pub mod nemesis;
pub mod nemesis_faults;
pub mod nemesis_pipeline;
pub mod nemesis_resends;
pub mod netns;
pub mod pki;
pub mod tmux;

pub use cluster::{Cluster, PartitionInfo};
pub use jepsen::Workload;
pub use kafka::{value_batch, KafkaConn};

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

/// A TCP port that was free a moment ago and that no other caller in this process has been given.
///
/// Ports come from below the kernel's ephemeral range (32768+), walked from a per-process offset:
/// asking the kernel for port 0 twice can hand back the same port once the first probe closes,
/// and an ephemeral port can be taken as the local end of an outgoing connection before the
/// process it was meant for binds it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    static START: OnceLock<u32> = OnceLock::new();
    let start = *START.get_or_init(|| {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        (std::process::id().wrapping_mul(7919) ^ nanos) % SPAN
    });
    for _ in 0..SPAN {
        let port = FIRST + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN;
        let Ok(port) = u16::try_from(port) else { continue };
        // The wildcard bind fails if anything holds the port on any local address.
        if TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
    panic!("no free TCP port in {FIRST}..{}", FIRST + SPAN)
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

/// Polls `check` every 100 ms until it returns `Ok(true)` or `timeout` passes; the error names
/// `what` and the last error `check` returned.
pub fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> anyhow::Result<bool>) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        match check() {
            Ok(true) => return Ok(()),
            Ok(false) => last.clear(),
            Err(e) => last = format!("{e:#}"),
        }
        if Instant::now() > deadline {
            let last = if last.is_empty() { String::new() } else { format!("; last error: {last}") };
            bail!("timed out after {timeout:?} waiting for {what}{last}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process whose stdout and stderr are appended to a log file. Events such as readiness
/// are read from the part of the log written since the latest spawn, so output of an earlier run
/// (or of another process holding the port) is never mistaken for the current one.
pub struct LoggedProcess {
    child: Option<Child>,
    log_path: PathBuf,
    log_start: usize,
}

impl LoggedProcess {
    /// A process (not yet running) that will log to `log_path`.
    pub fn new(log_path: PathBuf) -> LoggedProcess {
        LoggedProcess { child: None, log_path, log_start: 0 }
    }

    /// Spawns `command` with stdin closed and stdout/stderr appended to the log.
    pub fn spawn(&mut self, mut command: Command) -> anyhow::Result<()> {
        anyhow::ensure!(self.child.is_none(), "the process is still running; stop or kill it first");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log_path)?;
        self.log_start = log.metadata().map(|m| m.len() as usize).unwrap_or(0);
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {:?}", command.get_program()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The exit status if the process has exited (it is then reaped and no longer running).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
        if status.is_some() {
            self.child = None;
        }
        status
    }

    /// True while a spawned process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && self.exited().is_none()
    }

    /// Everything logged so far, across restarts.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log_path) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// What the latest run logged.
    pub fn fresh_log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|log| String::from_utf8_lossy(log.get(self.log_start..).unwrap_or_default()).into_owned())
            .unwrap_or_default()
    }

    /// Waits until the latest run logs a line matching `matches`. Fails early, with the log, when
    /// the process exits first, and with the log after `timeout`.
    pub fn wait_for_line(
        &mut self,
        what: &str,
        timeout: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> anyhow::Result<()> {
        let mut exit = None;
        let found = wait_until(what, timeout, || {
            if self.fresh_log().lines().any(&matches) {
                return true;
            }
            exit = self.exited();
            exit.is_some()
        });
        if let Some(status) = exit {
            bail!("the process exited with {status} while waiting for {what}; log:\n{}", self.log());
        }
        found.with_context(|| format!("log:\n{}", self.log()))
    }

    /// Sends a signal by name (`STOP`, `CONT`, `TERM`, …) to the running process.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.pid().context("the process is not running")?;
        let status = Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status()?;
        anyhow::ensure!(status.success(), "kill -{signal} {pid} failed with {status}");
        Ok(())
    }

    /// SIGKILL (after SIGCONT, so a stopped process dies at once) and reap.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-CONT", &child.id().to_string()]).status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait up to `timeout` for the exit; SIGKILL and fail if it does not come.
    /// Returns the exit status; a process that is not running counts as a clean exit.
    pub fn terminate(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let Some(pid) = self.pid() else { return Ok(std::process::ExitStatus::default()) };
        let _ = Command::new("kill").args(["-CONT", &pid.to_string()]).status();
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return Ok(status);
            }
            if Instant::now() > deadline {
                self.kill9();
                bail!("did not stop within {timeout:?} of SIGTERM; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for LoggedProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A `millrace broker --config FILE` command; `prefix` runs it through a wrapper (e.g.
/// `ip netns exec NS`).
pub fn broker_command(config: &Path, prefix: &[&str]) -> Command {
    let mut command = match prefix.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(millrace_bin());
            command
        }
        None => Command::new(millrace_bin()),
    };
    command.args(["broker", "--config"]).arg(config).env("MILLRACE_LOG", "info,millrace_broker=debug");
    command
}

/// The line a broker logs once its listeners are bound: `broker ready … kafka=HOST:PORT`.
pub fn is_ready_line(line: &str, kafka: &str) -> bool {
    line.contains("broker ready") && line.contains(&format!("kafka={kafka}"))
}

/// True when the start-up failure in `log` was a listener port taken by someone else.
pub fn lost_port_race(log: &str) -> bool {
    log.contains("binding the") || log.contains("Address already in use")
}

/// A running broker process; killed when dropped.
pub struct BrokerProcess {
    process: LoggedProcess,
    /// Data directory (kept across restarts).
    pub data_dir: PathBuf,
    /// Kafka listener port.
    pub port: u16,
    /// Admin HTTP port.
    pub admin_port: u16,
    config_path: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl BrokerProcess {
    /// Starts a broker in a fresh temporary directory. `extra_toml` is appended to the generated
    /// config and may hold `[log]`, `[topics]` or `[server]` tables.
    pub fn start(extra_toml: &str) -> anyhow::Result<BrokerProcess> {
        let dir = tempfile::Builder::new().prefix("millrace-test-").tempdir()?;
        let data_dir = dir.path().join("data");
        let config_path = dir.path().join("broker.toml");
        let process = LoggedProcess::new(dir.path().join("broker.log"));
        let mut broker = BrokerProcess { process, data_dir, port: 0, admin_port: 0, config_path, _dir: Some(dir) };
        // A port found free can be taken by another test before the broker binds it: retry.
        let mut attempts = 0;
        loop {
            attempts += 1;
            broker.port = free_port();
            broker.admin_port = free_port();
            broker.reconfigure(extra_toml)?;
            match broker.spawn() {
                Ok(()) => return Ok(broker),
                Err(e) if attempts < 3 && lost_port_race(&broker.process.fresh_log()) => {
                    eprintln!("retrying broker start on other ports: {e}");
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes the configuration: the generated part (data directory, PLAINTEXT and admin ports)
    /// plus `extra_toml`. Called while stopped, it takes effect at [`BrokerProcess::restart`] —
    /// e.g. turning authorization on once the first users exist.
    pub fn reconfigure(&mut self, extra_toml: &str) -> anyhow::Result<()> {
        let config = format!(
            "data_dir = {:?}\nlisten = \"127.0.0.1:{}\"\nadmin_listen = \"127.0.0.1:{}\"\n{extra_toml}\n",
            self.data_dir.display().to_string(),
            self.port,
            self.admin_port
        );
        std::fs::write(&self.config_path, config).with_context(|| format!("writing {}", self.config_path.display()))
    }

    /// Process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// How the process ended, once it has (`None` while it runs).
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.process.exited()
    }

    /// `127.0.0.1:PORT` of the Kafka listener.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        self.process.spawn(broker_command(&self.config_path, &[]))?;
        // Readiness is read from this broker's own log, so a port taken meanwhile by another
        // process can never be mistaken for this broker listening.
        let kafka = self.bootstrap();
        self.process
            .wait_for_line("the broker to log that it is ready", Duration::from_secs(30), |l| is_ready_line(l, &kafka))
            .context("broker start-up")
    }

    /// The broker's combined stdout/stderr so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// SIGKILL: no clean shutdown, no final fsync.
    pub fn kill9(&mut self) {
        self.process.kill9();
    }

    /// SIGTERM and wait for a clean exit (bounded).
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let status = self.process.terminate(Duration::from_secs(20)).context("broker stop")?;
        if !status.success() {
            bail!("broker exited with {status} on SIGTERM; log:\n{}", self.log());
        }
        Ok(())
    }

    /// Starts the broker again on the same ports and data directory.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.spawn()
    }

    /// GET on the admin listener; returns the body.
    pub fn admin_get(&self, path: &str) -> anyhow::Result<String> {
        http_get(self.admin_port, path)
    }

    /// GET on the admin listener; returns the status and the body.
    pub fn admin_status(&self, path: &str) -> anyhow::Result<(u16, String)> {
        http_status_at(&format!("127.0.0.1:{}", self.admin_port), path)
    }
}

/// A minimal HTTP GET against 127.0.0.1:`port`.
pub fn http_get(port: u16, path: &str) -> anyhow::Result<String> {
    http_get_at(&format!("127.0.0.1:{port}"), path)
}

/// A minimal HTTP GET against `addr` (`HOST:PORT`), with bounded connect and read times; an
/// answer other than 200 is an error.
pub fn http_get_at(addr: &str, path: &str) -> anyhow::Result<String> {
    match http_status_at(addr, path)? {
        (200, body) => Ok(body),
        (status, body) => bail!("GET {path}: {status} {body}"),
    }
}

/// A minimal HTTP GET against `addr`: the status code and the body, whatever the status.
pub fn http_status_at(addr: &str, path: &str) -> anyhow::Result<(u16, String)> {
    use std::io::Write;
    let mut stream = connect_timeout(addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("GET {path}: not an HTTP answer: {head}"))?;
    Ok((status, body.to_string()))
}

/// Connects to `addr` (`HOST:PORT`), giving up after `timeout` (an unreachable host would
/// otherwise hang for minutes of SYN retries).
pub fn connect_timeout(addr: &str, timeout: Duration) -> anyhow::Result<TcpStream> {
    use std::net::ToSocketAddrs;
    let mut last = None;
    for resolved in addr.to_socket_addrs().with_context(|| format!("resolving {addr}"))? {
        match TcpStream::connect_timeout(&resolved, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or_else(
        || anyhow::anyhow!("{addr} resolves to nothing"),
        |e| anyhow::anyhow!("connecting to {addr}: {e}"),
    ))
}

/// Waits for `child` to exit until `deadline`; past it, kills it and returns None.
pub fn wait_or_kill(child: &mut Child, deadline: Instant) -> anyhow::Result<Option<std::process::ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
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
    let drained = Drained::take(&mut child);
    let Some(status) = wait_or_kill(&mut child, Instant::now() + timeout)? else {
        let (_, stderr) = drained.finish();
        bail!("{program} {args:?} did not finish within {timeout:?}; stderr:\n{}", String::from_utf8_lossy(&stderr));
    };
    let (stdout, stderr) = drained.finish();
    let output = Output { status, stdout, stderr };
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

/// A child's piped stdout and stderr, read on threads while it runs: a child that writes more
/// than a pipe holds (64 KiB) before anyone reads would block, stalling whatever it was doing
/// (a client's log lines from inside its network threads, say).
pub struct Drained {
    stdout: std::thread::JoinHandle<Vec<u8>>,
    stderr: std::thread::JoinHandle<Vec<u8>>,
}

impl Drained {
    /// Starts reading `child`'s piped stdout and stderr (one not piped reads as empty).
    pub fn take(child: &mut Child) -> Drained {
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        Drained {
            stdout: std::thread::spawn(move || stdout.map(read_all).unwrap_or_default()),
            stderr: std::thread::spawn(move || stderr.map(read_all).unwrap_or_default()),
        }
    }

    /// Everything the child wrote, (stdout, stderr); call once it has exited or been killed.
    pub fn finish(self) -> (Vec<u8>, Vec<u8>) {
        (self.stdout.join().unwrap_or_default(), self.stderr.join().unwrap_or_default())
    }
}

fn read_all(mut reader: impl Read) -> Vec<u8> {
    let mut buf = Vec::new();
    let _ = reader.read_to_end(&mut buf);
    buf
}

/// Every record of `topic` as (headers as kcat prints them, `key=value,…`; value), read with kcat.
pub fn read_with_headers(bootstrap: &str, topic: &str) -> anyhow::Result<Vec<(String, String)>> {
    let out = run(
        "kcat",
        &["-C", "-b", bootstrap, "-t", topic, "-e", "-q", "-f", "%h\t%s\n"],
        None,
        Duration::from_secs(30),
    )?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('\t').map(|(h, v)| (h.to_string(), v.to_string())))
        .collect())
}

/// kcat's `-X key=value` arguments for Kafka client properties (`key=value` each).
pub fn kcat_properties(properties: impl IntoIterator<Item = String>) -> Vec<String> {
    properties.into_iter().flat_map(|p| ["-X".to_string(), p]).collect()
}

/// `kcat -b BROKER OPTIONS… ARGS…` within `timeout`; its stdout (an error names kcat's stderr).
pub fn kcat(
    broker: &str,
    options: &[String],
    args: &[&str],
    input: Option<&[u8]>,
    timeout: Duration,
) -> anyhow::Result<String> {
    let mut all: Vec<&str> = vec!["-b", broker];
    all.extend(options.iter().map(String::as_str));
    all.extend_from_slice(args);
    let out = run("kcat", &all, input, timeout)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The `(CURRENT-OFFSET, LOG-END-OFFSET)` of each of `group`'s rows in the output of
/// `millrace group describe` (rows `GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET …`, `-`
/// where nothing is committed).
pub fn group_offsets(described: &str, group: &str) -> Vec<(String, String)> {
    described
        .lines()
        .filter(|l| l.starts_with(&format!("{group} ")))
        .filter_map(|l| {
            let columns: Vec<&str> = l.split_whitespace().collect();
            Some((columns.get(3)?.to_string(), columns.get(4)?.to_string()))
        })
        .collect()
}

/// Whether `group` has committed every record of every partition, and something at all. A
/// partition without records has nothing to commit: keyless producers (kcat, librdkafka's sticky
/// partitioner) may put a whole small batch on one partition.
pub fn committed_everything(described: &str, group: &str) -> bool {
    let offsets = group_offsets(described, group);
    let done = |(committed, end): &(String, String)| committed == end || (committed == "-" && end == "0");
    offsets.iter().any(|(committed, _)| committed != "-") && offsets.iter().all(done)
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

/// The Python interpreter the tests use (`$PYTHON`, default `python3`).
pub fn python_bin() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs a Python client script; it exits non-zero with a message when its checks fail.
pub fn python(script: &str, args: &[&str], timeout: Duration) -> anyhow::Result<String> {
    let path = python_script(script);
    let mut all = vec![path.as_str()];
    all.extend_from_slice(args);
    let out = run(&python_bin(), &all, None, timeout)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
