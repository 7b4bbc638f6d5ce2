//! Export bundles of a real journal, verified as a stream: whatever the
//! read sizes, every range verifies, and damage to any record is caught.

use std::io::{BufReader, Read};

use sealog_journal::bundle::{export, verify_bundle, BundleReport};

use crate::util::{append, open, signer};

/// A reader that hands out at most `step` bytes per read, so the verifier
/// sees records split across every kind of buffer boundary.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn verify(bytes: &[u8], step: usize, cap: usize) -> BundleReport {
    let mut r = BufReader::with_capacity(cap, Trickle { data: bytes, step });
    verify_bundle(&mut r, &signer().verifier()).expect("a bundle")
}

#[test]
fn streamed_verification_of_exported_ranges() {
    let d = tempfile::tempdir().expect("tempdir");
    let mut j = open(d.path());
    for c in 0..5 {
        append(&mut j, c * 211, 211);
    }
    assert_eq!(j.size(), 1055);
    for (from, to) in [
        (0, 0),
        (0, 1054),
        (17, 512),
        (1054, 1054),
        (500, 1053),
        (511, 512),
    ] {
        let mut bytes = Vec::new();
        export(&j, from, to, &mut bytes, &|_| {}).expect("export");
        for (step, cap) in [(1, 1), (7, 3), (13, 64), (4096, 8192)] {
            let r = verify(&bytes, step, cap);
            assert!(
                r.findings.is_empty(),
                "{from}..={to} step {step}: {:?}",
                r.findings
            );
            assert_eq!(r.header.expect("header").records, to - from + 1);
        }
        // Each record changed in turn (a sample of them): caught.
        let nl: Vec<usize> = bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i)
            .collect();
        for (k, end) in nl.iter().enumerate().skip(1).step_by(97) {
            let mut bad = bytes.clone();
            bad[end - 2] ^= 0x01;
            let r = verify(&bad, 5, 16);
            let seq = from + k as u64 - 1;
            assert!(
                !r.findings.is_empty(),
                "{from}..={to}: record {seq} changed unnoticed"
            );
        }
    }
}
