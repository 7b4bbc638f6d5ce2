//! Export bundles: a slice of a realm with the proof that ties it to a
//! signed checkpoint, verifiable offline with the public key alone.
//!
//! A bundle is NDJSON. The first line is a header object; then come exactly
//! `records` leaf lines, byte for byte as stored, each ending in `\n`, and
//! nothing after them:
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
//!
//! Bundles come from untrusted parties, so [`verify_bundle`] reads them as a
//! stream in bounded memory, whatever the input: the header line is read up
//! to [`MAX_HEADER_BYTES`]; a range proof has at most [`MAX_RANGE_PROOF`]
//! hashes (two per tree level); each record is hashed as it streams past, up
//! to [`MAX_RECORD_BYTES`], and only a fixed-size prefix of it is kept (for
//! the seq check); the root is folded from one partial subtree per proof
//! step. Nothing is allocated in proportion to the record count or to a
//! length the bundle declares, and reading stops at the first record past
//! the count the header declares.

use std::io::{BufRead, Read, Write};
use std::ops::ControlFlow;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::checkpoint::{Checkpoint, VerifierKey};
use crate::error::{JournalError, Result};
use crate::merkle::{node_hash, split_point, Frontier, Hash};
use crate::verify::Finding;

/// The bundle format name in the header.
pub const BUNDLE_FORMAT: &str = "sealog-bundle";
/// The bundle format version this build writes and reads.
pub const BUNDLE_VERSION: u32 = 1;
/// Longest header line a verifier reads. A real header is a few hundred
/// bytes plus 46 per range-proof hash.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Most hashes a range proof can need: two per level of a tree of at most
/// 2^64 leaves.
pub const MAX_RANGE_PROOF: usize = 128;
/// Longest record line a verifier hashes: the most uncompressed bytes a
/// journal block may hold, so no record sealog stores is longer.
pub const MAX_RECORD_BYTES: usize = crate::block::MAX_DECODED_RAW;

/// How a header names its format, as [`export`] writes it (first).
const HEADER_FORMAT: &[u8] = br#""format":"sealog-bundle""#;
/// Bytes of each record kept for the seq check (the prefix is at most
/// 10 + 63 + 8 + 20 + 1 bytes).
const RECORD_HEAD: usize = 128;

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

/// Writes records `[from, to]` of `journal` (a realm's log in any store)
/// as a bundle tied to its latest checkpoint. `progress` gets the records
/// written so far.
///
/// # Errors
/// An empty journal or range, read and write errors.
pub fn export(
    journal: &dyn crate::LogStore,
    from: u64,
    to: u64,
    out: &mut dyn Write,
    progress: &dyn Fn(u64),
) -> Result<BundleHeader> {
    let cp = journal
        .latest_checkpoint()
        .ok_or_else(|| JournalError::Batch("the realm has no records to export".into()))?
        .clone();
    export_at(journal, &cp, from, to, out, progress)
}

