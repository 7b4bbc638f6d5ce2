//! Forensic inquiries (the Mojaloop central-kms admin API): the sidecars
//! connected now, which realm each service logs to, and inquiries that
//! re-verify every commit of a service's realm in a time window.
//!
//! Differences from the KMS: `GET /sidecars` needs the admin token (the KMS
//! left it open); an inquiry is answered from the proven log itself, not
//! by asking one sidecar for its own copy ([`sealog_journal::commits`]);
//! and it always completes: a deadline ends it, naming the commits it did
//! not reach as unverified (a KMS inquiry whose sidecar went away stayed
//! `pending` forever).
//!
//! Which realm a service is: a sidecar listener configured with both a
//! service and a realm, or the realm of the write token a sidecar sent in
//! its hello with a `serviceName`. A service stays bound to the first
//! realm that names it (a hello naming it from another realm is refused).
//! The pairs are kept in
//! `<data>/sidecar-services.json`, so inquiries work after a restart
//! before the sidecar reconnects. Finished inquiries are kept in
//! `<data>/inquiries/<id>.json`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// Services (name → realm pairs) kept.
pub const MAX_SERVICES: usize = 10_000;

/// Inquiries queued or running at once, across the server; more are
/// refused with 503 until some complete.
pub const MAX_OPEN_INQUIRIES: usize = 64;

/// The longest window an inquiry may cover (the KMS's 30 days).
pub const MAX_WINDOW_NS: i64 = 30 * 24 * 3600 * 1_000_000_000;

/// One connected sidecar client.
#[derive(Debug)]
pub struct Sidecar {
    /// Random id, for this connection.
    pub id: String,
    /// The service it logs for, when known.
    pub service: Option<String>,
    /// The realm it writes to.
    pub realm: String,
    /// The peer address.
    pub peer: String,
    /// When it connected (RFC 3339).
    pub connected_since: String,
    /// Frames received.
    pub frames: AtomicU64,
    /// Bytes of frames received.
    pub bytes: AtomicU64,
}

/// The sidecars connected now, and the services seen.
#[derive(Debug, Default)]
pub struct Sidecars {
    live: Mutex<HashMap<String, Arc<Sidecar>>>,
    services: Mutex<HashMap<String, String>>,
    file: Mutex<Option<PathBuf>>,
}

impl Sidecars {
    /// Loads the services seen before from `<data>/sidecar-services.json`
    /// and adds the configured listeners' pairs.
    pub fn load(&self, data: &Path, configured: &[(String, String)]) {
        let path = data.join("sidecar-services.json");
        let mut known: HashMap<String, String> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        for (s, r) in configured {
            known.insert(s.clone(), r.clone());
        }
        if let Ok(mut f) = self.file.lock() {
            *f = Some(path);
        }
        if let Ok(mut s) = self.services.lock() {
            *s = known;
        }
        self.save();
    }

