//! The log side of witnessing (C2SP tlog-witness): every realm's newest
//! checkpoint goes to every configured witness with a consistency proof
//! from the size that witness cosigned last; the newest checkpoint that a
//! quorum of them cosigned is kept, fsynced, in `realms/<name>/witnessed.note`
//! and is what `GET /v1/checkpoint` serves.
//!
//! A round for a realm sends one checkpoint to every witness that has no
//! request of this realm in flight, so the cosignatures a round collects
//! are on the same note body. The note is stored as soon as a quorum has
//! answered; the round then ends, and the witnesses still to answer are
//! heard in the background (their sizes and errors kept). Each witness has
//! at most one request per realm and 64 across realms in flight, so a
//! witness that hangs holds up neither the others nor other realms.
//!
//! The old size for a witness is the one it last cosigned for this realm
//! (from its last 200 or 409), or the size of the stored cosigned note
//! after a start; a `409` with `text/x.tlog.size` corrects it and the
//! request is sent once more. A witness whose size is above the realm's
//! (asked again from the stored size each round), or that refuses the
//! proof (422), is one the realm cannot satisfy: the realm was rolled back
//! or forked, and after `max_lag_secs` without a quorum on its newest
//! records `/ready` names it.
//!
//! Witnessing is off the ingest path: commits never wait for it. One task
//! scans the open realms every 100 ms (or every `interval_ms` when
//! shorter), starts a round per realm at most every `interval_ms` (32
//! rounds sending at once), and stops after ingest has, with a last round
//! bounded to 3 s.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use futures_util::StreamExt as _;
use sealog_journal::checkpoint::SignedCheckpoint;
use sealog_journal::fs::{OpenHow, Vfs};
use tokio_util::sync::CancellationToken;

use crate::config;
use crate::realm::RealmHandle;
use crate::state::AppState;

/// The file in a realm's directory with its newest cosigned checkpoint.
pub const WITNESSED_FILE: &str = "witnessed.note";

/// Most bytes read of a witness's answer (cosignature lines are ~130
/// bytes each; an error text is cut).
const MAX_ANSWER: usize = 64 * 1024;
/// Rounds of different realms in flight at once.
const CONCURRENT_ROUNDS: usize = 32;
/// Requests in flight to one witness at once, across realms (a witness
/// that never answers holds this many sockets, not one per realm).
const PER_WITNESS: usize = 64;
/// Committed sizes remembered per realm for the lag (older ones merge).
const MAX_PENDING: usize = 4096;

/// What the server knows of one realm's witnessing.
#[derive(Debug)]
struct RealmState {
    /// Where the cosigned note is kept.
    path: PathBuf,
    /// The newest checkpoint with a quorum of cosignatures: size and note.
    cosigned: Option<(u64, Arc<str>)>,
    /// Per witness: the size it cosigned last for this realm, when known.
    sizes: Vec<Option<u64>>,
    /// Per witness: why its last submission failed, if it did.
    errors: Vec<Option<String>>,
    /// Committed sizes not covered by a cosigned checkpoint yet, with when
    /// they were first seen.
    pending: VecDeque<(u64, Instant)>,
    /// When the last round started.
    last_round: Option<Instant>,
    /// A round is in flight.
    busy: bool,
    /// Per witness: a request of this realm's is in flight.
    in_flight: Vec<bool>,
    /// The stored cosigned note does not match the realm's records.
    mismatch: Option<String>,
}

/// Witnessing for every realm of the server.
#[derive(Debug)]
pub struct Witnessing {
    cfg: config::Witnessing,
    client: Result<reqwest::Client, String>,
    fs: Arc<dyn Vfs>,
    realms: Mutex<HashMap<String, Arc<Mutex<RealmState>>>>,
    /// Realms whose stored note could not be read at the last try.
    load_errors: Mutex<HashMap<String, String>>,
    /// Per witness: requests in flight to it, across realms.
    witness_slots: Vec<Arc<tokio::sync::Semaphore>>,
}

