//! VPC flow-log digests (asecurityteam vpcflow-digesterd) over a realm's
//! `flow` records, computed from the proven log and committed to it.
//!
//! A window is `start` and `stop` in RFC 3339, truncated to the minute and
//! normalised to UTC, so one instant always gives one id (upstream hashed
//! the times as written, offset included). The id is upstream's UUIDv5:
//! namespace `UUIDv5(nil, "digest")`, name Go's `Time.String()` of start
//! then stop (`2006-01-02 15:04:05 +0000 UTC`).
//!
//! States, per realm and id, all files under `<data>/digests/<realm>/`:
//! - absent: no `<id>.json`, no fresh marker;
//! - in progress: `<id>.in_progress` holds the RFC 3339 time it was marked,
//!   and is fresh for `[digests] timeout_secs` (then the job is taken for
//!   abandoned and may be queued again);
//! - done: `<id>.json` (what was computed, from which records, at which
//!   checkpoint, the digest's SHA-256 and the digest record's receipt) and
//!   `<id>.log.gz` (the digest, gzipped).
//!
//! A job is marked before it is queued (upstream queued first, so a fast
//! worker could unmark before the mark), runs on a bounded pool, reads the
//! records `[0, size)` of the checkpoint it starts at (only blocks whose
//! time range meets the window are decoded; a flow's time is its `start`),
//! commits a `digest` record naming its window, definition, input range,
//! checkpoint and SHA-256, then writes its files and removes the marker.
//! `sealog digest verify` recomputes it from the recorded range.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rayon::prelude::*;
use sealog_codec::vpcflow::{Digester, DEFINITION};
use serde::{Deserialize, Serialize};
use sha1::{Digest as _, Sha1};
use sha2::Sha256;
use tokio::sync::Semaphore;

use crate::realm::RealmHandle;
use crate::state::AppState;

/// A digest window, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Start, unix seconds (a whole minute, UTC).
    pub start: i64,
    /// Stop, unix seconds (a whole minute, UTC), exclusive.
    pub stop: i64,
    /// The digest id.
    pub id: String,
}

/// Go's `time.Time.String()` of a UTC instant with no fraction.
fn go_time_string(secs: i64) -> String {
    let full = sealog_event::format_rfc3339_nanos(secs.saturating_mul(1_000_000_000));
    format!(
        "{} {} +0000 UTC",
        full.get(..10).unwrap_or_default(),
        full.get(11..19).unwrap_or_default()
    )
}

fn uuid_v5(namespace: &[u8; 16], name: &[u8]) -> [u8; 16] {
    let mut h = Sha1::new();
    h.update(namespace);
    h.update(name);
    let d = h.finalize();
    let mut u = [0u8; 16];
    u.copy_from_slice(&d[..16]);
    u[6] = (u[6] & 0x0f) | 0x50;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

/// vpcflow-digesterd's id of a window (unix seconds).
pub fn digest_id(start: i64, stop: i64) -> String {
    let ns = uuid_v5(&[0u8; 16], b"digest");
    let name = format!("{}{}", go_time_string(start), go_time_string(stop));
    let u = hex::encode(uuid_v5(&ns, name.as_bytes()));
    format!(
        "{}-{}-{}-{}-{}",
        &u[..8],
        &u[8..12],
        &u[12..16],
        &u[16..20],
        &u[20..]
    )
}

/// Parses and normalises `start` and `stop`.
///
/// # Errors
/// A message for the 400 body: a missing or unparsable time, or start
/// after stop (`start == stop` is allowed, as upstream: an empty digest).
pub fn window(start: Option<&str>, stop: Option<&str>) -> Result<Window, String> {
    let parse = |what: &str, v: Option<&str>| -> Result<i64, String> {
        let v = v.ok_or_else(|| format!("missing query parameter {what}"))?;
        let ns = sealog_event::parse_rfc3339(v)
            .ok_or_else(|| format!("{what} {v:?} is not an RFC 3339 time"))?;
        let secs = ns.div_euclid(60_000_000_000) * 60;
        // Whole minutes the journal's nanosecond clock can hold (1970 on:
        // a flow's start is unix seconds).
        if secs < 0 || secs.checked_mul(1_000_000_000).is_none() {
            return Err(format!(
                "{what} {v:?} is outside 1970-01-01T00:00:00Z to 2262-04-11T23:47:00Z"
            ));
        }
        Ok(secs)
    };
    let (start, stop) = (parse("start", start)?, parse("stop", stop)?);
    if start > stop {
        return Err("start should be before stop".into());
    }
    Ok(Window {
        start,
        stop,
        id: digest_id(start, stop),
    })
}

/// What a finished digest records (`<id>.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Meta {
    /// The id.
    pub id: String,
    /// The realm.
    pub realm: String,
    /// Window start (RFC 3339).
    pub start: String,
    /// Window stop (RFC 3339, exclusive).
    pub stop: String,
    /// What was computed.
    pub definition: String,
    /// The records read: seqs `[from_seq, to_seq)`.
    pub input: Input,
    /// The signed checkpoint of size `to_seq` the input is proven by.
    pub checkpoint: String,
    /// SHA-256 of the digest bytes (not gzipped), hex.
    pub sha256: String,
    /// Lines (groups) in the digest.
    pub lines: u64,
    /// Flow records that went into it.
    pub flows: u64,
    /// Digest size in bytes.
    pub bytes: u64,
    /// The seq of the `digest` record committed for it.
    pub record_seq: u64,
    /// That record's receipt checkpoint.
    pub record_checkpoint: String,
}

