//! The narrow storage interface the server and CLI use.
//!
//! Everything above the journal (HTTP, listeners, query, export) talks to a
//! realm's log through [`LogStore`], so a second backend (PostgreSQL, for
//! the scale-out roles) can be dropped in and must pass the same
//! conformance suite ([`crate::conformance`]).

use std::ops::ControlFlow;

use crate::checkpoint::{SignedCheckpoint, VerifierKey};
use crate::error::Result;
use crate::journal::{EventRef, Journal, Receipt};
use crate::merkle::Hash;

/// A realm's verifiable log, whatever stores it.
pub trait LogStore {
    /// The realm.
    fn realm(&self) -> &str;
    /// Records committed.
    fn size(&self) -> u64;
    /// The key that verifies this log's checkpoints.
    fn verifier(&self) -> &VerifierKey;
    /// The latest signed checkpoint.
    fn latest_checkpoint(&self) -> Option<&SignedCheckpoint>;
    /// Appends `events`; returns only once they are durable.
    ///
    /// # Errors
    /// Storage errors; nothing is acknowledged on error.
    fn append(&mut self, events: &[EventRef<'_>]) -> Result<Receipt>;
    /// Visits leaf lines of seqs `[from, to)` in order until `visit` breaks.
    ///
    /// # Errors
    /// Out-of-range arguments; storage errors.
    fn read(
        &self,
        from: u64,
        to: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> ControlFlow<()>,
    ) -> Result<()>;
    /// RFC 9162 inclusion proof of `seq` in the tree of `size` records.
    ///
    /// # Errors
    /// Out-of-range arguments; storage errors.
    fn inclusion_proof(&self, seq: u64, size: u64) -> Result<Vec<Hash>>;
    /// RFC 9162 consistency proof from `old` to `new`.
    ///
    /// # Errors
    /// Out-of-range arguments; storage errors.
    fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>>;
}

impl LogStore for Journal {
    fn realm(&self) -> &str {
        Journal::realm(self)
    }
    fn size(&self) -> u64 {
        Journal::size(self)
    }
    fn verifier(&self) -> &VerifierKey {
        Journal::verifier(self)
    }
    fn latest_checkpoint(&self) -> Option<&SignedCheckpoint> {
        Journal::latest_checkpoint(self)
    }
    fn append(&mut self, events: &[EventRef<'_>]) -> Result<Receipt> {
        Journal::append(self, events)
    }
    fn read(
        &self,
        from: u64,
        to: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> ControlFlow<()>,
    ) -> Result<()> {
        Journal::read(self, from, to, visit)
    }
    fn inclusion_proof(&self, seq: u64, size: u64) -> Result<Vec<Hash>> {
        Journal::inclusion_proof(self, seq, size)
    }
    fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>> {
        Journal::consistency_proof(self, old, new)
    }
}
