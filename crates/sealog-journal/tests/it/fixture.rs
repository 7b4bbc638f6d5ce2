//! The committed format-v1 fixture must keep opening, reading and verifying
//! with every later build. Regenerate (only when the format version changes)
//! with `SEALOG_REGENERATE_FIXTURES=1 cargo test -p sealog-journal fixture`.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use sealog_journal::verify::{verify_dir, Evidence};

use crate::util::{append, open, REALM};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1")
}

fn regenerate(root: &Path) {
    let journal = root.join("journal");
    let _ = std::fs::remove_dir_all(&journal);
    let mut j = open(&journal);
    append(&mut j, 0, 200);
    let r = append(&mut j, 200, 100);
    drop(j);
    std::fs::write(root.join("checkpoint.txt"), r.checkpoint).expect("write");
}

#[test]
fn format_v1_fixture_opens_reads_and_verifies() {
    let root = fixture_dir();
    if std::env::var_os("SEALOG_REGENERATE_FIXTURES").is_some() {
        regenerate(&root);
    }
    let expected =
        std::fs::read_to_string(root.join("checkpoint.txt")).expect("fixture checkpoint");
    // Work on a copy: opening may write (recovery), the fixture must not change.
    let d = tempfile::tempdir().expect("tempdir");
    for e in std::fs::read_dir(root.join("journal")).expect("fixture journal") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), d.path().join(e.file_name())).expect("copy");
    }
    let report = verify_dir(
        d.path(),
        REALM,
        &crate::util::signer().verifier(),
        &Evidence {
            checkpoints: vec![expected.clone()],
            receipts: vec![],
            // A v1 journal from before high-water marks.
            require_mark: false,
        },
        &|_| {},
    )
    .expect("verify");
    assert!(report.ok(), "{:?}", report.findings);
    assert_eq!((report.records, report.checkpoints), (300, 2));
    let j = open(d.path());
    assert_eq!(j.size(), 300);
    assert_eq!(
        j.latest_checkpoint().map(|c| c.text.as_str()),
        Some(expected.as_str())
    );
    let mut line = Vec::new();
    j.read(123, 124, &mut |_, l| {
        line = l.to_vec();
        ControlFlow::Continue(())
    })
    .expect("read");
    let v: serde_json::Value = serde_json::from_slice(&line).expect("json");
    assert_eq!((v["seq"].as_u64(), v["n"].as_u64()), (Some(123), Some(123)));
}
