//! Retention on a small journal (commits of small events on the in-memory
//! `SimFs`), removing the records a fuzzed mask selects (scattered or in
//! runs), then damage to what retention wrote: a byte of `retention.notes`
//! or of a segment flipped, the notes cut or extended. Recovery and the
//! verifier must never panic, and:
//!
//! - after retention, the journal has its old size and root, the verifier
//!   passes and reports exactly the removed records as retained out;
//! - any flipped byte in `retention.notes` is found (the records are signed
//!   and checksummed; runs they no longer cover are tampering);
//! - a second run on whatever opens returns a result or an error.
#![no_main]

#[path = "common.rs"]
mod common;

use common::{copy_out, real_dir, sim_journal, sim_write, Ev, REALM, RECEIVED_AT, SIM_DIR};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use sealog_journal::fs::Vfs;
use sealog_journal::retention::{Policy, RETENTION_FILE};
use sealog_journal::verify::{verify_dir, Evidence};
use sealog_journal::Journal;
use std::path::Path;

#[derive(Arbitrary, Debug)]
struct Input {
    batches: Vec<Vec<Ev>>,
    /// Bit i: remove record i (repeating).
    mask: u64,
    damage: Damage,
}

#[derive(Arbitrary, Debug)]
enum Damage {
    None,
    FlipNotes { at: u16, bit: u8 },
    CutNotes { keep: u16 },
    AppendNotes { bytes: Vec<u8> },
    FlipSegment { at: u32, bit: u8 },
}

fuzz_target!(|input: Input| {
    let batches: Vec<Vec<Ev>> = input.batches.into_iter().take(8).collect();
    if batches.iter().map(Vec::len).sum::<usize>() > 2000 {
        return;
    }
    let (fs, mut j, _) = sim_journal(&batches);
    let size = j.size();
    if size == 0 {
        return;
    }
    let root = j.root_at(size).expect("root");
    let mask = input.mask | 1;
    let select = move |line: &[u8]| {
        let seq = sealog_event::leaf_seq(line).unwrap_or(0);
        mask >> (seq % 64) & 1 == 1
    };
    let now = RECEIVED_AT + 1_000_000_000_000_000;
    let policy = Policy {
        description: "fuzz".into(),
        cutoff_ns: now,
        select: &select,
    };
    let out = j.retain(&policy, now, false).expect("retention in memory");
    assert_eq!(j.size(), size);
    assert_eq!(
        j.root_at(size).expect("root"),
        root,
        "retention changed the tree"
    );
    drop(j);
    let real = real_dir();
    copy_out(&fs, real);
    let key = common::signer().verifier();
    let r = verify_dir(real, REALM, &key, &Evidence::default(), &|_| {}).expect("verify runs");
    assert!(r.ok(), "{:?}", r.findings);
    let reported: u64 = r.retained.iter().map(|x| x.records).sum();
    assert_eq!(reported, out.removed);

    let notes_path = Path::new(SIM_DIR).join(RETENTION_FILE);
    let notes = fs.read_file(&notes_path).unwrap_or_default();
    let must_fail = match &input.damage {
        Damage::None => false,
        Damage::FlipNotes { at, bit } if !notes.is_empty() => {
            let mut n = notes.clone();
            let i = usize::from(*at) % n.len();
            n[i] ^= 1 << (bit % 8);
            sim_write(&fs, Path::new(SIM_DIR), RETENTION_FILE, &n);
            true
        }
        Damage::CutNotes { keep } if !notes.is_empty() => {
            let k = usize::from(*keep) % notes.len();
            sim_write(&fs, Path::new(SIM_DIR), RETENTION_FILE, &notes[..k]);
            true
        }
        Damage::AppendNotes { bytes } => {
            let mut n = notes.clone();
            n.extend_from_slice(bytes);
            sim_write(&fs, Path::new(SIM_DIR), RETENTION_FILE, &n);
            false
        }
        Damage::FlipSegment { at, bit } => {
            let seg = fs
                .list(Path::new(SIM_DIR))
                .expect("list")
                .into_iter()
                .find(|n| n.ends_with(".seg"))
                .expect("a segment");
            let path = Path::new(SIM_DIR).join(&seg);
            let mut b = fs.read_file(&path).expect("read");
            let i = *at as usize % b.len();
            b[i] ^= 1 << (bit % 8);
            sim_write(&fs, Path::new(SIM_DIR), &seg, &b);
            false
        }
        _ => false,
    };
    let real = real_dir();
    copy_out(&fs, real);
    let r = verify_dir(real, REALM, &key, &Evidence::default(), &|_| {}).expect("verify runs");
    if must_fail {
        assert!(
            !r.ok(),
            "damaged retention records passed: {:?}",
            input.damage
        );
    }
    // Whatever opens takes another run without panicking.
    if let Ok(mut j) = Journal::open_in(
        fs.clone(),
        Path::new(SIM_DIR),
        REALM,
        common::signer(),
        common::options(),
    ) {
        let _ = j.retain(&policy, now, false);
    }
});
