//! File operations behind a small trait, so the journal and the data
//! directory run unchanged on the real filesystem and on a simulated one
//! that tests can crash (dropping every write not yet made durable) or fail
//! (an fsync error, a full disk).
//!
//! The trait is deliberately narrow: positional reads and writes, length,
//! truncation, the two kinds of sync, and the directory operations the
//! journal and the store use. Everything is positional (`read_at`,
//! `write_at`) so a file handle can be shared between a writer and a
//! syncer without a cursor.
//!
//! Durability contract, which [`RealFs`] inherits from POSIX and the
//! simulated filesystem (feature `test-support`) enforces:
//! - data written to a file is durable after that file's `sync_data` or
//!   `sync_all`;
//! - a file's existence, a rename or a removal is durable after the
//!   containing directory's [`Vfs::sync_dir`];
//! - nothing else is promised: after a power loss, any write not yet synced
//!   may be lost whole, kept whole, or kept in part (in 512-byte sectors).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

/// How to open a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenHow {
    /// Read only; the file must exist.
    Read,
    /// Read and write; the file must exist.
    ReadWrite,
    /// Read and write, creating the file (with `mode`) if it is missing.
    Create {
        /// Permission bits for a new file.
        mode: u32,
    },
    /// Read and write; the file must not exist yet.
    CreateNew {
        /// Permission bits.
        mode: u32,
    },
    /// Read and write, created or emptied.
    CreateTruncate {
        /// Permission bits for a new file.
        mode: u32,
    },
}

/// An open file.
// A file's length is a query that can fail; an `is_empty` would add nothing.
#[allow(clippy::len_without_is_empty)]
pub trait VFile: Send + Sync + fmt::Debug {
    /// Reads up to `buf.len()` bytes at `offset`; 0 at or past the end.
    ///
    /// # Errors
    /// I/O errors.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// Writes all of `buf` at `offset`, extending the file if needed.
    ///
    /// # Errors
    /// I/O errors (`StorageFull` when the disk is full).
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;

    /// The file's length.
    ///
    /// # Errors
    /// I/O errors.
    fn len(&self) -> io::Result<u64>;

    /// Cuts or extends (with zeros) the file to `len`.
    ///
    /// # Errors
    /// I/O errors.
    fn set_len(&self, len: u64) -> io::Result<()>;

    /// fdatasync: the file's data (and its length) are durable on return.
    ///
    /// # Errors
    /// I/O errors; after one, what was written since the last successful
    /// sync may or may not be on disk.
    fn sync_data(&self) -> io::Result<()>;

    /// fsync: data and metadata durable on return.
    ///
    /// # Errors
    /// As [`VFile::sync_data`].
    fn sync_all(&self) -> io::Result<()>;

    /// Takes an exclusive advisory lock without waiting.
    ///
    /// # Errors
    /// `WouldBlock` when another process holds it; I/O errors.
    fn try_lock(&self) -> io::Result<()>;

    /// Reads exactly `buf.len()` bytes at `offset`.
    ///
    /// # Errors
    /// `UnexpectedEof` when the file is shorter; I/O errors.
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file ends early",
                    ))
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads everything from `offset` to the end.
    ///
    /// # Errors
    /// I/O errors.
    fn read_to_end_at(&self, offset: u64) -> io::Result<Vec<u8>> {
        let len = self.len()?;
        let mut buf = vec![0u8; len.saturating_sub(offset) as usize];
        self.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }
}

/// A filesystem: where the journal and the data directory keep their files.
pub trait Vfs: Send + Sync + fmt::Debug {
    /// Opens `path`.
    ///
    /// # Errors
    /// `NotFound`, `AlreadyExists` (with [`OpenHow::CreateNew`]), I/O errors.
    fn open(&self, path: &Path, how: OpenHow) -> io::Result<Arc<dyn VFile>>;

    /// Creates one directory (mode 0700); its parent must exist.
    ///
    /// # Errors
    /// `AlreadyExists`, `NotFound` for a missing parent, I/O errors.
    fn create_dir(&self, path: &Path) -> io::Result<()>;

    /// Creates a directory and its missing parents (mode 0700).
    ///
    /// # Errors
    /// I/O errors.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;

    /// The names of the entries in `dir` (files and directories), unsorted.
    /// Names that are not UTF-8 are left out.
    ///
    /// # Errors
    /// `NotFound`, I/O errors.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;

    /// Whether `path` is a directory (false when missing).
    fn is_dir(&self, path: &Path) -> bool;

    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> bool;

    /// Removes a file.
    ///
    /// # Errors
    /// `NotFound`, I/O errors.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Removes a directory and everything in it.
    ///
    /// # Errors
    /// `NotFound`, I/O errors.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;

    /// Renames `from` to `to`, replacing a file (or an empty directory) there.
    ///
    /// # Errors
    /// I/O errors.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Makes the entries of `dir` (creations, renames, removals) durable.
    ///
    /// # Errors
    /// I/O errors.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The operating system's filesystem.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFs;

/// A shared handle on the real filesystem.
pub fn real() -> Arc<dyn Vfs> {
    Arc::new(RealFs)
}

#[derive(Debug)]
struct RealFile(File);

impl VFile for RealFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(&self.0, buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }
    fn try_lock(&self) -> io::Result<()> {
        self.0.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => io::Error::from(io::ErrorKind::WouldBlock),
            std::fs::TryLockError::Error(e) => e,
        })
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(&self.0, buf, offset)
    }
}

impl Vfs for RealFs {
    fn open(&self, path: &Path, how: OpenHow) -> io::Result<Arc<dyn VFile>> {
        // Only regular files: opening a FIFO planted where a metadata file
        // belongs would block the server forever.
        match std::fs::metadata(path) {
            Ok(m) if !m.is_file() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a regular file",
                ))
            }
            _ => {}
        }
        let mut o = OpenOptions::new();
        o.read(true);
        match how {
            OpenHow::Read => {}
            OpenHow::ReadWrite => {
                o.write(true);
            }
            OpenHow::Create { mode } => {
                o.write(true).create(true).truncate(false).mode(mode);
            }
            OpenHow::CreateNew { mode } => {
                o.write(true).create_new(true).mode(mode);
            }
            OpenHow::CreateTruncate { mode } => {
                o.write(true).create(true).truncate(true).mode(mode);
            }
        }
        Ok(Arc::new(RealFile(o.open(path)?)))
    }
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::DirBuilder::new().mode(0o700).create(path)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir)? {
            if let Ok(name) = e?.file_name().into_string() {
                out.push(name);
            }
        }
        Ok(out)
    }
    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// Creates `path` and its missing parents, like [`Vfs::create_dir_all`], and
/// makes the new entries durable: the parent of every directory it creates
/// is synced. Without that, a power loss can take a new directory away with
/// everything synced inside it.
///
/// # Errors
/// I/O errors.
pub fn create_dir_all_durable(fs: &dyn Vfs, path: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut p = path;
    while !fs.is_dir(p) {
        missing.push(p);
        match p.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => p = parent,
            _ => break,
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    fs.create_dir_all(path)?;
    for created in missing.iter().rev() {
        let parent = match created.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        fs.sync_dir(parent)?;
    }
    Ok(())
}

/// True when `e` means the disk (or a quota) is full.
pub fn is_storage_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || e.raw_os_error() == Some(28)
}
