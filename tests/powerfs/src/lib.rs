//! powerfs: a FUSE filesystem for power-loss tests.
//!
//! `kill -9` keeps the page cache, so a missing fsync is invisible to crash tests on a real disk.
//! powerfs keeps everything in memory in two states:
//!
//! * the **volatile** state, which every process on the mount sees (what the page cache would
//!   show), and
//! * the **durable** state, which only these calls change:
//!   - `fsync`/`fdatasync` (and `msync`, which the kernel turns into writeback plus fsync) of a
//!     file: its data, length and attributes — but not its name;
//!   - `fsync` of a directory: its entries — names created, renamed in or out, removed. A file
//!     first named durably this way exists after a cut, but holds only what fsyncs of the file
//!     itself made durable (nothing if there were none).
//!
//! [`PowerMount::cut_power`] is the power cut: every request fails with EIO from that moment, the
//! processes using the mount are killed, the mount is torn down (the kernel forgets its caches),
//! the durable state becomes the only one, and the filesystem is mounted again on it.
//!
//! The model is POSIX's minimum, stricter than Linux filesystems: ext4 (data=ordered) journals a
//! new file's name along with an fsync of the file, and a rename over an existing file usually
//! survives without a directory fsync; here neither does. A program that passes here does not
//! depend on such filesystem-specific kindness. [`CutMode::Torn`] adds what a real disk also does:
//! writeback may have stored part of what was never synced (whole pages, in any order, and either
//! length), so a log's unsynced tail can come back torn or with holes of zeros.
//!
//! What it serves: create/open/read/write at any offset, truncate, rename (atomic in the volatile
//! state, RENAME_NOREPLACE), unlink/rmdir (open files stay readable), mkdir, readdir, fsync and
//! fdatasync of files and directories, shared writable mmap (through the page cache: FUSE sends
//! dirty pages as writes at writeback, msync and fsync), statfs, and file locks (kept by the
//! kernel). No hard links, symlinks, devices or xattrs. Mounting needs `/dev/fuse` and root (or
//! fusermount3); without them mounting fails — the tests that need it fail rather than skip.

mod fuse;
pub mod model;
mod mount;

pub use model::{CutMode, Model, PendingSync, Stats};
pub use mount::{CutReport, PowerMount};

#[cfg(test)]
mod model_tests;
