//! The journal's conformance suite (append, reopen, proofs checked with
//! `sha2`'s hashes, verify, tamper detection) with every batch of leaf and
//! node hashes computed in eight AVX2 lanes, which a CPU with the SHA
//! extensions (this one, most likely) would not otherwise run. A separate
//! test binary, because the engine is chosen once per process.

#[path = "it/disk.rs"]
mod disk;
#[allow(dead_code)]
#[path = "it/util.rs"]
mod util;

use sealog_journal::conformance;
use sealog_journal::sha256x8::Engine;

#[test]
fn the_journal_conforms_with_eight_lane_hashing() {
    let want = if Engine::available().contains(&Engine::EightLanes) {
        Engine::EightLanes
    } else {
        // No AVX2 here: the suite still runs, on sha2.
        Engine::OneByOne
    };
    assert_eq!(Engine::force(want), want, "nothing hashed before the force");
    conformance::run_harness(&mut disk::Disk::default());
    assert_eq!(Engine::best(), want);
}
