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
//! A checkpoint refused with 409 or 422 that carries a valid signature of
//! the log is evidence that the log forked or rolled back: it is appended
//! to `<data>/evidence.ndjson` (fsynced, up to 64 MiB) and counted.
//!
//! The data directory holds `witness.key` (the name and Ed25519 seed, mode
//! 0600) and `logs/<sha256 of the origin>`, one state file per log.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
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
/// The evidence file stops growing here (a log that keeps forking has
/// made its point); later refusals are still counted and logged.
const MAX_EVIDENCE: u64 = 64 * 1024 * 1024;

/// The key file: the witness's name and seed.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    name: String,
    ed25519_seed: String,
}

/// One log's state: the last checkpoint this witness cosigned.
#[derive(Serialize, Deserialize, Clone)]
struct LogState {
    origin: String,
    size: u64,
    root: String,
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
    /// 409: the size this witness cosigned last, and why.
    Conflict(u64, String),
    /// 422: the consistency proof does not verify.
    BadProof(String),
    /// 500: the new state could not be stored; nothing was cosigned.
    Storage(String),
}

/// A witness: its key, the logs it serves and what it cosigned for each.
pub struct Witness {
    dir: PathBuf,
    cosigner: Cosigner,
    logs: HashMap<String, Vec<VerifierKey>>,
    /// Per origin, the last cosigned size and root; the lock is held from
    /// the check of the old size to the fsync of the new state.
    state: Mutex<HashMap<String, (u64, Hash)>>,
    evidence: Mutex<()>,
    /// Requests answered, by status.
    pub counts: Counts,
}

