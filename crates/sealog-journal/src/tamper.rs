//! Tools that alter a journal the way an attacker with disk access would,
//! for tests of the verifier. Only built with the `test-support` feature.

use std::path::Path;

use crate::block::{self, decode_unchecked};
use crate::checkpoint::{SignedCheckpoint, Signer};
use crate::error::{JournalError, Result};
use crate::merkle::{leaf_hash, Hash};
use crate::segment::{push_frame, segment_header, FrameHeader, FrameKind, FrameRead, FrameReader};

/// What to do with the leaf-hash hints of a rewritten block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hints {
    /// Leave the old hints (a careless edit).
    Keep,
    /// Recompute them for the new lines (a careful attacker).
    Recompute,
}

/// Rewrites every block of `segment`: `edit(first_seq, lines)` may change,
/// add, remove or reorder lines. Frames are re-encoded with valid
/// checksums, so only the Merkle log can tell.
///
/// # Errors
/// I/O and format errors.
pub fn rewrite_blocks(
    segment: &Path,
    hints: Hints,
    mut edit: impl FnMut(u64, &mut Vec<Vec<u8>>),
) -> Result<()> {
    let mut r = FrameReader::open(&crate::fs::RealFs, segment)?;
    let mut out = segment_header(r.first_seq()).to_vec();
    loop {
        match r.next_frame(true)? {
            FrameRead::End => break,
            FrameRead::Bad { reason, .. } => {
                return Err(JournalError::Format {
                    path: segment.to_path_buf(),
                    reason: reason.into(),
                })
            }
            FrameRead::Frame { header, body, .. } => {
                let body = body.unwrap_or_default();
                if header.kind == FrameKind::Checkpoint {
                    push_frame(&mut out, &header, &body);
                    continue;
                }
                let d =
                    decode_unchecked(&body, header.count).map_err(|e| JournalError::Format {
                        path: segment.to_path_buf(),
                        reason: e.to_string(),
                    })?;
                let old_hints: Vec<[u8; 4]> = (0..d.len()).map(|i| d.hint(i)).collect();
                let mut lines: Vec<Vec<u8>> = d.lines().map(<[u8]>::to_vec).collect();
                edit(header.seq, &mut lines);
                if lines.len() == d.len() && lines.iter().zip(d.lines()).all(|(a, b)| a == b) {
                    // Untouched (it may hold retained-out records): as it was.
                    push_frame(&mut out, &header, &body);
                    continue;
                }
                let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
                let mut hashes: Vec<Hash> = refs.iter().map(|l| leaf_hash(l)).collect();
                if hints == Hints::Keep {
                    for (h, old) in hashes.iter_mut().zip(&old_hints) {
                        h[..4].copy_from_slice(old);
                    }
                }
                let mut b = block::encode(
                    header.seq,
                    &refs,
                    &hashes,
                    (header.min_time, header.max_time),
                    1,
                );
                b.first_seq = header.seq;
                push_frame(&mut out, &FrameHeader::for_block(&b), &b.body);
            }
        }
    }
    std::fs::write(segment, out).map_err(JournalError::io("write", segment))
}

