//! Segment files: the append-only record of a realm's blocks and checkpoints.
//!
//! # Layout
//!
//! A realm's journal directory holds segment files named by the first seq
//! they hold (`00000000000000000000.seg`), and `tree.hashes` (see
//! [`crate::tree_file`]). A segment is a 32-byte header and then frames:
//!
//! ```text
//! segment header (32 bytes)
//!   0  magic      8  b"SEALSEG\0"
//!   8  version    4  u32 LE = 1
//!  12  reserved   4  zero
//!  16  first_seq  8  u64 LE
//!  24  crc        4  CRC32C of bytes 0..24
//!  28  reserved   4  zero
//!
//! frame header (48 bytes), then body_len bytes of body
//!   0  magic      4  b"SLFR"
//!   4  kind       1  1 = block, 2 = checkpoint
//!   5  reserved   3  zero
//!   8  seq        8  block: first seq; checkpoint: tree size
//!  16  count      4  block: records; checkpoint: 0
//!  20  body_len   4
//!  24  min_time   8  i64 ns (block), 0 (checkpoint)
//!  32  max_time   8  i64 ns (block), 0 (checkpoint)
//!  40  body_crc   4  CRC32C of the body
//!  44  hdr_crc    4  CRC32C of bytes 0..44
//! ```
//!
//! A block body is described in [`crate::block`]; a checkpoint body is the
//! signed note text ([`crate::checkpoint`]).
//!
//! # Write path
//!
//! A commit appends its block frames and fsyncs (fdatasync), then appends
//! one checkpoint frame for the new tree size and fsyncs again. Only then is
//! a receipt given. Because the checkpoint is written after the blocks are
//! durable, a valid checkpoint frame proves that everything before it was
//! on stable storage when it was written.
//!
//! # Recovery
//!
//! On open every frame header is read and checked (magic, CRC, seq
//! continuity, checkpoint size = records before it). The committed end is
//! the end of the last valid checkpoint frame. Bytes after it were never
//! acknowledged: they are truncated, with a log line saying how many bytes
//! and which seqs were dropped. A damaged frame *before* the last valid
//! checkpoint is tampering or a disk fault and is a hard error naming the
//! seq: never a silent truncation. To tell the two apart, a damaged frame
//! triggers a search of the rest of the file for a later valid checkpoint.
//!
//! Block bodies are checked lazily (on read) and fully by the verifier.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::block::EncodedBlock;
use crate::error::{JournalError, Result};

/// Segment header magic.
pub const SEGMENT_MAGIC: &[u8; 8] = b"SEALSEG\0";
/// The segment format version this build writes and reads.
pub const SEGMENT_VERSION: u32 = 1;
/// Segment header length.
pub const SEGMENT_HEADER_LEN: u64 = 32;
/// Frame header magic.
pub const FRAME_MAGIC: &[u8; 4] = b"SLFR";
/// Frame header length.
pub const FRAME_HEADER_LEN: usize = 48;
/// Largest frame body accepted by readers.
pub const MAX_FRAME_BODY: u32 = 64 * 1024 * 1024;

/// What a frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A block of records.
    Block,
    /// A signed checkpoint note.
    Checkpoint,
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Block or checkpoint.
    pub kind: FrameKind,
    /// Block: first seq; checkpoint: tree size.
    pub seq: u64,
    /// Block: records.
    pub count: u32,
    /// Body length in bytes.
    pub body_len: u32,
    /// Block: earliest time.
    pub min_time: i64,
    /// Block: latest time.
    pub max_time: i64,
    /// CRC32C of the body.
    pub body_crc: u32,
}

