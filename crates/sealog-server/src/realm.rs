//! One realm in the server: its journal, the bounded queue of commit
//! requests, and its lane on the shared writer threads ([`Workers`]).
//!
//! Threads are shared by every realm and sized by cores, not by realms: a
//! realm with work is queued for a sealer (leaf lines, hashes, compression)
//! and then for a committer (write, fsync, sign, answer). A realm is on at
//! most one sealer and one committer at a time, so it still has exactly one
//! sequencer and its commits land in order; sealing its next group overlaps
//! the fsyncs of the one before, and different realms' fsyncs run side by
//! side on different committers (the filesystem's journal groups them).
//!
//! A sealer takes every request waiting in the realm's queue (up to
//! `max_group_records` records) and seals them as one commit with one pair
//! of fsyncs and one signed checkpoint; the committer answers each request
//! with a receipt for its own seqs. Readers take the journal's read lock per
//! block, so a long query never holds up commits for long; the committer
//! holds the write lock only to write and publish, not across its fsyncs.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sealog_journal::{prepare, BlockMeta, EventRef, JournalError, LogStore, Receipt};
use sealog_query::logharbour::BlockFacets;
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
    lane: Arc<Lane>,
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
    /// Block summaries for LogHarbour's `GetSet`, made as counts need them.
    pub(crate) facets: FacetCache,
}

/// The file beside a realm's journal that keeps its block summaries.
pub const FACETS_FILE: &str = "lh.facets";

/// A realm's block summaries ([`sealog_query::logharbour::BlockFacets`]):
/// derived from blocks, keyed by each block's seq, size and checksum (a
/// block retention rewrote gets a new key), bounded in memory, and kept in
/// [`FACETS_FILE`] so a restart does not read every block again. The file
/// is derived data: one JSON line per block, appended unsynced; a line
/// that does not parse (a torn append) or names a block that changed is
/// ignored, and the file is read on the first count that needs it.
#[derive(Debug, Default)]
pub struct FacetCache {
    /// The first block the background summarizer has not looked at.
    pub(crate) next_block: AtomicUsize,
    map: Mutex<std::collections::HashMap<FacetKey, Arc<BlockFacets>>>,
    values: AtomicUsize,
    file: std::sync::OnceLock<std::path::PathBuf>,
    loaded: std::sync::OnceLock<()>,
}

type FacetKey = (u64, u32, u32);

/// Most summary values a realm keeps (about 100 bytes each).
const MAX_FACET_VALUES: usize = 2_000_000;

#[derive(serde::Serialize, serde::Deserialize)]
struct FacetLine {
    s: u64,
    n: u32,
    c: u32,
    f: BlockFacets,
}

impl FacetCache {
    /// True when summaries are kept in a file that exists (the realm has
    /// been counted before).
    pub fn has_file(&self) -> bool {
        self.file.get().is_some_and(|p| p.exists())
    }

    /// Keeps the summaries in `path` from now on.
    pub fn keep_in(&self, path: std::path::PathBuf) {
        let _ = self.file.set(path);
    }

    fn load(&self) {
        self.loaded.get_or_init(|| {
            let Some(path) = self.file.get() else { return };
            let Ok(text) = std::fs::read_to_string(path) else {
                return;
            };
            let mut kept = 0usize;
            for line in text.lines() {
                let Ok(l) = serde_json::from_str::<FacetLine>(line) else {
                    continue;
                };
                if self.insert((l.s, l.n, l.c), Arc::new(l.f)) {
                    kept += 1;
                }
            }
            tracing::debug!(path = %path.display(), blocks = kept, "block summaries read");
        });
    }

    fn insert(&self, key: FacetKey, f: Arc<BlockFacets>) -> bool {
        let n = f.values();
        if self.values.load(Ordering::Relaxed) + n > MAX_FACET_VALUES {
            return false;
        }
        let Ok(mut m) = self.map.lock() else {
            return false;
        };
        if m.insert(key, f).is_none() {
            self.values.fetch_add(n, Ordering::Relaxed);
        }
        true
    }
}

impl sealog_query::logharbour::FacetStore for FacetCache {
    fn get(&self, b: &BlockMeta) -> Option<Arc<BlockFacets>> {
        self.load();
        self.map
            .lock()
            .ok()?
            .get(&(b.first_seq, b.count, b.crc()))
            .cloned()
    }

