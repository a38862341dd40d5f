//! powerfs mounted for real: the durability rules hold through the kernel's FUSE client, page
//! cache and shared mappings included. Fails (never skips) where FUSE cannot be mounted.

#![allow(clippy::unwrap_used)]

use millrace_powerfs::{CutMode, PowerMount};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;

fn mounted() -> (tempfile::TempDir, PowerMount) {
    let dir = tempfile::tempdir().unwrap();
    let mount = PowerMount::mount(dir.path()).expect("mounting powerfs (FUSE is required here and in CI)");
    (dir, mount)
}

fn sync_dir(path: &std::path::Path) {
    File::open(path).unwrap().sync_all().unwrap();
}

fn cut(mount: &mut PowerMount) {
    mount.cut_power(CutMode::Strict, || {}).unwrap();
}

#[test]
fn unsynced_writes_vanish_and_synced_ones_stay() {
    let (_dir, mut mount) = mounted();
    let root = mount.path().to_path_buf();
    let mut f = File::create(root.join("a")).unwrap();
    f.write_all(b"synced ").unwrap();
    f.sync_all().unwrap();
    sync_dir(&root);
    f.write_all(b"lost").unwrap();
    drop(f);
    std::fs::write(root.join("never-synced"), b"x").unwrap();
    assert_eq!(std::fs::read(root.join("a")).unwrap(), b"synced lost");
    cut(&mut mount);
    assert_eq!(std::fs::read(root.join("a")).unwrap(), b"synced ");
    assert!(!root.join("never-synced").exists());
    assert_eq!(mount.stats().cuts, 1);
}

#[test]
fn rename_needs_a_directory_fsync() {
    let (_dir, mut mount) = mounted();
    let root = mount.path().to_path_buf();
    let write_synced = |name: &str, body: &[u8]| {
        let mut f = File::create(root.join(name)).unwrap();
        f.write_all(body).unwrap();
        f.sync_all().unwrap();
    };
    write_synced("state", b"v1");
    sync_dir(&root);
    write_synced("state.tmp", b"v2");
    std::fs::rename(root.join("state.tmp"), root.join("state")).unwrap();
    cut(&mut mount);
    assert_eq!(std::fs::read(root.join("state")).unwrap(), b"v1", "the rename was never made durable");

    write_synced("state.tmp", b"v3");
    std::fs::rename(root.join("state.tmp"), root.join("state")).unwrap();
    sync_dir(&root);
    cut(&mut mount);
    assert_eq!(std::fs::read(root.join("state")).unwrap(), b"v3");
    let names: Vec<_> = std::fs::read_dir(&root).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("state")]);
}

#[test]
fn truncation_pwrite_and_subdirectories() {
    let (_dir, mut mount) = mounted();
    let root = mount.path().to_path_buf();
    std::fs::create_dir(root.join("p-0")).unwrap();
    sync_dir(&root);
    let log = root.join("p-0").join("0.log");
    let f = OpenOptions::new().create(true).read(true).write(true).truncate(false).open(&log).unwrap();
    f.write_all_at(&[b'a'; 10_000], 0).unwrap();
    f.sync_data().unwrap();
    sync_dir(&root.join("p-0"));
    f.set_len(3).unwrap();
    f.write_all_at(b"zz", 5000).unwrap();
    drop(f);
    assert_eq!(std::fs::metadata(&log).unwrap().len(), 5002);
    cut(&mut mount);
    assert_eq!(std::fs::read(&log).unwrap(), vec![b'a'; 10_000]);
}

/// Writes through a shared mapping in a child process: a process serving FUSE must not fault on
/// its own mount's mappings (the page fault would wait on the server it blocks).
const MAPPED_WRITER: &str = r#"
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, 12288, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
m[0:4] = b"kept"
m.flush()
m[4096:4100] = b"sync"
os.fsync(fd)
m[8192:8196] = b"lost"
m.close()
os.close(fd)
"#;

#[test]
fn shared_mapping_is_durable_after_msync_or_fsync_only() {
    let (_dir, mut mount) = mounted();
    let root = mount.path().to_path_buf();
    let path = root.join("0.index");
    let f = File::create(&path).unwrap();
    f.set_len(12288).unwrap();
    f.sync_all().unwrap();
    drop(f);
    sync_dir(&root);
    let before = mount.stats().file_syncs;
    let out = std::process::Command::new("python3").arg("-c").arg(MAPPED_WRITER).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let syncs = mount.stats().file_syncs - before;
    assert!(syncs >= 2, "msync and fsync reached the filesystem's fsync ({syncs})");
    assert_eq!(&std::fs::read(&path).unwrap()[8192..8196], b"lost", "visible before the cut");
    cut(&mut mount);
    let after = std::fs::read(&path).unwrap();
    assert_eq!(after.len(), 12288);
    assert_eq!(&after[..4], b"kept", "msync makes mapped writes durable");
    assert_eq!(&after[4096..4100], b"sync", "fsync writes back dirty mapped pages first");
    assert_eq!(&after[8192..8196], &[0; 4], "a mapped write never synced is lost");
}

#[test]
fn a_process_holding_the_mount_is_killed_by_the_cut() {
    let (_dir, mut mount) = mounted();
    let root = mount.path().to_path_buf();
    let mut child = std::process::Command::new("sleep").arg("60").current_dir(&root).spawn().unwrap();
    cut(&mut mount);
    let status = child.wait().unwrap();
    assert!(!status.success(), "the process working in the mount died with the power");
    std::fs::write(root.join("after"), b"ok").unwrap();
    assert_eq!(std::fs::read(root.join("after")).unwrap(), b"ok", "the filesystem is back after the cut");
}