/// Removes the body of the record at `seq` the way retention does (an
/// empty line, its leaf hash kept as a one-leaf run naming retention record
/// `id`) but without any retention record covering it: what an attacker who
/// wants a record gone without breaking the tree would do.
///
/// # Errors
/// I/O and format errors; `seq` not in `segment`.
pub fn retain_out(segment: &Path, seq: u64, id: u64) -> Result<()> {
    let mut r = FrameReader::open(&crate::fs::RealFs, segment)?;
    let mut out = segment_header(r.first_seq()).to_vec();
    let mut done = false;
    loop {
        match r.next_frame(true)? {
            FrameRead::End => break,
            FrameRead::Bad { reason, .. } => {
                return Err(JournalError::Format {
                    path: segment.to_path_buf(),
                    reason: reason.into(),
                })
            }
            FrameRead::Frame { header, body, .. } => {
                let body = body.unwrap_or_default();
                let inside = header.kind == FrameKind::Block
                    && seq >= header.seq
                    && seq < header.seq + u64::from(header.count);
                if !inside {
                    push_frame(&mut out, &header, &body);
                    continue;
                }
                let d = block::decode(&body, header.count, header.body_crc).map_err(|e| {
                    JournalError::Format {
                        path: segment.to_path_buf(),
                        reason: e.to_string(),
                    }
                })?;
                let at = (seq - header.seq) as usize;
                let mut raw = Vec::new();
                let mut live = Vec::new();
                let mut runs = d.runs().to_vec();
                for i in 0..d.len() {
                    if i == at {
                        runs.push(block::RetainedRun {
                            start: at as u32,
                            len: 1,
                            id,
                            max_time: sealog_event::leaf_time(d.line(i)).unwrap_or(0),
                            pieces: vec![(0, leaf_hash(d.line(i)))],
                        });
                    } else if !d.is_retained(i) {
                        raw.extend_from_slice(d.line(i));
                        live.push(leaf_hash(d.line(i)));
                    }
                    raw.push(b'\n');
                }
                runs.sort_by_key(|r| r.start);
                let b = block::encode_retained(
                    header.seq,
                    &raw,
                    &live,
                    &runs,
                    (header.min_time, header.max_time),
                    1,
                );
                push_frame(&mut out, &FrameHeader::for_block(&b), &b.body);
                done = true;
            }
        }
    }
    if !done {
        return Err(JournalError::Format {
            path: segment.to_path_buf(),
            reason: format!("seq {seq} is not in this segment"),
        });
    }
    std::fs::write(segment, out).map_err(JournalError::io("write", segment))
}

/// Replaces the signature of every checkpoint in `segment` with one made by
/// `forger` (same origin, same tree): a forged signature.
///
/// # Errors
/// I/O and format errors.
pub fn resign_checkpoints(segment: &Path, forger: &Signer) -> Result<()> {
    let mut r = FrameReader::open(&crate::fs::RealFs, segment)?;
    let mut out = segment_header(r.first_seq()).to_vec();
    while let FrameRead::Frame { header, body, .. } = r.next_frame(true)? {
        let body = body.unwrap_or_default();
        if header.kind == FrameKind::Block {
            push_frame(&mut out, &header, &body);
            continue;
        }
        let text = String::from_utf8_lossy(&body);
        let cp = SignedCheckpoint::parse_unverified(&text)?;
        let forged = forger.sign(&cp.checkpoint);
        push_frame(
            &mut out,
            &FrameHeader::for_checkpoint(header.seq, forged.text.as_bytes()),
            forged.text.as_bytes(),
        );
    }
    std::fs::write(segment, out).map_err(JournalError::io("write", segment))
}

/// Byte offsets of each checkpoint frame's end in `segment`, with its size:
/// where a truncation to that checkpoint would cut.
///
/// # Errors
/// I/O and format errors.
pub fn checkpoint_ends(segment: &Path) -> Result<Vec<(u64, u64)>> {
    let mut r = FrameReader::open(&crate::fs::RealFs, segment)?;
    let mut out = Vec::new();
    while let FrameRead::Frame { header, .. } = r.next_frame(false)? {
        if header.kind == FrameKind::Checkpoint {
            out.push((header.seq, r.position()));
        }
    }
    Ok(out)
}

/// Offset of the body of the first block frame holding `seq`, and the
/// block's first seq.
///
/// # Errors
/// I/O and format errors; `seq` not found.
pub fn block_body_offset(segment: &Path, seq: u64) -> Result<(u64, u64, u32)> {
    let mut r = FrameReader::open(&crate::fs::RealFs, segment)?;
    while let FrameRead::Frame { header, offset, .. } = r.next_frame(false)? {
        if header.kind == FrameKind::Block
            && seq >= header.seq
            && seq < header.seq + u64::from(header.count)
        {
            return Ok((
                offset + crate::segment::FRAME_HEADER_LEN as u64,
                header.seq,
                header.body_len,
            ));
        }
    }
    Err(JournalError::OutOfRange {
        from: seq,
        to: seq + 1,
        size: 0,
    })
}
