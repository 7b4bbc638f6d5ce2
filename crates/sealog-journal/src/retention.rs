//! Verifiable retention: removing the bodies of old records without
//! breaking a single proof.
//!
//! The Merkle tree needs nothing of a removed record but its place in the
//! tree. Retention rewrites the blocks holding the records it removes: each
//! run of removed records keeps only the perfect subtrees (at most a tile of
//! 256 leaves each) that tile it, in the block's table ([`crate::block`]):
//! 32 bytes for up to 256 records. Checkpoints fall only between commits,
//! so between blocks, so every checkpoint, every surviving record's
//! inclusion and every consistency proof still computes. What was removed,
//! under which policy and when, is a *retention record*: a note signed with
//! the realm's key and appended to `retention.notes` before any block is
//! touched.
//!
//! The verifier accepts a removed run only when a validly signed record
//! names all of its seqs and its latest time is before the record's cutoff.
//! A body removed any other way (a line cut out, a table forged) is reported
//! as tampering: nobody without the key can sign a record covering it, and a
//! wrong subtree hash fails the signed checkpoints.
//!
//! # The record
//!
//! ```text
//! sealog/<realm>
//! retention <id>
//! at <RFC 3339 time it was made>
//! size <tree size when it was made>
//! policy <what the operator asked, e.g. days=30 app=payments>
//! cutoff <RFC 3339: only records older than this may be removed; ≤ at>
//! removed <records>
//! ranges <count> <SHA-256 hex of the range list>
//!
//! — sealog/<realm> <signature>
//! ```
//!
//! The second line is never a decimal, so a record never parses as a
//! checkpoint (and no checkpoint as a record). The range list (`count` ×
//! half-open `[start, end)` as two u64 LE) is stored beside the note and
//! bound to it by the hash, so a record stays small however scattered the
//! removed records are.
//!
//! # `retention.notes`
//!
//! ```text
//! entry: header (16 bytes), then note_len bytes of note, ranges_len of ranges
//!   0  magic       4  b"SLRN"
//!   4  note_len    4  u32 LE
//!   8  ranges_len  4  u32 LE
//!  12  crc         4  CRC32C of bytes 0..12, the note and the ranges
//! ```
//!
//! # Crash safety
//!
//! The record is synced before any segment is rewritten. Each affected
//! segment is written whole to `<name>.seg.retain`, synced, and renamed over
//! the original (then the directory is synced): a crash leaves every
//! segment either as it was or fully rewritten, and the record covers both.
//! A record that covers records still present is not a finding; running the
//! same policy again removes what is left, under a new record. A torn last
//! entry of `retention.notes` was never acted on and is cut off by the next
//! run. Records in the segment being appended to are moved out of it first
//! by closing it (a new segment starts), so appends never race a rewrite.

use std::path::Path;

use sealog_event::{format_rfc3339_nanos, parse_rfc3339};
use sha2::{Digest, Sha256};

use crate::checkpoint::{origin_for, VerifierKey};
use crate::error::{JournalError, Result};
use crate::fs::{OpenHow, Vfs};

/// The file holding a realm's retention records, in its journal directory.
pub const RETENTION_FILE: &str = "retention.notes";
const ENTRY_MAGIC: &[u8; 4] = b"SLRN";
const ENTRY_HEADER: usize = 16;
pub(crate) const TMP_SUFFIX: &str = ".retain";

/// One retention record: what was removed, why and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionRecord {
    /// 1, 2, 3… in the order records were made.
    pub id: u64,
    /// When it was made, ns since the epoch.
    pub at_ns: i64,
    /// The tree size when it was made.
    pub size: u64,
    /// The policy as the operator gave it.
    pub policy: String,
    /// Only records whose time is before this may be removed.
    pub cutoff_ns: i64,
    /// Records removed.
    pub removed: u64,
    /// The removed seqs as half-open ranges, ascending, disjoint.
    pub ranges: Vec<(u64, u64)>,
}