impl FrameHeader {
    /// Encodes the 48-byte header.
    pub fn encode(&self) -> [u8; FRAME_HEADER_LEN] {
        let mut h = [0u8; FRAME_HEADER_LEN];
        h[0..4].copy_from_slice(FRAME_MAGIC);
        h[4] = match self.kind {
            FrameKind::Block => 1,
            FrameKind::Checkpoint => 2,
        };
        h[8..16].copy_from_slice(&self.seq.to_le_bytes());
        h[16..20].copy_from_slice(&self.count.to_le_bytes());
        h[20..24].copy_from_slice(&self.body_len.to_le_bytes());
        h[24..32].copy_from_slice(&self.min_time.to_le_bytes());
        h[32..40].copy_from_slice(&self.max_time.to_le_bytes());
        h[40..44].copy_from_slice(&self.body_crc.to_le_bytes());
        let crc = crc32c::crc32c(&h[..44]);
        h[44..48].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// Decodes and checks a header.
    ///
    /// # Errors
    /// A static reason when the magic, kind, CRC or length is wrong.
    pub fn decode(h: &[u8; FRAME_HEADER_LEN]) -> Result<Self, &'static str> {
        if &h[0..4] != FRAME_MAGIC {
            return Err("bad frame magic");
        }
        let crc = u32::from_le_bytes(h[44..48].try_into().expect("4 bytes"));
        if crc32c::crc32c(&h[..44]) != crc {
            return Err("frame header checksum mismatch");
        }
        let kind = match h[4] {
            1 => FrameKind::Block,
            2 => FrameKind::Checkpoint,
            _ => return Err("unknown frame kind"),
        };
        let u64_at = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().expect("8 bytes"));
        let u32_at = |o: usize| u32::from_le_bytes(h[o..o + 4].try_into().expect("4 bytes"));
        let hdr = Self {
            kind,
            seq: u64_at(8),
            count: u32_at(16),
            body_len: u32_at(20),
            min_time: u64_at(24) as i64,
            max_time: u64_at(32) as i64,
            body_crc: u32_at(40),
        };
        if hdr.body_len > MAX_FRAME_BODY {
            return Err("frame body length over the limit");
        }
        if kind == FrameKind::Block && hdr.count == 0 {
            return Err("block frame with no records");
        }
        Ok(hdr)
    }

    /// The header of a block frame.
    pub fn for_block(b: &EncodedBlock) -> Self {
        Self {
            kind: FrameKind::Block,
            seq: b.first_seq,
            count: b.count,
            body_len: b.body.len() as u32,
            min_time: b.min_time,
            max_time: b.max_time,
            body_crc: b.crc,
        }
    }

    /// The header of a checkpoint frame for `size` with `note` as body.
    pub fn for_checkpoint(size: u64, note: &[u8]) -> Self {
        Self {
            kind: FrameKind::Checkpoint,
            seq: size,
            count: 0,
            body_len: note.len() as u32,
            min_time: 0,
            max_time: 0,
            body_crc: crc32c::crc32c(note),
        }
    }
}

/// The file name of the segment starting at `first_seq`.
pub fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.seg")
}

/// Lists segment files in `dir` in seq order.
///
/// # Errors
/// I/O errors, or a `.seg` file whose name is not a seq.
pub fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(JournalError::io("list", dir))?;
    for e in entries {
        let e = e.map_err(JournalError::io("list", dir))?;
        let name = e.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".seg")) else {
            continue;
        };
        let seq = stem
            .parse::<u64>()
            .ok()
            .filter(|_| stem.len() == 20)
            .ok_or_else(|| JournalError::Format {
                path: e.path(),
                reason: "segment file name is not a 20-digit seq".into(),
            })?;
        out.push((seq, e.path()));
    }
    out.sort();
    Ok(out)
}

/// Encodes a segment header.
pub fn segment_header(first_seq: u64) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    h[0..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&first_seq.to_le_bytes());
    let crc = crc32c::crc32c(&h[..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Reads and checks a segment header, returning its first seq.
///
/// # Errors
/// [`JournalError::Format`] naming what is wrong.
pub fn read_segment_header(file: &mut File, path: &Path) -> Result<u64> {
    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_exact(&mut h))
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => JournalError::Format {
                path: path.to_path_buf(),
                reason: "file is shorter than a segment header".into(),
            },
            _ => JournalError::Io {
                op: "read",
                path: path.to_path_buf(),
                source: e,
            },
        })?;
    let bad = |reason: &str| JournalError::Format {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    if &h[0..8] != SEGMENT_MAGIC {
        return Err(bad("not a sealog segment (bad magic)"));
    }
    if crc32c::crc32c(&h[..24]) != u32::from_le_bytes(h[24..28].try_into().expect("4 bytes")) {
        return Err(bad("segment header checksum mismatch"));
    }
    let version = u32::from_le_bytes(h[8..12].try_into().expect("4 bytes"));
    if version != SEGMENT_VERSION {
        return Err(bad(&format!(
            "segment format version {version}; this build reads version {SEGMENT_VERSION}"
        )));
    }
    Ok(u64::from_le_bytes(h[16..24].try_into().expect("8 bytes")))
}

/// Appends frames to the active segment.
#[derive(Debug)]
pub struct SegmentWriter {
    file: File,
    path: PathBuf,
    len: u64,
    first_seq: u64,
}

impl SegmentWriter {
    /// Creates a new segment starting at `first_seq` in `dir` and syncs the
    /// directory so the file's existence is durable.
    ///
    /// # Errors
    /// I/O errors.
    pub fn create(dir: &Path, first_seq: u64) -> Result<Self> {
        let path = dir.join(segment_name(first_seq));
        let mut file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(JournalError::io("create", &path))?;
        file.write_all(&segment_header(first_seq))
            .and_then(|_| file.sync_all())
            .map_err(JournalError::io("write", &path))?;
        sync_dir(dir)?;
        Ok(Self {
            file,
            path,
            len: SEGMENT_HEADER_LEN,
            first_seq,
        })
    }