/// As [`export`], tied to `cp`, a checkpoint of `journal` at any size it
/// holds (such as the newest one its witnesses cosigned, whose note, with
/// the cosignatures, the bundle then carries).
///
/// # Errors
/// As [`export`]; a checkpoint that is not the journal's own at its size.
pub fn export_at(
    journal: &dyn crate::LogStore,
    cp: &crate::checkpoint::SignedCheckpoint,
    from: u64,
    to: u64,
    out: &mut dyn Write,
    progress: &dyn Fn(u64),
) -> Result<BundleHeader> {
    let size = cp.checkpoint.size;
    if size > journal.size() || journal.root_at(size)? != cp.checkpoint.root {
        return Err(JournalError::Batch(format!(
            "the checkpoint of size {size} is not this realm's tree at that size"
        )));
    }
    if from > to || to >= size {
        return Err(JournalError::OutOfRange {
            from,
            to: to.saturating_add(1),
            size,
        });
    }
    // A bundle carries bodies, and the verifier hashes them: a record whose
    // body retention removed cannot be in one.
    let notes = journal.retention_records()?;
    for r in notes.records.iter().map(|s| &s.record) {
        let i = r.ranges.partition_point(|(_, end)| *end <= from);
        if let Some((a, _)) = r.ranges.get(i).filter(|(a, _)| *a <= to) {
            return Err(JournalError::Batch(format!(
                "seq {} in {from}..={to} was retained out by retention record {} ({}); export a range of records that still have their bodies",
                a.max(&from),
                r.id,
                r.policy
            )));
        }
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
        checkpoint: cp.text.clone(),
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

/// Verifies a bundle read from `input` with `key`, as a stream in bounded
/// memory (see the module docs).
///
/// # Errors
/// Read errors, and [`JournalError::Format`] when the input is not a bundle
/// at all (its first line is not a bundle header: empty input, no line end
/// within [`MAX_HEADER_BYTES`], or another kind of file). Everything wrong
/// with a bundle (a damaged or cut header, a bad signature, records that
/// are missing, cut short, extra or altered) is a finding.
pub fn verify_bundle(input: &mut dyn BufRead, key: &VerifierKey) -> Result<BundleReport> {
    let mut report = BundleReport {
        header: None,
        findings: Vec::new(),
    };
    let header = match read_header(input)? {
        Ok(h) => h,
        Err(reason) => {
            report.findings.push(Finding {
                seq: 0,
                end: None,
                reason,
            });
            return Ok(report);
        }
    };
    if let Some(plan) = check_header(&header, key, &mut report.findings) {
        read_records(input, &header, &plan, &mut report.findings)?;
    }
    report.findings.sort_by_key(|f| f.seq);
    report.header = Some(header);
    Ok(report)
}

fn io_err(e: std::io::Error) -> JournalError {
    JournalError::Io {
        op: "read",
        path: "bundle".into(),
        source: e,
    }
}

fn not_a_bundle(reason: String) -> JournalError {
    JournalError::Format {
        path: "input".into(),
        reason: format!("not a {BUNDLE_FORMAT}: {reason}"),
    }
}

/// Reads the header line: `Ok(Ok(header))`, `Ok(Err(why))` for a bundle
/// whose header is damaged or cut, `Err` for input that is no bundle.
fn read_header(input: &mut dyn BufRead) -> Result<Result<BundleHeader, String>> {
    let mut line = Vec::new();
    (&mut *input)
        .take(MAX_HEADER_BYTES as u64 + 1)
        .read_until(b'\n', &mut line)
        .map_err(io_err)?;
    if line.is_empty() {
        return Err(not_a_bundle("the input is empty".into()));
    }
    let complete = line.last() == Some(&b'\n');
    if !complete && line.len() > MAX_HEADER_BYTES {
        return if memchr::memmem::find(&line, HEADER_FORMAT).is_some() {
            Ok(Err(format!(
                "bundle header is longer than {MAX_HEADER_BYTES} bytes"
            )))
        } else {
            Err(not_a_bundle(format!(
                "its first {MAX_HEADER_BYTES} bytes hold no header line"
            )))
        };
    }
    if complete {
        line.pop();
    }
    let err = match serde_json::from_slice::<BundleHeader>(&line) {
        Ok(h) if complete => return Ok(Ok(h)),
        Ok(_) => {
            return Ok(Err(
                "bundle ends after its header line, which has no newline".into(),
            ))
        }
        Err(e) => e,
    };
    let names_format = || {
        serde_json::from_slice::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v.get("format")?.as_str().map(|f| f == BUNDLE_FORMAT))
            .unwrap_or(false)
    };
    if memchr::memmem::find(&line, HEADER_FORMAT).is_some() || names_format() {
        Ok(Err(if complete {
            format!("bundle header is not valid: {err}")
        } else {
            format!("bundle ends inside its header: {err}")
        }))
    } else if line.first() != Some(&b'{') {
        Err(not_a_bundle("its first line is not a JSON object".into()))
    } else {
        Err(not_a_bundle(format!(
            "its first line is not a {BUNDLE_FORMAT} header ({err})"
        )))
    }
}

/// What a header that holds up promises about the records that follow.
struct Plan {
    /// First seq.
    from: u64,
    /// Last seq, inclusive.
    to: u64,
    /// The verified checkpoint.
    cp: Checkpoint,
    /// The decoded range proof.
    proof: Vec<Hash>,
    /// The maximal subtrees inside `[from, to]`, in order: `[lo, hi)`.
    spans: Vec<(u64, u64)>,
}

/// Checks everything the header says; `None` (with findings) when the
/// records cannot be checked against it.
fn check_header(h: &BundleHeader, key: &VerifierKey, findings: &mut Vec<Finding>) -> Option<Plan> {
    let (from, to) = (h.from_seq, h.to_seq);
    let mut fail = |reason: String| {
        findings.push(Finding {
            seq: from,
            end: None,
            reason,
        })
    };
    if h.format != BUNDLE_FORMAT || h.version != BUNDLE_VERSION {
        fail(format!("not a {BUNDLE_FORMAT} v{BUNDLE_VERSION}"));
    }
    if key.name() != crate::checkpoint::origin_for(&h.realm) {
        fail(format!(
            "bundle is for realm {:?}, key is {}",
            h.realm,
            key.name()
        ));
    }
    let cp = key
        .verify(&h.checkpoint)
        .map_err(|e| fail(format!("bundle checkpoint: {e}")))
        .ok();
    let proof: Option<Vec<Hash>> = if h.range_proof.len() > MAX_RANGE_PROOF {
        fail(format!(
            "range proof has {} hashes; no tree needs more than {MAX_RANGE_PROOF}",
            h.range_proof.len()
        ));
        None
    } else {
        let p: Option<Vec<Hash>> = h
            .range_proof
            .iter()
            .map(|h| B64.decode(h).ok().and_then(|v| v.try_into().ok()))
            .collect();
        if p.is_none() {
            fail("range proof has a hash that is not base64 of 32 bytes".into());
        }
        p
    };
    let span = to.checked_sub(from).and_then(|d| d.checked_add(1));
    if span != Some(h.records) {
        fail("header's seq range and record count disagree".into());
    }
    let cp = cp?;
    if cp.size != h.tree_size {
        fail("header tree size differs from its checkpoint".into());
    } else if to >= cp.size {
        fail(format!(
            "header's seq range ends at {to}, beyond the {} records the checkpoint covers",
            cp.size
        ));
    }
    let proof = proof?;
    if !findings.is_empty() {
        return None;
    }
    let mut spans = Vec::new();
    let mut outside = 0usize;
    fold_shape(0, cp.size, from, to + 1, &mut |lo, hi, inside| {
        if inside {
            spans.push((lo, hi));
        } else {
            outside += 1;
        }
        Some([0; 32])
    });
    if outside != proof.len() {
        findings.push(Finding {
            seq: from,
            end: None,
            reason: format!(
                "range proof has {} hashes; seqs {from}..={to} of a tree of size {} need {outside}",
                proof.len(),
                cp.size
            ),
        });
        return None;
    }
    Some(Plan {
        from,
        to,
        cp,
        proof,
        spans,
    })
}

/// Walks the tree of `[lo, hi)` as [`crate::merkle::root_from_range`] does
/// for the leaves `[from, to)`: `visit(lo, hi, inside)` gives the hash of
/// each maximal subtree inside the range (`inside`) or outside it, in
/// order; the result is the root folded from them.
fn fold_shape(
    lo: u64,
    hi: u64,
    from: u64,
    to: u64,
    visit: &mut dyn FnMut(u64, u64, bool) -> Option<Hash>,
) -> Option<Hash> {
    if hi <= from || lo >= to {
        return visit(lo, hi, false);
    }
    if lo >= from && hi <= to {
        return visit(lo, hi, true);
    }
    let k = split_point(hi - lo);
    let l = fold_shape(lo, lo + k, from, to, visit)?;
    let r = fold_shape(lo + k, hi, from, to, visit)?;
    Some(node_hash(&l, &r))
}

/// One record line as it streamed past.
enum Record {
    /// The input ended before it.
    End,
    /// Longer than [`MAX_RECORD_BYTES`]; reading stopped inside it.
    TooLong,
    /// Its leaf hash; `complete` unless the input ended before its newline.
    Line { hash: Hash, complete: bool },
}

/// Reads one line, hashing it as a leaf as it goes and keeping its first
/// [`RECORD_HEAD`] bytes in `head`.
fn read_record(input: &mut dyn BufRead, head: &mut Vec<u8>) -> Result<Record> {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    head.clear();
    let mut len = 0usize;
    loop {
        let buf = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(e)),
        };
        if buf.is_empty() {
            return Ok(if len == 0 {
                Record::End
            } else {
                Record::Line {
                    hash: hasher.finalize().into(),
                    complete: false,
                }
            });
        }
        let (chunk, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..i], true),
            None => (buf, false),
        };
        len += chunk.len();
        if len > MAX_RECORD_BYTES {
            return Ok(Record::TooLong);
        }
        if head.len() < RECORD_HEAD {
            let take = (RECORD_HEAD - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        hasher.update(chunk);
        let used = chunk.len() + usize::from(done);
        input.consume(used);
        if done {
            return Ok(Record::Line {
                hash: hasher.finalize().into(),
                complete: true,
            });
        }
    }
}

