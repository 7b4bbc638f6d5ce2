//! Delivery to drains: each drain is one task that reads its realm's
//! journal from its own cursor and sends the records it selects to its
//! destination, in seq order.
//!
//! What logshuttle got wrong and this does not:
//! - **At least once.** The cursor (`<data>/drains/<id>.cursor`) only moves
//!   past records the destination took: an HTTP 2xx, or for a syslog
//!   stream records written more than `resend_window_secs` before with the
//!   connection still up. After a receiver outage or a sealog restart the
//!   drain resumes there, so a record may arrive twice but never not at all.
//! - **Isolation.** A drain waits only in its own task (connect, write,
//!   backoff): one slow or dead destination never delays another drain,
//!   nor ingest (the journal is read in batches under its read lock).
//! - **Health.** A destination refusing records (HTTP 4xx other than
//!   408/429) marks the drain failing with the reason instead of retrying
//!   at full rate forever; the API and `/metrics` show each drain's state,
//!   cursor, lag, last error and delivered count.
//! - **Capped backoff** (from 100 ms doubling to `max_backoff_secs`), not a
//!   fixed 10 s with the connection's queue blocked.

pub mod record;
pub mod send;
pub mod session;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sealog_codec::drain::{parse_destination, Transport};
use sealog_journal::fs::Vfs;
use sealog_store::{DrainCursor, DrainInfo};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config;
use crate::state::AppState;
use record::Matcher;
use send::{Batch, Failure, Sender, Shared};

/// Where a drain stands, as `GET` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DrainState {
    /// Reading its cursor and waiting for its realm.
    Starting,
    /// Delivering, or caught up.
    Delivering,
    /// The last attempt failed; retrying with backoff.
    Retrying,
    /// The destination refused the records; tried again every
    /// `failing_retry_secs`.
    Failing,
}

impl DrainState {
    const ALL: [Self; 4] = [
        Self::Starting,
        Self::Delivering,
        Self::Retrying,
        Self::Failing,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Delivering => "delivering",
            Self::Retrying => "retrying",
            Self::Failing => "failing",
        }
    }
}

#[derive(Debug)]
struct Notes {
    state: DrainState,
    last_error: Option<String>,
    last_error_at: Option<String>,
    last_delivery_at: Option<String>,
}

/// A running drain's live counters.
#[derive(Debug)]
pub struct Status {
    cursor: AtomicU64,
    confirmed: AtomicU64,
    delivered: AtomicU64,
    truncated: AtomicU64,
    notes: Mutex<Notes>,
}

/// A drain's status, for the API.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StatusView {
    /// Its state.
    pub state: DrainState,
    /// The next seq it will send: every selected record before it was sent.
    pub cursor: u64,
    /// The next seq after a restart or a broken stream: every selected
    /// record before it was acknowledged (HTTP) or written long enough ago
    /// on a connection that stayed up (syslog streams). Persisted.
    pub confirmed: u64,
    /// Records of the realm after `cursor` (selected or not).
    pub lag: u64,
    /// Records delivered (repeats after an outage counted again).
    pub delivered: u64,
    /// UDP packets cut to the datagram limit.
    pub truncated: u64,
    /// The last delivery error.
    pub last_error: Option<String>,
    /// When it happened (RFC 3339).
    pub last_error_at: Option<String>,
    /// When records were last delivered (RFC 3339).
    pub last_delivery_at: Option<String>,
    /// The size of the realm's latest signed checkpoint when it covers
    /// `cursor` (every record the drain sent is in a signed tree of this
    /// size); `null` while the cursor is ahead of it.
    pub checkpoint_size: Option<u64>,
    /// That checkpoint's signed note.
    pub checkpoint: Option<String>,
}

impl Status {
    fn new(c: &DrainCursor) -> Self {
        Self {
            cursor: AtomicU64::new(c.cursor),
            confirmed: AtomicU64::new(c.cursor),
            delivered: AtomicU64::new(c.delivered),
            truncated: AtomicU64::new(0),
            notes: Mutex::new(Notes {
                state: if c.failing.is_some() {
                    DrainState::Failing
                } else {
                    DrainState::Starting
                },
                last_error: c.failing.clone(),
                last_error_at: None,
                last_delivery_at: None,
            }),
        }
    }

