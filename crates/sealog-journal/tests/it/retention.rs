//! Verifiable retention on the journal: bodies go, leaf hashes and a signed
//! retention record stay, every proof still verifies, the verifier reports
//! the removed ranges, and a body removed any other way is still caught.
//! Crashes at every step of a run (with lost unsynced writes) and a full
//! disk leave a journal that opens, verifies and finishes the run when it
//! is run again.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

use sealog_journal::checkpoint::Checkpoint;
use sealog_journal::fs::{OpenHow, Vfs};
use sealog_journal::merkle;
use sealog_journal::retention::{Policy, RETENTION_FILE};
use sealog_journal::sim_fs::SimFs;
use sealog_journal::tamper::Hints;
use sealog_journal::verify::{verify_dir, Evidence, Report};
use sealog_journal::{prepare, EventRef, Journal, JournalError, JournalOptions};

use crate::util::{signer, REALM};

/// Receive time of commit `i` is `T0 + i` seconds.
const T0: i64 = 1_700_000_000_000_000_000;
const SEC: i64 = 1_000_000_000;

fn commit(j: &mut Journal, idx: u64, n: u64) {
    let t = T0 + idx as i64 * SEC;
    let first = j.size();
    let bodies: Vec<Vec<u8>> = (first..first + n)
        .map(|i| {
            let app = if i % 2 == 0 { "shop" } else { "bank" };
            format!(r#"{{"app":"{app}","type":"A","n":{i},"msg":"order {i} shipped to customer {} with parcel tracking","pri":"Info"}}"#, i * 7919 % 100_003).into_bytes()
        })
        .collect();
    let events: Vec<EventRef<'_>> = bodies
        .iter()
        .map(|b| EventRef {
            bytes: b,
            time_ns: Some(t),
        })
        .collect();
    let p = prepare(REALM, first, &events, t, j.options().compression_level).expect("prepare");
    j.commit(p).expect("commit");
}

fn everything(_: &[u8]) -> bool {
    true
}

fn older_than(commit_idx: i64) -> Policy<'static> {
    Policy {
        description: format!("days=1 (test: before commit {commit_idx})"),
        cutoff_ns: T0 + commit_idx * SEC,
        select: &everything,
    }
}

fn verify(dir: &Path, evidence: &Evidence) -> Report {
    verify_dir(dir, REALM, &signer().verifier(), evidence, &|_| {}).expect("verify runs")
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").metadata().expect("stat").len())
        .sum()
}

