//! What every request handler shares.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use sealog_store::DataDir;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::auth::TokenTable;
use crate::config::Config;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::realm::RealmHandle;

/// The server's shared state.
#[derive(Debug)]
pub struct AppState {
    /// Configuration in force.
    pub config: Config,
    /// The data directory (locked by this process).
    pub data: Mutex<DataDir>,
    /// Accepted tokens.
    pub tokens: RwLock<TokenTable>,
    /// Bumped whenever the token table changes; long-lived sessions
    /// re-check their token when it moves ([`crate::auth::Grant`]).
    pub token_changes: tokio::sync::watch::Sender<u64>,
    /// Open realms.
    pub realms: RwLock<HashMap<String, Arc<RealmHandle>>>,
    /// Realms found at start and not opened yet: the background opener
    /// ([`AppState::open_all`]) or the first request for one opens it.
    pub unopened: RwLock<HashSet<String>>,
    /// Held while a realm is opened, so it is opened once.
    pub opening: Mutex<()>,
    /// Requests waiting to open a realm: the background opener gives way
    /// to them (a std mutex is not fair, and it would otherwise re-take
    /// `opening` ahead of them until every realm is open).
    pub open_waiters: std::sync::atomic::AtomicUsize,
    /// Async requests open realms one at a time through this gate, so a
    /// crowd of first requests after a start waits without holding threads.
    pub open_gate: tokio::sync::Mutex<()>,
    /// Realms that could not be opened, with the reason: they answer 503
    /// while every other realm serves.
    pub failed: RwLock<HashMap<String, String>>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Cancelled when the server begins to shut down.
    pub shutdown: CancellationToken,
    /// Permits for live tail sessions.
    pub tail_sessions: Arc<Semaphore>,
    /// KiB of ingest bodies that may be held at once.
    pub inflight_kib: Arc<Semaphore>,
    /// KiB of query pages that may be held at once.
    pub query_kib: Arc<Semaphore>,
    /// The writer threads every realm shares.
    pub workers: crate::realm::Workers,
    /// The filesystem journals are opened on: the data directory's, with a
    /// bound on open descriptors shared by all realms.
    pub journal_fs: Arc<sealog_journal::fs_pool::PooledFs>,
    /// Delivery to drains.
    pub drains: crate::drain::Engine,
    /// Open log sessions.
    pub sessions: crate::drain::session::Sessions,
    /// Connected sidecars and the realms of the services seen.
    pub sidecars: Arc<crate::forensic::Sidecars>,
    /// Forensic inquiries.
    pub inquiries: crate::forensic::Inquiries,
    /// Inquiries checking at once (more wait, `created`).
    pub inquiry_slots: Arc<Semaphore>,
    /// VPC flow-log digests.
    pub digests: crate::digest::Digests,
    /// Bytes in the audit error directory (scanned on first use).
    pub audit_error_bytes: Arc<Mutex<Option<u64>>>,
    /// Problems of the Kafka sources, for `/ready`.
    pub kafka: crate::kafka::Health,
    /// Witnesses cosigning the realms' checkpoints.
    pub witnessing: crate::witnessing::Witnessing,
    /// The GeoIP database for unusual IPs (`[logharbour] geoip_db`).
    pub geoip: Option<Arc<crate::routes::logharbour::GeoIp>>,
}

