//! `sealog witness`: a transparency-log witness, as C2SP `tlog-witness`
//! defines one, cosigning with C2SP `tlog-cosignature` (Ed25519,
//! `cosignature/v1`).
//!
//! For each log it trusts (`--log`, a log's note verifier key; the key's
//! name is the log's origin), the witness keeps the size and root of the
//! last checkpoint it cosigned, and cosigns a new one only when it is
//! signed by the log and provably extends that one:
//!
//! ```text
//! POST <prefix>/add-checkpoint
//! old <size the client believes this witness cosigned last>
//! <consistency proof, one base64 hash a line, at most 63>
//!
//! <the checkpoint, a signed note>
//! ```
//!
//! | status | when |
//! |---|---|
//! | 200 | cosigned: the body is the witness's cosignature line |
//! | 400 | the request is malformed, or old size > checkpoint size |
//! | 403 | no signature by a trusted key of the origin verifies |
//! | 404 | the origin is not a log this witness serves |
//! | 409 | old size is not the size cosigned last (body: that size, `text/x.tlog.size`), or the roots differ at equal sizes |
//! | 422 | the consistency proof does not verify |
//!
//! The check of the old size and the update of the stored size happen
//! under one lock, and the new state is on disk (written to a temporary
//! file, fsynced, renamed, the directory fsynced) before the cosignature is
//! sent: two concurrent requests cannot roll the stored size back, and a
//! crash cannot make the witness forget a size it cosigned.
//!
//! A checkpoint the log validly signed for a size this witness already
//! cosigned, with another root, is proof that the log forked: both signed
//! notes (the one cosigned and the conflicting one, each with only the
//! log's own signature lines) go to `<data>/evidence.ndjson`, fsynced, once
//! per root. Nobody without the log's key can write there.
//!
//! Every request's whole body must arrive within 10 s (408), its headers
//! within 10 s, and at most 256 connections are served at once; shutdown
//! waits at most 30 s for requests under way. `GET /metrics` counts the
//! answers.
//!
//! The data directory holds `LOCK` (one witness process at a time),
//! `witness.key` (the name and Ed25519 seed, mode 0600), `witness.origins`
//! (every origin ever cosigned) and `logs/<sha256 of the origin>`, one
//! state file per log: the size, root and signed note last cosigned, and
//! the cosignature's time. A witness whose state for an origin it cosigned
//! is missing refuses to start, rather than start that log over at size 0.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sealog_journal::checkpoint::{SignedCheckpoint, VerifierKey};
use sealog_journal::cosignature::{CosignatureKey, Cosigner};
use sealog_journal::merkle::{empty_root, verify_consistency, Hash};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Failure;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Most consistency proof lines a request may carry (C2SP: 63).
const MAX_PROOF_LINES: usize = 63;
/// Largest request body: a checkpoint note (128 KiB at most) and 63 proof
/// lines.
const MAX_REQUEST: usize = sealog_journal::checkpoint::MAX_NOTE_LEN + 8 * 1024;
/// The evidence file stops growing here; later forks are still logged.
const MAX_EVIDENCE: u64 = 64 * 1024 * 1024;
/// Longest a request body may take to arrive.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The key file: the witness's name and seed.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    name: String,
    ed25519_seed: String,
}

/// Every origin this witness ever cosigned: a state file missing for one
/// of them is loss, not a log never seen.
#[derive(Serialize, Deserialize, Default)]
struct Origins {
    origins: BTreeSet<String>,
}

/// One log's state: the last checkpoint this witness cosigned.
#[derive(Serialize, Deserialize, Clone)]
struct LogState {
    origin: String,
    size: u64,
    root: String,
    /// The signed note cosigned (its body and the log's own lines).
    note: String,
    /// The time of the last cosignature, so no later one goes back.
    time: u64,
}

/// What was last cosigned for a log.
#[derive(Clone)]
struct Cosigned {
    size: u64,
    root: Hash,
    note: String,
    time: u64,
}

/// A log this witness serves: its trusted keys and its state, whose lock
/// is held from the check of the old size to the cosignature.
struct Slot {
    keys: Vec<VerifierKey>,
    state: Mutex<Option<Cosigned>>,
}

