//! The `disk` collector (usage of each mount point: the `mounts` file and `statvfs(3)`) and the
//! `diskio` collector (block-device I/O: `/proc/diskstats`).

use super::counters::{elapsed_secs, int, per_sec, percent, CounterHistory};
use super::proc_file::{read_file, text, HostMetricsError, ParseError};
use super::HostMetricsSampler;
use crate::event::{FieldValue, MetricPoint};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::time::SystemTime;

// ---------------------------------------------------------------------------------------------
// disk: /proc/self/mounts

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

impl HostMetricsSampler {
    pub(super) fn collect_disk(&mut self, now: SystemTime, out: &mut Vec<MetricPoint>) -> Result<(), HostMetricsError> {
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

impl HostMetricsSampler {
    pub(super) fn collect_diskio(
        &mut self,
        now: SystemTime,
        out: &mut Vec<MetricPoint>,
    ) -> Result<(), HostMetricsError> {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::host_metrics::fixtures::{DISKSTATS, MOUNTS};

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
}