    fn put(&self, b: &BlockMeta, f: BlockFacets) -> Arc<BlockFacets> {
        let key = (b.first_seq, b.count, b.crc());
        let f = Arc::new(f);
        if self.insert(key, f.clone()) {
            if let Some(path) = self.file.get() {
                let line = FacetLine {
                    s: key.0,
                    n: key.1,
                    c: key.2,
                    f: (*f).clone(),
                };
                let appended = serde_json::to_vec(&line)
                    .map_err(std::io::Error::other)
                    .and_then(|mut bytes| {
                        use std::io::Write;
                        bytes.push(b'\n');
                        std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(path)?
                            .write_all(&bytes)
                    });
                if let Err(e) = appended {
                    tracing::warn!(path = %path.display(), cause = %e, "block summary not kept on disk; it is made again after a restart");
                }
            }
        }
        f
    }
}

impl RealmHandle {
    /// Puts `journal` on the shared writer threads under `limits`.
    pub fn start(
        journal: Box<dyn LogStore>,
        limits: &crate::config::Limits,
        metrics: Arc<Metrics>,
        workers: &Workers,
    ) -> Arc<Self> {
        let (queue, max_queued_bytes, max_group) = (
            limits.commit_queue,
            limits.max_queued_bytes,
            limits.max_group_records,
        );
        let share_kib = (limits.max_realm_inflight_bytes.max(limits.max_body_bytes) / 1024)
            .clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        let name = journal.realm().to_string();
        let level = journal.options().compression_level;
        let next_seq = journal.size();
        let (tx, rx) = mpsc::channel(queue.max(1));
        let (size_tx, size_rx) = watch::channel(journal.size());
        let journal = Arc::new(RwLock::new(journal));
        let queued = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(RwLock::new(None));
        let lane = Arc::new(Lane {
            realm: name.clone(),
            journal: journal.clone(),
            inbox: Mutex::new(rx),
            state: Mutex::new(LaneState {
                next_seq,
                ..LaneState::default()
            }),
            idle: Condvar::new(),
            size: size_tx,
            metrics,
            queued: queued.clone(),
            failed: failed.clone(),
            level,
            max_group: max_group.max(1),
            lost: AtomicU64::new(0),
            last_recovery: Mutex::new(None),
            mark_dirty: AtomicBool::new(false),
            last_commit: Mutex::new(Instant::now()),
            shared: workers.shared.clone(),
        });
        workers.register(&lane);
        Arc::new(Self {
            name,
            journal,
            queue: RwLock::new(Some(tx)),
            committed: size_rx,
            lane,
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
            facets: FacetCache::default(),
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

    /// True when a request of `len` bytes would be queued now (or is the
    /// only one waiting).
    pub fn has_room(&self, len: usize) -> bool {
        let before = self.queued.load(Ordering::Acquire);
        before == 0 || before + len <= self.max_queued
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
        if let Some(reason) = self.failure() {
            let _ = req.reply.send(Err(CommitError::Failed(reason)));
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
        })?;
        self.lane.kick();
        Ok(())
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
        if let Some(reason) = self.failure() {
            let _ = req.reply.send(Err(CommitError::Failed(reason)));
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
        })?;
        self.lane.kick();
        Ok(())
    }

    /// Stops taking requests, lets the writer threads commit what is
    /// queued, and waits for it; then flushes the journal's derived files.
    pub fn close(&self) {
        if let Ok(mut q) = self.queue.write() {
            q.take();
        }
        self.lane.drain();
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
#[derive(Debug)]
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

/// Sealed groups a realm may have waiting for its committer: sealing runs
/// at most this far ahead of the disk.
const MAX_SEALED_AHEAD: usize = 2;

/// How often the mark ticker looks for realms whose high-water mark is
/// not yet synced after their last commit.
const MARK_TICK: Duration = Duration::from_millis(250);

/// The writer threads every realm shares: sealers, committers and one
/// ticker that makes idle realms' high-water marks durable.
#[derive(Debug)]
pub struct Workers {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct Shared {
    seal: JobQueue,
    commit: JobQueue,
    /// Every realm's lane, for the mark ticker.
    lanes: Mutex<Vec<Weak<Lane>>>,
    stop: AtomicBool,
}

/// Realms waiting for a thread of one kind, in arrival order.
#[derive(Debug, Default)]
struct JobQueue {
    q: Mutex<VecDeque<Arc<Lane>>>,
    ready: Condvar,
}

impl JobQueue {
    fn push(&self, lane: Arc<Lane>) {
        if let Ok(mut q) = self.q.lock() {
            q.push_back(lane);
        }
        self.ready.notify_one();
    }

    /// The next realm with work; `None` once stopping and empty.
    fn pop(&self, stop: &AtomicBool) -> Option<Arc<Lane>> {
        let mut q = self.q.lock().ok()?;
        loop {
            if let Some(l) = q.pop_front() {
                return Some(l);
            }
            if stop.load(Ordering::Acquire) {
                return None;
            }
            q = self.ready.wait(q).ok()?;
        }
    }
}

impl Workers {
    /// Starts `seal` sealers and `commit` committers (0 = sized by the
    /// cores: one sealer and two committers per core).
    pub fn start(seal: usize, commit: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let seal = if seal == 0 { cores } else { seal };
        let commit = if commit == 0 {
            (2 * cores).max(4)
        } else {
            commit
        };
        let shared = Arc::new(Shared::default());
        let mut threads = Vec::new();
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name)
                .spawn(f)
                .expect("spawning a thread only fails when the OS is out of resources")
        };
        for i in 0..seal {
            let sh = shared.clone();
            threads.push(spawn(
                format!("sealog-seal-{i}"),
                Box::new(move || {
                    while let Some(lane) = sh.seal.pop(&sh.stop) {
                        let job = std::panic::AssertUnwindSafe(|| lane.seal_job());
                        if std::panic::catch_unwind(job).is_err() {
                            lane.panicked("sealer");
                        }
                    }
                }),
            ));
        }
        for i in 0..commit {
            let sh = shared.clone();
            threads.push(spawn(
                format!("sealog-commit-{i}"),
                Box::new(move || {
                    while let Some(lane) = sh.commit.pop(&sh.stop) {
                        let job = std::panic::AssertUnwindSafe(|| lane.commit_job());
                        if std::panic::catch_unwind(job).is_err() {
                            lane.panicked("committer");
                        }
                    }
                }),
            ));
        }
        let sh = shared.clone();
        threads.push(spawn(
            "sealog-marks".into(),
            Box::new(move || mark_ticker(&sh)),
        ));
        Self {
            shared,
            threads: Mutex::new(threads),
        }
    }

    fn register(&self, lane: &Arc<Lane>) {
        if let Ok(mut lanes) = self.shared.lanes.lock() {
            lanes.retain(|w| w.strong_count() > 0);
            lanes.push(Arc::downgrade(lane));
        }
    }

    /// Stops the threads once their queues are empty (close every realm
    /// first) and waits for them.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
        for q in [&self.shared.seal, &self.shared.commit] {
            // Taking the lock orders the flag before a waiter's next check.
            drop(q.q.lock());
            q.ready.notify_all();
        }
        let threads = self
            .threads
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Every [`MARK_TICK`], queues a mark sync for each realm that committed
/// and has been idle for [`sealog_journal::mark::MARK_SYNC_INTERVAL`]:
/// the mark is never much more than a second behind the last commit.
fn mark_ticker(sh: &Shared) {
    while !sh.stop.load(Ordering::Acquire) {
        std::thread::sleep(MARK_TICK);
        let lanes: Vec<Arc<Lane>> = sh
            .lanes
            .lock()
            .map(|l| l.iter().filter_map(Weak::upgrade).collect())
            .unwrap_or_default();
        for lane in lanes {
            if !lane.mark_dirty.load(Ordering::Acquire) {
                continue;
            }
            let idle = lane
                .last_commit
                .lock()
                .is_ok_and(|t| t.elapsed() >= sealog_journal::mark::MARK_SYNC_INTERVAL);
            if idle && lane.mark_dirty.swap(false, Ordering::AcqRel) {
                lane.schedule_mark();
            }
        }
    }
}

/// One realm's place on the shared threads.
#[derive(Debug)]
struct Lane {
    realm: String,
    journal: SharedLog,
    /// Only the sealer holding the `sealing` flag takes from it.
    inbox: Mutex<mpsc::Receiver<CommitRequest>>,
    state: Mutex<LaneState>,
    /// Notified whenever a job of this realm ends (for [`Lane::drain`]).
    idle: Condvar,
    size: watch::Sender<u64>,
    metrics: Arc<Metrics>,
    queued: Arc<AtomicUsize>,
    failed: Arc<RwLock<Option<String>>>,
    level: i32,
    max_group: usize,
    /// Records sealed ahead that a failed commit did not commit: the
    /// sealer steps its next seq back by them.
    lost: AtomicU64,
    last_recovery: Mutex<Option<Instant>>,
    /// A commit happened since the mark ticker last queued a mark sync.
    mark_dirty: AtomicBool,
    last_commit: Mutex<Instant>,
    shared: Arc<Shared>,
}

/// Which threads hold a realm, and what is between them.
#[derive(Debug, Default)]
struct LaneState {
    /// On a sealer, or queued for one.
    sealing: bool,
    /// On a committer, or queued for one.
    committing: bool,
    sealed: VecDeque<Sealed>,
    next_seq: u64,
    mark_due: bool,
}

impl Lane {
    /// A job of this realm panicked (a bug): the shared thread lives on
    /// for the other realms; this realm is failed (no writes, 503 naming
    /// it), what it held is answered with an error by dropping the reply
    /// senders, and nothing holds it, so closing it does not hang.
    fn panicked(&self, role: &str) {
        let reason = format!(
            "internal error: the realm's {role} job panicked; nothing in flight was acknowledged"
        );
        tracing::error!(realm = %self.realm, %reason);
        {
            let mut f = self.failed.write().unwrap_or_else(|e| e.into_inner());
            f.get_or_insert(reason);
        }
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.sealing = false;
        st.committing = false;
        st.mark_due = false;
        st.sealed.clear();
        drop(st);
        let mut rx = self.inbox.lock().unwrap_or_else(|e| e.into_inner());
        while rx.try_recv().is_ok() {}
        drop(rx);
        self.queued.store(0, Ordering::Release);
        self.idle.notify_all();
    }

    fn has_input(&self) -> bool {
        self.inbox.lock().is_ok_and(|rx| !rx.is_empty())
    }

    /// Queues the realm for a sealer unless it is on one, or far enough
    /// ahead of its committer (which then queues it).
    fn kick(self: &Arc<Self>) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        if !st.sealing && st.sealed.len() < MAX_SEALED_AHEAD {
            st.sealing = true;
            drop(st);
            self.shared.seal.push(self.clone());
        }
    }

    fn schedule_mark(self: &Arc<Self>) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        st.mark_due = true;
        if !st.committing {
            st.committing = true;
            drop(st);
            self.shared.commit.push(self.clone());
        }
    }

    fn take_requests(&self) -> Vec<CommitRequest> {
        let mut reqs = Vec::new();
        let Ok(mut rx) = self.inbox.lock() else {
            return reqs;
        };
        let mut n = 0;
        while n < self.max_group {
            match rx.try_recv() {
                Ok(r) => {
                    n += r.events.len();
                    reqs.push(r);
                }
                Err(_) => break,
            }
        }
        reqs
    }

    /// One group: take what is queued, seal it, hand it to a committer.
    /// Requeues itself behind other realms while it has more.
    fn seal_job(self: &Arc<Self>) {
        let reqs = self.take_requests();
        if reqs.is_empty() {
            if let Ok(mut st) = self.state.lock() {
                st.sealing = false;
            }
            self.idle.notify_all();
            // A request queued after the take and before the flag cleared
            // found the realm still sealing and did not queue it.
            if self.has_input() {
                self.kick();
            }
            return;
        }
        let n: usize = reqs.iter().map(|r| r.events.len()).sum();
        let next_seq = match self.state.lock() {
            Ok(mut st) => {
                st.next_seq -= self.lost.swap(0, Ordering::AcqRel);
                st.next_seq
            }
            Err(_) => return,
        };
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
        let prepared = prepare(
            &self.realm,
            next_seq,
            &sealed.events(),
            received_at,
            self.level,
        );
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        match prepared {
            Ok(p) => {
                sealed.prepared = p;
                st.next_seq += n as u64;
                st.sealed.push_back(sealed);
                if !st.committing {
                    st.committing = true;
                    self.shared.commit.push(self.clone());
                }
            }
            Err(e) => {
                // Listeners cap events below the journal's limit, so this is
                // a listener bug; refuse the group, lose nothing acknowledged.
                fail_group(
                    &self.realm,
                    &self.metrics,
                    &self.queued,
                    sealed,
                    CommitError::from(e),
                );
            }
        }
        if st.sealed.len() >= MAX_SEALED_AHEAD {
            // The committer queues the realm again when it catches up.
            st.sealing = false;
            drop(st);
            self.idle.notify_all();
        } else {
            drop(st);
            self.shared.seal.push(self.clone());
        }
    }

    /// One commit (or, with none waiting, a due mark sync); requeues
    /// itself behind other realms while more are sealed.
    fn commit_job(self: &Arc<Self>) {
        let next = {
            let Ok(mut st) = self.state.lock() else {
                return;
            };
            match st.sealed.pop_front() {
                Some(s) => Some(s),
                None if st.mark_due => {
                    st.mark_due = false;
                    None
                }
                None => {
                    st.committing = false;
                    drop(st);
                    self.idle.notify_all();
                    return;
                }
            }
        };
        match next {
            None => {
                // Idle: make the last commit's high-water mark durable.
                if let Ok(mut j) = self.journal.write() {
                    if let Err(e) = j.flush_mark() {
                        tracing::warn!(realm = %self.realm, cause = %e, "high-water mark not synced");
                    }
                }
            }
            Some(s) => {
                let records = s.records;
                if let Err(failed) = self.commit(s) {
                    let (s, e) = *failed;
                    self.lost.fetch_add(records, Ordering::AcqRel);
                    fail_group(&self.realm, &self.metrics, &self.queued, s, e);
                }
            }
        }
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        let reseal = !st.sealing && st.sealed.len() < MAX_SEALED_AHEAD && self.has_input();
        if reseal {
            st.sealing = true;
            self.shared.seal.push(self.clone());
        }
        if st.sealed.is_empty() && !st.mark_due {
            st.committing = false;
            drop(st);
            self.idle.notify_all();
        } else {
            drop(st);
            self.shared.commit.push(self.clone());
        }
    }

    /// Waits until everything queued is committed or refused and no
    /// thread holds the realm (its sender is gone, so nothing new comes).
    fn drain(self: &Arc<Self>) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        loop {
            let input = self.has_input();
            if !st.sealing && !st.committing && st.sealed.is_empty() && !input {
                return;
            }
            if input && !st.sealing && st.sealed.len() < MAX_SEALED_AHEAD {
                st.sealing = true;
                self.shared.seal.push(self.clone());
            }
            st = match self.idle.wait_timeout(st, Duration::from_millis(50)) {
                Ok((st, _)) => st,
                Err(_) => return,
            };
        }
    }

