//! `sealog import vpcflow` and `sealog digest verify`.
//!
//! Import reads AWS VPC flow-log files (`.log.gz` or plain; directories are
//! walked, as in the `AWSLogs/<account>/vpcflowlogs/<region>/YYYY/MM/DD/`
//! layout) and appends their v2 lines as `flow` records through either
//! backend. A bad line is reported with its file and line number and
//! skipped: it never aborts the import (go-vpcflow panicked on a short
//! line and aborted on a bad number).
//!
//! Verify recomputes a digest offline from the records its `<id>.json`
//! names (`[from_seq, to_seq)`), checks those records against the signed
//! checkpoint of size `to_seq` it recorded, and compares the bytes with the
//! stored digest, its SHA-256 and the `digest` record in the log.

use std::io::Read as _;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use sealog_codec::vpcflow::{parse_line, Digester, Line};
use sealog_event::RealmName;
use sealog_journal::merkle::Frontier;
use sealog_journal::segment::{list_segments, FrameKind, FrameRead, FrameReader};
use sealog_journal::EventRef;
use sha2::{Digest as _, Sha256};

use crate::backend::Backend;
use crate::Failure;

/// Flow-log files under `paths` (files as given; directories walked, in
/// name order), skipping nothing that is a regular file.
fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Failure> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = paths.iter().rev().cloned().collect();
    let given = paths.len();
    let mut visited = 0usize;
    while let Some(p) = stack.pop() {
        visited += 1;
        // Paths given are followed; inside a directory a link to a
        // directory is not (a loop would never end).
        let meta = if visited <= given {
            std::fs::metadata(&p)
        } else {
            std::fs::symlink_metadata(&p).and_then(|m| {
                if m.file_type().is_symlink() {
                    std::fs::metadata(&p).map(|t| if t.is_dir() { m } else { t })
                } else {
                    Ok(m)
                }
            })
        }
        .map_err(|e| format!("{}: {e}", p.display()))?;
        if meta.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            stack.extend(entries.into_iter().rev());
        } else if meta.is_file() {
            out.push(p);
        }
    }
    Ok(out)
}

/// Reads a file, gunzipping it when it starts with gzip's magic.
fn read_text(path: &Path) -> Result<Vec<u8>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| format!("{}: does not decompress: {e}", path.display()))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// `sealog import vpcflow`.
///
/// # Errors
/// Unreadable paths or a failed commit; bad lines are reported, not fatal
/// (the exit status is 1 when any line was refused).
pub fn import(
    backend: &dyn Backend,
    realm: &RealmName,
    paths: &[PathBuf],
    batch: usize,
) -> Result<(), Failure> {
    let files = files(paths)?;
    let pb = crate::progress::bar(files.len() as u64, "importing files");
    let (mut stored, mut skipped, mut refused, mut unreadable) = (0u64, 0u64, 0u64, 0u64);
    for f in &files {
        let text = match read_text(f) {
            Ok(t) => t,
            Err(e) => {
                pb.suspend(|| eprintln!("{e}; file skipped"));
                unreadable += 1;
                pb.inc(1);
                continue;
            }
        };
        let mut records: Vec<(Vec<u8>, i64)> = Vec::new();
        for (n, line) in text.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let parsed = std::str::from_utf8(line)
                .map_err(|_| "line is not UTF-8".to_string())
                .and_then(parse_line);
            match parsed {
                Ok(Line::Flow(rec, t)) => records.push((rec, t)),
                Ok(Line::Skip(_)) => skipped += 1,
                Err(e) => {
                    refused += 1;
                    pb.suspend(|| eprintln!("{}:{}: {e}; line skipped", f.display(), n + 1));
                }
            }
        }
        let events: Vec<EventRef<'_>> = records
            .iter()
            .map(|(b, t)| EventRef {
                bytes: b,
                time_ns: Some(*t),
            })
            .collect();
        if !events.is_empty() {
            backend.ingest(realm, &events, batch, &mut |_| {})?;
        }
        stored += events.len() as u64;
        pb.inc(1);
    }
    pb.finish_and_clear();
    eprintln!(
        "imported {stored} flow records from {} files into {realm}; skipped {skipped} header/NODATA/SKIPDATA lines; refused {refused} bad lines; {unreadable} unreadable files",
        files.len()
    );
    if refused > 0 || unreadable > 0 {
        return Err(Failure::verify(format!(
            "{refused} lines and {unreadable} files were refused (listed above); everything else was imported"
        )));
    }
    Ok(())
}

