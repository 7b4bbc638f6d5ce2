//! The offline verifier over a realm in PostgreSQL: the same checks as
//! `sealog verify` on a data directory, fed from the tables.

use std::collections::HashMap;

use postgres::Client;
use sealog_journal::block::EncodedBlock;
use sealog_journal::checkpoint::VerifierKey;
use sealog_journal::merkle::Hash;
use sealog_journal::verify::{verify_frames, Evidence, Report, StoredFrame};
use sealog_journal::{JournalError, Result};

use crate::db;

/// Blocks read per query.
const CHUNK: i64 = 256;

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
    let mut tx = c
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(|e| db(op, &e))?;
    let row = tx
        .query_opt(
            "SELECT checkpoint FROM sealog_realms WHERE name = $1",
            &[&realm],
        )
        .map_err(|e| db(op, &e))?
        .ok_or_else(|| JournalError::Store {
            op,
            reason: format!("there is no realm {realm} in this PostgreSQL database"),
        })?;
    let mark: Option<String> = row.get(0);
    let checkpoints: Vec<(i64, String)> = tx
        .query(
            "SELECT size, note FROM sealog_checkpoints WHERE realm = $1 ORDER BY size",
            &[&realm],
        )
        .map_err(|e| db(op, &e))?
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let nodes: HashMap<i64, Vec<u8>> = tx
        .query(
            "SELECT position, hash FROM sealog_tree_nodes WHERE realm = $1",
            &[&realm],
        )
        .map_err(|e| db(op, &e))?
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut frames = Frames {
        tx,
        realm,
        checkpoints: checkpoints.into_iter().peekable(),
        buffered: std::collections::VecDeque::new(),
        next_seq: 0,
        done: false,
    };
    let mut node = |pos: u64| -> Result<Option<Hash>> {
        Ok(i64::try_from(pos)
            .ok()
            .and_then(|p| nodes.get(&p))
            .map(|h| Hash::try_from(h.as_slice()).unwrap_or([0xff; 32])))
    };
    verify_frames(realm, key, evidence, mark, &mut frames, &mut node, progress)
}

/// Blocks in seq order, each checkpoint after the blocks it covers.
struct Frames<'t, 'r> {
    tx: postgres::Transaction<'t>,
    realm: &'r str,
    checkpoints: std::iter::Peekable<std::vec::IntoIter<(i64, String)>>,
    buffered: std::collections::VecDeque<EncodedBlock>,
    /// The first seq of the next chunk of blocks to fetch.
    next_seq: i64,
    done: bool,
}

impl Frames<'_, '_> {
    fn fetch(&mut self) -> Result<()> {
        let rows = self
            .tx
            .query(
                "SELECT first_seq, count, min_time, max_time, crc, body FROM sealog_blocks WHERE realm = $1 AND first_seq >= $2 ORDER BY first_seq LIMIT $3",
                &[&self.realm, &self.next_seq, &CHUNK],
            )
            .map_err(|e| db("reading blocks from PostgreSQL for verify", &e))?;
        if rows.is_empty() {
            self.done = true;
        }
        for r in rows {
            let first: i64 = r.get(0);
            let count: i32 = r.get(1);
            let crc: i64 = r.get(4);
            self.next_seq = first + 1;
            self.buffered.push_back(EncodedBlock {
                first_seq: u64::try_from(first).unwrap_or(u64::MAX),
                count: u32::try_from(count).unwrap_or(0),
                min_time: r.get(2),
                max_time: r.get(3),
                // The low 32 bits: an out-of-range value is damage the
                // block's checksum or the Merkle log then reports.
                crc: (crc & 0xffff_ffff) as u32,
                body: r.get(5),
            });
        }
        Ok(())
    }
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
            (Some((size, _)), Some(b)) => u64::try_from(*size).unwrap_or(0) <= b.first_seq,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if cp_due {
            let (size, text) = self.checkpoints.next()?;
            return Some(Ok(StoredFrame::Checkpoint {
                size: u64::try_from(size).unwrap_or(u64::MAX),
                text,
            }));
        }
        self.buffered.pop_front().map(|b| Ok(StoredFrame::Block(b)))
    }
}