#[test]
fn retention_keeps_every_proof_and_is_reported_not_as_tampering() {
    let d = tempfile::tempdir().expect("tempdir");
    let mut j = crate::util::open(d.path());
    for idx in 0..20 {
        commit(&mut j, idx, 1000);
    }
    let old_cp = j.latest_checkpoint().expect("committed").text.clone();
    for idx in 20..40 {
        commit(&mut j, idx, 1000);
    }
    let size = j.size();
    let root_before = j.root_at(size).expect("root");
    let old_root = j.root_at(20_000).expect("root");
    let before = dir_bytes(d.path());

    // A dry run says what would go and changes nothing.
    let dry = j
        .retain(&older_than(20), T0 + 100 * SEC, true)
        .expect("dry");
    assert_eq!(
        (dry.removed, dry.ranges.clone()),
        (20_000, vec![(0, 20_000)])
    );
    assert!(dry.record.is_none());
    assert_eq!(dir_bytes(d.path()), before);

    let out = j
        .retain(&older_than(20), T0 + 100 * SEC, false)
        .expect("retain");
    assert_eq!(out.removed, 20_000);
    assert_eq!(out.ranges, vec![(0, 20_000)]);
    let rec = out.record.expect("a record");
    assert_eq!(rec.record.id, 1);
    assert!(rec.text.contains("\nretention 1\n") && rec.text.contains("removed 20000\n"));
    // The record is not a checkpoint.
    assert!(signer().verifier().verify(&rec.text).is_err());
    let after = dir_bytes(d.path());
    assert!(
        after * 10 < before * 7,
        "half the records removed, yet {before} bytes became only {after}"
    );

    // The tree is the same; proofs from an old checkpoint still hold.
    assert_eq!(j.size(), size);
    assert_eq!(j.root_at(size).expect("root"), root_before);
    let proof = j.consistency_proof(20_000, size).expect("proof");
    merkle::verify_consistency(20_000, size, &proof, &old_root, &root_before)
        .expect("old checkpoint consistent with the newest");
    let cp: Checkpoint = signer().verifier().verify(&old_cp).expect("old checkpoint");
    assert_eq!(cp.root, old_root);
    let mut line = Vec::new();
    j.read(25_000, 25_001, &mut |_, l| {
        line = l.to_vec();
        ControlFlow::Break(())
    })
    .expect("read");
    let ip = j.inclusion_proof(25_000, size).expect("inclusion");
    merkle::verify_inclusion(&merkle::leaf_hash(&line), 25_000, size, &ip, &root_before)
        .expect("a surviving record is still included");
    // Removed records are no longer read; the rest are.
    let mut seen = Vec::new();
    j.read(19_990, 20_010, &mut |seq, _| {
        seen.push(seq);
        ControlFlow::Continue(())
    })
    .expect("read");
    assert_eq!(seen, (20_000..20_010).collect::<Vec<u64>>());
    assert!(j.read_block(0).expect("block").is_retained(7));

    // The verifier passes, with the old checkpoint as evidence, and
    // reports the range as retained out.
    let evidence = Evidence {
        checkpoints: vec![old_cp.clone()],
        ..Evidence::default()
    };
    let r = verify(d.path(), &evidence);
    assert!(r.ok(), "{:?}", r.findings);
    assert_eq!(r.retained.len(), 1);
    assert_eq!(r.retained[0].ranges, vec![(0, 20_000)]);
    assert!(r
        .notes
        .iter()
        .any(|n| n.contains("retained out: 20000 records")));

    // Reopened, it recovers, appends and verifies.
    drop(j);
    let mut j = crate::util::open(d.path());
    assert_eq!(j.size(), size);
    commit(&mut j, 40, 500);
    // A second run with nothing old enough removes nothing.
    let none = j
        .retain(&older_than(20), T0 + 100 * SEC, false)
        .expect("retain");
    assert_eq!(none.removed, 0);
    // A filtered run removes only what its filter selects.
    let shop = |l: &[u8]| String::from_utf8_lossy(l).contains(r#""app":"shop""#);
    let p = Policy {
        description: "days=1 app=shop".into(),
        cutoff_ns: T0 + 30 * SEC,
        select: &shop,
    };
    let out = j.retain(&p, T0 + 100 * SEC, false).expect("retain");
    assert_eq!(out.removed, 5_000);
    assert_eq!(out.ranges.first(), Some(&(20_000, 20_001)));
    assert_eq!(out.record.expect("record").record.id, 2);
    drop(j);
    let r = verify(d.path(), &Evidence::default());
    assert!(r.ok(), "{:?}", r.findings);
    assert_eq!(r.retained.len(), 2);
}

#[test]
fn tampering_after_retention_is_still_caught() {
    let d = tempfile::tempdir().expect("tempdir");
    let mut j = crate::util::open(d.path());
    for idx in 0..8 {
        commit(&mut j, idx, 1000);
    }
    j.retain(&older_than(4), T0 + 100 * SEC, false)
        .expect("retain");
    drop(j);
    assert!(verify(d.path(), &Evidence::default()).ok());
    let seg = d.path().join("00000000000000000000.seg");
    let pristine = std::fs::read(&seg).expect("read");

    // 1. A surviving record edited: named at its seq.
    sealog_journal::tamper::rewrite_blocks(&seg, Hints::Recompute, |first, lines| {
        if (first..first + lines.len() as u64).contains(&6_000) {
            let l = &mut lines[(6_000 - first) as usize];
            *l = String::from_utf8_lossy(l)
                .replace("shipped", "stolen")
                .into_bytes();
        }
    })
    .expect("tamper");
    let r = verify(d.path(), &Evidence::default());
    assert_eq!(
        r.first_bad().map(|f| f.seq),
        Some(6_000),
        "{:?}",
        r.findings
    );
    std::fs::write(&seg, &pristine).expect("restore");

    // 2. A surviving record's body removed as if by retention (its leaf
    // hash kept, naming the real record): not covered, so tampering.
    sealog_journal::tamper::retain_out(&seg, 6_500, 1).expect("forge");
    let r = verify(d.path(), &Evidence::default());
    assert_eq!(
        r.first_bad().map(|f| f.seq),
        Some(6_500),
        "{:?}",
        r.findings
    );
    assert!(
        r.findings[0].reason.contains("does not name these seqs"),
        "{:?}",
        r.findings
    );
    std::fs::write(&seg, &pristine).expect("restore");

    // 3. The retention record altered: its signature fails, and the
    // tombstones it covered are no longer covered.
    let notes = d.path().join(RETENTION_FILE);
    let good = std::fs::read(&notes).expect("notes");
    let mut bad = good.clone();
    let at = bad
        .windows(12)
        .position(|w| w == b"removed 4000")
        .expect("the record says what it removed");
    bad[at + 11] = b'1';
    // The CRC is fixed up so only the signature can tell.
    let note_len = u32::from_le_bytes(bad[4..8].try_into().expect("4")) as usize;
    let ranges_len = u32::from_le_bytes(bad[8..12].try_into().expect("4")) as usize;
    let mut crc = crc32c::crc32c(&bad[..12]);
    crc = crc32c::crc32c_append(crc, &bad[16..16 + note_len + ranges_len]);
    bad[12..16].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&notes, &bad).expect("write");
    let r = verify(d.path(), &Evidence::default());
    assert!(!r.ok());
    assert!(
        r.findings
            .iter()
            .any(|f| f.reason.contains("not a valid retention record")),
        "{:?}",
        r.findings
    );
    assert!(r
        .findings
        .iter()
        .any(|f| f.seq == 0 && f.reason.contains("no validly signed retention record 1")));

    // 4. The retention record deleted: every tombstone is uncovered.
    std::fs::remove_file(&notes).expect("remove");
    let r = verify(d.path(), &Evidence::default());
    assert!(
        r.findings
            .iter()
            .any(|f| f.reason.contains("no validly signed retention record 1")),
        "{:?}",
        r.findings
    );
    std::fs::write(&notes, &good).expect("restore");
    assert!(verify(d.path(), &Evidence::default()).ok());
}

