//! The conformance suite every [`LogStore`] backend must pass.
//!
//! Backends call [`run_harness`] from their own tests with a [`Harness`]
//! that makes fresh stores, reopens them, tampers with a stored record and
//! verifies ([`run_all`] is the part that needs only fresh stores). Each
//! check panics with a message saying what broke, like any test assertion.

use std::ops::ControlFlow;

use crate::journal::EventRef;
use crate::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use crate::store::LogStore;

/// A backend under test.
pub trait Harness {
    /// The store it makes.
    type Store: LogStore;
    /// A fresh, empty store for a realm of its choosing.
    fn fresh(&mut self) -> Self::Store;
    /// Closes `s` and opens the same realm again, as a restart would.
    fn reopen(&mut self, s: Self::Store) -> Self::Store;
    /// Changes the text of committed record `seq` where the store keeps it,
    /// fixing up every checksum and leaf-hash hint: an edit only the Merkle
    /// log and the signed checkpoints can reveal.
    fn tamper(&mut self, s: &Self::Store, seq: u64);
    /// Runs the store's offline verifier over the realm (with its signed
    /// high-water mark required).
    fn verify(&mut self, s: &Self::Store) -> crate::verify::Report;
}

/// Runs the whole suite against `h`.
pub fn run_harness<H: Harness>(h: &mut H) {
    run_all(|| h.fresh());
    reopen_keeps_log_and_proofs(h);
    verify_passes_then_finds_tampering(h);
}

/// After a reopen the store has the same size, root, checkpoint and
/// records, and appends go on from where they were.
pub fn reopen_keeps_log_and_proofs<H: Harness>(h: &mut H) {
    let mut s = h.fresh();
    let r1 = append_n(&mut s, 0, 1300);
    let root = s.root_at(1300).expect("root");
    let cp = s.latest_checkpoint().map(|c| c.text.clone());
    let mut s = h.reopen(s);
    assert_eq!(s.size(), 1300, "size survives a reopen");
    assert_eq!(
        s.root_at(1300).expect("root"),
        root,
        "root survives a reopen"
    );
    assert_eq!(
        s.latest_checkpoint().map(|c| c.text.clone()),
        cp,
        "latest checkpoint survives a reopen"
    );
    let r2 = append_n(&mut s, 1300, 20);
    assert_eq!((r2.first_seq, r2.last_seq), (1300, 1319), "appends go on");
    let key = s.verifier().clone();
    let c1 = key.verify(&r1.checkpoint).expect("receipt 1 verifies");
    let c2 = key.verify(&r2.checkpoint).expect("receipt 2 verifies");
    let proof = s.consistency_proof(c1.size, c2.size).expect("proof");
    verify_consistency(c1.size, c2.size, &proof, &c1.root, &c2.root)
        .expect("the log after the reopen extends the one before");
    let mut n = 0u64;
    s.read(0, 1320, &mut |seq, line| {
        let v: serde_json::Value = serde_json::from_slice(line).expect("JSON");
        assert_eq!(v["n"], seq, "record {seq} read back after a reopen");
        n += 1;
        ControlFlow::Continue(())
    })
    .expect("read");
    assert_eq!(n, 1320);
}

/// The verifier passes an honest log and names the seq of a record whose
/// text was changed behind the store's back (checksums fixed up).
pub fn verify_passes_then_finds_tampering<H: Harness>(h: &mut H) {
    let mut s = h.fresh();
    append_n(&mut s, 0, 600);
    append_n(&mut s, 600, 600);
    let report = h.verify(&s);
    assert!(report.ok(), "an honest log verifies: {:?}", report.findings);
    assert_eq!(report.records, 1200, "the verifier read every record");
    h.tamper(&s, 700);
    let report = h.verify(&s);
    assert!(!report.ok(), "an edited record is found");
    let first = report.first_bad().expect("a finding");
    assert!(
        first.seq <= 700 && first.end.is_none_or(|e| e > 700),
        "the finding covers seq 700: {first}"
    );
}

/// Runs every check against fresh stores from `fresh`.
pub fn run_all<S: LogStore>(mut fresh: impl FnMut() -> S) {
    dense_seqs_and_exact_lines(&mut fresh());
    receipts_and_proofs(&mut fresh());
    out_of_range(&mut fresh());
}