/// Why a stored cosigned note was not taken.
enum Load {
    /// It could not be read now: read again on the next use.
    Retry(String),
    /// It does not hold for this realm.
    Mismatch(String),
}

/// One round's input.
struct Job {
    realm: Arc<RealmHandle>,
    state: Arc<Mutex<RealmState>>,
    cp: SignedCheckpoint,
}

impl Witnessing {
    /// Witnessing with `cfg` (off when it names no witness).
    pub fn new(cfg: config::Witnessing, fs: Arc<dyn Vfs>) -> Self {
        let client = if cfg.witnesses.is_empty() {
            Err("no witnesses".into())
        } else {
            let drains = config::Drains {
                ca_file: cfg.ca_file.clone(),
                ..config::Drains::default()
            };
            crate::drain::send::client_tls(&drains).and_then(|tls| {
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .timeout(Duration::from_secs(cfg.timeout_secs.max(1)))
                    .connect_timeout(Duration::from_secs(cfg.timeout_secs.clamp(1, 10)))
                    .user_agent(concat!("sealog/", env!("CARGO_PKG_VERSION")))
                    .use_preconfigured_tls((*tls).clone())
                    .build()
                    .map_err(|e| e.to_string())
            })
        };
        let witness_slots = cfg
            .witnesses
            .iter()
            .map(|_| Arc::new(tokio::sync::Semaphore::new(PER_WITNESS)))
            .collect();
        Self {
            cfg,
            client,
            fs,
            realms: Mutex::new(HashMap::new()),
            load_errors: Mutex::new(HashMap::new()),
            witness_slots,
        }
    }

    /// Whether any witness is configured.
    pub fn enabled(&self) -> bool {
        !self.cfg.witnesses.is_empty()
    }

    /// Cosignatures a checkpoint needs.
    pub fn quorum(&self) -> usize {
        self.cfg.needed()
    }

    /// The newest checkpoint of `realm` that carries a quorum of
    /// cosignatures, loading the stored one on first use.
    ///
    /// # Errors
    /// Why there is none to serve.
    pub fn cosigned(&self, state: &AppState, realm: &RealmHandle) -> Result<Arc<str>, String> {
        let rs = self.realm_state(state, realm)?;
        let st = rs.lock().map_err(|_| "witness state lock poisoned")?;
        if let Some(m) = &st.mismatch {
            return Err(m.clone());
        }
        st.cosigned
            .as_ref()
            .map(|(_, t)| t.clone())
            .ok_or_else(|| {
                format!(
                    "no checkpoint of this realm carries a quorum of {} witness cosignatures yet; ?latest gives the newest signed one",
                    self.quorum(),
                )
            })
    }

    /// The state of `realm`, created (and the stored note read and
    /// checked) the first time. An unreadable note is read again on the
    /// next use (and named by `/ready` meanwhile); a note that does not
    /// match the realm stops its witnessing until looked into.
    fn realm_state(
        &self,
        state: &AppState,
        realm: &RealmHandle,
    ) -> Result<Arc<Mutex<RealmState>>, String> {
        if let Some(s) = self
            .realms
            .lock()
            .map_err(|_| "witness state lock poisoned")?
            .get(realm.name())
        {
            return Ok(s.clone());
        }
        let path = {
            let dd = state.data_dir().map_err(|e| e.to_string())?;
            let name = sealog_event::RealmName::new(realm.name()).map_err(|e| e.to_string())?;
            dd.journal_dir(&name).with_file_name(WITNESSED_FILE)
        };
        let n = self.cfg.witnesses.len();
        let mut st = RealmState {
            path,
            cosigned: None,
            sizes: vec![None; n],
            errors: vec![None; n],
            pending: VecDeque::new(),
            last_round: None,
            busy: false,
            in_flight: vec![false; n],
            mismatch: None,
        };
        match self.load(realm, &st.path) {
            Ok(Some((size, text))) => {
                let name = realm.name().to_string();
                metrics::gauge!("sealog_realm_witnessed_size", "realm" => name).set(size as f64);
                st.cosigned = Some((size, text.into()));
            }
            Ok(None) => {}
            Err(Load::Retry(e)) => {
                tracing::error!(realm = %realm.name(), path = %st.path.display(), cause = %e, "stored cosigned checkpoint unreadable; read again on next use");
                let why = "its stored cosigned checkpoint (witnessed.note) cannot be read now (the server log says why)".to_string();
                if let Ok(mut errs) = self.load_errors.lock() {
                    errs.insert(realm.name().to_string(), why.clone());
                }
                return Err(why);
            }
            Err(Load::Mismatch(e)) => {
                tracing::error!(realm = %realm.name(), path = %st.path.display(), cause = %e, "stored cosigned checkpoint refused");
                st.mismatch = Some(e);
            }
        }
        if let Ok(mut errs) = self.load_errors.lock() {
            errs.remove(realm.name());
        }
        let rs = Arc::new(Mutex::new(st));
        let mut realms = self
            .realms
            .lock()
            .map_err(|_| "witness state lock poisoned")?;
        Ok(realms.entry(realm.name().to_string()).or_insert(rs).clone())
    }

