//! An in-memory filesystem for power-loss tests, implementing [`Vfs`] and
//! [`VFile`] with the durability contract of [`crate::fs`] and nothing more.
//! Only built with the `test-support` feature.
//!
//! The simulation is harsh but legal: whatever POSIX does not promise to
//! survive a power loss may be lost, kept, or kept in part.
//!
//! - Every file has its *current* bytes (what reads see) and its *durable*
//!   bytes (what a power loss keeps for sure), plus the ordered list of
//!   writes and truncations made since its last successful `sync_data` or
//!   `sync_all`.
//! - Every directory has its current entries, its durable entries and the
//!   ordered list of entry changes (creations, removals, renames) since its
//!   last successful [`Vfs::sync_dir`]. A rename within one directory is a
//!   single change; a rename across directories is a removal in one and a
//!   creation in the other, each durable when its own directory is synced.
//! - [`SimFs::crash_image`] builds the filesystem a power loss at this
//!   instant could leave: per directory, a random prefix of its pending
//!   entry changes applied to its durable entries; per file reachable in
//!   the result, its durable bytes with each pending operation, in order and
//!   independently, lost, kept whole, torn (a random subset of the 512-byte
//!   sectors it touches, aligned to absolute file offsets, is written; the
//!   file grows to the end of the last piece kept, never past the write's
//!   own end, with zeros in any gap) or zero-filled (the file grows to the
//!   write's end but the bytes past its old length read as zeros, like
//!   allocated-but-unwritten extents; bytes inside the old length keep
//!   their old contents). A pending truncation is kept or lost. Everything
//!   in the image is durable.
//! - [`SimFs::power_off`] and [`SimFs::power_off_after`] freeze the
//!   filesystem so an interrupted workload cannot change it any more;
//!   [`SimFs::fail_syncs`] and [`SimFs::set_capacity`] inject `EIO` and
//!   `ENOSPC`.
//!
//! Inodes are never freed, since a crash may bring a removed name back:
//! a long workload keeps every removed file's bytes in memory. Contents
//! are copy-on-write pages, so syncs and crash images share them.
//!
//! Errors carry the Linux errno a real filesystem would give (so
//! `raw_os_error` and `kind` both work), except the power loss itself,
//! which is an [`io::ErrorKind::Other`] error "simulated power loss".
//!
//! ```
//! use std::path::Path;
//! use sealog_journal::fs::{OpenHow, Vfs};
//! use sealog_journal::sim_fs::SimFs;
//!
//! let fs = SimFs::new();
//! let f = fs.open(Path::new("/a"), OpenHow::CreateNew { mode: 0o600 }).unwrap();
//! f.write_at(b"hello", 0).unwrap();
//! f.sync_data().unwrap();
//! fs.sync_dir(Path::new("/")).unwrap();
//! let image = fs.crash_image(7);
//! assert_eq!(image.read_file(Path::new("/a")).unwrap(), b"hello");
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::fs::{OpenHow, VFile, Vfs};

/// The unit a torn write is kept or lost in.
const SECTOR: u64 = 512;
/// File contents are kept in copy-on-write pages of this size, so a sync or
/// a crash image shares the bytes instead of copying them.
const PAGE: usize = 4096;
/// The root directory's inode.
const ROOT: usize = 0;

const ENOENT: i32 = 2;
const EIO: i32 = 5;
const EBADF: i32 = 9;
const EBUSY: i32 = 16;
const EEXIST: i32 = 17;
const ENOTDIR: i32 = 20;
const EISDIR: i32 = 21;
const EINVAL: i32 = 22;
const ENOSPC: i32 = 28;
const ENOTEMPTY: i32 = 39;

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn power_loss() -> io::Error {
    io::Error::other("simulated power loss")
}

type Page = [u8; PAGE];

/// One shared page of zeros: growing a file costs a pointer per page.
fn zero_page() -> Arc<Page> {
    static ZERO: OnceLock<Arc<Page>> = OnceLock::new();
    ZERO.get_or_init(|| Arc::new([0; PAGE])).clone()
}

/// A file's bytes, as copy-on-write pages. Invariant: `pages` holds exactly
/// enough pages for `len`, and every byte of the last page past `len` is 0.
#[derive(Clone, Default)]
struct Data {
    len: u64,
    pages: Vec<Arc<Page>>,
}

impl Data {
    fn pages_for(len: u64) -> usize {
        len.div_ceil(PAGE as u64) as usize
    }

    fn set_len(&mut self, len: u64) {
        if len < self.len {
            self.pages.truncate(Self::pages_for(len));
            let tail = (len % PAGE as u64) as usize;
            if tail != 0 {
                if let Some(last) = self.pages.last_mut() {
                    if last[tail..].iter().any(|&b| b != 0) {
                        Arc::make_mut(last)[tail..].fill(0);
                    }
                }
            }
        } else {
            self.pages.resize_with(Self::pages_for(len), zero_page);
        }
        self.len = len;
    }

    /// Writes `buf` at `off`, growing the file (with zeros before `off`).
    fn write(&mut self, off: u64, buf: &[u8]) {
        if buf.is_empty() {
            return;
        }
        let end = off + buf.len() as u64;
        if end > self.len {
            self.set_len(end);
        }
        let mut pos = off;
        let mut rest = buf;
        while !rest.is_empty() {
            let page = (pos / PAGE as u64) as usize;
            let at = (pos % PAGE as u64) as usize;
            let n = rest.len().min(PAGE - at);
            Arc::make_mut(&mut self.pages[page])[at..at + n].copy_from_slice(&rest[..n]);
            pos += n as u64;
            rest = &rest[n..];
        }
    }

    fn read(&self, off: u64, buf: &mut [u8]) -> usize {
        if off >= self.len {
            return 0;
        }
        let n = (buf.len() as u64).min(self.len - off) as usize;
        let mut pos = off;
        let mut done = 0;
        while done < n {
            let page = (pos / PAGE as u64) as usize;
            let at = (pos % PAGE as u64) as usize;
            let k = (n - done).min(PAGE - at);
            buf[done..done + k].copy_from_slice(&self.pages[page][at..at + k]);
            pos += k as u64;
            done += k;
        }
        n
    }

    fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.len as usize];
        self.read(0, &mut v);
        v
    }
}

/// A change to a file not yet made durable.
enum FileOp {
    Write { off: u64, bytes: Vec<u8> },
    SetLen(u64),
}

struct FileNode {
    current: Data,
    durable: Data,
    pending: Vec<FileOp>,
    /// Names in current directories pointing here.
    nlink: u32,
    /// Open handles.
    handles: u32,
}

