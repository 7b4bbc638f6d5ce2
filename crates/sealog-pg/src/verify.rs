//! Reading a whole realm out of PostgreSQL, in one snapshot: the offline
//! verifier ([`verify_realm`], the same checks as `sealog verify` on a data
//! directory, fed from the tables) and the commit-by-commit copy that
//! `sealog migrate --from-postgres` and `export` use
//! ([`read_sealed_commits`]).

use std::collections::HashMap;

use postgres::Client;
use sealog_journal::block::{self, EncodedBlock};
use sealog_journal::checkpoint::VerifierKey;
use sealog_journal::merkle::{Frontier, Hash};
use sealog_journal::verify::{verify_frames, Evidence, Finding, Report, StoredFrame, StoredNodes};
use sealog_journal::{JournalError, Result};

use crate::db;

/// Blocks read per query.
const CHUNK: i64 = 256;

/// Every checkpoint note of `realm`, by size, as stored.
fn load_checkpoints(
    tx: &mut postgres::Transaction<'_>,
    realm: &str,
    op: &'static str,
) -> Result<Vec<(i64, String)>> {
    tx.query(
        "SELECT size, note FROM sealog_checkpoints WHERE realm = $1 ORDER BY size",
        &[&realm],
    )
    .map_err(|e| db(op, &e))?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
    .collect::<std::result::Result<_, postgres::Error>>()
    .map_err(|e| db(op, &e))
}

/// Verifies `realm` in the database `c` is connected to, against `key`:
/// every block's checksum and records, each leaf hash, every checkpoint's
/// signature, size and root, the realm's latest checkpoint (its high-water
/// mark), the stored tree hashes, and `evidence`.
///
/// # Errors
/// Database errors that stop reading; no such realm. Everything wrong with
/// the data is a finding in the report.
pub fn verify_realm(
    c: &mut Client,
    realm: &str,
    key: &VerifierKey,
    evidence: &Evidence,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Report> {
    let op = "reading the realm from PostgreSQL for verify";
    let mut tx = crate::snapshot(c, op)?;
    let row = tx
        .query_opt(
            "SELECT checkpoint, size, frontier FROM sealog_realms WHERE name = $1",
            &[&realm],
        )
        .map_err(|e| db(op, &e))?
        .ok_or_else(|| JournalError::Store {
            op,
            reason: format!("there is no realm {realm} in this PostgreSQL database"),
        })?;
    let (mark, row_size, frontier) = (|| -> std::result::Result<_, postgres::Error> {
        Ok((
            row.try_get::<_, Option<String>>(0)?,
            row.try_get::<_, i64>(1)?,
            row.try_get::<_, Vec<u8>>(2)?,
        ))
    })()
    .map_err(|e| db(op, &e))?;
    let checkpoints = load_checkpoints(&mut tx, realm, op)?;
    let nodes: HashMap<i64, Vec<u8>> = tx
        .query(
            "SELECT position, hash FROM sealog_tree_nodes WHERE realm = $1",
            &[&realm],
        )
        .map_err(|e| db(op, &e))?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<std::result::Result<_, postgres::Error>>()
        .map_err(|e| db(op, &e))?;
    let marked = mark.as_deref().and_then(|t| key.verify(t).ok());
    let mut frames = Frames {
        tx,
        realm,
        checkpoints: checkpoints.into_iter().peekable(),
        buffered: std::collections::VecDeque::new(),
        after: None,
        done: false,
    };
    let mut node = |pos: u64| -> Result<Option<Hash>> {
        Ok(i64::try_from(pos)
            .ok()
            .and_then(|p| nodes.get(&p))
            .map(|h| Hash::try_from(h.as_slice()).unwrap_or([0xff; 32])))
    };
    let stored_nodes = nodes.len();
    let mut report = verify_frames(
        realm,
        key,
        evidence,
        mark,
        &mut frames,
        StoredNodes {
            get: &mut node,
            count: stored_nodes,
        },
        progress,
    )?;
    // The realm row is what a writer resumes from: it must say what the
    // records and the mark say.
    let hashes: Vec<Hash> = frontier
        .chunks(32)
        .map(|c| Hash::try_from(c).unwrap_or([0; 32]))
        .collect();
    let row_root = u64::try_from(row_size)
        .ok()
        .and_then(|n| Frontier::from_subtrees(n, &hashes).ok())
        .map(|f| f.root());
    let problem = if u64::try_from(row_size).ok() != Some(report.records) {
        Some(format!(
            "the realm row says {row_size} records, but {} are stored",
            report.records
        ))
    } else if let Some(cp) =
        marked.filter(|cp| row_root != Some(cp.root) || cp.size != report.records)
    {
        Some(format!(
            "the realm row's frontier (what its writer resumes from) does not give the root of its checkpoint for size {}",
            cp.size
        ))
    } else {
        None
    };
    if let Some(reason) = problem {
        report.findings.push(Finding {
            seq: report.committed.min(report.records),
            end: None,
            reason,
        });
    }
    Ok(report)
}

/// Blocks in seq order, each checkpoint after the blocks it covers; a row
/// that cannot be a block ends the sequence with a `Damaged` frame.
struct Frames<'t, 'r> {
    tx: postgres::Transaction<'t>,
    realm: &'r str,
    checkpoints: std::iter::Peekable<std::vec::IntoIter<(i64, String)>>,
    buffered: std::collections::VecDeque<StoredFrame>,
    /// Fetch rows with a first seq above this (negative ones included:
    /// they are damage to report, not rows to skip).
    after: Option<i64>,
    done: bool,
}

impl Frames<'_, '_> {
    fn fetch(&mut self) -> Result<()> {
        let rows = self
            .tx
            .query(
                "SELECT first_seq, count, min_time, max_time, crc, body FROM sealog_blocks WHERE realm = $1 AND ($2::bigint IS NULL OR first_seq > $2) ORDER BY first_seq LIMIT $3",
                &[&self.realm, &self.after, &CHUNK],
            )
            .map_err(|e| db("reading blocks from PostgreSQL for verify", &e))?;
        if rows.is_empty() {
            self.done = true;
        }
        for r in rows {
            match block_of(&r) {
                Ok(b) => {
                    self.after = Some(i64::try_from(b.first_seq).unwrap_or(i64::MAX));
                    self.buffered.push_back(StoredFrame::Block(b));
                }
                Err(reason) => {
                    self.buffered.push_back(StoredFrame::Damaged { reason });
                    self.done = true;
                    break;
                }
            }
        }
        Ok(())
    }
}

/// A block row as the block it claims to be, or why it cannot be one.
fn block_of(r: &postgres::Row) -> std::result::Result<EncodedBlock, String> {
    let cols = (|| -> std::result::Result<_, postgres::Error> {
        Ok((
            r.try_get::<_, i64>(0)?,
            r.try_get::<_, i32>(1)?,
            r.try_get::<_, i64>(2)?,
            r.try_get::<_, i64>(3)?,
            r.try_get::<_, i64>(4)?,
            r.try_get::<_, Vec<u8>>(5)?,
        ))
    })()
    .map_err(|e| format!("a block row does not read as one: {e}"))?;
    let (first, count, min_time, max_time, crc, body) = cols;
    let first_seq =
        u64::try_from(first).map_err(|_| format!("a block row has first seq {first}"))?;
    let count = u32::try_from(count)
        .ok()
        .filter(|c| (1..=block::MAX_BLOCK_RECORDS as u32).contains(c))
        .ok_or_else(|| format!("the block row at seq {first} has a count of {count}"))?;
    let crc = u32::try_from(crc)
        .map_err(|_| format!("the block row at seq {first} has a CRC of {crc}, not 32 bits"))?;
    Ok(EncodedBlock {
        first_seq,
        count,
        min_time,
        max_time,
        crc,
        body,
    })
}

impl Iterator for Frames<'_, '_> {
    type Item = Result<StoredFrame>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buffered.is_empty() && !self.done {
            if let Err(e) = self.fetch() {
                self.done = true;
                return Some(Err(e));
            }
        }
        // A checkpoint comes before the first block that starts at or past
        // its size, and the rest after the last block.
        let cp_due = match (self.checkpoints.peek(), self.buffered.front()) {
            (Some((size, _)), Some(StoredFrame::Block(b))) => {
                u64::try_from(*size).unwrap_or(0) <= b.first_seq
            }
            (Some(_), None) => true,
            (_, Some(StoredFrame::Damaged { .. })) | (None, _) => false,
            (Some(_), Some(StoredFrame::Checkpoint { .. })) => false,
        };
        if cp_due {
            let (size, text) = self.checkpoints.next()?;
            return Some(Ok(StoredFrame::Checkpoint {
                size: u64::try_from(size).unwrap_or(u64::MAX),
                text,
            }));
        }
        self.buffered.pop_front().map(Ok)
    }
}

