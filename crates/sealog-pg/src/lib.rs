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
//! The schema is versioned ([`schema`]) and brought up to date on every
//! connect, under an advisory lock so nodes starting together do not race.

pub mod log;
pub mod schema;
pub mod verify;

pub use log::PgLog;
pub use verify::verify_realm;

/// Connects to PostgreSQL at `url` (a `postgresql://` URL or `key=value`
/// string) and brings the schema up to date.
///
/// # Errors
/// The connection failing, or the schema being newer than this build.
pub fn connect(url: &str) -> Result<postgres::Client, sealog_journal::JournalError> {
    let mut c = postgres::Client::connect(url, postgres::NoTls)
        .map_err(|e| db("connecting to PostgreSQL", &e))?;
    schema::migrate(&mut c)?;
    Ok(c)
}

/// A PostgreSQL error as a store error, with what was being done.
pub(crate) fn db(op: &'static str, e: &postgres::Error) -> sealog_journal::JournalError {
    // The server's own message (and detail) when there is one: Display of
    // postgres::Error says only "db error".
    let reason = match e.as_db_error() {
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
    };
    sealog_journal::JournalError::Store { op, reason }
}
