//! Export bundles: a slice of a realm with the proof that ties it to a
//! signed checkpoint, verifiable offline with the public key alone.
//!
//! A bundle is NDJSON. The first line is a header object; then come exactly
//! `records` leaf lines, byte for byte as stored:
//!
//! ```text
//! {"format":"sealog-bundle","version":1,"realm":"acme","from_seq":10,"to_seq":19,
//!  "records":10,"tree_size":1000,"checkpoint":"sealog/acme\n1000\n...","range_proof":["base64",...]}
//! {"realm":"acme","seq":10,"received_at":"...",...}
//! ...
//! ```
//!
//! `range_proof` holds the hashes of the maximal subtrees outside
//! `[from_seq, to_seq]`, so the verifier recomputes the checkpoint's root
//! from the leaves in the bundle (see [`crate::merkle::range_proof`]).

use std::io::{BufRead, Write};
use std::ops::ControlFlow;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::checkpoint::VerifierKey;
use crate::error::{JournalError, Result};
use crate::journal::Journal;
use crate::merkle::{leaf_hash, root_from_range, Hash};
use crate::verify::Finding;

/// The bundle format name in the header.
pub const BUNDLE_FORMAT: &str = "sealog-bundle";
/// The bundle format version this build writes and reads.
pub const BUNDLE_VERSION: u32 = 1;

/// The first line of a bundle.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleHeader {
    /// Always `sealog-bundle`.
    pub format: String,
    /// Format version.
    pub version: u32,
    /// The realm.
    pub realm: String,
    /// First seq in the bundle.
    pub from_seq: u64,
    /// Last seq in the bundle (inclusive).
    pub to_seq: u64,
    /// Leaf lines that follow.
    pub records: u64,
    /// Tree size of the checkpoint.
    pub tree_size: u64,
    /// The signed checkpoint note.
    pub checkpoint: String,
    /// Base64 hashes, see the module docs.
    pub range_proof: Vec<String>,
}

