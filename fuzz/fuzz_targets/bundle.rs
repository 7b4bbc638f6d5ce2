//! Export bundles made by `bundle::export` from a small journal (a few
//! commits of small events, optionally after a run of generated records
//! so range proofs reach the stored tree hashes), for a chosen seq range,
//! then changed by structured mutations: edit, replace, drop, duplicate,
//! swap or insert record lines; change a header number, the realm, the
//! format or the checkpoint (an earlier one of the same log); drop,
//! duplicate or replace a range-proof hash; truncate; append bytes.
//!
//! Oracles: the bundle as exported verifies with no finding (and its
//! header matches the range asked for); a bundle whose bytes differ from
//! it in any way is never reported intact. `Raw` keeps the old behaviour:
//! arbitrary bytes must give a report or an error, never a panic.
#![no_main]

#[path = "common.rs"]
mod common;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use common::{sim_journal, Ev, REALM};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use sealog_event::LeafBuilder;
use sealog_journal::bundle::{export, verify_bundle, BundleHeader};

#[derive(Arbitrary, Debug)]
enum Input {
    Built(Plan),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Plan {
    /// Generated records committed first (0..700).
    bulk: u16,
    batches: Vec<Vec<Ev>>,
    from: u16,
    len: u16,
    mutations: Vec<Mutation>,
}

#[derive(Arbitrary, Debug)]
enum Field {
    From(i8),
    To(i8),
    Records(i8),
    TreeSize(i8),
    Version(u8),
    Realm(String),
    Format(String),
}

#[derive(Arbitrary, Debug)]
enum Mutation {
    /// Sets one byte of a record line.
    EditByte {
        i: u16,
        at: u16,
        byte: u8,
    },
    /// Replaces a record with the leaf sealog would write for another
    /// event at the same seq.
    Replace {
        i: u16,
        ev: Ev,
    },
    Drop(u16),
    Duplicate(u16),
    Swap(u16, u16),
    Insert {
        i: u16,
        line: String,
    },
    Header(Field),
    /// Replaces the checkpoint with one of the log's earlier ones.
    Checkpoint(u8),
    DropProof(u8),
    DuplicateProof(u8),
    ReplaceProof {
        i: u8,
        hash: [u8; 32],
    },
    Truncate(u32),
    Append(Vec<u8>),
}

fuzz_target!(|input: Input| {
    let key = common::signer().verifier();
    match input {
        Input::Raw(bytes) => {
            let _ = verify_bundle(&mut &bytes[..], &key);
        }
        Input::Built(plan) => built(&plan, &key),
    }
});

fn built(plan: &Plan, key: &sealog_journal::checkpoint::VerifierKey) {
    let mut batches: Vec<Vec<Ev>> = Vec::new();
    let bulk = usize::from(plan.bulk) % 700;
    if bulk > 0 {
        batches.push(
            (0..bulk)
                .map(|i| Ev {
                    shape: 2,
                    text: String::new(),
                    num: i as i64,
                    time: None,
                })
                .collect(),
        );
    }
    batches.extend(
        plan.batches
            .iter()
            .take(6)
            .map(|b| b.iter().take(8).cloned().collect()),
    );
    let (_fs, j, notes) = sim_journal(&batches);
    let size = j.size();
    if size == 0 {
        return;
    }
    let from = u64::from(plan.from) % size;
    let to = from + u64::from(plan.len) % (size - from);
    let mut out = Vec::new();
    let header = export(&j, from, to, &mut out, &|_| {}).expect("export from a sound journal");
    assert_eq!(
        (
            header.from_seq,
            header.to_seq,
            header.records,
            header.tree_size
        ),
        (from, to, to - from + 1, size)
    );
    let report = verify_bundle(&mut &out[..], key).expect("an exported bundle is a bundle");
    assert!(
        report.findings.is_empty(),
        "an exported bundle does not verify: {:?}",
        report.findings
    );

    // Take it apart, mutate, put it back together.
    let mut lines: Vec<Vec<u8>> = out
        .strip_suffix(b"\n")
        .expect("ends in a newline")
        .split(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    let mut h: BundleHeader = serde_json::from_slice(&lines.remove(0)).expect("header parses");
    let mut cut: Option<u32> = None;
    let mut tail = Vec::new();
    for m in plan.mutations.iter().take(4) {
        let n = lines.len();
        let pick = |i: &u16| usize::from(*i) % n.max(1);
        match m {
            Mutation::EditByte { i, at, byte } if n > 0 => {
                let l = &mut lines[pick(i)];
                if !l.is_empty() {
                    let at = usize::from(*at) % l.len();
                    l[at] = *byte;
                }
            }
            Mutation::Replace { i, ev } if n > 0 => {
                let i = pick(i);
                let mut l = Vec::new();
                LeafBuilder::new(REALM, common::RECEIVED_AT).build(
                    h.from_seq.wrapping_add(i as u64),
                    &ev.json(),
                    &mut l,
                );
                lines[i] = l;
            }
            Mutation::Drop(i) if n > 0 => {
                lines.remove(pick(i));
            }
            Mutation::Duplicate(i) if n > 0 => {
                let l = lines[pick(i)].clone();
                lines.insert(pick(i), l);
            }
            Mutation::Swap(a, b) if n > 0 => lines.swap(pick(a), pick(b)),
            Mutation::Insert { i, line } => {
                let at = usize::from(*i) % (n + 1);
                lines.insert(at, line.replace('\n', " ").into_bytes());
            }
            Mutation::Header(f) => match f {
                Field::From(d) => h.from_seq = h.from_seq.wrapping_add_signed(i64::from(*d)),
                Field::To(d) => h.to_seq = h.to_seq.wrapping_add_signed(i64::from(*d)),
                Field::Records(d) => h.records = h.records.wrapping_add_signed(i64::from(*d)),
                Field::TreeSize(d) => h.tree_size = h.tree_size.wrapping_add_signed(i64::from(*d)),
                Field::Version(v) => h.version = u32::from(*v),
                Field::Realm(r) => h.realm = r.clone(),
                Field::Format(f) => h.format = f.clone(),
            },
            Mutation::Checkpoint(k) => h.checkpoint = notes[usize::from(*k) % notes.len()].clone(),
            Mutation::DropProof(i) if !h.range_proof.is_empty() => {
                let i = usize::from(*i) % h.range_proof.len();
                h.range_proof.remove(i);
            }
            Mutation::DuplicateProof(i) if !h.range_proof.is_empty() => {
                let i = usize::from(*i) % h.range_proof.len();
                let p = h.range_proof[i].clone();
                h.range_proof.insert(i, p);
            }
            Mutation::ReplaceProof { i, hash } if !h.range_proof.is_empty() => {
                let i = usize::from(*i) % h.range_proof.len();
                h.range_proof[i] = B64.encode(hash);
            }
            Mutation::Truncate(at) => cut = Some(*at),
            Mutation::Append(b) => tail.extend_from_slice(&b[..b.len().min(256)]),
            _ => {}
        }
    }
    let mut bundle = serde_json::to_vec(&h).expect("header serialises");
    bundle.push(b'\n');
    for l in &lines {
        bundle.extend_from_slice(l);
        bundle.push(b'\n');
    }
    bundle.extend_from_slice(&tail);
    if let Some(at) = cut {
        let len = at as usize % (bundle.len() + 1);
        bundle.truncate(len);
    }
    let intact = match verify_bundle(&mut &bundle[..], key) {
        Ok(r) => r.findings.is_empty(),
        Err(_) => false,
    };
    assert_eq!(
        intact,
        bundle == out,
        "a bundle {} verifies as {}",
        if bundle == out {
            "as exported"
        } else {
            "that was changed"
        },
        if intact { "intact" } else { "damaged" }
    );
}
