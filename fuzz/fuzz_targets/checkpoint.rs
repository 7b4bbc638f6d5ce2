//! Checkpoint notes and verifier keys from arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealog_journal::checkpoint::{SignedCheckpoint, Signer, VerifierKey};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = SignedCheckpoint::parse_unverified(text);
    let _ = text.parse::<VerifierKey>();
    let key = Signer::new("sealog/fuzz", ed25519_dalek::SigningKey::from_bytes(&[2; 32])).verifier();
    let _ = key.verify(text);
});
