//! One realm in the server: its journal, the bounded queue of commit
//! requests, and the writer thread that drains it.
//!
//! Only the writer thread appends. It takes every request waiting in the
//! queue (up to `max_group_records` records), seals them as one commit with
//! one pair of fsyncs and one signed checkpoint, and answers each request
//! with a receipt for its own seqs. Readers take the journal's read lock per
//! block, so a long query never holds up commits for long; the writer holds
//! the write lock only to write and publish, not across its fsyncs.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Instant;

use sealog_journal::{prepare, EventRef, JournalError, LogStore, Receipt};
use tokio::sync::{mpsc, oneshot, watch};

use crate::metrics::Metrics;

/// Why a commit was not acknowledged: typed so every ingest path answers
/// it the same way (HTTP maps it in [`crate::error`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    /// The disk or quota is full; the realm recovers by itself once space
    /// is freed.
    #[error("storage is full; nothing was committed; retry once space is freed ({0})")]
    StorageFull(String),
    /// An earlier write failed; the realm refuses writes until a probe
    /// write succeeds (it retries by itself).
    #[error("realm refuses writes after a write failure ({0}); retry later")]
    Poisoned(String),
    /// The realm failed an integrity check and takes no writes.
    #[error("realm is failed: {0}")]
    Failed(String),
    /// The batch itself is unacceptable (e.g. an event over the size cap).
    #[error("{0}")]
    Invalid(String),
    /// The realm is closing.
    #[error("realm is closing")]
    Closed,
    /// Any other I/O failure; nothing was acknowledged.
    #[error("commit failed: {0}")]
    Io(String),
}

impl From<JournalError> for CommitError {
    fn from(e: JournalError) -> Self {
        if e.is_storage_full() {
            return CommitError::StorageFull(e.to_string());
        }
        match e {
            JournalError::Poisoned => {
                CommitError::Poisoned("an earlier write or fsync failed".into())
            }
            JournalError::EventTooLarge { .. } => CommitError::Invalid(e.to_string()),
            e if e.is_integrity() => CommitError::Failed(e.to_string()),
            // A write or fsync error during a commit poisons the journal:
            // the realm refuses writes until its recovery probe succeeds.
            e @ JournalError::Io { .. } => CommitError::Poisoned(e.to_string()),
            e => CommitError::Io(e.to_string()),
        }
    }
}

/// A batch of validated events waiting to be committed.
#[derive(Debug)]
pub struct CommitRequest {
    /// The bytes the events live in.
    pub buf: Vec<u8>,
    /// Each event's byte range in `buf` and its own time.
    pub events: Vec<(Range<usize>, Option<i64>)>,
    /// Where the receipt goes.
    pub reply: oneshot::Sender<Result<Receipt, CommitError>>,
}

/// Why a commit request was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum QueueError {
    /// The queue is full: the sender should retry later.
    Full,
    /// The realm is closing.
    Closed,
}

/// A realm's log store, shared by its writer and its readers.
pub type SharedLog = Arc<RwLock<Box<dyn LogStore>>>;

/// A realm's journal and its writer.
#[derive(Debug)]
pub struct RealmHandle {
    name: String,
    journal: SharedLog,
    queue: RwLock<Option<mpsc::Sender<CommitRequest>>>,
    committed: watch::Receiver<u64>,
    writer: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// Event bytes queued or being committed, and the most allowed.
    queued: Arc<AtomicUsize>,
    max_queued: usize,
    /// Set when the realm failed an integrity check: it takes no writes
    /// and answers 503 on every endpoint.
    failed: Arc<RwLock<Option<String>>>,
    /// Records whose hashes the background verifier recomputed and found
    /// to match a signed checkpoint (0 until its first pass ends).
    verified_through: AtomicU64,
    /// This realm's fair share of HTTP ingest: requests in flight, and KiB
    /// of bodies held ([`crate::front`]).
    pub(crate) ingest_slots: Arc<tokio::sync::Semaphore>,
    pub(crate) inflight_kib: Arc<tokio::sync::Semaphore>,
    /// This realm's share of live tail sessions.
    pub(crate) tail_slots: Arc<tokio::sync::Semaphore>,
}

