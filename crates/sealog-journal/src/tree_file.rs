//! `tree.hashes`: the stored interior hashes that make proofs O(log n).
//!
//! Every perfect subtree of height ≥ [`TILE_HEIGHT`] (256 leaves) is stored
//! once it is complete, in the order the append frontier completes them
//! (post-order). Subtrees below that height are recomputed from at most 256
//! leaves when a proof needs them. That costs 0.25 bytes per record on disk.
//!
//! ```text
//! header (16 bytes)
//!   0  magic    8  b"SLTREE\0\0"
//!   8  version  4  u32 LE = 1
//!  12  crc      4  CRC32C of bytes 0..12
//! entries (36 bytes each), entry p at 16 + 36·p
//!   0  hash    32
//!  32  crc      4  CRC32C of (p as u64 LE ‖ hash)
//! ```
//!
//! Node (height `TILE_HEIGHT + h`, index `i`) completes when tile
//! `t = (i+1)·2^h − 1` completes, and is entry `2t − popcount(t) + h`.
//! After `T` complete tiles the file holds `2T − popcount(T)` entries.
//!
//! The file is derived data: the segments and their signed checkpoints are
//! the record. It is written with each commit but synced at most once a
//! second; on open its valid prefix is kept, the rest recomputed from the
//! leaves, and the result checked against the last signed checkpoint.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{JournalError, Result};
use crate::fs::{OpenHow, VFile, Vfs};
use crate::merkle::Hash;

/// Height of the smallest stored subtree: 2^8 = 256 leaves.
pub const TILE_HEIGHT: u32 = 8;
/// Leaves per tile.
pub const TILE_LEAVES: u64 = 1 << TILE_HEIGHT;

const MAGIC: &[u8; 8] = b"SLTREE\0\0";
const VERSION: u32 = 1;
const HEADER_LEN: u64 = 16;
const ENTRY_LEN: u64 = 36;

/// Entries stored after `tiles` complete tiles.
pub fn entries_for_tiles(tiles: u64) -> u64 {
    2 * tiles - u64::from(tiles.count_ones())
}

/// Entry position of the node `h` levels above the tile level at `index`.
pub fn position(h: u32, index: u64) -> u64 {
    let t = ((index + 1) << h) - 1;
    2 * t - u64::from(t.count_ones()) + u64::from(h)
}