impl RetentionRecord {
    /// The note body for `realm` (signed by the realm's key).
    pub fn body(&self, realm: &str) -> String {
        let cutoff = format_rfc3339_nanos(self.cutoff_ns);
        format!(
            "{}\nretention {}\nat {}\nsize {}\npolicy {}\ncutoff {cutoff}\nremoved {}\nranges {} {}\n",
            origin_for(realm),
            self.id,
            format_rfc3339_nanos(self.at_ns),
            self.size,
            one_line(&self.policy),
            self.removed,
            self.ranges.len(),
            hex(&Sha256::digest(ranges_bytes(&self.ranges)))
        )
    }

    /// True when `seq` is in one of the removed ranges.
    pub fn covers(&self, seq: u64) -> bool {
        let i = self.ranges.partition_point(|r| r.0 <= seq);
        i > 0 && seq < self.ranges[i - 1].1
    }

    /// Parses a verified note body and its stored range list.
    fn parse(body: &str, realm: &str, ranges: &[u8]) -> std::result::Result<Self, String> {
        let mut lines = body.lines();
        let origin = lines.next().unwrap_or_default();
        if origin != origin_for(realm) {
            return Err(format!(
                "retention record is for {origin:?}, not {:?}",
                origin_for(realm)
            ));
        }
        let mut next = |key: &str| -> std::result::Result<&str, String> {
            let line = lines
                .next()
                .ok_or_else(|| format!("retention record has no {key} line"))?;
            line.strip_prefix(key)
                .and_then(|v| v.strip_prefix(' '))
                .ok_or_else(|| format!("retention record: expected a {key} line, found {line:?}"))
        };
        let num = |v: &str, what: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("retention record: {what} {v:?} is not a number"))
        };
        let id = num(next("retention")?, "id")?;
        let at = next("at")?;
        let at_ns =
            parse_rfc3339(at).ok_or_else(|| format!("retention record: bad time {at:?}"))?;
        let size = num(next("size")?, "size")?;
        let policy = next("policy")?.to_string();
        let cutoff = next("cutoff")?;
        let cutoff_ns = parse_rfc3339(cutoff)
            .ok_or_else(|| format!("retention record: bad cutoff {cutoff:?}"))?;
        // A record cannot remove what was not yet old when it was made.
        if cutoff_ns > at_ns {
            return Err(format!(
                "retention record {id}: its cutoff {cutoff} is after the time it was made ({at})"
            ));
        }
        let removed = num(next("removed")?, "removed")?;
        let r = next("ranges")?;
        let (count, digest) = r
            .split_once(' ')
            .ok_or_else(|| format!("retention record: bad ranges line {r:?}"))?;
        let count = num(count, "range count")?;
        if hex(&Sha256::digest(ranges)) != digest {
            return Err(format!(
                "retention record {id}: its stored range list does not match the hash it signed"
            ));
        }
        if ranges.len() as u64 != count.saturating_mul(16) {
            return Err(format!(
                "retention record {id}: {count} ranges signed, {} bytes stored",
                ranges.len()
            ));
        }
        let list: Vec<(u64, u64)> = ranges
            .chunks_exact(16)
            .map(|c| {
                (
                    u64::from_le_bytes(c[..8].try_into().expect("8 bytes")),
                    u64::from_le_bytes(c[8..].try_into().expect("8 bytes")),
                )
            })
            .collect();
        let ordered = list.iter().all(|(a, b)| a < b && *b <= size)
            && list.windows(2).all(|w| w[0].1 < w[1].0);
        let total: u64 = list.iter().map(|(a, b)| b - a).sum();
        if !ordered || total != removed {
            return Err(format!(
                "retention record {id}: its ranges are out of order, past size {size}, or do not add up to {removed}"
            ));
        }
        Ok(Self {
            id,
            at_ns,
            size,
            policy,
            cutoff_ns,
            removed,
            ranges: list,
        })
    }
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn ranges_bytes(ranges: &[(u64, u64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ranges.len() * 16);
    for (a, b) in ranges {
        out.extend_from_slice(&a.to_le_bytes());
        out.extend_from_slice(&b.to_le_bytes());
    }
    out
}

/// A retention record with its signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRetention {
    /// The record.
    pub record: RetentionRecord,
    /// The signed note.
    pub text: String,
}

