//! The in-memory filesystem with its two states, volatile and durable, and the power cut that
//! throws the volatile one away. No FUSE here: the rules are tested directly (model_tests.rs).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::sync::Arc;
use std::time::SystemTime;

/// Inode number of the root directory.
pub const ROOT: u64 = 1;
/// Granularity of the file contents, and of what a torn cut keeps or drops.
pub const PAGE: u64 = 4096;

/// An errno value (positive), as the kernel gets it.
pub type Errno = i32;

/// One page of file data; shared between the two states until written again, so "unchanged
/// since the last fsync" is a pointer comparison.
type Page = Arc<Vec<u8>>;

/// A sparse file: pages that were never written read as zeros. Bytes of a page past `size` are
/// always zero, so growing a file never brings old data back.
#[derive(Clone, Debug, Default)]
pub struct Contents {
    size: u64,
    pages: BTreeMap<u64, Page>,
}

impl Contents {
    /// Length in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Up to `len` bytes from `offset` (fewer at the end of the file).
    pub fn read(&self, offset: u64, len: u64) -> Vec<u8> {
        let end = self.size.min(offset.saturating_add(len));
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        let mut pos = offset;
        while pos < end {
            let (index, at) = (pos / PAGE, (pos % PAGE) as usize);
            let n = ((PAGE - pos % PAGE).min(end - pos)) as usize;
            match self.pages.get(&index) {
                Some(page) => out.extend_from_slice(&page[at..at + n]),
                None => out.resize(out.len() + n, 0),
            }
            pos += n as u64;
        }
        out
    }

    /// Writes `data` at `offset`, growing the file as needed.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        let mut pos = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let (index, at) = (pos / PAGE, (pos % PAGE) as usize);
            let n = (PAGE as usize - at).min(rest.len());
            let page = self.pages.entry(index).or_insert_with(|| Arc::new(vec![0; PAGE as usize]));
            Arc::make_mut(page)[at..at + n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            pos += n as u64;
        }
        self.size = self.size.max(offset + data.len() as u64);
    }

    /// Truncates or extends (with zeros) to `size`.
    pub fn resize(&mut self, size: u64) {
        if size < self.size {
            let first_gone = size.div_ceil(PAGE);
            self.pages.retain(|&index, _| index < first_gone);
            if !size.is_multiple_of(PAGE) {
                if let Some(page) = self.pages.get_mut(&(size / PAGE)) {
                    Arc::make_mut(page)[(size % PAGE) as usize..].fill(0);
                }
            }
        }
        self.size = size;
    }
}

/// What an inode holds.
#[derive(Clone, Debug)]
pub enum Body {
    /// A regular file.
    File(Contents),
    /// A directory: name → inode.
    Dir(BTreeMap<OsString, u64>),
}

/// An inode.
#[derive(Clone, Debug)]
pub struct Node {
    /// Contents.
    pub body: Body,
    /// Permission bits.
    pub perm: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Last access.
    pub atime: SystemTime,
    /// Last modification.
    pub mtime: SystemTime,
    /// Last status change.
    pub ctime: SystemTime,
    /// Directory entries naming it (files; hard links are not supported, so 0 or 1).
    pub links: u32,
}

impl Node {
    fn new(body: Body, perm: u16, uid: u32, gid: u32) -> Node {
        let now = SystemTime::now();
        Node { body, perm, uid, gid, atime: now, mtime: now, ctime: now, links: 1 }
    }

    /// The same inode with nothing in it: what exists after a cut of an inode whose directory
    /// entry was made durable but whose own contents never were.
    fn emptied(&self) -> Node {
        let body = match self.body {
            Body::File(_) => Body::File(Contents::default()),
            Body::Dir(_) => Body::Dir(BTreeMap::new()),
        };
        Node { body, ..self.clone() }
    }

    /// True for a directory.
    pub fn is_dir(&self) -> bool {
        matches!(self.body, Body::Dir(_))
    }

    /// Size in bytes (directories: 4096).
    pub fn size(&self) -> u64 {
        match &self.body {
            Body::File(c) => c.size,
            Body::Dir(_) => PAGE,
        }
    }
}

/// How a cut treats what was written but not made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutMode {
    /// Everything not covered by an fsync is gone (POSIX's minimum).
    Strict,
    /// As a disk whose writeback ran partly before the cut: each unsynced page of a file survives
    /// or not at random, its length is the synced or the written one, and each directory keeps
    /// its synced or its current entries (a whole directory at a time). Seeded, for replay.
    Torn {
        /// Seed of the choices.
        seed: u64,
    },
}

/// Counters of what the filesystem was asked to make durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// fsync/fdatasync (and msync) of files.
    pub file_syncs: u64,
    /// fsync of directories.
    pub dir_syncs: u64,
    /// Write requests.
    pub writes: u64,
    /// Power cuts.
    pub cuts: u64,
}

