//! Log sessions (logshuttle's `POST /log-sessions`): a short-lived
//! capability to read an app's or a site's lines as plain text, the last
//! `lines` records first and then, with `tail`, new ones as they commit.
//!
//! The id is 122 random bits (a version 4 UUID, as logshuttle's) and is
//! the only credential `GET /log-sessions/{id}` takes, for the session's
//! time to live; only its SHA-256 is kept. A session also ends when the
//! token that opened it is revoked. Sessions live in memory: a restart
//! ends them, as a Redis TTL would have.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sealog_store::Select;
use sha2::{Digest, Sha256};

use super::record::{self, Matcher};
use crate::auth::Grant;
use crate::realm::{RealmHandle, SharedLog};
use crate::state::AppState;

/// Most sessions open (not expired) at once.
pub const MAX_SESSIONS: usize = 10_000;

/// Most sessions of one realm open at once, so one realm cannot take them
/// all.
pub const MAX_REALM_SESSIONS: usize = 500;

/// Most records looked at backwards for a session's history.
const MAX_HISTORY_SCAN: u64 = 2_000_000;

/// One session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The realm.
    pub realm: String,
    /// Its app and space, or site.
    pub select: Select,
    /// Records of history to send first.
    pub lines: usize,
    /// Keep sending new records.
    pub tail: bool,
    /// When the id stops working.
    pub expires: Instant,
    /// The token that opened it.
    pub grant: Grant,
}

/// The open sessions, by the SHA-256 of their ids.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Opens a session; returns its id, or `None` when [`MAX_SESSIONS`]
    /// are open, or [`MAX_REALM_SESSIONS`] of its realm.
    pub fn create(&self, s: Session) -> Option<String> {
        let mut map = self.map.lock().ok()?;
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS
            || map.values().filter(|o| o.realm == s.realm).count() >= MAX_REALM_SESSIONS
        {
            return None;
        }
        let id = sealog_store::uuid_v4();
        map.insert(key(&id), s);
        Some(id)
    }

    /// The session `id` if it has not expired and its token still works.
    pub fn get(&self, state: &AppState, id: &str) -> Option<Session> {
        let mut map = self.map.lock().ok()?;
        let k = key(id);
        let s = map.get_mut(&k)?;
        if s.expires <= Instant::now() || !s.grant.still_valid(state) {
            map.remove(&k);
            return None;
        }
        Some(s.clone())
    }
}

/// The session lines of records `[from, to)` that `m` selects.
fn lines_of(j: &SharedLog, m: &Matcher, from: u64, to: u64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if let Ok(j) = j.read() {
        let _ = j.read(from, to, &mut |_, line| {
            if !m.may_match(line) {
                // Not selected; no parse.
            } else if let Some(f) = record::fields(line) {
                if m.matches(line, &f) {
                    let mut l = Vec::new();
                    record::session_line(&mut l, line, &f, m);
                    out.push(l);
                }
            }
            std::ops::ControlFlow::Continue(())
        });
    }
    out
}

/// The last `n` selected records before `size`, oldest first.
fn history(j: &SharedLog, m: &Matcher, size: u64, n: usize) -> Vec<u8> {
    let mut parts: Vec<Vec<Vec<u8>>> = Vec::new();
    let (mut found, mut hi) = (0usize, size);
    while hi > 0 && found < n && size - hi < MAX_HISTORY_SCAN {
        let lo = hi.saturating_sub(8192);
        let mut got = lines_of(j, m, lo, hi);
        let want = n - found;
        if got.len() > want {
            got.drain(..got.len() - want);
        }
        found += got.len();
        parts.push(got);
        hi = lo;
    }
    parts.into_iter().rev().flatten().flatten().collect()
}

/// What a session's body stream carries between polls.
struct Reader {
    state: Arc<AppState>,
    session: Session,
    matcher: Arc<Matcher>,
    journal: SharedLog,
    committed: tokio::sync::watch::Receiver<u64>,
    cursor: u64,
    history: Option<(u64, usize)>,
    idle: Option<Duration>,
    last_sent: Instant,
    _permits: (
        tokio::sync::OwnedSemaphorePermit,
        tokio::sync::OwnedSemaphorePermit,
    ),
}

impl Reader {
    async fn next(&mut self) -> Option<Bytes> {
        if let Some((size, n)) = self.history.take() {
            let (j, m) = (self.journal.clone(), self.matcher.clone());
            let text = tokio::task::spawn_blocking(move || history(&j, &m, size, n))
                .await
                .unwrap_or_default();
            self.cursor = size;
            if !text.is_empty() {
                self.last_sent = Instant::now();
                return Some(Bytes::from(text));
            }
        }
        if !self.session.tail {
            return None;
        }
        loop {
            if self.state.shutdown.is_cancelled() || !self.session.grant.still_valid(&self.state) {
                return None;
            }
            let size = *self.committed.borrow_and_update();
            if self.cursor < size {
                let to = size.min(self.cursor + 4096);
                let (j, m, from) = (self.journal.clone(), self.matcher.clone(), self.cursor);
                let got = tokio::task::spawn_blocking(move || lines_of(&j, &m, from, to))
                    .await
                    .unwrap_or_default();
                self.cursor = to;
                if !got.is_empty() {
                    self.last_sent = Instant::now();
                    return Some(Bytes::from(got.concat()));
                }
                continue;
            }
            let wait = match self.idle {
                Some(idle) => {
                    let left = idle.saturating_sub(self.last_sent.elapsed());
                    if left.is_zero() {
                        return None;
                    }
                    left
                }
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                r = self.committed.changed() => if r.is_err() { return None },
                () = tokio::time::sleep(wait) => {},
                () = self.state.shutdown.cancelled() => return None,
            }
        }
    }
}

/// The body of `GET /log-sessions/{id}`: history, then (with `tail`) new
/// lines until the client leaves, the token is revoked, the server stops,
/// or nothing new comes for `session_idle_secs`.
///
/// # Errors
/// The matcher of a stored selection (never for sessions the API made).
pub fn body(
    state: Arc<AppState>,
    realm: &RealmHandle,
    session: Session,
    permits: (
        tokio::sync::OwnedSemaphorePermit,
        tokio::sync::OwnedSemaphorePermit,
    ),
) -> Result<axum::body::Body, String> {
    let matcher = Arc::new(Matcher::new(&session.select)?);
    let journal = realm.journal().clone();
    let size = journal.read().map_err(|_| "journal lock poisoned")?.size();
    let idle = state.config.drains.session_idle_secs;
    let r = Reader {
        matcher,
        committed: realm.committed(),
        cursor: size,
        history: (session.lines > 0).then_some((size, session.lines)),
        idle: (idle > 0).then(|| Duration::from_secs(idle)),
        last_sent: Instant::now(),
        journal,
        session,
        state,
        _permits: permits,
    };
    let stream = futures_util::stream::unfold(r, |mut r| async move {
        let b = r.next().await?;
        Some((Ok::<_, std::convert::Infallible>(b), r))
    });
    Ok(axum::body::Body::from_stream(stream))
}
