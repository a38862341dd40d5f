//! Host metrics input: samples CPU, memory, swap, filesystems, block-device I/O, network
//! interfaces, load and processes from Linux `/proc` (and `statvfs(3)` for filesystem usage), in the
//! manner of Telegraf's `cpu`, `mem`, `swap`, `disk`, `diskio`, `net`, `system` and `processes`
//! plugins. [`HostMetricsSampler::sample`] is called once per interval (normally 10 s).
//!
//! # Points
//!
//! Part of record format version 1 (see [`crate::event`]); sinks and dashboards depend on these names.
//!
//! | name | tags | fields | source |
//! |---|---|---|---|
//! | `cpu` | `cpu` = `cpu-total`; `cpu0`, `cpu1`, … with `per_cpu` | `usage_user`, `usage_nice`, `usage_system`, `usage_idle`, `usage_iowait`, `usage_irq`, `usage_softirq`, `usage_steal` (Float, % of the interval) | `/proc/stat` |
//! | `mem` | — | `total`, `available`, `used`, `free`, `buffers`¹, `cached`¹ (Int, bytes); `used_percent` (Float) | `/proc/meminfo` |
//! | `swap` | — | `total`, `used`, `free` (Int, bytes); `used_percent` (Float) | `/proc/meminfo` |
//! | `disk` | `path`, `device`, `fstype` | `total`, `free`, `used` (Int, bytes); `used_percent` (Float); `inodes_total`, `inodes_free`, `inodes_used` (Int) | `/proc/self/mounts`, `statvfs` |
//! | `diskio` | `name` | `reads`, `writes`, `read_bytes`, `write_bytes`, `read_time_ms`, `write_time_ms`, `io_time_ms` (Int, cumulative); `read_bytes_per_sec`², `write_bytes_per_sec`² (Float) | `/proc/diskstats` |
//! | `net` | `interface` | `bytes_recv`, `bytes_sent`, `packets_recv`, `packets_sent`, `err_in`, `err_out`, `drop_in`, `drop_out` (Int, cumulative); `bytes_recv_per_sec`², `bytes_sent_per_sec`² (Float) | `/proc/net/dev` |
//! | `system` | — | `load1`, `load5`, `load15` (Float); `uptime_s`, `n_cpus` (Int) | `/proc/loadavg`, `/proc/uptime`, `/proc/stat` |
//! | `processes` | — | `total`, `running`, `sleeping`, `blocked`, `zombies`, `stopped`, `idle`, `threads` (Int) | `/proc/[pid]/stat` |
//!
//! ¹ Omitted when the kernel (or a container's `/proc` emulation) does not report it.
//! ² Omitted on the first sample of a device and when its counter went backwards (see below).
//!
//! Details:
//!
//! - **cpu**: shares of the jiffies spent in each state since the previous sample, so the fields of
//!   one point add up to 100. `guest` and `guest_nice` are not separate fields because the kernel
//!   already counts them in `user` and `nice`. No `cpu` point on the first sample, nor when no
//!   jiffy passed. A single state counter that went backwards (the kernel documents that `iowait`
//!   can) counts as 0 for that interval; if the sum went backwards (CPU taken offline and back),
//!   that CPU has no point for the interval. `per_cpu` only applies when `cpu` is on.
//! - **mem**: `used` = `total` − `available`, as `free(1)` does. Kernels before 3.14 have no
//!   `MemAvailable`; then `available` is estimated as `MemFree + Buffers + Cached + SReclaimable`.
//!   `used_percent` = `used` / `total` × 100.
//! - **swap**: `used` = `total` − `free`; `used_percent` is 0 on hosts without swap.
//! - **disk**: one point per mount point of the agent's mount namespace (`<proc_root>/self/mounts`,
//!   else `<proc_root>/mounts`). When a path is mounted over, only the visible (last) mount is
//!   reported; bind mounts of one device appear once per path. Skipped file system types, because
//!   they hold no persistent data or are read-only images that are always 100 % full:
//!   [`PSEUDO_FILESYSTEMS`] (`autofs`, `binfmt_misc`, `bpf`, `cgroup`, `cgroup2`, `configfs`,
//!   `debugfs`, `devpts`, `devtmpfs`, `efivarfs`, `fuse.lxcfs`, `fusectl`, `hugetlbfs`, `iso9660`,
//!   `mqueue`, `nfsd`, `nsfs`, `proc`, `pstore`, `ramfs`, `rootfs`, `rpc_pipefs`, `securityfs`,
//!   `selinuxfs`, `squashfs`, `sysfs`, `tmpfs`, `tracefs`) and anything else starting with
//!   `cgroup`; `overlay` is kept (container root file systems). File systems reporting zero blocks
//!   are skipped too. `free` is the space available to unprivileged users (`f_bavail`), `used` is
//!   `total` − all free blocks, and `used_percent` = `used` / (`used` + `free`) × 100, as `df(1)`
//!   computes it. A mount whose `statvfs` fails (e.g. permission denied) is skipped alone.
//! - **diskio**: every line of `/proc/diskstats` (whole disks and partitions) except `ram*` and
//!   `loop*` devices and devices that never completed a read or a write (unused `nbd*`, empty
//!   optical drives), which would otherwise add dozens of all-zero points per host. Byte counts are
//!   sectors × 512 (the kernel always counts 512-byte sectors here). Extra columns of newer
//!   kernels (discard, flush) are ignored.
//! - **net**: every interface of the agent's network namespace except `lo`.
//! - **system**: `n_cpus` counts the `cpuN` lines of `/proc/stat` (online CPUs); `uptime_s` is
//!   whole seconds.
//! - **processes**: counts thread-group leaders by the state letter of `/proc/[pid]/stat`:
//!   `R` running, `S` sleeping, `D` blocked, `Z` zombies, `T`/`t` stopped, `I` idle (kernel threads
//!   waiting for work); others (`X`, `P`, …) only in `total`. `threads` sums `num_threads`. A
//!   process that exits while the directory is scanned is left out.
//!
//! Counters that went backwards (a 32-bit counter wrapped, a device or interface was re-created)
//! give no rate for that interval, never a negative one; the next interval has rates again.
//!
//! A collector whose file is missing or malformed is skipped for that sample while the others
//! still report; the first failure is logged at `warn` with the reason, repeats at `debug` (it
//! is retried every interval) and recovery at `info`.

use crate::event::{FieldValue, MetricPoint};
use rustix::fs::{Mode, OFlags, RawDir};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// File system types the `disk` collector skips (besides every type starting with `cgroup`).
pub const PSEUDO_FILESYSTEMS: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fuse.lxcfs",
    "fusectl",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nfsd",
    "nsfs",
    "proc",
    "pstore",
    "ramfs",
    "rootfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
];

/// Which groups of host metrics are sampled (the `[inputs.host_metrics.collectors]` table;
/// every group is on by default).
pub use millrace_config::agent::HostCollectors as Collectors;

/// Samples host metrics from a `/proc` tree, keeping the previous counters to derive rates.
pub struct HostMetricsSampler {
    proc_root: PathBuf,
    paths: ProcPaths,
    collectors: Collectors,
    /// Read buffer for the whole-file reads, reused across files and samples.
    buf: Vec<u8>,
    /// Read buffer for one `/proc/[pid]/stat`.
    pid_buf: Vec<u8>,
    /// `getdents64` buffer for listing `<proc_root>`.
    dirent_buf: Vec<u8>,
    /// `/proc/stat` as read by the current sample (its vector is reused).
    cpu_cur: CpuStat,
    /// `/proc/stat` as of the previous successful read: the baseline of the next `cpu` points.
    cpu_prev: Option<CpuStat>,
    disk_history: CounterHistory,
    net_history: CounterHistory,
    /// Bit set of [`Collector`]s whose last attempt failed (so their warning was already logged).
    failing: u16,
    /// Points of the previous sample, to size the next vector.
    last_len: usize,
}

// By hand: the derived form would print the read buffers.
impl fmt::Debug for HostMetricsSampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostMetricsSampler")
            .field("proc_root", &self.proc_root)
            .field("collectors", &self.collectors)
            .field("failing", &self.failing)
            .finish_non_exhaustive()
    }
}