    fn commit(&self, mut s: Sealed) -> Result<(), Box<(Sealed, CommitError)>> {
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
        if let Ok(mut t) = self.last_commit.lock() {
            *t = Instant::now();
        }
        self.mark_dirty.store(true, Ordering::Release);
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
    fn ready(&self) -> Result<u64, CommitError> {
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
        {
            let mut last = self.last_recovery.lock().map_err(|_| lock_err())?;
            if last.is_some_and(|t| t.elapsed() < RECOVERY_BACKOFF) {
                return Err(refused());
            }
            *last = Some(Instant::now());
        }
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
const RECOVERY_BACKOFF: Duration = Duration::from_millis(200);

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

#[cfg(test)]
mod facet_tests {
    use super::*;
    use sealog_query::logharbour::{FacetStore, SetAttr};

    #[test]
    fn block_summaries_are_kept_on_disk_and_read_back_after_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let signer = sealog_journal::checkpoint::Signer::new("sealog/acme", key);
        let mut j = sealog_journal::Journal::open(
            &dir.path().join("journal"),
            "acme",
            signer,
            sealog_journal::JournalOptions::default(),
        )
        .expect("open");
        let bodies: Vec<String> = (0..10)
            .map(|i| {
                format!(
                    r#"{{"app":"app{}","type":"A","pri":"Info","msg":"m{i}"}}"#,
                    i % 3
                )
            })
            .collect();
        let events: Vec<EventRef<'_>> = bodies
            .iter()
            .map(|b| EventRef {
                bytes: b.as_bytes(),
                time_ns: None,
            })
            .collect();
        j.append(&events).expect("append");
        let meta = j.blocks()[0];
        let facets = BlockFacets::of(&j.read_block(0).expect("block"), 10);
        let file = dir.path().join(FACETS_FILE);
        let first = FacetCache::default();
        first.keep_in(file.clone());
        assert!(first.get(&meta).is_none());
        first.put(&meta, facets.clone());
        // A torn append after it is ignored.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"{\"s\":0,\"n\""))
            .expect("append");
        let again = FacetCache::default();
        again.keep_in(file);
        let read = again.get(&meta).expect("read back");
        assert_eq!(*read, facets);
        let apps = read.get(SetAttr::App).expect("apps kept");
        assert_eq!(apps.len(), 3);
        assert_eq!(apps.iter().map(|(_, n)| n).sum::<u64>(), 10);
    }
}
