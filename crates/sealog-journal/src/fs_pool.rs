//! A bound on open file descriptors, whatever the number of realms.
//!
//! [`PooledFs`] wraps another [`Vfs`]. Every file it opens is a handle that
//! remembers its path; the descriptor behind it is closed when more than
//! `max_open` are open and it was not used lately (the clock algorithm, an
//! approximation of least-recently-used that costs one atomic store per
//! use), and opened again, transparently, by the next operation. A server
//! with 10,000 realms thus keeps a few hundred descriptors, not 30,000.
//!
//! What it never does: close a file with writes not yet synced. On Linux
//! a writeback error is reported to descriptors open when it happens; a
//! descriptor opened after it could sync "successfully" over lost data
//! (the 2018 "fsyncgate"). So a written, idle file chosen to close is
//! synced first, outside the pool's lock, and closed only if that sync
//! succeeded with no write since; a failed sync keeps the descriptor and
//! the error is handed to the owner's next sync of the file (the kernel
//! reports it once per descriptor, and this sync took it), so the journal
//! sees the failure exactly as if its own fsync had failed.
//!
//! A file reopened this way is opened for reading, or for reading and
//! writing when it was first opened writable; never created or truncated
//! again. Hand-rolled because it has to sit under the [`Vfs`] seam the
//! journal already uses, and no crate offers a descriptor cache with this
//! durability rule.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::fs::{OpenHow, VFile, Vfs};

/// A [`Vfs`] whose files share a bounded number of open descriptors.
#[derive(Debug)]
pub struct PooledFs {
    inner: Arc<dyn Vfs>,
    pool: Arc<Pool>,
}

#[derive(Debug)]
struct Pool {
    max_open: usize,
    /// Descriptors open now.
    open: AtomicUsize,
    /// Descriptors opened again after being closed by the bound.
    reopened: AtomicU64,
    /// Descriptors closed by the bound.
    closed: AtomicU64,
    /// Files with an open descriptor, swept by the clock hand.
    ring: Mutex<Ring>,
    /// Every live file, open or not, for renames.
    all: Mutex<Vec<Weak<PooledFile>>>,
}

#[derive(Debug, Default)]
struct Ring {
    files: Vec<Weak<PooledFile>>,
    hand: usize,
}