impl HostMetricsSampler {
    /// `proc_root` is normally "/proc" (tests pass a fixture dir); `collectors` chooses which groups run.
    pub fn new(proc_root: PathBuf, collectors: Collectors) -> Self {
        HostMetricsSampler {
            paths: ProcPaths::new(&proc_root),
            proc_root,
            collectors,
            buf: Vec::with_capacity(16 * 1024),
            pid_buf: Vec::with_capacity(1024),
            dirent_buf: Vec::with_capacity(32 * 1024),
            cpu_cur: CpuStat::default(),
            cpu_prev: None,
            disk_history: CounterHistory::default(),
            net_history: CounterHistory::default(),
            failing: 0,
            last_len: 0,
        }
    }

    /// One sample of every enabled collector at `now`. Counter-derived rates (cpu percentages, disk
    /// and network bytes/s) need the previous sample, so the first call reports only what needs no
    /// history; it never fails as a whole because one file is missing or malformed: that collector
    /// is skipped with a `tracing::warn` (once per collector, not every interval) and the rest is
    /// returned.
    pub fn sample(&mut self, now: SystemTime) -> Vec<MetricPoint> {
        let c = self.collectors;
        let mut out = Vec::with_capacity(self.last_len);

        // /proc/stat feeds both `cpu` and `system` (`n_cpus`); read it once.
        if c.cpu || c.load {
            let stat = read_file(&self.paths.stat, &mut self.buf).and_then(|()| {
                parse_stat(&text(&self.buf), &mut self.cpu_cur)
                    .map_err(|source| HostMetricsError::Parse { path: self.paths.stat.clone(), source })
            });
            let n_cpus = self.cpu_cur.per_cpu.len();
            if c.cpu {
                let start = out.len();
                if stat.is_ok() {
                    self.emit_cpu(now, c.per_cpu, &mut out);
                }
                self.settle(Collector::Cpu, stat.as_ref().err(), &mut out, start);
            }
            if c.load {
                let start = out.len();
                let own = if stat.is_ok() { self.collect_system(n_cpus, now, &mut out) } else { Ok(()) };
                self.settle(Collector::System, stat.as_ref().err().or(own.as_ref().err()), &mut out, start);
            }
        }

        // /proc/meminfo feeds both `mem` and `swap`.
        if c.memory || c.swap {
            let meminfo = read_file(&self.paths.meminfo, &mut self.buf).and_then(|()| {
                parse_meminfo(&text(&self.buf))
                    .map_err(|source| HostMetricsError::Parse { path: self.paths.meminfo.clone(), source })
            });
            if c.memory {
                let start = out.len();
                let own = match &meminfo {
                    Ok(info) => emit_mem(info, &self.paths.meminfo, now, &mut out),
                    Err(_) => Ok(()),
                };
                self.settle(Collector::Memory, meminfo.as_ref().err().or(own.as_ref().err()), &mut out, start);
            }
            if c.swap {
                let start = out.len();
                let own = match &meminfo {
                    Ok(info) => emit_swap(info, &self.paths.meminfo, now, &mut out),
                    Err(_) => Ok(()),
                };
                self.settle(Collector::Swap, meminfo.as_ref().err().or(own.as_ref().err()), &mut out, start);
            }
        }

        if c.disk {
            let start = out.len();
            let result = self.collect_disk(now, &mut out);
            self.settle(Collector::Disk, result.as_ref().err(), &mut out, start);
        }
        if c.diskio {
            let start = out.len();
            let result = self.collect_diskio(now, &mut out);
            self.settle(Collector::DiskIo, result.as_ref().err(), &mut out, start);
        }
        if c.net {
            let start = out.len();
            let result = self.collect_net(now, &mut out);
            self.settle(Collector::Net, result.as_ref().err(), &mut out, start);
        }
        if c.processes {
            let start = out.len();
            let result = count_processes(&self.proc_root, &mut self.dirent_buf, &mut self.pid_buf)
                .map(|counts| out.push(counts.point(now)));
            self.settle(Collector::Processes, result.as_ref().err(), &mut out, start);
        }

        self.last_len = out.len();
        out
    }

    /// Records the outcome of one collector: drops its partial points on failure and logs the
    /// first failure in a row at `warn` (an unreadable file stays unreadable, and one warning
    /// every 10 s on every host would drown the logs).
    fn settle(&mut self, which: Collector, error: Option<&HostMetricsError>, out: &mut Vec<MetricPoint>, start: usize) {
        let bit = which.bit();
        match error {
            Some(error) => {
                out.truncate(start);
                if self.failing & bit == 0 {
                    self.failing |= bit;
                    tracing::warn!(
                        collector = which.name(),
                        %error,
                        "host metrics collector skipped; retrying every interval without logging again"
                    );
                } else {
                    tracing::debug!(collector = which.name(), %error, "host metrics collector still failing");
                }
            }
            None if self.failing & bit != 0 => {
                self.failing &= !bit;
                tracing::info!(collector = which.name(), "host metrics collector works again");
            }
            None => {}
        }
    }

    /// `cpu` points from `cpu_cur` against `cpu_prev`, then keeps `cpu_cur` as the new baseline.
    fn emit_cpu(&mut self, now: SystemTime, per_cpu: bool, out: &mut Vec<MetricPoint>) {
        if let Some(prev) = &self.cpu_prev {
            if let Some(usage) = cpu_usage(&prev.total, &self.cpu_cur.total) {
                out.push(cpu_point("cpu-total".to_string(), &usage, now));
            }
            if per_cpu {
                for (i, (n, cur)) in self.cpu_cur.per_cpu.iter().enumerate() {
                    // CPUs are listed in the same order each time unless one went offline.
                    let before = match prev.per_cpu.get(i) {
                        Some((m, times)) if m == n => Some(times),
                        _ => prev.per_cpu.iter().find(|(m, _)| m == n).map(|(_, times)| times),
                    };
                    if let Some(usage) = before.and_then(|before| cpu_usage(before, cur)) {
                        out.push(cpu_point(format!("cpu{n}"), &usage, now));
                    }
                }
            }
        }
        // Swap rather than clone so both vectors keep their allocations.
        match &mut self.cpu_prev {
            Some(prev) => std::mem::swap(prev, &mut self.cpu_cur),
            None => self.cpu_prev = Some(std::mem::take(&mut self.cpu_cur)),
        }
    }

    fn collect_system(
        &mut self,
        n_cpus: usize,
        now: SystemTime,
        out: &mut Vec<MetricPoint>,
    ) -> Result<(), HostMetricsError> {
        read_file(&self.paths.loadavg, &mut self.buf)?;
        let [load1, load5, load15] = parse_loadavg(&text(&self.buf))
            .map_err(|source| HostMetricsError::Parse { path: self.paths.loadavg.clone(), source })?;
        read_file(&self.paths.uptime, &mut self.buf)?;
        let uptime = parse_uptime(&text(&self.buf))
            .map_err(|source| HostMetricsError::Parse { path: self.paths.uptime.clone(), source })?;
        out.push(
            MetricPoint::new("system", now)
                .field("load1", FieldValue::Float(load1))
                .field("load5", FieldValue::Float(load5))
                .field("load15", FieldValue::Float(load15))
                .field("uptime_s", int(uptime))
                .field("n_cpus", int(n_cpus as u64)),
        );
        Ok(())
    }

    fn collect_disk(&mut self, now: SystemTime, out: &mut Vec<MetricPoint>) -> Result<(), HostMetricsError> {
        let path = match read_file(&self.paths.self_mounts, &mut self.buf) {
            Ok(()) => &self.paths.self_mounts,
            // Kernels without /proc/self (or a fixture tree) still have the older /proc/mounts.
            Err(first) => match read_file(&self.paths.mounts, &mut self.buf) {
                Ok(()) => &self.paths.mounts,
                Err(_) => return Err(first),
            },
        };
        let mounts =
            parse_mounts(&self.buf).map_err(|source| HostMetricsError::Parse { path: path.clone(), source })?;
        for mount in select_mounts(&mounts) {
            let stat = match rustix::fs::statvfs(OsStr::from_bytes(&mount.path)) {
                Ok(stat) => stat,
                Err(error) => {
                    tracing::debug!(path = %String::from_utf8_lossy(&mount.path), %error, "skipping a mount point: statvfs failed");
                    continue;
                }
            };
            if stat.f_blocks == 0 {
                continue; // a pseudo file system missing from PSEUDO_FILESYSTEMS
            }
            let block = if stat.f_frsize > 0 { stat.f_frsize } else { stat.f_bsize };
            let total = stat.f_blocks.saturating_mul(block);
            let free = stat.f_bavail.saturating_mul(block);
            let used = stat.f_blocks.saturating_sub(stat.f_bfree).saturating_mul(block);
            let used_percent = percent(used, used.saturating_add(free));
            out.push(
                MetricPoint::new("disk", now)
                    .tag("path", String::from_utf8_lossy(&mount.path).into_owned())
                    .tag("device", String::from_utf8_lossy(&mount.device).into_owned())
                    .tag("fstype", mount.fstype.to_string())
                    .field("total", int(total))
                    .field("free", int(free))
                    .field("used", int(used))
                    .field("used_percent", FieldValue::Float(used_percent))
                    .field("inodes_total", int(stat.f_files))
                    .field("inodes_free", int(stat.f_ffree))
                    .field("inodes_used", int(stat.f_files.saturating_sub(stat.f_ffree))),
            );
        }
        Ok(())
    }

