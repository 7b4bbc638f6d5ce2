//! Arbitrary bytes as a segment file: recovery (Journal::open) and the
//! verifier must return an error or a report, never panic or hang.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sealog_journal::checkpoint::Signer;
use sealog_journal::segment::segment_header;
use sealog_journal::verify::{verify_dir, Evidence};
use sealog_journal::{Journal, JournalOptions};

fn dir() -> &'static std::path::Path {
    static D: OnceLock<std::path::PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("sealog-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let d = dir();
    let _ = std::fs::remove_file(d.join("tree.hashes"));
    // Usually start with a valid header so the fuzzer reaches the frames.
    let mut bytes = Vec::new();
    if data.first().is_some_and(|b| b & 1 == 0) {
        bytes.extend_from_slice(&segment_header(0));
    }
    bytes.extend_from_slice(data.get(1..).unwrap_or_default());
    std::fs::write(d.join("00000000000000000000.seg"), &bytes).expect("write");
    let signer = Signer::new("sealog/fuzz", ed25519_dalek::SigningKey::from_bytes(&[1; 32]));
    let key = signer.verifier();
    let _ = verify_dir(d, "fuzz", &key, &Evidence::default(), &|_| {});
    let _ = Journal::open(d, "fuzz", signer, JournalOptions {
        durability: sealog_journal::Durability::Buffered,
        ..JournalOptions::default()
    });
});