/// The filesystem: the volatile state every process sees and the durable state a cut goes back
/// to. Inode numbers are shared by the two states and never reused.
#[derive(Debug)]
pub struct Model {
    volatile: HashMap<u64, Node>,
    durable: HashMap<u64, Node>,
    next_ino: u64,
    stats: Stats,
    /// Order of fsyncs begun, and the latest one finished per inode.
    sync_seq: u64,
    synced_seq: HashMap<u64, u64>,
}

/// An fsync begun but not finished: see [`Model::prepare_sync`].
#[derive(Debug)]
pub struct PendingSync {
    seq: u64,
    ino: u64,
    node: Node,
    emptied: Vec<(u64, Node)>,
}

impl Default for Model {
    fn default() -> Model {
        Model::new()
    }
}

impl Model {
    /// An empty filesystem; its (empty) root is durable.
    pub fn new() -> Model {
        let root = Node::new(Body::Dir(BTreeMap::new()), 0o755, 0, 0);
        let volatile = HashMap::from([(ROOT, root.clone())]);
        Model {
            volatile,
            durable: HashMap::from([(ROOT, root)]),
            next_ino: ROOT + 1,
            stats: Stats::default(),
            sync_seq: 0,
            synced_seq: HashMap::new(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The inode, as processes see it.
    pub fn node(&self, ino: u64) -> Result<&Node, Errno> {
        self.volatile.get(&ino).ok_or(libc::ENOENT)
    }

    fn node_mut(&mut self, ino: u64) -> Result<&mut Node, Errno> {
        self.volatile.get_mut(&ino).ok_or(libc::ENOENT)
    }

    fn entries(&self, dir: u64) -> Result<&BTreeMap<OsString, u64>, Errno> {
        match &self.node(dir)?.body {
            Body::Dir(entries) => Ok(entries),
            Body::File(_) => Err(libc::ENOTDIR),
        }
    }

    fn entries_mut(&mut self, dir: u64) -> Result<&mut BTreeMap<OsString, u64>, Errno> {
        let node = self.node_mut(dir)?;
        let now = SystemTime::now();
        node.mtime = now;
        node.ctime = now;
        match &mut node.body {
            Body::Dir(entries) => Ok(entries),
            Body::File(_) => Err(libc::ENOTDIR),
        }
    }

    /// The entries of a directory, sorted by name.
    pub fn list(&self, dir: u64) -> Result<Vec<(OsString, u64)>, Errno> {
        Ok(self.entries(dir)?.iter().map(|(name, &ino)| (name.clone(), ino)).collect())
    }

    /// The inode `name` in `dir` names.
    pub fn lookup(&self, dir: u64, name: &OsStr) -> Result<u64, Errno> {
        self.entries(dir)?.get(name).copied().ok_or(libc::ENOENT)
    }

    /// Creates an empty file or directory.
    pub fn create(
        &mut self,
        dir: u64,
        name: &OsStr,
        is_dir: bool,
        perm: u16,
        uid: u32,
        gid: u32,
    ) -> Result<u64, Errno> {
        if self.entries(dir)?.contains_key(name) {
            return Err(libc::EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let body = if is_dir { Body::Dir(BTreeMap::new()) } else { Body::File(Contents::default()) };
        self.volatile.insert(ino, Node::new(body, perm, uid, gid));
        self.entries_mut(dir)?.insert(name.to_os_string(), ino);
        Ok(ino)
    }

    /// unlink (`is_dir` false) or rmdir (`is_dir` true). An unlinked file stays readable through
    /// the handles still open on it: its inode is only forgotten at the next cut.
    pub fn remove(&mut self, dir: u64, name: &OsStr, is_dir: bool) -> Result<(), Errno> {
        let ino = self.lookup(dir, name)?;
        match (&self.node(ino)?.body, is_dir) {
            (Body::Dir(entries), true) if !entries.is_empty() => return Err(libc::ENOTEMPTY),
            (Body::Dir(_), false) => return Err(libc::EISDIR),
            (Body::File(_), true) => return Err(libc::ENOTDIR),
            _ => {}
        }
        self.entries_mut(dir)?.remove(name);
        let node = self.node_mut(ino)?;
        node.links = 0;
        node.ctime = SystemTime::now();
        Ok(())
    }

    /// rename(2), replacing the target atomically in the volatile state; `noreplace` is
    /// RENAME_NOREPLACE.
    pub fn rename(
        &mut self,
        dir: u64,
        name: &OsStr,
        new_dir: u64,
        new_name: &OsStr,
        noreplace: bool,
    ) -> Result<(), Errno> {
        let ino = self.lookup(dir, name)?;
        self.entries(new_dir)?;
        if let Ok(target) = self.lookup(new_dir, new_name) {
            if target == ino {
                return Ok(());
            }
            if noreplace {
                return Err(libc::EEXIST);
            }
            match (&self.node(ino)?.body, &self.node(target)?.body) {
                (Body::Dir(_), Body::File(_)) => return Err(libc::ENOTDIR),
                (Body::File(_), Body::Dir(_)) => return Err(libc::EISDIR),
                (Body::Dir(_), Body::Dir(entries)) if !entries.is_empty() => return Err(libc::ENOTEMPTY),
                _ => {}
            }
            self.node_mut(target)?.links = 0;
        }
        self.entries_mut(dir)?.remove(name);
        self.entries_mut(new_dir)?.insert(new_name.to_os_string(), ino);
        self.node_mut(ino)?.ctime = SystemTime::now();
        Ok(())
    }

    fn contents_mut(&mut self, ino: u64) -> Result<&mut Contents, Errno> {
        let node = self.node_mut(ino)?;
        let now = SystemTime::now();
        node.mtime = now;
        node.ctime = now;
        match &mut node.body {
            Body::File(contents) => Ok(contents),
            Body::Dir(_) => Err(libc::EISDIR),
        }
    }

    /// Reads from a file.
    pub fn read(&self, ino: u64, offset: u64, len: u64) -> Result<Vec<u8>, Errno> {
        match &self.node(ino)?.body {
            Body::File(contents) => Ok(contents.read(offset, len)),
            Body::Dir(_) => Err(libc::EISDIR),
        }
    }

    /// Writes to a file (volatile until an fsync of it).
    pub fn write(&mut self, ino: u64, offset: u64, data: &[u8]) -> Result<(), Errno> {
        self.stats.writes += 1;
        self.contents_mut(ino)?.write(offset, data);
        Ok(())
    }

    /// truncate/ftruncate.
    pub fn set_size(&mut self, ino: u64, size: u64) -> Result<(), Errno> {
        self.contents_mut(ino)?.resize(size);
        Ok(())
    }

    /// chmod/chown/utimes; `None` leaves a field as it is.
    pub fn set_meta(&mut self, ino: u64, perm: Option<u16>, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        let node = self.node_mut(ino)?;
        node.perm = perm.unwrap_or(node.perm);
        node.uid = uid.unwrap_or(node.uid);
        node.gid = gid.unwrap_or(node.gid);
        node.ctime = SystemTime::now();
        Ok(())
    }

    /// Sets access and modification times.
    pub fn set_times(&mut self, ino: u64, atime: Option<SystemTime>, mtime: Option<SystemTime>) -> Result<(), Errno> {
        let node = self.node_mut(ino)?;
        node.atime = atime.unwrap_or(node.atime);
        node.mtime = mtime.unwrap_or(node.mtime);
        Ok(())
    }

    /// fsync/fdatasync of a file makes its data, length and attributes durable — not its name.
    /// fsync of a directory makes its entries durable: names created, renamed into or out of it
    /// and removed from it; an inode first named durably this way exists after a cut but holds
    /// only what its own fsyncs made durable (nothing, if none).
    pub fn fsync(&mut self, ino: u64) -> Result<(), Errno> {
        let pending = self.prepare_sync(ino)?;
        self.commit(pending);
        Ok(())
    }

    /// The first half of an fsync that takes time, as on a real disk: what it will make durable
    /// is fixed when it starts (writes that come later are not covered).
    pub fn prepare_sync(&mut self, ino: u64) -> Result<PendingSync, Errno> {
        let node = self.node(ino)?.clone();
        let mut emptied = Vec::new();
        if let Body::Dir(entries) = &node.body {
            for &child in entries.values() {
                emptied.push((child, self.node(child)?.emptied()));
            }
        }
        self.sync_seq += 1;
        Ok(PendingSync { seq: self.sync_seq, ino, node, emptied })
    }

    /// The second half: the snapshot becomes durable, unless a later fsync of the same inode
    /// already finished (durability never goes backwards).
    pub fn commit(&mut self, pending: PendingSync) {
        let PendingSync { seq, ino, node, emptied } = pending;
        if self.synced_seq.get(&ino).is_some_and(|&done| done > seq) {
            return;
        }
        self.synced_seq.insert(ino, seq);
        if node.is_dir() {
            self.stats.dir_syncs += 1;
        } else {
            self.stats.file_syncs += 1;
        }
        for (child, empty) in emptied {
            self.durable.entry(child).or_insert(empty);
        }
        self.durable.insert(ino, node);
    }

    /// The power cut: the durable state (plus, in torn mode, a random part of the rest) becomes
    /// the only state. Open handles must be gone first (the caller unmounts).
    pub fn cut(&mut self, mode: CutMode) {
        self.stats.cuts += 1;
        let survivors = match mode {
            CutMode::Strict => self.durable.clone(),
            CutMode::Torn { seed } => self.torn(seed),
        };
        let kept = reachable(survivors);
        self.durable = kept.clone();
        self.volatile = kept;
    }

    fn torn(&self, seed: u64) -> HashMap<u64, Node> {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut inos: Vec<u64> = self.volatile.keys().chain(self.durable.keys()).copied().collect();
        inos.sort_unstable();
        inos.dedup();
        let mut out = HashMap::new();
        for ino in inos {
            let (now, synced) = (self.volatile.get(&ino), self.durable.get(&ino));
            let node = match (now, synced) {
                (Some(now), synced) if now.is_dir() => match synced {
                    Some(synced) if rng.bool() => synced.clone(),
                    _ => now.clone(),
                },
                (Some(now), synced) => {
                    let base = synced.cloned().unwrap_or_else(|| now.emptied());
                    torn_file(&mut rng, now, base)
                }
                (None, Some(synced)) => synced.clone(),
                (None, None) => continue,
            };
            out.insert(ino, node);
        }
        // A directory entry whose inode has no surviving contents names an empty inode.
        let named: Vec<u64> = out
            .values()
            .filter_map(|n| if let Body::Dir(entries) = &n.body { Some(entries.values().copied()) } else { None })
            .flatten()
            .collect();
        for ino in named {
            if let std::collections::hash_map::Entry::Vacant(slot) = out.entry(ino) {
                if let Some(now) = self.volatile.get(&ino) {
                    slot.insert(now.emptied());
                }
            }
        }
        out
    }

    /// Inodes whose volatile state differs from their durable one: what a strict cut now would
    /// change.
    pub fn unsynced(&self) -> Vec<u64> {
        let mut out: Vec<u64> = self
            .volatile
            .iter()
            .filter(|(ino, node)| match (self.durable.get(ino), &node.body) {
                (None, _) => true,
                (Some(d), Body::Dir(e)) => !matches!(&d.body, Body::Dir(de) if de == e),
                (Some(d), Body::File(c)) => !matches!(&d.body, Body::File(dc) if same_contents(dc, c)),
            })
            .map(|(&ino, _)| ino)
            .collect();
        out.sort_unstable();
        out
    }
}

fn same_contents(a: &Contents, b: &Contents) -> bool {
    a.size == b.size
        && a.pages.len() == b.pages.len()
        && a.pages.iter().zip(&b.pages).all(|((ia, pa), (ib, pb))| ia == ib && Arc::ptr_eq(pa, pb))
}

/// A file after a torn cut: the synced contents with each page written since replaced (or, for
/// pages synced but since truncated away, removed) at random, at the synced or the written length.
fn torn_file(rng: &mut fastrand::Rng, now: &Node, mut base: Node) -> Node {
    let (Body::File(now_c), Body::File(base_c)) = (&now.body, &mut base.body) else { return base };
    let indexes: HashSet<u64> = now_c.pages.keys().chain(base_c.pages.keys()).copied().collect();
    let mut indexes: Vec<u64> = indexes.into_iter().collect();
    indexes.sort_unstable();
    for index in indexes {
        let (n, b) = (now_c.pages.get(&index), base_c.pages.get(&index));
        let changed = match (n, b) {
            (Some(n), Some(b)) => !Arc::ptr_eq(n, b),
            _ => true,
        };
        if changed && rng.bool() {
            match n {
                Some(page) => base_c.pages.insert(index, page.clone()),
                None => base_c.pages.remove(&index),
            };
        }
    }
    let size = if rng.bool() { now_c.size } else { base_c.size };
    // Pages past the chosen end go, and the last one's tail reads as zeros.
    base_c.size = u64::MAX;
    base_c.resize(size);
    base
}

/// The inodes reachable from the root, with their link counts recomputed; the rest (unlinked
/// files, orphans never named durably) are freed.
fn reachable(mut nodes: HashMap<u64, Node>) -> HashMap<u64, Node> {
    let mut out = HashMap::new();
    let mut stack = vec![ROOT];
    while let Some(ino) = stack.pop() {
        let Some(mut node) = nodes.remove(&ino) else { continue };
        node.links = 1;
        if let Body::Dir(entries) = &mut node.body {
            // An entry can only name an inode absent here if it is already reached (a directory
            // never holds two names for one inode: no hard links) or was never created.
            entries.retain(|_, child| nodes.contains_key(child));
            stack.extend(entries.values().copied());
        }
        out.insert(ino, node);
    }
    out
}