    fn collect_diskio(&mut self, now: SystemTime, out: &mut Vec<MetricPoint>) -> Result<(), HostMetricsError> {
        read_file(&self.paths.diskstats, &mut self.buf)?;
        let text = text(&self.buf);
        let disks = parse_diskstats(&text)
            .map_err(|source| HostMetricsError::Parse { path: self.paths.diskstats.clone(), source })?;
        let secs = elapsed_secs(self.disk_history.at, now);
        let mut seen = HashMap::with_capacity(self.disk_history.values.len());
        for disk in disks {
            if disk.name.starts_with("ram") || disk.name.starts_with("loop") || (disk.reads == 0 && disk.writes == 0) {
                continue;
            }
            // The kernel counts 512-byte units here whatever the device's sector size.
            let read_bytes = disk.read_sectors.saturating_mul(512);
            let write_bytes = disk.write_sectors.saturating_mul(512);
            let mut point = MetricPoint::new("diskio", now)
                .tag("name", disk.name)
                .field("reads", int(disk.reads))
                .field("writes", int(disk.writes))
                .field("read_bytes", int(read_bytes))
                .field("write_bytes", int(write_bytes))
                .field("read_time_ms", int(disk.read_time_ms))
                .field("write_time_ms", int(disk.write_time_ms))
                .field("io_time_ms", int(disk.io_time_ms));
            let (key, prev) = self.disk_history.take(disk.name);
            if let (Some(secs), Some([prev_read, prev_write])) = (secs, prev) {
                if let Some(rate) = per_sec(read_bytes, prev_read, secs) {
                    point = point.field("read_bytes_per_sec", FieldValue::Float(rate));
                }
                if let Some(rate) = per_sec(write_bytes, prev_write, secs) {
                    point = point.field("write_bytes_per_sec", FieldValue::Float(rate));
                }
            }
            seen.insert(key, [read_bytes, write_bytes]);
            out.push(point);
        }
        // Devices that disappeared are forgotten with the old map.
        self.disk_history = CounterHistory { at: Some(now), values: seen };
        Ok(())
    }

    fn collect_net(&mut self, now: SystemTime, out: &mut Vec<MetricPoint>) -> Result<(), HostMetricsError> {
        read_file(&self.paths.net_dev, &mut self.buf)?;
        let text = text(&self.buf);
        let interfaces = parse_net_dev(&text)
            .map_err(|source| HostMetricsError::Parse { path: self.paths.net_dev.clone(), source })?;
        let secs = elapsed_secs(self.net_history.at, now);
        let mut seen = HashMap::with_capacity(self.net_history.values.len());
        for dev in interfaces {
            if dev.name == "lo" {
                continue;
            }
            let mut point = MetricPoint::new("net", now)
                .tag("interface", dev.name)
                .field("bytes_recv", int(dev.bytes_recv))
                .field("bytes_sent", int(dev.bytes_sent))
                .field("packets_recv", int(dev.packets_recv))
                .field("packets_sent", int(dev.packets_sent))
                .field("err_in", int(dev.err_in))
                .field("err_out", int(dev.err_out))
                .field("drop_in", int(dev.drop_in))
                .field("drop_out", int(dev.drop_out));
            let (key, prev) = self.net_history.take(dev.name);
            if let (Some(secs), Some([prev_recv, prev_sent])) = (secs, prev) {
                if let Some(rate) = per_sec(dev.bytes_recv, prev_recv, secs) {
                    point = point.field("bytes_recv_per_sec", FieldValue::Float(rate));
                }
                if let Some(rate) = per_sec(dev.bytes_sent, prev_sent, secs) {
                    point = point.field("bytes_sent_per_sec", FieldValue::Float(rate));
                }
            }
            seen.insert(key, [dev.bytes_recv, dev.bytes_sent]);
            out.push(point);
        }
        self.net_history = CounterHistory { at: Some(now), values: seen };
        Ok(())
    }
}

/// The files read, joined to the proc root once.
#[derive(Debug)]
struct ProcPaths {
    stat: PathBuf,
    meminfo: PathBuf,
    self_mounts: PathBuf,
    mounts: PathBuf,
    diskstats: PathBuf,
    net_dev: PathBuf,
    loadavg: PathBuf,
    uptime: PathBuf,
}

impl ProcPaths {
    fn new(root: &Path) -> ProcPaths {
        ProcPaths {
            stat: root.join("stat"),
            meminfo: root.join("meminfo"),
            self_mounts: root.join("self/mounts"),
            mounts: root.join("mounts"),
            diskstats: root.join("diskstats"),
            net_dev: root.join("net/dev"),
            loadavg: root.join("loadavg"),
            uptime: root.join("uptime"),
        }
    }
}

/// A collector, for the warn-once bookkeeping and log fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Collector {
    Cpu,
    Memory,
    Swap,
    Disk,
    DiskIo,
    Net,
    System,
    Processes,
}

impl Collector {
    fn bit(self) -> u16 {
        1 << self as u16
    }

    fn name(self) -> &'static str {
        match self {
            Collector::Cpu => "cpu",
            Collector::Memory => "mem",
            Collector::Swap => "swap",
            Collector::Disk => "disk",
            Collector::DiskIo => "diskio",
            Collector::Net => "net",
            Collector::System => "system",
            Collector::Processes => "processes",
        }
    }
}

/// Why a collector was skipped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HostMetricsError {
    /// The file (or directory) could not be read.
    #[error("{op} {}: {source}", .path.display())]
    Read {
        /// What was being done ("reading", "listing").
        op: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file does not have the expected format.
    #[error("unexpected format of {}: {source}", .path.display())]
    Parse {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong, and where.
        source: ParseError,
    },
}

/// A `/proc` file that does not look as documented in `proc(5)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    /// 1-based line number; 0 when the problem concerns the whole file (a missing line).
    pub(crate) line: usize,
    /// What is wrong.
    pub(crate) reason: &'static str,
}

impl ParseError {
    fn at(index: usize, reason: &'static str) -> ParseError {
        ParseError { line: index + 1, reason }
    }

    fn whole(reason: &'static str) -> ParseError {
        ParseError { line: 0, reason }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            0 => f.write_str(self.reason),
            line => write!(f, "line {line}: {}", self.reason),
        }
    }
}

impl std::error::Error for ParseError {}

/// Reads all of `path` into `buf` (cleared first), reusing its allocation.
fn read_file(path: &Path, buf: &mut Vec<u8>) -> Result<(), HostMetricsError> {
    buf.clear();
    File::open(path).and_then(|mut file| file.read_to_end(buf)).map(drop).map_err(|source| HostMetricsError::Read {
        op: "reading",
        path: path.to_path_buf(),
        source,
    })
}

/// The buffer as text; kernel output is ASCII, so this borrows and never allocates in practice.
fn text(buf: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(buf)
}

