//! [`PgLog`]: one realm's log in PostgreSQL.

use std::fmt;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Mutex;

use postgres::Client;
use sealog_journal::block::{self, DecodedBlock, EncodedBlock};
use sealog_journal::checkpoint::{origin_for, Checkpoint, SignedCheckpoint, Signer, VerifierKey};
use sealog_journal::merkle::{self, Frontier, Hash, SubtreeSource};
use sealog_journal::retention::{Notes, Outcome, Policy};
use sealog_journal::tree_file::{self, TILE_HEIGHT};
use sealog_journal::{
    BlockMeta, EventRef, JournalError, JournalOptions, LogStore, Poison, PreparedCommit, Receipt,
    Result, StagedCommit,
};

use crate::db;

/// Code run inside a commit's transaction, with the receipt it will give
/// ([`PgLog::append_with`]).
pub type CommitHook<'a> =
    dyn FnMut(&mut postgres::Transaction<'_>, HookPoint<'_>) -> Result<()> + 'a;

/// Where in a commit's transaction a [`CommitHook`] runs.
#[derive(Debug, Clone, Copy)]
pub enum HookPoint<'r> {
    /// First, before anything is written (a writer checks it still owns
    /// what it commits for).
    Begin,
    /// Last, before `COMMIT`, with the receipt the commit will give.
    End(&'r Receipt),
}

/// Blocks fetched per query by sequential reads.
const READ_CHUNK: i64 = 64;

/// A commit between its steps: everything it will write in one transaction.
#[derive(Debug)]
struct Staged {
    first_seq: u64,
    blocks: Vec<EncodedBlock>,
    metas: Vec<BlockMeta>,
    nodes: Vec<(u64, Hash)>,
    frontier: Frontier,
    signed: Option<SignedCheckpoint>,
}

/// The realm row as read.
struct RealmRow {
    verifier: String,
    size: u64,
    epoch: i64,
    frontier: Vec<u8>,
    checkpoint: Option<String>,
}

/// One realm's log in PostgreSQL, open for writing (its owner: it bumped
/// the realm's epoch on open) or for reading.
pub struct PgLog {
    db: Mutex<Client>,
    url: String,
    realm: String,
    /// `None` when open for reading: appends are refused.
    signer: Option<Signer>,
    /// Who this writer says it is (logged and kept in the realm row).
    owner: String,
    verifier: VerifierKey,
    opts: JournalOptions,
    blocks: Vec<BlockMeta>,
    frontier: Frontier,
    latest: Option<SignedCheckpoint>,
    epoch: i64,
    poison: Option<Poison>,
    staged: Option<Staged>,
}

impl fmt::Debug for PgLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgLog")
            .field("realm", &self.realm)
            .field("size", &self.frontier.size())
            .field("epoch", &self.epoch)
            .field("writer", &self.signer.is_some())
            .field("poison", &self.poison)
            .finish_non_exhaustive()
    }
}

/// Where a block of `realm` is, for error messages.
fn block_path(realm: &str, first_seq: u64) -> PathBuf {
    PathBuf::from(format!(
        "postgresql:sealog_blocks(realm={realm}, first_seq={first_seq})"
    ))
}

fn realm_path(realm: &str) -> PathBuf {
    PathBuf::from(format!("postgresql:sealog_realms(name={realm})"))
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u64_of(v: i64, what: &str, realm: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| JournalError::Corrupt {
        seq: 0,
        reason: format!("{what} is negative ({v})"),
        path: realm_path(realm),
    })
}

/// The realm row from its columns (verifier, size, epoch, frontier,
/// checkpoint), refusing values of the wrong type or out of range.
fn realm_row(r: &postgres::Row, realm: &str) -> Result<RealmRow> {
    let op = "reading the realm from PostgreSQL";
    let cols = (|| -> std::result::Result<_, postgres::Error> {
        Ok((
            r.try_get::<_, String>(0)?,
            r.try_get::<_, i64>(1)?,
            r.try_get::<_, i64>(2)?,
            r.try_get::<_, Vec<u8>>(3)?,
            r.try_get::<_, Option<String>>(4)?,
        ))
    })()
    .map_err(|e| db(op, &e))?;
    Ok(RealmRow {
        verifier: cols.0,
        size: u64_of(cols.1, "the realm's size", realm)?,
        epoch: cols.2,
        frontier: cols.3,
        checkpoint: cols.4,
    })
}

