//! What every request handler shares.

use std::collections::HashMap;
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
}

impl AppState {
    /// The open realm `name`.
    ///
    /// # Errors
    /// [`ApiError::NotFound`] if it is not open.
    pub fn realm(&self, name: &str) -> Result<Arc<RealmHandle>, ApiError> {
        let failed = |reason: String| ApiError::RealmFailed {
            realm: name.to_string(),
            reason,
        };
        if let Some(reason) = self.failed.read().ok().and_then(|f| f.get(name).cloned()) {
            return Err(failed(reason));
        }
        let r = self
            .realms
            .read()
            .map_err(|_| ApiError::Internal("realm table lock poisoned".into()))?
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::NotFound(format!("unknown realm {name:?}")))?;
        match r.failure() {
            Some(reason) => Err(failed(reason)),
            None => Ok(r),
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
        Ok(RealmHandle::start(
            Box::new(journal),
            &self.config.limits,
            self.metrics.clone(),
            &self.workers,
        ))
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