/// What `retention.notes` holds.
#[derive(Debug, Clone, Default)]
pub struct Notes {
    /// Records whose signature and range list check, in file order.
    pub records: Vec<SignedRetention>,
    /// Entries that are present but do not check (tampering).
    pub problems: Vec<String>,
    /// Bytes of well-formed entries from the start.
    pub valid_len: u64,
    /// True when the file ends in a partial entry (an interrupted append).
    pub torn_tail: bool,
}

impl Notes {
    /// The record with `id`, if it checks.
    pub fn get(&self, id: u64) -> Option<&RetentionRecord> {
        self.records.iter().map(|s| &s.record).find(|r| r.id == id)
    }
}

/// Reads and checks `retention.notes` in `dir` (missing = no records).
///
/// # Errors
/// I/O errors other than the file being absent.
pub fn read_notes(fs: &dyn Vfs, dir: &Path, realm: &str, key: &VerifierKey) -> Result<Notes> {
    let path = dir.join(RETENTION_FILE);
    let mut notes = Notes::default();
    if !fs.exists(&path) {
        return Ok(notes);
    }
    let bytes = fs
        .open(&path, OpenHow::Read)
        .and_then(|f| f.read_to_end_at(0))
        .map_err(JournalError::io("read", &path))?;
    let mut at = 0usize;
    while at < bytes.len() {
        let Some(h) = bytes.get(at..at + ENTRY_HEADER) else {
            notes.torn_tail = true;
            break;
        };
        let note_len = u32::from_le_bytes(h[4..8].try_into().expect("4 bytes")) as usize;
        let ranges_len = u32::from_le_bytes(h[8..12].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(h[12..16].try_into().expect("4 bytes"));
        let end = at + ENTRY_HEADER + note_len + ranges_len;
        let whole = &h[..4] == ENTRY_MAGIC && end <= bytes.len() && {
            let mut c = crc32c::crc32c(&h[..12]);
            c = crc32c::crc32c_append(c, &bytes[at + ENTRY_HEADER..end]);
            c == crc
        };
        if !whole {
            // A partial last entry is an append that never finished; a bad
            // entry with more after it is damage.
            // A whole entry whose checksum fails is damage even at the end:
            // cutting it off would lose a signed record.
            if &h[..4] == ENTRY_MAGIC && end > bytes.len() {
                notes.torn_tail = true;
            } else {
                notes.problems.push(format!(
                    "{}: damaged entry at offset {at}; the records after it are not read",
                    path.display()
                ));
            }
            break;
        }
        let note = &bytes[at + ENTRY_HEADER..at + ENTRY_HEADER + note_len];
        let ranges = &bytes[at + ENTRY_HEADER + note_len..end];
        let checked = std::str::from_utf8(note)
            .map_err(|_| "note is not UTF-8".to_string())
            .and_then(|text| {
                let body = key.verify_note(text).map_err(|e| e.to_string())?;
                let record = RetentionRecord::parse(body, realm, ranges)?;
                Ok(SignedRetention {
                    record,
                    text: text.to_string(),
                })
            });
        match checked {
            Ok(s) if notes.get(s.record.id).is_some() => notes.problems.push(format!(
                "{}: retention record {} appears twice",
                path.display(),
                s.record.id
            )),
            Ok(s) => notes.records.push(s),
            Err(e) => notes.problems.push(format!(
                "{}: entry at offset {at} is not a valid retention record: {e}",
                path.display()
            )),
        }
        at = end;
        notes.valid_len = at as u64;
    }
    Ok(notes)
}

pub(crate) fn append_note(
    fs: &dyn Vfs,
    dir: &Path,
    valid_len: u64,
    s: &SignedRetention,
) -> Result<()> {
    let path = dir.join(RETENTION_FILE);
    let ranges = ranges_bytes(&s.record.ranges);
    let mut entry = Vec::with_capacity(ENTRY_HEADER + s.text.len() + ranges.len());
    entry.extend_from_slice(ENTRY_MAGIC);
    entry.extend_from_slice(&(s.text.len() as u32).to_le_bytes());
    entry.extend_from_slice(&(ranges.len() as u32).to_le_bytes());
    let mut crc = crc32c::crc32c(&entry);
    crc = crc32c::crc32c_append(crc, s.text.as_bytes());
    crc = crc32c::crc32c_append(crc, &ranges);
    entry.extend_from_slice(&crc.to_le_bytes());
    entry.extend_from_slice(s.text.as_bytes());
    entry.extend_from_slice(&ranges);
    let existed = fs.exists(&path);
    let file = fs
        .open(&path, OpenHow::Create { mode: 0o644 })
        .map_err(JournalError::io("open", &path))?;
    // A torn entry from an interrupted run is cut off first.
    file.set_len(valid_len)
        .and_then(|_| file.write_at(&entry, valid_len))
        .and_then(|_| file.sync_all())
        .map_err(JournalError::io("write", &path))?;
    if !existed {
        fs.sync_dir(dir)
            .map_err(JournalError::io("fsync directory", dir))?;
    }
    Ok(())
}

/// Which records a retention run removes.
pub struct Policy<'a> {
    /// The policy as the operator gave it (goes into the record).
    pub description: String,
    /// Only records whose time (event time, else `received_at`) is before
    /// this are removed; it may not be after the run's own time.
    pub cutoff_ns: i64,
    /// Among those, the ones to remove (given the leaf line).
    pub select: &'a (dyn Fn(&[u8]) -> bool + Sync),
}