/// Copies a simulated directory into a real one, for the verifier.
fn export(fs: &SimFs, from: &Path, to: &Path) {
    for name in fs.list(from).expect("list") {
        let data = fs
            .open(&from.join(&name), OpenHow::Read)
            .and_then(|f| f.read_to_end_at(0))
            .expect("read");
        std::fs::write(to.join(&name), data).expect("write");
    }
}

const SIM_DIR: &str = "/data/acme";

fn sim_open(fs: &Arc<SimFs>) -> Result<Journal, JournalError> {
    Journal::open_in(
        fs.clone(),
        Path::new(SIM_DIR),
        REALM,
        signer(),
        JournalOptions {
            segment_max_bytes: 8 * 1024,
            ..JournalOptions::default()
        },
    )
}

fn sim_workload() -> (Arc<SimFs>, Journal) {
    let fs = SimFs::new();
    let mut j = sim_open(&fs).expect("open");
    for idx in 0..6 {
        commit(&mut j, idx, 400);
    }
    (fs, j)
}

#[test]
fn a_crash_at_every_step_of_a_run_leaves_a_journal_that_verifies() {
    // Commits 0..3 span sealed segments; commits 0..6 reach the segment
    // being appended to, which is closed first.
    crash_at_every_step(3, 1200);
    crash_at_every_step(6, 2400);
}

