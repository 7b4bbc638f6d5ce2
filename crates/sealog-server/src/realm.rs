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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Instant;

use sealog_journal::{prepare, EventRef, Journal, Receipt};
use tokio::sync::{mpsc, oneshot, watch};

use crate::metrics::Metrics;

/// A batch of validated events waiting to be committed.
#[derive(Debug)]
pub struct CommitRequest {
    /// The bytes the events live in.
    pub buf: Vec<u8>,
    /// Each event's byte range in `buf` and its own time.
    pub events: Vec<(Range<usize>, Option<i64>)>,
    /// Where the receipt goes.
    pub reply: oneshot::Sender<Result<Receipt, String>>,
}

/// Why a commit request was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum QueueError {
    /// The queue is full: the sender should retry later.
    Full,
    /// The realm is closing.
    Closed,
}

/// A realm's journal and its writer.
#[derive(Debug)]
pub struct RealmHandle {
    name: String,
    journal: Arc<RwLock<Journal>>,
    queue: RwLock<Option<mpsc::Sender<CommitRequest>>>,
    committed: watch::Receiver<u64>,
    writer: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// Event bytes queued or being committed, and the most allowed.
    queued: Arc<AtomicUsize>,
    max_queued: usize,
}

impl RealmHandle {
    /// Starts the writer thread for `journal`.
    pub fn start(
        journal: Journal,
        queue: usize,
        max_queued_bytes: usize,
        max_group: usize,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let name = journal.realm().to_string();
        let (tx, rx) = mpsc::channel(queue.max(1));
        let (size_tx, size_rx) = watch::channel(journal.size());
        let journal = Arc::new(RwLock::new(journal));
        let j = journal.clone();
        let queued = Arc::new(AtomicUsize::new(0));
        let q = queued.clone();
        let thread_name = format!("sealog-seal-{name}");
        let writer = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || writer_loop(j, rx, size_tx, max_group.max(1), metrics, q))
            .expect("spawning a thread only fails when the OS is out of resources");
        Arc::new(Self {
            name,
            journal,
            queue: RwLock::new(Some(tx)),
            committed: size_rx,
            writer: std::sync::Mutex::new(Some(writer)),
            queued,
            max_queued: max_queued_bytes.max(1),
        })
    }

    /// The realm's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The journal, for reads (take the read lock briefly).
    pub fn journal(&self) -> &Arc<RwLock<Journal>> {
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
            if let Err(e) = j.sync() {
                tracing::error!(realm = %self.name, cause = %e, "final sync failed");
            }
        }
    }
}

/// What the sealer hands the committer: the sealed batch and whom to answer.
struct Sealed {
    prepared: sealog_journal::PreparedCommit,
    replies: Vec<(u64, oneshot::Sender<Result<Receipt, String>>)>,
    bytes: usize,
    records: u64,
    started: Instant,
}

/// Two stages so sealing the next group overlaps the fsyncs of this one:
/// this thread seals (leaf lines, hashes, compression on rayon's pool) and
/// a committer thread writes, fsyncs, signs and answers.
fn writer_loop(
    journal: Arc<RwLock<Journal>>,
    mut rx: mpsc::Receiver<CommitRequest>,
    size: watch::Sender<u64>,
    max_group: usize,
    metrics: Arc<Metrics>,
    queued: Arc<AtomicUsize>,
) {
    let (realm, level, mut next_seq) = match journal.read() {
        Ok(j) => (
            j.realm().to_string(),
            j.options().compression_level,
            j.size(),
        ),
        Err(_) => return,
    };
    let (tx, sealed_rx) = std::sync::mpsc::sync_channel::<Sealed>(1);
    let committer = {
        let (journal, realm, metrics, queued) = (
            journal.clone(),
            realm.clone(),
            metrics.clone(),
            queued.clone(),
        );
        std::thread::Builder::new()
            .name(format!("sealog-commit-{realm}"))
            .spawn(move || commit_loop(journal, sealed_rx, size, realm, metrics, queued))
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
        let started = Instant::now();
        let bytes: usize = reqs.iter().map(|r| r.buf.len()).sum();
        let events: Vec<EventRef<'_>> = reqs
            .iter()
            .flat_map(|r| {
                r.events.iter().map(|(range, t)| EventRef {
                    bytes: &r.buf[range.clone()],
                    time_ns: *t,
                })
            })
            .collect();
        let prepared = prepare(&realm, next_seq, &events, sealog_event::now_ns(), level);
        drop(events);
        next_seq += n as u64;
        let replies = reqs
            .into_iter()
            .map(|r| (r.events.len() as u64, r.reply))
            .collect();
        let sealed = Sealed {
            prepared,
            replies,
            bytes,
            records: n as u64,
            started,
        };
        if tx.send(sealed).is_err() {
            break;
        }
    }
    drop(tx);
    let _ = committer.join();
}

fn commit_loop(
    journal: Arc<RwLock<Journal>>,
    rx: std::sync::mpsc::Receiver<Sealed>,
    size: watch::Sender<u64>,
    realm: String,
    metrics: Arc<Metrics>,
    queued: Arc<AtomicUsize>,
) {
    for s in rx {
        let result = commit_unlocked(&journal, s.prepared);
        queued.fetch_sub(s.bytes, Ordering::AcqRel);
        match result {
            Ok(receipt) => {
                metrics.committed(&realm, s.records, s.bytes as u64, s.started.elapsed());
                // Publish the new size before anyone holds a receipt for it,
                // so a tail opened right after an ack starts past it.
                let _ = size.send(receipt.last_seq + 1);
                let mut seq = receipt.first_seq;
                for (count, reply) in s.replies {
                    let _ = reply.send(Ok(Receipt {
                        realm: realm.clone(),
                        first_seq: seq,
                        last_seq: seq + count - 1,
                        count,
                        checkpoint: receipt.checkpoint.clone(),
                    }));
                    seq += count;
                }
            }
            Err(e) => {
                tracing::error!(realm = %realm, cause = %e, "commit failed; nothing in this group was acknowledged");
                metrics.refused(&realm, "commit_failed", s.records);
                for (_, reply) in s.replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Commits in the journal's steps, holding its write lock only to write
/// and publish, never across an fsync: queries, proofs and tails keep
/// reading while a commit waits for the disk.
fn commit_unlocked(
    journal: &RwLock<Journal>,
    prepared: sealog_journal::PreparedCommit,
) -> Result<Receipt, String> {
    let locked = || {
        journal
            .write()
            .map_err(|_| "journal lock poisoned".to_string())
    };
    let staged = locked()?
        .stage_blocks(prepared)
        .map_err(|e| e.to_string())?;
    let synced = |s: sealog_journal::StagedCommit| match s.sync() {
        Ok(()) => Ok(s),
        Err(e) => {
            if let Ok(mut j) = journal.write() {
                j.abort_commit(s);
            }
            Err(e.to_string())
        }
    };
    let staged = synced(staged)?;
    let staged = locked()?
        .stage_checkpoint(staged)
        .map_err(|e| e.to_string())?;
    let staged = synced(staged)?;
    locked()?.finish_commit(staged).map_err(|e| e.to_string())
}
