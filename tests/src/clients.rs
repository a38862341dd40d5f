//! Kafka clients of other families than librdkafka and kafka-python: kafkajs (`node
//! tests/js/kafkajs_check.js`) and Sarama (the Go program in `tests/go/sarama_check`, built once
//! per test process against Debian's golang-github-shopify-sarama-dev). A missing runtime or
//! library is an error that says how to install it, never a skip.

use crate::{run, wait_or_kill, workspace_root};
use anyhow::{bail, Context};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// What to run when a client family's tools are missing.
const INSTALL_HINT: &str = "run ./scripts/install-deps.sh --tests";

/// Where Debian's golang-*-dev packages put their sources (a GOPATH).
const DEBIAN_GOPATH: &str = "/usr/share/gocode";

/// Bound on building the Sarama program (cgo compiles DataDog/zstd on a cold cache).
const GO_BUILD_TIMEOUT: Duration = Duration::from_secs(300);

/// True when `program` runs (`program ARG` exits, whatever its status).
fn runs(program: &str, arg: &str) -> bool {
    Command::new(program).arg(arg).output().is_ok()
}

/// The Node.js interpreter (`$NODE`, default `node`).
pub fn node_bin() -> String {
    std::env::var("NODE").unwrap_or_else(|_| "node".into())
}

/// `tests/js/`: kafkajs_check.js and its node_modules.
pub fn js_dir() -> PathBuf {
    workspace_root().join("tests").join("js")
}

/// Fails, saying how to install them, unless node runs and kafkajs is in tests/js/node_modules.
pub fn require_kafkajs() -> anyhow::Result<()> {
    let node = node_bin();
    if !runs(&node, "--version") {
        bail!("Node.js ({node}) is not installed: {INSTALL_HINT}");
    }
    let dir = js_dir();
    if !dir.join("node_modules").join("kafkajs").join("package.json").is_file() {
        bail!("kafkajs is not installed in {}/node_modules: {INSTALL_HINT}", dir.display());
    }
    Ok(())
}

/// Runs `node tests/js/kafkajs_check.js ARGS…`, killed after `timeout`; its stdout. Fails when
/// node or kafkajs is missing, or the script exits non-zero (the error carries its stdout and
/// stderr, where it says `FAIL: …`).
pub fn kafkajs(args: &[&str], timeout: Duration) -> anyhow::Result<String> {
    require_kafkajs()?;
    let node = node_bin();
    let script = js_dir().join("kafkajs_check.js").display().to_string();
    let mut all = vec![script.as_str()];
    all.extend_from_slice(args);
    let out = run(&node, &all, None, timeout)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The target directory the tests build into (`$CARGO_TARGET_DIR`, taken from the workspace root
/// when relative, or `target/`).
fn target_dir() -> PathBuf {
    let root = workspace_root();
    std::env::var("CARGO_TARGET_DIR").map(|dir| root.join(dir)).unwrap_or_else(|_| root.join("target"))
}

/// The Sarama check program, built once per test process into `target/sarama_check/` with the
/// Debian-packaged Sarama (GOPATH mode, no module downloads). The error of a failed build is
/// kept and given to every caller.
pub fn sarama_check_bin() -> anyhow::Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| build_sarama_check().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow::anyhow!("building tests/go/sarama_check: {e}"))
}

fn build_sarama_check() -> anyhow::Result<PathBuf> {
    let go = std::env::var("GO").unwrap_or_else(|_| "go".into());
    if !runs(&go, "version") {
        bail!("the Go toolchain ({go}) is not installed (Debian package golang-go): {INSTALL_HINT}");
    }
    let sarama = Path::new(DEBIAN_GOPATH).join("src/github.com/Shopify/sarama");
    if !sarama.join("sarama.go").is_file() {
        bail!(
            "Sarama is not installed in {} (Debian package golang-github-shopify-sarama-dev): {INSTALL_HINT}",
            sarama.display()
        );
    }
    let out_dir = target_dir().join("sarama_check");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    // Built under a name of this process and renamed into place: another test process building
    // at the same time never sees a half-written binary.
    let partial = out_dir.join(format!("sarama_check.{}.partial", std::process::id()));
    let binary = out_dir.join("sarama_check");
    let log_path = out_dir.join(format!("build.{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    // Output to a file, not pipes (the compilers go build starts would hold pipes open past a
    // kill), in a process group of its own so that a build past its time is killed whole.
    let mut child = Command::new(&go)
        .current_dir(workspace_root().join("tests").join("go").join("sarama_check"))
        .args(["build", "-o"])
        .arg(&partial)
        .arg(".")
        .env("GOPATH", DEBIAN_GOPATH)
        .env("GO111MODULE", "off")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("GOCACHE", out_dir.join("go-cache"))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .with_context(|| format!("spawning {go} build"))?;
    let group = child.id();
    let status = wait_or_kill(&mut child, Instant::now() + GO_BUILD_TIMEOUT)?;
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = std::fs::remove_file(&log_path);
    match status {
        None => {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{group}")]).status();
            bail!("{go} build did not finish within {GO_BUILD_TIMEOUT:?}; output:\n{output}")
        }
        Some(status) if !status.success() => bail!("{go} build failed with {status}; output:\n{output}"),
        Some(_) => {}
    }
    std::fs::rename(&partial, &binary).with_context(|| format!("moving the binary to {}", binary.display()))?;
    Ok(binary)
}

/// Runs the Sarama check program with `args`, killed after `timeout`; its stdout. Fails when it
/// cannot be built or exits non-zero (the error carries its stdout and stderr, where it says
/// `FAIL: …`).
pub fn sarama(args: &[&str], timeout: Duration) -> anyhow::Result<String> {
    let bin = sarama_check_bin()?.display().to_string();
    let out = run(&bin, args, None, timeout)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The last line of a check's output, which must be its `OK …` line.
pub fn ok_line(output: &str) -> anyhow::Result<&str> {
    match output.lines().last() {
        Some(line) if line.starts_with("OK ") => Ok(line),
        _ => bail!("the check printed no final OK line; stdout:\n{output}"),
    }
}