/// The records a digest read.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Input {
    /// First seq read.
    pub from_seq: u64,
    /// One past the last seq read.
    pub to_seq: u64,
}

/// What is known of a digest.
#[derive(Debug)]
pub enum Found {
    /// Done: its record and gzipped bytes.
    Done(Box<Meta>, Vec<u8>),
    /// A fresh in-progress marker.
    InProgress,
    /// Neither.
    Absent,
}

/// Why a digest could not be queued.
#[derive(Debug)]
pub enum Refused {
    /// It exists.
    Exists,
    /// It is being made.
    InProgress,
    /// Too many digests are queued: retry later.
    Busy,
    /// Storage failed.
    Io(std::io::Error),
}

/// The digest store and its worker pool.
#[derive(Debug)]
pub struct Digests {
    root: PathBuf,
    timeout: Duration,
    slots: Arc<Semaphore>,
    /// Windows queued or running (`<realm>/<id>`): in progress whatever
    /// their marker's age, so a job waiting in a long queue is never
    /// queued twice. Also serialises check-and-mark.
    active: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// Digest jobs queued or running at once; more are answered 503.
pub const MAX_QUEUED: usize = 64;

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Writes `dir/name` whole or not at all: a temporary file, synced,
/// renamed over it, then the directory synced (the server's small state
/// files: digests, markers, inquiries, sidecar services).
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

impl Digests {
    /// The store under `<data>/digests`.
    pub fn new(data: &Path, cfg: &crate::config::Digests) -> Self {
        Self {
            root: data.join("digests"),
            timeout: Duration::from_secs(cfg.timeout_secs.max(1)),
            slots: Arc::new(Semaphore::new(cfg.workers.max(1))),
            active: std::sync::Mutex::new(std::collections::HashSet::new()),
        }
    }

    fn dir(&self, realm: &str) -> PathBuf {
        self.root.join(realm)
    }

    fn marker_fresh(&self, dir: &Path, id: &str) -> bool {
        let Ok(text) = std::fs::read_to_string(dir.join(format!("{id}.in_progress"))) else {
            return false;
        };
        // An unreadable marker counts as stale, as upstream's zero time.
        let Some(at) = sealog_event::parse_rfc3339(text.trim()) else {
            return false;
        };
        let age = sealog_event::now_ns().saturating_sub(at);
        age < i64::try_from(self.timeout.as_nanos()).unwrap_or(i64::MAX)
    }

