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

mod counters;
mod cpu;
mod disk;
#[cfg(test)]
mod fixtures;
mod memory;
mod net;
mod proc_file;
mod processes;
mod system;
#[cfg(test)]
mod tests;

use crate::event::MetricPoint;
use counters::CounterHistory;
use cpu::{parse_stat, CpuStat};
use memory::{emit_mem, emit_swap, parse_meminfo};
use proc_file::{read_file, text, HostMetricsError};
use processes::count_processes;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use disk::PSEUDO_FILESYSTEMS;

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