/// The most complete tiles whose entries fit in `entries` entries.
pub fn tiles_within(entries: u64) -> u64 {
    // entries_for_tiles is increasing; T ≤ entries, so search.
    let (mut lo, mut hi) = (0u64, entries);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if entries_for_tiles(mid) <= entries {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// The open `tree.hashes` file.
#[derive(Debug)]
pub struct TreeFile {
    file: Arc<dyn VFile>,
    path: PathBuf,
    entries: u64,
}

impl TreeFile {
    /// Opens (or creates) the file and returns it with the number of entries
    /// in its valid prefix; anything after that prefix is cut off. A file
    /// whose header is torn, damaged or of another version is derived data:
    /// it is started afresh (with a log line) and rebuilt by the journal.
    ///
    /// # Errors
    /// I/O errors.
    pub fn open(fs: &dyn Vfs, path: &Path) -> Result<Self> {
        let file = fs
            .open(path, OpenHow::Create { mode: 0o644 })
            .map_err(JournalError::io("open", path))?;
        let len = file.len().map_err(JournalError::io("stat", path))?;
        let mut t = Self {
            file,
            path: path.to_path_buf(),
            entries: 0,
        };
        if len < HEADER_LEN {
            t.reset()?;
            return Ok(t);
        }
        let mut h = [0u8; HEADER_LEN as usize];
        t.file
            .read_exact_at(&mut h, 0)
            .map_err(JournalError::io("read", path))?;
        let crc = u32::from_le_bytes(h[12..16].try_into().expect("4 bytes"));
        let version = u32::from_le_bytes(h[8..12].try_into().expect("4 bytes"));
        if &h[..8] != MAGIC || crc32c::crc32c(&h[..12]) != crc || version != VERSION {
            tracing::warn!(
                path = %path.display(),
                "tree hash file header is damaged or of another version; rebuilding it from the records"
            );
            t.reset()?;
            return Ok(t);
        }
        // The valid prefix, read a window at a time (the file may be any
        // size: never read it whole).
        let mut entries = 0u64;
        let mut buf = vec![0u8; (ENTRY_LEN * 29_127) as usize];
        'scan: loop {
            let at = HEADER_LEN + entries * ENTRY_LEN;
            let want =
                (len.saturating_sub(at) / ENTRY_LEN * ENTRY_LEN).min(buf.len() as u64) as usize;
            if want == 0 {
                break;
            }
            t.file
                .read_exact_at(&mut buf[..want], at)
                .map_err(JournalError::io("read", path))?;
            for chunk in buf[..want].chunks_exact(ENTRY_LEN as usize) {
                if entry_crc(entries, &chunk[..32])
                    != u32::from_le_bytes(chunk[32..36].try_into().expect("4 bytes"))
                {
                    break 'scan;
                }
                entries += 1;
            }
        }
        t.entries = entries;
        t.truncate(entries)?;
        Ok(t)
    }

    /// Empties the file to a bare header.
    fn reset(&mut self) -> Result<()> {
        let mut h = [0u8; HEADER_LEN as usize];
        h[..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&VERSION.to_le_bytes());
        let crc = crc32c::crc32c(&h[..12]);
        h[12..].copy_from_slice(&crc.to_le_bytes());
        self.file
            .set_len(0)
            .and_then(|_| self.file.write_at(&h, 0))
            .and_then(|_| self.file.sync_all())
            .map_err(JournalError::io("write", &self.path))?;
        self.entries = 0;
        Ok(())
    }

    /// Entries stored.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Cuts the file to `entries` entries.
    ///
    /// # Errors
    /// I/O errors.
    pub fn truncate(&mut self, entries: u64) -> Result<()> {
        let len = HEADER_LEN + entries * ENTRY_LEN;
        let actual = self
            .file
            .len()
            .map_err(JournalError::io("stat", &self.path))?;
        if actual != len {
            self.file
                .set_len(len)
                .map_err(JournalError::io("truncate", &self.path))?;
        }
        self.entries = entries.min(self.entries);
        Ok(())
    }

    /// Appends nodes completed in order; each must be the next position.
    ///
    /// # Errors
    /// [`JournalError::Format`] when a node is out of order; I/O errors.
    pub fn append(&mut self, nodes: &[(u64, Hash)]) -> Result<()> {
        if nodes.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(nodes.len() * ENTRY_LEN as usize);
        for (i, (pos, hash)) in nodes.iter().enumerate() {
            if *pos != self.entries + i as u64 {
                return Err(JournalError::Format {
                    path: self.path.clone(),
                    reason: format!("tree node {pos} appended out of order"),
                });
            }
            buf.extend_from_slice(hash);
            buf.extend_from_slice(&entry_crc(*pos, hash).to_le_bytes());
        }
        self.file
            .write_at(&buf, HEADER_LEN + self.entries * ENTRY_LEN)
            .map_err(JournalError::io("write", &self.path))?;
        self.entries += nodes.len() as u64;
        Ok(())
    }

    /// The stored hash at `pos`, if stored.
    ///
    /// # Errors
    /// I/O errors; [`JournalError::Format`] when the entry's CRC fails.
    pub fn get(&self, pos: u64) -> Result<Option<Hash>> {
        if pos >= self.entries {
            return Ok(None);
        }
        let mut e = [0u8; ENTRY_LEN as usize];
        self.file
            .read_exact_at(&mut e, HEADER_LEN + pos * ENTRY_LEN)
            .map_err(JournalError::io("read", &self.path))?;
        let hash: Hash = e[..32].try_into().expect("32 bytes");
        if entry_crc(pos, &hash) != u32::from_le_bytes(e[32..].try_into().expect("4 bytes")) {
            return Err(JournalError::Format {
                path: self.path.clone(),
                reason: format!("tree hash entry {pos} checksum mismatch"),
            });
        }
        Ok(Some(hash))
    }

    /// fdatasync.
    ///
    /// # Errors
    /// I/O errors.
    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(JournalError::io("fsync", &self.path))
    }
}

