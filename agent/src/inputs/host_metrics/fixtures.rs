//! Sample `/proc` contents and helpers shared by the host metrics tests (the parser tests of each
//! collector and the sampler tests over a fixture tree).

use crate::event::FieldValue;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(super) fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

pub(super) fn approx(value: Option<&FieldValue>, expected: f64) {
    match value {
        Some(FieldValue::Float(v)) => assert!((v - expected).abs() < 1e-9, "{v} != {expected}"),
        other => panic!("expected Float({expected}), got {other:?}"),
    }
}

pub(super) const STAT: &str = "\
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

pub(super) const MEMINFO: &str = "\
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

pub(super) const MOUNTS: &str = "\
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

// Linux 5.5+ (20 columns), 4.18+ (18), and older (14) lines mixed, as after an upgrade they
// never are, to check that each width is accepted.
pub(super) const DISKSTATS: &str = "\
   7       0 loop0 52 0 2104 12 0 0 0 0 0 20 12 0 0 0 0 0 0
   1       0 ram0 0 0 0 0 0 0 0 0 0 0 0
 259       0 nvme0n1 10000 100 2048000 5000 20000 200 4096000 15000 0 18000 20000 0 0 0 0 100 50
 259       1 nvme0n1p1 9000 100 1843200 4500 19000 200 3891200 14000 0 17000 18500 0 0 0 0
   8      16 sdb 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 252       0 dm-0 5000 0 1024000 3000 7000 0 1433600 9000 0 8000 12000
";

pub(super) const NET_DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:   90000     900    0    0    0     0          0         0    90000     900    0    0    0     0       0          0
  eth0:1234567890 1000000 1 2 0 0 0 5 987654321 800000 3 4 0 0 0 0
docker0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
";

pub(super) fn pid_stat(pid: u32, comm: &str, state: char, threads: u32) -> String {
    format!(
        "{pid} ({comm}) {state} 1 {pid} {pid} 0 -1 4194560 2305 0 11 0 35 12 0 0 20 0 {threads} 0 512 \
         178479104 3250 18446744073709551615 1 1 0 0 0 0 0 4096 1260 0 0 0 17 3 0 0 0 0 0\n"
    )
}
