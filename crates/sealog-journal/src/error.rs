//! Errors of the journal crate.

use std::io;
use std::path::PathBuf;

/// Why a Merkle proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// An index or size outside the tree.
    #[error("index {index} is out of range for tree size {size}")]
    OutOfRange {
        /// The index or old size asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The proof does not have the right shape.
    #[error("malformed proof: {0}")]
    Malformed(&'static str),
    /// The proof computes a different root.
    #[error("proof does not lead to the expected root hash")]
    RootMismatch,
}

/// Why a signed note or verifier key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The note text is not a well-formed checkpoint note.
    #[error("malformed checkpoint note: {0}")]
    Malformed(&'static str),
    /// The verifier key string is malformed.
    #[error("malformed verifier key: {0}")]
    BadKey(&'static str),
    /// The note is for another log.
    #[error("checkpoint origin is {got:?}, expected {want:?}")]
    WrongOrigin {
        /// The key's origin.
        want: String,
        /// The note's origin.
        got: String,
    },
    /// The note carries no signature from the key.
    #[error("checkpoint has no signature by key {0}")]
    NoSignatureByKey(String),
    /// The key's signature does not verify.
    #[error("checkpoint signature does not verify")]
    BadSignature,
}

/// Errors of the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// An I/O error on a journal file.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A file is not a journal file of a version this build reads.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Committed data is damaged or altered: never repaired silently.
    #[error("journal is corrupt at seq {seq}: {reason} ({path})")]
    Corrupt {
        /// The first seq affected.
        seq: u64,
        /// What is wrong.
        reason: String,
        /// The file.
        path: PathBuf,
    },
    /// A checkpoint note could not be used.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// A proof could not be produced or checked.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// An earlier write or fsync failed; the journal refuses further writes
    /// until it is reopened and recovered.
    #[error("journal is poisoned by an earlier write failure; reopen it to recover")]
    Poisoned,
    /// A range outside the committed records.
    #[error("seq range {from}..{to} is outside the journal (size {size})")]
    OutOfRange {
        /// Start asked for.
        from: u64,
        /// End asked for (exclusive).
        to: u64,
        /// Records committed.
        size: u64,
    },
    /// The batch to append is empty or too large.
    #[error("invalid batch: {0}")]
    Batch(String),
    /// One event is larger than [`sealog_event::MAX_EVENT_BYTES`].
    #[error("event {index} of the batch is {len} bytes; the most one event may be is {max} bytes")]
    EventTooLarge {
        /// 0-based index in the batch.
        index: usize,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The journal ends before the last checkpoint the realm signed (its
    /// high-water mark): records were deleted or cut off.
    #[error("journal ends at size {size} but the realm signed a checkpoint for size {marked} (its high-water mark): acknowledged records were deleted or cut off ({path})")]
    Rollback {
        /// Records the journal holds.
        size: u64,
        /// The size of the last signed checkpoint.
        marked: u64,
        /// The journal directory.
        path: PathBuf,
    },
    /// A file or directory every realm made by this version has is gone:
    /// deleted, not a crash (they are created before the realm exists).
    #[error("{what} is missing ({path}): it was deleted, so acknowledged records may be gone; restore it from a backup or check clients' receipts")]
    Missing {
        /// What is missing.
        what: &'static str,
        /// Where it should be.
        path: PathBuf,
    },
    /// The journal's records do not match a checkpoint the realm signed.
    #[error("records 0..{size} do not match the checkpoint the realm signed for size {size}: history was rewritten ({path})")]
    Fork {
        /// The size of the signed checkpoint.
        size: u64,
        /// The journal directory.
        path: PathBuf,
    },
    /// The database behind a store other than segment files (PostgreSQL)
    /// failed or is unreachable; nothing of the operation was applied.
    #[error("{op}: {reason}")]
    Store {
        /// What was being done.
        op: &'static str,
        /// The database's error.
        reason: String,
    },
    /// Another writer took over the realm (a higher owner epoch, or the
    /// log moved on since this writer last saw it): this writer's commit
    /// was refused so the log cannot fork.
    #[error("fenced: {0}")]
    Fenced(String),
}

impl JournalError {
    /// True when the cause is a full disk or quota: retrying after space is
    /// freed can succeed.
    pub fn is_storage_full(&self) -> bool {
        matches!(self, JournalError::Io { source, .. } if crate::fs::is_storage_full(source))
    }

    /// True for damage, rollback or rewrite of committed data.
    pub fn is_integrity(&self) -> bool {
        matches!(
            self,
            JournalError::Corrupt { .. }
                | JournalError::Rollback { .. }
                | JournalError::Fork { .. }
        )
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| JournalError::Io { op, path, source }
    }
}

/// Result with [`JournalError`].
pub type Result<T, E = JournalError> = std::result::Result<T, E>;