impl AppState {
    /// A live stream's permits: one of the server's tail sessions and one
    /// of `realm`'s.
    ///
    /// # Errors
    /// [`ApiError::Overloaded`] when either is used up (counted).
    pub fn tail_permits(
        &self,
        realm: &RealmHandle,
    ) -> Result<
        (
            tokio::sync::OwnedSemaphorePermit,
            tokio::sync::OwnedSemaphorePermit,
        ),
        ApiError,
    > {
        let realm_slot = realm.tail_slots.clone().try_acquire_owned().map_err(|_| {
            self.metrics.refused(realm.name(), "realm_tail_sessions", 1);
            ApiError::Overloaded("this realm has too many tail sessions")
        })?;
        let permit = self
            .tail_sessions
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::Overloaded("too many tail sessions"))?;
        Ok((permit, realm_slot))
    }

    /// The realms open now.
    pub fn open_realms(&self) -> Vec<Arc<RealmHandle>> {
        self.realms
            .read()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Names of every realm, open or not yet opened, sorted.
    pub fn realm_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .realms
            .read()
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default();
        if let Ok(u) = self.unopened.read() {
            names.extend(u.iter().cloned());
        }
        names.sort();
        names.dedup();
        names
    }

    /// The open realm `name`.
    ///
    /// # Errors
    /// [`ApiError::NotFound`] if it is not open.
    ///
    /// A realm found at start and not opened yet is opened now: its
    /// journal's head is read and recovered (milliseconds; the rest of it
    /// is read as queries need it). On a multi-threaded runtime the worker
    /// hands its other tasks on meanwhile.
    pub fn realm(&self, name: &str) -> Result<Arc<RealmHandle>, ApiError> {
        if let Some(r) = self.realm_now(name)? {
            return Ok(r);
        }
        let on_runtime = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let _waiting = Waiting::new(&self.open_waiters);
        if on_runtime {
            tokio::task::block_in_place(|| self.open_pending(name))
        } else {
            self.open_pending(name)
        }
    }

    /// [`AppState::realm`] for async callers: a realm not opened yet is
    /// opened on the blocking pool, one at a time, while other requests
    /// for unopened realms wait asynchronously (no thread each).
    ///
    /// # Errors
    /// As [`AppState::realm`].
    pub async fn realm_async(self: &Arc<Self>, name: &str) -> Result<Arc<RealmHandle>, ApiError> {
        if let Some(r) = self.realm_now(name)? {
            return Ok(r);
        }
        let _waiting = Waiting::new(&self.open_waiters);
        let _gate = self.open_gate.lock().await;
        if let Some(r) = self.realm_now(name)? {
            return Ok(r);
        }
        let (st, n) = (self.clone(), name.to_string());
        tokio::task::spawn_blocking(move || st.open_pending(&n))
            .await
            .map_err(|e| ApiError::Internal(format!("realm open task: {e}")))?
    }

    /// The realm `name` if it is open; `None` if it exists but is not
    /// opened yet.
    ///
    /// # Errors
    /// [`ApiError::NotFound`] for no such realm; [`ApiError::RealmFailed`].
    pub fn realm_now(&self, name: &str) -> Result<Option<Arc<RealmHandle>>, ApiError> {
        let failed = |reason: String| ApiError::RealmFailed {
            realm: name.to_string(),
            reason,
        };
        if let Some(reason) = self.failed.read().ok().and_then(|f| f.get(name).cloned()) {
            return Err(failed(reason));
        }
        let open = self
            .realms
            .read()
            .map_err(|_| ApiError::Internal("realm table lock poisoned".into()))?
            .get(name)
            .cloned();
        match open {
            Some(r) => match r.failure() {
                Some(reason) => Err(failed(reason)),
                None => Ok(Some(r)),
            },
            None if self.unopened.read().is_ok_and(|u| u.contains(name)) => Ok(None),
            None => Err(ApiError::NotFound(format!("unknown realm {name:?}"))),
        }
    }

    /// Opens realm `name`, found at start, unless someone else did; a
    /// realm that cannot open is failed alone (503 naming the reason)
    /// while the others serve.
    ///
    /// # Errors
    /// As [`AppState::realm_now`].
    pub fn open_pending(&self, name: &str) -> Result<Arc<RealmHandle>, ApiError> {
        let _one = self
            .opening
            .lock()
            .map_err(|_| ApiError::Internal("realm open lock poisoned".into()))?;
        if let Some(r) = self.realm_now(name)? {
            return Ok(r);
        }
        let opened = sealog_event::RealmName::new(name)
            .map_err(sealog_store::StoreError::from)
            .and_then(|rn| {
                let dd = self.data.lock().map_err(|_| sealog_store::StoreError::Io {
                    op: "lock",
                    path: "data directory".into(),
                    source: std::io::Error::other("data lock poisoned"),
                })?;
                self.start_realm(&dd, &rn)
            });
        // Listed as open (or failed) before it leaves `unopened`, so a
        // concurrent lookup never finds it in neither.
        let done = |r: Result<Arc<RealmHandle>, ApiError>| {
            if let Ok(mut u) = self.unopened.write() {
                u.remove(name);
            }
            self.publish_realm_counts();
            r
        };
        match opened {
            Ok(h) => {
                self.realms
                    .write()
                    .map_err(|_| ApiError::Internal("realm table lock poisoned".into()))?
                    .insert(name.to_string(), h.clone());
                done(Ok(h))
            }
            Err(e) if transient(&e) => {
                // Out of descriptors or memory for a moment: not the
                // realm's fault. It stays unopened; the next request tries
                // again.
                tracing::warn!(realm = %name, cause = %e, "realm could not be opened now; the next request retries");
                Err(ApiError::Unavailable(format!(
                    "realm {name} could not be opened now ({e}); retry"
                )))
            }
            Err(e) => {
                tracing::error!(realm = %name, cause = %e, "realm failed to open; it answers 503 while the others serve");
                self.metrics.realm_failed(name);
                if let Ok(mut f) = self.failed.write() {
                    f.insert(name.to_string(), e.to_string());
                }
                done(Err(ApiError::RealmFailed {
                    realm: name.to_string(),
                    reason: e.to_string(),
                }))
            }
        }
    }

    /// Publishes the realm counts ([`Metrics::realm_counts`]).
    pub fn publish_realm_counts(&self) {
        let open = self.realms.read().map_or(0, |r| r.len());
        let unopened = self.unopened.read().map_or(0, |u| u.len());
        let failed = self.failed.read().map_or(0, |f| f.len());
        self.metrics.realm_counts(open, unopened, failed);
    }

    /// Opens every realm not opened yet, in name order, until `stop`:
    /// the background half of a start that serves before it has read
    /// every realm.
    pub fn open_all(&self, stop: &CancellationToken) {
        let started = std::time::Instant::now();
        let mut names: Vec<String> = self
            .unopened
            .read()
            .map(|u| u.iter().cloned().collect())
            .unwrap_or_default();
        names.sort();
        let mut opened = 0usize;
        for name in &names {
            if stop.is_cancelled() {
                return;
            }
            while self.open_waiters.load(std::sync::atomic::Ordering::Acquire) > 0
                && !stop.is_cancelled()
            {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            if self.open_pending(name).is_ok() {
                opened += 1;
            }
        }
        if !names.is_empty() {
            tracing::info!(
                realms = names.len(),
                opened,
                took_ms = started.elapsed().as_millis() as u64,
                "every realm opened"
            );
        }
    }

    /// The data directory, locked for one admin operation.
    ///
    /// # Errors
    /// [`ApiError::Internal`] if an earlier holder panicked.
    pub fn data_dir(&self) -> Result<std::sync::MutexGuard<'_, DataDir>, ApiError> {
        self.data
            .lock()
            .map_err(|_| ApiError::Internal("data lock poisoned".into()))
    }

    /// Opens realm `name`'s journal and puts it on the writer threads.
    ///
    /// # Errors
    /// Store and journal errors.
    pub fn start_realm(
        &self,
        dd: &DataDir,
        name: &sealog_event::RealmName,
    ) -> Result<Arc<RealmHandle>, sealog_store::StoreError> {
        let opts = sealog_journal::JournalOptions {
            durability: self.config.durability,
            ..sealog_journal::JournalOptions::default()
        };
        let journal = dd.open_journal_on(self.journal_fs.clone(), name, opts)?;
        tracing::info!(realm = %name, size = journal.size(), "realm opened");
        let handle = RealmHandle::start(
            Box::new(journal),
            &self.config.limits,
            self.metrics.clone(),
            &self.workers,
        );
        handle.facets.keep_in(
            dd.journal_dir(name)
                .with_file_name(crate::realm::FACETS_FILE),
        );
        Ok(handle)
    }

    /// The token table's current generation.
    pub fn token_generation(&self) -> u64 {
        *self.token_changes.borrow()
    }

    /// Reloads the token table from the data directory.
    ///
    /// # Errors
    /// Store errors.
    pub fn reload_tokens(&self, dd: &DataDir) -> Result<(), ApiError> {
        let table = TokenTable::new(dd.tokens(None)?);
        *self
            .tokens
            .write()
            .map_err(|_| ApiError::Internal("token table lock poisoned".into()))? = table;
        // After the swap: a session that sees the new generation finds
        // the new table.
        self.token_changes.send_modify(|g| *g += 1);
        Ok(())
    }
}

/// Counts a waiter for as long as it lives (also when its request is
/// dropped mid-wait).
struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(n: &'a std::sync::atomic::AtomicUsize) -> Self {
        n.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Self(n)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// An open error that says nothing about the realm: the process is out of
/// descriptors or memory, or a call was interrupted.
fn transient(e: &sealog_store::StoreError) -> bool {
    use sealog_journal::JournalError;
    use sealog_store::StoreError;
    let io = match e {
        StoreError::Io { source, .. } | StoreError::Journal(JournalError::Io { source, .. }) => {
            source
        }
        _ => return false,
    };
    use rustix::io::Errno;
    matches!(
        Errno::from_io_error(io),
        Some(Errno::MFILE | Errno::NFILE | Errno::NOMEM | Errno::AGAIN | Errno::INTR)
    )
}
