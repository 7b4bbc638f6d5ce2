//! The sealog server: the HTTP API over the embedded journal.
//!
//! [`Server::open`] takes the data directory (and its lock) and lists the
//! realms; [`Server::serve`] opens them in the background (a request for
//! one not opened yet opens it on the spot) and runs the API on a
//! listener the caller bound until a shutdown token is cancelled, then stops
//! accepting, lets queued commits finish, and flushes. Tests bind
//! `127.0.0.1:0`; the binary binds the configured address and cancels on
//! SIGTERM or SIGINT.
//!
//! This crate is the async edge: handlers never block; journal work runs on
//! writer threads or `spawn_blocking`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let (server, _admin_token) = sealog_server::Server::open(
//!     std::path::Path::new("./sealog-data"),
//!     sealog_server::Config::default(),
//! )?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let stop = tokio_util::sync::CancellationToken::new();
//! server.serve(listener, stop).await?;
//! # Ok(()) }
//! ```

pub mod audit;
pub mod auth;
pub mod config;
pub mod console;
pub mod digest;
pub mod drain;
pub mod error;
pub mod forensic;
pub mod front;
pub mod integrity;
pub mod kafka;
pub mod listen;
pub mod metrics;
pub mod openapi;
pub mod realm;
pub mod refusal;
pub mod retention;
pub mod routes;
pub mod sidecar;
pub mod state;
pub mod summaries;
pub mod syslog;
pub mod witnessing;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use sealog_store::{DataDir, Scope, StoreError};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use config::Config;

use crate::auth::TokenTable;
use crate::metrics::Metrics;
use crate::realm::RealmHandle;
use crate::state::AppState;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data directory could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Serving failed.
    #[error("serve: {0}")]
    Io(#[from] std::io::Error),
    /// A file the configuration names cannot be used.
    #[error("{0}")]
    Config(String),
}

/// Listeners besides HTTP, bound by the caller.
#[derive(Default)]
pub struct Listeners {
    /// Sidecar TCP listeners and their settings.
    pub sidecar: Vec<(TcpListener, config::SidecarListener)>,
    /// Syslog TCP listeners.
    pub syslog_tcp: Vec<(TcpListener, config::SyslogListener)>,
    /// Syslog UDP sockets.
    pub syslog_udp: Vec<(tokio::net::UdpSocket, config::SyslogListener)>,
    /// Syslog TLS listeners with their acceptors ([`syslog::tls_acceptor`]).
    pub syslog_tls: Vec<(
        TcpListener,
        config::SyslogListener,
        tokio_rustls::TlsAcceptor,
    )>,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listeners")
            .field("sidecar", &self.sidecar.len())
            .field("syslog_tcp", &self.syslog_tcp.len())
            .field("syslog_udp", &self.syslog_udp.len())
            .field("syslog_tls", &self.syslog_tls.len())
            .finish()
    }
}

/// An opened server, ready to serve.
#[derive(Debug)]
pub struct Server {
    state: Arc<AppState>,
}

impl Server {
    /// Opens `data` (taking its lock) and lists its realms (their journals
    /// are opened by [`Server::serve`], or on first use).
    /// On first start an admin token is issued, written to
    /// `<data>/admin.token` (0600) and returned so the caller prints it once.
    ///
    /// # Errors
    /// Store and journal errors (a locked directory names its holder).
    pub fn open(data: &Path, config: Config) -> Result<(Self, Option<String>), ServerError> {
        Self::open_in(sealog_journal::fs::real(), data, config)
    }

