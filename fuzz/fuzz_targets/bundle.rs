//! Export bundles from arbitrary bytes: the offline verifier must report,
//! never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealog_journal::checkpoint::Signer;

fuzz_target!(|data: &[u8]| {
    let key = Signer::new("sealog/fuzz", ed25519_dalek::SigningKey::from_bytes(&[3; 32])).verifier();
    let mut r = data;
    let _ = sealog_journal::bundle::verify_bundle(&mut r, &key);
});