    /// The digest `id` of `realm`.
    ///
    /// # Errors
    /// I/O errors other than absence.
    pub fn find(&self, realm: &str, id: &str) -> std::io::Result<Found> {
        let dir = self.dir(realm);
        let running = self
            .active
            .lock()
            .is_ok_and(|a| a.contains(&format!("{realm}/{id}")));
        if running || self.marker_fresh(&dir, id) {
            return Ok(Found::InProgress);
        }
        let meta = match std::fs::read(dir.join(format!("{id}.json"))) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Absent),
            Err(e) => return Err(e),
        };
        let meta: Meta = serde_json::from_slice(&meta).map_err(std::io::Error::other)?;
        let gz = std::fs::read(dir.join(format!("{id}.log.gz")))?;
        Ok(Found::Done(Box::new(meta), gz))
    }

    /// Marks `w` in progress and queues its job on the pool.
    ///
    /// # Errors
    /// [`Refused`]: done already, in progress, or storage failed.
    pub fn request(
        &self,
        state: &Arc<AppState>,
        realm: Arc<RealmHandle>,
        w: Window,
    ) -> Result<(), Refused> {
        let key = format!("{}/{}", realm.name(), w.id);
        {
            let mut active = self
                .active
                .lock()
                .map_err(|_| Refused::Io(std::io::Error::other("digest table lock poisoned")))?;
            if active.contains(&key) {
                return Err(Refused::InProgress);
            }
            let dir = self.dir(realm.name());
            if self.marker_fresh(&dir, &w.id) {
                return Err(Refused::InProgress);
            }
            if dir.join(format!("{}.json", w.id)).exists() {
                return Err(Refused::Exists);
            }
            if active.len() >= MAX_QUEUED {
                return Err(Refused::Busy);
            }
            std::fs::create_dir_all(&dir).map_err(Refused::Io)?;
            let now = sealog_event::format_rfc3339_nanos(sealog_event::now_ns());
            write_atomic(&dir, &format!("{}.in_progress", w.id), now.as_bytes())
                .map_err(Refused::Io)?;
            active.insert(key.clone());
        }
        let (state, slots) = (state.clone(), self.slots.clone());
        tokio::spawn(async move {
            let Ok(_slot) = slots.acquire_owned().await else {
                return;
            };
            // The marker's age counts from the start of the work.
            let dir = state.digests.dir(realm.name());
            let now = sealog_event::format_rfc3339_nanos(sealog_event::now_ns());
            let _ = write_atomic(&dir, &format!("{}.in_progress", w.id), now.as_bytes());
            let outcome = run_job(&state, &realm, &w).await;
            if let Ok(mut a) = state.digests.active.lock() {
                a.remove(&key);
            }
            if let Err(e) = outcome {
                // The marker stays until it expires: then the digest can be
                // asked for again.
                tracing::error!(realm = %realm.name(), digest = %w.id, cause = %e, "digest failed; it can be asked for again once its marker expires");
            }
        });
        Ok(())
    }
}

/// Reads the realm's records up to its latest checkpoint and digests the
/// window (blocking; blocks decoded in parallel).
///
/// # Errors
/// Journal read errors.
pub fn compute(
    journal: &crate::realm::SharedLog,
    w: &Window,
) -> Result<(Vec<u8>, u64, u64, String), String> {
    let (metas, size, checkpoint) = {
        let j = journal.read().map_err(|_| "journal lock poisoned")?;
        let cp = j
            .latest_checkpoint()
            .map(|c| c.text.clone())
            .unwrap_or_default();
        let size = j.latest_checkpoint().map_or(0, |c| c.checkpoint.size);
        (j.blocks().to_vec(), size, cp)
    };
    let (lo, hi) = (
        w.start.saturating_mul(1_000_000_000),
        w.stop.saturating_mul(1_000_000_000),
    );
    let wanted: Vec<usize> = metas
        .iter()
        .enumerate()
        .filter(|(_, m)| m.first_seq + u64::from(m.count) <= size)
        .filter(|(_, m)| m.max_time >= lo && m.min_time < hi)
        .map(|(i, _)| i)
        .collect();
    // A few contiguous runs of blocks per core (so no core idles while
    // another finishes a long run), each folded into its own map, then the
    // maps merged: a fold per rayon split would build and merge a map per
    // split, and a digest can have many groups.
    let runs = rayon::current_num_threads().max(1) * 4;
    let per = wanted.len().div_ceil(runs).max(1);
    let parts: Vec<Digester> = wanted
        .par_chunks(per)
        .map(|run| -> Result<Digester, String> {
            let mut d = Digester::new(w.start, w.stop);
            for i in run {
                let block = {
                    let j = journal.read().map_err(|_| "journal lock poisoned")?;
                    j.read_block(*i).map_err(|e| e.to_string())?
                };
                // Empty lines are records retention removed.
                for line in block.lines().filter(|l| !l.is_empty()) {
                    d.add_line(line);
                }
            }
            Ok(d)
        })
        .collect::<Result<_, String>>()?;
    let mut d = Digester::new(w.start, w.stop);
    for p in parts {
        d.merge(p);
    }
    let flows = d.flows;
    Ok((d.finish(), flows, size, checkpoint))
}

