//! Proofs served from the journal's stored hashes, for random arguments:
//! they verify, and fail when any hash, index or size is changed.

use std::ops::ControlFlow;
use std::sync::OnceLock;

use proptest::prelude::*;
use sealog_journal::merkle::{leaf_hash, root_of, verify_consistency, verify_inclusion, Hash};
use sealog_journal::Journal;

use crate::util::{append, open};

const N: u64 = 3000;

/// One journal of N records in uneven commits, and its leaf hashes computed
/// independently from the lines it returns.
fn fixture() -> &'static (tempfile::TempDir, Vec<Hash>) {
    static F: OnceLock<(tempfile::TempDir, Vec<Hash>)> = OnceLock::new();
    F.get_or_init(|| {
        let d = tempfile::tempdir().expect("tempdir");
        let mut j = open(d.path());
        let mut at = 0;
        for n in [1, 255, 1, 513, 700, 1030, 500] {
            append(&mut j, at, n);
            at += n;
        }
        assert_eq!(at, N);
        let mut leaves = Vec::new();
        j.read(0, N, &mut |_, l| {
            leaves.push(leaf_hash(l));
            ControlFlow::Continue(())
        })
        .expect("read");
        (d, leaves)
    })
}

fn journal() -> Journal {
    open(fixture().0.path())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn inclusion(size in 1..=N, pick in any::<u64>(), which in any::<usize>()) {
        let (_, leaves) = fixture();
        let j = journal();
        let seq = pick % size;
        let root = root_of(&leaves[..size as usize]);
        prop_assert_eq!(j.root_at(size).expect("root"), root);
        let path = j.inclusion_proof(seq, size).expect("proof");
        prop_assert!(verify_inclusion(&leaves[seq as usize], seq, size, &path, &root).is_ok());
        if !path.is_empty() {
            let mut bad = path.clone();
            bad[which % path.len()][7] ^= 4;
            prop_assert!(verify_inclusion(&leaves[seq as usize], seq, size, &bad, &root).is_err());
        }
        if size > 1 {
            let other = (seq + 1) % size;
            prop_assert!(verify_inclusion(&leaves[seq as usize], other, size, &path, &root).is_err());
        }
        if size < N {
            let bigger = root_of(&leaves[..size as usize + 1]);
            prop_assert!(verify_inclusion(&leaves[seq as usize], seq, size + 1, &path, &bigger).is_err());
        }
    }

    #[test]
    fn consistency(n in 1..=N, pick in any::<u64>(), which in any::<usize>()) {
        let (_, leaves) = fixture();
        let j = journal();
        let m = pick % n + 1;
        let (rm, rn) = (root_of(&leaves[..m as usize]), root_of(&leaves[..n as usize]));
        let proof = j.consistency_proof(m, n).expect("proof");
        prop_assert!(verify_consistency(m, n, &proof, &rm, &rn).is_ok());
        if !proof.is_empty() {
            let mut bad = proof.clone();
            bad[which % proof.len()][0] ^= 1;
            prop_assert!(verify_consistency(m, n, &bad, &rm, &rn).is_err());
        }
        if m < n {
            let rm1 = root_of(&leaves[..m as usize + 1]);
            prop_assert!(verify_consistency(m + 1, n, &proof, &rm1, &rn).is_err());
        }
    }
}

#[test]
fn proofs_past_the_end_are_refused() {
    let j = journal();
    assert!(j.inclusion_proof(0, N + 1).is_err());
    assert!(j.consistency_proof(1, N + 1).is_err());
    assert!(j.root_at(N + 1).is_err());
}
