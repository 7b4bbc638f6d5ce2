//! Reopen and crash recovery on real files.

use std::fs::OpenOptions;
use std::io::Write;

use sealog_journal::{Journal, JournalError};

use crate::util::{self, append, open, segment};

#[test]
fn reopen_keeps_everything_and_continues() {
    let d = tempfile::tempdir().expect("tempdir");
    let mut j = open(d.path());
    append(&mut j, 0, 1000);
    let root = j.root_at(1000).expect("root");
    drop(j);
    let mut j = open(d.path());
    assert_eq!(j.size(), 1000);
    assert_eq!(j.root_at(1000).expect("root"), root);
    let r = append(&mut j, 1000, 10);
    assert_eq!(r.first_seq, 1000);
    let key = j.verifier().clone();
    assert_eq!(key.verify(&r.checkpoint).expect("verifies").size, 1010);
}

#[test]
fn torn_tail_is_truncated() {
    let d = tempfile::tempdir().expect("tempdir");
    let mut j = open(d.path());
    append(&mut j, 0, 300);
    drop(j);
    let committed = std::fs::metadata(segment(d.path())).expect("stat").len();
    // Garbage after the last checkpoint: a write that never finished.
    let mut f = OpenOptions::new()
        .append(true)
        .open(segment(d.path()))
        .expect("open");
    f.write_all(b"SLFR\x01 half a frame").expect("write");
    drop(f);
    let j = open(d.path());
    assert_eq!(j.size(), 300);
    assert_eq!(
        std::fs::metadata(segment(d.path())).expect("stat").len(),
        committed
    );
}

#[test]
fn a_cut_final_checkpoint_is_refused_against_the_mark_and_otherwise_cut_off() {
    let d = tempfile::tempdir().expect("tempdir");
    let mut j = open(d.path());
    append(&mut j, 0, 10);
    let len10 = std::fs::metadata(segment(d.path())).expect("stat").len();
    append(&mut j, 10, 10);
    drop(j);
    // Cut the final checkpoint frame off. That commit was acknowledged, and
    // the realm's high-water mark says so: the journal is refused, and
    // nothing on disk is changed.
    let bytes = std::fs::read(segment(d.path())).expect("read");
    let cut = bytes.len() - 20;
    std::fs::write(segment(d.path()), &bytes[..cut]).expect("write");
    let err = Journal::open(d.path(), util::REALM, util::signer(), Default::default())
        .expect_err("behind its mark");
    assert!(
        matches!(
            err,
            JournalError::Rollback {
                size: 10,
                marked: 20,
                ..
            }
        ),
        "got {err}"
    );
    assert_eq!(
        std::fs::metadata(segment(d.path())).expect("stat").len(),
        cut as u64
    );
    // Without a mark (a journal from before marks) the tail after the last
    // valid checkpoint is taken as never acknowledged and cut off.
    std::fs::remove_file(d.path().join("head.mark")).expect("remove mark");
    let j = open(d.path());
    assert_eq!(j.size(), 10);
    assert_eq!(
        std::fs::metadata(segment(d.path())).expect("stat").len(),
        len10
    );
}

#[test]
fn damage_before_the_last_checkpoint_is_a_hard_error() {
    let d = tempfile::tempdir().expect("tempdir");
    let mut j = open(d.path());
    append(&mut j, 0, 10);
    append(&mut j, 10, 10);
    drop(j);
    let mut bytes = std::fs::read(segment(d.path())).expect("read");
    bytes[32 + 9] ^= 0xff; // first frame header's seq field
    std::fs::write(segment(d.path()), &bytes).expect("write");
    let err =
        sealog_journal::Journal::open(d.path(), util::REALM, util::signer(), Default::default())
            .expect_err("must refuse");
    assert!(
        matches!(err, JournalError::Corrupt { seq: 0, .. }),
        "got {err}"
    );
}