/// An integer field; counters beyond `i64::MAX` (which no real counter reaches) saturate.
fn int(value: u64) -> FieldValue {
    FieldValue::Int(i64::try_from(value).unwrap_or(i64::MAX))
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Seconds since the previous reading, if there was one and the clock moved forward.
fn elapsed_secs(prev: Option<SystemTime>, now: SystemTime) -> Option<f64> {
    let elapsed = now.duration_since(prev?).ok()?;
    (!elapsed.is_zero()).then_some(elapsed.as_secs_f64())
}

/// Rate of a cumulative counter; `None` when it went backwards (wrapped or reset), because the
/// increase over the interval is then unknown.
pub(crate) fn per_sec(current: u64, previous: u64, secs: f64) -> Option<f64> {
    current.checked_sub(previous).map(|delta| delta as f64 / secs)
}

/// Last counters per device or interface, and when they were read.
#[derive(Debug, Default)]
struct CounterHistory {
    at: Option<SystemTime>,
    values: HashMap<String, [u64; 2]>,
}

impl CounterHistory {
    /// Removes the entry of `name`, returning its key (to reuse the allocation) and counters.
    fn take(&mut self, name: &str) -> (String, Option<[u64; 2]>) {
        match self.values.remove_entry(name) {
            Some((key, values)) => (key, Some(values)),
            None => (name.to_string(), None),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// cpu: /proc/stat

/// Field names of [`CpuTimes`], in `/proc/stat` column order.
const CPU_FIELDS: [&str; 8] = [
    "usage_user",
    "usage_nice",
    "usage_system",
    "usage_idle",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
];

/// Jiffies of one `cpu` line: user, nice, system, idle, iowait, irq, softirq, steal (the later
/// `guest` columns are already included in user and nice).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CpuTimes(pub(crate) [u64; 8]);

/// The `cpu` lines of `/proc/stat`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct CpuStat {
    /// The aggregate `cpu` line.
    pub(crate) total: CpuTimes,
    /// `(N, times)` of each `cpuN` line, in file order.
    pub(crate) per_cpu: Vec<(u32, CpuTimes)>,
}

/// Parses `/proc/stat` into `out`, reusing its vector. Kernels older than 2.6.11 have fewer than
/// eight columns; the missing ones are 0.
pub(crate) fn parse_stat(text: &str, out: &mut CpuStat) -> Result<(), ParseError> {
    out.per_cpu.clear();
    let mut total = None;
    for (index, line) in text.lines().enumerate() {
        let mut columns = line.split_ascii_whitespace();
        let Some(label) = columns.next() else { continue };
        let Some(suffix) = label.strip_prefix("cpu") else {
            if total.is_some() {
                break; // the cpu lines come first; the long `intr` line and the rest are not needed
            }
            continue;
        };
        let mut jiffies = [0u64; 8];
        let mut found = 0;
        for (slot, column) in jiffies.iter_mut().zip(columns) {
            *slot = column.parse().map_err(|_| ParseError::at(index, "a cpu time is not a number"))?;
            found += 1;
        }
        if found < 4 {
            return Err(ParseError::at(index, "a cpu line has fewer than four times"));
        }
        if suffix.is_empty() {
            total = Some(CpuTimes(jiffies));
        } else {
            let n = suffix.parse().map_err(|_| ParseError::at(index, "a cpu line is not named cpuN"))?;
            out.per_cpu.push((n, CpuTimes(jiffies)));
        }
    }
    out.total = total.ok_or(ParseError::whole("no aggregate `cpu` line"))?;
    Ok(())
}

/// Percentage of the interval spent in each state, or `None` when there is nothing to report: no
/// jiffy passed, or the counters were reset (their sum went backwards).
pub(crate) fn cpu_usage(prev: &CpuTimes, cur: &CpuTimes) -> Option<[f64; 8]> {
    let sum = |t: &CpuTimes| t.0.iter().fold(0u64, |acc, v| acc.saturating_add(*v));
    if sum(cur) < sum(prev) {
        return None;
    }
    // A single state may go backwards (proc(5) says so of iowait): count it as no time.
    let deltas: [u64; 8] = std::array::from_fn(|i| cur.0[i].saturating_sub(prev.0[i]));
    let total: u64 = deltas.iter().sum();
    if total == 0 {
        return None;
    }
    Some(deltas.map(|d| percent(d, total)))
}

fn cpu_point(cpu: String, usage: &[f64; 8], now: SystemTime) -> MetricPoint {
    let mut point = MetricPoint::new("cpu", now).tag("cpu", cpu);
    for (name, value) in CPU_FIELDS.iter().zip(usage) {
        point = point.field(*name, FieldValue::Float(*value));
    }
    point
}

// ---------------------------------------------------------------------------------------------
// mem and swap: /proc/meminfo

/// The `/proc/meminfo` values used, in bytes; `None` when the line is absent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MemInfo {
    pub(crate) mem_total: Option<u64>,
    pub(crate) mem_free: Option<u64>,
    pub(crate) mem_available: Option<u64>,
    pub(crate) buffers: Option<u64>,
    pub(crate) cached: Option<u64>,
    pub(crate) s_reclaimable: Option<u64>,
    pub(crate) swap_total: Option<u64>,
    pub(crate) swap_free: Option<u64>,
}

/// Parses `/proc/meminfo` (`Key:   value kB` lines). Only the keys used are checked, so a line
/// this code does not know cannot break it.
pub(crate) fn parse_meminfo(text: &str) -> Result<MemInfo, ParseError> {
    let mut info = MemInfo::default();
    for (index, line) in text.lines().enumerate() {
        let Some((key, rest)) = line.split_once(':') else { continue };
        let slot = match key {
            "MemTotal" => &mut info.mem_total,
            "MemFree" => &mut info.mem_free,
            "MemAvailable" => &mut info.mem_available,
            "Buffers" => &mut info.buffers,
            "Cached" => &mut info.cached,
            "SReclaimable" => &mut info.s_reclaimable,
            "SwapTotal" => &mut info.swap_total,
            "SwapFree" => &mut info.swap_free,
            _ => continue,
        };
        let mut parts = rest.split_ascii_whitespace();
        let value: u64 =
            parts.next().and_then(|v| v.parse().ok()).ok_or(ParseError::at(index, "the value is not a number"))?;
        *slot = Some(match parts.next() {
            Some("kB") => value.saturating_mul(1024),
            None => value,
            Some(_) => return Err(ParseError::at(index, "the unit is not kB")),
        });
    }
    Ok(info)
}

fn missing(path: &Path, reason: &'static str) -> HostMetricsError {
    HostMetricsError::Parse { path: path.to_path_buf(), source: ParseError::whole(reason) }
}

fn emit_mem(info: &MemInfo, path: &Path, now: SystemTime, out: &mut Vec<MetricPoint>) -> Result<(), HostMetricsError> {
    let total = info.mem_total.filter(|t| *t > 0).ok_or_else(|| missing(path, "no MemTotal line, or it is 0"))?;
    let free = info.mem_free.ok_or_else(|| missing(path, "no MemFree line"))?;
    // Before Linux 3.14 there is no MemAvailable; estimate it as tools did then.
    let available = info.mem_available.unwrap_or_else(|| {
        [Some(free), info.buffers, info.cached, info.s_reclaimable]
            .iter()
            .flatten()
            .fold(0u64, |acc, v| acc.saturating_add(*v))
            .min(total)
    });
    let used = total.saturating_sub(available);
    let mut point = MetricPoint::new("mem", now)
        .field("total", int(total))
        .field("available", int(available))
        .field("used", int(used))
        .field("free", int(free))
        .field("used_percent", FieldValue::Float(percent(used, total)));
    if let Some(buffers) = info.buffers {
        point = point.field("buffers", int(buffers));
    }
    if let Some(cached) = info.cached {
        point = point.field("cached", int(cached));
    }
    out.push(point);
    Ok(())
}

fn emit_swap(info: &MemInfo, path: &Path, now: SystemTime, out: &mut Vec<MetricPoint>) -> Result<(), HostMetricsError> {
    let total = info.swap_total.ok_or_else(|| missing(path, "no SwapTotal line"))?;
    let free = info.swap_free.ok_or_else(|| missing(path, "no SwapFree line"))?;
    let used = total.saturating_sub(free);
    out.push(
        MetricPoint::new("swap", now)
            .field("total", int(total))
            .field("used", int(used))
            .field("free", int(free))
            .field("used_percent", FieldValue::Float(percent(used, total))),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// disk: /proc/self/mounts

/// One line of a `mounts` file, octal escapes (`\040` for a space) decoded. Paths are bytes
/// because Linux paths need not be UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount<'a> {
    pub(crate) device: Cow<'a, [u8]>,
    pub(crate) path: Cow<'a, [u8]>,
    pub(crate) fstype: Cow<'a, str>,
}

/// Parses a `mounts` file (`device mount-point fstype options dump pass`).
pub(crate) fn parse_mounts(text: &[u8]) -> Result<Vec<Mount<'_>>, ParseError> {
    let mut mounts = Vec::new();
    for (index, line) in text.split(|b| *b == b'\n').enumerate() {
        let mut columns = line.split(u8::is_ascii_whitespace).filter(|c| !c.is_empty());
        let Some(device) = columns.next() else { continue };
        let (Some(path), Some(fstype)) = (columns.next(), columns.next()) else {
            return Err(ParseError::at(index, "a mount line has fewer than three columns"));
        };
        mounts.push(Mount {
            device: unescape_octal(device),
            path: unescape_octal(path),
            fstype: String::from_utf8_lossy(fstype),
        });
    }
    Ok(mounts)
}

/// Decodes the `\NNN` octal escapes the kernel writes for space, tab, newline and backslash.
fn unescape_octal(field: &[u8]) -> Cow<'_, [u8]> {
    if !field.contains(&b'\\') {
        return Cow::Borrowed(field);
    }
    let mut out = Vec::with_capacity(field.len());
    let mut rest = field;
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'\\' {
            if let Some(&[a, b, c]) = tail.get(..3) {
                let digits = [a, b, c];
                if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                    let value = digits.iter().fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                    if let Ok(byte) = u8::try_from(value) {
                        out.push(byte);
                        rest = &tail[3..];
                        continue;
                    }
                }
            }
        }
        out.push(first);
        rest = tail;
    }
    Cow::Owned(out)
}