    /// Opens an existing segment for appending at `len` (the committed end
    /// found by recovery), truncating anything after it.
    ///
    /// # Errors
    /// I/O errors.
    pub fn reopen(path: &Path, first_seq: u64, len: u64) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(JournalError::io("open", path))?;
        let actual = file
            .metadata()
            .map_err(JournalError::io("stat", path))?
            .len();
        if actual != len {
            file.set_len(len)
                .and_then(|_| file.sync_all())
                .map_err(JournalError::io("truncate", path))?;
        }
        let mut w = Self {
            file,
            path: path.to_path_buf(),
            len,
            first_seq,
        };
        w.file
            .seek(SeekFrom::Start(len))
            .map_err(JournalError::io("seek", path))?;
        Ok(w)
    }

    /// Bytes in the segment.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when only the header is written.
    pub fn is_empty(&self) -> bool {
        self.len == SEGMENT_HEADER_LEN
    }

    /// First seq of the segment.
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// The segment's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `bytes` (whole frames) at the end. Returns the offset they start at.
    ///
    /// # Errors
    /// I/O errors.
    pub fn append(&mut self, bytes: &[u8]) -> Result<u64> {
        let at = self.len;
        self.file
            .write_all(bytes)
            .map_err(JournalError::io("write", &self.path))?;
        self.len += bytes.len() as u64;
        Ok(at)
    }

    /// A second handle on the file, to fdatasync it without holding the
    /// writer (the journal's lock).
    ///
    /// # Errors
    /// I/O errors.
    pub fn sync_handle(&self) -> Result<SyncHandle> {
        Ok(SyncHandle {
            file: self
                .file
                .try_clone()
                .map_err(JournalError::io("dup", &self.path))?,
            path: self.path.clone(),
        })
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

/// A duplicated descriptor of a segment, for fdatasync only.
#[derive(Debug)]
pub struct SyncHandle {
    file: File,
    path: PathBuf,
}

impl SyncHandle {
    /// fdatasync: everything written to the segment through any descriptor
    /// before this call is durable when it returns.
    ///
    /// # Errors
    /// I/O errors.
    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(JournalError::io("fsync", &self.path))
    }
}

/// Appends a frame (header and body) to `out`.
pub fn push_frame(out: &mut Vec<u8>, header: &FrameHeader, body: &[u8]) {
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(body);
}

/// fsyncs a directory so entries created or renamed in it are durable.
///
/// # Errors
/// I/O errors.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(JournalError::io("fsync directory", dir))
}

/// Reads frames one after another from a segment.
#[derive(Debug)]
pub struct FrameReader {
    reader: io::BufReader<File>,
    path: PathBuf,
    pos: u64,
    file_len: u64,
    first_seq: u64,
}

/// One step of [`FrameReader::next_frame`].
#[derive(Debug)]
pub enum FrameRead {
    /// A frame whose header is valid; the body is read if asked for.
    Frame {
        /// The header.
        header: FrameHeader,
        /// Offset of the frame header in the file.
        offset: u64,
        /// The body, when read.
        body: Option<Vec<u8>>,
    },
    /// The file ends cleanly.
    End,
    /// The bytes at `offset` are not a valid frame (torn or damaged).
    Bad {
        /// Where the bad frame starts.
        offset: u64,
        /// Why it was refused.
        reason: &'static str,
        /// True when it looks like an interrupted write: the file ends inside
        /// the frame, or ends in zero fill. Otherwise the bytes were damaged.
        torn: bool,
    },
}

impl FrameReader {
    /// Opens a segment and checks its header.
    ///
    /// # Errors
    /// I/O and format errors.
    pub fn open(path: &Path) -> Result<Self> {
        let mut file = File::open(path).map_err(JournalError::io("open", path))?;
        let first_seq = read_segment_header(&mut file, path)?;
        let file_len = file
            .metadata()
            .map_err(JournalError::io("stat", path))?
            .len();
        Ok(Self {
            reader: io::BufReader::with_capacity(1 << 20, file),
            path: path.to_path_buf(),
            pos: SEGMENT_HEADER_LEN,
            file_len,
            first_seq,
        })
    }

