//! A mounted power-loss filesystem and its power switch.

use crate::fuse::{PowerFs, Shared};
use crate::model::{CutMode, Stats};
use anyhow::{bail, Context};
use fuser::{BackgroundSession, Config, MountOption, Session};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long an unmount may wait for the last users of the mount to go away.
const UNMOUNT_WAIT: Duration = Duration::from_secs(15);

/// How a cut went.
#[derive(Clone, Copy, Debug)]
pub struct CutReport {
    /// Time the caller took to stop the processes on the mount.
    pub stop_users: Duration,
    /// Time from the cut to the remount.
    pub total: Duration,
    /// umount calls until the mount was free.
    pub unmount_attempts: u32,
}

/// A FUSE mount served from this process. Unmounted on drop.
pub struct PowerMount {
    path: PathBuf,
    shared: Arc<Shared>,
    session: Option<BackgroundSession>,
    /// The kernel's id of the current FUSE connection (its minor device number).
    connection: Option<u64>,
}

impl PowerMount {
    /// Mounts an empty filesystem on the existing directory `path`. Fails (never skips) where
    /// FUSE is unavailable: the power-loss tests have no other way to run.
    pub fn mount(path: &Path) -> anyhow::Result<PowerMount> {
        anyhow::ensure!(
            Path::new("/dev/fuse").exists(),
            "/dev/fuse is missing: the power-loss filesystem needs FUSE (load the fuse module, or give the container /dev/fuse)"
        );
        let path = path.canonicalize().with_context(|| format!("mount point {}", path.display()))?;
        let shared = Arc::new(Shared::default());
        let mut mount = PowerMount { path, shared, session: None, connection: None };
        mount.start()?;
        Ok(mount)
    }

    fn start(&mut self) -> anyhow::Result<()> {
        let mut config = Config::default();
        config.mount_options = vec![MountOption::FSName("powerfs".into()), MountOption::Subtype("powerfs".into())];
        // Several, so a slow fsync does not hold up other requests.
        config.n_threads = Some(4);
        let fs = PowerFs { shared: self.shared.clone() };
        self.shared.powered.store(true, Ordering::SeqCst);
        let session = Session::new(fs, &self.path, &config).and_then(Session::spawn).with_context(|| {
            format!(
                "mounting the power-loss filesystem on {} (FUSE needs /dev/fuse and root, or fusermount3)",
                self.path.display()
            )
        })?;
        self.session = Some(session);
        use std::os::unix::fs::MetadataExt;
        let dev = std::fs::metadata(&self.path).context("stat of the new mount")?.dev();
        self.connection = Some((dev & 0xff) | ((dev >> 12) & 0xfff00));
        Ok(())
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes every fsync take `latency` (default: none), as a disk's cache flush does; widens the
    /// window in which a cut finds data written but not yet durable.
    pub fn set_sync_latency(&self, latency: Duration) {
        self.shared.sync_latency_us.store(latency.as_micros() as u64, Ordering::Relaxed);
    }

    /// Makes the disk fail (`true`) or work again: while failing, every write, fsync, create,
    /// rename, unlink and truncate gets EIO and nothing more becomes durable; reads still work.
    pub fn set_failing(&self, failing: bool) {
        self.shared.failing.store(failing, Ordering::SeqCst);
    }

    /// What was asked of it so far.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats()
    }

    /// Number of inodes a strict cut would now change (diagnostics).
    pub fn unsynced(&self) -> usize {
        self.shared.lock().unsynced().len()
    }

    /// Cuts the power: from now on every request fails (nothing more becomes durable),
    /// `stop_users` kills the processes using the mount (it must also reap them), any other
    /// process still holding a file here is killed, the mount goes away with every cache the
    /// kernel had of it, what was not durable is dropped per `mode`, and the filesystem is
    /// mounted again on the surviving state.
    pub fn cut_power(&mut self, mode: CutMode, stop_users: impl FnOnce()) -> anyhow::Result<CutReport> {
        // One cut at a time per process: two mounts unmounting and remounting at once were seen
        // to stall each other for up to 100 s (cause not pinned down).
        static CUTTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one_at_a_time = CUTTING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let started = Instant::now();
        self.shared.powered.store(false, Ordering::SeqCst);
        stop_users();
        let stopped = started.elapsed();
        let unmount_attempts = self.unmount()?;
        self.shared.lock().cut(mode);
        self.start()?;
        Ok(CutReport { stop_users: stopped, total: started.elapsed(), unmount_attempts })
    }

    /// Unmounts; returns how many attempts it took.
    fn unmount(&mut self) -> anyhow::Result<u32> {
        let Some(session) = self.session.take() else { return Ok(0) };
        let deadline = Instant::now() + UNMOUNT_WAIT;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let holders = holders(&self.path);
            for pid in &holders {
                // A process the caller did not stop (a child of one it killed): power is off for it too.
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            }
            let out = Command::new("umount").arg(&self.path).output().context("running umount")?;
            if out.status.success() {
                break;
            }
            if Instant::now() > deadline {
                // Whoever still waits on the mount gets ENOTCONN instead of hanging for ever.
                self.abort_connection();
                let _ = Command::new("umount").arg("-l").arg(&self.path).status();
                bail!(
                    "unmounting {} failed for {UNMOUNT_WAIT:?} ({}); still held by pids {holders:?}",
                    self.path.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // After the unmount the kernel ends the connection and the serving thread returns.
        session.join().context("the filesystem's serving thread")?;
        Ok(attempts)
    }
}

impl PowerMount {
    fn abort_connection(&self) {
        let Some(id) = self.connection else { return };
        let control = Path::new("/sys/fs/fuse/connections");
        if !control.join(id.to_string()).exists() {
            let _ = Command::new("mount").args(["-t", "fusectl", "fusectl"]).arg(control).status();
        }
        let _ = std::fs::write(control.join(id.to_string()).join("abort"), "1");
    }
}

impl Drop for PowerMount {
    fn drop(&mut self) {
        self.shared.powered.store(false, Ordering::SeqCst);
        if let Err(e) = self.unmount() {
            eprintln!("powerfs: {e:#}");
        }
    }
}

/// Processes other than this one with a file open or their working directory under `path`. Not
/// /proc/PID/maps: reading it waits for the process's memory lock, which a process faulting on a
/// mapping of this mount can hold until the mount answers.
fn holders(path: &Path) -> Vec<u32> {
    let me = std::process::id();
    let under = |p: &Path| p.starts_with(path);
    let Ok(procs) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut out = Vec::new();
    for entry in procs.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let dir = entry.path();
        let mut held = std::fs::read_link(dir.join("cwd")).is_ok_and(|p| under(&p));
        if let Ok(fds) = std::fs::read_dir(dir.join("fd")) {
            held |= fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|p| under(&p)));
        }
        if held {
            out.push(pid);
        }
    }
    out
}