/// Whether the `disk` collector skips file systems of this type.
pub(crate) fn is_pseudo_fs(fstype: &str) -> bool {
    fstype.starts_with("cgroup") || PSEUDO_FILESYSTEMS.contains(&fstype)
}

/// The mounts to report, in mount order: no pseudo file systems, and of several mounts on one path
/// only the last, the one visible there.
pub(crate) fn select_mounts<'m, 'a>(mounts: &'m [Mount<'a>]) -> Vec<&'m Mount<'a>> {
    let mut seen = HashSet::new();
    let mut selected: Vec<_> =
        mounts.iter().rev().filter(|m| !is_pseudo_fs(&m.fstype) && seen.insert(&*m.path)).collect();
    selected.reverse();
    selected
}

// ---------------------------------------------------------------------------------------------
// diskio: /proc/diskstats

/// The `/proc/diskstats` counters used, for one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DiskStat<'a> {
    pub(crate) name: &'a str,
    pub(crate) reads: u64,
    pub(crate) read_sectors: u64,
    pub(crate) read_time_ms: u64,
    pub(crate) writes: u64,
    pub(crate) write_sectors: u64,
    pub(crate) write_time_ms: u64,
    pub(crate) io_time_ms: u64,
}

/// Parses `/proc/diskstats`: major, minor, name and at least the eleven I/O columns of Linux
/// 2.6.25+; the discard (4.18) and flush (5.5) columns that follow are ignored.
pub(crate) fn parse_diskstats(text: &str) -> Result<Vec<DiskStat<'_>>, ParseError> {
    let mut disks = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let mut columns = line.split_ascii_whitespace();
        let Some(_major) = columns.next() else { continue };
        let (Some(_minor), Some(name)) = (columns.next(), columns.next()) else {
            return Err(ParseError::at(index, "a diskstats line has no device name"));
        };
        let mut v = [0u64; 11];
        let mut found = 0;
        for (slot, column) in v.iter_mut().zip(columns) {
            *slot = column.parse().map_err(|_| ParseError::at(index, "a diskstats counter is not a number"))?;
            found += 1;
        }
        if found < v.len() {
            return Err(ParseError::at(index, "a diskstats line has fewer than 14 columns"));
        }
        // Columns 4..=14: reads, reads merged, sectors read, ms reading, writes, writes merged,
        // sectors written, ms writing, I/Os in flight, ms doing I/O, weighted ms doing I/O.
        disks.push(DiskStat {
            name,
            reads: v[0],
            read_sectors: v[2],
            read_time_ms: v[3],
            writes: v[4],
            write_sectors: v[6],
            write_time_ms: v[7],
            io_time_ms: v[9],
        });
    }
    Ok(disks)
}

// ---------------------------------------------------------------------------------------------
// net: /proc/net/dev

/// The `/proc/net/dev` counters used, for one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NetDev<'a> {
    pub(crate) name: &'a str,
    pub(crate) bytes_recv: u64,
    pub(crate) packets_recv: u64,
    pub(crate) err_in: u64,
    pub(crate) drop_in: u64,
    pub(crate) bytes_sent: u64,
    pub(crate) packets_sent: u64,
    pub(crate) err_out: u64,
    pub(crate) drop_out: u64,
}

/// Parses `/proc/net/dev`: two header lines, then `name: 8 receive and 8 transmit counters`.
pub(crate) fn parse_net_dev(text: &str) -> Result<Vec<NetDev<'_>>, ParseError> {
    let mut interfaces = Vec::new();
    for (index, line) in text.lines().enumerate() {
        // Interface names cannot contain ':' but a wide counter can follow it without a space
        // (`eth0:1234567890`), so split at the colon rather than at whitespace.
        let Some((name, counters)) = line.rsplit_once(':') else {
            if line.contains('|') || line.trim().is_empty() {
                continue; // header
            }
            return Err(ParseError::at(index, "no ':' after the interface name"));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(ParseError::at(index, "an empty interface name"));
        }
        let mut v = [0u64; 16];
        let mut found = 0;
        for (slot, column) in v.iter_mut().zip(counters.split_ascii_whitespace()) {
            *slot = column.parse().map_err(|_| ParseError::at(index, "an interface counter is not a number"))?;
            found += 1;
        }
        if found < v.len() {
            return Err(ParseError::at(index, "an interface line has fewer than 16 counters"));
        }
        // Receive: bytes packets errs drop fifo frame compressed multicast;
        // transmit: bytes packets errs drop fifo colls carrier compressed.
        interfaces.push(NetDev {
            name,
            bytes_recv: v[0],
            packets_recv: v[1],
            err_in: v[2],
            drop_in: v[3],
            bytes_sent: v[8],
            packets_sent: v[9],
            err_out: v[10],
            drop_out: v[11],
        });
    }
    Ok(interfaces)
}

// ---------------------------------------------------------------------------------------------
// system: /proc/loadavg, /proc/uptime

fn non_negative(column: Option<&str>) -> Option<f64> {
    column?.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)
}

/// Parses `/proc/loadavg` (`0.52 0.58 0.59 2/1234 56789`) into the 1, 5 and 15 minute averages.
pub(crate) fn parse_loadavg(text: &str) -> Result<[f64; 3], ParseError> {
    let mut columns = text.split_ascii_whitespace();
    let mut load = [0.0; 3];
    for slot in &mut load {
        *slot = non_negative(columns.next()).ok_or(ParseError::at(0, "a load average is not a number"))?;
    }
    Ok(load)
}

/// Parses `/proc/uptime` (`12345.67 23456.78`) into whole seconds since boot.
pub(crate) fn parse_uptime(text: &str) -> Result<u64, ParseError> {
    let secs =
        non_negative(text.split_ascii_whitespace().next()).ok_or(ParseError::at(0, "the uptime is not a number"))?;
    Ok(secs as u64)
}