/// Streams the records, checks each one's realm and seq, and the root they
/// and the proof give against the checkpoint.
fn read_records(
    input: &mut dyn BufRead,
    h: &BundleHeader,
    plan: &Plan,
    findings: &mut Vec<Finding>,
) -> Result<()> {
    let (from, to) = (plan.from, plan.to);
    let mut fail =
        |seq: u64, end: Option<u64>, reason: String| findings.push(Finding { seq, end, reason });
    let mut spans = plan.spans.iter();
    let mut span = spans.next().copied();
    let mut frontier = Frontier::new();
    let mut roots = Vec::with_capacity(plan.spans.len());
    let (mut prefix, mut head) = (Vec::new(), Vec::with_capacity(RECORD_HEAD));
    let mut misplaced = false;
    for seq in from..=to {
        let (hash, complete) = match read_record(input, &mut head)? {
            Record::End => {
                fail(
                    seq,
                    Some(to + 1),
                    format!(
                        "bundle holds {} records, header says {}",
                        seq - from,
                        h.records
                    ),
                );
                return Ok(());
            }
            Record::TooLong => {
                fail(
                    seq,
                    None,
                    format!(
                        "record is longer than {MAX_RECORD_BYTES} bytes, more than any record sealog stores"
                    ),
                );
                return Ok(());
            }
            Record::Line { hash, complete } => (hash, complete),
        };
        if !complete {
            fail(
                seq,
                Some(to + 1),
                "bundle ends inside this record (no newline after it): it was cut short".into(),
            );
            return Ok(());
        }
        sealog_event::leaf_prefix(&h.realm, seq, &mut prefix);
        if !misplaced && !head.starts_with(&prefix) {
            misplaced = true;
            let claimed =
                sealog_event::leaf_seq(&head).map_or("no seq".to_string(), |s| format!("seq {s}"));
            fail(
                seq,
                None,
                format!("record at position {seq} claims {claimed}"),
            );
        }
        let Some((lo, hi)) = span else {
            unreachable!("the spans cover every seq of the range");
        };
        frontier.push(hash, |_, _, _| {});
        if frontier.size() == hi - lo {
            roots.push(frontier.root());
            frontier = Frontier::new();
            span = spans.next().copied();
        }
    }
    let extra = loop {
        match input.fill_buf() {
            Ok(b) => break !b.is_empty(),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(e)),
        }
    };
    if extra {
        fail(
            to + 1,
            None,
            format!(
                "bundle has data after the {} records its header declares",
                h.records
            ),
        );
        return Ok(());
    }
    let (mut proof, mut roots) = (plan.proof.iter(), roots.into_iter());
    let root = fold_shape(0, plan.cp.size, from, to + 1, &mut |_, _, inside| {
        if inside {
            roots.next()
        } else {
            proof.next().copied()
        }
    });
    if root != Some(plan.cp.root) {
        fail(
            from,
            Some(to + 1),
            format!(
                "records {from}..{} do not match the checkpoint signed for size {}",
                to + 1,
                plan.cp.size
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Signer;
    use crate::merkle::{leaf_hash, range_proof, root_of, MemTree};

    fn signer() -> Signer {
        Signer::new("sealog/t", ed25519_dalek::SigningKey::from_bytes(&[7; 32]))
    }

    /// A bundle of seqs `from..=to` of a `size`-record realm `t`, built
    /// without a journal.
    fn bundle(size: u64, from: u64, to: u64) -> Vec<u8> {
        let lines: Vec<String> = (0..size)
            .map(|seq| format!(r#"{{"realm":"t","seq":{seq},"n":{seq}}}"#))
            .collect();
        let hashes: Vec<Hash> = lines.iter().map(|l| leaf_hash(l.as_bytes())).collect();
        let cp = Checkpoint {
            origin: "sealog/t".into(),
            size,
            root: root_of(&hashes),
        };
        let proof = range_proof(&MemTree(&hashes), from, to + 1, size).expect("in range");
        let header = BundleHeader {
            format: BUNDLE_FORMAT.into(),
            version: BUNDLE_VERSION,
            realm: "t".into(),
            from_seq: from,
            to_seq: to,
            records: to - from + 1,
            tree_size: size,
            checkpoint: signer().sign(&cp).text,
            range_proof: proof.iter().map(|h| B64.encode(h)).collect(),
        };
        let mut out = serde_json::to_vec(&header).expect("json");
        out.push(b'\n');
        for l in &lines[from as usize..=to as usize] {
            out.extend_from_slice(l.as_bytes());
            out.push(b'\n');
        }
        out
    }

    fn verify(bytes: &[u8]) -> Result<BundleReport> {
        let mut r = bytes;
        verify_bundle(&mut r, &signer().verifier())
    }

    #[test]
    fn streamed_root_matches_for_every_range() {
        for size in 1..=33u64 {
            for from in 0..size {
                for to in from..size {
                    let b = bundle(size, from, to);
                    let r = verify(&b).expect("a bundle");
                    assert!(
                        r.findings.is_empty(),
                        "{size} {from} {to}: {:?}",
                        r.findings
                    );
                    // One byte of one record changed: the root no longer matches.
                    let mut bad = b.clone();
                    let last = bad.len() - 3;
                    bad[last] ^= 1;
                    let r = verify(&bad).expect("a bundle");
                    assert!(
                        r.findings.iter().any(|f| f.reason.contains("do not match")),
                        "{size} {from} {to}: {:?}",
                        r.findings
                    );
                }
            }
        }
    }

    #[test]
    fn every_cut_is_refused() {
        let b = bundle(40, 5, 30);
        for cut in 0..b.len() {
            match verify(&b[..cut]) {
                Ok(r) => assert!(!r.findings.is_empty(), "cut at {cut} passed"),
                Err(JournalError::Format { reason, .. }) => {
                    assert!(reason.starts_with("not a sealog-bundle"), "{reason}");
                    assert!(cut <= HEADER_FORMAT.len(), "cut at {cut}: {reason}");
                }
                Err(e) => panic!("cut at {cut}: {e}"),
            }
        }
    }

    #[test]
    fn extra_or_missing_proof_hashes_are_findings() {
        let b = bundle(40, 5, 30);
        let nl = b.iter().position(|c| *c == b'\n').expect("header");
        let mut h: BundleHeader = serde_json::from_slice(&b[..nl]).expect("header");
        let want = h.range_proof.len();
        h.range_proof.pop();
        let mut short = serde_json::to_vec(&h).expect("json");
        short.extend_from_slice(&b[nl..]);
        let r = verify(&short).expect("a bundle");
        assert!(
            r.findings[0]
                .reason
                .contains(&format!("range proof has {} hashes", want - 1)),
            "{:?}",
            r.findings
        );
        h.range_proof = vec![B64.encode([0u8; 32]); MAX_RANGE_PROOF + 1];
        let mut long = serde_json::to_vec(&h).expect("json");
        long.extend_from_slice(&b[nl..]);
        let r = verify(&long).expect("a bundle");
        assert!(
            r.findings[0].reason.contains("no tree needs more"),
            "{:?}",
            r.findings
        );
    }

    #[test]
    fn extreme_header_numbers_are_findings_not_panics() {
        let b = bundle(40, 5, 30);
        let nl = b.iter().position(|c| *c == b'\n').expect("header");
        let h: BundleHeader = serde_json::from_slice(&b[..nl]).expect("header");
        for (from, to, records) in [
            (0, u64::MAX, u64::MAX),
            (0, u64::MAX, 0),
            (5, 5 + (1 << 60), (1 << 60) + 1),
            (30, 5, 26),
        ] {
            let mut h = h.clone();
            (h.from_seq, h.to_seq, h.records) = (from, to, records);
            let mut bytes = serde_json::to_vec(&h).expect("json");
            bytes.extend_from_slice(&b[nl..]);
            let r = verify(&bytes).expect("a bundle");
            assert!(!r.findings.is_empty(), "{from} {to} {records}");
        }
    }

    #[test]
    fn records_past_the_declared_count_stop_the_reading() {
        let mut b = bundle(40, 5, 30);
        // An endless tail would never end the verification; a long one shows
        // it is not read.
        b.extend(std::iter::repeat_n(b'\n', 1 << 20));
        let r = verify(&b).expect("a bundle");
        assert_eq!(r.findings.len(), 1, "{:?}", r.findings);
        assert!(
            r.findings[0].reason.contains("data after the 26 records"),
            "{:?}",
            r.findings
        );
    }

    #[test]
    fn not_a_bundle_is_an_error() {
        for input in [
            &b""[..],
            &[0u8; 70_000][..],
            b"GIF89a",
            b"{\"realm\":\"t\",\"seq\":0}\n",
            b"[1,2,3]\n",
        ] {
            match verify(input) {
                Err(JournalError::Format { reason, .. }) => {
                    assert!(reason.starts_with("not a sealog-bundle"), "{reason}")
                }
                other => panic!(
                    "{:?}: {other:?}",
                    String::from_utf8_lossy(&input[..6.min(input.len())])
                ),
            }
        }
    }
}