/// What `add-checkpoint` answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 200: the cosignature line(s).
    Cosigned(String),
    /// 400: a malformed request, or old size > checkpoint size.
    BadRequest(String),
    /// 403: no trusted signature verifies.
    Forbidden(String),
    /// 404: the origin is not served here.
    UnknownOrigin(String),
    /// 408: the body did not arrive in time.
    Timeout,
    /// 409: the size this witness cosigned last, and why.
    Conflict(u64, String),
    /// 413: the body is larger than any request can be.
    TooLarge,
    /// 422: the consistency proof does not verify.
    BadProof(String),
    /// 500: the new state could not be stored; nothing was cosigned.
    Storage(String),
}

/// A witness: its key, the logs it serves and what it cosigned for each.
pub struct Witness {
    dir: PathBuf,
    cosigner: Cosigner,
    logs: HashMap<String, Slot>,
    origins: Mutex<Origins>,
    /// Forks already written as evidence: (origin, size, root).
    recorded: Mutex<HashSet<(String, u64, Hash)>>,
    counts: Counts,
    _lock: std::fs::File,
}

/// Requests answered, by outcome.
#[derive(Default)]
struct Counts {
    cosigned: AtomicU64,
    refused: AtomicU64,
    conflict: AtomicU64,
    bad_proof: AtomicU64,
    storage: AtomicU64,
    forks: AtomicU64,
}

fn usage(message: impl Into<String>) -> Failure {
    Failure::from(message.into())
}

fn fs() -> Arc<dyn sealog_journal::fs::Vfs> {
    sealog_journal::fs::real()
}

fn state_path(dir: &Path, origin: &str) -> PathBuf {
    dir.join("logs")
        .join(hex::encode(Sha256::digest(origin.as_bytes())))
}

/// True when `path` exists; an error (no permission, I/O) is not "no".
fn present(path: &Path) -> Result<bool, Failure> {
    path.try_exists()
        .map_err(|e| usage(format!("{}: {e}", path.display())))
}

/// Takes `dir`'s LOCK: one witness process per data directory, or two
/// could each cosign one side of a fork.
fn lock(dir: &Path) -> Result<std::fs::File, Failure> {
    std::fs::create_dir_all(dir.join("logs"))?;
    let path = dir.join("LOCK");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| usage(format!("open {}: {e}", path.display())))?;
    if f.try_lock().is_err() {
        let who = std::fs::read_to_string(&path).unwrap_or_default();
        return Err(usage(format!(
            "{} is held by another process ({}); one witness per data directory",
            dir.display(),
            who.trim()
        )));
    }
    f.set_len(0)?;
    f.write_all(format!("pid {} (witness)", std::process::id()).as_bytes())?;
    Ok(f)
}

/// The witness's key in `dir`, made under `name` if there is none. An
/// existing key keeps its name: a witness's name is part of its identity,
/// so another `--name` is an error. Call with the directory locked when
/// the key may be made.
///
/// # Errors
/// I/O errors, a damaged key file, a name that differs from the stored one.
pub fn cosigner(dir: &Path, name: Option<&str>) -> Result<Cosigner, Failure> {
    let path = dir.join("witness.key");
    if present(&path)? {
        let kf: KeyFile = sealog_store::meta::read(&*fs(), &path, "sealog-witness-key")
            .map_err(|e| usage(e.to_string()))?;
        if let Some(n) = name {
            if n != kf.name {
                return Err(usage(format!(
                    "{} holds the key of witness {:?}, not {n:?}: a witness keeps its name (use another --data for another witness)",
                    path.display(),
                    kf.name
                )));
            }
        }
        let seed: [u8; 32] = B64
            .decode(&kf.ed25519_seed)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| {
                usage(format!(
                    "{}: seed is not base64 of 32 bytes",
                    path.display()
                ))
            })?;
        return Cosigner::new(kf.name, ed25519_dalek::SigningKey::from_bytes(&seed))
            .map_err(|e| usage(e.to_string()));
    }
    let Some(name) = name else {
        return Err(usage(format!(
            "{} has no witness key yet: start `sealog witness --name NAME` once to make one",
            dir.display()
        )));
    };
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let c = Cosigner::new(name, key.clone()).map_err(|e| usage(e.to_string()))?;
    sealog_store::meta::write(
        &*fs(),
        &path,
        "sealog-witness-key",
        &KeyFile {
            name: name.to_string(),
            ed25519_seed: B64.encode(key.to_bytes()),
        },
        0o600,
    )
    .map_err(|e| usage(e.to_string()))?;
    Ok(c)
}