impl PooledFs {
    /// Wraps `inner`, keeping at most about `max_open` descriptors open
    /// (more only while files have unsynced writes or are mid-operation).
    pub fn new(inner: Arc<dyn Vfs>, max_open: usize) -> Self {
        Self {
            inner,
            pool: Arc::new(Pool {
                max_open: max_open.max(1),
                open: AtomicUsize::new(0),
                reopened: AtomicU64::new(0),
                closed: AtomicU64::new(0),
                ring: Mutex::new(Ring::default()),
                all: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Descriptors open now.
    pub fn open_descriptors(&self) -> usize {
        self.pool.open.load(Ordering::Relaxed)
    }

    /// Descriptors closed by the bound, and opened again, since start.
    pub fn churn(&self) -> (u64, u64) {
        (
            self.pool.closed.load(Ordering::Relaxed),
            self.pool.reopened.load(Ordering::Relaxed),
        )
    }
}

/// One file of a [`PooledFs`].
#[derive(Debug)]
pub struct PooledFile {
    /// Where the file is now: a rename through the pool moves it, and a
    /// rename over it marks it replaced (`None`), as a descriptor would
    /// keep the old inode that no path names any more.
    path: Mutex<Option<PathBuf>>,
    reopen: OpenHow,
    inner_fs: Arc<dyn Vfs>,
    pool: Weak<Pool>,
    slot: Mutex<Option<Arc<dyn VFile>>>,
    /// Set on every use; cleared by the clock hand passing by.
    used: AtomicBool,
    /// Bumped by every write; `synced` is the value the last successful
    /// sync started from. Unequal: unsynced writes, keep the descriptor.
    written: AtomicU64,
    synced: AtomicU64,
    /// A sync the pool ran (to close the file) failed: the owner's next
    /// sync returns this error.
    failed_sync: Mutex<Option<(io::ErrorKind, String)>>,
    /// Held across every sync of the file, the owner's and the pool's: the
    /// kernel reports a writeback error to one fsync only, and whichever
    /// takes it, the other must learn of it.
    sync_lock: Mutex<()>,
}

/// What [`PooledFile::try_close`] did.
#[derive(Debug, PartialEq, Eq)]
enum Close {
    /// Closed now.
    Closed,
    /// Its descriptor was closed earlier.
    AlreadyClosed,
    /// In use lately, or locked: left open.
    Busy,
    /// Idle but with unsynced writes: sync it first.
    Dirty,
}

impl PooledFile {
    fn dirty(&self) -> bool {
        self.written.load(Ordering::Acquire) != self.synced.load(Ordering::Acquire)
    }

    /// The descriptor, opened again if the bound closed it.
    fn get(self: &Arc<Self>) -> io::Result<Arc<dyn VFile>> {
        self.used.store(true, Ordering::Relaxed);
        let mut slot = self
            .slot
            .lock()
            .map_err(|_| io::Error::other("file slot lock poisoned"))?;
        if let Some(f) = slot.as_ref() {
            return Ok(f.clone());
        }
        let path = self
            .path
            .lock()
            .map_err(|_| io::Error::other("file path lock poisoned"))?
            .clone()
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "the file was replaced by a rename after its descriptor was closed",
                )
            })?;
        let f = self.inner_fs.open(&path, self.reopen)?;
        *slot = Some(f.clone());
        drop(slot);
        if let Some(pool) = self.pool.upgrade() {
            pool.reopened.fetch_add(1, Ordering::Relaxed);
            pool.admit(self);
        }
        Ok(f)
    }

    fn write_op<T>(
        self: &Arc<Self>,
        op: impl FnOnce(&dyn VFile) -> io::Result<T>,
    ) -> io::Result<T> {
        let f = self.get()?;
        // Marked before the write: the descriptor cannot be closed between
        // the write and the flag.
        self.written.fetch_add(1, Ordering::AcqRel);
        op(&*f)
    }

    fn sync_op(self: &Arc<Self>, op: impl FnOnce(&dyn VFile) -> io::Result<()>) -> io::Result<()> {
        let f = self.get()?;
        let _one = self
            .sync_lock
            .lock()
            .map_err(|_| io::Error::other("file sync lock poisoned"))?;
        if let Some((kind, msg)) = self.failed_sync.lock().ok().and_then(|mut e| e.take()) {
            return Err(io::Error::new(kind, msg));
        }
        let at = self.written.load(Ordering::Acquire);
        op(&*f)?;
        // Only what was written before the sync started is known durable.
        self.synced.fetch_max(at, Ordering::AcqRel);
        Ok(())
    }

    /// Closes the descriptor if nothing needs it: not used since the hand
    /// last passed, and no unsynced writes.
    fn try_close(&self) -> Close {
        if self.used.swap(false, Ordering::Relaxed) {
            return Close::Busy;
        }
        let Ok(mut slot) = self.slot.try_lock() else {
            return Close::Busy;
        };
        if slot.is_none() {
            return Close::AlreadyClosed;
        }
        if self.dirty() {
            return Close::Dirty;
        }
        // An operation holding a clone finishes on it; the descriptor
        // closes when the last clone goes.
        slot.take();
        Close::Closed
    }

    /// Syncs an idle file's writes and closes it if nothing was written
    /// meanwhile. A failed sync keeps the descriptor and is reported by
    /// the owner's next sync. True when closed.
    fn sync_and_close(&self) -> bool {
        let Ok(mut slot) = self.slot.lock() else {
            return false;
        };
        let Some(f) = slot.clone() else {
            return false;
        };
        let Ok(_one) = self.sync_lock.lock() else {
            return false;
        };
        let at = self.written.load(Ordering::Acquire);
        if let Err(e) = f.sync_data() {
            if let Ok(mut failed) = self.failed_sync.lock() {
                failed.get_or_insert((e.kind(), format!("fsync before closing an idle file: {e}")));
            }
            return false;
        }
        self.synced.fetch_max(at, Ordering::AcqRel);
        if self.dirty() || self.used.load(Ordering::Relaxed) {
            return false;
        }
        slot.take();
        true
    }
}

impl Drop for PooledFile {
    fn drop(&mut self) {
        let open = self.slot.get_mut().map(|s| s.is_some()).unwrap_or(false);
        if open {
            if let Some(pool) = self.pool.upgrade() {
                pool.open.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

impl Pool {
    /// Counts a newly opened descriptor and, over the bound, closes others:
    /// idle synced files at once, idle written ones after syncing them
    /// (outside the lock, so other opens do not wait on that fsync).
    fn admit(&self, file: &Arc<PooledFile>) {
        let mut to_sync = Vec::new();
        {
            let Ok(mut ring) = self.ring.lock() else {
                return;
            };
            if ring.files.len() > 2 * self.max_open + 64 {
                // Files dropped while the pool was under its bound.
                ring.files.retain(|w| w.strong_count() > 0);
            }
            ring.files.push(Arc::downgrade(file));
            let open = self.open.fetch_add(1, Ordering::AcqRel) + 1;
            if open <= self.max_open {
                return;
            }
            // Sweep at most twice round: the first pass clears use bits, the
            // second finds victims if any file is idle.
            let mut budget = ring.files.len() * 2;
            let mut excess = open - self.max_open;
            while excess > 0 && budget > 0 && !ring.files.is_empty() {
                budget -= 1;
                let at = ring.hand % ring.files.len();
                let outcome = match ring.files[at].upgrade() {
                    // Dropped; its count was returned by Drop.
                    None => Close::AlreadyClosed,
                    Some(f) if Arc::ptr_eq(&f, file) => Close::Busy,
                    Some(f) => match f.try_close() {
                        Close::Dirty => {
                            to_sync.push(f);
                            excess -= 1;
                            Close::Busy
                        }
                        other => other,
                    },
                };
                match outcome {
                    Close::Closed => {
                        ring.files.swap_remove(at);
                        self.open.fetch_sub(1, Ordering::AcqRel);
                        self.closed.fetch_add(1, Ordering::Relaxed);
                        excess -= 1;
                    }
                    Close::AlreadyClosed => {
                        ring.files.swap_remove(at);
                    }
                    Close::Busy | Close::Dirty => ring.hand = at + 1,
                }
            }
        }
        for f in to_sync {
            if f.sync_and_close() {
                // Left in the ring: the next sweep drops it as closed.
                self.open.fetch_sub(1, Ordering::AcqRel);
                self.closed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl VFile for Arc<PooledFile> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.get()?.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.write_op(|f| f.write_at(buf, offset))
    }
    fn len(&self) -> io::Result<u64> {
        self.get()?.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.write_op(|f| f.set_len(len))
    }
    fn sync_data(&self) -> io::Result<()> {
        self.sync_op(|f| f.sync_data())
    }
    fn sync_all(&self) -> io::Result<()> {
        self.sync_op(|f| f.sync_all())
    }
    fn try_lock(&self) -> io::Result<()> {
        // A lock lives with its descriptor: a pooled file cannot hold one.
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "locks are not taken through the descriptor pool",
        ))
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.get()?.read_exact_at(buf, offset)
    }
}

impl Vfs for PooledFs {
    fn open(&self, path: &Path, how: OpenHow) -> io::Result<Arc<dyn VFile>> {
        let f = self.inner.open(path, how)?;
        let reopen = match how {
            OpenHow::Read => OpenHow::Read,
            _ => OpenHow::ReadWrite,
        };
        let file = Arc::new(PooledFile {
            path: Mutex::new(Some(path.to_path_buf())),
            reopen,
            inner_fs: self.inner.clone(),
            pool: Arc::downgrade(&self.pool),
            slot: Mutex::new(Some(f)),
            used: AtomicBool::new(true),
            written: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            failed_sync: Mutex::new(None),
            sync_lock: Mutex::new(()),
        });
        if let Ok(mut all) = self.pool.all.lock() {
            if all.len() >= 64 && all.len().is_power_of_two() {
                all.retain(|w| w.strong_count() > 0);
            }
            all.push(Arc::downgrade(&file));
        }
        self.pool.admit(&file);
        Ok(Arc::new(file))
    }
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir(path)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn is_dir(&self, path: &Path) -> bool {
        self.inner.is_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_dir_all(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)?;
        // A handle follows its file, as a descriptor would: files at or
        // under `from` are now at or under `to`; a file that was at `to`
        // is no longer reachable by any path.
        let files: Vec<Arc<PooledFile>> = self
            .pool
            .all
            .lock()
            .map(|all| all.iter().filter_map(Weak::upgrade).collect())
            .unwrap_or_default();
        for f in files {
            let Ok(mut p) = f.path.lock() else { continue };
            let Some(cur) = p.clone() else { continue };
            if let Ok(rest) = cur.strip_prefix(from) {
                *p = Some(if rest.as_os_str().is_empty() {
                    to.to_path_buf()
                } else {
                    to.join(rest)
                });
            } else if cur.starts_with(to) {
                *p = None;
            }
        }
        Ok(())
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_stay_under_the_bound_and_files_reopen() {
        let dir = tempfile::tempdir().expect("test io");
        let fs = PooledFs::new(crate::fs::real(), 8);
        let mut files = Vec::new();
        for i in 0..100u32 {
            let f = fs
                .open(
                    &dir.path().join(format!("f{i}")),
                    OpenHow::CreateNew { mode: 0o644 },
                )
                .expect("test io");
            f.write_at(&i.to_le_bytes(), 0).expect("test io");
            f.sync_data().expect("test io");
            files.push(f);
        }
        assert!(fs.open_descriptors() <= 9, "{}", fs.open_descriptors());
        // Every file still reads and writes, through a reopened descriptor.
        for (i, f) in files.iter().enumerate() {
            let mut b = [0u8; 4];
            f.read_exact_at(&mut b, 0).expect("test io");
            assert_eq!(u32::from_le_bytes(b), i as u32);
            f.write_at(b"more", 4).expect("test io");
            f.sync_all().expect("test io");
            assert_eq!(f.len().expect("test io"), 8);
        }
        assert!(fs.open_descriptors() <= 9);
        let (closed, reopened) = fs.churn();
        assert!(closed >= 90 && reopened >= 90, "{closed} {reopened}");
        drop(files);
        assert_eq!(fs.open_descriptors(), 0);
    }

    fn is_open(fs: &PooledFs, name: &str) -> bool {
        fs.pool.ring.lock().expect("test io").files.iter().any(|w| {
            w.upgrade().is_some_and(|f| {
                f.path
                    .lock()
                    .expect("test io")
                    .as_ref()
                    .is_some_and(|p| p.ends_with(name))
                    && f.slot.lock().expect("test io").is_some()
            })
        })
    }

    #[test]
    fn an_idle_file_with_unsynced_writes_is_synced_before_it_is_closed() {
        let dir = tempfile::tempdir().expect("test io");
        let fs = PooledFs::new(crate::fs::real(), 2);
        let dirty = fs
            .open(
                &dir.path().join("dirty"),
                OpenHow::CreateNew { mode: 0o644 },
            )
            .expect("test io");
        dirty.write_at(b"not yet durable", 0).expect("test io");
        let mut others = Vec::new();
        for i in 0..20 {
            let f = fs
                .open(
                    &dir.path().join(format!("o{i}")),
                    OpenHow::CreateNew { mode: 0o644 },
                )
                .expect("test io");
            f.sync_all().expect("test io");
            others.push(f);
        }
        // Closed under pressure, but only after the pool synced it.
        assert!(
            !is_open(&fs, "dirty"),
            "an idle written file kept its descriptor"
        );
        assert!(fs.open_descriptors() <= 3, "{}", fs.open_descriptors());
        let (closed, _) = fs.churn();
        assert!(closed >= 18, "{closed}");
        let mut b = [0u8; 15];
        dirty.read_exact_at(&mut b, 0).expect("test io");
        assert_eq!(&b, b"not yet durable");
        // A file written and then used again is not closed while busy.
        dirty.write_at(b"more", 15).expect("test io");
        dirty.len().expect("test io");
        assert!(is_open(&fs, "dirty"));
    }

    #[cfg(feature = "test-support")]
    #[test]
    fn a_failed_sync_before_closing_is_reported_to_the_next_sync() {
        let sim = crate::sim_fs::SimFs::new();
        let fs = PooledFs::new(sim.clone(), 1);
        let dirty = fs
            .open(Path::new("/dirty"), OpenHow::CreateNew { mode: 0o644 })
            .expect("test io");
        dirty.write_at(b"lost?", 0).expect("test io");
        sim.fail_syncs(1);
        let other = fs
            .open(Path::new("/other"), OpenHow::CreateNew { mode: 0o644 })
            .expect("test io");
        let _third = fs
            .open(Path::new("/third"), OpenHow::CreateNew { mode: 0o644 })
            .expect("test io");
        other.len().expect("test io");
        // The pool's first sync failed (the kernel reports a writeback
        // error once); a later one closed the file. The owner's next sync
        // still fails, as its own would have.
        let (closed, _) = fs.churn();
        assert!(closed >= 1, "{closed}");
        let err = dirty.sync_data().expect_err("must fail");
        assert!(err.to_string().contains("fsync before closing"), "{err}");
        // Reported once: the owner rewrites and syncs again.
        dirty.write_at(b"lost?", 0).expect("test io");
        dirty.sync_data().expect("test io");
        assert_eq!(
            sim.durable_file(Path::new("/dirty")).expect("test io"),
            b"lost?"
        );
    }

    #[test]
    fn a_renamed_file_reopens_at_its_new_path_and_a_replaced_one_does_not() {
        let dir = tempfile::tempdir().expect("test io");
        let fs = PooledFs::new(crate::fs::real(), 1);
        let (tmp, fin) = (dir.path().join("head.tmp"), dir.path().join("head"));
        let old = fs
            .open(&fin, OpenHow::CreateNew { mode: 0o644 })
            .expect("test io");
        old.write_at(b"old", 0).expect("test io");
        old.sync_all().expect("test io");
        let f = fs
            .open(&tmp, OpenHow::CreateNew { mode: 0o644 })
            .expect("test io");
        f.write_at(b"mark", 0).expect("test io");
        f.sync_all().expect("test io");
        fs.rename(&tmp, &fin).expect("test io");
        for i in 0..4 {
            let o = fs
                .open(
                    &dir.path().join(format!("o{i}")),
                    OpenHow::CreateNew { mode: 0o644 },
                )
                .expect("test io");
            o.len().expect("test io");
        }
        // Closed by the bound; the next write reopens it at its new path.
        f.write_at(b"MARK", 0).expect("test io");
        f.sync_all().expect("test io");
        assert_eq!(std::fs::read(&fin).expect("test io"), b"MARK");
        assert!(!tmp.exists());
        // The file renamed over is gone from every path: no reopen of the
        // new file in its place.
        let err = old.read_to_end_at(0).expect_err("must fail");
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    }

    #[test]
    fn open_errors_surface_at_open_and_reopen_never_truncates() {
        let dir = tempfile::tempdir().expect("test io");
        let fs = PooledFs::new(crate::fs::real(), 1);
        let missing = fs.open(&dir.path().join("nope"), OpenHow::Read);
        assert_eq!(
            missing.expect_err("must fail").kind(),
            io::ErrorKind::NotFound
        );
        let p = dir.path().join("t");
        let t = fs
            .open(&p, OpenHow::CreateTruncate { mode: 0o600 })
            .expect("test io");
        t.write_at(b"kept", 0).expect("test io");
        t.sync_all().expect("test io");
        let _other = fs
            .open(&dir.path().join("u"), OpenHow::Create { mode: 0o600 })
            .expect("test io");
        let _third = fs
            .open(&dir.path().join("v"), OpenHow::Create { mode: 0o600 })
            .expect("test io");
        // t was closed by the bound; reading reopens it without truncating.
        assert_eq!(t.read_to_end_at(0).expect("test io"), b"kept");
        assert!(t.try_lock().is_err());
    }
}
