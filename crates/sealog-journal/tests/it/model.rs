//! Random sequences of appends, reopens and torn writes, checked against a
//! plain in-memory model of what was acknowledged.

use std::fs::OpenOptions;
use std::io::Write;
use std::ops::ControlFlow;

use proptest::prelude::*;
use sealog_journal::block;
use sealog_journal::merkle::{leaf_hash, root_of, Hash};
use sealog_journal::segment::{list_segments, push_frame, FrameHeader};
use sealog_journal::{EventRef, Journal, JournalOptions};

use crate::util::{event, signer, REALM};

#[derive(Debug, Clone)]
enum Op {
    /// Append n events in one commit.
    Append(u64),
    /// Close and reopen.
    Reopen,
    /// Crash while writing: zero fill after the last checkpoint (blocks the
    /// file system allocated but never wrote).
    ZeroFill(usize),
    /// Crash while writing the next commit: `n` records' block frame, cut
    /// after `keep_percent` of its bytes (100 = blocks durable, no checkpoint).
    TornBlocks(u64, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u64..400).prop_map(Op::Append),
        2 => Just(Op::Reopen),
        1 => (1usize..5000).prop_map(Op::ZeroFill),
        2 => (1u64..300, 1u8..=100).prop_map(|(n, k)| Op::TornBlocks(n, k)),
    ]
}

fn opts() -> JournalOptions {
    JournalOptions {
        // Small segments so rolling is exercised too.
        segment_max_bytes: 16 * 1024,
        ..JournalOptions::default()
    }
}

fn last_segment(dir: &std::path::Path) -> std::path::PathBuf {
    list_segments(&sealog_journal::fs::RealFs, dir)
        .expect("list")
        .pop()
        .expect("a segment")
        .1
}

fn check(j: &Journal, model: &[Vec<u8>]) -> Result<(), TestCaseError> {
    prop_assert_eq!(j.size(), model.len() as u64);
    let mut i = 0usize;
    let mut hashes: Vec<Hash> = Vec::new();
    j.read(0, j.size(), &mut |seq, line| {
        assert_eq!(seq, i as u64);
        let v: serde_json::Value = serde_json::from_slice(line).expect("json");
        let sent: serde_json::Value = serde_json::from_slice(&model[i]).expect("json");
        assert_eq!(v["n"], sent["n"], "record {i} is the one acknowledged");
        hashes.push(leaf_hash(line));
        i += 1;
        ControlFlow::Continue(())
    })
    .map_err(|e| TestCaseError::fail(e.to_string()))?;
    if let Some(cp) = j.latest_checkpoint() {
        let c = j
            .verifier()
            .verify(&cp.text)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(c.size, model.len() as u64);
        prop_assert_eq!(c.root, root_of(&hashes));
    } else {
        prop_assert!(model.is_empty());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn journal_matches_model(ops in proptest::collection::vec(op(), 1..25)) {
        let d = tempfile::tempdir().expect("tempdir");
        let mut j = Journal::open(d.path(), REALM, signer(), opts()).expect("open");
        let mut model: Vec<Vec<u8>> = Vec::new();
        for op in ops {
            match op {
                Op::Append(n) => {
                    let from = model.len() as u64;
                    let bodies: Vec<Vec<u8>> = (from..from + n).map(event).collect();
                    let evs: Vec<EventRef<'_>> = bodies.iter().map(|b| EventRef { bytes: b, time_ns: None }).collect();
                    let r = j.append(&evs).expect("append");
                    prop_assert_eq!(r.first_seq, from);
                    model.extend(bodies);
                }
                Op::Reopen => {
                    drop(j);
                    j = Journal::open(d.path(), REALM, signer(), opts()).expect("reopen");
                }
                Op::ZeroFill(len) => {
                    drop(j);
                    let mut f = OpenOptions::new().append(true).open(last_segment(d.path())).expect("open");
                    f.write_all(&vec![0u8; len]).expect("write");
                    drop(f);
                    j = Journal::open(d.path(), REALM, signer(), opts()).expect("recover");
                }
                Op::TornBlocks(n, keep_percent) => {
                    drop(j);
                    let from = model.len() as u64;
                    let lines: Vec<Vec<u8>> = (from..from + n).map(event).collect();
                    let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
                    let hashes: Vec<Hash> = refs.iter().map(|l| leaf_hash(l)).collect();
                    let b = block::encode(from, &refs, &hashes, (0, 0), 1);
                    let mut frame = Vec::new();
                    push_frame(&mut frame, &FrameHeader::for_block(&b), &b.body);
                    frame.truncate((frame.len() * usize::from(keep_percent)).div_ceil(100));
                    let mut f = OpenOptions::new().append(true).open(last_segment(d.path())).expect("open");
                    f.write_all(&frame).expect("write");
                    drop(f);
                    j = Journal::open(d.path(), REALM, signer(), opts()).expect("recover");
                }
            }
            check(&j, &model)?;
        }
    }
}