/// Writes records `[from, to]` of `journal` as a bundle tied to its latest
/// checkpoint. `progress` gets the records written so far.
///
/// # Errors
/// An empty journal or range, read and write errors.
pub fn export(
    journal: &Journal,
    from: u64,
    to: u64,
    out: &mut dyn Write,
    progress: &dyn Fn(u64),
) -> Result<BundleHeader> {
    let cp = journal
        .latest_checkpoint()
        .ok_or_else(|| JournalError::Batch("the realm has no records to export".into()))?
        .clone();
    let size = cp.checkpoint.size;
    if from > to || to >= size {
        return Err(JournalError::OutOfRange {
            from,
            to: to.saturating_add(1),
            size,
        });
    }
    let proof = journal.range_proof(from, to + 1, size)?;
    let header = BundleHeader {
        format: BUNDLE_FORMAT.into(),
        version: BUNDLE_VERSION,
        realm: journal.realm().to_string(),
        from_seq: from,
        to_seq: to,
        records: to - from + 1,
        tree_size: size,
        checkpoint: cp.text,
        range_proof: proof.iter().map(|h| B64.encode(h)).collect(),
    };
    let io_err = |e: std::io::Error| JournalError::Io {
        op: "write",
        path: "bundle".into(),
        source: e,
    };
    let mut line = serde_json::to_vec(&header).map_err(|e| JournalError::Batch(e.to_string()))?;
    line.push(b'\n');
    out.write_all(&line).map_err(io_err)?;
    let mut result = Ok(());
    journal.read(from, to + 1, &mut |seq, leaf| {
        result = out
            .write_all(leaf)
            .and_then(|_| out.write_all(b"\n"))
            .map_err(io_err);
        if (seq - from).is_multiple_of(65_536) {
            progress(seq - from);
        }
        if result.is_err() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    result?;
    out.flush().map_err(io_err)?;
    progress(to - from + 1);
    Ok(header)
}

/// What [`verify_bundle`] concluded.
#[derive(Debug, Clone)]
pub struct BundleReport {
    /// The bundle's header, if it could be read.
    pub header: Option<BundleHeader>,
    /// Problems found; empty means the bundle is intact.
    pub findings: Vec<Finding>,
}

/// Verifies a bundle read from `input` with `key`.
///
/// # Errors
/// Only read errors; everything wrong with the bundle is a finding.
pub fn verify_bundle(input: &mut dyn BufRead, key: &VerifierKey) -> Result<BundleReport> {
    let io_err = |e: std::io::Error| JournalError::Io {
        op: "read",
        path: "bundle".into(),
        source: e,
    };
    let mut report = BundleReport {
        header: None,
        findings: Vec::new(),
    };
    let mut first = Vec::new();
    input.read_until(b'\n', &mut first).map_err(io_err)?;
    let header: BundleHeader = match serde_json::from_slice(&first) {
        Ok(h) => h,
        Err(e) => {
            report.findings.push(Finding {
                seq: 0,
                end: None,
                reason: format!("bundle header is not valid: {e}"),
            });
            return Ok(report);
        }
    };
    let fail = |report: &mut BundleReport, seq: u64, end: Option<u64>, reason: String| {
        report.findings.push(Finding { seq, end, reason });
    };
    let (from, to) = (header.from_seq, header.to_seq);
    if header.format != BUNDLE_FORMAT || header.version != BUNDLE_VERSION {
        fail(
            &mut report,
            from,
            None,
            format!("not a {BUNDLE_FORMAT} v{BUNDLE_VERSION}"),
        );
    }
    if key.name() != crate::checkpoint::origin_for(&header.realm) {
        fail(
            &mut report,
            from,
            None,
            format!(
                "bundle is for realm {:?}, key is {}",
                header.realm,
                key.name()
            ),
        );
    }
    let cp = match key.verify(&header.checkpoint) {
        Ok(cp) => Some(cp),
        Err(e) => {
            fail(&mut report, from, None, format!("bundle checkpoint: {e}"));
            None
        }
    };
    let proof: Option<Vec<Hash>> = header
        .range_proof
        .iter()
        .map(|h| B64.decode(h).ok().and_then(|v| v.try_into().ok()))
        .collect();
    if proof.is_none() {
        fail(
            &mut report,
            from,
            None,
            "range proof has a hash that is not base64 of 32 bytes".into(),
        );
    }
    if from > to || header.records != to - from + 1 {
        fail(
            &mut report,
            from,
            None,
            "header's seq range and record count disagree".into(),
        );
    }
    let mut leaves = Vec::new();
    let mut prefix = Vec::new();
    let mut line = Vec::new();
    let mut seq = from;
    loop {
        line.clear();
        let n = input.read_until(b'\n', &mut line).map_err(io_err)?;
        if n == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        sealog_event::leaf_prefix(&header.realm, seq, &mut prefix);
        if !line.starts_with(&prefix) && report.findings.is_empty() {
            let claimed =
                sealog_event::leaf_seq(&line).map_or("no seq".to_string(), |s| format!("seq {s}"));
            fail(
                &mut report,
                seq,
                None,
                format!("record at position {seq} claims {claimed}"),
            );
        }
        leaves.push(leaf_hash(&line));
        seq += 1;
    }
    let got = leaves.len() as u64;
    if got != header.records {
        fail(
            &mut report,
            from + got.min(header.records),
            Some(from + got.max(header.records)),
            format!("bundle holds {got} records, header says {}", header.records),
        );
    }
    if let (Some(cp), Some(proof)) = (cp, proof) {
        if cp.size != header.tree_size {
            fail(
                &mut report,
                from,
                None,
                "header tree size differs from its checkpoint".into(),
            );
        } else {
            match root_from_range(&leaves, from, cp.size, &proof) {
                Ok(root) if root == cp.root => {}
                Ok(_) => fail(
                    &mut report,
                    from,
                    Some(from + got),
                    format!(
                        "records {from}..{} do not match the checkpoint signed for size {}",
                        from + got,
                        cp.size
                    ),
                ),
                Err(e) => fail(&mut report, from, None, format!("range proof: {e}")),
            }
        }
    }
    report.findings.sort_by_key(|f| f.seq);
    report.header = Some(header);
    Ok(report)
}
