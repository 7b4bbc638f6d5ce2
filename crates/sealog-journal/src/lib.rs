//! The sealed journal: each realm's records as an append-only, verifiable
//! Merkle log on disk.
//!
//! This crate is synchronous and knows nothing of HTTP, tokens or realms
//! beyond a name and a signing key. It provides:
//!
//! - [`Journal`]: append with group commit and fsync before any [`Receipt`],
//!   crash recovery, reads by seq and by time, inclusion, consistency and
//!   range proofs over stored interior hashes; a commit can also be run in
//!   steps ([`Journal::stage_blocks`], [`StagedCommit::sync`],
//!   [`Journal::stage_checkpoint`], [`Journal::finish_commit`]) so a caller
//!   sharing the journal behind a lock need not hold it across fsyncs;
//! - [`checkpoint`]: C2SP signed-note checkpoints and verifier keys;
//! - [`merkle`]: RFC 9162 hashing and proof algorithms;
//! - [`verify`]: the offline verifier that needs only the files and a
//!   public key, and names the first bad seq;
//! - [`bundle`]: export slices with proofs, verifiable offline;
//! - [`LogStore`]: the narrow trait the server uses, so another backend can
//!   pass the same conformance tests.
//!
//! The on-disk formats are documented in [`segment`], [`block`] and
//! [`tree_file`].
//!
//! ```
//! use sealog_journal::{checkpoint::Signer, EventRef, Journal, JournalOptions};
//! # let dir = tempfile::tempdir().unwrap();
//! let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
//! let signer = Signer::new("sealog/acme", key);
//! let mut j = Journal::open(dir.path(), "acme", signer, JournalOptions::default()).unwrap();
//! let receipt = j.append(&[EventRef { bytes: br#"{"msg":"hello"}"#, time_ns: None }]).unwrap();
//! assert_eq!((receipt.first_seq, receipt.count), (0, 1));
//! j.verifier().verify(&receipt.checkpoint).unwrap();
//! ```

pub mod block;
pub mod bundle;
pub mod checkpoint;
pub mod commits;
pub mod conformance;
pub mod cosignature;
mod error;
pub mod fs;
pub mod fs_pool;
mod journal;
pub mod mark;
pub mod merkle;
pub mod retention;
pub mod segment;
pub mod sha256x8;
#[cfg(feature = "test-support")]
pub mod sim_fs;
pub mod store;
#[cfg(feature = "test-support")]
pub mod tamper;
pub mod tree_file;
pub mod verify;

pub use error::{JournalError, NoteError, ProofError, Result};
pub use journal::{
    block_cuts, prepare, BlockMeta, Durability, EventRef, Journal, JournalOptions, Poison,
    PreparedCommit, Receipt, StagedCommit,
};
pub use store::LogStore;
