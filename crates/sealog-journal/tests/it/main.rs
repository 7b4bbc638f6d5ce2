//! Integration tests of the journal on real files.

mod bundle;
mod commits;
mod disk;
mod fixture;
mod model;
mod power_loss;
mod proofs;
mod recovery;
mod retention;
mod util;
mod vectors;

use disk::Disk;
use sealog_journal::conformance;

#[test]
fn disk_journal_passes_conformance() {
    conformance::run_harness(&mut Disk::default());
}