impl PgLog {
    /// Opens `realm` for writing, creating it when it is new, and takes it
    /// over: its owner epoch goes up by one, so any other writer's commits
    /// are refused from now on. `owner` names this writer in the realm row
    /// and in the message another writer gets.
    ///
    /// # Errors
    /// The database unreachable; the realm signed by another key; stored
    /// state that does not match its signed checkpoint.
    pub fn open_writer(
        url: &str,
        realm: &str,
        signer: Signer,
        owner: &str,
        opts: JournalOptions,
    ) -> Result<Self> {
        let op = "taking over the realm in PostgreSQL";
        if signer.verifier().name() != origin_for(realm) {
            return Err(JournalError::Batch(format!(
                "signing key is named {:?}, not {:?}",
                signer.verifier().name(),
                origin_for(realm)
            )));
        }
        let mut c = crate::connect(url)?;
        let want = signer.verifier().to_string();
        let mut tx = c.transaction().map_err(|e| db(op, &e))?;
        tx.execute(
            "INSERT INTO sealog_realms (name, verifier) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&realm, &want],
        )
        .map_err(|e| db(op, &e))?;
        let row = tx
            .query_one(
                "UPDATE sealog_realms SET epoch = epoch + 1, owner = $2 WHERE name = $1 RETURNING verifier, epoch",
                &[&realm, &owner],
            )
            .map_err(|e| db(op, &e))?;
        let (have, epoch): (String, i64) = (row.get(0), row.get(1));
        if have != want {
            return Err(JournalError::Store {
                op,
                reason: format!(
                    "realm {realm} in PostgreSQL is signed by key {have}, not this writer's {want}"
                ),
            });
        }
        tx.commit().map_err(|e| db(op, &e))?;
        let verifier = signer.verifier();
        let mut log = Self {
            db: Mutex::new(c),
            url: url.to_string(),
            realm: realm.to_string(),
            signer: Some(signer),
            owner: owner.to_string(),
            verifier,
            opts,
            blocks: Vec::new(),
            frontier: Frontier::new(),
            latest: None,
            epoch,
            poison: None,
            staged: None,
        };
        log.load()?;
        tracing::info!(
            realm,
            owner,
            epoch,
            size = log.size(),
            "took over the realm in PostgreSQL"
        );
        Ok(log)
    }

    /// Opens `realm` for reading, checked against `verifier` when given
    /// (else against the key the realm row names).
    ///
    /// # Errors
    /// The database unreachable; no such realm; a realm row naming another
    /// key than `verifier`; stored state that does not match its checkpoint.
    pub fn open_reader(url: &str, realm: &str, verifier: Option<&VerifierKey>) -> Result<Self> {
        let mut c = crate::connect_reader(url)?;
        let verifier = match verifier {
            Some(v) => v.clone(),
            None => {
                // Read the key first; load() checks everything else.
                let row = Self::row_of(&mut c, realm)?;
                row.verifier.parse().map_err(|e| JournalError::Corrupt {
                    seq: 0,
                    reason: format!("the realm's verifier key does not parse: {e}"),
                    path: realm_path(realm),
                })?
            }
        };
        let mut log = Self {
            db: Mutex::new(c),
            url: url.to_string(),
            realm: realm.to_string(),
            signer: None,
            owner: String::new(),
            verifier,
            opts: JournalOptions::default(),
            blocks: Vec::new(),
            frontier: Frontier::new(),
            latest: None,
            epoch: 0,
            poison: None,
            staged: None,
        };
        log.load()?;
        Ok(log)
    }

