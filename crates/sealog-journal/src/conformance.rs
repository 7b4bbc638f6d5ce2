//! The conformance suite every [`LogStore`] backend must pass.
//!
//! Backends call [`run_all`] from their own tests with a function that
//! makes a fresh, empty store. Each check panics with a message saying what
//! broke, like any test assertion.

use std::ops::ControlFlow;

use crate::journal::EventRef;
use crate::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use crate::store::LogStore;

/// Runs every check against fresh stores from `fresh`.
pub fn run_all<S: LogStore>(mut fresh: impl FnMut() -> S) {
    dense_seqs_and_exact_lines(&mut fresh());
    receipts_and_proofs(&mut fresh());
    out_of_range(&mut fresh());
}

fn event(i: usize) -> Vec<u8> {
    format!(r#"{{"app":"conf","n":{i},"msg":"record {i}"}}"#).into_bytes()
}

fn append_n<S: LogStore>(s: &mut S, from: usize, n: usize) -> crate::journal::Receipt {
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