    fn set(&self, state: DrainState, error: Option<String>) {
        if let Ok(mut n) = self.notes.lock() {
            n.state = state;
            if let Some(e) = error {
                n.last_error = Some(e);
                n.last_error_at = Some(now_text());
            }
        }
    }

    fn state(&self) -> DrainState {
        self.notes.lock().map_or(DrainState::Starting, |n| n.state)
    }
}

fn now_text() -> String {
    let ns = sealog_event::now_ns();
    sealog_event::format_rfc3339_nanos(ns - ns.rem_euclid(1_000_000))
}

struct Running {
    status: Arc<Status>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// Every drain of the server and the state they share.
pub struct Engine {
    fs: Arc<dyn Vfs>,
    root: PathBuf,
    cfg: config::Drains,
    shared: Mutex<Option<Arc<Shared>>>,
    running: Mutex<HashMap<String, Running>>,
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("root", &self.root)
            .field("running", &self.running.lock().map(|r| r.len()).ok())
            .finish()
    }
}

impl Engine {
    /// An engine for the data directory at `root` (drains start with
    /// [`Engine::start_all`]).
    pub fn new(fs: Arc<dyn Vfs>, root: PathBuf, cfg: config::Drains) -> Self {
        Self {
            fs,
            root,
            cfg,
            shared: Mutex::new(None),
            running: Mutex::new(HashMap::new()),
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn shared(&self) -> Arc<Shared> {
        let Ok(mut s) = self.shared.lock() else {
            return Arc::new(Shared::new(&self.cfg));
        };
        s.get_or_insert_with(|| {
            let sh = Shared::new(&self.cfg);
            if let Err(e) = &sh.tls {
                tracing::error!(cause = %e, "drain TLS settings unusable; syslog+tls and https drains will retry with this error");
            }
            Arc::new(sh)
        })
        .clone()
    }

    /// Starts every stored drain.
    pub fn start_all(&self, state: &Arc<AppState>) {
        let drains = match state.data_dir().and_then(|d| {
            d.drains(None)
                .map_err(|e| crate::error::ApiError::Internal(e.to_string()))
        }) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(cause = %e, "drains could not be read; none is delivering");
                return;
            }
        };
        for d in drains {
            self.start(state, d);
        }
    }

    /// Starts delivering drain `info`.
    pub fn start(&self, state: &Arc<AppState>, info: DrainInfo) {
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        if running.contains_key(&info.id) {
            return;
        }
        let cursor = match sealog_store::load_cursor(&*self.fs, &self.root, &info.id) {
            Ok(c) => c,
            Err(e) => {
                // A damaged cursor file: start over (records may repeat,
                // none is skipped) and say so.
                tracing::error!(drain = %info.id, cause = %e, "drain cursor unreadable; delivering from seq 0");
                DrainCursor::default()
            }
        };
        let status = Arc::new(Status::new(&cursor));
        let stop = state.shutdown.child_token();
        let task = tokio::spawn(run(
            state.clone(),
            self.shared(),
            self.slot_for(&info.url),
            info.clone(),
            cursor.failing.is_some(),
            status.clone(),
            stop.clone(),
        ));
        running.insert(info.id.clone(), Running { status, stop, task });
        drop(running);
        self.publish(state);
    }

    /// Stops drain `id` (removed): its task ends at once, mid-write.
    pub fn stop(&self, state: &AppState, id: &str) {
        let r = self.running.lock().ok().and_then(|mut r| r.remove(id));
        if let Some(r) = r {
            r.stop.cancel();
            r.task.abort();
        }
        self.publish(state);
    }

    /// Stops every drain after it saved its cursor (at most `wait`).
    pub async fn shutdown(&self, wait: Duration) {
        let all: Vec<Running> = self
            .running
            .lock()
            .map(|mut r| r.drain().map(|(_, v)| v).collect())
            .unwrap_or_default();
        for r in &all {
            r.stop.cancel();
        }
        let deadline = tokio::time::Instant::now() + wait;
        for r in all {
            let _ = tokio::time::timeout_at(deadline, r.task).await;
        }
    }