/// The note with only the signature lines by the log's trusted keys (its
/// name and key id): what is kept and recorded, without whatever else a
/// client sent along. Every such line verified, or the note was refused.
fn log_lines_only(note: &str, keys: &[VerifierKey]) -> String {
    let Some(at) = note.find("\n\n") else {
        return note.to_string();
    };
    let mut out = note[..at + 2].to_string();
    for line in note[at + 2..].lines() {
        let mut parts = line.splitn(3, ' ');
        let (Some(_dash), Some(name), Some(sig)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let id = B64
            .decode(sig)
            .ok()
            .filter(|b| b.len() > 4)
            .map(|b| hex::encode(&b[..4]));
        if keys
            .iter()
            .any(|k| k.name() == name && id.as_deref() == Some(k.key_id_hex().as_str()))
        {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

impl Witness {
    /// Opens the witness in `dir` for `logs`, loading what it cosigned.
    ///
    /// # Errors
    /// Another process holding the directory; I/O errors; damaged or
    /// missing state of an origin it cosigned (a witness that cannot read
    /// what it cosigned must not start: it could cosign a fork).
    pub fn open(dir: &Path, name: Option<&str>, logs: Vec<VerifierKey>) -> Result<Self, Failure> {
        let lock = lock(dir)?;
        let cosigner = cosigner(dir, name)?;
        let origins_path = dir.join("witness.origins");
        let origins: Origins = if present(&origins_path)? {
            sealog_store::meta::read(&*fs(), &origins_path, "sealog-witness-origins")
                .map_err(|e| usage(e.to_string()))?
        } else {
            Origins::default()
        };
        let mut states = HashMap::new();
        for origin in &origins.origins {
            let path = state_path(dir, origin);
            if !present(&path)? {
                return Err(usage(format!(
                    "{} is missing: this witness cosigned {origin:?} before and would start it over at size 0; restore the file or retire the witness",
                    path.display()
                )));
            }
            let s: LogState = sealog_store::meta::read(&*fs(), &path, "sealog-witness-log")
                .map_err(|e| usage(e.to_string()))?;
            let root: Hash = B64
                .decode(&s.root)
                .ok()
                .and_then(|v| v.try_into().ok())
                .filter(|_| &s.origin == origin)
                .ok_or_else(|| {
                    usage(format!(
                        "{}: not the state of {origin:?}, or its root is not 32 bytes",
                        path.display()
                    ))
                })?;
            states.insert(
                origin.clone(),
                Cosigned {
                    size: s.size,
                    root,
                    note: s.note,
                    time: s.time,
                },
            );
        }
        let mut slots: HashMap<String, Slot> = HashMap::new();
        for k in logs {
            let origin = k.name().to_string();
            let slot = slots.entry(origin.clone()).or_insert_with(|| Slot {
                keys: Vec::new(),
                state: Mutex::new(states.get(&origin).cloned()),
            });
            slot.keys.push(k);
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            cosigner,
            logs: slots,
            origins: Mutex::new(origins),
            recorded: Mutex::new(HashSet::new()),
            counts: Counts::default(),
            _lock: lock,
        })
    }

    /// The witness's verifier key.
    pub fn verifier(&self) -> CosignatureKey {
        self.cosigner.verifier()
    }

    /// Handles one `add-checkpoint` request body.
    pub fn add_checkpoint(&self, body: &[u8]) -> Outcome {
        let (out, fork) = self.judge(body);
        if let Some(f) = fork {
            self.record_fork(f);
        }
        let c = &self.counts;
        match &out {
            Outcome::Cosigned(_) => c.cosigned.fetch_add(1, Ordering::Relaxed),
            Outcome::Conflict(..) => c.conflict.fetch_add(1, Ordering::Relaxed),
            Outcome::BadProof(_) => c.bad_proof.fetch_add(1, Ordering::Relaxed),
            Outcome::Storage(_) => c.storage.fetch_add(1, Ordering::Relaxed),
            _ => c.refused.fetch_add(1, Ordering::Relaxed),
        };
        out
    }

    /// The answer, and a fork to record (after the log's lock is let go).
    fn judge(&self, body: &[u8]) -> (Outcome, Option<Fork>) {
        let (old, proof, note) = match parse_request(body) {
            Ok(r) => r,
            Err(e) => return (Outcome::BadRequest(e), None),
        };
        let cp = match SignedCheckpoint::parse_unverified(note) {
            Ok(c) => c.checkpoint,
            Err(e) => return (Outcome::BadRequest(e.to_string()), None),
        };
        let Some(slot) = self.logs.get(&cp.origin) else {
            let e = format!("this witness serves no log {:?}", cp.origin);
            return (Outcome::UnknownOrigin(e), None);
        };
        // Signatures by unknown keys are ignored; one trusted one suffices.
        if !slot.keys.iter().any(|k| k.verify(note).is_ok()) {
            let e = format!("no signature by a trusted key of {:?} verifies", cp.origin);
            return (Outcome::Forbidden(e), None);
        }
        if old > cp.size {
            let e = format!("old size {old} is above the checkpoint's size {}", cp.size);
            return (Outcome::BadRequest(e), None);
        }
        let mut state = slot.state.lock().unwrap_or_else(|p| p.into_inner());
        let (size, root) = state
            .as_ref()
            .map_or((0, empty_root()), |c| (c.size, c.root));
        if old != size {
            let e = format!("old size {old} is not {size}, the size this witness cosigned last");
            return (Outcome::Conflict(size, e), None);
        }
        if old == cp.size {
            if cp.root != root {
                let fork = state.as_ref().map(|c| Fork {
                    origin: cp.origin.clone(),
                    size,
                    root: cp.root,
                    cosigned: c.note.clone(),
                    conflicting: log_lines_only(note, &slot.keys),
                });
                let e = format!("another root for size {size}, which this witness cosigned");
                return (Outcome::Conflict(size, e), fork);
            }
            if !proof.is_empty() {
                let e = "a proof between equal sizes must be empty".to_string();
                return (Outcome::BadProof(e), None);
            }
        } else if old == 0 {
            if !proof.is_empty() {
                let e = "the proof from size 0 must be empty".to_string();
                return (Outcome::BadProof(e), None);
            }
        } else if let Err(e) = verify_consistency(old, cp.size, &proof, &root, &cp.root) {
            let e = format!(
                "the checkpoint of size {} is not consistent with size {old} cosigned before: {e}",
                cp.size
            );
            return (Outcome::BadProof(e), None);
        }
        // No cosignature goes back in time, whatever the clock does.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let time = now.max(state.as_ref().map_or(0, |c| c.time));
        let next = Cosigned {
            size: cp.size,
            root: cp.root,
            note: log_lines_only(note, &slot.keys),
            time,
        };
        if let Err(e) = self.store(&cp.origin, &next) {
            tracing::error!(error = %e, origin = %cp.origin, "cannot store the witness's state; nothing cosigned");
            return (
                Outcome::Storage(format!("cannot store the new state: {e}")),
                None,
            );
        }
        *state = Some(next);
        let body = &note[..note.find("\n\n").map_or(note.len(), |at| at + 1)];
        // Signed under the lock: a later cosignature never carries an
        // earlier time than one for a smaller tree.
        (Outcome::Cosigned(self.cosigner.cosign(body, time)), None)
    }

    /// Writes a log's new state durably; a first cosignature for an origin
    /// adds it to `witness.origins` first.
    fn store(&self, origin: &str, c: &Cosigned) -> Result<(), sealog_store::StoreError> {
        {
            let mut origins = self.origins.lock().unwrap_or_else(|p| p.into_inner());
            if !origins.origins.contains(origin) {
                let mut next = Origins {
                    origins: origins.origins.clone(),
                };
                next.origins.insert(origin.to_string());
                sealog_store::meta::write(
                    &*fs(),
                    &self.dir.join("witness.origins"),
                    "sealog-witness-origins",
                    &next,
                    0o644,
                )?;
                *origins = next;
            }
        }
        let s = LogState {
            origin: origin.to_string(),
            size: c.size,
            root: B64.encode(c.root),
            note: c.note.clone(),
            time: c.time,
        };
        let path = state_path(&self.dir, origin);
        sealog_store::meta::write(&*fs(), &path, "sealog-witness-log", &s, 0o644)
    }

    /// Writes a fork to `evidence.ndjson`, once per root.
    fn record_fork(&self, f: Fork) {
        self.counts.forks.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(origin = %f.origin, size = f.size, "the log signed two roots for one size: a fork");
        let mut recorded = self.recorded.lock().unwrap_or_else(|p| p.into_inner());
        if !recorded.insert((f.origin.clone(), f.size, f.root)) {
            return;
        }
        let path = self.dir.join("evidence.ndjson");
        let len = std::fs::metadata(&path).map_or(0, |m| m.len());
        if len >= MAX_EVIDENCE {
            tracing::error!(path = %path.display(), "evidence file is full; this fork is only logged");
            return;
        }
        let line = serde_json::json!({
            "at": sealog_event::format_rfc3339_nanos(sealog_event::now_ns()),
            "kind": "fork",
            "origin": f.origin,
            "size": f.size,
            "cosigned": f.cosigned,
            "conflicting": f.conflicting,
        });
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| {
                file.write_all(format!("{line}\n").as_bytes())?;
                file.sync_data()
            });
        if let Err(e) = written {
            tracing::error!(error = %e, path = %path.display(), "cannot record evidence");
        }
    }

    fn metrics(&self) -> String {
        let c = &self.counts;
        let mut out = String::from(
            "# HELP sealog_witness_requests_total add-checkpoint requests answered, by outcome.\n# TYPE sealog_witness_requests_total counter\n",
        );
        for (outcome, n) in [
            ("cosigned", &c.cosigned),
            ("refused", &c.refused),
            ("conflict", &c.conflict),
            ("bad_proof", &c.bad_proof),
            ("storage_error", &c.storage),
        ] {
            out.push_str(&format!(
                "sealog_witness_requests_total{{outcome=\"{outcome}\"}} {}\n",
                n.load(Ordering::Relaxed)
            ));
        }
        out.push_str(&format!(
            "# HELP sealog_witness_forks_total checkpoints a log signed with another root for a size already cosigned.\n# TYPE sealog_witness_forks_total counter\nsealog_witness_forks_total {}\n",
            c.forks.load(Ordering::Relaxed)
        ));
        out
    }
}

/// Two signed notes of one log for one size with different roots.
struct Fork {
    origin: String,
    size: u64,
    root: Hash,
    cosigned: String,
    conflicting: String,
}

/// Splits a request into the old size, the proof and the checkpoint note.
fn parse_request(body: &[u8]) -> Result<(u64, Vec<Hash>, &str), String> {
    let text = std::str::from_utf8(body).map_err(|_| "the request is not UTF-8".to_string())?;
    let (first, mut rest) = text
        .split_once('\n')
        .ok_or("the request has no old size line")?;
    let digits = first
        .strip_prefix("old ")
        .ok_or("the first line is not `old <size>`")?;
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return Err("the old size is not a decimal number without leading zeros".into());
    }
    let old: u64 = digits.parse().map_err(|_| "the old size is too large")?;
    let mut proof = Vec::new();
    loop {
        let (line, after) = rest
            .split_once('\n')
            .ok_or("the request has no empty line before the checkpoint")?;
        rest = after;
        if line.is_empty() {
            break;
        }
        if proof.len() == MAX_PROOF_LINES {
            return Err(format!(
                "more than {MAX_PROOF_LINES} consistency proof lines"
            ));
        }
        let h: Hash = B64
            .decode(line)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| {
                format!(
                    "proof line {} is not base64 of a 32-byte hash",
                    proof.len() + 1
                )
            })?;
        proof.push(h);
    }
    Ok((old, proof, rest))
}