// ---------------------------------------------------------------------------------------------
// processes: /proc/[pid]/stat

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

    fn point(&self, now: SystemTime) -> MetricPoint {
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
fn count_processes(
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
    use std::fs;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    fn approx(value: Option<&FieldValue>, expected: f64) {
        match value {
            Some(FieldValue::Float(v)) => assert!((v - expected).abs() < 1e-9, "{v} != {expected}"),
            other => panic!("expected Float({expected}), got {other:?}"),
        }
    }

    fn find<'p>(points: &'p [MetricPoint], name: &str, tag: Option<(&str, &str)>) -> Option<&'p MetricPoint> {
        points.iter().find(|p| p.name == name && tag.is_none_or(|(k, v)| p.tags.get(k).map(String::as_str) == Some(v)))
    }

    fn get<'p>(points: &'p [MetricPoint], name: &str, tag: Option<(&str, &str)>) -> &'p MetricPoint {
        find(points, name, tag).unwrap_or_else(|| panic!("no {name} point with {tag:?} in {points:#?}"))
    }

    const STAT: &str = "\
cpu  1000 100 500 8000 200 0 50 0 0 0
cpu0 500 50 250 4000 100 0 25 0 0 0
cpu1 500 50 250 4000 100 0 25 0 0 0
intr 1234567 37 9 0 0 0 0 0 0 0 0 0 0 0 0 0
ctxt 987654
btime 1700000000
processes 4567
procs_running 2
procs_blocked 0
softirq 55555 0 1 2 3 4 5 6 7 8 9
";

    #[test]
    fn parses_proc_stat() {
        let mut stat = CpuStat::default();
        parse_stat(STAT, &mut stat).unwrap();
        assert_eq!(stat.total, CpuTimes([1000, 100, 500, 8000, 200, 0, 50, 0]));
        assert_eq!(stat.per_cpu.len(), 2);
        assert_eq!(stat.per_cpu[1], (1, CpuTimes([500, 50, 250, 4000, 100, 0, 25, 0])));

        // An old kernel (no steal, guest), sparse CPU numbers (cpu1 offline); the vector is reused.
        parse_stat("cpu 10 0 5 100 1 0 0\ncpu0 6 0 3 50 1 0 0\ncpu2 4 0 2 50 0 0 0\n", &mut stat).unwrap();
        assert_eq!(stat.total, CpuTimes([10, 0, 5, 100, 1, 0, 0, 0]));
        assert_eq!(stat.per_cpu.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [0, 2]);

        assert_eq!(parse_stat("intr 1 2 3\n", &mut stat), Err(ParseError::whole("no aggregate `cpu` line")));
        assert_eq!(parse_stat("cpu 1 2 x 4\n", &mut stat).unwrap_err().line, 1);
        assert_eq!(parse_stat("cpu 1 2 3 4\ncpu0 1 2\n", &mut stat).unwrap_err().line, 2);
        assert_eq!(parse_stat("cpu 1 2 3 4\ncpuX 1 2 3 4\n", &mut stat).unwrap_err().line, 2);
    }

    #[test]
    fn cpu_usage_is_a_share_of_the_interval() {
        let prev = CpuTimes([100, 0, 50, 800, 10, 0, 0, 0]);
        let cur = CpuTimes([150, 0, 75, 820, 15, 0, 0, 0]);
        let usage = cpu_usage(&prev, &cur).unwrap();
        assert_eq!(usage, [50.0, 0.0, 25.0, 20.0, 5.0, 0.0, 0.0, 0.0]);
        // No jiffy passed.
        assert_eq!(cpu_usage(&cur, &cur), None);
        // iowait going backwards counts as 0, and the rest still adds up to 100.
        let usage = cpu_usage(&prev, &CpuTimes([150, 0, 50, 850, 5, 0, 0, 0])).unwrap();
        assert_eq!(usage, [50.0, 0.0, 0.0, 50.0, 0.0, 0.0, 0.0, 0.0]);
        // The sum went backwards: counters were reset.
        assert_eq!(cpu_usage(&cur, &prev), None);
    }

    const MEMINFO: &str = "\
MemTotal:       16303412 kB
MemFree:         1203116 kB
MemAvailable:    9876544 kB
Buffers:          345676 kB
Cached:          7654320 kB
SwapCached:         1024 kB
Active:          6543210 kB
SReclaimable:     456780 kB
SwapTotal:       2097148 kB
SwapFree:        1048572 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
DirectMap1G:     8388608 kB
";

    #[test]
    fn parses_meminfo() {
        let info = parse_meminfo(MEMINFO).unwrap();
        assert_eq!(info.mem_total, Some(16_303_412 * 1024));
        assert_eq!(info.mem_available, Some(9_876_544 * 1024));
        assert_eq!(info.swap_free, Some(1_048_572 * 1024));
        assert_eq!(parse_meminfo("MemTotal: lots kB\n").unwrap_err(), ParseError::at(0, "the value is not a number"));
        assert_eq!(parse_meminfo("MemFree: 1\nMemTotal: 1 MB\n").unwrap_err().line, 2);
        // Unknown keys with odd values do not matter.
        assert!(parse_meminfo("Weird: x y z\nno colon here\n").is_ok());
    }

    #[test]
    fn mem_and_swap_points() {
        let mut out = Vec::new();
        let path = Path::new("/proc/meminfo");
        let info = parse_meminfo(MEMINFO).unwrap();
        emit_mem(&info, path, at(0), &mut out).unwrap();
        emit_swap(&info, path, at(0), &mut out).unwrap();
        let mem = &out[0];
        let (total, available) = (16_303_412i64 * 1024, 9_876_544i64 * 1024);
        assert_eq!(mem.fields["total"], FieldValue::Int(total));
        assert_eq!(mem.fields["available"], FieldValue::Int(available));
        assert_eq!(mem.fields["used"], FieldValue::Int(total - available));
        assert_eq!(mem.fields["free"], FieldValue::Int(1_203_116 * 1024));
        assert_eq!(mem.fields["buffers"], FieldValue::Int(345_676 * 1024));
        assert_eq!(mem.fields["cached"], FieldValue::Int(7_654_320 * 1024));
        approx(mem.fields.get("used_percent"), (total - available) as f64 * 100.0 / total as f64);
        let swap = &out[1];
        assert_eq!(swap.fields["used"], FieldValue::Int(1_048_576 * 1024));
        approx(swap.fields.get("used_percent"), 1_048_576.0 * 100.0 / 2_097_148.0);

        // A pre-3.14 kernel or a container's emulated meminfo: no MemAvailable, no Buffers.
        let info =
            parse_meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nCached: 300 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n")
                .unwrap();
        out.clear();
        emit_mem(&info, path, at(0), &mut out).unwrap();
        emit_swap(&info, path, at(0), &mut out).unwrap();
        assert_eq!(out[0].fields["available"], FieldValue::Int(400 * 1024));
        assert_eq!(out[0].fields["used"], FieldValue::Int(600 * 1024));
        assert!(!out[0].fields.contains_key("buffers"));
        approx(out[1].fields.get("used_percent"), 0.0); // no swap at all

        let no_swap_lines = parse_meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\n").unwrap();
        assert!(emit_swap(&no_swap_lines, path, at(0), &mut out).is_err());
        assert!(emit_mem(&MemInfo::default(), path, at(0), &mut out).is_err());
    }

    const MOUNTS: &str = "\
/dev/nvme0n1p2 / ext4 rw,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /run tmpfs rw,nosuid,nodev,size=3260332k,mode=755 0 0
cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0
cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0
/dev/loop3 /snap/core20/2105 squashfs ro,nodev,relatime 0 0
overlay /var/lib/docker/overlay2/3f2a/merged overlay rw,lowerdir=/var/lib/docker/overlay2/l/A:/var/lib/docker/overlay2/l/B 0 0
/dev/sdb1 /mnt/millrace\\040fixture xfs rw,noatime 0 0
/dev/sdc1 /srv/millrace-fixture ext4 rw 0 0
/dev/sdd1 /srv/millrace-fixture xfs rw 0 0
";

    #[test]
    fn parses_and_selects_mounts() {
        let mounts = parse_mounts(MOUNTS.as_bytes()).unwrap();
        assert_eq!(mounts.len(), 11);
        assert_eq!(&*mounts[8].path, b"/mnt/millrace fixture");
        let selected: Vec<_> = select_mounts(&mounts)
            .iter()
            .map(|m| (String::from_utf8_lossy(&m.path).into_owned(), m.device.clone(), m.fstype.to_string()))
            .collect();
        let expected = [
            ("/", &b"/dev/nvme0n1p2"[..], "ext4"),
            ("/var/lib/docker/overlay2/3f2a/merged", &b"overlay"[..], "overlay"),
            ("/mnt/millrace fixture", &b"/dev/sdb1"[..], "xfs"),
            ("/srv/millrace-fixture", &b"/dev/sdd1"[..], "xfs"), // mounted over /dev/sdc1
        ];
        assert_eq!(selected.len(), expected.len(), "{selected:?}");
        for ((path, device, fstype), (want_path, want_device, want_fstype)) in selected.iter().zip(expected) {
            assert_eq!((path.as_str(), &**device, fstype.as_str()), (want_path, want_device, want_fstype));
        }
        assert_eq!(parse_mounts(b"/dev/sda1 /\n").unwrap_err().line, 1);
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(&*unescape_octal(br"/a\040b\011c\134d\012"), b"/a b\tc\\d\n");
        assert!(matches!(unescape_octal(b"/plain"), Cow::Borrowed(_)));
        // Not an escape: kept as written.
        assert_eq!(&*unescape_octal(br"/x\9\04"), br"/x\9\04");
        assert_eq!(&*unescape_octal(br"/x\777"), br"/x\777");
    }

    // Linux 5.5+ (20 columns), 4.18+ (18), and older (14) lines mixed, as after an upgrade they
    // never are, to check that each width is accepted.
    const DISKSTATS: &str = "\
   7       0 loop0 52 0 2104 12 0 0 0 0 0 20 12 0 0 0 0 0 0
   1       0 ram0 0 0 0 0 0 0 0 0 0 0 0
 259       0 nvme0n1 10000 100 2048000 5000 20000 200 4096000 15000 0 18000 20000 0 0 0 0 100 50
 259       1 nvme0n1p1 9000 100 1843200 4500 19000 200 3891200 14000 0 17000 18500 0 0 0 0
   8      16 sdb 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 252       0 dm-0 5000 0 1024000 3000 7000 0 1433600 9000 0 8000 12000
