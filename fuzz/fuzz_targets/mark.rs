//! `head.mark` beside a valid small journal (a few commits on the
//! in-memory `SimFs`). The mark is built slot by slot (magic, version,
//! counter, note length, CRC right or wrong, and a note that is empty, one
//! of the journal's checkpoints, ahead of it, forked from it, signed by
//! another key, or any text), followed by any bytes and possibly cut; or
//! it is arbitrary bytes (`Raw`).
//!
//! The expected outcome is computed from the file's bytes by the layout in
//! `mark.rs`, written apart from the library: the valid slot with the
//! highest counter (slot 0 on a tie) is the mark; none valid → Corrupt; a
//! mark past the journal's size → Rollback; a mark whose root is not the
//! journal's root at its size → Fork; else the journal opens at its size,
//! the mark afterwards says that size, the slot that held the mark before
//! is left untouched (so a torn write cannot leave no valid slot), and the
//! journal opens again. The verifier on a copy of the directory passes
//! exactly when the journal opens.
#![no_main]

#[path = "common.rs"]
mod common;

use std::path::Path;

use common::{
    copy_out, forger, real_dir, signer, sim_journal, sim_write, Ev, ORIGIN, REALM, SIM_DIR,
};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use sealog_journal::checkpoint::{Checkpoint, VerifierKey};
use sealog_journal::mark::{self, MARK_FILE, SLOT_LEN};
use sealog_journal::verify::{verify_dir, Evidence};
use sealog_journal::{Journal, JournalError};

const MAGIC: &[u8; 8] = b"SLMARK\0\0";
const HEAD: usize = 28;

#[derive(Arbitrary, Debug)]
enum Input {
    Slots {
        batches: Vec<Vec<Ev>>,
        slots: Vec<Slot>,
        tail: Vec<u8>,
        cut: Option<u16>,
    },
    Raw {
        batches: Vec<Vec<Ev>>,
        bytes: Vec<u8>,
    },
}

#[derive(Arbitrary, Debug)]
struct Slot {
    bad_magic: bool,
    version: Option<u32>,
    counter: u8,
    note: Note,
    len_delta: i8,
    bad_crc: Option<u32>,
}

#[derive(Arbitrary, Debug)]
enum Note {
    Empty,
    /// The k-th checkpoint the journal signed.
    At(u8),
    /// Signed by the realm for more records than the journal holds.
    Ahead(u8),
    /// Signed by the realm for the k-th checkpoint's size with this root.
    Forked {
        k: u8,
        root: [u8; 32],
    },
    /// The k-th checkpoint's size and root, signed by another key.
    OtherKey(u8),
    Text(String),
}

