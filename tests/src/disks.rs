//! Disks that fail on purpose: a small tmpfs mounted by the test that fills up, and the check
//! whether a test that needs root may be skipped.
//!
//! Mounting needs root (as in CI); where it is not allowed a test fails when `CI` or
//! `MILLRACE_REQUIRE_NETNS` is set and prints `skipping` otherwise.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether a test needing root must fail rather than skip (`CI` or `MILLRACE_REQUIRE_NETNS`).
pub fn root_required() -> bool {
    ["CI", "MILLRACE_REQUIRE_NETNS"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false"))
}

/// Fails with `why` when root is required, else prints `skipping` and returns `Ok(None)`.
pub fn skip_or_fail<T>(what: &str, why: &str) -> anyhow::Result<Option<T>> {
    anyhow::ensure!(!root_required(), "cannot {what} (root needed): {why}");
    eprintln!("skipping: cannot {what} (root needed): {why}");
    Ok(None)
}

/// A tmpfs of a fixed size, unmounted (lazily, in case a process still holds a file) on drop.
pub struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (e.g. `"1m"`) on `path`, creating it; `None` when mounting is not
    /// allowed and the test may skip.
    pub fn mount(path: PathBuf, size: &str) -> anyhow::Result<Option<SmallDisk>> {
        std::fs::create_dir_all(&path)?;
        let out =
            Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(&path).output();
        match out {
            Ok(out) if out.status.success() => Ok(Some(SmallDisk { path })),
            Ok(out) => {
                skip_or_fail("mount a tmpfs for the full-disk test", String::from_utf8_lossy(&out.stderr).trim())
            }
            Err(e) => skip_or_fail("mount a tmpfs for the full-disk test", &e.to_string()),
        }
    }

    /// Its mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Gives the filesystem room again (`size`, e.g. `"64m"`), without unmounting it.
    pub fn grow(&self, size: &str) -> anyhow::Result<()> {
        self.remount(&format!("size={size}"))
    }

    /// Remounts it with `options` (e.g. `"ro"`, `"rw"`).
    pub fn remount(&self, options: &str) -> anyhow::Result<()> {
        let status = Command::new("mount").args(["-o", &format!("remount,{options}")]).arg(&self.path).status()?;
        anyhow::ensure!(status.success(), "remounting {} with {options} failed", self.path.display());
        Ok(())
    }

    /// Fills the disk with the file `filler` until it is full, then gives back `free` bytes.
    pub fn fill_leaving(&self, free: u64) -> anyhow::Result<()> {
        let path = self.path.join("filler");
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        let chunk = vec![0xa5u8; 4096];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => return Err(e.into()),
            }
        }
        let written = file.metadata()?.len();
        file.set_len(written.saturating_sub(free))?;
        Ok(())
    }

    /// Fills the last bytes too: a 4 KiB write may leave less than a page free, and an agent
    /// writing small records would still fit there.
    pub fn fill_to_the_brim(&self) -> anyhow::Result<()> {
        self.fill_leaving(0)?;
        let mut file = std::fs::OpenOptions::new().append(true).open(self.path.join("filler"))?;
        while file.write(b"x").is_ok_and(|n| n > 0) {}
        Ok(())
    }

    /// Removes the filler file.
    pub fn empty_filler(&self) -> anyhow::Result<()> {
        match std::fs::remove_file(self.path.join("filler")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