";

    #[test]
    fn parses_diskstats() {
        let disks = parse_diskstats(DISKSTATS).unwrap();
        assert_eq!(disks.len(), 6);
        assert_eq!(
            disks[2],
            DiskStat {
                name: "nvme0n1",
                reads: 10000,
                read_sectors: 2_048_000,
                read_time_ms: 5000,
                writes: 20000,
                write_sectors: 4_096_000,
                write_time_ms: 15000,
                io_time_ms: 18000,
            }
        );
        assert_eq!(disks[5].name, "dm-0");
        assert_eq!(disks[5].io_time_ms, 8000);
        assert_eq!(
            parse_diskstats("8 0 sda 1 2 3\n").unwrap_err(),
            ParseError::at(0, "a diskstats line has fewer than 14 columns")
        );
        assert_eq!(parse_diskstats("\n8 0\n").unwrap_err().line, 2);
        assert_eq!(parse_diskstats("8 0 sda 1 2 3 4 5 6 7 8 9 x 11\n").unwrap_err().line, 1);
    }

    const NET_DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:   90000     900    0    0    0     0          0         0    90000     900    0    0    0     0       0          0
  eth0:1234567890 1000000 1 2 0 0 0 5 987654321 800000 3 4 0 0 0 0
docker0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
";

    #[test]
    fn parses_net_dev() {
        let interfaces = parse_net_dev(NET_DEV).unwrap();
        assert_eq!(interfaces.iter().map(|i| i.name).collect::<Vec<_>>(), ["lo", "eth0", "docker0"]);
        assert_eq!(
            interfaces[1],
            NetDev {
                name: "eth0",
                bytes_recv: 1_234_567_890,
                packets_recv: 1_000_000,
                err_in: 1,
                drop_in: 2,
                bytes_sent: 987_654_321,
                packets_sent: 800_000,
                err_out: 3,
                drop_out: 4,
            }
        );
        assert_eq!(parse_net_dev("eth0: 1 2 3\n").unwrap_err().reason, "an interface line has fewer than 16 counters");
        assert_eq!(parse_net_dev("h|h\nh|h\neth0 1 2\n").unwrap_err().line, 3);
        assert_eq!(
            parse_net_dev(":1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n").unwrap_err().reason,
            "an empty interface name"
        );
    }

    #[test]
    fn parses_loadavg_and_uptime() {
        assert_eq!(parse_loadavg("0.52 1.58 12.59 2/1234 56789\n").unwrap(), [0.52, 1.58, 12.59]);
        assert!(parse_loadavg("0.52 1.58\n").is_err());
        assert!(parse_loadavg("0.52 nan 1\n").is_err());
        assert_eq!(parse_uptime("350735.47 234388.90\n").unwrap(), 350_735);
        assert!(parse_uptime("-1 0\n").is_err());
        assert!(parse_uptime("").is_err());
    }

    fn pid_stat(pid: u32, comm: &str, state: char, threads: u32) -> String {
        format!(
            "{pid} ({comm}) {state} 1 {pid} {pid} 0 -1 4194560 2305 0 11 0 35 12 0 0 20 0 {threads} 0 512 \
             178479104 3250 18446744073709551615 1 1 0 0 0 0 0 4096 1260 0 0 0 17 3 0 0 0 0 0\n"
        )
    }

    #[test]
    fn parses_pid_stat() {
        assert_eq!(parse_pid_stat(pid_stat(1, "systemd", 'S', 1).as_bytes()), Some((b'S', 1)));
        // The command name may contain spaces and parentheses.
        assert_eq!(parse_pid_stat(pid_stat(7, "a) R (b", 'D', 12).as_bytes()), Some((b'D', 12)));
        assert_eq!(parse_pid_stat(b"7 (x) R 1 2"), None);
        assert_eq!(parse_pid_stat(b"7 x R"), None);
        assert_eq!(parse_pid_stat(b"7 (x) RR 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17"), None);
    }

    #[test]
    fn rates_never_go_negative() {
        assert_eq!(per_sec(3000, 1000, 2.0), Some(1000.0));
        assert_eq!(per_sec(1000, 1000, 10.0), Some(0.0));
        assert_eq!(per_sec(10, u64::from(u32::MAX) - 5, 10.0), None); // a 32-bit counter wrapped
        assert_eq!(elapsed_secs(Some(at(10)), at(0)), None); // clock stepped back
        assert_eq!(elapsed_secs(Some(at(0)), at(0)), None);
        assert_eq!(elapsed_secs(None, at(0)), None);
    }

    #[test]
    fn collectors_config() {
        assert_eq!(serde_json::from_str::<Collectors>("{}").unwrap(), Collectors::default());
        let c: Collectors = serde_json::from_str(r#"{"per_cpu": false, "processes": false}"#).unwrap();
        assert_eq!(c, Collectors { per_cpu: false, processes: false, ..Collectors::default() });
        assert!(serde_json::from_str::<Collectors>(r#"{"cpus": true}"#).is_err());
    }

    /// Writes a fixture file under `root`, creating directories.
    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn fixture_root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "stat", STAT);
        write(root, "meminfo", MEMINFO);
        // Only the older /proc/mounts: exercises the fallback. `/` exists everywhere; the rest
        // does not, so statvfs fails and those mounts are skipped.
        write(root, "mounts", MOUNTS);
        write(root, "diskstats", DISKSTATS);
        write(root, "net/dev", NET_DEV);
        write(root, "loadavg", "0.52 0.58 0.59 2/1234 56789\n");
        write(root, "uptime", "350735.47 234388.90\n");
        for (pid, comm, state, threads) in [
            (1, "systemd", 'S', 1),
            (100, "nginx: worker", 'R', 4),
            (101, "odd) name", 'D', 1),
            (102, "defunct", 'Z', 1),
            (103, "stopped", 'T', 2),
            (104, "traced", 't', 1),
            (105, "kworker/0:1-events", 'I', 1),
        ] {
            write(root, &format!("{pid}/stat"), &pid_stat(pid, comm, state, threads));
        }
        fs::create_dir_all(root.join("106")).unwrap(); // exited: no stat any more
        write(root, "sys/kernel/stat", "not a process");
        dir
    }

    #[test]
    fn two_samples_give_rates() {
        let dir = fixture_root();
        let root = dir.path();
        let mut sampler = HostMetricsSampler::new(root.to_path_buf(), Collectors::default());

        let first = sampler.sample(at(0));
        assert!(find(&first, "cpu", None).is_none(), "no cpu usage without history");
        let eth0 = get(&first, "net", Some(("interface", "eth0")));
        assert_eq!(eth0.fields["bytes_recv"], FieldValue::Int(1_234_567_890));
        assert!(!eth0.fields.contains_key("bytes_recv_per_sec"));
        assert!(find(&first, "net", Some(("interface", "lo"))).is_none());
        assert!(find(&first, "net", Some(("interface", "docker0"))).is_some());
        let nvme = get(&first, "diskio", Some(("name", "nvme0n1")));
        assert_eq!(nvme.fields["read_bytes"], FieldValue::Int(2_048_000 * 512));
        assert!(!nvme.fields.contains_key("read_bytes_per_sec"));
        let mut disks: Vec<_> = first.iter().filter(|p| p.name == "diskio").map(|p| p.tags["name"].as_str()).collect();
        disks.sort_unstable();
        assert_eq!(disks, ["dm-0", "nvme0n1", "nvme0n1p1"]); // no loop0, ram0, idle sdb

        let system = get(&first, "system", None);
        approx(system.fields.get("load1"), 0.52);
        approx(system.fields.get("load15"), 0.59);
        assert_eq!(system.fields["uptime_s"], FieldValue::Int(350_735));
        assert_eq!(system.fields["n_cpus"], FieldValue::Int(2));
        assert!(find(&first, "mem", None).is_some());
        assert!(find(&first, "swap", None).is_some());

        let processes = get(&first, "processes", None);
        let expected = [
            ("total", 7),
            ("running", 1),
            ("sleeping", 1),
            ("blocked", 1),
            ("zombies", 1),
            ("stopped", 2),
            ("idle", 1),
            ("threads", 11),
        ];
        for (field, value) in expected {
            assert_eq!(processes.fields[field], FieldValue::Int(value), "{field}");
        }

        // Only `/` can be stat'ed; the fixture's other mount points do not exist here.
        let root_fs = rustix::fs::statvfs("/").unwrap();
        let disk_points: Vec<_> = first.iter().filter(|p| p.name == "disk").collect();
        if root_fs.f_blocks > 0 {
            assert_eq!(disk_points.len(), 1, "{disk_points:#?}");
            let disk = disk_points[0];
            assert_eq!(disk.tags["path"], "/");
            assert_eq!(disk.tags["device"], "/dev/nvme0n1p2");
            assert_eq!(disk.tags["fstype"], "ext4");
            assert!(matches!(disk.fields["total"], FieldValue::Int(t) if t > 0));
            assert!(disk.fields.contains_key("inodes_used"));
        } else {
            assert!(disk_points.is_empty());
        }

        // One second later: 200 jiffies passed, 1 MiB read and 2 MiB written on nvme0n1, dm-0's
        // counters reset, 500 000 bytes received and 250 000 sent on eth0.
        write(
            root,
            "stat",
            "cpu  1100 100 550 8040 210 0 50 0 0 0\n\
             cpu0 580 50 270 4000 100 0 25 0 0 0\n\
             cpu1 520 50 280 4040 110 0 25 0 0 0\n\
             intr 1234999 37 9\n",
        );
        write(
            root,
            "diskstats",
            &DISKSTATS
                .replace("10000 100 2048000 5000 20000 200 4096000", "10100 100 2050048 5010 20100 200 4100096")
                .replace("dm-0 5000 0 1024000 3000 7000 0 1433600", "dm-0 5 0 80 3 7 0 160"),
        );
        write(
            root,
            "net/dev",
            &NET_DEV.replace("1234567890 1000000", "1235067890 1000400").replace("987654321", "987904321"),
        );
        let second = sampler.sample(at(1));

        let total = get(&second, "cpu", Some(("cpu", "cpu-total")));
        approx(total.fields.get("usage_user"), 50.0);
        approx(total.fields.get("usage_system"), 25.0);
        approx(total.fields.get("usage_idle"), 20.0);
        approx(total.fields.get("usage_iowait"), 5.0);
        approx(total.fields.get("usage_nice"), 0.0);
        approx(total.fields.get("usage_steal"), 0.0);
        assert_eq!(total.fields.len(), 8);
        let cpu0 = get(&second, "cpu", Some(("cpu", "cpu0")));
        approx(cpu0.fields.get("usage_user"), 80.0);
        approx(cpu0.fields.get("usage_system"), 20.0);
        approx(cpu0.fields.get("usage_idle"), 0.0);
        let cpu1 = get(&second, "cpu", Some(("cpu", "cpu1")));
        approx(cpu1.fields.get("usage_user"), 20.0);
        approx(cpu1.fields.get("usage_system"), 30.0);
        approx(cpu1.fields.get("usage_idle"), 40.0);
        approx(cpu1.fields.get("usage_iowait"), 10.0);

        let nvme = get(&second, "diskio", Some(("name", "nvme0n1")));
        approx(nvme.fields.get("read_bytes_per_sec"), 1_048_576.0);
        approx(nvme.fields.get("write_bytes_per_sec"), 2_097_152.0);
        assert_eq!(nvme.fields["reads"], FieldValue::Int(10100));
        let partition = get(&second, "diskio", Some(("name", "nvme0n1p1")));
        approx(partition.fields.get("read_bytes_per_sec"), 0.0);
        let dm = get(&second, "diskio", Some(("name", "dm-0")));
        assert!(!dm.fields.contains_key("read_bytes_per_sec"), "reset counter: no rate");
        assert!(!dm.fields.contains_key("write_bytes_per_sec"));
        assert_eq!(dm.fields["read_bytes"], FieldValue::Int(80 * 512));

        let eth0 = get(&second, "net", Some(("interface", "eth0")));
        approx(eth0.fields.get("bytes_recv_per_sec"), 500_000.0);
        approx(eth0.fields.get("bytes_sent_per_sec"), 250_000.0);
        assert_eq!(eth0.fields["packets_recv"], FieldValue::Int(1_000_400));

        // Ten seconds later eth0 was re-created (counters restarted) but has sent more than before.
        write(root, "net/dev", &NET_DEV.replace("1234567890 1000000", "4096 40").replace("987654321", "988904321"));
        let third = sampler.sample(at(11));
        let eth0 = get(&third, "net", Some(("interface", "eth0")));
        assert!(!eth0.fields.contains_key("bytes_recv_per_sec"));
        approx(eth0.fields.get("bytes_sent_per_sec"), 100_000.0);
        // Nothing changed in /proc/stat: no cpu point, still a system point.
        assert!(find(&third, "cpu", None).is_none());
        assert!(find(&third, "system", None).is_some());
        assert_eq!(sampler.failing, 0);
    }

    #[test]
    fn a_broken_collector_is_skipped_alone() {
        let dir = fixture_root();
        let root = dir.path();
        fs::remove_file(root.join("net/dev")).unwrap();
        write(root, "loadavg", "garbage\n");
        let mut sampler = HostMetricsSampler::new(root.to_path_buf(), Collectors::default());
        let first = sampler.sample(at(0));
        assert!(find(&first, "net", None).is_none());
        assert!(find(&first, "system", None).is_none());
        for name in ["mem", "swap", "diskio", "processes"] {
            assert!(find(&first, name, None).is_some(), "{name}");
        }
        assert_eq!(sampler.failing, Collector::Net.bit() | Collector::System.bit());
        // Still failing: still skipped (and logged at debug only).
        write(root, "stat", &STAT.replace("cpu  1000 100 500 8000", "cpu  1010 100 500 8090"));
        let second = sampler.sample(at(10));
        assert!(find(&second, "net", None).is_none());
        assert!(find(&second, "cpu", None).is_some());
        // Repaired: back, and its failure forgotten.
        write(root, "net/dev", NET_DEV);
        let third = sampler.sample(at(20));
        assert!(find(&third, "net", None).is_some());
        assert_eq!(sampler.failing, Collector::System.bit());

        // /proc/stat gone: both of its users are skipped.
        fs::remove_file(root.join("stat")).unwrap();
        write(root, "loadavg", "0.1 0.2 0.3 1/2 3\n");
        let fourth = sampler.sample(at(30));
        assert!(find(&fourth, "cpu", None).is_none());
        assert!(find(&fourth, "system", None).is_none());
        assert_eq!(sampler.failing, Collector::Cpu.bit() | Collector::System.bit());

        // A malformed process stat fails the processes collector only.
        write(root, "100/stat", "100 (nginx) R");
        let fifth = sampler.sample(at(40));
        assert!(find(&fifth, "processes", None).is_none());
        assert!(find(&fifth, "mem", None).is_some());
    }

    #[test]
    fn only_enabled_collectors_run() {
        let dir = fixture_root();
        let none = Collectors {
            cpu: false,
            per_cpu: false,
            memory: false,
            swap: false,
            disk: false,
            diskio: false,
            net: false,
            load: false,
            processes: false,
        };
        let mut sampler = HostMetricsSampler::new(dir.path().to_path_buf(), none);
        assert!(sampler.sample(at(0)).is_empty());

        let mut sampler =
            HostMetricsSampler::new(dir.path().to_path_buf(), Collectors { cpu: true, swap: true, ..none });
        sampler.sample(at(0));
        write(dir.path(), "stat", &STAT.replace("cpu  1000 100 500 8000", "cpu  1010 100 500 8090"));
        let points = sampler.sample(at(10));
        let names: Vec<_> = points.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["cpu", "swap"]); // cpu-total only, per_cpu is off
        approx(points[0].fields.get("usage_user"), 10.0);
    }

    #[test]
    fn samples_the_real_proc() {
        let mut sampler = HostMetricsSampler::new(PathBuf::from("/proc"), Collectors::default());
        let first = sampler.sample(SystemTime::now());
        assert!(find(&first, "mem", None).is_some(), "{first:#?}");
        assert!(find(&first, "system", None).is_some(), "{first:#?}");
        // Enough for every CPU's idle time to advance by a few jiffies.
        std::thread::sleep(Duration::from_millis(250));
        let second = sampler.sample(SystemTime::now());
        for name in ["cpu", "mem", "system", "processes"] {
            assert!(find(&second, name, None).is_some(), "no {name} point in {second:#?}");
        }
        let total = get(&second, "cpu", Some(("cpu", "cpu-total")));
        let sum: f64 = total.fields.values().map(|v| if let FieldValue::Float(f) = v { *f } else { 0.0 }).sum();
        assert!((sum - 100.0).abs() < 1e-6, "cpu shares add up to {sum}");
        assert!(matches!(get(&second, "processes", None).fields["total"], FieldValue::Int(n) if n > 0));
    }
}
