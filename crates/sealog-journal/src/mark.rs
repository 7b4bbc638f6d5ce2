//! `head.mark`: the signed high-water mark of a realm, kept apart from the
//! segments.
//!
//! The segments carry every checkpoint the realm signed, so deleting or
//! cutting them would erase the evidence of what was signed. The mark
//! keeps the last checkpoint the realm signed in a separate small file, so
//! that on open a journal that ends before it (a deleted last segment, a
//! tail cut back to an earlier checkpoint, a zeroed tail) or disagrees with
//! it (a rewritten history) is refused instead of signing new checkpoints
//! that contradict ones already handed out.
//!
//! # Layout
//!
//! Two slots of [`SLOT_LEN`] bytes; each holds one signed checkpoint note.
//!
//! ```text
//! slot (at 0 and at SLOT_LEN)
//!   0  magic    8  b"SLMARK\0\0"
//!   8  version  4  u32 LE = 1
//!  12  counter  8  u64 LE, one more than the previous write
//!  20  note_len 4  u32 LE, > 0
//!  24  crc      4  CRC32C of bytes 0..24 and the note
//!  28  note     note_len bytes, the checkpoint exactly as signed
//! ```
//!
//! # Write path and the gap
//!
//! After every commit (once its checkpoint is durable in the segment) the
//! new note is written into the *active* slot without a sync; the file is
//! synced at most once a second ([`MARK_SYNC_INTERVAL`]), on every segment
//! roll and on clean close, and after each sync the other slot becomes the
//! active one. So one slot always holds a durable mark, and a torn write
//! can only damage the slot being rewritten. Because a mark is written only
//! after its checkpoint is durable, a mark never runs ahead of the journal
//! after a crash: a journal behind its mark was cut by someone.
//!
//! The documented gap: after a power loss (not a process crash, which
//! keeps the page cache) the durable mark may be up to one second behind
//! the last commit, so a rollback of only those last commits is not caught
//! by the mark alone; clients' receipts and checkpoints, and witnesses,
//! catch it.
//!
//! # Read path
//!
//! Both slots are read; a slot whose CRC fails or whose note does not
//! verify with the realm's key is ignored; the valid slot with the higher
//! counter is the mark. A file with no valid slot is damage and is refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::checkpoint::{Checkpoint, SignedCheckpoint, VerifierKey};
use crate::error::{JournalError, Result};
use crate::fs::{OpenHow, VFile, Vfs};

/// The file name in a journal directory.
pub const MARK_FILE: &str = "head.mark";
/// Bytes per slot.
pub const SLOT_LEN: u64 = 8192;
/// The longest sync gap.
pub const MARK_SYNC_INTERVAL: Duration = Duration::from_secs(1);

const MAGIC: &[u8; 8] = b"SLMARK\0\0";
const VERSION: u32 = 1;
const HEAD: usize = 28;
/// Counters at or above this are refused (a real journal writes a few
/// per second: 2^62 is never reached).
const MAX_COUNTER: u64 = 1 << 62;

/// What a mark says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// The last checkpoint the realm signed (a new journal's mark is a
    /// signed checkpoint of the empty tree: every valid slot is signed).
    pub signed: Option<SignedCheckpoint>,
    counter: u64,
    /// True when the other slot did not decode: expected only after a
    /// power loss while the mark was being written; otherwise tampering.
    pub damaged_slot: bool,
}

impl Mark {
    /// The checkpoint, if any.
    pub fn checkpoint(&self) -> Option<&Checkpoint> {
        self.signed.as_ref().map(|s| &s.checkpoint)
    }

    /// The tree size marked (0 when nothing was signed).
    pub fn size(&self) -> u64 {
        self.checkpoint().map_or(0, |c| c.size)
    }
}

fn encode_slot(counter: u64, note: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEAD + note.len());
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&VERSION.to_le_bytes());
    b.extend_from_slice(&counter.to_le_bytes());
    b.extend_from_slice(&(note.len() as u32).to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&b[..24]), note);
    b.extend_from_slice(&crc.to_le_bytes());
    b.extend_from_slice(note);
    b
}