/// Requests answered, by outcome.
#[derive(Default)]
pub struct Counts {
    /// 200.
    pub cosigned: AtomicU64,
    /// 400, 403, 404.
    pub refused: AtomicU64,
    /// 409.
    pub conflict: AtomicU64,
    /// 422.
    pub bad_proof: AtomicU64,
    /// Refusals with a valid log signature, written as evidence.
    pub evidence: AtomicU64,
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

/// Creates the witness's key in `dir` under `name` if there is none, and
/// returns its cosigner. An existing key keeps its name: a witness's name
/// is part of its identity, so another `--name` is an error.
///
/// # Errors
/// I/O errors, a damaged key file, a name that differs from the stored one.
pub fn cosigner(dir: &Path, name: Option<&str>) -> Result<Cosigner, Failure> {
    let path = dir.join("witness.key");
    if path.exists() {
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
    std::fs::create_dir_all(dir.join("logs"))?;
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

impl Witness {
    /// Opens the witness in `dir` for `logs`, loading what it cosigned.
    ///
    /// # Errors
    /// I/O errors and damaged state files (a witness that cannot read what
    /// it cosigned must not start: it could cosign a fork).
    pub fn open(dir: &Path, cosigner: Cosigner, logs: Vec<VerifierKey>) -> Result<Self, Failure> {
        std::fs::create_dir_all(dir.join("logs"))?;
        let mut by_origin: HashMap<String, Vec<VerifierKey>> = HashMap::new();
        for k in logs {
            by_origin.entry(k.name().to_string()).or_default().push(k);
        }
        let mut state = HashMap::new();
        for origin in by_origin.keys() {
            let path = state_path(dir, origin);
            if !path.exists() {
                continue;
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
            state.insert(origin.clone(), (s.size, root));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            cosigner,
            logs: by_origin,
            state: Mutex::new(state),
            evidence: Mutex::new(()),
            counts: Counts::default(),
        })
    }

    /// The witness's verifier key.
    pub fn verifier(&self) -> CosignatureKey {
        self.cosigner.verifier()
    }

    /// Handles one `add-checkpoint` request body.
    pub fn add_checkpoint(&self, body: &[u8]) -> Outcome {
        let out = self.judge(body);
        let c = &self.counts;
        match &out {
            Outcome::Cosigned(_) => c.cosigned.fetch_add(1, Ordering::Relaxed),
            Outcome::Conflict(..) => c.conflict.fetch_add(1, Ordering::Relaxed),
            Outcome::BadProof(_) => c.bad_proof.fetch_add(1, Ordering::Relaxed),
            _ => c.refused.fetch_add(1, Ordering::Relaxed),
        };
        out
    }

    fn judge(&self, body: &[u8]) -> Outcome {
        let (old, proof, note) = match parse_request(body) {
            Ok(r) => r,
            Err(e) => return Outcome::BadRequest(e),
        };
        let cp = match SignedCheckpoint::parse_unverified(note) {
            Ok(c) => c.checkpoint,
            Err(e) => return Outcome::BadRequest(e.to_string()),
        };
        let Some(keys) = self.logs.get(&cp.origin) else {
            return Outcome::UnknownOrigin(format!("this witness serves no log {:?}", cp.origin));
        };
        // Signatures by unknown keys are ignored; one trusted one suffices.
        if !keys.iter().any(|k| k.verify(note).is_ok()) {
            return Outcome::Forbidden(format!(
                "no signature by a trusted key of {:?} verifies",
                cp.origin
            ));
        }
        if old > cp.size {
            return Outcome::BadRequest(format!(
                "old size {old} is above the checkpoint's size {}",
                cp.size
            ));
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (size, root) = state.get(&cp.origin).copied().unwrap_or((0, empty_root()));
        if old != size {
            return Outcome::Conflict(
                size,
                format!("old size {old} is not {size}, the size this witness cosigned last"),
            );
        }
        if old == cp.size {
            if !proof.is_empty() {
                return self.refuse_signed(
                    note,
                    Outcome::BadProof("a proof between equal sizes must be empty".into()),
                );
            }
            if cp.root != root {
                return self.refuse_signed(
                    note,
                    Outcome::Conflict(
                        size,
                        format!("a different root for size {size}, which this witness cosigned"),
                    ),
                );
            }
        } else if old == 0 {
            if !proof.is_empty() {
                return self.refuse_signed(
                    note,
                    Outcome::BadProof("the proof from size 0 must be empty".into()),
                );
            }
        } else if let Err(e) = verify_consistency(old, cp.size, &proof, &root, &cp.root) {
            return self.refuse_signed(
                note,
                Outcome::BadProof(format!(
                    "the checkpoint of size {} is not consistent with size {old} cosigned before: {e}",
                    cp.size
                )),
            );
        }
        if (cp.size, cp.root) != (size, root) {
            let s = LogState {
                origin: cp.origin.clone(),
                size: cp.size,
                root: B64.encode(cp.root),
            };
            let path = state_path(&self.dir, &cp.origin);
            if let Err(e) =
                sealog_store::meta::write(&*fs(), &path, "sealog-witness-log", &s, 0o644)
            {
                tracing::error!(error = %e, origin = %cp.origin, "cannot store the witness's state; nothing cosigned");
                return Outcome::Storage(format!("cannot store the new state: {e}"));
            }
            state.insert(cp.origin.clone(), (cp.size, cp.root));
        }
        drop(state);
        let body = &note[..note.find("\n\n").map_or(note.len(), |at| at + 1)];
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Outcome::Cosigned(self.cosigner.cosign(body, now))
    }

    /// Records a refused checkpoint that the log validly signed: evidence
    /// that it forked or rolled back.
    fn refuse_signed(&self, note: &str, out: Outcome) -> Outcome {
        self.counts.evidence.fetch_add(1, Ordering::Relaxed);
        let (status, reason) = match &out {
            Outcome::Conflict(_, r) => (409, r.as_str()),
            Outcome::BadProof(r) => (422, r.as_str()),
            _ => (0, ""),
        };
        tracing::warn!(
            status,
            reason,
            "refused a validly signed checkpoint: evidence of a fork or rollback"
        );
        let _guard = self.evidence.lock().unwrap_or_else(|p| p.into_inner());
        let path = self.dir.join("evidence.ndjson");
        let len = std::fs::metadata(&path).map_or(0, |m| m.len());
        if len < MAX_EVIDENCE {
            let line = serde_json::json!({
                "at": sealog_event::format_rfc3339_nanos(sealog_event::now_ns()),
                "status": status,
                "reason": reason,
                "checkpoint": note,
            });
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| {
                    f.write_all(format!("{line}\n").as_bytes())?;
                    f.sync_data()
                });
            if let Err(e) = written {
                tracing::error!(error = %e, path = %path.display(), "cannot record evidence");
            }
        }
        out
    }
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
            Outcome::Conflict(size, _) => (
                StatusCode::CONFLICT,
                [(header::CONTENT_TYPE, "text/x.tlog.size")],
                format!("{size}\n"),
            )
                .into_response(),
            Outcome::BadProof(e) => text(StatusCode::UNPROCESSABLE_ENTITY, e),
            Outcome::Storage(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e),
        }
    }
}

async fn add_checkpoint(State(w): State<Arc<Witness>>, body: Bytes) -> Response {
    // The check, the fsync and the signature are blocking work.
    match tokio::task::spawn_blocking(move || w.add_checkpoint(&body)).await {
        Ok(out) => out.into_response(),
        Err(e) => Outcome::Storage(format!("the request's task failed: {e}")).into_response(),
    }
}

async fn health() -> &'static str {
    "ok\n"
}

/// The witness's HTTP routes under `prefix` (empty or starting with '/').
pub fn router(w: Arc<Witness>, prefix: &str) -> axum::Router {
    let prefix = prefix.trim_end_matches('/');
    axum::Router::new()
        .route(
            &format!("{prefix}/add-checkpoint"),
            axum::routing::post(add_checkpoint),
        )
        .route("/health", axum::routing::get(health))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST))
        .with_state(w)
}

/// `sealog witness`: prints the verifier key, then serves until SIGTERM or
/// SIGINT.
///
/// # Errors
/// Bad arguments, an unreadable data directory, a port in use.
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
    if !prefix.is_empty() && !prefix.starts_with('/') {
        return Err(usage("--prefix must start with '/'"));
    }
    let w = Arc::new(Witness::open(dir, cosigner(dir, name)?, keys)?);
    println!("{}", w.verifier());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sealog-witness")
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(http)
            .await
            .map_err(|e| usage(format!("bind {http}: {e}")))?;
        eprintln!(
            "sealog: witness {} listening on http://{}{}/add-checkpoint for {} log(s)",
            w.cosigner.name(),
            listener.local_addr()?,
            prefix.trim_end_matches('/'),
            w.logs.len()
        );
        axum::serve(listener, router(w, prefix))
            .with_graceful_shutdown(crate::serve::wait_for_signal())
            .await?;
        Ok::<(), Failure>(())
    })
}