fuzz_target!(|input: Input| {
    let (Input::Slots { batches, .. } | Input::Raw { batches, .. }) = &input;
    let batches: Vec<Vec<Ev>> = batches
        .iter()
        .take(4)
        .map(|b| b.iter().take(4).cloned().collect())
        .collect();
    let (fs, j, notes) = sim_journal(&batches);
    let size = j.size();
    let s = signer();
    let key = s.verifier();
    let file = match &input {
        Input::Raw { bytes, .. } => bytes.clone(),
        Input::Slots {
            slots, tail, cut, ..
        } => {
            let mut file = Vec::new();
            let mut crcs = Vec::new();
            for (i, slot) in slots.iter().take(2).enumerate() {
                let note: Vec<u8> = match &slot.note {
                    Note::Empty => Vec::new(),
                    Note::At(_) if notes.is_empty() => Vec::new(),
                    Note::At(k) => notes[usize::from(*k) % notes.len()].clone().into_bytes(),
                    Note::Ahead(d) => {
                        let cp = Checkpoint {
                            origin: ORIGIN.into(),
                            size: size + u64::from(*d) + 1,
                            root: [*d; 32],
                        };
                        s.sign(&cp).text.into_bytes()
                    }
                    Note::Forked { k, root } => {
                        let cp = Checkpoint {
                            origin: ORIGIN.into(),
                            size: kth_size(&notes, &key, *k),
                            root: *root,
                        };
                        s.sign(&cp).text.into_bytes()
                    }
                    Note::OtherKey(k) => {
                        let at = kth_size(&notes, &key, *k);
                        let cp = Checkpoint {
                            origin: ORIGIN.into(),
                            size: at,
                            root: j.root_at(at).expect("root"),
                        };
                        forger().sign(&cp).text.into_bytes()
                    }
                    Note::Text(t) => t.clone().into_bytes(),
                };
                let start = i * SLOT_LEN as usize;
                file.resize(start, 0);
                file.extend_from_slice(if slot.bad_magic {
                    b"SLMARK\0\x01"
                } else {
                    MAGIC
                });
                file.extend_from_slice(&slot.version.unwrap_or(1).to_le_bytes());
                file.extend_from_slice(&u64::from(slot.counter).to_le_bytes());
                let len = (note.len() as u32).wrapping_add_signed(i32::from(slot.len_delta));
                file.extend_from_slice(&len.to_le_bytes());
                file.extend_from_slice(&[0; 4]);
                file.extend_from_slice(&note);
                crcs.push((start, len as usize, slot.bad_crc));
            }
            file.extend_from_slice(&tail[..tail.len().min(512)]);
            // CRC32C of bytes 0..24 and the note as the file holds them.
            for (start, len, bad) in crcs {
                let note = file
                    .get(start + HEAD..start + HEAD + len)
                    .unwrap_or_default();
                let crc = crc32c::crc32c_append(crc32c::crc32c(&file[start..start + 24]), note)
                    ^ bad.map_or(0, |x| x.max(1));
                file[start + 24..start + 28].copy_from_slice(&crc.to_le_bytes());
            }
            if let Some(cut) = cut {
                let len = usize::from(*cut) % (file.len() + 1);
                file.truncate(len);
            }
            file
        }
    };

    // What the mark says, by the documented layout.
    let slot0 = model_slot(&file, 0, &key);
    let slot1 = model_slot(&file, 1, &key);
    let current = match (&slot0, &slot1) {
        (Some(a), Some(b)) => Some(if b.0 > a.0 { (1, b) } else { (0, a) }),
        (Some(a), None) => Some((0, a)),
        (None, Some(b)) => Some((1, b)),
        (None, None) => None,
    };
    #[derive(Debug, PartialEq, Eq)]
    enum Want {
        Open,
        Corrupt,
        Rollback,
        Fork,
    }
    let want = match current {
        None => Want::Corrupt,
        Some((_, (_, None))) => Want::Open,
        Some((_, (_, Some(cp)))) if cp.size > size => Want::Rollback,
        Some((_, (_, Some(cp)))) if j.root_at(cp.size).expect("root") != cp.root => Want::Fork,
        Some(_) => Want::Open,
    };
    drop(j);
    let dir = Path::new(SIM_DIR);
    sim_write(&fs, dir, MARK_FILE, &file);
    let real = real_dir();
    copy_out(&fs, real);
    let report = verify_dir(real, REALM, &key, &Evidence::default(), &|_| {})
        .expect("the verifier reports; it fails only on I/O errors");
    let opened = Journal::open_in(fs.clone(), dir, REALM, s.clone(), common::options());
    let got = match &opened {
        Ok(_) => Want::Open,
        Err(JournalError::Corrupt { .. }) => Want::Corrupt,
        Err(JournalError::Rollback { .. }) => Want::Rollback,
        Err(JournalError::Fork { .. }) => Want::Fork,
        Err(e) => panic!("open failed with neither Corrupt, Rollback nor Fork: {e}"),
    };
    assert_eq!(got, want, "open against the mark's layout");
    assert_eq!(
        report.ok(),
        want == Want::Open,
        "verifier: {:?}",
        report.findings
    );
    let Ok(j) = opened else {
        // Nothing touched: the mark is as it was.
        assert_eq!(
            fs.read_file(&dir.join(MARK_FILE)).as_deref(),
            Some(&file[..])
        );
        return;
    };
    assert_eq!(j.size(), size);
    let after = mark::read(&*fs, dir, &key)
        .expect("mark reads after open")
        .expect("a mark after open");
    assert_eq!(after.size(), size, "the mark after open");
    if let Some((i, _)) = current {
        let now = fs.read_file(&dir.join(MARK_FILE)).expect("mark file");
        assert_eq!(
            model_slot(&now, i, &key),
            model_slot(&file, i, &key),
            "open rewrote slot {i}, which held the mark it read"
        );
    }
    drop(j);
    let j = Journal::open_in(fs.clone(), dir, REALM, s, common::options())
        .unwrap_or_else(|e| panic!("reopen failed: {e}"));
    assert_eq!(j.size(), size);
});

fn kth_size(notes: &[String], key: &VerifierKey, k: u8) -> u64 {
    if notes.is_empty() {
        return 0;
    }
    key.verify(&notes[usize::from(k) % notes.len()])
        .expect("the journal's own note")
        .size
}

/// Slot `i` of `file` as `mark.rs` documents it: (counter, checkpoint),
/// None when it is not a valid slot.
fn model_slot(file: &[u8], i: u64, key: &VerifierKey) -> Option<(u64, Option<Checkpoint>)> {
    let from = (i * SLOT_LEN) as usize;
    let b = file.get(from..file.len().min(from + SLOT_LEN as usize))?;
    if b.len() < HEAD || &b[..8] != MAGIC {
        return None;
    }
    let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let version = u32_at(8);
    let counter = u64::from_le_bytes(b[12..20].try_into().expect("8 bytes"));
    let len = u32_at(20) as usize;
    let note = b.get(HEAD..HEAD.checked_add(len)?)?;
    if version != 1 || crc32c::crc32c_append(crc32c::crc32c(&b[..24]), note) != u32_at(24) {
        return None;
    }
    // Every slot is signed (no "nothing yet" slot), and counters stay far
    // from overflow.
    if note.is_empty() || counter >= 1 << 62 {
        return None;
    }
    let cp = key.verify(std::str::from_utf8(note).ok()?).ok()?;
    Some((counter, Some(cp)))
}