#[test]
fn lost_tree_file_is_rebuilt() {
    let d = tempfile::tempdir().expect("tempdir");
    let mut j = open(d.path());
    append(&mut j, 0, 5000);
    let root = j.root_at(4321).expect("root");
    drop(j);
    std::fs::remove_file(d.path().join("tree.hashes")).expect("rm");
    let j = open(d.path());
    assert_eq!(j.root_at(4321).expect("root"), root);
}

#[test]
fn foreign_file_is_a_precise_error() {
    let d = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        segment(d.path()),
        b"hello, this is not a segment at all....",
    )
    .expect("write");
    let err =
        sealog_journal::Journal::open(d.path(), util::REALM, util::signer(), Default::default())
            .expect_err("must refuse");
    assert!(err.to_string().contains("bad magic"), "got {err}");
}

/// Found by the `segment` fuzz target: a segment file renamed to another
/// seq was refused by recovery but passed by the verifier, which checked
/// the header's first seq only against the records before it.
#[test]
fn a_renamed_segment_is_refused_and_reported() {
    use sealog_journal::verify::{verify_dir, Evidence};
    let d = tempfile::tempdir().expect("tempdir");
    let mut j = open(d.path());
    append(&mut j, 0, 10);
    drop(j);
    std::fs::rename(segment(d.path()), d.path().join("00000000000000000007.seg")).expect("rename");
    let report = verify_dir(
        d.path(),
        util::REALM,
        &util::signer().verifier(),
        &Evidence::default(),
        &|_| {},
    )
    .expect("verify runs");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.reason.contains("named for seq 7")),
        "findings: {:?}",
        report.findings
    );
    let err =
        sealog_journal::Journal::open(d.path(), util::REALM, util::signer(), Default::default())
            .expect_err("must refuse");
    assert!(
        matches!(err, JournalError::Corrupt { seq: 0, .. })
            && err.to_string().contains("named for seq 7"),
        "got {err}"
    );
}

mod garbage {
    use proptest::prelude::*;
    use sealog_journal::segment::segment_header;
    use sealog_journal::verify::{verify_dir, Evidence};

    use crate::util::{self, append, open, segment};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Random bytes after a valid header: open and verify report, never panic.
        #[test]
        fn random_segments_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let d = tempfile::tempdir().expect("tempdir");
            let mut all = segment_header(0).to_vec();
            all.extend_from_slice(&bytes);
            std::fs::write(segment(d.path()), &all).expect("write");
            let _ = verify_dir(d.path(), util::REALM, &util::signer().verifier(), &Evidence::default(), &|_| {});
            let _ = sealog_journal::Journal::open(d.path(), util::REALM, util::signer(), Default::default());
        }

        /// One flipped byte anywhere in a real journal: verify reports it
        /// (or it lands in padding the format does not read), never panics,
        /// and open never silently loses acknowledged records.
        #[test]
        fn flipped_bytes_are_found(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let d = tempfile::tempdir().expect("tempdir");
            let mut j = open(d.path());
            append(&mut j, 0, 300);
            append(&mut j, 300, 300);
            drop(j);
            let mut bytes = std::fs::read(segment(d.path())).expect("read");
            let at = pos.index(bytes.len());
            bytes[at] ^= 1 << bit;
            std::fs::write(segment(d.path()), &bytes).expect("write");
            let report = verify_dir(d.path(), util::REALM, &util::signer().verifier(), &Evidence::default(), &|_| {})
                .expect("verify runs");
            // Reserved bytes of the segment header (12..16, 28..32) are not read.
            let padding = (12..16).contains(&at) || (28..32).contains(&at);
            // A flip that makes the file end in a zero byte turns the final
            // frame into what an interrupted write looks like.
            let zero_tail = at == bytes.len() - 1 && bytes[at] == 0;
            prop_assert!(!report.ok() || padding || zero_tail, "flip at {} not found", at);
            if let Ok(j) = sealog_journal::Journal::open(d.path(), util::REALM, util::signer(), Default::default()) {
                prop_assert!(j.size() == 600 || padding || zero_tail, "open lost records silently: size {}", j.size());
            }
        }
    }
}