/// `sealog digest verify`: prints what it checked; fails naming the first
/// difference.
///
/// # Errors
/// [`Failure::verify`] when the digest does not recompute or its input does
/// not match its checkpoint.
pub fn verify(data: &Path, realm: &RealmName, start: &str, stop: &str) -> Result<(), Failure> {
    let w = sealog_server::digest::window(Some(start), Some(stop))?;
    let dd = sealog_store::DataDir::open(data, "sealog digest verify")?;
    let key = dd.verifier_key(realm)?;
    let journal = dd.journal_dir(realm);
    let dir = data.join("digests").join(realm.as_str());
    let meta: sealog_server::digest::Meta = serde_json::from_slice(
        &std::fs::read(dir.join(format!("{}.json", w.id)))
            .map_err(|e| format!("digest {} of {realm}: {e}", w.id))?,
    )?;
    let gz = std::fs::read(dir.join(format!("{}.log.gz", w.id)))
        .map_err(|e| format!("digest {} of {realm}: {e}", w.id))?;
    let mut stored = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut stored)
        .map_err(|e| format!("stored digest does not decompress: {e}"))?;
    let cp = key
        .verify(&meta.checkpoint)
        .map_err(|e| Failure::verify(format!("the recorded checkpoint does not verify: {e}")))?;
    let (from, to) = (meta.input.from_seq, meta.input.to_seq);
    if cp.size != to {
        return Err(Failure::verify(format!(
            "the recorded checkpoint is for size {}, the input ends at {to}",
            cp.size
        )));
    }
    // The digest record itself must be proven too: the checkpoint of its
    // receipt covers it.
    let rcp = key.verify(&meta.record_checkpoint).map_err(|e| {
        Failure::verify(format!(
            "the digest record's checkpoint does not verify: {e}"
        ))
    })?;
    let want_record = meta.record_seq;
    if rcp.size <= want_record || rcp.size < to {
        return Err(Failure::verify(format!(
            "the digest record's checkpoint (size {}) does not cover its seq {want_record}",
            rcp.size
        )));
    }
    let mut digester = Digester::new(w.start, w.stop);
    let mut tree = Frontier::new();
    let mut root_at_to = (to == 0).then(sealog_journal::merkle::empty_root);
    let mut record: Option<Vec<u8>> = None;
    let mut seq = 0u64;
    let mut retained_input = None;
    // One record (`line`, height 0) or a subtree retention kept of removed
    // records (`line` None).
    let mut walk =
        |line: Option<&[u8]>, height: u32, leaf: sealog_journal::merkle::Hash| -> ControlFlow<()> {
            let n = 1u64 << height;
            if seq < to && seq + n > from {
                match line {
                    Some(l) => digester.add_line(l),
                    None => {
                        retained_input.get_or_insert(seq.max(from));
                    }
                }
            }
            if let Some(l) = line.filter(|_| seq == want_record) {
                record = Some(l.to_vec());
            }
            if height == 0 {
                tree.push(leaf, |_, _, _| {});
            } else if tree.push_subtree(height, leaf, |_, _, _| {}).is_err() {
                return ControlFlow::Break(());
            }
            seq += n;
            if tree.size() == to {
                root_at_to = Some(tree.root());
            }
            if tree.size() >= rcp.size {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
    'segments: for (_, path) in list_segments(&sealog_journal::fs::RealFs, &journal)? {
        let mut r = FrameReader::open(&sealog_journal::fs::RealFs, &path)?;
        loop {
            match r.next_frame(true)? {
                FrameRead::End => break,
                FrameRead::Bad { offset, reason, .. } => {
                    return Err(Failure::verify(format!(
                        "{}: damaged frame at offset {offset}: {reason}",
                        path.display()
                    )))
                }
                FrameRead::Frame { header, body, .. } => {
                    if header.kind != FrameKind::Block {
                        continue;
                    }
                    let body = body.unwrap_or_default();
                    let d = sealog_journal::block::decode(&body, header.count, header.body_crc)
                        .map_err(|e| {
                            Failure::verify(format!(
                                "block of seqs {}..{} is damaged: {e}",
                                header.seq,
                                header.seq.saturating_add(u64::from(header.count))
                            ))
                        })?;
                    let mut i = 0usize;
                    for (h, hash) in d.items() {
                        let line = (!d.is_retained(i)).then(|| d.line(i));
                        if walk(line, h, hash).is_break() {
                            break 'segments;
                        }
                        i += 1 << h;
                    }
                }
            }
        }
    }
    if let Some(seq) = retained_input {
        return Err(Failure::verify(format!(
            "the digest's input record at seq {seq} was retained out (its body removed by retention), so the digest cannot be recomputed from its input"
        )));
    }
    if tree.size() < rcp.size {
        return Err(Failure::verify(format!(
            "the log holds {} records; the digest's input and record need {}",
            tree.size(),
            rcp.size
        )));
    }
    if root_at_to != Some(cp.root) {
        return Err(Failure::verify(format!(
            "the records {from}..{to} the digest was computed from no longer match the checkpoint signed for size {to}: a record was altered"
        )));
    }
    if tree.root() != rcp.root {
        return Err(Failure::verify(format!(
            "the records up to the digest record (seq {want_record}) no longer match the checkpoint signed for size {}",
            rcp.size
        )));
    }
    let flows = digester.flows;
    let again = digester.finish();
    let sha = hex::encode(Sha256::digest(&again));
    // The proven record is the authority: the stored file and its JSON
    // must say what it says.
    let record = record.ok_or_else(|| {
        Failure::verify(format!(
            "the digest record (seq {want_record}) is not in the log"
        ))
    })?;
    let rec: serde_json::Value = serde_json::from_slice(&record)?;
    let d = &rec["digest"];
    let agrees = rec["kind"] == "digest"
        && d["id"] == w.id.as_str()
        && d["sha256"] == sha.as_str()
        && d["input"]["from_seq"] == from
        && d["input"]["to_seq"] == to
        && d["checkpoint"] == meta.checkpoint.as_str()
        && d["start"] == meta.start.as_str()
        && d["stop"] == meta.stop.as_str();
    if !agrees {
        return Err(Failure::verify(format!(
            "the digest record at seq {want_record} does not describe this recomputation (sha256 {sha})"
        )));
    }
    if again != stored || sha != meta.sha256 {
        return Err(Failure::verify(format!(
            "recomputed digest differs from the stored one (sha256 {sha}, recorded {})",
            meta.sha256
        )));
    }
    println!(
        "digest {} of {realm} verified: {} lines from {flows} flow records in seqs {from}..{to}, proven by the checkpoint of size {to}; sha256 {sha}",
        w.id, meta.lines
    );
    Ok(())
}