impl FileNode {
    fn new(data: Data) -> Self {
        FileNode {
            current: data.clone(),
            durable: data,
            pending: Vec::new(),
            nlink: 0,
            handles: 0,
        }
    }

    /// Still taking space: named somewhere or open.
    fn live(&self) -> bool {
        self.nlink > 0 || self.handles > 0
    }

    fn sync(&mut self) {
        self.durable = self.current.clone();
        self.pending.clear();
    }

    /// The bytes a power loss now could leave.
    fn after_crash(&self, rng: &mut StdRng) -> Data {
        let mut d = self.durable.clone();
        for op in &self.pending {
            match op {
                FileOp::SetLen(len) => {
                    if rng.gen_bool(0.5) {
                        d.set_len(*len);
                    }
                }
                FileOp::Write { off, bytes } => {
                    let off = *off;
                    let end = off + bytes.len() as u64;
                    match rng.gen_range(0..4u8) {
                        // Lost.
                        0 => {}
                        // Kept whole.
                        1 => d.write(off, bytes),
                        // Torn: some of the sectors it touches.
                        2 => {
                            let mut sector = off / SECTOR * SECTOR;
                            while sector < end {
                                let a = sector.max(off);
                                let b = (sector + SECTOR).min(end);
                                if rng.gen_bool(0.5) {
                                    d.write(a, &bytes[(a - off) as usize..(b - off) as usize]);
                                }
                                sector += SECTOR;
                            }
                        }
                        // Zero-filled: the length grew, the data never came.
                        _ => {
                            if end > d.len {
                                d.set_len(end);
                            }
                        }
                    }
                }
            }
        }
        d
    }
}

/// A change to a directory's entries not yet made durable.
enum DirOp {
    Link { name: String, ino: usize },
    Unlink { name: String },
    Rename { from: String, to: String },
}

#[derive(Default)]
struct DirNode {
    current: BTreeMap<String, usize>,
    durable: BTreeMap<String, usize>,
    pending: Vec<DirOp>,
}

impl DirNode {
    fn sync(&mut self) {
        self.durable = self.current.clone();
        self.pending.clear();
    }

    /// The entries a power loss now could leave: a random prefix of the
    /// pending changes on top of the durable entries.
    fn after_crash(&self, rng: &mut StdRng) -> BTreeMap<String, usize> {
        let keep = rng.gen_range(0..=self.pending.len());
        let mut entries = self.durable.clone();
        for op in &self.pending[..keep] {
            match op {
                DirOp::Link { name, ino } => {
                    entries.insert(name.clone(), *ino);
                }
                DirOp::Unlink { name } => {
                    entries.remove(name);
                }
                DirOp::Rename { from, to } => {
                    if let Some(ino) = entries.remove(from) {
                        entries.insert(to.clone(), ino);
                    }
                }
            }
        }
        entries
    }
}

enum Node {
    File(FileNode),
    Dir(DirNode),
}

/// Everything behind the one lock. Inodes are never freed (their durable
/// state may come back in a crash image); `nodes[ino]`.
struct State {
    nodes: Vec<Node>,
    powered_off: bool,
    /// Power off just before the mutating op with this number.
    trigger: Option<u64>,
    mutating_ops: u64,
    failing_syncs: u32,
    capacity: Option<u64>,
}

impl State {
    fn empty() -> Self {
        State {
            nodes: vec![Node::Dir(DirNode::default())],
            powered_off: false,
            trigger: None,
            mutating_ops: 0,
            failing_syncs: 0,
            capacity: None,
        }
    }

    fn check_on(&self) -> io::Result<()> {
        if self.powered_off {
            Err(power_loss())
        } else {
            Ok(())
        }
    }

    /// Called first by every mutating operation: counts it, or refuses it
    /// when the power is (or now goes) off.
    fn begin_mutation(&mut self) -> io::Result<()> {
        self.check_on()?;
        if self
            .trigger
            .is_some_and(|at| self.mutating_ops.saturating_add(1) >= at)
        {
            self.powered_off = true;
            self.trigger = None;
            return Err(power_loss());
        }
        self.mutating_ops += 1;
        Ok(())
    }

    fn take_sync_failure(&mut self) -> io::Result<()> {
        if self.failing_syncs > 0 {
            self.failing_syncs -= 1;
            return Err(errno(EIO));
        }
        Ok(())
    }

    fn is_dir(&self, ino: usize) -> bool {
        matches!(self.nodes[ino], Node::Dir(_))
    }

    fn dir(&self, ino: usize) -> &DirNode {
        match &self.nodes[ino] {
            Node::Dir(d) => d,
            Node::File(_) => panic!("sim fs: inode {ino} is not a directory"),
        }
    }

    fn dir_mut(&mut self, ino: usize) -> &mut DirNode {
        match &mut self.nodes[ino] {
            Node::Dir(d) => d,
            Node::File(_) => panic!("sim fs: inode {ino} is not a directory"),
        }
    }

    fn file(&self, ino: usize) -> &FileNode {
        match &self.nodes[ino] {
            Node::File(f) => f,
            Node::Dir(_) => panic!("sim fs: inode {ino} is not a file"),
        }
    }

    fn file_mut(&mut self, ino: usize) -> &mut FileNode {
        match &mut self.nodes[ino] {
            Node::File(f) => f,
            Node::Dir(_) => panic!("sim fs: inode {ino} is not a file"),
        }
    }

    /// The inode at `comps` in the current namespace.
    fn resolve(&self, comps: &[String]) -> io::Result<usize> {
        let mut ino = ROOT;
        for name in comps {
            match &self.nodes[ino] {
                Node::Dir(d) => ino = *d.current.get(name).ok_or_else(|| errno(ENOENT))?,
                Node::File(_) => return Err(errno(ENOTDIR)),
            }
        }
        Ok(ino)
    }

