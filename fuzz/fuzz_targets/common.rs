//! Shared pieces of the structure-aware targets (`segment`, `bundle`,
//! `mark`): the realm and its key, small JSON events from fuzz input, and
//! files on the in-memory filesystem and on disk.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use sealog_journal::checkpoint::Signer;
use sealog_journal::fs::{OpenHow, Vfs};
use sealog_journal::sim_fs::SimFs;
use sealog_journal::{Durability, EventRef, Journal, JournalOptions};

/// The realm every target uses.
pub const REALM: &str = "fuzz";
/// Its origin line.
pub const ORIGIN: &str = "sealog/fuzz";
/// The journal directory on the simulated filesystem.
pub const SIM_DIR: &str = "/realm";
/// A `received_at` for generated records.
pub const RECEIVED_AT: i64 = 1_795_500_000_000_000_000;

/// The realm's signer (a fixed key).
pub fn signer() -> Signer {
    Signer::new(ORIGIN, ed25519_dalek::SigningKey::from_bytes(&[1; 32]))
}

/// Another key with the realm's name (a forger).
pub fn forger() -> Signer {
    Signer::new(ORIGIN, ed25519_dalek::SigningKey::from_bytes(&[9; 32]))
}

/// Journal options for fuzzing: no fsync cost, small segments never roll
/// by themselves.
pub fn options() -> JournalOptions {
    JournalOptions {
        durability: Durability::Buffered,
        ..JournalOptions::default()
    }
}

/// A small event.
#[derive(Arbitrary, Debug, Clone)]
pub struct Ev {
    pub shape: u8,
    pub text: String,
    pub num: i64,
    pub time: Option<i32>,
}

impl Ev {
    /// A JSON object on one line (no raw newline: strings are escaped).
    pub fn json(&self) -> Vec<u8> {
        let mut s = String::new();
        match self.shape % 5 {
            0 => s.push_str("{}"),
            1 => {
                s.push_str("{\"msg\":");
                push_json_str(&mut s, &self.text);
                s.push('}');
            }
            2 => s.push_str(&format!("{{\"n\":{},\"a\":[1,true,null]}}", self.num)),
            3 => {
                s.push_str("{\"time\":\"2026-11-22T03:04:05Z\",\"k\":{\"t\":");
                push_json_str(&mut s, &self.text);
                s.push_str("}}");
            }
            _ => {
                s.push_str("{ \"spaced\" : ");
                push_json_str(&mut s, &self.text);
                s.push_str(&format!(" , \"n\" : {} }}", self.num));
            }
        }
        s.into_bytes()
    }

    /// The event's own time, if any.
    pub fn time_ns(&self) -> Option<i64> {
        self.time
            .map(|t| RECEIVED_AT + i64::from(t) * 1_000_000_000)
    }
}

/// Appends `v` as a JSON string.
pub fn push_json_str(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Writes `bytes` as the file `dir/name` on a simulated filesystem.
pub fn sim_write(fs: &SimFs, dir: &Path, name: &str, bytes: &[u8]) {
    fs.create_dir_all(dir).expect("sim mkdir");
    let f = fs
        .open(&dir.join(name), OpenHow::CreateTruncate { mode: 0o644 })
        .expect("sim create");
    f.set_len(0).expect("sim truncate");
    if !bytes.is_empty() {
        f.write_at(bytes, 0).expect("sim write");
    }
}

/// A scratch directory on disk (tmpfs when there is one), emptied.
pub fn real_dir() -> &'static Path {
    static D: OnceLock<PathBuf> = OnceLock::new();
    let d = D.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        base.join(format!("sealog-fuzz-{}", std::process::id()))
    });
    let _ = std::fs::remove_dir_all(d);
    std::fs::create_dir_all(d).expect("scratch dir");
    d
}

/// A journal on a fresh simulated filesystem holding `batches` (each
/// appended as one commit, so one checkpoint each; empty batches skipped),
/// and the checkpoint notes of the commits.
pub fn sim_journal(batches: &[Vec<Ev>]) -> (Arc<SimFs>, Journal, Vec<String>) {
    let fs = SimFs::new();
    let mut j = Journal::open_in(fs.clone(), Path::new(SIM_DIR), REALM, signer(), options())
        .expect("open a new journal");
    let mut notes = Vec::new();
    for batch in batches.iter().filter(|b| !b.is_empty()) {
        let json: Vec<Vec<u8>> = batch.iter().map(Ev::json).collect();
        let refs: Vec<EventRef<'_>> = json
            .iter()
            .zip(batch)
            .map(|(bytes, e)| EventRef {
                bytes,
                time_ns: e.time_ns(),
            })
            .collect();
        let r = j.append(&refs).expect("append to a journal in memory");
        notes.push(r.checkpoint);
    }
    (fs, j, notes)
}

/// Copies the files of the simulated journal directory to `real`.
pub fn copy_out(fs: &SimFs, real: &Path) {
    let dir = Path::new(SIM_DIR);
    for name in fs.list(dir).expect("sim list") {
        let bytes = fs.read_file(&dir.join(&name)).expect("sim read");
        std::fs::write(real.join(&name), bytes).expect("write scratch file");
    }
}
