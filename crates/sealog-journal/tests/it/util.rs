//! Helpers shared by the journal's integration tests.

use std::path::Path;

use ed25519_dalek::SigningKey;
use sealog_journal::checkpoint::Signer;
use sealog_journal::{EventRef, Journal, JournalOptions, Receipt};

pub const REALM: &str = "acme";

pub fn signer() -> Signer {
    Signer::new("sealog/acme", SigningKey::from_bytes(&[42; 32]))
}

pub fn open(dir: &Path) -> Journal {
    Journal::open(dir, REALM, signer(), JournalOptions::default()).expect("open journal")
}

pub fn event(i: u64) -> Vec<u8> {
    format!(r#"{{"app":"payments","n":{i},"msg":"payment {i} settled"}}"#).into_bytes()
}

pub fn append(j: &mut Journal, from: u64, n: u64) -> Receipt {
    let bodies: Vec<Vec<u8>> = (from..from + n).map(event).collect();
    let events: Vec<EventRef<'_>> = bodies
        .iter()
        .map(|b| EventRef {
            bytes: b,
            time_ns: None,
        })
        .collect();
    j.append(&events).expect("append")
}

pub fn segment(dir: &Path) -> std::path::PathBuf {
    dir.join("00000000000000000000.seg")
}