fn prepared(j: &sealog_journal::Journal, from: u64, n: u64) -> sealog_journal::PreparedCommit {
    let bodies: Vec<Vec<u8>> = (from..from + n).map(util::event).collect();
    let events: Vec<sealog_journal::EventRef<'_>> = bodies
        .iter()
        .map(|b| sealog_journal::EventRef {
            bytes: b,
            time_ns: None,
        })
        .collect();
    sealog_journal::prepare(j.realm(), from, &events, 1_700_000_000_000_000_000, 1)
        .expect("events fit")
}

#[test]
fn staged_commit_is_invisible_until_finished_and_lost_if_never_finished() {
    let d = tempfile::tempdir().expect("tempdir");
    let mut j = open(d.path());
    append(&mut j, 0, 100);
    let before = j.latest_checkpoint().expect("checkpoint").text.clone();

    // Steps in order: readers see the old size until the last one.
    let s = j.stage_blocks(prepared(&j, 100, 50)).expect("stage blocks");
    assert_eq!(j.size(), 100);
    assert!(
        j.stage_blocks(prepared(&j, 100, 5)).is_err(),
        "only one commit staged at a time"
    );
    s.sync().expect("sync");
    let s = j.stage_checkpoint(s).expect("stage checkpoint");
    assert_eq!(j.size(), 100);
    assert_eq!(j.latest_checkpoint().expect("checkpoint").text, before);
    s.sync().expect("sync");
    let r = j.finish_commit(s).expect("finish");
    assert_eq!((r.first_seq, r.last_seq, j.size()), (100, 149, 150));
    assert!(!j.is_poisoned());

    // Blocks staged but never checkpointed (the process died): on reopen
    // the journal is back at its last checkpoint and takes the same seqs.
    let s = j.stage_blocks(prepared(&j, 150, 70)).expect("stage blocks");
    s.sync().expect("sync");
    drop(s);
    drop(j);
    let mut j = open(d.path());
    assert_eq!(j.size(), 150);
    let r = append(&mut j, 150, 10);
    assert_eq!((r.first_seq, r.last_seq), (150, 159));
    drop(j);
    let report = sealog_journal::verify::verify_dir(
        d.path(),
        util::REALM,
        &util::signer().verifier(),
        &sealog_journal::verify::Evidence::default(),
        &|_| {},
    )
    .expect("verify runs");
    assert!(report.ok(), "{report:?}");
    assert_eq!((report.records, report.committed), (160, 160));
}

/// Finding 5: the journal itself refuses an event over MAX_EVENT_BYTES
/// where it builds blocks, so no ingest path can store a record that its
/// readers would refuse; nothing of the batch is written.
#[test]
fn an_event_over_the_cap_is_refused_where_blocks_are_built() {
    let d = tempfile::tempdir().expect("tempdir");
    let mut j = open(d.path());
    append(&mut j, 0, 3);
    let big = format!(
        r#"{{"msg":"{}"}}"#,
        "x".repeat(sealog_event::MAX_EVENT_BYTES)
    );
    let small = br#"{"msg":"ok"}"#;
    let events = [
        sealog_journal::EventRef {
            bytes: small,
            time_ns: None,
        },
        sealog_journal::EventRef {
            bytes: big.as_bytes(),
            time_ns: None,
        },
    ];
    let err = j.append(&events).expect_err("over the cap");
    assert!(
        matches!(err, JournalError::EventTooLarge { index: 1, .. }),
        "got {err}"
    );
    assert_eq!(j.size(), 3, "nothing of the batch was committed");
    assert!(!j.is_poisoned());
    append(&mut j, 3, 2);
    drop(j);
    assert_eq!(open(d.path()).size(), 5);
}