    /// Drain `id`'s status, with `size` the realm's size and `checkpoint`
    /// its latest checkpoint (size, note).
    pub fn status(
        &self,
        id: &str,
        size: u64,
        checkpoint: Option<(u64, String)>,
    ) -> Option<StatusView> {
        let s = self
            .running
            .lock()
            .ok()?
            .get(id)
            .map(|r| r.status.clone())?;
        let cursor = s.cursor.load(Ordering::Relaxed);
        let n = s.notes.lock().ok()?;
        let (checkpoint_size, checkpoint) = match checkpoint {
            Some((cs, text)) if cs >= cursor => (Some(cs), Some(text)),
            _ => (None, None),
        };
        Some(StatusView {
            state: n.state,
            cursor,
            confirmed: s.confirmed.load(Ordering::Relaxed),
            lag: size.saturating_sub(cursor),
            delivered: s.delivered.load(Ordering::Relaxed),
            truncated: s.truncated.load(Ordering::Relaxed),
            last_error: n.last_error.clone(),
            last_error_at: n.last_error_at.clone(),
            last_delivery_at: n.last_delivery_at.clone(),
            checkpoint_size,
            checkpoint,
        })
    }

    /// The connection slots of `url`'s destination, shared by every drain
    /// to the same transport, host and port.
    fn slot_for(&self, url: &str) -> Arc<Semaphore> {
        let key = parse_destination(url).map_or_else(
            |_| url.to_string(),
            |d| format!("{:?}/{}/{}", d.transport, d.host, d.port),
        );
        let cap = self.cfg.max_connections_per_destination.max(1);
        self.slots.lock().map_or_else(
            |_| Arc::new(Semaphore::new(cap)),
            |mut s| {
                s.entry(key)
                    .or_insert_with(|| Arc::new(Semaphore::new(cap)))
                    .clone()
            },
        )
    }

    /// Sets the `sealog_drains{state}` gauge.
    pub fn publish(&self, state: &AppState) {
        let Ok(r) = self.running.lock() else {
            return;
        };
        let mut counts = [0usize; 4];
        for run in r.values() {
            let s = run.status.state();
            if let Some(i) = DrainState::ALL.iter().position(|x| *x == s) {
                counts[i] += 1;
            }
        }
        for (i, s) in DrainState::ALL.iter().enumerate() {
            state.metrics.drains(s.name(), counts[i]);
        }
    }

    fn save(&self, id: &str, c: &DrainCursor) {
        if let Err(e) = sealog_store::save_cursor(&*self.fs, &self.root, id, c) {
            tracing::warn!(drain = %id, cause = %e, "drain cursor not saved; a restart resends from the last saved one");
        }
    }
}

/// Saves one drain's cursor on the blocking pool, one save at a time: a
/// save still running is never raced by the next (which waits for a later
/// turn) nor by the last one when the drain stops.
#[derive(Default)]
struct Saver(Option<tokio::task::JoinHandle<()>>);

impl Saver {
    fn idle(&self) -> bool {
        self.0
            .as_ref()
            .is_none_or(tokio::task::JoinHandle::is_finished)
    }

    fn start(&mut self, state: &Arc<AppState>, id: &str, c: DrainCursor) {
        let (st, id) = (state.clone(), id.to_string());
        self.0 = Some(tokio::task::spawn_blocking(move || st.drains.save(&id, &c)));
    }

    async fn finish(&mut self) {
        if let Some(h) = self.0.take() {
            let _ = h.await;
        }
    }
}