    fn save(&self) {
        let (Ok(file), Ok(services)) = (self.file.lock(), self.services.lock()) else {
            return;
        };
        let Some(path) = file.as_ref() else { return };
        let Ok(bytes) = serde_json::to_vec_pretty(&*services) else {
            return;
        };
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return;
        };
        let written = crate::digest::write_atomic(dir, &name.to_string_lossy(), &bytes);
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), cause = %e, "could not save the sidecar services; inquiries find them again when their sidecars reconnect");
        }
    }

    /// Registers a connection; it is listed until the guard drops.
    ///
    /// A service is bound to the first realm that names it (a configured
    /// listener's pair is bound from the start): a hello naming a service
    /// bound to another realm is refused, so no write token can point an
    /// investigator's inquiry at another log. At most [`MAX_SERVICES`] are
    /// kept.
    ///
    /// # Errors
    /// Why the hello's service is refused.
    pub fn register(
        self: &Arc<Self>,
        service: Option<String>,
        realm: &str,
        peer: std::net::SocketAddr,
    ) -> Result<Registration, String> {
        if let Some(s) = &service {
            let added = {
                let mut m = self
                    .services
                    .lock()
                    .map_err(|_| "service table lock poisoned".to_string())?;
                match m.get(s) {
                    Some(r) if r == realm => false,
                    Some(_) => {
                        return Err(format!("service {s:?} is bound to another realm; closing"))
                    }
                    None if m.len() >= MAX_SERVICES => {
                        return Err(format!(
                            "too many services ({MAX_SERVICES}); {s:?} is not registered; closing"
                        ))
                    }
                    None => {
                        m.insert(s.clone(), realm.to_string());
                        true
                    }
                }
            };
            if added {
                let me = self.clone();
                tokio::task::spawn_blocking(move || me.save());
            }
        }
        let entry = Arc::new(Sidecar {
            id: sealog_store::uuid_v4(),
            service,
            realm: realm.to_string(),
            peer: peer.to_string(),
            connected_since: sealog_event::format_rfc3339_nanos(sealog_event::now_ns()),
            frames: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        });
        if let Ok(mut live) = self.live.lock() {
            live.insert(entry.id.clone(), entry.clone());
        }
        Ok(Registration {
            owner: self.clone(),
            entry,
        })
    }

    /// The realm of `service`, if any sidecar or listener named it.
    pub fn realm_of(&self, service: &str) -> Option<String> {
        self.services.lock().ok()?.get(service).cloned()
    }

    /// The connected sidecars, oldest first.
    pub fn list(&self) -> Vec<serde_json::Value> {
        let mut v: Vec<Arc<Sidecar>> = self
            .live
            .lock()
            .map(|l| l.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by(|a, b| a.connected_since.cmp(&b.connected_since));
        v.iter()
            .map(|s| {
                serde_json::json!({
                    "id": s.id,
                    "serviceName": s.service,
                    "status": "connected",
                    "realm": s.realm,
                    "peer": s.peer,
                    "connected_since": s.connected_since,
                    "frames": s.frames.load(Ordering::Relaxed),
                    "bytes": s.bytes.load(Ordering::Relaxed),
                })
            })
            .collect()
    }
}

/// A listed connection; dropping it unlists it.
#[derive(Debug)]
pub struct Registration {
    owner: Arc<Sidecars>,
    entry: Arc<Sidecar>,
}

impl Registration {
    /// Counts one frame of `len` bytes.
    pub fn frame(&self, len: usize) {
        self.entry.frames.fetch_add(1, Ordering::Relaxed);
        self.entry.bytes.fetch_add(len as u64, Ordering::Relaxed);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut live) = self.owner.live.lock() {
            live.remove(&self.entry.id);
        }
    }
}

/// An inquiry's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Queued.
    Created,
    /// Checking.
    Pending,
    /// Done (every commit in the window verified or named unverified).
    Complete,
}

/// One commit in an inquiry's answer.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommitResult {
    /// `<first seq>-<last seq>`.
    pub id: String,
    /// The checkpoint note signed for the commit.
    pub body: String,
    /// Whether its records are what the checkpoint signed.
    pub verified: bool,
    /// Why not.
    pub reason: Option<String>,
    /// First seq.
    pub first_seq: u64,
    /// Last seq.
    pub last_seq: u64,
    /// Records.
    pub count: u64,
    /// When its records were sequenced.
    pub received_at: Option<String>,
}

impl From<sealog_journal::commits::CommitCheck> for CommitResult {
    fn from(c: sealog_journal::commits::CommitCheck) -> Self {
        let last = c.end.saturating_sub(1);
        Self {
            id: format!("{}-{last}", c.first_seq),
            body: c.checkpoint,
            verified: c.verified,
            reason: c.reason,
            first_seq: c.first_seq,
            last_seq: last,
            count: c.end - c.first_seq,
            received_at: c.received_at_ns.map(sealog_event::format_rfc3339_nanos),
        }
    }
}

