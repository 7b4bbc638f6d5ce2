//! Integration tests of the journal on real files.

mod bundle;
mod commits;
mod fixture;
mod model;
mod power_loss;
mod proofs;
mod recovery;
mod retention;
mod util;
mod vectors;

use sealog_journal::conformance;

#[test]
fn disk_journal_passes_conformance() {
    let dirs: std::cell::RefCell<Vec<tempfile::TempDir>> = Default::default();
    conformance::run_all(|| {
        let d = tempfile::tempdir().expect("tempdir");
        let j = util::open(d.path());
        dirs.borrow_mut().push(d);
        j
    });
}