/// Reads `realm`'s commits in order (for `sealog migrate --from-postgres`):
/// each commit's blocks as stored and the checkpoint signed for its end.
/// Nothing is checked here; callers check each commit against its
/// checkpoint before they store it.
///
/// # Errors
/// Database errors; a block row that cannot be a block; blocks that do not
/// end where a checkpoint says.
pub fn read_sealed_commits(
    c: &mut Client,
    realm: &str,
    visit: &mut dyn FnMut(sealog_journal::commits::SealedCommit) -> Result<()>,
) -> Result<()> {
    let op = "reading the realm's commits from PostgreSQL";
    let mut tx = crate::snapshot(c, op)?;
    let checkpoints = load_checkpoints(&mut tx, realm, op)?;
    let mut frames = Frames {
        tx,
        realm,
        checkpoints: Vec::new().into_iter().peekable(),
        buffered: std::collections::VecDeque::new(),
        after: None,
        done: false,
    };
    let mut first = 0u64;
    let mut end = 0u64;
    let mut blocks = Vec::new();
    for (size, note) in checkpoints {
        let size = u64::try_from(size).unwrap_or(u64::MAX);
        while end < size {
            match frames.next() {
                Some(Ok(StoredFrame::Block(b))) => {
                    end = b.first_seq + u64::from(b.count);
                    blocks.push(b);
                }
                Some(Ok(StoredFrame::Damaged { reason })) => {
                    return Err(JournalError::Corrupt {
                        seq: end,
                        reason,
                        path: std::path::PathBuf::from(format!(
                            "postgresql:sealog_blocks(realm={realm})"
                        )),
                    })
                }
                Some(Err(e)) => return Err(e),
                Some(Ok(StoredFrame::Checkpoint { .. })) | None => break,
            }
        }
        if end != size {
            return Err(JournalError::Corrupt {
                seq: end,
                reason: format!("the blocks end at seq {end}, not at the checkpoint's size {size}"),
                path: std::path::PathBuf::from(format!("postgresql:sealog_blocks(realm={realm})")),
            });
        }
        if !blocks.is_empty() {
            visit(sealog_journal::commits::SealedCommit {
                first_seq: first,
                blocks: std::mem::take(&mut blocks),
                checkpoint: note,
            })?;
        }
        first = end;
    }
    Ok(())
}