/// Found by the `segment` fuzz target: a checkpoint the realm signed for
/// size 0 (the empty tree), given as the mark or as a client's evidence,
/// was reported as not matching the records, because its root was only
/// ever looked up after a leaf was pushed.
#[test]
fn a_signed_checkpoint_for_the_empty_tree_matches() {
    use sealog_journal::checkpoint::{origin_for, Checkpoint};
    use sealog_journal::verify::{verify_dir, Evidence};
    let d = tempfile::tempdir().expect("tempdir");
    let mut j = open(d.path());
    append(&mut j, 0, 3);
    drop(j);
    let empty = util::signer().sign(&Checkpoint {
        origin: origin_for(util::REALM),
        size: 0,
        root: sealog_journal::merkle::empty_root(),
    });
    let evidence = Evidence {
        checkpoints: vec![empty.text],
        receipts: Vec::new(),
        require_mark: true,
    };
    let report = verify_dir(
        d.path(),
        util::REALM,
        &util::signer().verifier(),
        &evidence,
        &|_| {},
    )
    .expect("verify runs");
    assert!(report.ok(), "findings: {:?}", report.findings);
    assert_eq!(report.evidence, 1);
}

/// Found by the `segment` fuzz target: a block frame whose header (CRC
/// recomputed) claims first seq u64::MAX made the verifier overflow
/// computing the block's seq range.
#[test]
fn a_block_at_the_end_of_the_seq_space_is_reported() {
    use sealog_journal::block;
    use sealog_journal::merkle::leaf_hash;
    use sealog_journal::segment::{push_frame, segment_header, FrameHeader};
    use sealog_journal::verify::{verify_dir, Evidence};
    let d = tempfile::tempdir().expect("tempdir");
    let lines: [&[u8]; 2] = [br#"{"a":1}"#, br#"{"a":2}"#];
    let hashes: Vec<_> = lines.iter().map(|l| leaf_hash(l)).collect();
    for damaged in [false, true] {
        let mut b = block::encode(u64::MAX, &lines, &hashes, (0, 0), 1);
        if damaged {
            b.body[5] ^= 1;
        }
        let mut seg = segment_header(0).to_vec();
        push_frame(&mut seg, &FrameHeader::for_block(&b), &b.body);
        std::fs::write(segment(d.path()), &seg).expect("write");
        let report = verify_dir(
            d.path(),
            util::REALM,
            &util::signer().verifier(),
            &Evidence::default(),
            &|_| {},
        )
        .expect("verify runs");
        assert!(!report.ok(), "damaged: {damaged}");
        for f in &report.findings {
            let _ = f.to_string();
        }
    }
}

/// Found by the `segment` fuzz target: a block frame claiming 2^32 - 110
/// records (its header CRC recomputed) over a damaged body made the
/// verifier allocate a placeholder hash per claimed record and abort. Such
/// a frame is now refused as damaged, by the verifier and by recovery.
#[test]
fn a_block_claiming_too_many_records_is_damage() {
    use sealog_journal::block;
    use sealog_journal::merkle::leaf_hash;
    use sealog_journal::segment::{push_frame, FrameHeader};
    use sealog_journal::verify::{verify_dir, Evidence};
    let d = tempfile::tempdir().expect("tempdir");
    let mut j = open(d.path());
    append(&mut j, 0, 3);
    drop(j);
    let line: &[u8] = br#"{"a":1}"#;
    let b = block::encode(3, &[line], &[leaf_hash(line)], (0, 0), 1);
    let mut h = FrameHeader::for_block(&b);
    h.count = u32::MAX - 109;
    let mut body = b.body.clone();
    body[5] ^= 1;
    let mut seg = std::fs::read(segment(d.path())).expect("read");
    push_frame(&mut seg, &h, &body);
    std::fs::write(segment(d.path()), &seg).expect("write");
    let report = verify_dir(
        d.path(),
        util::REALM,
        &util::signer().verifier(),
        &Evidence::default(),
        &|_| {},
    )
    .expect("verify runs");
    assert!(!report.ok());
    assert_eq!(report.records, 3);
    // After the last checkpoint: damage, or a torn tail if the file happens
    // to end in a zero byte; never records.
    match sealog_journal::Journal::open(d.path(), util::REALM, util::signer(), Default::default()) {
        Ok(j) => assert_eq!(j.size(), 3),
        Err(e) => assert!(matches!(e, JournalError::Corrupt { .. }), "got {e}"),
    }
}
