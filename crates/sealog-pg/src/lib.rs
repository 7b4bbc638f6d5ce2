//! The PostgreSQL store: a realm's verifiable log kept in PostgreSQL, for
//! the scale-out roles (SPEC.md §Scale-out), behind the same
//! [`LogStore`](sealog_journal::LogStore) interface as the embedded journal
//! and passing the same conformance suite.
//!
//! What is stored is what the embedded journal stores, in tables instead of
//! segment files: the sealed blocks byte for byte (so a realm moves between
//! the two stores without re-sealing, and its checkpoints stay valid), the
//! interior tree hashes proofs are built from, every signed checkpoint, and
//! per realm its size, Merkle frontier, latest checkpoint and owner epoch.
//!
//! A commit is one transaction: the blocks, the tree hashes, the checkpoint
//! and the realm's new size go in together, and the realm row changes only
//! if it still holds the size and the owner epoch this writer last saw. A
//! writer that opens a realm bumps its epoch, so an older writer that was
//! paused or cut off can never append after it: its commit is refused
//! ([`JournalError::Fenced`](sealog_journal::JournalError::Fenced)) and the
//! log cannot fork. A receipt is returned only after `COMMIT` returns, which
//! with PostgreSQL's default `synchronous_commit` means the WAL is flushed.
//!
//! The schema is versioned ([`schema`]). Writers and admin commands
//! ([`connect`]) bring it up to date, under an advisory lock so nodes
//! starting together do not race; readers ([`connect_reader`]) only check
//! that it is at this build's version and need no right to change it.

pub mod log;
pub mod realms;
pub mod schema;
pub mod verify;

pub use log::{CommitHook, HookPoint, PgLog};
pub use realms::PgRealms;
pub use verify::{read_sealed_commits, verify_realm};

/// Starts a read-only REPEATABLE READ transaction: one snapshot of the
/// realm for a whole read (load, verify, copy), whatever commits meanwhile.
///
/// # Errors
/// Database errors, reported as `op`.
pub(crate) fn snapshot<'c>(
    c: &'c mut postgres::Client,
    op: &'static str,
) -> Result<postgres::Transaction<'c>, sealog_journal::JournalError> {
    c.build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(|e| db(op, &e))
}

/// How long a connection attempt may take, unless the URL says.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Settings every session gets: a statement or lock wait that never ends
/// (a paused peer holding a row lock, a half-open connection) becomes an
/// error instead of a hang, and a session left inside a transaction by a
/// paused writer is ended by the server, releasing its locks.
const SESSION_SETTINGS: &str = "SET statement_timeout = '60s';
     SET lock_timeout = '10s';
     SET idle_in_transaction_session_timeout = '30s'";

/// Connects to PostgreSQL at `url` (a `postgresql://` URL or `key=value`
/// string) as a writer or admin: the schema is brought up to date.
///
/// # Errors
/// The connection failing, or the schema being newer than this build.
pub fn connect(url: &str) -> Result<postgres::Client, sealog_journal::JournalError> {
    let mut c = open(url)?;
    schema::migrate(&mut c)?;
    Ok(c)
}

/// Connects to PostgreSQL at `url` to read: the schema must already be at
/// this build's version (a reader never changes it, and needs no right to).
///
/// # Errors
/// The connection failing; a schema older or newer than this build's.
pub fn connect_reader(url: &str) -> Result<postgres::Client, sealog_journal::JournalError> {
    let mut c = open(url)?;
    schema::check(&mut c)?;
    Ok(c)
}

fn open(url: &str) -> Result<postgres::Client, sealog_journal::JournalError> {
    let op = "connecting to PostgreSQL";
    let mut config: postgres::Config = url.parse().map_err(|e| db(op, &e))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    // Keepalives notice a peer that went away without closing.
    config.keepalives(true);
    config.keepalives_idle(std::time::Duration::from_secs(30));
    let mut c = config.connect(postgres::NoTls).map_err(|e| db(op, &e))?;
    c.batch_execute(SESSION_SETTINGS).map_err(|e| db(op, &e))?;
    Ok(c)
}

/// A PostgreSQL error as a store error, with what was being done.
pub(crate) fn db(op: &'static str, e: &postgres::Error) -> sealog_journal::JournalError {
    sealog_journal::JournalError::Store {
        op,
        reason: describe(e),
    }
}

/// What a PostgreSQL error says: the server's own message (and detail)
/// when there is one (Display of `postgres::Error` says only "db error"),
/// else the client's error and its causes.
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => match d.detail() {
            Some(detail) => format!("{} ({detail})", d.message()),
            None => d.message().to_string(),
        },
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(c) = src {
                s.push_str(": ");
                s.push_str(&c.to_string());
                src = c.source();
            }
            s
        }
    }
}