    /// Commits blocks sealed by another store (a migration) byte for byte,
    /// with the checkpoint note signed for them there, after checking that
    /// the records give exactly the tree that note was signed for: a
    /// migration copies a log, it never re-signs one.
    ///
    /// # Errors
    /// A note that does not verify with this realm's key; blocks that do
    /// not decode or do not give the note's root (the source was altered);
    /// records removed by retention (not migrated yet); as
    /// [`LogStore::append`].
    pub fn import_commit(
        &mut self,
        first_seq: u64,
        blocks: Vec<EncodedBlock>,
        checkpoint: &str,
    ) -> Result<Receipt> {
        let want = self.verifier.verify(checkpoint)?;
        let mut sealed = Vec::with_capacity(blocks.len());
        for b in blocks {
            let d = block::decode(&b.body, b.count, b.crc).map_err(|e| JournalError::Corrupt {
                seq: b.first_seq,
                reason: format!("block to migrate: {e}"),
                path: PathBuf::from("(the source of the migration)"),
            })?;
            if (0..d.len()).any(|k| d.is_retained(k)) {
                return Err(JournalError::Batch(format!(
                    "the block at seq {} holds records removed by retention; such realms cannot be migrated yet",
                    b.first_seq
                )));
            }
            let hashes = (0..d.len()).map(|k| merkle::leaf_hash(d.line(k))).collect();
            sealed.push((b, hashes));
        }
        let s = self.stage_blocks(PreparedCommit::from_sealed(first_seq, sealed)?)?;
        let staged = self.staged.as_mut().expect("stage_blocks staged it");
        if staged.frontier.size() != want.size || staged.frontier.root() != want.root {
            self.staged = None;
            return Err(JournalError::Fork {
                size: want.size,
                path: PathBuf::from("(the source of the migration)"),
            });
        }
        staged.signed = Some(SignedCheckpoint {
            checkpoint: want,
            text: checkpoint.to_string(),
        });
        self.finish_commit(s)
    }

    /// The realm's owner epoch as this store last saw it.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// Reads what other writers committed since this store last looked (a
    /// reader following the log; a writer never needs it).
    ///
    /// # Errors
    /// As [`PgLog::open_reader`].
    pub fn refresh(&mut self) -> Result<()> {
        self.load()
    }

    fn row_of(c: &mut Client, realm: &str) -> Result<RealmRow> {
        let op = "reading the realm from PostgreSQL";
        let row = c
            .query_opt(
                "SELECT verifier, size, epoch, frontier, checkpoint FROM sealog_realms WHERE name = $1",
                &[&realm],
            )
            .map_err(|e| db(op, &e))?
            .ok_or_else(|| JournalError::Store {
                op,
                reason: format!("there is no realm {realm} in this PostgreSQL database"),
            })?;
        realm_row(&row, realm)
    }