impl RealmHandle {
    /// Starts the writer thread for `journal` under `limits`.
    pub fn start(
        journal: Box<dyn LogStore>,
        limits: &crate::config::Limits,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let (queue, max_queued_bytes, max_group) = (
            limits.commit_queue,
            limits.max_queued_bytes,
            limits.max_group_records,
        );
        let share_kib = (limits.max_realm_inflight_bytes.max(limits.max_body_bytes) / 1024)
            .clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        let name = journal.realm().to_string();
        let (tx, rx) = mpsc::channel(queue.max(1));
        let (size_tx, size_rx) = watch::channel(journal.size());
        let journal = Arc::new(RwLock::new(journal));
        let j = journal.clone();
        let queued = Arc::new(AtomicUsize::new(0));
        let q = queued.clone();
        let failed = Arc::new(RwLock::new(None));
        let f = failed.clone();
        let thread_name = format!("sealog-seal-{name}");
        let writer = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || writer_loop(j, rx, size_tx, max_group.max(1), metrics, q, f))
            .expect("spawning a thread only fails when the OS is out of resources");
        Arc::new(Self {
            name,
            journal,
            queue: RwLock::new(Some(tx)),
            committed: size_rx,
            writer: std::sync::Mutex::new(Some(writer)),
            queued,
            max_queued: max_queued_bytes.max(1),
            failed,
            verified_through: AtomicU64::new(0),
            ingest_slots: Arc::new(tokio::sync::Semaphore::new(
                limits.max_realm_requests.max(1),
            )),
            inflight_kib: Arc::new(tokio::sync::Semaphore::new(share_kib)),
            tail_slots: Arc::new(tokio::sync::Semaphore::new(
                limits.max_realm_tail_sessions.max(1),
            )),
        })
    }

    /// Marks the realm failed: no more writes; every endpoint answers 503
    /// naming `reason`. It stays failed until the server restarts (and the
    /// check is repeated then).
    pub fn fail(&self, reason: String) {
        if let Ok(mut f) = self.failed.write() {
            if f.is_none() {
                tracing::error!(realm = %self.name, %reason, "realm failed an integrity check; it takes no writes and serves nothing until an operator looks");
                *f = Some(reason);
            }
        }
    }

    /// Passes `r` through; when it is [`ApiError::RealmFailed`] (committed
    /// data read back damaged), fails the realm first and names it, so the
    /// damage is not served or signed over until the next verifier pass.
    ///
    /// # Errors
    /// `r`'s error, with the realm named.
    pub fn guard<T>(
        &self,
        metrics: &Metrics,
        r: Result<T, crate::error::ApiError>,
    ) -> Result<T, crate::error::ApiError> {
        match r {
            Err(crate::error::ApiError::RealmFailed { reason, .. }) => {
                metrics.realm_failed(&self.name);
                self.fail(reason.clone());
                Err(crate::error::ApiError::RealmFailed {
                    realm: self.name.clone(),
                    reason,
                })
            }
            other => other,
        }
    }

    /// Why the realm is failed, if it is.
    pub fn failure(&self) -> Option<String> {
        self.failed.read().ok().and_then(|f| f.clone())
    }

    /// Records the background verifier has re-hashed and matched.
    pub fn verified_through(&self) -> u64 {
        self.verified_through.load(Ordering::Acquire)
    }

    /// Called by the verifier after a pass that matched through `size`.
    pub fn set_verified_through(&self, size: u64) {
        self.verified_through.fetch_max(size, Ordering::AcqRel);
    }

    /// The realm's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The journal, for reads (take the read lock briefly).
    pub fn journal(&self) -> &SharedLog {
        &self.journal
    }

    /// A receiver of the committed size, updated after every commit.
    pub fn committed(&self) -> watch::Receiver<u64> {
        self.committed.clone()
    }

    /// Queues a request without waiting.
    ///
    /// # Errors
    /// [`QueueError::Full`] or [`QueueError::Closed`].
    pub fn submit(&self, req: CommitRequest) -> Result<(), QueueError> {
        if req.events.is_empty() {
            // Nothing to commit is not a failed commit: answer it here.
            let _ = req
                .reply
                .send(Err(CommitError::Invalid("nothing to commit".into())));
            return Ok(());
        }
        let guard = self.queue.read().map_err(|_| QueueError::Closed)?;
        let tx = guard.as_ref().ok_or(QueueError::Closed)?;
        // Bound the bytes waiting as well as the requests: one request may
        // be 16 MiB. A lone request larger than the bound is still taken.
        let len = req.buf.len();
        let before = self.queued.fetch_add(len, Ordering::AcqRel);
        if before > 0 && before + len > self.max_queued {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            return Err(QueueError::Full);
        }
        tx.try_send(req).map_err(|e| {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            match e {
                mpsc::error::TrySendError::Full(_) => QueueError::Full,
                mpsc::error::TrySendError::Closed(_) => QueueError::Closed,
            }
        })
    }

    /// Queues a request, waiting for room instead of refusing: for stream
    /// listeners, where waiting stops reading the socket and TCP flow
    /// control slows the sender.
    ///
    /// # Errors
    /// [`QueueError::Closed`] when the realm is closing.
    pub async fn submit_wait(&self, req: CommitRequest) -> Result<(), QueueError> {
        if req.events.is_empty() {
            let _ = req
                .reply
                .send(Err(CommitError::Invalid("nothing to commit".into())));
            return Ok(());
        }
        let tx = {
            let guard = self.queue.read().map_err(|_| QueueError::Closed)?;
            guard.as_ref().ok_or(QueueError::Closed)?.clone()
        };
        let len = req.buf.len();
        loop {
            let before = self.queued.fetch_add(len, Ordering::AcqRel);
            if before == 0 || before + len <= self.max_queued {
                break;
            }
            self.queued.fetch_sub(len, Ordering::AcqRel);
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        tx.send(req).await.map_err(|_| {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            QueueError::Closed
        })
    }

    /// Stops taking requests, lets the writer commit what is queued, and
    /// waits for it; then flushes the journal's derived files.
    pub fn close(&self) {
        if let Ok(mut q) = self.queue.write() {
            q.take();
        }
        let handle = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
        if let Ok(mut j) = self.journal.write() {
            if let Err(e) = j.flush() {
                tracing::error!(realm = %self.name, cause = %e, "final sync failed");
            }
        }
    }
}