    /// Reads the stored cosigned note of `realm` and checks it: the realm's
    /// signature, the quorum under the witnesses configured now, and the
    /// root of the realm's records at its size.
    fn load(&self, realm: &RealmHandle, path: &Path) -> Result<Option<(u64, String)>, Load> {
        let bytes = match self.fs.open(path, OpenHow::Read) {
            Ok(f) => f
                .read_to_end_at(0)
                .map_err(|e| Load::Retry(format!("read: {e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Load::Retry(format!("open: {e}"))),
        };
        let text = String::from_utf8(bytes)
            .map_err(|_| Load::Mismatch("its witnessed.note is not UTF-8".into()))?;
        let j = realm
            .journal()
            .read()
            .map_err(|_| Load::Retry("journal lock poisoned".into()))?;
        let cp = j.verifier().verify(&text).map_err(|e| {
            Load::Mismatch(format!("its witnessed.note: the realm's signature: {e}"))
        })?;
        let keys: Vec<_> = self.cfg.witnesses.iter().map(|w| w.key.clone()).collect();
        let n = sealog_journal::cosignature::count_cosigners(&text, &keys)
            .map_err(|e| Load::Mismatch(format!("its witnessed.note: a cosignature: {e}")))?;
        if n < self.quorum() {
            // Other witnesses than before: start again.
            return Ok(None);
        }
        if cp.size > j.size() {
            return Err(Load::Mismatch(format!(
                "the realm's cosigned checkpoint is of size {} but it holds {} records: it was rolled back",
                cp.size,
                j.size()
            )));
        }
        let root = j
            .root_at(cp.size)
            .map_err(|e| Load::Retry(format!("root at {}: {e}", cp.size)))?;
        if root != cp.root {
            return Err(Load::Mismatch(format!(
                "the realm's cosigned checkpoint of size {} does not match its records at that size: they were rewritten",
                cp.size
            )));
        }
        Ok(Some((cp.size, text)))
    }

    /// Realms whose newest records have gone without a quorum for longer
    /// than `max_lag_secs`, or whose stored cosigned note is refused, for
    /// `/ready`. Sets `sealog_witness_realms_behind`.
    pub fn problems(&self) -> Vec<String> {
        if !self.enabled() {
            return Vec::new();
        }
        let max = Duration::from_secs(self.cfg.max_lag_secs);
        let Ok(realms) = self.realms.lock() else {
            return vec!["witness state lock poisoned".into()];
        };
        let mut out: Vec<String> = self
            .load_errors
            .lock()
            .map(|e| {
                e.iter()
                    .map(|(n, why)| format!("realm {n}: {why}"))
                    .collect()
            })
            .unwrap_or_default();
        for (name, rs) in realms.iter() {
            let Ok(st) = rs.lock() else { continue };
            if let Some(m) = &st.mismatch {
                out.push(format!("realm {name}: {m}"));
                continue;
            }
            if let (Some((_, since)), Some((size, _))) = (st.pending.front(), st.pending.back()) {
                let age = since.elapsed();
                if age > max {
                    out.push(format!(
                        "realm {name}: no quorum of {} witness cosignatures for {} s; it holds {size} records{}",
                        self.quorum(),
                        age.as_secs(),
                        describe_errors(&self.cfg, &st.errors)
                    ));
                }
            }
        }
        out.sort();
        metrics::gauge!("sealog_witness_realms_behind").set(out.len() as f64);
        out
    }

    /// Picks the realms due for a round (`all`: whatever the interval).
    fn due(&self, state: &AppState, all: bool) -> Vec<Job> {
        let now = Instant::now();
        let interval = Duration::from_millis(self.cfg.interval_ms);
        let mut jobs = Vec::new();
        for realm in state.open_realms() {
            let cp = match realm.journal().read() {
                Ok(j) => j.latest_checkpoint().cloned(),
                Err(_) => continue,
            };
            let Some(cp) = cp else { continue };
            let Ok(rs) = self.realm_state(state, &realm) else {
                continue;
            };
            let Ok(mut st) = rs.lock() else { continue };
            let size = cp.checkpoint.size;
            let covered = st.cosigned.as_ref().map_or(0, |c| c.0);
            if size > covered && st.pending.back().is_none_or(|p| p.0 < size) {
                if st.pending.len() >= MAX_PENDING {
                    // Keep the oldest time: merge the second into the third.
                    st.pending.remove(1);
                }
                st.pending.push_back((size, now));
            }
            if size <= covered || st.busy || st.mismatch.is_some() {
                continue;
            }
            if !all
                && st
                    .last_round
                    .is_some_and(|t| now.duration_since(t) < interval)
            {
                continue;
            }
            st.busy = true;
            st.last_round = Some(now);
            drop(st);
            jobs.push(Job {
                realm,
                state: rs,
                cp,
            });
        }
        jobs
    }

    /// One round: the checkpoint to every witness that has no request of
    /// this realm's in flight, at once. The cosigned note is stored as
    /// soon as a quorum has answered; then the round ends (the realm may
    /// have its next one) and the witnesses still to answer are heard in
    /// the background, their sizes and errors kept, one request per
    /// witness and realm at a time, so a witness that never answers ties
    /// up nothing but its own slot.
    async fn round(state: Arc<AppState>, job: Job) {
        let me = &state.witnessing;
        let client = match &me.client {
            Ok(c) => c.clone(),
            Err(e) => {
                tracing::error!(cause = %e, "witness client cannot be built");
                if let Ok(mut st) = job.state.lock() {
                    st.busy = false;
                }
                return;
            }
        };
        let job = Arc::new(job);
        let size = job.cp.checkpoint.size;
        let starts: Vec<(usize, u64)> = match job.state.lock() {
            Ok(mut st) => {
                let base = st.cosigned.as_ref().map_or(0, |c| c.0);
                // A size above ours, as a 409 claimed, is asked again from
                // the stored cosigned size each round: a witness that
                // answered once wrongly (or was restored) is not shut out.
                let starts: Vec<(usize, u64)> = (0..st.sizes.len())
                    .filter(|i| !st.in_flight[*i])
                    .map(|i| (i, st.sizes[i].filter(|s| *s <= size).unwrap_or(base)))
                    .collect();
                for (i, _) in &starts {
                    st.in_flight[*i] = true;
                }
                starts
            }
            Err(_) => return,
        };
        let mut sends: futures_util::stream::FuturesUnordered<_> = starts
            .into_iter()
            .map(|(i, old)| {
                let (client, job, w) = (client.clone(), job.clone(), me.cfg.witnesses[i].clone());
                let slot = me.witness_slots[i].clone();
                async move {
                    let Ok(_slot) = slot.acquire_owned().await else {
                        return (i, Answer::closed());
                    };
                    (i, submit(&client, &w, &job, old).await)
                }
            })
            .collect();
        let mut lines: Vec<(usize, String)> = Vec::new();
        while lines.len() < me.quorum() {
            let Some((i, r)) = sends.next().await else {
                break;
            };
            if let Some(line) = me.heard(&job, i, r) {
                lines.push((i, line));
            }
        }
        if lines.len() >= me.quorum() {
            me.store(&job, &mut lines).await;
        }
        if let Ok(mut st) = job.state.lock() {
            st.busy = false;
        }
        if !sends.is_empty() {
            tokio::spawn(async move {
                while let Some((i, r)) = sends.next().await {
                    state.witnessing.heard(&job, i, r);
                }
            });
        }
    }

    /// Takes witness `i`'s answer for `job`: counted, its size and error
    /// kept, its request no longer in flight. The cosignature line, if any.
    fn heard(&self, job: &Job, i: usize, r: Answer) -> Option<String> {
        let name = self.cfg.witnesses[i].key.name().to_string();
        if r.followed {
            metrics::counter!("sealog_witness_requests_total", "witness" => name.clone(), "outcome" => "size_learned").increment(1);
        }
        let (line, error) = match r.result {
            Ok(line) => {
                metrics::counter!("sealog_witness_requests_total", "witness" => name, "outcome" => "cosigned").increment(1);
                (Some(line), None)
            }
            Err(e) => {
                metrics::counter!("sealog_witness_requests_total", "witness" => name.clone(), "outcome" => r.outcome).increment(1);
                tracing::warn!(realm = %job.realm.name(), witness = %name, cause = %e, "witness did not cosign");
                (None, Some(e))
            }
        };
        if let Ok(mut st) = job.state.lock() {
            if let Some(s) = r.size {
                st.sizes[i] = Some(s);
            }
            st.errors[i] = error;
            st.in_flight[i] = false;
        }
        line
    }

    /// Stores the note with `lines` (in the witnesses' order) as the
    /// realm's cosigned checkpoint, then serves it.
    async fn store(&self, job: &Job, lines: &mut [(usize, String)]) {
        lines.sort_by_key(|l| l.0);
        let size = job.cp.checkpoint.size;
        let text: String = std::iter::once(job.cp.text.as_str())
            .chain(lines.iter().map(|l| l.1.as_str()))
            .collect();
        let (fs, path) = match job.state.lock() {
            // Never an older note over a newer one, on disk or in memory.
            Ok(st) if st.cosigned.as_ref().is_some_and(|c| c.0 >= size) => return,
            Ok(st) => (self.fs.clone(), st.path.clone()),
            Err(_) => return,
        };
        let t = text.clone();
        let wrote = tokio::task::spawn_blocking(move || write_note(&*fs, &path, &t))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|r| r);
        if let Err(e) = wrote {
            tracing::error!(realm = %job.realm.name(), cause = %e, "cosigned checkpoint not stored");
            return;
        }
        let Ok(mut st) = job.state.lock() else { return };
        if st.cosigned.as_ref().is_some_and(|c| c.0 >= size) {
            return;
        }
        st.cosigned = Some((size, text.into()));
        let now = Instant::now();
        while st.pending.front().is_some_and(|p| p.0 <= size) {
            if let Some((_, seen)) = st.pending.pop_front() {
                metrics::histogram!("sealog_witness_lag_seconds")
                    .record(now.duration_since(seen).as_secs_f64());
            }
        }
        let realm = job.realm.name().to_string();
        metrics::gauge!("sealog_realm_witnessed_size", "realm" => realm).set(size as f64);
    }
}

/// What one witness answered.
struct Answer {
    result: Result<String, String>,
    /// The size the witness holds for the realm, when it said.
    size: Option<u64>,
    outcome: &'static str,
    /// A 409 told the size and the request went again.
    followed: bool,
}

impl Answer {
    /// No request was made: the server is stopping.
    fn closed() -> Self {
        Self {
            result: Err("not sent: shutting down".into()),
            size: None,
            outcome: "error",
            followed: false,
        }
    }
}

/// Sends `job`'s checkpoint to witness `w`, from `old`; a 409 naming
/// another size is followed once. The cosignature line on success.
async fn submit(
    client: &reqwest::Client,
    w: &config::WitnessTarget,
    job: &Job,
    old: u64,
) -> Answer {
    let size = job.cp.checkpoint.size;
    let mut old = old;
    let mut known = None;
    let mut followed = false;
    let fail = |why: String, outcome: &'static str, known: Option<u64>, followed: bool| Answer {
        result: Err(why),
        size: known,
        outcome,
        followed,
    };
    for _ in 0..2 {
        if old > size {
            return fail(
                format!("it cosigned size {old} of this realm, more than the {size} records it holds: the realm was rolled back"),
                "rolled_back",
                known,
                followed,
            );
        }
        let body = match request(job, old).await {
            Ok(b) => b,
            Err(e) => return fail(e, "error", known, followed),
        };
        let sent = client
            .post(format!("{}/add-checkpoint", w.url))
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(body)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                let e = e.without_url();
                return fail(format!("unreachable: {e}"), "unreachable", known, followed);
            }
        };
        let status = resp.status();
        let is_size = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/x.tlog.size"));
        let text = match read_capped(resp).await {
            Ok(t) => t,
            Err(e) => {
                return fail(
                    format!("HTTP {status}, body unreadable: {e}"),
                    "unreachable",
                    known,
                    followed,
                )
            }
        };
        if status == reqwest::StatusCode::OK {
            return Answer {
                result: cosignature_in(w, &job.cp.text, &text),
                size: Some(size),
                outcome: "bad_cosignature",
                followed,
            };
        }
        if status == reqwest::StatusCode::CONFLICT && is_size {
            let Ok(theirs) = text.trim().parse::<u64>() else {
                return fail(
                    format!("409 with a size that is not a number: {:?}", cut(&text)),
                    "conflict",
                    known,
                    followed,
                );
            };
            known = Some(theirs);
            if theirs != old {
                old = theirs;
                followed = true;
                continue;
            }
            return fail(
                format!("409: it cosigned another tree of size {theirs} for this realm: the realm was forked or rewritten"),
                "conflict",
                known,
                followed,
            );
        }
        let outcome = match status.as_u16() {
            403 => "forbidden",
            404 => "unknown_log",
            409 => "conflict",
            422 => "bad_proof",
            400..=499 => "refused",
            _ => "failed",
        };
        let why = if status == reqwest::StatusCode::UNPROCESSABLE_ENTITY {
            " (the consistency proof from the size it cosigned does not hold: the realm was rewritten)"
        } else {
            ""
        };
        return fail(
            format!("HTTP {status}{why}: {}", cut(&text)),
            outcome,
            known,
            followed,
        );
    }
    fail(
        format!("409 twice; its size is {known:?}"),
        "conflict",
        known,
        followed,
    )
}