    /// [`Server::open`] on the filesystem `fs` (tests run the server on a
    /// simulated one to inject fsync errors and full disks).
    ///
    /// # Errors
    /// As [`Server::open`].
    pub fn open_in(
        fs: Arc<dyn sealog_journal::fs::Vfs>,
        data: &Path,
        config: Config,
    ) -> Result<(Self, Option<String>), ServerError> {
        config.witnessing.check().map_err(ServerError::Config)?;
        let mut dd = DataDir::open_in(fs.clone(), data, "sealog serve")?;
        let mut admin = None;
        if !dd
            .tokens(None)?
            .iter()
            .any(|t| t.scope == Scope::Admin && t.revoked_at.is_none())
        {
            let t = dd.issue_token("", Scope::Admin)?;
            let path = data.join("admin.token");
            let f = fs.open(
                &path,
                sealog_journal::fs::OpenHow::CreateTruncate { mode: 0o600 },
            )?;
            f.write_at(format!("{}\n", t.token).as_bytes(), 0)?;
            f.sync_all()?;
            admin = Some(t.token);
        }
        let geoip = match &config.logharbour.geoip_db {
            Some(p) => Some(Arc::new(
                routes::logharbour::GeoIp::open(p).map_err(ServerError::Config)?,
            )),
            None => None,
        };
        let metrics = Arc::new(Metrics::new(config.limits.metrics_realm_cap));
        let tokens = TokenTable::new(dd.tokens(None)?);
        let entries = dd.realm_entries()?;
        let state = Arc::new(AppState {
            tail_sessions: Arc::new(Semaphore::new(config.limits.max_tail_sessions)),
            inflight_kib: Arc::new(Semaphore::new(
                (config.limits.max_inflight_bytes / 1024).clamp(1, Semaphore::MAX_PERMITS),
            )),
            query_kib: Arc::new(Semaphore::new(
                (config.limits.max_query_buffer_bytes / 1024).clamp(1, Semaphore::MAX_PERMITS),
            )),
            workers: realm::Workers::start(
                config.limits.seal_threads,
                config.limits.commit_threads,
            ),
            journal_fs: Arc::new(sealog_journal::fs_pool::PooledFs::new(
                fs.clone(),
                config.limits.max_open_files,
            )),
            drains: drain::Engine::new(fs.clone(), data.to_path_buf(), config.drains.clone()),
            sessions: drain::session::Sessions::default(),
            sidecars: Arc::new(forensic::Sidecars::default()),
            inquiries: forensic::Inquiries::default(),
            inquiry_slots: Arc::new(Semaphore::new(2)),
            digests: digest::Digests::new(data, &config.digests),
            audit_error_bytes: Arc::new(Mutex::new(None)),
            kafka: kafka::Health::default(),
            witnessing: witnessing::Witnessing::new(config.witnessing.clone(), fs.clone()),
            geoip,
            config,
            data: Mutex::new(dd),
            tokens: RwLock::new(tokens),
            token_changes: tokio::sync::watch::channel(0).0,
            realms: RwLock::new(HashMap::new()),
            unopened: RwLock::new(HashSet::new()),
            opening: Mutex::new(()),
            open_waiters: std::sync::atomic::AtomicUsize::new(0),
            open_gate: tokio::sync::Mutex::new(()),
            failed: RwLock::new(HashMap::new()),
            metrics,
            shutdown: CancellationToken::new(),
        });
        {
            // Realms are opened after the server starts serving (by the
            // background opener, or by the first request for one), so a
            // start with 10,000 realms answers at once.
            let (mut unopened, mut failed) = (HashSet::new(), HashMap::new());
            for (name, info) in entries {
                // A realm that cannot be read fails alone: the others serve.
                match info {
                    Ok(_) => {
                        unopened.insert(name.into_string());
                    }
                    Err(e) => {
                        tracing::error!(realm = %name, cause = %e, "realm failed to open; it answers 503 while the others serve");
                        state.metrics.realm_failed(&name);
                        failed.insert(name.into_string(), e.to_string());
                    }
                }
            }
            if let Ok(mut u) = state.unopened.write() {
                *u = unopened;
            }
            if let Ok(mut f) = state.failed.write() {
                *f = failed;
            }
            state.publish_realm_counts();
        }
        Ok((Self { state }, admin))
    }

    /// True when realm `name` exists (open or failed).
    pub fn has_realm(&self, name: &str) -> bool {
        self.state.realms.read().is_ok_and(|r| r.contains_key(name))
            || self.state.unopened.read().is_ok_and(|u| u.contains(name))
            || self.state.failed.read().is_ok_and(|f| f.contains_key(name))
    }

    /// Serves on `listener` until `stop` is cancelled; then finishes
    /// in-flight requests and queued commits and flushes every journal.
    ///
    /// # Errors
    /// I/O errors from the listener.
    pub async fn serve(
        self,
        listener: TcpListener,
        stop: CancellationToken,
    ) -> Result<(), ServerError> {
        self.serve_with(listener, Listeners::default(), stop).await
    }