async fn run_job(
    state: &Arc<AppState>,
    realm: &Arc<RealmHandle>,
    w: &Window,
) -> Result<(), String> {
    let (r, w2) = (realm.clone(), w.clone());
    let (digest, flows, size, checkpoint) =
        tokio::task::spawn_blocking(move || compute(r.journal(), &w2))
            .await
            .map_err(|e| e.to_string())??;
    let sha = hex::encode(Sha256::digest(&digest));
    let lines = digest.iter().filter(|b| **b == b'\n').count() as u64;
    let start =
        sealog_event::format_rfc3339_nanos(w.start * 1_000_000_000).replace(".000000000Z", "Z");
    let stop =
        sealog_event::format_rfc3339_nanos(w.stop * 1_000_000_000).replace(".000000000Z", "Z");
    let record = serde_json::json!({
        "kind": "digest",
        "digest": {
            "id": w.id,
            "start": start,
            "stop": stop,
            "definition": DEFINITION,
            "input": {"from_seq": 0, "to_seq": size},
            "checkpoint": checkpoint,
            "sha256": sha,
            "lines": lines,
            "flows": flows,
            "bytes": digest.len(),
        }
    });
    let line = serde_json::to_vec(&record).map_err(|e| e.to_string())?;
    let len = line.len();
    let batch = sealog_codec::batch::Batch {
        buf: line,
        events: vec![(0..len, None)],
        skipped: 0,
    };
    let receipt = crate::front::commit(state, realm, batch)
        .await
        .map_err(|e| e.to_string())?;
    let meta = Meta {
        id: w.id.clone(),
        realm: realm.name().to_string(),
        start,
        stop,
        definition: DEFINITION.to_string(),
        input: Input {
            from_seq: 0,
            to_seq: size,
        },
        checkpoint,
        sha256: sha,
        lines,
        flows,
        bytes: digest.len() as u64,
        record_seq: receipt.first_seq,
        record_checkpoint: receipt.checkpoint,
    };
    let dir = state.digests.dir(realm.name());
    let id = w.id.clone();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&digest)?;
        let gz = gz.finish()?;
        write_atomic(&dir, &format!("{id}.log.gz"), &gz)?;
        let meta = serde_json::to_vec_pretty(&meta).map_err(std::io::Error::other)?;
        write_atomic(&dir, &format!("{id}.json"), &meta)?;
        match std::fs::remove_file(dir.join(format!("{id}.in_progress"))) {
            Ok(()) => sync_dir(&dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_upstream_uuid_v5() {
        // Python's uuid.uuid5 over the same namespace and name.
        let ns = uuid_v5(&[0u8; 16], b"digest");
        assert_eq!(hex::encode(ns), "e2acb2e7694f5d8aa957efcf50fc0e8e");
        let start = 1_546_300_800; // 2019-01-01T00:00:00Z
        assert_eq!(go_time_string(start), "2019-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            digest_id(start, start + 3600),
            "9740a140-ba85-5600-8b93-7b46eec77617"
        );
    }

    #[test]
    fn windows_are_normalised() {
        let a = window(Some("2019-01-01T00:00:59Z"), Some("2019-01-01T01:00:00Z")).expect("a");
        let b = window(
            Some("2019-01-01T01:00:30+01:00"),
            Some("2019-01-01T02:00:00+01:00"),
        )
        .expect("b");
        assert_eq!(a, b);
        assert_eq!(a.id, "9740a140-ba85-5600-8b93-7b46eec77617");
        assert!(window(Some("2019-01-02T00:00:00Z"), Some("2019-01-01T00:00:00Z")).is_err());
        assert!(window(None, Some("2019-01-01T00:00:00Z")).is_err());
        assert!(window(Some("yesterday"), Some("2019-01-01T00:00:00Z")).is_err());
    }
}