/// An add-checkpoint body for `job` from `old`: the old size, the
/// consistency proof a line a hash, an empty line, the note.
async fn request(job: &Job, old: u64) -> Result<String, String> {
    let size = job.cp.checkpoint.size;
    let proof = if old == 0 || old == size {
        Vec::new()
    } else {
        let j = job.realm.journal().clone();
        tokio::task::spawn_blocking(move || {
            j.read()
                .map_err(|_| "journal lock poisoned".to_string())?
                .consistency_proof(old, size)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r)
        .map_err(|e| format!("consistency proof {old}..{size}: {e}"))?
    };
    let mut body = format!("old {old}\n");
    for h in &proof {
        body.push_str(&B64.encode(h));
        body.push('\n');
    }
    body.push('\n');
    body.push_str(&job.cp.text);
    Ok(body)
}

/// Reads at most [`MAX_ANSWER`] bytes of a response.
async fn read_capped(mut resp: reqwest::Response) -> Result<String, String> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        let room = MAX_ANSWER - out.len();
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= MAX_ANSWER {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The line by witness `w` in a 200 answer that verifies on `note`.
fn cosignature_in(w: &config::WitnessTarget, note: &str, answer: &str) -> Result<String, String> {
    let prefix = format!("— {} ", w.key.name());
    let mut seen = false;
    for line in answer.lines().filter(|l| l.starts_with(&prefix)) {
        seen = true;
        let line = format!("{line}\n");
        let with = format!("{note}{line}");
        match w.key.cosigned_at(&with) {
            Ok(Some(_)) => return Ok(line),
            Ok(None) => {}
            Err(e) => return Err(format!("its cosignature does not verify: {e}")),
        }
    }
    Err(if seen {
        "its cosignature is by another key of the same name".into()
    } else {
        format!(
            "200 without a cosignature by {}: {:?}",
            w.key.name(),
            cut(answer)
        )
    })
}

/// The first line of `text`, at most 200 characters.
fn cut(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect()
}

fn describe_errors(cfg: &config::Witnessing, errors: &[Option<String>]) -> String {
    let named: Vec<String> = cfg
        .witnesses
        .iter()
        .zip(errors)
        .filter_map(|(w, e)| e.as_ref().map(|e| format!("{}: {e}", w.key.name())))
        .collect();
    if named.is_empty() {
        String::new()
    } else {
        format!(" ({})", named.join("; "))
    }
}

/// Writes `text` to `path` whole or not at all: a temporary file,
/// fsynced, renamed over it, and the directory fsynced.
fn write_note(fs: &dyn Vfs, path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("note.tmp");
    let f = fs.open(&tmp, OpenHow::CreateTruncate { mode: 0o644 })?;
    f.write_at(text.as_bytes(), 0)?;
    f.sync_all()?;
    drop(f);
    fs.rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        fs.sync_dir(dir)?;
    }
    Ok(())
}

/// Runs witnessing until `stop`, which the server cancels once ingest has
/// stopped and every commit is done: every tick the realms due get a round of
/// their own (at most [`CONCURRENT_ROUNDS`] send at once), so a slow
/// witness or realm holds up no other. After `stop`, one last round for
/// every realm with uncosigned records, and everything still in flight,
/// get 3 s in all (inside the server's 10 s shutdown bound); what is left
/// then is dropped.
pub async fn run(state: Arc<AppState>, stop: CancellationToken) {
    if !state.witnessing.enabled() {
        return;
    }
    let tick = Duration::from_millis(state.witnessing.cfg.interval_ms.clamp(1, 100));
    let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_ROUNDS));
    let mut rounds = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(tick) => {}
        }
        while rounds.try_join_next().is_some() {}
        spawn_due(&state, &slots, &mut rounds, false).await;
        state.witnessing.problems();
    }
    // Rounds of realms busy at the first try go again once those end.
    let last = async {
        for _ in 0..3 {
            let started = spawn_due(&state, &slots, &mut rounds, true).await;
            let waited = !rounds.is_empty();
            while rounds.join_next().await.is_some() {}
            if started == 0 && !waited {
                break;
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(5), last)
        .await
        .is_err()
    {
        tracing::warn!("last witnessing round cut off after 5 s");
    }
    rounds.abort_all();
}

/// Starts a round for every realm due; how many.
async fn spawn_due(
    state: &Arc<AppState>,
    slots: &Arc<tokio::sync::Semaphore>,
    rounds: &mut tokio::task::JoinSet<()>,
    all: bool,
) -> usize {
    let st = state.clone();
    let Ok(jobs) = tokio::task::spawn_blocking(move || st.witnessing.due(&st, all)).await else {
        return 0;
    };
    let n = jobs.len();
    for job in jobs {
        let (state, slots) = (state.clone(), slots.clone());
        rounds.spawn(async move {
            let Ok(_slot) = slots.acquire_owned().await else {
                return;
            };
            Witnessing::round(state, job).await;
        });
    }
    n
}