    fn client(&self) -> std::sync::MutexGuard<'_, Client> {
        // A panic while holding the client leaves it usable (a query is
        // either done or the connection errors on the next one).
        self.db
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Loads the realm row and the block index, and checks them against
    /// each other and against the signed checkpoint.
    fn load(&mut self) -> Result<()> {
        let realm = self.realm.clone();
        let (row, metas) = {
            let mut c = self.client();
            let mut tx = crate::snapshot(&mut c, "reading the realm from PostgreSQL")?;
            let row = {
                let r = tx
                    .query_opt(
                        "SELECT verifier, size, epoch, frontier, checkpoint FROM sealog_realms WHERE name = $1",
                        &[&realm],
                    )
                    .map_err(|e| db("reading the realm from PostgreSQL", &e))?
                    .ok_or_else(|| JournalError::Store {
                        op: "reading the realm from PostgreSQL",
                        reason: format!("there is no realm {realm} in this PostgreSQL database"),
                    })?;
                realm_row(&r, &realm)?
            };
            let rows = tx
                .query(
                    "SELECT first_seq, count, min_time, max_time, length(body), crc FROM sealog_blocks WHERE realm = $1 ORDER BY first_seq",
                    &[&realm],
                )
                .map_err(|e| db("reading the block index from PostgreSQL", &e))?;
            tx.commit()
                .map_err(|e| db("reading the realm from PostgreSQL", &e))?;
            let mut metas = Vec::with_capacity(rows.len());
            for r in rows {
                let cols = (|| -> std::result::Result<_, postgres::Error> {
                    Ok((
                        r.try_get::<_, i64>(0)?,
                        r.try_get::<_, i32>(1)?,
                        (r.try_get::<_, i64>(2)?, r.try_get::<_, i64>(3)?),
                        r.try_get::<_, Option<i32>>(4)?,
                        r.try_get::<_, i64>(5)?,
                    ))
                })()
                .map_err(|e| db("reading the block index from PostgreSQL", &e))?;
                let (first, count, times, len, crc) = cols;
                let first = u64_of(first, "a block's first seq", &realm)?;
                let bad = |what: &str| JournalError::Corrupt {
                    seq: first,
                    reason: format!("block row has {what}"),
                    path: block_path(&realm, first),
                };
                let count = u32::try_from(count)
                    .ok()
                    .filter(|c| (1..=block::MAX_BLOCK_RECORDS as u32).contains(c))
                    .ok_or_else(|| bad(&format!("a count of {count}")))?;
                metas.push(BlockMeta::stored_elsewhere(
                    first,
                    count,
                    times,
                    len.and_then(|l| u32::try_from(l).ok())
                        .ok_or_else(|| bad("no body"))?,
                    u32::try_from(crc).map_err(|_| bad("a CRC out of range"))?,
                ));
            }
            (row, metas)
        };
        if row.verifier != self.verifier.to_string() {
            return Err(JournalError::Store {
                op: "opening the realm in PostgreSQL",
                reason: format!(
                    "realm {realm} is signed by key {}, not {}",
                    row.verifier, self.verifier
                ),
            });
        }
        let mut end = 0u64;
        for m in &metas {
            if m.first_seq != end {
                return Err(JournalError::Corrupt {
                    seq: end,
                    reason: format!(
                        "the blocks leave a gap or overlap: a block starts at seq {} where {end} was expected",
                        m.first_seq
                    ),
                    path: block_path(&realm, m.first_seq),
                });
            }
            end += u64::from(m.count);
        }
        if end != row.size {
            return Err(JournalError::Rollback {
                size: end,
                marked: row.size,
                path: realm_path(&realm),
            });
        }
        let hashes: Vec<Hash> = row
            .frontier
            .chunks(32)
            .map(|c| Hash::try_from(c).unwrap_or([0; 32]))
            .collect();
        let frontier =
            Frontier::from_subtrees(row.size, &hashes).map_err(|e| JournalError::Corrupt {
                seq: row.size,
                reason: format!("the stored frontier does not fit size {}: {e}", row.size),
                path: realm_path(&realm),
            })?;
        let latest = match &row.checkpoint {
            None if row.size == 0 => None,
            None => {
                return Err(JournalError::Corrupt {
                    seq: 0,
                    reason: format!("{} records but no signed checkpoint", row.size),
                    path: realm_path(&realm),
                })
            }
            Some(text) => {
                let cp = self.verifier.verify(text)?;
                if cp.size != row.size || cp.root != frontier.root() {
                    return Err(JournalError::Fork {
                        size: cp.size,
                        path: realm_path(&realm),
                    });
                }
                Some(SignedCheckpoint {
                    checkpoint: cp,
                    text: text.clone(),
                })
            }
        };
        // What this store already saw (and may have signed receipts for)
        // must still be there: a database restored from a backup, or failed
        // over to a standby that lacks the last commits, is refused rather
        // than appended to, which would sign a second history.
        let seen = self
            .latest
            .as_ref()
            .map(|c| (c.checkpoint.size, c.checkpoint.root));
        if let Some((old_size, _)) = seen {
            if row.size < old_size {
                return Err(JournalError::Rollback {
                    size: row.size,
                    marked: old_size,
                    path: realm_path(&realm),
                });
            }
        }
        if self.signer.is_some() && row.epoch != self.epoch {
            return Err(JournalError::Fenced(format!(
                "realm {realm} is now at owner epoch {} (this writer, {}, holds epoch {}): another writer took it over",
                row.epoch, self.owner, self.epoch
            )));
        }
        if self.signer.is_none() {
            self.epoch = row.epoch;
        }
        let previous = (
            std::mem::replace(&mut self.blocks, metas),
            std::mem::replace(&mut self.frontier, frontier),
            std::mem::replace(&mut self.latest, latest),
        );
        if let Some((old_size, old_root)) = seen {
            // The new tree must extend the one seen before.
            let root = self.root_at(old_size);
            if !matches!(&root, Ok(r) if *r == old_root) {
                (self.blocks, self.frontier, self.latest) = previous;
                root?;
                return Err(JournalError::Fork {
                    size: old_size,
                    path: realm_path(&realm),
                });
            }
        }
        Ok(())
    }

    fn index_of(&self, seq: u64) -> Option<usize> {
        let i = self.blocks.partition_point(|b| b.first_seq <= seq);
        let i = i.checked_sub(1)?;
        let b = &self.blocks[i];
        (seq < b.first_seq + u64::from(b.count)).then_some(i)
    }