fn crash_at_every_step(cutoff_commit: i64, removed: u64) {
    let (fs, mut j) = sim_workload();
    let size = j.size();
    let root = j.root_at(size).expect("root");
    let ops_before = fs.mutating_ops();
    let out = j
        .retain(&older_than(cutoff_commit), T0 + 100 * SEC, false)
        .expect("retain");
    assert_eq!(out.removed, removed);
    assert!(out.segments_rewritten >= 2, "{out:?}");
    let steps = fs.mutating_ops() - ops_before;
    drop(j);
    let mut checked = 0;
    for k in 1..=steps + 1 {
        for seed in [k, k + 1000] {
            let (fs, mut j) = sim_workload();
            fs.power_off_after(k);
            let _ = j.retain(&older_than(cutoff_commit), T0 + 100 * SEC, false);
            drop(j);
            let image = fs.crash_image(seed);
            let mut j = sim_open(&image)
                .unwrap_or_else(|e| panic!("crash before step {k}: does not open: {e}"));
            assert_eq!(j.size(), size, "step {k}");
            assert_eq!(j.root_at(size).expect("root"), root, "step {k}");
            // The records not selected are all there.
            let mut recent = 0;
            j.read(0, size, &mut |seq, _| {
                recent += u64::from(seq >= removed);
                ControlFlow::Continue(())
            })
            .expect("read");
            assert_eq!(recent, size - removed, "step {k}");
            let real = tempfile::tempdir().expect("tempdir");
            export(&image, Path::new(SIM_DIR), real.path());
            let r = verify(real.path(), &Evidence::default());
            assert!(r.ok(), "step {k} seed {seed}: {:?}", r.findings);
            // Running it again finishes the job.
            let again = j
                .retain(&older_than(cutoff_commit), T0 + 100 * SEC, false)
                .expect("rerun");
            let mut left = 0;
            j.read(0, size, &mut |_, _| {
                left += 1;
                ControlFlow::Continue(())
            })
            .expect("read");
            assert_eq!(
                left,
                size - removed,
                "step {k}: rerun removed {}",
                again.removed
            );
            commit(&mut j, 50, 10);
            drop(j);
            let real = tempfile::tempdir().expect("tempdir");
            export(&image, Path::new(SIM_DIR), real.path());
            let r = verify(real.path(), &Evidence::default());
            assert!(r.ok(), "step {k} after rerun: {:?}", r.findings);
            assert_eq!(r.retained.iter().map(|x| x.records).sum::<u64>(), removed);
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} crash points");
}

#[test]
fn a_full_disk_fails_the_run_and_loses_nothing() {
    let (fs, mut j) = sim_workload();
    let size = j.size();
    let root = j.root_at(size).expect("root");
    // Room for the record, not for a rewritten segment.
    let used: u64 = fs
        .list(Path::new(SIM_DIR))
        .expect("list")
        .iter()
        .map(|n| {
            fs.open(&Path::new(SIM_DIR).join(n), OpenHow::Read)
                .and_then(|f| f.len())
                .expect("len")
        })
        .sum();
    fs.set_capacity(Some(used + 1024));
    let err = j
        .retain(&older_than(3), T0 + 100 * SEC, false)
        .expect_err("no room");
    assert!(err.is_storage_full(), "{err}");
    // Nothing acknowledged is lost and the journal still takes writes once
    // there is room.
    fs.set_capacity(None);
    assert_eq!(j.root_at(size).expect("root"), root);
    commit(&mut j, 20, 10);
    let out = j
        .retain(&older_than(3), T0 + 100 * SEC, false)
        .expect("retain");
    assert_eq!(out.removed, 1200);
    drop(j);
    let real = tempfile::tempdir().expect("tempdir");
    export(&fs, Path::new(SIM_DIR), real.path());
    let r = verify(real.path(), &Evidence::default());
    assert!(r.ok(), "{:?}", r.findings);
}

#[test]
fn a_verify_racing_a_run_sees_its_record_and_a_damaged_last_record_stops_the_next_run() {
    let d = tempfile::tempdir().expect("tempdir");
    let mut j = crate::util::open(d.path());
    for idx in 0..8 {
        commit(&mut j, idx, 1000);
    }
    j.retain(&older_than(4), T0 + 100 * SEC, false)
        .expect("retain");
    drop(j);
    let notes = d.path().join(RETENTION_FILE);
    let good = std::fs::read(&notes).expect("notes");

    // A verify that read the notes just before a run appended its record,
    // and the segments after the run rewrote them: the record is read
    // again, and nothing is called tampering.
    std::fs::remove_file(&notes).expect("remove");
    let once = std::sync::Once::new();
    let r = verify_dir(
        d.path(),
        REALM,
        &signer().verifier(),
        &Evidence::default(),
        &|_| once.call_once(|| std::fs::write(&notes, &good).expect("write")),
    )
    .expect("verify runs");
    assert!(r.ok(), "{:?}", r.findings);
    assert_eq!(r.retained.len(), 1);

    // A whole last entry with one damaged byte is damage, not an
    // interrupted append: verify says so and the next run refuses to cut it.
    let mut bad = good.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0x20;
    std::fs::write(&notes, &bad).expect("write");
    let r = verify(d.path(), &Evidence::default());
    assert!(
        r.findings
            .iter()
            .any(|f| f.reason.contains("damaged entry")),
        "{:?}",
        r.findings
    );
    let mut j = crate::util::open(d.path());
    commit(&mut j, 10, 1000);
    let e = j
        .retain(&older_than(9), T0 + 100 * SEC, false)
        .expect_err("refused");
    assert!(
        e.to_string().contains("refusing to add a retention record"),
        "{e}"
    );
    drop(j);
    assert_eq!(
        std::fs::read(&notes).expect("notes"),
        bad,
        "the damaged record was kept"
    );
}
