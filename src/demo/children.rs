//! The demo's child processes. Each background child runs in its own process group, so a
//! Ctrl-C in the terminal reaches only the demo (which then stops the children in order) and the
//! terminal UI. A child still running when it is dropped — on an error, a panic, a stop cut
//! short by a signal, any other early exit — is killed and reaped, so no exit path leaves orphans.

use anyhow::Context;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// One child; killed and reaped when dropped (a no-op once it was reaped).
struct Proc {
    name: String,
    child: Child,
    log: Option<PathBuf>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child that exited on its own.
pub struct Exited {
    /// Its name (`broker-1`, `agent`, …).
    pub name: String,
    /// How it ended.
    pub status: ExitStatus,
    /// Where its output is.
    pub log: Option<PathBuf>,
}

impl std::fmt::Display for Exited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} exited ({})", self.name, self.status)?;
        if let Some(log) = &self.log {
            write!(f, "; read {}", log.display())?;
        }
        Ok(())
    }
}

/// The running children, by name.
#[derive(Default)]
pub struct Children {
    procs: Vec<Proc>,
}

/// Sends `signal` (a `kill` signal name) to `pid`. The `kill` command rather than libc: the
/// binary has no libc binding and unsafe code is denied.
fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Children {
    /// Starts `program args…` as `name` in its own process group, stdin closed, stdout and stderr
    /// appended to `log`.
    pub fn spawn_logged(&mut self, name: &str, program: &Path, args: &[&str], log: &Path) -> anyhow::Result<u32> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let mut command = Command::new(program);
        command.args(args).stdin(Stdio::null()).stdout(file.try_clone()?).stderr(file).process_group(0);
        let child = command.spawn().with_context(|| format!("starting {name} ({})", program.display()))?;
        let pid = child.id();
        self.procs.push(Proc { name: name.to_string(), child, log: Some(log.to_path_buf()) });
        Ok(pid)
    }

    /// Starts `program args…` as `name` on the terminal (inherited stdio, the demo's process
    /// group: it reads the keyboard).
    pub fn spawn_foreground(&mut self, name: &str, program: &Path, args: &[&str]) -> anyhow::Result<u32> {
        let child = Command::new(program)
            .args(args)
            .spawn()
            .with_context(|| format!("starting {name} ({})", program.display()))?;
        let pid = child.id();
        self.procs.push(Proc { name: name.to_string(), child, log: None });
        Ok(pid)
    }

    /// True while `name` runs.
    pub fn is_running(&mut self, name: &str) -> bool {
        self.procs.iter_mut().any(|p| p.name == name && matches!(p.child.try_wait(), Ok(None)))
    }

    /// Children that exited since the last call; they are reaped and forgotten.
    pub fn exited(&mut self) -> Vec<Exited> {
        let mut exited = Vec::new();
        self.procs.retain_mut(|p| match p.child.try_wait() {
            Ok(Some(status)) => {
                exited.push(Exited { name: p.name.clone(), status, log: p.log.clone() });
                false
            }
            _ => true,
        });
        exited
    }

    /// Process ids of the running children, with their names.
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.procs.iter().map(|p| (p.name.clone(), p.child.id())).collect()
    }

    /// SIGTERM to every child named in `names`, then waits up to `timeout` for them all to exit;
    /// SIGKILL for those that did not. Returns how each ended (`None`: killed).
    pub async fn stop(&mut self, names: &[&str], timeout: Duration) -> Vec<(String, Option<ExitStatus>)> {
        let mut stopping: Vec<Proc> = Vec::new();
        let mut kept = Vec::new();
        for proc in self.procs.drain(..) {
            if names.contains(&proc.name.as_str()) {
                stopping.push(proc);
            } else {
                kept.push(proc);
            }
        }
        self.procs = kept;
        for proc in &stopping {
            signal(proc.child.id(), "TERM");
        }
        let deadline = Instant::now() + timeout;
        let mut ended = Vec::new();
        while !stopping.is_empty() {
            stopping.retain_mut(|p| match p.child.try_wait() {
                Ok(Some(status)) => {
                    ended.push((p.name.clone(), Some(status)));
                    false
                }
                Ok(None) => true,
                Err(_) => {
                    ended.push((p.name.clone(), None));
                    false
                }
            });
            if Instant::now() >= deadline {
                // Dropping them kills them.
                ended.extend(stopping.drain(..).map(|p| (p.name.clone(), None)));
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ended
    }
}
