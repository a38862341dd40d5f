//! Tests of the sampler over a fixture `/proc` tree and the real one: rates across samples, broken
//! and disabled collectors.

use super::fixtures::{approx, at, pid_stat, DISKSTATS, MEMINFO, MOUNTS, NET_DEV, STAT};
use super::*;
use crate::event::FieldValue;
use std::fs;
use std::time::Duration;

fn find<'p>(points: &'p [MetricPoint], name: &str, tag: Option<(&str, &str)>) -> Option<&'p MetricPoint> {
    points.iter().find(|p| p.name == name && tag.is_none_or(|(k, v)| p.tags.get(k).map(String::as_str) == Some(v)))
}

fn get<'p>(points: &'p [MetricPoint], name: &str, tag: Option<(&str, &str)>) -> &'p MetricPoint {
    find(points, name, tag).unwrap_or_else(|| panic!("no {name} point with {tag:?} in {points:#?}"))
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

    let mut sampler = HostMetricsSampler::new(dir.path().to_path_buf(), Collectors { cpu: true, swap: true, ..none });
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
