//! The FUSE side: kernel requests mapped onto the [`Model`]. While the power is off every request
//! fails with EIO, so nothing more becomes durable between the cut and the unmount.

use crate::model::{Body, Errno, Model, Node, ROOT};
use fuser::{
    FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags, RenameFlags,
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite,
    Request, TimeOrNow, WriteFlags,
};
use std::ffi::OsStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

/// How long the kernel may cache names and attributes. Every change goes through the kernel, and
/// a cut remounts (dropping every cache), so caching cannot show stale state.
const TTL: Duration = Duration::from_secs(1);

/// State shared by the mount handle and the request handlers of successive mounts.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) model: Mutex<Model>,
    /// False between a cut and the remount.
    pub(crate) powered: AtomicBool,
    /// How long an fsync takes, in microseconds (a real disk's flush is not instant, and a cut
    /// during one is where torn tails come from).
    pub(crate) sync_latency_us: AtomicU64,
    /// A failing disk: every request that would change it (write, fsync, create, rename, unlink,
    /// setattr) fails with EIO while reads still work, as a medium error or a controller fault
    /// shows to the writer; the power stays on.
    pub(crate) failing: AtomicBool,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Model> {
        // A handler that panicked left the model as consistent as any request leaves it.
        self.model.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The model, or EIO while the power is off.
    fn powered(&self) -> Result<MutexGuard<'_, Model>, Errno> {
        if self.powered.load(Ordering::SeqCst) {
            Ok(self.lock())
        } else {
            Err(libc::EIO)
        }
    }

    /// The model for a change, or EIO while the power is off or the disk fails.
    fn writable(&self) -> Result<MutexGuard<'_, Model>, Errno> {
        let model = self.powered()?;
        if self.failing.load(Ordering::SeqCst) {
            return Err(libc::EIO);
        }
        Ok(model)
    }
}

/// The filesystem one mount serves.
pub(crate) struct PowerFs {
    pub(crate) shared: Arc<Shared>,
}

fn errno(e: Errno) -> fuser::Errno {
    fuser::Errno::from_i32(e)
}

fn attr(ino: u64, node: &Node) -> FileAttr {
    let (kind, nlink) = match &node.body {
        Body::File(_) => (FileType::RegularFile, node.links),
        Body::Dir(entries) => {
            let subdirs = entries.len() as u32; // an upper bound is fine for find(1)-style users
            (FileType::Directory, 2 + subdirs)
        }
    };
    let size = node.size();
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: node.atime,
        mtime: node.mtime,
        ctime: node.ctime,
        crtime: node.ctime,
        kind,
        perm: node.perm,
        nlink,
        uid: node.uid,
        gid: node.gid,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

fn time(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

impl PowerFs {
    fn entry(&self, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let result = self.shared.powered().and_then(|model| {
            let ino = model.lookup(parent.0, name)?;
            Ok(attr(ino, model.node(ino)?))
        });
        match result {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn make(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        is_dir: bool,
        mode: u32,
        umask: u32,
    ) -> Result<FileAttr, Errno> {
        let mut model = self.shared.writable()?;
        let perm = (mode & !umask & 0o7777) as u16;
        let ino = model.create(parent.0, name, is_dir, perm, req.uid(), req.gid())?;
        Ok(attr(ino, model.node(ino)?))
    }

    /// fsync: fixed at the start, durable after the configured latency unless the power went
    /// off meanwhile (then the caller gets EIO, as from a disk that lost power).
    fn sync(&self, ino: INodeNo, reply: ReplyEmpty) {
        let pending = match self.shared.writable().and_then(|mut model| model.prepare_sync(ino.0)) {
            Ok(pending) => pending,
            Err(e) => return reply.error(errno(e)),
        };
        let latency = self.shared.sync_latency_us.load(Ordering::Relaxed);
        if latency > 0 {
            std::thread::sleep(Duration::from_micros(latency));
        }
        match self.shared.writable() {
            Ok(mut model) => {
                model.commit(pending);
                reply.ok();
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn empty(&self, reply: ReplyEmpty, op: impl FnOnce(&mut Model) -> Result<(), Errno>) {
        match self.shared.writable().and_then(|mut model| op(&mut model)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }
}

impl Filesystem for PowerFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.entry(parent, name, reply);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.shared.powered().and_then(|model| Ok(attr(ino.0, model.node(ino.0)?))) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let result = self.shared.writable().and_then(|mut model| {
            if let Some(size) = size {
                model.set_size(ino.0, size)?;
            }
            model.set_meta(ino.0, mode.map(|m| (m & 0o7777) as u16), uid, gid)?;
            model.set_times(ino.0, atime.map(time), mtime.map(time))?;
            Ok(attr(ino.0, model.node(ino.0)?))
        });
        match result {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        // Regular files only: nothing under test makes devices, fifos or sockets here.
        if mode & libc::S_IFMT != libc::S_IFREG {
            return reply.error(fuser::Errno::EPERM);
        }
        match self.make(req, parent, name, false, mode, umask) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        match self.make(req, parent, name, true, mode, umask) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let result = self.make(req, parent, name, false, mode, umask).or_else(|e| {
            // Another opener won the race for the name: without O_EXCL this open just opens it.
            if e != libc::EEXIST || flags & libc::O_EXCL != 0 {
                return Err(e);
            }
            let model = self.shared.powered()?;
            let ino = model.lookup(parent.0, name)?;
            Ok(attr(ino, model.node(ino)?))
        });
        match result {
            Ok(a) => reply.created(&TTL, &a, Generation(0), FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.empty(reply, |model| model.remove(parent.0, name, false));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.empty(reply, |model| model.remove(parent.0, name, true));
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.intersects(RenameFlags::RENAME_EXCHANGE | RenameFlags::RENAME_WHITEOUT) {
            return reply.error(fuser::Errno::EINVAL);
        }
        let noreplace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        self.empty(reply, |model| model.rename(parent.0, name, newparent.0, newname, noreplace));
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        // No per-open state: the kernel names the inode in every request. Neither direct I/O
        // (shared writable mmap needs the page cache) nor KEEP_CACHE.
        match self.shared.powered().and_then(|model| model.node(ino.0).map(|_| ())) {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.shared.powered().and_then(|model| model.read(ino.0, offset, u64::from(size))) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        // Writeback of a shared mapping arrives here too, at msync/fsync at the latest.
        match self.shared.writable().and_then(|mut model| model.write(ino.0, offset, data)) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        // close() makes nothing durable.
        reply.ok();
    }

    fn fsync(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        // fdatasync is treated as fsync: the length is the metadata that matters, and it needs
        // fdatasync to persist it anyway.
        self.sync(ino, reply);
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let listed = self.shared.powered().and_then(|model| {
            let mut out = vec![(ino.0, FileType::Directory, ".".into()), (ROOT, FileType::Directory, "..".into())];
            for (name, child) in model.list(ino.0)? {
                let kind = if model.node(child)?.is_dir() { FileType::Directory } else { FileType::RegularFile };
                out.push((child, kind, name));
            }
            Ok(out)
        });
        match listed {
            Ok(entries) => {
                for (i, (child, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
                    if reply.add(INodeNo(child), i as u64 + 1, kind, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn fsyncdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        self.sync(ino, reply);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // Plenty of room: the disk-full paths are tested elsewhere.
        reply.statfs(1 << 24, 1 << 23, 1 << 23, 1 << 20, 1 << 19, 4096, 255, 4096);
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        reply.error(fuser::Errno::from_i32(libc::EOPNOTSUPP));
    }
}
