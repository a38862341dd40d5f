//! The `processes` collector: counts of the processes by state, from each `/proc/[pid]/stat`.

use super::counters::int;
use super::proc_file::{HostMetricsError, ParseError};
use crate::event::MetricPoint;
use rustix::fs::{Mode, OFlags, RawDir};
use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::SystemTime;

/// Process counts by state.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcessCounts {
    pub(crate) total: u64,
    pub(crate) running: u64,
    pub(crate) sleeping: u64,
    pub(crate) blocked: u64,
    pub(crate) zombies: u64,
    pub(crate) stopped: u64,
    pub(crate) idle: u64,
    pub(crate) threads: u64,
}

impl ProcessCounts {
    fn add(&mut self, state: u8, threads: u64) {
        self.total += 1;
        self.threads = self.threads.saturating_add(threads);
        match state {
            b'R' => self.running += 1,
            b'S' => self.sleeping += 1,
            b'D' => self.blocked += 1,
            b'Z' => self.zombies += 1,
            b'T' | b't' => self.stopped += 1,
            b'I' => self.idle += 1,
            _ => {}
        }
    }

    pub(super) fn point(&self, now: SystemTime) -> MetricPoint {
        MetricPoint::new("processes", now)
            .field("total", int(self.total))
            .field("running", int(self.running))
            .field("sleeping", int(self.sleeping))
            .field("blocked", int(self.blocked))
            .field("zombies", int(self.zombies))
            .field("stopped", int(self.stopped))
            .field("idle", int(self.idle))
            .field("threads", int(self.threads))
    }
}

/// The state letter and `num_threads` of a `/proc/[pid]/stat`. The command name (field 2) is in
/// parentheses and may itself contain spaces and ')', so fields are counted from the last ')'.
pub(crate) fn parse_pid_stat(stat: &[u8]) -> Option<(u8, u64)> {
    let close = stat.iter().rposition(|b| *b == b')')?;
    let mut fields = stat[close + 1..].split(u8::is_ascii_whitespace).filter(|f| !f.is_empty());
    let state = match fields.next()? {
        [letter] => *letter,
        _ => return None,
    };
    // state is field 3, num_threads field 20.
    let threads = std::str::from_utf8(fields.nth(16)?).ok()?.parse().ok()?;
    Some((state, threads))
}

/// Counts the processes under `proc_root` without allocating per process: the directory is
/// read with `getdents64` into `dirent_buf` and each `<pid>/stat` is opened relative to it and
/// read into `stat_buf`.
pub(super) fn count_processes(
    proc_root: &Path,
    dirent_buf: &mut Vec<u8>,
    stat_buf: &mut Vec<u8>,
) -> Result<ProcessCounts, HostMetricsError> {
    let listing_error = |error: rustix::io::Errno| HostMetricsError::Read {
        op: "listing",
        path: proc_root.to_path_buf(),
        source: error.into(),
    };
    let dir = rustix::fs::openat(
        rustix::fs::CWD,
        proc_root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(listing_error)?;
    let mut entries = RawDir::new(&dir, dirent_buf.spare_capacity_mut());
    let mut counts = ProcessCounts::default();
    // "<pid>/stat": pids have at most 10 digits.
    let mut path = [0u8; 32];
    while let Some(entry) = entries.next() {
        let entry = entry.map_err(listing_error)?;
        let name = entry.file_name().to_bytes();
        if name.is_empty() || name.len() > 20 || !name.iter().all(u8::is_ascii_digit) {
            continue;
        }
        let len = name.len() + b"/stat".len();
        path[..name.len()].copy_from_slice(name);
        path[name.len()..len].copy_from_slice(b"/stat");
        // Opening or reading fails when the process exited since it was listed: not an error.
        let Ok(fd) = rustix::fs::openat(&dir, &path[..len], OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) else {
            continue;
        };
        stat_buf.clear();
        if File::from(fd).read_to_end(stat_buf).is_err() || stat_buf.is_empty() {
            continue;
        }
        let Some((state, threads)) = parse_pid_stat(stat_buf) else {
            return Err(HostMetricsError::Parse {
                path: proc_root.join(OsStr::from_bytes(&path[..len])),
                source: ParseError::at(0, "no state or num_threads after the command name"),
            });
        };
        counts.add(state, threads);
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::host_metrics::fixtures::pid_stat;

    #[test]
    fn parses_pid_stat() {
        assert_eq!(parse_pid_stat(pid_stat(1, "systemd", 'S', 1).as_bytes()), Some((b'S', 1)));
        // The command name may contain spaces and parentheses.
        assert_eq!(parse_pid_stat(pid_stat(7, "a) R (b", 'D', 12).as_bytes()), Some((b'D', 12)));
        assert_eq!(parse_pid_stat(b"7 (x) R 1 2"), None);
        assert_eq!(parse_pid_stat(b"7 x R"), None);
        assert_eq!(parse_pid_stat(b"7 (x) RR 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17"), None);
    }
}