    fn decode(&self, m: &BlockMeta, body: &[u8], crc: i64) -> Result<DecodedBlock> {
        let corrupt = |reason: String| JournalError::Corrupt {
            seq: m.first_seq,
            reason,
            path: block_path(&self.realm, m.first_seq),
        };
        if crc != i64::from(m.crc()) {
            return Err(corrupt(format!(
                "the block's stored CRC changed from {:08x} to {crc:08x} since it was indexed",
                m.crc()
            )));
        }
        block::decode(body, m.count, m.crc()).map_err(|e| {
            corrupt(format!(
                "block of seqs {}..{}: {e}",
                m.first_seq,
                m.first_seq + u64::from(m.count)
            ))
        })
    }

    /// Blocks `[i, i + n)` of the index, decoded.
    fn read_blocks(&self, i: usize, n: usize) -> Result<Vec<DecodedBlock>> {
        let Some(first) = self.blocks.get(i) else {
            return Ok(Vec::new());
        };
        let last = &self.blocks[(i + n).min(self.blocks.len()) - 1];
        let rows = self
            .client()
            .query(
                "SELECT first_seq, crc, body FROM sealog_blocks WHERE realm = $1 AND first_seq BETWEEN $2 AND $3 ORDER BY first_seq",
                &[&self.realm, &i64_of(first.first_seq), &i64_of(last.first_seq)],
            )
            .map_err(|e| db("reading blocks from PostgreSQL", &e))?;
        let want = (i + n).min(self.blocks.len()) - i;
        if rows.len() != want {
            return Err(JournalError::Corrupt {
                seq: first.first_seq,
                reason: format!(
                    "{} of the {want} block rows from seq {} are missing",
                    want.saturating_sub(rows.len()),
                    first.first_seq
                ),
                path: block_path(&self.realm, first.first_seq),
            });
        }
        rows.iter()
            .zip(&self.blocks[i..i + want])
            .map(|(r, m)| {
                let at: i64 = r.get(0);
                if at != i64_of(m.first_seq) {
                    return Err(JournalError::Corrupt {
                        seq: m.first_seq,
                        reason: format!("block row for seq {} is missing", m.first_seq),
                        path: block_path(&self.realm, m.first_seq),
                    });
                }
                self.decode(m, r.get(2), r.get(1))
            })
            .collect()
    }

    /// How many blocks from index `i` to fetch at once to reach seq `to`:
    /// those it needs, at most [`READ_CHUNK`].
    fn blocks_for(&self, i: usize, to: u64) -> usize {
        let end = self.blocks.partition_point(|b| b.first_seq < to);
        end.saturating_sub(i).clamp(1, READ_CHUNK as usize)
    }

    fn blocks_end(&self) -> u64 {
        self.blocks
            .last()
            .map_or(0, |b| b.first_seq + u64::from(b.count))
    }

    fn check_size(&self, size: u64) -> Result<()> {
        if size > self.size() {
            return Err(JournalError::OutOfRange {
                from: 0,
                to: size,
                size: self.size(),
            });
        }
        Ok(())
    }

    /// The tree's items over `[from, to)`, as the journal's `read_items`.
    fn read_items(&self, from: u64, to: u64) -> Result<Vec<(u64, u32, Hash)>> {
        let mut out = Vec::new();
        let Some(mut i) = self.index_of(from) else {
            return Ok(out);
        };
        while i < self.blocks.len() && self.blocks[i].first_seq < to {
            let batch = self.read_blocks(i, self.blocks_for(i, to))?;
            for b in &batch {
                let first = self.blocks[i].first_seq;
                if first >= to {
                    return Ok(out);
                }
                sealog_journal::store::push_block_items(first, b, from, to, &mut out);
                i += 1;
            }
        }
        Ok(out)
    }

    fn fenced_or_poisoned(&mut self, e: JournalError) -> JournalError {
        self.poison = Some(Poison {
            cause: e.to_string(),
            storage_full: false,
        });
        e
    }