    /// The directory holding the last component of `comps` (non-empty),
    /// and that component.
    fn parent<'a>(&self, comps: &'a [String]) -> io::Result<(usize, &'a str)> {
        let (name, dir) = comps.split_last().ok_or_else(|| errno(EBUSY))?;
        let ino = self.resolve(dir)?;
        if !self.is_dir(ino) {
            return Err(errno(ENOTDIR));
        }
        Ok((ino, name))
    }

    /// Bytes taken by live files.
    fn used_except(&self, except: usize) -> u64 {
        self.nodes
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != except)
            .map(|(_, n)| match n {
                Node::File(f) if f.live() => f.current.len,
                _ => 0,
            })
            .sum()
    }

    /// `ENOSPC` when growing file `ino` to `new_len` overflows the capacity.
    fn check_growth(&self, ino: usize, new_len: u64) -> io::Result<()> {
        if let Some(cap) = self.capacity {
            if new_len > self.file(ino).current.len
                && self.used_except(ino).saturating_add(new_len) > cap
            {
                return Err(errno(ENOSPC));
            }
        }
        Ok(())
    }

    fn drop_link(&mut self, ino: usize) {
        if let Node::File(f) = &mut self.nodes[ino] {
            f.nlink = f.nlink.saturating_sub(1);
        }
    }

    /// Adds `name` → `ino` to `dir`, replacing what was there.
    fn link(&mut self, dir: usize, name: &str, ino: usize) {
        if let Node::File(f) = &mut self.nodes[ino] {
            f.nlink += 1;
        }
        let d = self.dir_mut(dir);
        let old = d.current.insert(name.to_owned(), ino);
        d.pending.push(DirOp::Link {
            name: name.to_owned(),
            ino,
        });
        if let Some(old) = old {
            self.drop_link(old);
        }
    }

    fn unlink(&mut self, dir: usize, name: &str) {
        let d = self.dir_mut(dir);
        if let Some(old) = d.current.remove(name) {
            d.pending.push(DirOp::Unlink {
                name: name.to_owned(),
            });
            self.drop_link(old);
        }
    }

    /// Empties directory `dir`, deepest entries first, as `rm -r` would.
    fn remove_tree(&mut self, dir: usize) {
        let entries: Vec<(String, usize)> = self
            .dir(dir)
            .current
            .iter()
            .map(|(n, &i)| (n.clone(), i))
            .collect();
        for (name, ino) in entries {
            if self.is_dir(ino) {
                self.remove_tree(ino);
            }
            self.unlink(dir, &name);
        }
    }

    fn create_dir(&mut self, comps: &[String]) -> io::Result<()> {
        if comps.is_empty() {
            return Err(errno(EEXIST));
        }
        let (parent, name) = self.parent(comps)?;
        if self.dir(parent).current.contains_key(name) {
            return Err(errno(EEXIST));
        }
        let ino = self.nodes.len();
        self.nodes.push(Node::Dir(DirNode::default()));
        self.link(parent, name, ino);
        Ok(())
    }

    fn sync_file(&mut self, ino: usize) -> io::Result<()> {
        self.take_sync_failure()?;
        self.file_mut(ino).sync();
        Ok(())
    }
}

/// The path's components, absolute or relative alike, `.` and `..` resolved
/// by name.
fn components(path: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => {
                out.push(name.to_str().ok_or_else(|| errno(EINVAL))?.to_owned())
            }
        }
    }
    Ok(out)
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().expect("sim fs state lock poisoned")
}

/// An in-memory filesystem that can lose power; see the module doc.
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for SimFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SimFs");
        if let Ok(st) = self.state.try_lock() {
            d.field("inodes", &st.nodes.len())
                .field("powered_off", &st.powered_off)
                .field("mutating_ops", &st.mutating_ops);
        }
        d.finish_non_exhaustive()
    }
}

impl SimFs {
    /// An empty filesystem: just the root directory, durable.
    pub fn new() -> Arc<SimFs> {
        Self::with_state(State::empty())
    }

    fn with_state(state: State) -> Arc<SimFs> {
        Arc::new(SimFs {
            state: Arc::new(Mutex::new(state)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// A new filesystem holding what a power loss at this instant could
    /// leave, chosen by `seed` (the same seed on the same state gives the
    /// same image). Everything in it is durable; it is powered on, keeps
    /// this filesystem's capacity, and has no pending faults. Works on a
    /// powered-off filesystem.
    ///
    /// A directory that the image would reach under two names (a rename
    /// across directories whose removal was lost and whose creation was
    /// kept) keeps only the first one found, breadth first from the root in
    /// name order, so the image stays a tree.
    pub fn crash_image(&self, seed: u64) -> Arc<SimFs> {
        let st = self.lock();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut nodes = vec![Node::Dir(DirNode::default())];
        let mut new_ino: HashMap<usize, usize> = HashMap::from([(ROOT, ROOT)]);
        let mut queue = VecDeque::from([ROOT]);
        while let Some(old_dir) = queue.pop_front() {
            let mut entries = BTreeMap::new();
            for (name, old) in st.dir(old_dir).after_crash(&mut rng) {
                let ino = match new_ino.get(&old) {
                    Some(&ino) if matches!(nodes[ino], Node::Dir(_)) => continue,
                    Some(&ino) => ino,
                    None => {
                        let ino = nodes.len();
                        match &st.nodes[old] {
                            Node::Dir(_) => {
                                nodes.push(Node::Dir(DirNode::default()));
                                queue.push_back(old);
                            }
                            Node::File(f) => {
                                nodes.push(Node::File(FileNode::new(f.after_crash(&mut rng))))
                            }
                        }
                        new_ino.insert(old, ino);
                        ino
                    }
                };
                if let Node::File(f) = &mut nodes[ino] {
                    f.nlink += 1;
                }
                entries.insert(name, ino);
            }
            nodes[new_ino[&old_dir]] = Node::Dir(DirNode {
                current: entries.clone(),
                durable: entries,
                pending: Vec::new(),
            });
        }
        Self::with_state(State {
            nodes,
            capacity: st.capacity,
            ..State::empty()
        })
    }

    /// Cuts the power: every later operation on this filesystem and on its
    /// open files fails with "simulated power loss" and changes nothing
    /// (`exists` and `is_dir` answer false). The debug helpers and
    /// [`SimFs::crash_image`] still work.
    pub fn power_off(&self) {
        self.lock().powered_off = true;
    }

    /// Arms a trigger: the power goes off by itself just before the `n`-th
    /// mutating operation from now (`write_at`, `set_len`, `sync_data`,
    /// `sync_all`, `open` with a creating mode, `create_dir`, each directory
    /// `create_dir_all` creates, `remove_file`, `remove_dir_all`, `rename`,
    /// `sync_dir`), which fails and does nothing. `n == 0` cuts it now.
    pub fn power_off_after(&self, n: u64) {
        let mut st = self.lock();
        if n == 0 {
            st.powered_off = true;
            st.trigger = None;
        } else {
            st.trigger = Some(st.mutating_ops.saturating_add(n));
        }
    }

    /// Whether the power is off.
    pub fn is_powered_off(&self) -> bool {
        self.lock().powered_off
    }

    /// How many mutating operations (see [`SimFs::power_off_after`]) were
    /// attempted with the power on, failed ones included, except the one
    /// that cut the power.
    pub fn mutating_ops(&self) -> u64 {
        self.lock().mutating_ops
    }

    /// The next `n` syncs (of a file or a directory) fail with `EIO` and
    /// make nothing durable.
    pub fn fail_syncs(&self, n: u32) {
        self.lock().failing_syncs = n;
    }

    /// Limits the sum of the lengths of all files (named or still open) to
    /// `bytes`: a `write_at` or `set_len` that would grow a file past it
    /// fails with `ENOSPC` and writes nothing. `None`: unlimited.
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.lock().capacity = bytes;
    }

    /// The current contents of the file at `path`; `None` when there is no
    /// file there.
    pub fn read_file(&self, path: &Path) -> Option<Vec<u8>> {
        self.file_at(path, |f| f.current.to_vec())
    }

    /// The durable contents of the file now at `path` (whether its name is
    /// durable is another matter); `None` when there is no file there.
    pub fn durable_file(&self, path: &Path) -> Option<Vec<u8>> {
        self.file_at(path, |f| f.durable.to_vec())
    }

    fn file_at(&self, path: &Path, get: impl FnOnce(&FileNode) -> Vec<u8>) -> Option<Vec<u8>> {
        let comps = components(path).ok()?;
        let st = self.lock();
        match &st.nodes[st.resolve(&comps).ok()?] {
            Node::File(f) => Some(get(f)),
            Node::Dir(_) => None,
        }
    }
}

/// An open file of a [`SimFs`].
struct SimFile {
    state: Arc<Mutex<State>>,
    ino: usize,
    writable: bool,
    path: PathBuf,
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFile")
            .field("path", &self.path)
            .field("ino", &self.ino)
            .field("writable", &self.writable)
            .finish()
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        let mut st = match self.state.lock() {
            Ok(st) => st,
            Err(poisoned) => poisoned.into_inner(),
        };
        let f = st.file_mut(self.ino);
        f.handles = f.handles.saturating_sub(1);
    }
}

impl SimFile {
    fn begin_write(&self) -> io::Result<MutexGuard<'_, State>> {
        let mut st = lock(&self.state);
        st.begin_mutation()?;
        if !self.writable {
            return Err(errno(EBADF));
        }
        Ok(st)
    }

    fn sync(&self) -> io::Result<()> {
        let mut st = lock(&self.state);
        st.begin_mutation()?;
        st.sync_file(self.ino)
    }
}

impl VFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let st = lock(&self.state);
        st.check_on()?;
        Ok(st.file(self.ino).current.read(offset, buf))
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut st = self.begin_write()?;
        if buf.is_empty() {
            return Ok(());
        }
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or_else(|| errno(EINVAL))?;
        st.check_growth(self.ino, end)?;
        let f = st.file_mut(self.ino);
        f.current.write(offset, buf);
        f.pending.push(FileOp::Write {
            off: offset,
            bytes: buf.to_vec(),
        });
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        let st = lock(&self.state);
        st.check_on()?;
        Ok(st.file(self.ino).current.len)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut st = self.begin_write()?;
        st.check_growth(self.ino, len)?;
        let f = st.file_mut(self.ino);
        f.current.set_len(len);
        f.pending.push(FileOp::SetLen(len));
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.sync()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync()
    }

    fn try_lock(&self) -> io::Result<()> {
        lock(&self.state).check_on()
    }
}