/// Reads records `[from, to)` and builds the packets of those `m` selects.
fn read_batch(
    journal: &crate::realm::SharedLog,
    realm: &str,
    m: &Matcher,
    from: u64,
    to: u64,
    mut buf: Vec<u8>,
    newline: bool,
) -> Result<Batch, String> {
    const MAX_BATCH_BYTES: usize = 4 << 20;
    // Sized once, and reused from batch to batch: growing a multi-MiB
    // buffer by doubling copied it, and a fresh one faulted in (and the
    // kernel zeroed) new pages every time.
    buf.clear();
    buf.reserve((to.saturating_sub(from) as usize * 256).min(MAX_BATCH_BYTES + (64 << 10)));
    let mut b = Batch {
        from,
        next: from,
        buf,
        newline_framed: newline,
        ..Batch::default()
    };
    let mut memo = record::Memo::default();
    let j = journal
        .read()
        .map_err(|_| "journal lock poisoned".to_string())?;
    j.read(from, to, &mut |seq, line| {
        if !m.may_match(line) {
            // Not selected; no parse.
        } else if let Some(f) = record::fields(line) {
            if m.matches(line, &f) {
                let start = b.buf.len();
                record::packet(&mut b.buf, realm, line, &f, m, &mut memo);
                if newline {
                    // As frame_stream would: cut (not inside a character),
                    // then the newline, outside the span.
                    let keep = sealog_codec::drain::cut(
                        &b.buf[start..],
                        sealog_codec::drain::MAX_STREAM_PACKET,
                    );
                    b.buf.truncate(start + keep);
                    b.spans.push((start, b.buf.len()));
                    b.buf.push(b'\n');
                } else {
                    b.spans.push((start, b.buf.len()));
                }
                b.seqs.push(seq);
            }
        }
        b.next = seq + 1;
        if b.buf.len() >= MAX_BATCH_BYTES {
            std::ops::ControlFlow::Break(())
        } else {
            std::ops::ControlFlow::Continue(())
        }
    })
    .map_err(|e| format!("reading the journal: {e}"))?;
    Ok(b)
}

/// How long to wait after a failed attempt: `failing_retry_secs` for a
/// failing drain, else the backoff, which then doubles up to its cap.
fn next_wait(
    failing: bool,
    backoff: &mut Duration,
    max_backoff: Duration,
    cfg: &config::Drains,
) -> Duration {
    let wait = if failing {
        Duration::from_secs(cfg.failing_retry_secs.max(1))
    } else {
        *backoff
    };
    *backoff = (*backoff * 2).min(max_backoff);
    wait
}

/// Sleeps `d` unless stopped first; false when stopped.
async fn pause(d: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => true,
        () = stop.cancelled() => false,
    }
}

