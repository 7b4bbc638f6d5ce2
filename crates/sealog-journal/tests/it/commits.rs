//! The per-commit checker of forensic inquiries on damaged journals: an
//! altered record names its commit only; damage and a cut-back journal
//! are reported, never a shorter clean answer.

use sealog_journal::commits::{check_commits, CommitCheck, Window};

use crate::util::{append, open, segment, signer, REALM};

fn everything() -> Window {
    Window {
        start_ns: i64::MIN,
        end_ns: i64::MAX,
        deadline: None,
    }
}

fn check(dir: &std::path::Path) -> Vec<CommitCheck> {
    check_commits(dir, REALM, &signer().verifier(), everything(), &mut |_| {}).expect("check")
}

/// Five commits of 300 records: each spans a 256-record tile boundary.
fn five_commits() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    let mut j = open(d.path());
    for c in 0..5 {
        append(&mut j, c * 300, 300);
    }
    j.sync().expect("sync");
    drop(j);
    d
}

#[test]
fn an_altered_record_names_its_commit_only() {
    let d = five_commits();
    let clean = check(d.path());
    assert_eq!(clean.len(), 5);
    assert!(clean.iter().all(|c| c.verified), "{clean:?}");
    // A careful edit of seq 310 (commit 1), hints and checksums recomputed.
    sealog_journal::tamper::rewrite_blocks(
        &segment(d.path()),
        sealog_journal::tamper::Hints::Recompute,
        |first, lines| {
            for (i, l) in lines.iter_mut().enumerate() {
                if first + i as u64 == 310 {
                    *l = String::from_utf8(l.clone())
                        .expect("utf8")
                        .replace("settled", "reversed")
                        .into_bytes();
                }
            }
        },
    )
    .expect("rewrite");
    let after = check(d.path());
    let bad: Vec<(u64, bool)> = after.iter().map(|c| (c.first_seq, c.verified)).collect();
    assert_eq!(
        bad,
        vec![
            (0, true),
            (300, false),
            (600, true),
            (900, true),
            (1200, true)
        ]
    );
    assert!(
        after[1]
            .reason
            .as_deref()
            .expect("reason")
            .contains("300..600"),
        "{:?}",
        after[1]
    );
}

#[test]
fn damage_and_a_cut_back_journal_are_reported() {
    // A byte flipped in the third commit's first block frame header: the
    // rest of the journal cannot be read, and is reported so.
    let d = five_commits();
    let seg = segment(d.path());
    let (offset, _, _) = sealog_journal::tamper::block_body_offset(&seg, 600).expect("block");
    let mut bytes = std::fs::read(&seg).expect("read");
    // The frame header sits just before the body.
    bytes[offset as usize - 3] ^= 0xff;
    std::fs::write(&seg, &bytes).expect("write");
    let r = check(d.path());
    assert!(r[0].verified && r[1].verified, "{r:?}");
    let unverified: Vec<&CommitCheck> = r.iter().filter(|c| !c.verified).collect();
    assert!(!unverified.is_empty(), "{r:?}");
    let covered_to = unverified.iter().map(|c| c.end).max().expect("end");
    assert_eq!(
        covered_to, 1500,
        "everything from the damage to the mark is named: {r:?}"
    );

    // Cut back to three commits at a frame boundary: the high-water mark
    // still says 1500, so 900..1500 are reported missing.
    let d = five_commits();
    let seg = segment(d.path());
    let ends = sealog_journal::tamper::checkpoint_ends(&seg).expect("ends");
    let (_, cut) = ends
        .iter()
        .find(|(size, _)| *size == 900)
        .expect("checkpoint 900");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .expect("open");
    f.set_len(*cut).expect("truncate");
    drop(f);
    let r = check(d.path());
    assert_eq!(r.len(), 4, "{r:?}");
    assert!(r[..3].iter().all(|c| c.verified));
    assert_eq!(
        (r[3].first_seq, r[3].end, r[3].verified),
        (900, 1500, false)
    );
    assert!(
        r[3].reason
            .as_deref()
            .expect("reason")
            .contains("high-water mark"),
        "{:?}",
        r[3]
    );
}