impl IntoResponse for Outcome {
    fn into_response(self) -> Response {
        let text = |status: StatusCode, body: String| {
            (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                body + "\n",
            )
                .into_response()
        };
        match self {
            Outcome::Cosigned(lines) => text(StatusCode::OK, lines.trim_end().to_string()),
            Outcome::BadRequest(e) => text(StatusCode::BAD_REQUEST, e),
            Outcome::Forbidden(e) => text(StatusCode::FORBIDDEN, e),
            Outcome::UnknownOrigin(e) => text(StatusCode::NOT_FOUND, e),
            Outcome::Timeout => text(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the body did not arrive within {} s",
                    BODY_TIMEOUT.as_secs()
                ),
            ),
            Outcome::Conflict(size, _) => (
                StatusCode::CONFLICT,
                [(header::CONTENT_TYPE, "text/x.tlog.size")],
                format!("{size}\n"),
            )
                .into_response(),
            Outcome::TooLarge => text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("a request is at most {MAX_REQUEST} bytes"),
            ),
            Outcome::BadProof(e) => text(StatusCode::UNPROCESSABLE_ENTITY, e),
            Outcome::Storage(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e),
        }
    }
}

async fn add_checkpoint(State(w): State<Arc<Witness>>, req: Request) -> Response {
    let body: Body = req.into_body();
    let bytes =
        match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_REQUEST)).await {
            Err(_) => return Outcome::Timeout.into_response(),
            Ok(Err(_)) => return Outcome::TooLarge.into_response(),
            Ok(Ok(b)) => b,
        };
    // The check, the fsync and the signature are blocking work.
    match tokio::task::spawn_blocking(move || w.add_checkpoint(&bytes)).await {
        Ok(out) => out.into_response(),
        Err(e) => Outcome::Storage(format!("the request's task failed: {e}")).into_response(),
    }
}