/// One drain's delivery loop.
#[allow(clippy::too_many_lines)]
async fn run(
    state: Arc<AppState>,
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
    info: DrainInfo,
    mut failing: bool,
    status: Arc<Status>,
    stop: CancellationToken,
) {
    let cfg = shared.cfg.clone();
    let engine = &state.drains;
    let (dest, matcher) = match (parse_destination(&info.url), Matcher::new(&info.select)) {
        (Ok(d), Ok(m)) => (d, Arc::new(m)),
        (Err(e), _) => {
            status.set(DrainState::Failing, Some(e.to_string()));
            return;
        }
        (_, Err(e)) => {
            status.set(DrainState::Failing, Some(e));
            return;
        }
    };
    let realm = loop {
        match state.realm_async(&info.realm).await {
            Ok(r) => break r,
            Err(e) => {
                status.set(
                    DrainState::Starting,
                    Some(format!("realm {}: {e}", info.realm)),
                );
                if !pause(Duration::from_secs(5), &stop).await {
                    return;
                }
            }
        }
    };
    let stream = dest.transport != Transport::Http
        && dest.transport != Transport::Https
        && dest.transport != Transport::SyslogUdp;
    let mut sender = Sender::new(&info.id, dest, info.framing.into(), shared.clone(), slots);
    debug_assert_eq!(stream, sender.is_stream());
    let mut committed = realm.committed();
    let window = Duration::from_secs(cfg.resend_window_secs);
    // Stream batches written but not yet confirmed: (when, first seq).
    let mut unconfirmed: std::collections::VecDeque<(Instant, u64)> = Default::default();
    let mut cursor = status.cursor.load(Ordering::Relaxed);
    // A cursor past the journal's end (a restored backup, a journal that
    // lost its unsynced tail) would skip the records that take those seqs.
    let size = realm.journal().read().map_or(cursor, |j| j.size());
    if cursor > size {
        tracing::warn!(drain = %info.id, cursor, size, "drain cursor is past the realm's end; delivering from the end");
        cursor = size;
        status.cursor.store(cursor, Ordering::Relaxed);
        status.confirmed.store(cursor, Ordering::Relaxed);
    }
    let mut saved = DrainCursor {
        cursor,
        delivered: status.delivered.load(Ordering::Relaxed),
        failing: None,
    };
    // The first delivery is saved at once; then about once a second.
    let mut last_save = Instant::now()
        .checked_sub(Duration::from_secs(1))
        .unwrap_or_else(Instant::now);
    let mut backoff = Duration::from_millis(100);
    let max_backoff = Duration::from_secs(cfg.max_backoff_secs.max(1));
    let batch_records = cfg.batch_records.max(1) as u64;
    if !failing {
        status.set(DrainState::Delivering, None);
        engine.publish(&state);
    }
    let newline = sender.wants_newline_framing();
    let read_at = |from: u64, size: u64, buf: Vec<u8>| {
        let to = size.min(from + batch_records);
        let (j, name, m) = (realm.journal().clone(), info.realm.clone(), matcher.clone());
        tokio::task::spawn_blocking(move || read_batch(&j, &name, &m, from, to, buf, newline))
    };
    // Two batch buffers take turns (one being sent, one being filled).
    let mut spare: Vec<Vec<u8>> = Vec::new();
    let mut prefetched: Option<(u64, tokio::task::JoinHandle<Result<Batch, String>>)> = None;
    let mut saver = Saver::default();
    let mut persist = |cursor_now: u64, failing: Option<String>, saved: &mut DrainCursor| {
        let c = DrainCursor {
            cursor: cursor_now,
            delivered: status.delivered.load(Ordering::Relaxed),
            failing,
        };
        if c != *saved && saver.idle() {
            *saved = c.clone();
            saver.start(&state, &info.id, c);
        }
    };
    loop {
        // A stream the receiver closed or reset: what was written on it in
        // the window may be lost, so it goes again on the next connection.
        if sender.broken() {
            cursor = unconfirmed.front().map_or(cursor, |(_, s)| *s);
            unconfirmed.clear();
            status.cursor.store(cursor, Ordering::Relaxed);
            sender.disconnect();
            prefetched = None;
        }
        // Confirm stream batches older than the window (on a connection
        // that is still up: checked just above).
        let now = Instant::now();
        while unconfirmed
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) >= window)
        {
            unconfirmed.pop_front();
        }
        let confirmed = unconfirmed.front().map_or(cursor, |(_, s)| *s);
        status.confirmed.store(confirmed, Ordering::Relaxed);
        if last_save.elapsed() >= Duration::from_secs(1) {
            persist(
                confirmed,
                failing.then(|| {
                    status
                        .notes
                        .lock()
                        .ok()
                        .and_then(|n| n.last_error.clone())
                        .unwrap_or_default()
                }),
                &mut saved,
            );
            last_save = Instant::now();
        }
        if stop.is_cancelled() {
            break;
        }
        let size = *committed.borrow_and_update();
        if cursor >= size {
            // Caught up: wait for commits, waking to confirm and save.
            let tick = if unconfirmed.is_empty() {
                Duration::from_secs(1)
            } else {
                Duration::from_millis(250)
            };
            let broken = sender.broken_signal().unwrap_or_default();
            tokio::select! {
                r = committed.changed() => if r.is_err() { break },
                () = tokio::time::sleep(tick) => {},
                () = broken.cancelled(), if sender.broken_signal().is_some() => {},
                () = stop.cancelled() => break,
            }
            // An idle connection gives its slot to a drain waiting for one
            // (once what it carried is confirmed).
            if unconfirmed.is_empty() {
                sender.release_if_contended();
            }
            continue;
        }
        if let Err(f) = sender.ready(&stop).await {
            let e = match f {
                Failure::Stopped => break,
                Failure::Retry(e) => e,
                Failure::Refused(e) => {
                    failing = true;
                    e
                }
            };
            state.metrics.drain_retry(&info.realm);
            status.set(
                if failing {
                    DrainState::Failing
                } else {
                    DrainState::Retrying
                },
                Some(e),
            );
            engine.publish(&state);
            if !pause(next_wait(failing, &mut backoff, max_backoff, &cfg), &stop).await {
                break;
            }
            continue;
        }
        let read = match prefetched.take() {
            // The batch read while the last one was sent, if it starts here
            // (after a failure the cursor moved back and it is dropped).
            Some((from, h)) if from == cursor => h.await,
            _ => read_at(cursor, size, spare.pop().unwrap_or_default()).await,
        };
        let batch = match read {
            Ok(Ok(b)) => b,
            _ if stop.is_cancelled() => break,
            Ok(Err(e)) => {
                status.set(DrainState::Retrying, Some(e));
                if !pause(max_backoff, &stop).await {
                    break;
                }
                continue;
            }
            Err(e) => {
                status.set(DrainState::Retrying, Some(format!("read task: {e}")));
                if !pause(max_backoff, &stop).await {
                    break;
                }
                continue;
            }
        };
        // Read the next batch while this one is sent, so the receiver never
        // waits for the journal.
        let size_now = *committed.borrow();
        if batch.next < size_now {
            let from = batch.next;
            prefetched = Some((
                from,
                read_at(from, size_now, spare.pop().unwrap_or_default()),
            ));
        }
        match sender.send(&batch, &stop).await {
            Ok(sent) => {
                let n = batch.spans.len() as u64;
                if stream && n > 0 {
                    unconfirmed.push_back((Instant::now(), batch.from));
                }
                cursor = batch.next;
                status.cursor.store(cursor, Ordering::Relaxed);
                status.delivered.fetch_add(n, Ordering::Relaxed);
                status
                    .truncated
                    .fetch_add(sent.truncated, Ordering::Relaxed);
                if n > 0 {
                    state
                        .metrics
                        .drain_delivered(&info.realm, n, sent.truncated);
                    if let Ok(mut notes) = status.notes.lock() {
                        notes.last_delivery_at = Some(now_text());
                    }
                }
                backoff = Duration::from_millis(100);
                if failing || status.state() != DrainState::Delivering {
                    failing = false;
                    status.set(DrainState::Delivering, None);
                    engine.publish(&state);
                    persist(
                        unconfirmed.front().map_or(cursor, |(_, s)| *s),
                        None,
                        &mut saved,
                    );
                }
            }
            Err(Failure::Stopped) => break,
            Err(Failure::Retry(e)) => {
                state.metrics.drain_retry(&info.realm);
                tracing::debug!(drain = %info.id, cause = %e, "drain delivery failed; retrying");
                // Whatever a broken stream may have lost goes again.
                cursor = unconfirmed.front().map_or(cursor, |(_, s)| *s);
                unconfirmed.clear();
                status.cursor.store(cursor, Ordering::Relaxed);
                if !failing {
                    status.set(DrainState::Retrying, Some(e));
                    engine.publish(&state);
                }
                if !pause(next_wait(failing, &mut backoff, max_backoff, &cfg), &stop).await {
                    break;
                }
            }
            Err(Failure::Refused(e)) => {
                state.metrics.drain_retry(&info.realm);
                tracing::warn!(drain = %info.id, realm = %info.realm, cause = %e, "drain destination refused the records; the drain is failing");
                cursor = unconfirmed.front().map_or(cursor, |(_, s)| *s);
                unconfirmed.clear();
                status.cursor.store(cursor, Ordering::Relaxed);
                failing = true;
                status.set(DrainState::Failing, Some(e.clone()));
                engine.publish(&state);
                persist(cursor, Some(e), &mut saved);
                if !pause(Duration::from_secs(cfg.failing_retry_secs.max(1)), &stop).await {
                    break;
                }
            }
        }
        if spare.len() < 2 {
            spare.push(batch.buf);
        }
    }
    sender.disconnect();
    // A stop confirms nothing new: what a stream sent in the window goes
    // again after a restart.
    let confirmed = unconfirmed.front().map_or(cursor, |(_, s)| *s);
    let failing_text = failing
        .then(|| status.notes.lock().ok().and_then(|n| n.last_error.clone()))
        .flatten();
    let c = DrainCursor {
        cursor: confirmed,
        delivered: status.delivered.load(Ordering::Relaxed),
        failing: failing_text,
    };
    saver.finish().await;
    // Removed drains have no cursor to save.
    let still_there = state
        .drains
        .running
        .lock()
        .is_ok_and(|r| r.contains_key(&info.id))
        || state.shutdown.is_cancelled();
    if still_there {
        saver.start(&state, &info.id, c);
        saver.finish().await;
    }
}