    /// Like [`Server::serve`], with sidecar TCP listeners the caller bound.
    ///
    /// # Errors
    /// I/O errors from the HTTP listener.
    pub async fn serve_with(
        self,
        listener: TcpListener,
        listeners: Listeners,
        stop: CancellationToken,
    ) -> Result<(), ServerError> {
        let state = self.state.clone();
        let mut side_tasks = Vec::new();
        let down = state.shutdown.clone();
        let configured: Vec<(String, String)> = listeners
            .sidecar
            .iter()
            .filter_map(|(_, c)| Some((c.service.clone()?, c.realm.clone()?)))
            .collect();
        if let Ok(root) = state.data_dir().map(|d| d.root().to_path_buf()) {
            state.sidecars.load(&root, &configured);
        }
        for (l, cfg) in listeners.sidecar {
            if let Ok(addr) = l.local_addr() {
                tracing::info!(%addr, realm = ?cfg.realm, "sidecar listener");
            }
            side_tasks.push(tokio::spawn(sidecar::run(
                l,
                cfg,
                state.clone(),
                down.clone(),
            )));
        }
        for (l, cfg) in listeners.syslog_tcp {
            side_tasks.push(tokio::spawn(syslog::run_tcp(
                l,
                cfg,
                state.clone(),
                down.clone(),
            )));
        }
        for (l, cfg, acceptor) in listeners.syslog_tls {
            side_tasks.push(tokio::spawn(syslog::run_tls(
                l,
                cfg,
                acceptor,
                state.clone(),
                down.clone(),
            )));
        }
        for (l, cfg) in listeners.syslog_udp {
            side_tasks.push(tokio::spawn(syslog::run_udp(
                l,
                cfg,
                state.clone(),
                down.clone(),
            )));
        }
        // Drains start at once; each waits for its realm to open.
        state.drains.start_all(&state);
        // Kafka sources: a thread each, stopped with the listeners.
        let kafka_threads = kafka::start(&state, &down);
        // Open every realm in the background, then verify them.
        let (st, stop_open) = (state.clone(), down.clone());
        side_tasks.push(tokio::spawn(async move {
            let opener = st.clone();
            let stop_opening = stop_open.clone();
            let _ = tokio::task::spawn_blocking(move || opener.open_all(&stop_opening)).await;
            integrity::run(st, stop_open).await;
        }));
        // LogHarbour's block summaries, made in the background.
        side_tasks.push(tokio::spawn(summaries::run(state.clone(), down.clone())));
        // Witnessing stops after ingest, so its last round sees the last
        // commits.
        let witness_stop = CancellationToken::new();
        let witnessing = tokio::spawn(witnessing::run(state.clone(), witness_stop.clone()));
        // Scheduled retention policies, if any.
        if !state.config.logharbour.retention.is_empty() {
            let interval = std::time::Duration::from_secs(
                state
                    .config
                    .logharbour
                    .retention_interval_secs
                    .unwrap_or(3600),
            );
            side_tasks.push(tokio::spawn(retention::schedule(
                state.clone(),
                state.config.logharbour.retention.clone(),
                interval,
                down.clone(),
            )));
        }
        let app = routes::router(state.clone());
        let shutdown = state.shutdown.clone();
        let watcher = {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                stop.cancelled().await;
                shutdown.cancel();
            })
        };
        let limits = state.config.limits.clone();
        listen::serve_http(listener, app, &limits, shutdown).await;
        watcher.abort();
        // Drains save their cursors and stop.
        state
            .drains
            .shutdown(std::time::Duration::from_secs(5))
            .await;
        // Listeners first: their last batches still need the realms' writers.
        for t in side_tasks {
            let _ = t.await;
        }
        let _ = tokio::task::spawn_blocking(move || {
            for t in kafka_threads {
                let _ = t.join();
            }
        })
        .await;
        witness_stop.cancel();
        let _ = witnessing.await;
        let realms: Vec<Arc<RealmHandle>> = state
            .realms
            .read()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default();
        let st = state.clone();
        tokio::task::spawn_blocking(move || {
            for r in realms {
                r.close();
                tracing::info!(realm = %r.name(), "realm closed");
            }
            st.workers.stop();
        })
        .await
        .map_err(std::io::Error::other)?;
        Ok(())
    }
}