/// Reads `tree.hashes` without opening it for writing (the live journal
/// may be appending to it): for the offline verifiers, which use a stored
/// hash only after checking it against a signed root.
#[derive(Debug)]
pub struct TreeReader {
    file: std::fs::File,
}

impl TreeReader {
    /// Opens `path` read-only; `None` when it is missing or has a bad header.
    pub fn open(path: &Path) -> Option<Self> {
        use std::os::unix::fs::FileExt as _;
        let file = std::fs::File::open(path).ok()?;
        let mut h = [0u8; HEADER_LEN as usize];
        file.read_exact_at(&mut h, 0).ok()?;
        let crc = u32::from_le_bytes(h[12..16].try_into().ok()?);
        let version = u32::from_le_bytes(h[8..12].try_into().ok()?);
        (&h[..8] == MAGIC && crc32c::crc32c(&h[..12]) == crc && version == VERSION)
            .then_some(Self { file })
    }

    /// The hash of node (`height` ≥ [`TILE_HEIGHT`], `index`), when stored
    /// and its checksum holds.
    pub fn node(&self, height: u32, index: u64) -> Option<Hash> {
        use std::os::unix::fs::FileExt as _;
        let pos = position(height.checked_sub(TILE_HEIGHT)?, index);
        let mut e = [0u8; ENTRY_LEN as usize];
        self.file
            .read_exact_at(&mut e, HEADER_LEN.checked_add(pos.checked_mul(ENTRY_LEN)?)?)
            .ok()?;
        let hash: Hash = e[..32].try_into().ok()?;
        (entry_crc(pos, &hash) == u32::from_le_bytes(e[32..].try_into().ok()?)).then_some(hash)
    }
}

fn entry_crc(pos: u64, hash: &[u8]) -> u32 {
    let c = crc32c::crc32c(&pos.to_le_bytes());
    crc32c::crc32c_append(c, hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{leaf_hash, Frontier};

    #[test]
    fn positions_follow_frontier_order() {
        let mut f = Frontier::new();
        let mut order = Vec::new();
        for i in 0u64..(TILE_LEAVES * 13) {
            f.push(leaf_hash(&i.to_le_bytes()), |height, index, _| {
                if height >= TILE_HEIGHT {
                    order.push(position(height - TILE_HEIGHT, index));
                }
            });
        }
        assert_eq!(order, (0..order.len() as u64).collect::<Vec<_>>());
        assert_eq!(order.len() as u64, entries_for_tiles(13));
        for t in 0..100 {
            assert_eq!(tiles_within(entries_for_tiles(t)), t);
        }
    }

    #[test]
    fn torn_entries_are_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("tree.hashes");
        let mut t = TreeFile::open(&crate::fs::RealFs, &p).expect("create");
        t.append(&[(0, [1; 32]), (1, [2; 32]), (2, [3; 32])])
            .expect("append");
        drop(t);
        // Damage the last entry.
        let f = crate::fs::RealFs
            .open(&p, OpenHow::ReadWrite)
            .expect("open");
        f.write_at(&[9], HEADER_LEN + 2 * ENTRY_LEN + 5)
            .expect("write");
        let t = TreeFile::open(&crate::fs::RealFs, &p).expect("reopen");
        assert_eq!(t.entries(), 2);
        assert_eq!(t.get(1).expect("read"), Some([2; 32]));
        assert_eq!(t.get(2).expect("read"), None);
        drop(t);
        // A torn header is derived data: started afresh, not fatal.
        f.write_at(&[0; 4], 2).expect("write");
        let t = TreeFile::open(&crate::fs::RealFs, &p).expect("reopen torn header");
        assert_eq!(t.entries(), 0);
    }
}