impl Vfs for SimFs {
    fn open(&self, path: &Path, how: OpenHow) -> io::Result<Arc<dyn VFile>> {
        let comps = components(path)?;
        let mut st = self.lock();
        let creating = !matches!(how, OpenHow::Read | OpenHow::ReadWrite);
        if creating {
            st.begin_mutation()?;
        } else {
            st.check_on()?;
        }
        let existing = match st.resolve(&comps) {
            Ok(ino) => Some(ino),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let ino = match existing {
            Some(_) if matches!(how, OpenHow::CreateNew { .. }) => return Err(errno(EEXIST)),
            Some(ino) if st.is_dir(ino) => return Err(errno(EISDIR)),
            Some(ino) => {
                if matches!(how, OpenHow::CreateTruncate { .. }) {
                    let f = st.file_mut(ino);
                    if f.current.len > 0 || !f.pending.is_empty() {
                        f.current.set_len(0);
                        f.pending.push(FileOp::SetLen(0));
                    }
                }
                ino
            }
            None if !creating => return Err(errno(ENOENT)),
            None => {
                let (parent, name) = st.parent(&comps)?;
                let ino = st.nodes.len();
                st.nodes.push(Node::File(FileNode::new(Data::default())));
                st.link(parent, name, ino);
                ino
            }
        };
        st.file_mut(ino).handles += 1;
        Ok(Arc::new(SimFile {
            state: Arc::clone(&self.state),
            ino,
            writable: !matches!(how, OpenHow::Read),
            path: path.to_path_buf(),
        }))
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let comps = components(path)?;
        let mut st = self.lock();
        st.begin_mutation()?;
        st.create_dir(&comps)
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let comps = components(path)?;
        let mut st = self.lock();
        st.check_on()?;
        for i in 1..=comps.len() {
            match st.resolve(&comps[..i]) {
                Ok(ino) if st.is_dir(ino) => {}
                Ok(_) if i == comps.len() => return Err(errno(EEXIST)),
                Ok(_) => return Err(errno(ENOTDIR)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    st.begin_mutation()?;
                    st.create_dir(&comps[..i])?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let comps = components(dir)?;
        let st = self.lock();
        st.check_on()?;
        let ino = st.resolve(&comps)?;
        if !st.is_dir(ino) {
            return Err(errno(ENOTDIR));
        }
        Ok(st.dir(ino).current.keys().cloned().collect())
    }

    fn is_dir(&self, path: &Path) -> bool {
        let Ok(comps) = components(path) else {
            return false;
        };
        let st = self.lock();
        !st.powered_off && st.resolve(&comps).is_ok_and(|ino| st.is_dir(ino))
    }

    fn exists(&self, path: &Path) -> bool {
        let Ok(comps) = components(path) else {
            return false;
        };
        let st = self.lock();
        !st.powered_off && st.resolve(&comps).is_ok()
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let comps = components(path)?;
        let mut st = self.lock();
        st.begin_mutation()?;
        if comps.is_empty() {
            return Err(errno(EISDIR));
        }
        let (parent, name) = st.parent(&comps)?;
        let ino = *st
            .dir(parent)
            .current
            .get(name)
            .ok_or_else(|| errno(ENOENT))?;
        if st.is_dir(ino) {
            return Err(errno(EISDIR));
        }
        st.unlink(parent, name);
        Ok(())
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let comps = components(path)?;
        let mut st = self.lock();
        st.begin_mutation()?;
        let (parent, name) = st.parent(&comps)?;
        let ino = *st
            .dir(parent)
            .current
            .get(name)
            .ok_or_else(|| errno(ENOENT))?;
        if !st.is_dir(ino) {
            return Err(errno(ENOTDIR));
        }
        st.remove_tree(ino);
        st.unlink(parent, name);
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let from_comps = components(from)?;
        let to_comps = components(to)?;
        let mut st = self.lock();
        st.begin_mutation()?;
        let (from_dir, from_name) = st.parent(&from_comps)?;
        let src = *st
            .dir(from_dir)
            .current
            .get(from_name)
            .ok_or_else(|| errno(ENOENT))?;
        let (to_dir, to_name) = st.parent(&to_comps)?;
        let src_is_dir = st.is_dir(src);
        if src_is_dir && to_comps.len() > from_comps.len() && to_comps.starts_with(&from_comps) {
            return Err(errno(EINVAL));
        }
        if let Some(&dst) = st.dir(to_dir).current.get(to_name) {
            if dst == src {
                return Ok(());
            }
            match (src_is_dir, st.is_dir(dst)) {
                (false, true) => return Err(errno(EISDIR)),
                (true, false) => return Err(errno(ENOTDIR)),
                (true, true) if !st.dir(dst).current.is_empty() => return Err(errno(ENOTEMPTY)),
                _ => {}
            }
        }
        if from_dir == to_dir {
            let d = st.dir_mut(from_dir);
            d.current.remove(from_name);
            let replaced = d.current.insert(to_name.to_owned(), src);
            d.pending.push(DirOp::Rename {
                from: from_name.to_owned(),
                to: to_name.to_owned(),
            });
            if let Some(old) = replaced {
                st.drop_link(old);
            }
        } else {
            st.unlink(from_dir, from_name);
            st.link(to_dir, to_name, src);
        }
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let comps = components(dir)?;
        let mut st = self.lock();
        st.begin_mutation()?;
        let ino = st.resolve(&comps)?;
        if !st.is_dir(ino) {
            // fsync through a descriptor opened on a file syncs the file.
            return st.sync_file(ino);
        }
        st.take_sync_failure()?;
        st.dir_mut(ino).sync();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODE: u32 = 0o600;

    fn p(s: &str) -> &Path {
        Path::new(s)
    }

    /// Every file in `fs`, by path, with its current contents.
    fn snapshot(fs: &SimFs) -> BTreeMap<String, Vec<u8>> {
        fn walk(fs: &SimFs, dir: &str, out: &mut BTreeMap<String, Vec<u8>>) {
            for name in fs.list(p(dir)).expect("list") {
                let path = format!("{dir}/{name}");
                if fs.is_dir(p(&path)) {
                    out.insert(format!("{path}/"), Vec::new());
                    walk(fs, &path, out);
                } else {
                    out.insert(path.clone(), fs.read_file(p(&path)).expect("file present"));
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(fs, "", &mut out);
        out
    }

    /// A file `path` whose name and (empty) contents are durable.
    fn durable_empty_file(fs: &SimFs, path: &str) -> Arc<dyn VFile> {
        let f = fs
            .open(p(path), OpenHow::CreateNew { mode: MODE })
            .expect("open");
        f.sync_all().expect("sync");
        let parent = Path::new(path).parent().expect("has a parent");
        fs.sync_dir(parent).expect("sync dir");
        f
    }

    #[test]
    fn unsynced_write_is_lost_in_some_seeds_and_kept_in_others() {
        let fs = SimFs::new();
        let f = durable_empty_file(&fs, "/seg");
        f.write_at(b"unsynced record", 0).expect("write");
        assert_eq!(
            fs.read_file(p("/seg")).expect("file present"),
            b"unsynced record"
        );
        assert_eq!(fs.durable_file(p("/seg")).expect("file present"), b"");
        let (mut lost, mut kept) = (0, 0);
        for seed in 0..200 {
            let img = fs.crash_image(seed);
            match img.read_file(p("/seg")).expect("file present").as_slice() {
                b"" => lost += 1,
                b"unsynced record" => kept += 1,
                _ => {}
            }
        }
        assert!(lost > 10 && kept > 10, "lost {lost} kept {kept}");
    }

    #[test]
    fn synced_data_always_survives() {
        let fs = SimFs::new();
        fs.create_dir(p("/j")).expect("create dir");
        fs.sync_dir(p("/")).expect("sync dir");
        let f = durable_empty_file(&fs, "/j/seg");
        let synced: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8 + 1).collect();
        f.write_at(&synced[..3000], 0).expect("write");
        f.write_at(&synced[3000..], 3000).expect("write");
        f.sync_data().expect("sync");
        assert_eq!(fs.durable_file(p("/j/seg")).expect("file present"), synced);
        // More appends, never synced, must not disturb what was.
        f.write_at(&[0xee; 1500], 5000).expect("write");
        f.write_at(&[0xdd; 700], 6500).expect("write");
        for seed in 0..300 {
            let img = fs.crash_image(seed);
            let got = img.read_file(p("/j/seg")).expect("file present");
            assert!(got.len() >= synced.len(), "seed {seed}");
            assert_eq!(&got[..synced.len()], synced.as_slice(), "seed {seed}");
        }
    }

    /// Checks, per 512-byte sector the write touched, that the sector holds
    /// the old bytes or the new ones throughout; returns (old, new) counts.
    fn sectors_whole(got: &[u8], old: &[u8], new: &[u8], off: usize) -> (usize, usize) {
        let end = off + new.len();
        let (mut olds, mut news) = (0, 0);
        let mut s = off / 512 * 512;
        while s < end {
            let (a, b) = (s.max(off), (s + 512).min(end));
            if got[a..b] == old[a..b] {
                olds += 1;
            } else if got[a..b] == new[a - off..b - off] {
                news += 1;
            } else {
                panic!("sector {s} mixes old and new bytes");
            }
            s += 512;
        }
        (olds, news)
    }

    #[test]
    fn torn_overwrites_are_sector_aligned() {
        let fs = SimFs::new();
        let f = durable_empty_file(&fs, "/tree");
        let old = vec![b'A'; 4096];
        f.write_at(&old, 0).expect("write");
        f.sync_data().expect("sync");
        let new = vec![b'B'; 3000];
        f.write_at(&new, 100).expect("write");
        let mut mixed = 0;
        for seed in 0..300 {
            let got = fs
                .crash_image(seed)
                .read_file(p("/tree"))
                .expect("file present");
            assert_eq!(got.len(), 4096);
            assert!(got[..100].iter().all(|&b| b == b'A'));
            assert!(got[3100..].iter().all(|&b| b == b'A'));
            let (olds, news) = sectors_whole(&got, &old, &new, 100);
            if olds > 0 && news > 0 {
                mixed += 1;
            }
        }
        assert!(mixed > 10, "only {mixed} torn images");
    }

    #[test]
    fn torn_and_zero_filled_appends() {
        let fs = SimFs::new();
        let f = durable_empty_file(&fs, "/seg");
        let new: Vec<u8> = (0..2000u32).map(|i| (i % 250) as u8 + 1).collect();
        f.write_at(&new, 0).expect("write");
        let (mut zero_filled, mut torn, mut gaps) = (0, 0, 0);
        for seed in 0..400 {
            let got = fs
                .crash_image(seed)
                .read_file(p("/seg"))
                .expect("file present");
            assert!(got.len() <= new.len());
            if got.is_empty() {
                continue;
            }
            // Each sector the write touched holds all of its bytes or zeros.
            let mut padded = got.clone();
            padded.resize(new.len(), 0);
            let (zero, data) = sectors_whole(&padded, &[0; 2000], &new, 0);
            if data == 0 {
                assert_eq!(got.len(), new.len(), "zero fill covers the write");
                zero_filled += 1;
            } else if zero > 0 {
                torn += 1;
                if got.len() < new.len() {
                    // The length ends where the last kept sector does.
                    assert_eq!(got.len() % 512, 0);
                    assert_ne!(got[got.len() - 1], 0);
                }
                if got.contains(&0) {
                    gaps += 1;
                }
            }
        }
        assert!(
            zero_filled > 10 && torn > 10 && gaps > 5,
            "{zero_filled} {torn} {gaps}"
        );
    }

    #[test]
    fn created_file_vanishes_until_its_directory_is_synced() {
        let fs = SimFs::new();
        fs.create_dir(p("/d")).expect("create dir");
        fs.sync_dir(p("/")).expect("sync dir");
        let f = fs
            .open(p("/d/meta"), OpenHow::CreateNew { mode: MODE })
            .expect("open");
        f.write_at(b"meta", 0).expect("write");
        f.sync_all().expect("sync");
        let (mut gone, mut there) = (0, 0);
        for seed in 0..100 {
            match fs.crash_image(seed).read_file(p("/d/meta")) {
                None => gone += 1,
                Some(data) => {
                    assert_eq!(data, b"meta");
                    there += 1;
                }
            }
        }
        assert!(gone > 10 && there > 10, "gone {gone} there {there}");
        fs.sync_dir(p("/d")).expect("sync dir");
        for seed in 0..100 {
            assert_eq!(
                fs.crash_image(seed)
                    .read_file(p("/d/meta"))
                    .expect("file present"),
                b"meta"
            );
        }
    }

    #[test]
    fn new_directory_needs_its_parent_synced() {
        let fs = SimFs::new();
        fs.create_dir_all(p("a/b")).expect("create dirs");
        let mut seen = std::collections::HashSet::new();
        for seed in 0..100 {
            let img = fs.crash_image(seed);
            seen.insert((img.is_dir(p("/a")), img.is_dir(p("/a/b"))));
        }
        assert!(seen.contains(&(false, false)) && seen.contains(&(true, true)));
        assert!(!seen.contains(&(false, true)));
        fs.sync_dir(p("/a")).expect("sync dir");
        fs.sync_dir(p("/")).expect("sync dir");
        assert!((0..50).all(|s| fs.crash_image(s).is_dir(p("/a/b"))));
    }

    #[test]
    fn tmp_rename_replacement_is_old_or_new() {
        let fs = SimFs::new();
        fs.create_dir(p("/r")).expect("create dir");
        fs.sync_dir(p("/")).expect("sync dir");
        let old = fs
            .open(p("/r/head"), OpenHow::CreateNew { mode: MODE })
            .expect("open");
        old.write_at(b"old head, long enough to overlap", 0)
            .expect("write");
        old.sync_all().expect("sync");
        fs.sync_dir(p("/r")).expect("sync dir");

        let tmp = fs
            .open(p("/r/head.tmp"), OpenHow::CreateTruncate { mode: MODE })
            .expect("open");
        tmp.write_at(b"new head", 0).expect("write");
        tmp.sync_all().expect("sync");
        fs.rename(p("/r/head.tmp"), p("/r/head")).expect("rename");
        assert_eq!(
            fs.read_file(p("/r/head")).expect("file present"),
            b"new head"
        );
        assert!(!fs.exists(p("/r/head.tmp")));
        // The replaced file stays readable through its handle.
        assert_eq!(
            old.read_to_end_at(0).expect("read"),
            b"old head, long enough to overlap"
        );

        let (mut olds, mut news) = (0, 0);
        for seed in 0..200 {
            let img = fs.crash_image(seed);
            match img
                .read_file(p("/r/head"))
                .expect("file present")
                .as_slice()
            {
                b"old head, long enough to overlap" => olds += 1,
                b"new head" => news += 1,
                other => panic!("seed {seed}: mixed head {other:?}"),
            }
            // The tmp name is either still there or gone with the rename.
            if let Some(t) = img.read_file(p("/r/head.tmp")) {
                assert_eq!(t, b"new head");
            }
        }
        assert!(olds > 10 && news > 10, "old {olds} new {news}");
        fs.sync_dir(p("/r")).expect("sync dir");
        for seed in 0..50 {
            let img = fs.crash_image(seed);
            assert_eq!(
                img.read_file(p("/r/head")).expect("file present"),
                b"new head"
            );
            assert!(!img.exists(p("/r/head.tmp")));
        }
    }

    #[test]
    fn directory_renamed_into_place_is_in_one_place() {
        let fs = SimFs::new();
        fs.create_dir(p("/staging")).expect("create dir");
        fs.sync_dir(p("/")).expect("sync dir");
        fs.create_dir(p("/staging/x")).expect("create dir");
        let f = fs
            .open(p("/staging/x/seg"), OpenHow::CreateNew { mode: MODE })
            .expect("open");
        f.write_at(b"data", 0).expect("write");
        f.sync_data().expect("sync");
        fs.sync_dir(p("/staging/x")).expect("sync dir");
        fs.sync_dir(p("/staging")).expect("sync dir");
        // Same directory: atomic.
        fs.rename(p("/staging/x"), p("/staging/ready"))
            .expect("rename");
        // Across directories: the two halves are independent.
        fs.create_dir(p("/live")).expect("create dir");
        fs.sync_dir(p("/")).expect("sync dir");
        fs.rename(p("/staging/ready"), p("/live/ready"))
            .expect("rename");
        assert_eq!(
            fs.read_file(p("/live/ready/seg")).expect("file present"),
            b"data"
        );
        let mut outcomes = std::collections::HashSet::new();
        for seed in 0..300 {
            let img = fs.crash_image(seed);
            let where_ = [
                img.exists(p("/staging/x")),
                img.exists(p("/staging/ready")),
                img.exists(p("/live/ready")),
            ];
            assert!(
                !(where_[0] && where_[1]),
                "seed {seed}: both names in one dir"
            );
            let places = where_.iter().filter(|&&b| b).count();
            assert!(places <= 1, "seed {seed}: a directory under two names");
            for (i, path) in ["/staging/x/seg", "/staging/ready/seg", "/live/ready/seg"]
                .iter()
                .enumerate()
            {
                if where_[i] {
                    assert_eq!(img.read_file(p(path)).expect("file present"), b"data");
                }
            }
            outcomes.insert(where_);
        }
        assert!(outcomes.len() >= 3, "{outcomes:?}");
    }

    #[test]
    fn crash_images_are_durable_and_deterministic() {
        let fs = SimFs::new();
        fs.create_dir_all(p("/a/b")).expect("create dirs");
        let f = fs
            .open(p("/a/b/f"), OpenHow::Create { mode: MODE })
            .expect("open");
        f.write_at(&[7; 3000], 0).expect("write");
        f.set_len(1000).expect("set_len");
        f.write_at(&[9; 700], 900).expect("write");
        let g = fs
            .open(p("/a/g"), OpenHow::Create { mode: MODE })
            .expect("open");
        g.write_at(b"g", 0).expect("write");
        for seed in 0..100 {
            let img = fs.crash_image(seed);
            assert_eq!(snapshot(&img), snapshot(&fs.crash_image(seed)));
            let before = snapshot(&img);
            for (path, data) in &before {
                if !path.ends_with('/') {
                    assert_eq!(img.durable_file(p(path)).as_ref(), Some(data));
                }
            }
            for again in 0..5 {
                assert_eq!(snapshot(&img.crash_image(again)), before);
            }
        }
    }

    #[test]
    fn unlinked_file_stays_usable_through_its_handle() {
        let fs = SimFs::new();
        let f = fs
            .open(p("/gone"), OpenHow::CreateNew { mode: MODE })
            .expect("open");
        f.write_at(b"still here", 0).expect("write");
        fs.remove_file(p("/gone")).expect("remove");
        assert!(!fs.exists(p("/gone")));
        assert!(fs.list(p("/")).expect("list").is_empty());
        assert_eq!(f.read_to_end_at(0).expect("read"), b"still here");
        f.write_at(b"!", 10).expect("write");
        f.sync_all().expect("sync");
        assert_eq!(f.len().expect("len"), 11);
        assert_eq!(f.read_to_end_at(6).expect("read"), b"here!");
        assert_eq!(
            fs.open(p("/gone"), OpenHow::Read)
                .expect_err("must fail")
                .kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn path_rules() {
        let fs = SimFs::new();
        let kind = |r: io::Result<()>| r.expect_err("must fail").kind();
        assert_eq!(kind(fs.create_dir(p("/x/y"))), io::ErrorKind::NotFound);
        fs.create_dir(p("x")).expect("create dir");
        assert_eq!(kind(fs.create_dir(p("/x"))), io::ErrorKind::AlreadyExists);
        assert_eq!(kind(fs.create_dir(p("/"))), io::ErrorKind::AlreadyExists);
        assert!(fs.is_dir(p("/x")) && fs.is_dir(p("./x/")) && fs.is_dir(p("/")));
        fs.open(p("/x/f"), OpenHow::CreateNew { mode: MODE })
            .expect("open");
        assert!(fs.exists(p("x/../x/f")) && !fs.is_dir(p("x/f")));
        let open_err = |path: &str, how| fs.open(p(path), how).expect_err("must fail");
        assert_eq!(
            open_err("/x/f", OpenHow::CreateNew { mode: MODE }).kind(),
            io::ErrorKind::AlreadyExists
        );
        assert_eq!(
            open_err("/x/nope", OpenHow::Read).kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            open_err("/x/nope", OpenHow::ReadWrite).kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            open_err("/nodir/f", OpenHow::Create { mode: MODE }).kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(open_err("/x", OpenHow::Read).raw_os_error(), Some(EISDIR));
        assert_eq!(
            open_err("/x/f/g", OpenHow::Read).raw_os_error(),
            Some(ENOTDIR)
        );
        let ro = fs.open(p("/x/f"), OpenHow::Read).expect("open");
        assert_eq!(
            ro.write_at(b"no", 0).expect_err("must fail").raw_os_error(),
            Some(EBADF)
        );
        assert_eq!(ro.try_lock().ok(), Some(()));
        assert_eq!(fs.list(p("/x")).expect("list"), vec!["f".to_owned()]);
        assert_eq!(kind(fs.remove_file(p("/x"))), io::ErrorKind::IsADirectory);
        assert_eq!(kind(fs.remove_file(p("/x/nope"))), io::ErrorKind::NotFound);
        fs.create_dir_all(p("/x/y/z")).expect("create dirs");
        fs.create_dir_all(p("/x/y/z")).expect("create dirs");
        assert!(fs.create_dir_all(p("/x/f/z")).is_err());
        assert_eq!(
            fs.rename(p("/x"), p("/x/y/w"))
                .expect_err("must fail")
                .raw_os_error(),
            Some(EINVAL)
        );
        assert_eq!(
            fs.rename(p("/x/y"), p("/x/f"))
                .expect_err("must fail")
                .raw_os_error(),
            Some(ENOTDIR)
        );
        fs.remove_dir_all(p("/x")).expect("remove dir");
        assert!(!fs.exists(p("/x/y/z")) && fs.list(p("/")).expect("list").is_empty());
        assert_eq!(kind(fs.list(p("/x")).map(drop)), io::ErrorKind::NotFound);
    }

    #[test]
    fn power_off_after_stops_at_exactly_the_nth_mutating_op() {
        // A workload of 6 mutating ops (and some reads, which don't count).
        let workload = |fs: &SimFs| -> io::Result<()> {
            fs.create_dir(p("/d"))?; // 1
            let f = fs.open(p("/d/f"), OpenHow::CreateNew { mode: MODE })?; // 2
            fs.exists(p("/d/f"));
            f.write_at(b"one", 0)?; // 3
            f.read_to_end_at(0)?;
            f.write_at(b"two", 3)?; // 4
            f.sync_data()?; // 5
            fs.sync_dir(p("/d"))?; // 6
            Ok(())
        };
        let fs = SimFs::new();
        workload(&fs).expect("workload");
        assert_eq!(fs.mutating_ops(), 6);

        let fs = SimFs::new();
        fs.power_off_after(4);
        let err = workload(&fs).expect_err("must fail");
        assert_eq!(err.kind(), io::ErrorKind::Other);
        assert_eq!(err.to_string(), "simulated power loss");
        assert!(fs.is_powered_off());
        assert_eq!(fs.mutating_ops(), 3);
        assert_eq!(fs.read_file(p("/d/f")).expect("file present"), b"one");
        // Frozen: nothing works, nothing changes.
        assert!(!fs.exists(p("/d/f")) && !fs.is_dir(p("/d")));
        assert!(fs.list(p("/")).is_err());
        assert!(fs.open(p("/d/f"), OpenHow::Read).is_err());
        assert!(fs.create_dir(p("/e")).is_err());
        assert_eq!(fs.mutating_ops(), 3);
        assert_eq!(fs.read_file(p("/d/f")).expect("file present"), b"one");
        // Crash images still work, and are powered on.
        let img = fs.crash_image(1);
        assert!(!img.is_powered_off());
        img.create_dir(p("/after")).expect("create dir");

        // Every crash point of the workload, any seed: never panics, and the
        // file, when present, holds a prefix-compatible state.
        for n in 1..=7 {
            for seed in 0..20 {
                let fs = SimFs::new();
                fs.power_off_after(n);
                let r = workload(&fs);
                assert_eq!(r.is_ok(), n == 7);
                if let Some(data) = fs.crash_image(seed).read_file(p("/d/f")) {
                    assert!(data.len() <= 6);
                }
            }
        }
    }

    #[test]
    fn handles_freeze_with_the_fs() {
        let fs = SimFs::new();
        let f = fs
            .open(p("/f"), OpenHow::Create { mode: MODE })
            .expect("open");
        f.write_at(b"abc", 0).expect("write");
        fs.power_off();
        assert_eq!(
            f.write_at(b"x", 0).expect_err("must fail").kind(),
            io::ErrorKind::Other
        );
        assert!(f.set_len(0).is_err() && f.sync_data().is_err() && f.sync_all().is_err());
        assert!(f.len().is_err() && f.read_at(&mut [0; 3], 0).is_err() && f.try_lock().is_err());
        assert_eq!(fs.read_file(p("/f")).expect("file present"), b"abc");
        assert_eq!(fs.durable_file(p("/f")).expect("file present"), b"");
        fs.power_off_after(0);
        assert!(fs.is_powered_off());
    }

    #[test]
    fn failed_syncs_make_nothing_durable() {
        let fs = SimFs::new();
        let f = fs
            .open(p("/f"), OpenHow::CreateNew { mode: MODE })
            .expect("open");
        f.write_at(b"data", 0).expect("write");
        fs.fail_syncs(2);
        assert_eq!(
            f.sync_data().expect_err("must fail").raw_os_error(),
            Some(EIO)
        );
        assert_eq!(
            fs.sync_dir(p("/")).expect_err("must fail").raw_os_error(),
            Some(EIO)
        );
        assert_eq!(fs.durable_file(p("/f")).expect("file present"), b"");
        assert_eq!(fs.read_file(p("/f")).expect("file present"), b"data");
        // The directory entry is still pending: some images lack the file.
        assert!((0..50).any(|s| !fs.crash_image(s).exists(p("/f"))));
        // The faults are used up.
        f.sync_all().expect("sync");
        fs.sync_dir(p("/")).expect("sync dir");
        assert_eq!(fs.durable_file(p("/f")).expect("file present"), b"data");
        assert!(
            (0..50).all(|s| fs.crash_image(s).read_file(p("/f")).expect("file present") == b"data")
        );
    }

    #[test]
    fn capacity_gives_enospc_and_writes_nothing() {
        let fs = SimFs::new();
        fs.set_capacity(Some(100));
        let a = fs
            .open(p("/a"), OpenHow::CreateNew { mode: MODE })
            .expect("open");
        a.write_at(&[1; 60], 0).expect("write");
        let err = a.write_at(&[2; 50], 60).expect_err("must fail");
        assert_eq!(err.raw_os_error(), Some(ENOSPC));
        assert!(crate::fs::is_storage_full(&err));
        assert_eq!(fs.read_file(p("/a")).expect("file present"), vec![1; 60]);
        // Overwriting in place and growing within the limit still work.
        a.write_at(&[3; 10], 0).expect("write");
        a.write_at(&[4; 40], 60).expect("write");
        let b = fs
            .open(p("/b"), OpenHow::CreateNew { mode: MODE })
            .expect("open");
        assert_eq!(
            b.set_len(1).expect_err("must fail").raw_os_error(),
            Some(ENOSPC)
        );
        assert_eq!(
            b.write_at(b"x", 0).expect_err("must fail").raw_os_error(),
            Some(ENOSPC)
        );
        assert_eq!(b.len().expect("len"), 0);
        // Shrinking always works and frees space.
        a.set_len(50).expect("set_len");
        b.write_at(&[5; 50], 0).expect("write");
        // A removed file's space is freed once its last handle goes.
        fs.remove_file(p("/a")).expect("remove");
        let c = fs
            .open(p("/c"), OpenHow::CreateNew { mode: MODE })
            .expect("open");
        assert!(c.write_at(&[6; 10], 0).is_err());
        drop(a);
        c.write_at(&[6; 50], 0).expect("write");
        fs.set_capacity(None);
        c.write_at(&[7; 10_000], 50).expect("write");
    }

    #[test]
    fn many_crash_images_of_a_tree() {
        // A few hundred KB over a few files, some of it pending.
        let fs = SimFs::new();
        fs.create_dir_all(p("/realm/segments"))
            .expect("create dirs");
        fs.sync_dir(p("/")).expect("sync dir");
        fs.sync_dir(p("/realm")).expect("sync dir");
        for s in 0..4 {
            let f = fs
                .open(
                    p(&format!("/realm/segments/{s:04}")),
                    OpenHow::CreateNew { mode: MODE },
                )
                .expect("open");
            for block in 0..16 {
                f.write_at(&[s as u8 + 1; 4000], block * 4000)
                    .expect("write");
                if block < 14 {
                    f.sync_data().expect("sync");
                }
            }
        }
        fs.sync_dir(p("/realm/segments")).expect("sync dir");
        let start = std::time::Instant::now();
        for seed in 0..10_000 {
            let img = fs.crash_image(seed);
            let seg = img
                .read_file(p("/realm/segments/0000"))
                .expect("file present");
            assert!(seg.len() >= 14 * 4000);
        }
        eprintln!("10,000 crash images in {:?}", start.elapsed());
    }
}