/// One request's buffer and its events' ranges and times.
type RawEvents = (Vec<u8>, Vec<(Range<usize>, Option<i64>)>);

/// What the sealer hands the committer: the sealed batch, the events it
/// was sealed from (to seal again at another seq after a failed commit),
/// and whom to answer.
struct Sealed {
    prepared: sealog_journal::PreparedCommit,
    raw: Vec<RawEvents>,
    received_at: i64,
    replies: Vec<(u64, oneshot::Sender<Result<Receipt, CommitError>>)>,
    bytes: usize,
    records: u64,
    started: Instant,
}

impl Sealed {
    fn events(&self) -> Vec<EventRef<'_>> {
        self.raw
            .iter()
            .flat_map(|(buf, events)| {
                events.iter().map(|(range, t)| EventRef {
                    bytes: &buf[range.clone()],
                    time_ns: *t,
                })
            })
            .collect()
    }
}

/// Two stages so sealing the next group overlaps the fsyncs of this one:
/// this thread seals (leaf lines, hashes, compression on rayon's pool) and
/// a committer thread writes, fsyncs, signs and answers. The sealer
/// assigns seqs ahead of the commits; when a commit fails, the committer
/// reports the records that were not committed (`lost`) so the sealer
/// steps back, and re-seals a group already sealed for the wrong seqs.
fn writer_loop(
    journal: SharedLog,
    mut rx: mpsc::Receiver<CommitRequest>,
    size: watch::Sender<u64>,
    max_group: usize,
    metrics: Arc<Metrics>,
    queued: Arc<AtomicUsize>,
    failed: Arc<RwLock<Option<String>>>,
) {
    let (realm, level, mut next_seq) = match journal.read() {
        Ok(j) => (
            j.realm().to_string(),
            j.options().compression_level,
            j.size(),
        ),
        Err(_) => return,
    };
    let lost = Arc::new(AtomicU64::new(0));
    let (tx, sealed_rx) = std::sync::mpsc::sync_channel::<Sealed>(1);
    let committer = {
        let c = Committer {
            journal: journal.clone(),
            size,
            realm: realm.clone(),
            metrics: metrics.clone(),
            queued: queued.clone(),
            lost: lost.clone(),
            level,
            last_recovery: None,
            failed,
        };
        std::thread::Builder::new()
            .name(format!("sealog-commit-{realm}"))
            .spawn(move || c.run(sealed_rx))
            .expect("spawning a thread only fails when the OS is out of resources")
    };
    while let Some(first) = rx.blocking_recv() {
        let mut reqs = vec![first];
        let mut n = reqs[0].events.len();
        while n < max_group {
            match rx.try_recv() {
                Ok(r) => {
                    n += r.events.len();
                    reqs.push(r);
                }
                Err(_) => break,
            }
        }
        next_seq -= lost.swap(0, Ordering::AcqRel);
        let started = Instant::now();
        let bytes: usize = reqs.iter().map(|r| r.buf.len()).sum();
        let mut replies = Vec::with_capacity(reqs.len());
        let mut raw = Vec::with_capacity(reqs.len());
        for r in reqs {
            replies.push((r.events.len() as u64, r.reply));
            raw.push((r.buf, r.events));
        }
        let received_at = sealog_event::now_ns();
        let mut sealed = Sealed {
            prepared: sealog_journal::PreparedCommit::empty(next_seq),
            raw,
            received_at,
            replies,
            bytes,
            records: n as u64,
            started,
        };
        match prepare(&realm, next_seq, &sealed.events(), received_at, level) {
            Ok(p) => sealed.prepared = p,
            Err(e) => {
                // Listeners cap events below the journal's limit, so this is
                // a listener bug; refuse the group, lose nothing acknowledged.
                fail_group(&realm, &metrics, &queued, sealed, CommitError::from(e));
                continue;
            }
        }
        next_seq += n as u64;
        if tx.send(sealed).is_err() {
            break;
        }
    }
    drop(tx);
    let _ = committer.join();
}