async fn health() -> &'static str {
    "ok\n"
}

async fn metrics(State(w): State<Arc<Witness>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        w.metrics(),
    )
        .into_response()
}

/// The witness's HTTP routes: PREFIX/add-checkpoint, /health, /metrics.
///
/// # Errors
/// A prefix that does not start with '/' or has characters other than
/// letters, digits and `._~/-`.
pub fn router(w: Arc<Witness>, prefix: &str) -> Result<axum::Router, Failure> {
    let ok = prefix.is_empty()
        || (prefix.starts_with('/')
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._~/-".contains(&b)));
    if !ok {
        return Err(usage(format!(
            "--prefix {prefix:?}: a path starting with '/', of letters, digits and ._~/-"
        )));
    }
    let prefix = prefix.trim_end_matches('/');
    Ok(axum::Router::new()
        .route(
            &format!("{prefix}/add-checkpoint"),
            axum::routing::post(add_checkpoint),
        )
        .route("/health", axum::routing::get(health))
        .route("/metrics", axum::routing::get(metrics))
        .with_state(w))
}

/// `sealog witness`: prints the verifier key, then serves until SIGTERM or
/// SIGINT (requests under way get at most 30 s).
///
/// # Errors
/// Bad arguments, an unreadable or locked data directory, a port in use.
pub fn serve(
    dir: &Path,
    http: std::net::SocketAddr,
    name: Option<&str>,
    logs: &[String],
    prefix: &str,
) -> Result<(), Failure> {
    if logs.is_empty() {
        return Err(usage(
            "a witness needs at least one --log (a log's verifier key, NAME+KEYID+KEY)",
        ));
    }
    let keys = logs
        .iter()
        .map(|s| {
            s.parse::<VerifierKey>()
                .map_err(|e| usage(format!("--log {s:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let w = Arc::new(Witness::open(dir, name, keys)?);
    let app = router(w.clone(), prefix)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sealog-witness")
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(http)
            .await
            .map_err(|e| usage(format!("bind {http}: {e}")))?;
        println!("{}", w.verifier());
        eprintln!(
            "sealog: witness {} listening on http://{}{}/add-checkpoint for {} log(s)",
            w.cosigner.name(),
            listener.local_addr()?,
            prefix.trim_end_matches('/'),
            w.logs.len()
        );
        let stop = tokio_util::sync::CancellationToken::new();
        let on_signal = stop.clone();
        tokio::spawn(async move {
            crate::serve::wait_for_signal().await;
            on_signal.cancel();
        });
        let limits = sealog_server::config::Limits {
            max_http_connections: 256,
            header_timeout_secs: 10,
            ..Default::default()
        };
        sealog_server::listen::serve_http(listener, app, &limits, stop).await;
        Ok::<(), Failure>(())
    })
}