impl std::fmt::Debug for Policy<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("description", &self.description)
            .field("cutoff_ns", &self.cutoff_ns)
            .finish_non_exhaustive()
    }
}

/// What a retention run did (or, dry, would do).
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Records removed (or that would be).
    pub removed: u64,
    /// Their seqs as half-open ranges.
    pub ranges: Vec<(u64, u64)>,
    /// The signed record (none on a dry run or when nothing matched).
    pub record: Option<SignedRetention>,
    /// Bytes of the journal's segments before and after.
    pub bytes_before: u64,
    /// Bytes after (equal to before on a dry run).
    pub bytes_after: u64,
    /// Segment files rewritten.
    pub segments_rewritten: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Signer;

    fn record(at_ns: i64, cutoff_ns: i64) -> RetentionRecord {
        RetentionRecord {
            id: 1,
            at_ns,
            size: 10,
            policy: "days=1".into(),
            cutoff_ns,
            removed: 4,
            ranges: vec![(0, 2), (5, 7)],
        }
    }

    #[test]
    fn a_record_round_trips_and_a_cutoff_after_its_time_is_refused() {
        let signer = Signer::new(
            "sealog/acme",
            ed25519_dalek::SigningKey::from_bytes(&[3; 32]),
        );
        let key = signer.verifier();
        let r = record(2_000_000_000, 1_000_000_000);
        let text = signer.sign_note(&r.body("acme"));
        let body = key.verify_note(&text).expect("signed");
        let ranges = ranges_bytes(&r.ranges);
        assert_eq!(RetentionRecord::parse(body, "acme", &ranges), Ok(r.clone()));
        assert!(r.covers(1) && !r.covers(2) && r.covers(6) && !r.covers(7));
        // Not a checkpoint, and not for another realm.
        assert!(key.verify(&text).is_err());
        assert!(RetentionRecord::parse(body, "other", &ranges).is_err());
        // The stored ranges must be the signed ones.
        let mut other = ranges.clone();
        other[0] = 1;
        assert!(RetentionRecord::parse(body, "acme", &other).is_err());
        // A cutoff after the record's own time removes what was not old.
        let future = record(1_000_000_000, 2_000_000_000);
        let text = signer.sign_note(&future.body("acme"));
        let body = key.verify_note(&text).expect("signed");
        let e = RetentionRecord::parse(body, "acme", &ranges).expect_err("refused");
        assert!(e.contains("after the time it was made"), "{e}");
    }
}