    /// The seq in the segment header.
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Offset of the next frame.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Reads the next frame. Block bodies are read only when `block_bodies`
    /// is true (checkpoint bodies always); otherwise they are skipped.
    /// Body CRCs are checked for checkpoints, and for blocks whose bodies
    /// are read only when `check_blocks` is true.
    ///
    /// # Errors
    /// I/O errors other than a short read (a short read is [`FrameRead::Bad`]).
    pub fn next_frame(&mut self, block_bodies: bool) -> Result<FrameRead> {
        let offset = self.pos;
        if offset == self.file_len {
            return Ok(FrameRead::End);
        }
        if self.file_len - offset < FRAME_HEADER_LEN as u64 {
            return Ok(FrameRead::Bad {
                offset,
                reason: "file ends inside a frame header",
                torn: true,
            });
        }
        let mut h = [0u8; FRAME_HEADER_LEN];
        self.reader
            .read_exact(&mut h)
            .map_err(JournalError::io("read", &self.path))?;
        let header = match FrameHeader::decode(&h) {
            Ok(h) => h,
            Err(reason) => {
                self.reader
                    .seek(SeekFrom::Start(offset))
                    .map_err(JournalError::io("seek", &self.path))?;
                let torn = self.ends_in_zero_fill()?;
                return Ok(FrameRead::Bad {
                    offset,
                    reason,
                    torn,
                });
            }
        };
        let body_start = offset + FRAME_HEADER_LEN as u64;
        let end = body_start + u64::from(header.body_len);
        if end > self.file_len {
            return Ok(FrameRead::Bad {
                offset,
                reason: "file ends inside a frame body",
                torn: true,
            });
        }
        let want_body = block_bodies || header.kind == FrameKind::Checkpoint;
        let body = if want_body {
            let mut body = vec![0u8; header.body_len as usize];
            self.reader
                .read_exact(&mut body)
                .map_err(JournalError::io("read", &self.path))?;
            if header.kind == FrameKind::Checkpoint && crc32c::crc32c(&body) != header.body_crc {
                self.reader
                    .seek(SeekFrom::Start(offset))
                    .map_err(JournalError::io("seek", &self.path))?;
                let torn = self.ends_in_zero_fill()?;
                return Ok(FrameRead::Bad {
                    offset,
                    reason: "checkpoint frame checksum mismatch",
                    torn,
                });
            }
            Some(body)
        } else {
            self.reader
                .seek_relative(i64::from(header.body_len))
                .map_err(JournalError::io("seek", &self.path))?;
            None
        };
        self.pos = end;
        Ok(FrameRead::Frame {
            header,
            offset,
            body,
        })
    }

    /// True when the file's last byte is zero: blocks allocated by a write
    /// that never reached the disk read back as zeros, while every frame
    /// sealog writes last (a checkpoint note) ends in a newline.
    fn ends_in_zero_fill(&mut self) -> Result<bool> {
        if self.file_len == 0 {
            return Ok(false);
        }
        let mut b = [0u8; 1];
        read_exact_at(self.reader.get_ref(), &mut b, self.file_len - 1)
            .map_err(JournalError::io("read", &self.path))?;
        Ok(b[0] == 0)
    }

    /// Looks for a valid checkpoint frame anywhere after `from`: used after
    /// a damaged frame to tell a torn tail from damage to committed data.
    /// Returns the tree size the first such checkpoint claims.
    ///
    /// # Errors
    /// I/O errors.
    pub fn find_checkpoint_after(&mut self, from: u64) -> Result<Option<u64>> {
        let file = self.reader.get_mut();
        file.seek(SeekFrom::Start(from))
            .map_err(JournalError::io("seek", &self.path))?;
        let mut rest = Vec::new();
        file.read_to_end(&mut rest)
            .map_err(JournalError::io("read", &self.path))?;
        let mut start = 1;
        while let Some(at) = rest
            .get(start..)
            .and_then(|r| memchr::memmem::find(r, FRAME_MAGIC))
        {
            let at = start + at;
            start = at + 1;
            let Some(h) = rest.get(at..at + FRAME_HEADER_LEN) else {
                break;
            };
            let h: &[u8; FRAME_HEADER_LEN] = h.try_into().expect("header length");
            if let Ok(hdr) = FrameHeader::decode(h) {
                let body =
                    rest.get(at + FRAME_HEADER_LEN..at + FRAME_HEADER_LEN + hdr.body_len as usize);
                if hdr.kind == FrameKind::Checkpoint
                    && body.is_some_and(|b| crc32c::crc32c(b) == hdr.body_crc)
                {
                    return Ok(Some(hdr.seq));
                }
            }
        }
        Ok(None)
    }

    /// Reads a block body at a known offset (random access).
    ///
    /// # Errors
    /// I/O errors.
    pub fn read_at(file: &File, path: &Path, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        read_exact_at(file, &mut buf, offset).map_err(JournalError::io("read", path))?;
        Ok(buf)
    }
}

fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_damage() {
        let h = FrameHeader {
            kind: FrameKind::Block,
            seq: 99,
            count: 3,
            body_len: 10,
            min_time: -5,
            max_time: 7,
            body_crc: 0xdead_beef,
        };
        let mut bytes = h.encode();
        assert_eq!(FrameHeader::decode(&bytes), Ok(h));
        bytes[9] ^= 1;
        assert_eq!(
            FrameHeader::decode(&bytes),
            Err("frame header checksum mismatch")
        );
    }
}