/// One inquiry, as `GET /inquiry/{id}` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Inquiry {
    /// Its id.
    pub id: String,
    /// The service asked about.
    pub service: String,
    /// The service's realm.
    pub realm: String,
    /// Window start (RFC 3339).
    #[serde(rename = "startTime")]
    pub start_time: String,
    /// Window end (RFC 3339).
    #[serde(rename = "endTime")]
    pub end_time: String,
    /// When it was asked.
    pub created: String,
    /// Its state.
    pub status: Status,
    /// Commits in the window (known once complete; so far until then).
    pub total: usize,
    /// Commits checked.
    pub completed: usize,
    /// Commits verified.
    pub verified: usize,
    /// A failure that stopped the check (an unreadable journal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// One per commit.
    pub results: Vec<CommitResult>,
}

/// Inquiries in memory, finished ones also on disk.
#[derive(Debug, Default)]
pub struct Inquiries {
    map: Mutex<HashMap<String, Arc<Mutex<Inquiry>>>>,
    order: Mutex<std::collections::VecDeque<String>>,
}

impl Inquiries {
    /// Adds `q`, forgetting the oldest when more than `keep` are held (on
    /// disk they stay).
    pub fn insert(&self, q: Inquiry, keep: usize) -> Arc<Mutex<Inquiry>> {
        let id = q.id.clone();
        let q = Arc::new(Mutex::new(q));
        if let (Ok(mut map), Ok(mut order)) = (self.map.lock(), self.order.lock()) {
            map.insert(id.clone(), q.clone());
            order.push_back(id);
            while order.len() > keep.max(1) {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
        q
    }

    /// Inquiries not complete yet.
    pub fn open_count(&self) -> usize {
        self.map.lock().map_or(0, |m| {
            m.values()
                .filter(|q| q.lock().is_ok_and(|q| q.status != Status::Complete))
                .count()
        })
    }

    /// The inquiry `id`: in memory, or finished on disk under `dir`.
    pub fn get(&self, id: &str, dir: &Path) -> Option<Inquiry> {
        if let Some(q) = self.map.lock().ok()?.get(id) {
            return q.lock().ok().map(|q| q.clone());
        }
        // Ids are uuids; anything else never names a file.
        if id.len() != 36 || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return None;
        }
        let bytes = std::fs::read(dir.join(format!("{id}.json"))).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// Writes a finished inquiry to `<dir>/<id>.json` (atomically).
pub fn save(dir: &Path, q: &Inquiry) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let bytes = serde_json::to_vec(q).map_err(std::io::Error::other)?;
    crate::digest::write_atomic(dir, &format!("{}.json", q.id), &bytes)
}

/// Runs inquiry `q` over the journal in `journal` (blocking).
pub fn run(
    q: &Arc<Mutex<Inquiry>>,
    journal: &Path,
    key: &sealog_journal::checkpoint::VerifierKey,
    window: sealog_journal::commits::Window,
) {
    let realm = match q.lock() {
        Ok(mut g) => {
            g.status = Status::Pending;
            g.realm.clone()
        }
        Err(_) => return,
    };
    let progress_q = q.clone();
    let mut progress = move |n: usize| {
        if let Ok(mut g) = progress_q.lock() {
            g.completed = n;
            g.total = g.total.max(n);
        }
    };
    let outcome = if journal.is_dir() {
        sealog_journal::commits::check_commits(journal, &realm, key, window, &mut progress)
            .map_err(|e| e.to_string())
    } else {
        Ok(Vec::new())
    };
    if let Ok(mut g) = q.lock() {
        match outcome {
            Ok(checks) => {
                g.results = checks.into_iter().map(CommitResult::from).collect();
                g.total = g.results.len();
                g.completed = g.results.len();
                g.verified = g.results.iter().filter(|r| r.verified).count();
            }
            Err(e) => g.error = Some(e),
        }
        g.status = Status::Complete;
    }
}