fn fail_group(realm: &str, metrics: &Metrics, queued: &AtomicUsize, s: Sealed, e: CommitError) {
    queued.fetch_sub(s.bytes, Ordering::AcqRel);
    tracing::error!(realm = %realm, cause = %e, "commit failed; nothing in this group was acknowledged");
    let reason = match e {
        CommitError::StorageFull(_) => "storage_full",
        _ => "commit_failed",
    };
    metrics.refused(realm, reason, s.records);
    for (_, reply) in s.replies {
        let _ = reply.send(Err(e.clone()));
    }
}

/// Minimum time between two recovery attempts of a poisoned journal, so a
/// full disk is probed a few times a second, not once per request.
const RECOVERY_BACKOFF: std::time::Duration = std::time::Duration::from_millis(200);

/// The committer thread of one realm.
struct Committer {
    journal: SharedLog,
    size: watch::Sender<u64>,
    realm: String,
    metrics: Arc<Metrics>,
    queued: Arc<AtomicUsize>,
    lost: Arc<AtomicU64>,
    level: i32,
    last_recovery: Option<Instant>,
    failed: Arc<RwLock<Option<String>>>,
}

impl Committer {
    fn run(mut self, rx: std::sync::mpsc::Receiver<Sealed>) {
        use std::sync::mpsc::RecvTimeoutError;
        loop {
            let s = match rx.recv_timeout(sealog_journal::mark::MARK_SYNC_INTERVAL) {
                Ok(s) => s,
                Err(RecvTimeoutError::Timeout) => {
                    // Idle: make the last commit's high-water mark durable,
                    // so the mark is never more than a second behind.
                    if let Ok(mut j) = self.journal.write() {
                        if let Err(e) = j.flush_mark() {
                            tracing::warn!(realm = %self.realm, cause = %e, "high-water mark not synced");
                        }
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let records = s.records;
            match self.commit(s) {
                Ok(()) => {}
                Err(failed) => {
                    let (s, e) = *failed;
                    self.lost.fetch_add(records, Ordering::AcqRel);
                    fail_group(&self.realm, &self.metrics, &self.queued, s, e);
                }
            }
        }
    }

    fn commit(&mut self, mut s: Sealed) -> Result<(), Box<(Sealed, CommitError)>> {
        let at = match self.ready() {
            Ok(at) => at,
            Err(e) => return Err(Box::new((s, e))),
        };
        if s.prepared.first_seq() != at {
            match prepare(&self.realm, at, &s.events(), s.received_at, self.level) {
                Ok(p) => s.prepared = p,
                Err(e) => return Err(Box::new((s, CommitError::from(e)))),
            }
        }
        let prepared =
            std::mem::replace(&mut s.prepared, sealog_journal::PreparedCommit::empty(at));
        let receipt = match commit_unlocked(&self.journal, prepared) {
            Ok(r) => r,
            Err(e) => return Err(Box::new((s, e))),
        };
        self.queued.fetch_sub(s.bytes, Ordering::AcqRel);
        self.metrics
            .committed(&self.realm, s.records, s.bytes as u64, s.started.elapsed());
        // Publish the new size before anyone holds a receipt for it, so a
        // tail opened right after an ack starts past it.
        let _ = self.size.send(receipt.last_seq + 1);
        let mut seq = receipt.first_seq;
        for (count, reply) in s.replies {
            let _ = reply.send(Ok(Receipt {
                realm: self.realm.clone(),
                first_seq: seq,
                last_seq: seq + count - 1,
                count,
                checkpoint: receipt.checkpoint.clone(),
            }));
            seq += count;
        }
        Ok(())
    }

    /// The journal's size when it takes writes; when it is poisoned, tries
    /// to recover it (at most every [`RECOVERY_BACKOFF`]).
    fn ready(&mut self) -> Result<u64, CommitError> {
        let lock_err = || CommitError::Io("journal lock poisoned".into());
        if let Some(reason) = self.failed.read().map_err(|_| lock_err())?.clone() {
            return Err(CommitError::Failed(reason));
        }
        let (size, poison) = {
            let j = self.journal.read().map_err(|_| lock_err())?;
            (j.size(), j.poison().cloned())
        };
        let Some(p) = poison else {
            return Ok(size);
        };
        let refused = || {
            if p.storage_full {
                CommitError::StorageFull(p.cause.clone())
            } else {
                CommitError::Poisoned(p.cause.clone())
            }
        };
        if self
            .last_recovery
            .is_some_and(|t| t.elapsed() < RECOVERY_BACKOFF)
        {
            return Err(refused());
        }
        self.last_recovery = Some(Instant::now());
        let mut j = self.journal.write().map_err(|_| lock_err())?;
        match j.recover() {
            Ok(()) => Ok(j.size()),
            Err(e) => {
                tracing::warn!(realm = %self.realm, cause = %e, "journal still refuses writes");
                Err(match CommitError::from(e) {
                    CommitError::Io(_) => refused(),
                    e => e,
                })
            }
        }
    }
}

/// Commits in the journal's steps, holding its write lock only to write
/// and publish, never across an fsync: queries, proofs and tails keep
/// reading while a commit waits for the disk.
fn commit_unlocked(
    journal: &RwLock<Box<dyn LogStore>>,
    prepared: sealog_journal::PreparedCommit,
) -> Result<Receipt, CommitError> {
    let locked = || {
        journal
            .write()
            .map_err(|_| CommitError::Io("journal lock poisoned".into()))
    };
    let staged = locked()?.stage_blocks(prepared)?;
    let synced = |s: sealog_journal::StagedCommit| match s.sync() {
        Ok(()) => Ok(s),
        Err(e) => {
            if let Ok(mut j) = journal.write() {
                j.abort_commit(s, &e);
            }
            Err(CommitError::from(e))
        }
    };
    let staged = synced(staged)?;
    let staged = locked()?.stage_checkpoint(staged)?;
    let staged = synced(staged)?;
    Ok(locked()?.finish_commit(staged)?)
}