/// Decodes one slot; None when it is not a valid slot.
fn decode_slot(b: &[u8], key: &VerifierKey) -> Option<Mark> {
    if b.len() < HEAD || &b[..8] != MAGIC {
        return None;
    }
    let version = u32::from_le_bytes(b[8..12].try_into().ok()?);
    let counter = u64::from_le_bytes(b[12..20].try_into().ok()?);
    let len = u32::from_le_bytes(b[20..24].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(b[24..28].try_into().ok()?);
    let note = b.get(HEAD..HEAD + len)?;
    if version != VERSION || crc32c::crc32c_append(crc32c::crc32c(&b[..24]), note) != crc {
        return None;
    }
    // Every slot carries a signed note (an unsigned "nothing yet" slot
    // would let anyone reset the mark), and counters stay far from overflow.
    if note.is_empty() || counter >= MAX_COUNTER {
        return None;
    }
    let text = std::str::from_utf8(note).ok()?;
    let checkpoint = key.verify(text).ok()?;
    Some(Mark {
        signed: Some(SignedCheckpoint {
            checkpoint,
            text: text.to_string(),
        }),
        counter,
        damaged_slot: false,
    })
}

/// Reads the mark in `dir`: Ok(None) when there is no mark file.
///
/// # Errors
/// [`JournalError::Corrupt`] when the file exists but no slot is valid;
/// I/O errors.
pub fn read(fs: &dyn Vfs, dir: &Path, key: &VerifierKey) -> Result<Option<Mark>> {
    let path = dir.join(MARK_FILE);
    if !fs.exists(&path) {
        return Ok(None);
    }
    let file = fs
        .open(&path, OpenHow::Read)
        .map_err(JournalError::io("open", &path))?;
    // Read at most the two slots: a mark file is never longer.
    let len = file.len().map_err(JournalError::io("stat", &path))?;
    let mut bytes = vec![0u8; len.min(2 * SLOT_LEN) as usize];
    file.read_exact_at(&mut bytes, 0)
        .map_err(JournalError::io("read", &path))?;
    let slot = |i: u64| {
        let from = (i * SLOT_LEN) as usize;
        bytes
            .get(from..bytes.len().min(from + SLOT_LEN as usize))
            .and_then(|b| decode_slot(b, key))
    };
    match (slot(0), slot(1)) {
        (Some(a), Some(b)) => Ok(Some(if b.counter > a.counter { b } else { a })),
        (Some(mut m), None) | (None, Some(mut m)) => {
            tracing::warn!(
                path = %path.display(),
                size = m.size(),
                "one of the two high-water mark slots is damaged: expected only after a power loss while it was written; otherwise the mark was tampered with"
            );
            m.damaged_slot = true;
            Ok(Some(m))
        }
        (None, None) => Err(JournalError::Corrupt {
            seq: 0,
            reason: "the high-water mark holds no valid checkpoint signed by the realm's key"
                .into(),
            path,
        }),
    }
}

/// The open mark file of a journal.
#[derive(Debug)]
pub struct MarkFile {
    file: Arc<dyn VFile>,
    path: PathBuf,
    counter: u64,
    /// Slot the next write goes to; the other holds a durable mark.
    active: u64,
    dirty: bool,
    synced_at: Instant,
}

impl MarkFile {
    /// Creates a mark file in `dir` holding `signed` (or nothing), durable
    /// (file synced, directory synced).
    ///
    /// # Errors
    /// I/O errors.
    pub fn create(fs: &dyn Vfs, dir: &Path, signed: &SignedCheckpoint) -> Result<Self> {
        let path = dir.join(MARK_FILE);
        let tmp = dir.join("head.mark.tmp");
        let file = fs
            .open(&tmp, OpenHow::CreateTruncate { mode: 0o644 })
            .map_err(JournalError::io("create", &tmp))?;
        let slot = encode_slot(1, signed.text.as_bytes());
        file.write_at(&slot, 0)
            .and_then(|_| file.write_at(&slot, SLOT_LEN))
            .and_then(|_| file.sync_all())
            .map_err(JournalError::io("write", &tmp))?;
        fs.rename(&tmp, &path)
            .map_err(JournalError::io("rename", &path))?;
        fs.sync_dir(dir)
            .map_err(JournalError::io("fsync directory", dir))?;
        Ok(Self {
            file,
            path,
            counter: 1,
            active: 0,
            dirty: false,
            synced_at: Instant::now(),
        })
    }

    /// Opens the mark file read by [`read`] for further writes.
    ///
    /// # Errors
    /// I/O errors.
    pub fn open(fs: &dyn Vfs, dir: &Path, current: &Mark) -> Result<Self> {
        let path = dir.join(MARK_FILE);
        let file = fs
            .open(&path, OpenHow::ReadWrite)
            .map_err(JournalError::io("open", &path))?;
        // Write first into the slot that does not hold the current mark.
        let mut m = Self {
            file,
            path,
            counter: current.counter,
            active: 0,
            dirty: false,
            synced_at: Instant::now(),
        };
        let len = m.file.len().map_err(JournalError::io("stat", &m.path))?;
        let mut bytes = vec![0u8; len.min(2 * SLOT_LEN) as usize];
        m.file
            .read_exact_at(&mut bytes, 0)
            .map_err(JournalError::io("read", &m.path))?;
        // The whole slot, not just its counter: a damaged slot 0 with the
        // current counter must be the one overwritten, not the valid slot 1.
        let slot = encode_slot(
            current.counter,
            current
                .signed
                .as_ref()
                .map_or(&[][..], |s| s.text.as_bytes()),
        );
        let holds_current = |i: u64| {
            let from = (i * SLOT_LEN) as usize;
            bytes.get(from..from + slot.len()) == Some(&slot[..])
        };
        m.active = if holds_current(0) { 1 } else { 0 };
        Ok(m)
    }

    /// Records `signed` as the newest mark (written, synced later).
    ///
    /// # Errors
    /// I/O errors; a note too long for a slot.
    pub fn record(&mut self, signed: &SignedCheckpoint) -> Result<()> {
        let note = signed.text.as_bytes();
        if (HEAD + note.len()) as u64 > SLOT_LEN {
            return Err(JournalError::Format {
                path: self.path.clone(),
                reason: format!(
                    "checkpoint note of {} bytes does not fit a mark slot",
                    note.len()
                ),
            });
        }
        let slot = encode_slot(self.counter + 1, note);
        self.file
            .write_at(&slot, self.active * SLOT_LEN)
            .map_err(JournalError::io("write", &self.path))?;
        self.counter += 1;
        self.dirty = true;
        Ok(())
    }

    /// Syncs when a write is pending and `force` or the interval passed.
    ///
    /// # Errors
    /// I/O errors.
    pub fn maybe_sync(&mut self, force: bool) -> Result<()> {
        if !self.dirty || (!force && self.synced_at.elapsed() < MARK_SYNC_INTERVAL) {
            return Ok(());
        }
        self.file
            .sync_data()
            .map_err(JournalError::io("fsync", &self.path))?;
        self.dirty = false;
        self.active = 1 - self.active;
        self.synced_at = Instant::now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Signer;
    use crate::fs::RealFs;

    fn signer() -> Signer {
        Signer::new(
            "sealog/acme",
            ed25519_dalek::SigningKey::from_bytes(&[4; 32]),
        )
    }

    fn cp(s: &Signer, size: u64) -> SignedCheckpoint {
        s.sign(&Checkpoint {
            origin: "sealog/acme".into(),
            size,
            root: [size as u8; 32],
        })
    }

    #[test]
    fn newest_valid_slot_wins_and_a_torn_slot_falls_back() {
        let d = tempfile::tempdir().expect("tempdir");
        let s = signer();
        let key = s.verifier();
        let size = |d: &Path| read(&RealFs, d, &key).expect("read").expect("mark").size();
        let mut m = MarkFile::create(&RealFs, d.path(), &cp(&s, 0)).expect("create");
        assert_eq!(size(d.path()), 0);
        // An unsigned slot with a high counter is not a mark (it would let
        // anyone reset the mark to "nothing signed"), and it is reported.
        let f0 = RealFs
            .open(&d.path().join(MARK_FILE), OpenHow::ReadWrite)
            .expect("open");
        f0.write_at(&encode_slot(1000, b""), 0).expect("write");
        let got = read(&RealFs, d.path(), &key).expect("read").expect("mark");
        assert!(got.damaged_slot);
        assert_eq!(got.size(), 0);
        // So is a counter near overflow.
        f0.write_at(&encode_slot(u64::MAX, cp(&s, 5).text.as_bytes()), 0)
            .expect("write");
        assert_eq!(size(d.path()), 0);
        m.record(&cp(&s, 10)).expect("record");
        m.maybe_sync(true).expect("sync");
        m.record(&cp(&s, 20)).expect("record");
        assert_eq!(
            read(&RealFs, d.path(), &key)
                .expect("read")
                .expect("mark")
                .size(),
            20
        );
        // Tear the slot being written: the durable one (10) remains.
        let f = RealFs
            .open(&d.path().join(MARK_FILE), OpenHow::ReadWrite)
            .expect("open");
        f.write_at(&[0; 64], SLOT_LEN + 30).expect("tear");
        assert_eq!(
            read(&RealFs, d.path(), &key)
                .expect("read")
                .expect("mark")
                .size(),
            10
        );
        // Reopen and keep writing: the durable slot is not overwritten first.
        let cur = read(&RealFs, d.path(), &key).expect("read").expect("mark");
        let mut m = MarkFile::open(&RealFs, d.path(), &cur).expect("open");
        m.record(&cp(&s, 30)).expect("record");
        assert_eq!(
            read(&RealFs, d.path(), &key)
                .expect("read")
                .expect("mark")
                .size(),
            30
        );
        // Another key's mark is not a mark.
        let other = Signer::new(
            "sealog/acme",
            ed25519_dalek::SigningKey::from_bytes(&[5; 32]),
        );
        assert!(matches!(
            read(&RealFs, d.path(), &other.verifier()),
            Err(JournalError::Corrupt { .. })
        ));
    }

    /// Found by the `mark` fuzz target: a damaged slot 0 that still held
    /// the current counter made `open` pick slot 1, the only valid one, for
    /// the next write, so a torn write there would have left no valid mark.
    #[test]
    fn a_damaged_slot_with_the_current_counter_is_written_first() {
        let d = tempfile::tempdir().expect("tempdir");
        let s = signer();
        let key = s.verifier();
        drop(MarkFile::create(&RealFs, d.path(), &cp(&s, 10)).expect("create"));
        // Both slots hold counter 1; damage slot 0's note, not its counter.
        let f = RealFs
            .open(&d.path().join(MARK_FILE), OpenHow::ReadWrite)
            .expect("open");
        f.write_at(b"X", HEAD as u64 + 3).expect("damage");
        let cur = read(&RealFs, d.path(), &key).expect("read").expect("mark");
        assert_eq!(cur.size(), 10);
        let mut m = MarkFile::open(&RealFs, d.path(), &cur).expect("open");
        m.record(&cp(&s, 20)).expect("record");
        // Tear the write: whatever slot it went to reads as garbage. The
        // mark read before must survive.
        let bytes = f.read_to_end_at(0).expect("read");
        let written = if bytes[12..20] == 2u64.to_le_bytes() {
            0
        } else {
            SLOT_LEN
        };
        assert_eq!(written, 0, "the damaged slot is the one rewritten");
        f.write_at(&[0; 64], written + 30).expect("tear");
        assert_eq!(
            read(&RealFs, d.path(), &key)
                .expect("a valid slot is left")
                .expect("mark")
                .size(),
            10
        );
    }
}