    /// Appends `events` as [`LogStore::append`] does, running `hook` inside
    /// the commit's transaction once everything else is written and before
    /// it commits, with the receipt the commit will give: the cluster's
    /// writer records its Kafka positions and notifies the ingest nodes
    /// there, so they commit (or not) with the records. An error from
    /// `hook` rolls the whole commit back and poisons the store.
    ///
    /// # Errors
    /// As [`LogStore::append`]; what `hook` returns.
    pub fn append_with(
        &mut self,
        events: &[EventRef<'_>],
        hook: &mut CommitHook<'_>,
    ) -> Result<Receipt> {
        let p = sealog_journal::prepare(
            &self.realm,
            self.size(),
            events,
            sealog_event::now_ns(),
            self.opts.compression_level,
        )?;
        let s = self.stage_blocks(p)?;
        let s = self.stage_checkpoint(s)?;
        self.finish(s, Some(hook))
    }

    /// The commit's last step, with an optional hook in its transaction.
    fn finish(&mut self, s: StagedCommit, hook: Option<&mut CommitHook<'_>>) -> Result<Receipt> {
        let Some(staged) = self.staged.take() else {
            return Err(JournalError::Batch("no commit is staged here".into()));
        };
        if staged.first_seq != s.first_seq() {
            return Err(JournalError::Batch("a commit staged elsewhere".into()));
        }
        let count = s.count();
        let signed = staged
            .signed
            .clone()
            .ok_or_else(|| JournalError::Batch("the commit has no checkpoint yet".into()))?;
        let receipt = Receipt {
            realm: self.realm.clone(),
            first_seq: staged.first_seq,
            last_seq: staged.first_seq + count - 1,
            count,
            checkpoint: signed.text.clone(),
        };
        if let Err(e) = self.write(&staged, &receipt, hook) {
            // Whether an interrupted COMMIT applied is unknown until the
            // realm is read again: nothing more is written until then.
            tracing::warn!(realm = %self.realm, error = %e, "commit to PostgreSQL failed");
            return Err(self.fenced_or_poisoned(e));
        }
        self.blocks.extend(staged.metas);
        self.frontier = staged.frontier;
        self.latest = Some(signed);
        Ok(receipt)
    }

    /// Writes a staged commit in one transaction, fenced on the realm's
    /// size and this writer's epoch.
    fn write(
        &self,
        s: &Staged,
        receipt: &Receipt,
        hook: Option<&mut CommitHook<'_>>,
    ) -> Result<()> {
        let op = "committing to PostgreSQL";
        let signed = s
            .signed
            .as_ref()
            .ok_or_else(|| JournalError::Batch("the commit has no checkpoint yet".into()))?;
        let mut c = self.client();
        let mut tx = c.transaction().map_err(|e| db(op, &e))?;
        // A receipt means the WAL is flushed, whatever the role, database
        // or URL sets.
        tx.batch_execute("SET LOCAL synchronous_commit = on")
            .map_err(|e| db(op, &e))?;
        let mut hook = hook;
        if let Some(h) = hook.as_mut() {
            h(&mut tx, HookPoint::Begin)?;
        }
        let frontier: Vec<u8> = s.frontier.subtrees().flat_map(|(_, _, h)| h).collect();
        let new_size = i64_of(s.frontier.size());
        let n = tx
            .execute(
                "UPDATE sealog_realms SET size = $1, frontier = $2, checkpoint = $3 WHERE name = $4 AND size = $5 AND epoch = $6",
                &[&new_size, &frontier, &signed.text, &self.realm, &i64_of(s.first_seq), &self.epoch],
            )
            .map_err(|e| db(op, &e))?;
        if n != 1 {
            let now = tx
                .query_opt(
                    "SELECT size, epoch, coalesce(owner, '') FROM sealog_realms WHERE name = $1",
                    &[&self.realm],
                )
                .map_err(|e| db(op, &e))?;
            let (size, epoch, owner) = now
                .and_then(|r| {
                    Some((
                        r.try_get::<_, i64>(0).ok()?,
                        r.try_get::<_, i64>(1).ok()?,
                        r.try_get::<_, String>(2).ok()?,
                    ))
                })
                .unwrap_or((-1, -1, String::new()));
            if epoch == self.epoch {
                return Err(JournalError::Batch(format!(
                    "commit of seqs {}.. to realm {} refused: PostgreSQL has size {size} at this writer's own epoch {epoch}, so the realm changed behind this writer (an earlier commit whose answer was lost applied, or the database went back); recover() reads the realm again",
                    s.first_seq, self.realm
                )));
            }
            return Err(JournalError::Fenced(format!(
                "commit of seqs {}.. to realm {} refused: this writer ({}) holds owner epoch {} at size {}, but PostgreSQL has epoch {epoch} at size {size} (owner {owner}); another writer took the realm over, so this one stops rather than fork the log",
                s.first_seq, self.realm, self.owner, self.epoch, s.first_seq
            )));
        }
        let insert = tx
            .prepare(
                "INSERT INTO sealog_blocks (realm, first_seq, count, min_time, max_time, crc, body) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .map_err(|e| db(op, &e))?;
        for b in &s.blocks {
            tx.execute(
                &insert,
                &[
                    &self.realm,
                    &i64_of(b.first_seq),
                    &i32::try_from(b.count).unwrap_or(i32::MAX),
                    &b.min_time,
                    &b.max_time,
                    &i64::from(b.crc),
                    &b.body,
                ],
            )
            .map_err(|e| db(op, &e))?;
        }
        if !s.nodes.is_empty() {
            let positions: Vec<i64> = s.nodes.iter().map(|(p, _)| i64_of(*p)).collect();
            let hashes: Vec<&[u8]> = s.nodes.iter().map(|(_, h)| &h[..]).collect();
            tx.execute(
                "INSERT INTO sealog_tree_nodes (realm, position, hash) SELECT $1, p, h FROM unnest($2::bigint[], $3::bytea[]) AS t(p, h)",
                &[&self.realm, &positions, &hashes],
            )
            .map_err(|e| db(op, &e))?;
        }
        tx.execute(
            "INSERT INTO sealog_checkpoints (realm, size, note) VALUES ($1, $2, $3)",
            &[&self.realm, &new_size, &signed.text],
        )
        .map_err(|e| db(op, &e))?;
        if let Some(h) = hook.as_mut() {
            h(&mut tx, HookPoint::End(receipt))?;
        }
        tx.commit().map_err(|e| db(op, &e))
    }
}

impl LogStore for PgLog {
    fn realm(&self) -> &str {
        &self.realm
    }

    fn size(&self) -> u64 {
        self.frontier.size()
    }

    fn verifier(&self) -> &VerifierKey {
        &self.verifier
    }

    fn latest_checkpoint(&self) -> Option<&SignedCheckpoint> {
        self.latest.as_ref()
    }

    fn options(&self) -> JournalOptions {
        self.opts
    }

    fn append(&mut self, events: &[EventRef<'_>]) -> Result<Receipt> {
        self.append_with(events, &mut |_, _| Ok(()))
    }

    fn stage_blocks(&mut self, p: PreparedCommit) -> Result<StagedCommit> {
        if self.poison.is_some() {
            return Err(JournalError::Poisoned);
        }
        if self.signer.is_none() {
            return Err(JournalError::Batch(format!(
                "realm {} is open for reading here; only its writer appends",
                self.realm
            )));
        }
        if self.staged.is_some() {
            return Err(JournalError::Batch("another commit is staged".into()));
        }
        let count = p.count();
        if count == 0 {
            return Err(JournalError::Batch("nothing to append".into()));
        }
        if p.first_seq() != self.size() {
            return Err(JournalError::Batch(format!(
                "batch prepared for seq {} but the log is at {}",
                p.first_seq(),
                self.size()
            )));
        }
        let first_seq = p.first_seq();
        let mut frontier = self.frontier.clone();
        let mut nodes = Vec::new();
        let mut blocks = Vec::new();
        let mut metas = Vec::new();
        for (b, hashes) in p.into_blocks() {
            for h in &hashes {
                frontier.push(*h, |height, index, hash| {
                    if height >= TILE_HEIGHT {
                        nodes.push((tree_file::position(height - TILE_HEIGHT, index), *hash));
                    }
                });
            }
            metas.push(BlockMeta::stored_elsewhere(
                b.first_seq,
                b.count,
                (b.min_time, b.max_time),
                b.body.len() as u32,
                b.crc,
            ));
            blocks.push(b);
        }
        self.staged = Some(Staged {
            first_seq,
            blocks,
            metas,
            nodes,
            frontier,
            signed: None,
        });
        Ok(StagedCommit::elsewhere(first_seq, count))
    }

    fn stage_checkpoint(&mut self, s: StagedCommit) -> Result<StagedCommit> {
        let (Some(staged), Some(signer)) = (self.staged.as_mut(), self.signer.as_ref()) else {
            return Err(JournalError::Batch("no commit is staged here".into()));
        };
        if staged.first_seq != s.first_seq() {
            return Err(JournalError::Batch("a commit staged elsewhere".into()));
        }
        staged.signed = Some(signer.sign(&Checkpoint {
            origin: origin_for(&self.realm),
            size: staged.frontier.size(),
            root: staged.frontier.root(),
        }));
        Ok(s)
    }

    fn finish_commit(&mut self, s: StagedCommit) -> Result<Receipt> {
        self.finish(s, None)
    }

    fn abort_commit(&mut self, _s: StagedCommit, cause: &JournalError) {
        self.staged = None;
        self.poison = Some(Poison {
            cause: cause.to_string(),
            storage_full: cause.is_storage_full(),
        });
    }

    fn poison(&self) -> Option<&Poison> {
        self.poison.as_ref()
    }

    fn recover(&mut self) -> Result<()> {
        if self.poison.is_none() {
            return Ok(());
        }
        self.staged = None;
        let closed = self.client().is_closed();
        if closed {
            let c = crate::connect(&self.url)?;
            *self.client() = c;
        }
        // The realm as committed: a COMMIT whose answer was lost may have
        // applied (its records are then there, unacknowledged).
        self.load()?;
        self.poison = None;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    fn flush_mark(&mut self) -> Result<()> {
        Ok(())
    }

    fn blocks(&self) -> &[BlockMeta] {
        &self.blocks
    }

    fn read_block(&self, i: usize) -> Result<DecodedBlock> {
        if i >= self.blocks.len() {
            return Err(JournalError::OutOfRange {
                from: i as u64,
                to: i as u64 + 1,
                size: self.blocks.len() as u64,
            });
        }
        self.read_blocks(i, 1)?
            .pop()
            .ok_or_else(|| JournalError::Corrupt {
                seq: self.blocks[i].first_seq,
                reason: "block row is missing".into(),
                path: block_path(&self.realm, self.blocks[i].first_seq),
            })
    }

    fn read(
        &self,
        from: u64,
        to: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> ControlFlow<()>,
    ) -> Result<()> {
        if from > to || to > self.blocks_end() {
            return Err(JournalError::OutOfRange {
                from,
                to,
                size: self.blocks_end(),
            });
        }
        let Some(mut i) = self.index_of(from).filter(|_| from < to) else {
            return Ok(());
        };
        let mut seq = from;
        while seq < to && i < self.blocks.len() {
            for b in self.read_blocks(i, self.blocks_for(i, to))? {
                let first = self.blocks[i].first_seq;
                for k in (seq - first) as usize..b.len() {
                    if seq >= to {
                        return Ok(());
                    }
                    if !b.is_retained(k) && visit(seq, b.line(k)).is_break() {
                        return Ok(());
                    }
                    seq += 1;
                }
                i += 1;
            }
        }
        Ok(())
    }

    fn inclusion_proof(&self, seq: u64, size: u64) -> Result<Vec<Hash>> {
        self.check_size(size)?;
        merkle::inclusion_proof(self, seq, size)
    }

    fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>> {
        self.check_size(new)?;
        merkle::consistency_proof(self, old, new)
    }

    fn range_proof(&self, from: u64, to: u64, size: u64) -> Result<Vec<Hash>> {
        self.check_size(size)?;
        merkle::range_proof(self, from, to, size)
    }

    fn root_at(&self, size: u64) -> Result<Hash> {
        self.check_size(size)?;
        if size == 0 {
            return Ok(merkle::empty_root());
        }
        self.subtree(0, size)
    }

    fn stored_node(&self, height: u32, index: u64) -> Result<Option<Hash>> {
        if height < TILE_HEIGHT {
            return Ok(None);
        }
        let pos = i64_of(tree_file::position(height - TILE_HEIGHT, index));
        let row = self
            .client()
            .query_opt(
                "SELECT hash FROM sealog_tree_nodes WHERE realm = $1 AND position = $2",
                &[&self.realm, &pos],
            )
            .map_err(|e| db("reading a tree hash from PostgreSQL", &e))?;
        Ok(row.and_then(|r| Hash::try_from(r.get::<_, &[u8]>(0)).ok()))
    }

    fn retain(&mut self, _policy: &Policy<'_>, _now_ns: i64, _dry_run: bool) -> Result<Outcome> {
        Err(JournalError::Batch(
            "retention runs on the embedded store; the PostgreSQL store does not remove records yet"
                .into(),
        ))
    }

    fn retention_records(&self) -> Result<Notes> {
        Ok(Notes::default())
    }
}

impl SubtreeSource for PgLog {
    type Error = JournalError;

    fn subtree(&self, start: u64, end: u64) -> Result<Hash> {
        sealog_journal::store::tiled_subtree(start, end, &|h, i| self.stored_node(h, i), &|a, b| {
            self.read_items(a, b)
        })
    }
}