fn event(i: usize) -> Vec<u8> {
    format!(r#"{{"app":"conf","n":{i},"msg":"record {i}"}}"#).into_bytes()
}

/// Appends records `from..from + n` (`{"app":"conf","n":i,"msg":"record i"}`)
/// in one batch; panics if the store refuses.
pub fn append_n<S: LogStore>(s: &mut S, from: usize, n: usize) -> crate::journal::Receipt {
    let bodies: Vec<Vec<u8>> = (from..from + n).map(event).collect();
    let events: Vec<EventRef<'_>> = bodies
        .iter()
        .map(|b| EventRef {
            bytes: b,
            time_ns: None,
        })
        .collect();
    s.append(&events).expect("append succeeds")
}

/// Seqs are dense from 0 and reads return the leaf lines that were hashed.
pub fn dense_seqs_and_exact_lines<S: LogStore>(s: &mut S) {
    assert_eq!(s.size(), 0, "a fresh store is empty");
    assert!(s.latest_checkpoint().is_none());
    let r1 = append_n(s, 0, 3);
    let r2 = append_n(s, 3, 1500);
    assert_eq!((r1.first_seq, r1.last_seq, r1.count), (0, 2, 3));
    assert_eq!((r2.first_seq, r2.last_seq, r2.count), (3, 1502, 1500));
    assert_eq!(s.size(), 1503);
    let mut seen = 0u64;
    s.read(0, 1503, &mut |seq, line| {
        assert_eq!(seq, seen, "reads come in seq order");
        let v: serde_json::Value = serde_json::from_slice(line).expect("leaf line is JSON");
        assert_eq!(v["seq"], seq, "leaf line carries its seq");
        assert_eq!(v["realm"], s.realm());
        assert_eq!(v["n"], seq, "fields are kept as sent");
        seen += 1;
        ControlFlow::Continue(())
    })
    .expect("read");
    assert_eq!(seen, 1503);
    let mut stopped = 0;
    s.read(10, 20, &mut |_, _| {
        stopped += 1;
        ControlFlow::Break(())
    })
    .expect("read");
    assert_eq!(stopped, 1, "a visitor can stop early");
}

/// Every receipt's checkpoint verifies; inclusion proofs for its seqs and a
/// consistency proof between two receipts verify against it.
pub fn receipts_and_proofs<S: LogStore>(s: &mut S) {
    let r1 = append_n(s, 0, 700);
    let r2 = append_n(s, 700, 333);
    let key = s.verifier().clone();
    let c1 = key.verify(&r1.checkpoint).expect("receipt 1 verifies");
    let c2 = key.verify(&r2.checkpoint).expect("receipt 2 verifies");
    assert_eq!((c1.size, c2.size), (700, 1033));
    assert_eq!(
        s.latest_checkpoint().map(|c| c.text.clone()),
        Some(r2.checkpoint.clone())
    );
    for seq in [0, 1, 255, 256, 699, 700, 1032] {
        let mut leaf = Vec::new();
        s.read(seq, seq + 1, &mut |_, l| {
            leaf = l.to_vec();
            ControlFlow::Continue(())
        })
        .expect("read");
        let h = leaf_hash(&leaf);
        let proof = s.inclusion_proof(seq, c2.size).expect("proof");
        verify_inclusion(&h, seq, c2.size, &proof, &c2.root).expect("inclusion verifies");
        if seq < c1.size {
            let proof = s.inclusion_proof(seq, c1.size).expect("proof");
            verify_inclusion(&h, seq, c1.size, &proof, &c1.root).expect("inclusion in old tree");
        }
    }
    let proof = s
        .consistency_proof(c1.size, c2.size)
        .expect("consistency proof");
    verify_consistency(c1.size, c2.size, &proof, &c1.root, &c2.root).expect("consistency verifies");
}

/// Asking past the end is an error, not a panic or an empty answer.
pub fn out_of_range<S: LogStore>(s: &mut S) {
    append_n(s, 0, 10);
    assert!(s.inclusion_proof(10, 10).is_err());
    assert!(s.inclusion_proof(0, 11).is_err());
    assert!(s.consistency_proof(0, 10).is_err());
    assert!(s.consistency_proof(5, 11).is_err());
    assert!(s
        .read(5, 11, &mut |_, _| ControlFlow::Continue(()))
        .is_err());
    assert!(s.append(&[]).is_err(), "an empty batch is refused");
}
