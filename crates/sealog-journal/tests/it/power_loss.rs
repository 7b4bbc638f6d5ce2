//! Power-loss simulation and fault injection on the simulated filesystem
//! ([`SimFs`]): "acks mean durable" under crashes at every mutating
//! operation, `EIO` from fsync, `ENOSPC`, and damaged derived files.
//!
//! Method per crash: a workload deterministic from a seed is run once on a
//! fresh filesystem (the reference: its receipts, its records, how many
//! mutating operations it makes); then, for every crash point `k`, it is
//! run again on a fresh filesystem that loses power just before its `k`-th
//! mutating operation, keeping every receipt it got; a crash image of that
//! filesystem (unsynced writes lost, kept, torn or zero-filled; directory
//! changes since the last directory sync applied as a random prefix) is
//! reopened and checked; then more records are appended to it, and a crash
//! image of *that* is reopened and checked again.
//!
//! The workloads use [`prepare`] with fixed receive times and
//! [`Journal::commit`] (what [`Journal::append`] does, minus the clock), so
//! every run writes the same bytes and the reference's records and
//! receipts are the expected ones.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sealog_journal::checkpoint::{Checkpoint, VerifierKey};
use sealog_journal::fs::{OpenHow, Vfs};
use sealog_journal::merkle::{self, leaf_hash, Frontier};
use sealog_journal::sim_fs::SimFs;
use sealog_journal::{prepare, EventRef, Journal, JournalError, JournalOptions, Receipt};

use crate::util::{signer, REALM};

/// Nested, so that creating it creates two directories.
const DIR: &str = "/data/acme";
/// Receive time of commit `i` is `T0 + i`.
const T0: i64 = 1_700_000_000_000_000_000;

fn dir() -> &'static Path {
    Path::new(DIR)
}

fn open_in(fs: &Arc<SimFs>, opts: JournalOptions) -> Result<Journal, JournalError> {
    Journal::open_in(fs.clone(), dir(), REALM, signer(), opts)
}

fn small_segments(bytes: u64) -> JournalOptions {
    JournalOptions {
        segment_max_bytes: bytes,
        ..JournalOptions::default()
    }
}

/// Commits `batch` as commit number `idx` (its receive time).
fn commit(j: &mut Journal, idx: u64, batch: &[Vec<u8>]) -> Result<Receipt, JournalError> {
    let t = T0 + idx as i64;
    let events: Vec<EventRef<'_>> = batch
        .iter()
        .map(|b| EventRef {
            bytes: b,
            time_ns: Some(t),
        })
        .collect();
    let p = prepare(REALM, j.size(), &events, t, j.options().compression_level)?;
    j.commit(p)
}

/// `n` events tagged `tag`, each with `pad` bytes of padding (letters that
/// do not compress away).
fn events(tag: &str, n: usize, pad: usize) -> Vec<Vec<u8>> {
    let mut rng = StdRng::seed_from_u64(tag.bytes().fold(0, |h, b| h * 31 + u64::from(b)));
    (0..n)
        .map(|i| {
            let fill: String = (0..pad)
                .map(|_| rng.gen_range(b'a'..=b'z') as char)
                .collect();
            format!(r#"{{"tag":"{tag}","i":{i},"pad":"{fill}"}}"#).into_bytes()
        })
        .collect()
}

/// Every record of `j`, in seq order.
fn all_lines(j: &Journal) -> Vec<Vec<u8>> {
    lines_from(j, 0)
}

/// The records of `j` from seq `from` on.
fn lines_from(j: &Journal, from: u64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    j.read(from, j.size(), &mut |_, line| {
        out.push(line.to_vec());
        ControlFlow::Continue(())
    })
    .expect("read every record");
    out
}

/// Sum of the lengths of all files under `dir`.
fn used_bytes(fs: &SimFs, dir: &Path) -> u64 {
    let mut total = 0;
    for name in fs.list(dir).expect("list") {
        let p = dir.join(name);
        if fs.is_dir(&p) {
            total += used_bytes(fs, &p);
        } else {
            total += fs.read_file(&p).map_or(0, |b| b.len() as u64);
        }
    }
    total
}

/// (number of segment files, their total length) in the journal directory.
fn segment_bytes(fs: &SimFs) -> (usize, u64) {
    if !fs.is_dir(dir()) {
        return (0, 0);
    }
    let mut n = 0;
    let mut total = 0;
    for name in fs.list(dir()).expect("list") {
        if name.ends_with(".seg") {
            n += 1;
            total += fs
                .read_file(&dir().join(&name))
                .map_or(0, |b| b.len() as u64);
        }
    }
    (n, total)
}

fn last_segment(fs: &SimFs) -> PathBuf {
    let mut names: Vec<String> = fs
        .list(dir())
        .expect("list")
        .into_iter()
        .filter(|n| n.ends_with(".seg"))
        .collect();
    names.sort();
    dir().join(names.last().expect("a segment"))
}

/// Verifies a checkpoint note with the realm's key (or a cache of notes
/// verified once).
type Verify<'a> = &'a dyn Fn(&str) -> Checkpoint;

/// Checks that `j` holds a consistent journal: every record equal to
/// `lines` (by seq), at least everything in `receipts`; the root of the
/// records at each receipt's size equal to the receipt's signed root, and
/// so is the journal's own `root_at` (stored tree hashes and records) at
/// that size; `root_at(size)` equal to the latest checkpoint's root.
fn check_journal(j: &Journal, receipts: &[Receipt], lines: &[Vec<u8>], verify: Verify<'_>) {
    let size = j.size();
    let acked = receipts.last().map_or(0, |r| r.last_seq + 1);
    assert!(
        size >= acked,
        "journal has {size} records but {acked} were acknowledged"
    );
    assert!(
        size as usize <= lines.len(),
        "journal has records never written"
    );
    let signed: Vec<Checkpoint> = receipts.iter().map(|r| verify(&r.checkpoint)).collect();
    for (r, cp) in receipts.iter().zip(&signed) {
        assert_eq!(cp.size, r.last_seq + 1, "receipt and checkpoint disagree");
    }
    // One pass over the records: their bytes, and the tree they make at
    // every receipt's size.
    let mut frontier = Frontier::new();
    let mut next = signed.iter().peekable();
    while next.peek().is_some_and(|cp| cp.size == 0) {
        next.next();
    }
    j.read(0, size, &mut |seq, line| {
        assert_eq!(
            line,
            lines[seq as usize].as_slice(),
            "record {seq} differs from what was committed"
        );
        frontier.push(leaf_hash(line), |_, _, _| {});
        while let Some(cp) = next.next_if(|cp| cp.size == frontier.size()) {
            assert_eq!(
                frontier.root(),
                cp.root,
                "records 0..{} do not hash to the receipt's root",
                cp.size
            );
        }
        ControlFlow::Continue(())
    })
    .expect("read every record");
    assert_eq!(frontier.size(), size, "records missing in the middle");
    assert!(next.peek().is_none(), "a receipt's records are missing");
    match j.latest_checkpoint() {
        Some(cp) => {
            let latest = verify(&cp.text);
            assert_eq!(latest.size, size);
            assert_eq!(latest.root, frontier.root());
            assert_eq!(j.root_at(size).expect("root"), latest.root);
        }
        None => assert_eq!(size, 0, "records but no checkpoint"),
    }
    for cp in &signed {
        assert_eq!(
            j.root_at(cp.size).expect("root at receipt size"),
            cp.root,
            "root at receipt size {} differs from the receipt's",
            cp.size
        );
    }
}

/// Verification with `key`.
fn with_key(key: &VerifierKey) -> impl Fn(&str) -> Checkpoint + '_ {
    |text| {
        key.verify(text)
            .expect("checkpoint verifies with the realm key")
    }
}

/// Checks `j` against `receipts` and `lines`, verifying with its own key.
fn check(j: &Journal, receipts: &[Receipt], lines: &[Vec<u8>]) {
    check_journal(j, receipts, lines, &with_key(j.verifier()));
}

/// A journal workload: what each commit holds.
#[derive(Debug)]
struct Workload {
    opts: JournalOptions,
    batches: Vec<Vec<Vec<u8>>>,
}

impl Workload {
    fn new(seed: u64, commits: usize, opts: JournalOptions) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let batches = (0..commits)
            .map(|c| {
                let n = match rng.gen_range(0..100) {
                    0..=69 => rng.gen_range(1..=6),
                    70..=94 => rng.gen_range(10..=40),
                    _ => rng.gen_range(100..=300),
                };
                (0..n)
                    .map(|i| {
                        let pad_len = rng.gen_range(0..400);
                        let pad: String = (0..pad_len)
                            .map(|_| rng.gen_range(b'a'..=b'z') as char)
                            .collect();
                        format!(r#"{{"w":{seed},"c":{c},"i":{i},"pad":"{pad}"}}"#).into_bytes()
                    })
                    .collect()
            })
            .collect();
        Self { opts, batches }
    }

    /// Opens the journal and commits every batch, pushing each receipt,
    /// until the end or the first error.
    fn run(&self, fs: &Arc<SimFs>, receipts: &mut Vec<Receipt>) -> Result<(), JournalError> {
        let mut j = open_in(fs, self.opts)?;
        for (i, b) in self.batches.iter().enumerate() {
            receipts.push(commit(&mut j, i as u64, b)?);
        }
        Ok(())
    }
}

/// What a complete, crash-free run of a workload produces.
#[derive(Debug)]
struct Reference {
    receipts: Vec<Receipt>,
    lines: Vec<Vec<u8>>,
    ops: u64,
    /// Sizes a commit ends at (and 0).
    ends: HashSet<u64>,
    /// Every checkpoint note of the run, verified once with the realm key.
    verified: HashMap<String, Checkpoint>,
}

impl Reference {
    /// Verifies `text`: a note of the reference run is looked up (it was
    /// verified once), anything else is verified with `key`.
    fn verify(&self, key: &VerifierKey, text: &str) -> Checkpoint {
        match self.verified.get(text) {
            Some(cp) => cp.clone(),
            None => key
                .verify(text)
                .expect("checkpoint verifies with the realm key"),
        }
    }
}

fn reference(w: &Workload) -> Reference {
    let fs = SimFs::new();
    let mut receipts = Vec::new();
    w.run(&fs, &mut receipts).expect("reference run");
    let ops = fs.mutating_ops();
    let j = open_in(&fs, w.opts).expect("reopen reference");
    let lines = all_lines(&j);
    let mut ends: HashSet<u64> = receipts.iter().map(|r| r.last_seq + 1).collect();
    ends.insert(0);
    let verified = receipts
        .iter()
        .map(|r| {
            let cp = j
                .verifier()
                .verify(&r.checkpoint)
                .expect("reference receipt verifies");
            (r.checkpoint.clone(), cp)
        })
        .collect();
    Reference {
        receipts,
        lines,
        ops,
        ends,
        verified,
    }
}

/// What the crashes of a scenario came to.
#[derive(Debug, Default)]
struct Tally {
    crash_points: u64,
    crashes: u64,
    /// Journal size after recovery equal to what was acknowledged.
    exactly_acked: u64,
    /// A commit durable but not yet acknowledged survived.
    unacked_commit_survived: u64,
    /// Recovery cut bytes (a torn or unacknowledged tail) off a segment.
    tail_cut: u64,
    /// Recovery removed a segment (an interrupted creation, or one holding
    /// nothing committed).
    segment_removed: u64,
    /// The crash came before the journal existed durably.
    no_journal_yet: u64,
    receipts_checked: u64,
    /// Crashes during the recovery of a crash image (counted apart).
    crashes_in_recovery: u64,
    /// The run completed: the power went off at a write after the last
    /// checkpoint was durable, which does not fail the commit.
    completed: u64,
}

/// One crash: `receipts` are what the interrupted run acknowledged,
/// `img` the crash image.
fn check_crash(
    w: &Workload,
    r: &Reference,
    receipts: &[Receipt],
    img: &Arc<SimFs>,
    seed: u64,
    t: &mut Tally,
) {
    assert_eq!(
        receipts,
        &r.receipts[..receipts.len()],
        "receipts differ from the reference run"
    );
    let existed = img.is_dir(dir());
    if seed.is_multiple_of(10) {
        crash_during_recovery(w, r, receipts, img, seed, t);
    }
    let (segs_before, bytes_before) = segment_bytes(img);
    let mut j = open_in(img, w.opts).unwrap_or_else(|e| panic!("crash image does not open: {e}"));
    let (segs_after, bytes_after) = segment_bytes(img);
    let key = j.verifier().clone();
    let size = j.size();
    let acked = receipts.last().map_or(0, |r| r.last_seq + 1);
    assert!(
        r.ends.contains(&size),
        "recovered size {size} is not a commit boundary"
    );
    let verify = |text: &str| r.verify(&key, text);
    check_journal(&j, receipts, &r.lines, &verify);
    t.crashes += 1;
    t.receipts_checked += receipts.len() as u64;
    if !existed {
        t.no_journal_yet += 1;
    }
    if size == acked {
        t.exactly_acked += 1;
    } else {
        t.unacked_commit_survived += 1;
    }
    if segs_after < segs_before {
        t.segment_removed += 1;
    }
    if bytes_after < bytes_before && segs_after == segs_before {
        t.tail_cut += 1;
    }

    // Recovery left a writable journal: append, then lose power again.
    let extra = events("after-crash", 3, 50);
    let more = commit(&mut j, 100_000, &extra).expect("append after recovery");
    assert_eq!(more.first_seq, size);
    let mut lines: Vec<Vec<u8>> = r.lines[..size as usize].to_vec();
    lines.extend(lines_from(&j, size));
    drop(j);
    let img2 = img.crash_image(seed ^ 0x5eed);
    let j2 = open_in(&img2, w.opts)
        .unwrap_or_else(|e| panic!("image after the post-recovery append does not open: {e}"));
    assert_eq!(j2.size(), size + 3, "the post-recovery append was lost");
    let mut all = receipts.to_vec();
    all.push(more);
    check_journal(&j2, &all, &lines, &verify);
}

/// The power fails again while the journal in `img` recovers (at every
/// mutating operation of its open): the next open must still work and keep
/// every receipt. `img` is left untouched.
fn crash_during_recovery(
    w: &Workload,
    r: &Reference,
    receipts: &[Receipt],
    img: &Arc<SimFs>,
    seed: u64,
    t: &mut Tally,
) {
    // Everything in a crash image is durable: its own crash images are
    // exact copies.
    let copy = img.crash_image(0);
    drop(open_in(&copy, w.opts).expect("crash image opens"));
    let open_ops = copy.mutating_ops();
    for m in 1..=open_ops {
        let fs = img.crash_image(0);
        fs.power_off_after(m);
        assert!(open_in(&fs, w.opts).is_err(), "open survived a power loss");
        let again = fs.crash_image(seed.wrapping_add(m));
        let j = open_in(&again, w.opts)
            .unwrap_or_else(|e| panic!("does not open after a crash during recovery: {e}"));
        assert!(r.ends.contains(&j.size()));
        let key = j.verifier().clone();
        check_journal(&j, receipts, &r.lines, &|text: &str| r.verify(&key, text));
        t.crashes_in_recovery += 1;
    }
}

/// Runs `seeds` workloads, crashing each at every mutating operation.
fn crash_everywhere(name: &str, seeds: std::ops::Range<u64>, make: impl Fn(u64) -> Workload) {
    let start = Instant::now();
    let mut t = Tally::default();
    let mut ops_total = 0;
    for seed in seeds.clone() {
        let w = make(seed);
        let r = reference(&w);
        ops_total += r.ops;
        for k in 1..=r.ops {
            let fs = SimFs::new();
            fs.power_off_after(k);
            let mut receipts = Vec::new();
            // The run fails at the power loss, except when the lost write
            // is one that cannot fail a commit any more (the tree hashes or
            // the mark of the last commit, written after its checkpoint).
            if w.run(&fs, &mut receipts).is_ok() {
                assert_eq!(receipts.len(), w.batches.len());
                t.completed += 1;
            }
            t.crash_points += 1;
            let img_seed = seed.wrapping_mul(1_000_003).wrapping_add(k);
            let img = fs.crash_image(img_seed);
            check_crash(&w, &r, &receipts, &img, img_seed, &mut t);
        }
    }
    eprintln!(
        "power loss [{name}]: {} workloads, {} mutating ops, {} crashes in {:.1?}: \
         size == acknowledged {}, unacknowledged commit survived {}, torn/unacked tail cut {}, \
         segment removed {}, crash before the journal existed {}, run completed {}, \
         receipts checked {}; and {} more crashes during the recovery of 1 in 10 of those images",
        seeds.end - seeds.start,
        ops_total,
        t.crashes,
        start.elapsed(),
        t.exactly_acked,
        t.unacked_commit_survived,
        t.tail_cut,
        t.segment_removed,
        t.no_journal_yet,
        t.completed,
        t.receipts_checked,
        t.crashes_in_recovery,
    );
    assert_eq!(t.crashes, t.crash_points);
}

#[test]
fn power_loss_appends_in_one_segment() {
    crash_everywhere("appends, one segment", 0..14, |seed| {
        Workload::new(seed, 30, JournalOptions::default())
    });
}

#[test]
fn power_loss_appends_across_segment_rolls() {
    crash_everywhere("appends, segment rolls", 1000..1012, |seed| {
        Workload::new(seed, 30, small_segments(4096 + (seed % 3) * 4096))
    });
}

// ---- Fault injection: EIO, ENOSPC, damaged derived files. ----

/// Checks crash images of `fs` as it is now: each opens and holds every
/// receipt.
fn check_images(fs: &SimFs, opts: JournalOptions, receipts: &[Receipt], lines: &[Vec<u8>]) {
    for seed in 0..30 {
        let img = fs.crash_image(seed);
        let j = open_in(&img, opts).unwrap_or_else(|e| panic!("image {seed} does not open: {e}"));
        check(&j, receipts, lines);
    }
}

#[test]
fn power_loss_fault_failed_fsync_poisons_and_recover_cuts_the_failed_append() {
    let fs = SimFs::new();
    let mut j = open_in(&fs, JournalOptions::default()).expect("open");
    let r1 = commit(&mut j, 0, &events("a", 10, 40)).expect("append");
    let seg = last_segment(&fs);
    let committed_len = fs.read_file(&seg).expect("segment").len();

    // The blocks' fdatasync fails.
    fs.fail_syncs(1);
    let err = j
        .append(&[EventRef {
            bytes: br#"{"lost":1}"#,
            time_ns: None,
        }])
        .expect_err("an append whose fsync fails is not acknowledged");
    assert!(!err.is_storage_full(), "{err}");
    assert!(j.is_poisoned());
    assert!(!j.poison().expect("poison").storage_full);
    assert!(matches!(
        commit(&mut j, 1, &events("b", 1, 0)),
        Err(JournalError::Poisoned)
    ));
    j.recover().expect("recover");
    assert!(!j.is_poisoned());
    assert_eq!(j.size(), r1.last_seq + 1);
    assert_eq!(
        fs.read_file(&seg).expect("segment").len(),
        committed_len,
        "recover() cut the failed append's bytes"
    );
    let r2 = commit(&mut j, 2, &events("c", 5, 40)).expect("append after recover");
    assert_eq!(r2.first_seq, r1.last_seq + 1);

    // The checkpoint's fdatasync fails (commit in steps).
    let before = fs.read_file(&seg).expect("segment").len();
    let evs = events("d", 4, 10);
    let refs: Vec<EventRef<'_>> = evs
        .iter()
        .map(|b| EventRef {
            bytes: b,
            time_ns: None,
        })
        .collect();
    let p = prepare(REALM, j.size(), &refs, T0, 1).expect("prepare");
    let staged = j.stage_blocks(p).expect("stage blocks");
    staged.sync().expect("blocks synced");
    let staged = j.stage_checkpoint(staged).expect("stage checkpoint");
    fs.fail_syncs(1);
    let err = staged.sync().expect_err("checkpoint fsync fails");
    j.abort_commit(staged, &err);
    assert!(j.is_poisoned());
    j.recover().expect("recover");
    assert_eq!(j.size(), r2.last_seq + 1);
    assert_eq!(fs.read_file(&seg).expect("segment").len(), before);
    let r3 = commit(&mut j, 3, &events("e", 2, 10)).expect("append");
    assert_eq!(r3.first_seq, r2.last_seq + 1);

    let lines = all_lines(&j);
    let receipts = [r1, r2, r3];
    drop(j);
    // Restart, and power losses: all receipted, nothing of the failures.
    let j = open_in(&fs, JournalOptions::default()).expect("reopen");
    assert_eq!(j.size(), lines.len() as u64);
    check(&j, &receipts, &lines);
    drop(j);
    check_images(&fs, JournalOptions::default(), &receipts, &lines);
}

#[test]
fn power_loss_fault_full_disk_poisons_until_space_returns() {
    let fs = SimFs::new();
    let mut j = open_in(&fs, JournalOptions::default()).expect("open");
    let r1 = commit(&mut j, 0, &events("a", 10, 40)).expect("append");
    fs.set_capacity(Some(used_bytes(&fs, Path::new("/")) + 100));
    let err = commit(&mut j, 1, &events("big", 20, 300)).expect_err("disk full");
    assert!(err.is_storage_full(), "{err}");
    assert!(j.is_poisoned());
    assert!(j.poison().expect("poison").storage_full);
    let err = j.recover().expect_err("still full");
    assert!(err.is_storage_full(), "{err}");
    assert!(j.is_poisoned() && j.poison().expect("poison").storage_full);
    // A crash while full loses nothing acknowledged.
    let lines = all_lines(&j);
    check_images(
        &fs,
        JournalOptions::default(),
        std::slice::from_ref(&r1),
        &lines,
    );

    fs.set_capacity(None);
    j.recover().expect("recover once space is back");
    assert!(!j.is_poisoned());
    assert_eq!(j.size(), r1.last_seq + 1);
    let r2 = commit(&mut j, 2, &events("big", 20, 300)).expect("append");
    assert_eq!(r2.first_seq, r1.last_seq + 1);
    let lines = all_lines(&j);
    drop(j);
    let receipts = [r1, r2];
    let j = open_in(&fs, JournalOptions::default()).expect("reopen");
    check(&j, &receipts, &lines);
    drop(j);
    check_images(&fs, JournalOptions::default(), &receipts, &lines);
}

#[test]
fn power_loss_fault_full_disk_during_a_segment_roll() {
    let opts = small_segments(4096);
    let fs = SimFs::new();
    let mut j = open_in(&fs, opts).expect("open");
    let mut receipts = Vec::new();
    // Fill the first segment past its limit: the next commit rolls.
    while fs.read_file(&last_segment(&fs)).expect("segment").len() < 4096 {
        let i = receipts.len() as u64;
        receipts.push(commit(&mut j, i, &events("fill", 8, 100)).expect("append"));
    }
    let segs = segment_bytes(&fs).0;
    // Room for the new file's name but not for its header.
    fs.set_capacity(Some(used_bytes(&fs, Path::new("/"))));
    let err = commit(&mut j, 99, &events("roll", 2, 10)).expect_err("no room for a segment");
    assert!(err.is_storage_full(), "{err}");
    assert!(j.is_poisoned() && j.poison().expect("poison").storage_full);
    assert_eq!(segment_bytes(&fs).0, segs + 1, "an empty segment was left");
    let lines = all_lines(&j);
    // A crash now leaves an empty (or missing) last segment: it opens.
    check_images(&fs, opts, &receipts, &lines);
    assert!(j.recover().expect_err("still full").is_storage_full());

    fs.set_capacity(None);
    j.recover().expect("recover");
    assert_eq!(
        segment_bytes(&fs).0,
        segs,
        "recover() removed the empty segment"
    );
    let r = commit(&mut j, 100, &events("roll", 2, 10)).expect("append rolls now");
    assert_eq!(r.first_seq, j.size() - 2);
    assert_eq!(segment_bytes(&fs).0, segs + 1);
    receipts.push(r);
    let lines = all_lines(&j);
    drop(j);
    let j = open_in(&fs, opts).expect("reopen");
    check(&j, &receipts, &lines);
    drop(j);
    check_images(&fs, opts, &receipts, &lines);
}

/// Commits `batch` on a fresh journal after `first` and returns how much the
/// segment grew: the same bytes another run writes for the same batches.
fn segment_growth(first: &[Vec<u8>], batch: &[Vec<u8>]) -> u64 {
    let fs = SimFs::new();
    let mut j = open_in(&fs, JournalOptions::default()).expect("open");
    commit(&mut j, 0, first).expect("append");
    let before = segment_bytes(&fs).1;
    commit(&mut j, 1, batch).expect("append");
    segment_bytes(&fs).1 - before
}

#[test]
fn power_loss_fault_tree_hash_write_failure_does_not_fail_the_commit() {
    let first = events("first", 250, 30);
    let second = events("second", 20, 30);
    let growth = segment_growth(&first, &second);

    let fs = SimFs::new();
    let mut j = open_in(&fs, JournalOptions::default()).expect("open");
    let r1 = commit(&mut j, 0, &first).expect("append");
    // Exactly room for the commit's segment bytes: the tree hash entry
    // for the first completed tile (written after the checkpoint is
    // durable) does not fit.
    let tree = dir().join("tree.hashes");
    let tree_len = fs.read_file(&tree).expect("tree file").len();
    fs.set_capacity(Some(used_bytes(&fs, Path::new("/")) + growth));
    let r2 = commit(&mut j, 1, &second).expect("the commit is durable: acknowledged");
    assert_eq!(r2.first_seq, 250);
    assert!(j.tree_degraded());
    assert!(!j.is_poisoned());
    assert_eq!(
        fs.read_file(&tree).expect("tree file").len(),
        tree_len,
        "the tree entry was not written"
    );

    // Proofs still hold, read from the records.
    let key = j.verifier().clone();
    let cp1 = key.verify(&r1.checkpoint).expect("verifies");
    let cp2 = key.verify(&r2.checkpoint).expect("verifies");
    let lines = all_lines(&j);
    for seq in [0, 1, 100, 255, 256, 269] {
        let proof = j.inclusion_proof(seq, cp2.size).expect("proof");
        merkle::verify_inclusion(
            &leaf_hash(&lines[seq as usize]),
            seq,
            cp2.size,
            &proof,
            &cp2.root,
        )
        .expect("inclusion proof verifies");
    }
    let proof = j.consistency_proof(cp1.size, cp2.size).expect("proof");
    merkle::verify_consistency(cp1.size, cp2.size, &proof, &cp1.root, &cp2.root)
        .expect("consistency proof verifies");
    let receipts = vec![r1, r2];
    check(&j, &receipts, &lines);
    // Power losses now keep both commits.
    check_images(&fs, JournalOptions::default(), &receipts, &lines);

    // Still full: recover() cannot rebuild the tree hashes yet.
    assert!(j.recover().is_err());
    assert!(j.tree_degraded());
    // Commits keep working meanwhile (more room for the segment only).
    fs.set_capacity(Some(used_bytes(&fs, Path::new("/")) + 4096));
    let r3 = commit(&mut j, 2, &events("third", 3, 10)).expect("append while degraded");
    fs.set_capacity(None);
    j.recover().expect("recover rebuilds the tree hashes");
    assert!(!j.tree_degraded());
    assert!(fs.read_file(&tree).expect("tree file").len() > tree_len);
    let mut receipts = receipts;
    receipts.push(r3);
    let lines = all_lines(&j);
    check(&j, &receipts, &lines);
    drop(j);
    let j = open_in(&fs, JournalOptions::default()).expect("reopen");
    check(&j, &receipts, &lines);
}

#[test]
fn power_loss_fault_reopen_rebuilds_tree_hashes_lost_to_a_full_disk() {
    let first = events("first", 250, 30);
    let second = events("second", 20, 30);
    let growth = segment_growth(&first, &second);
    let fs = SimFs::new();
    let mut j = open_in(&fs, JournalOptions::default()).expect("open");
    let r1 = commit(&mut j, 0, &first).expect("append");
    fs.set_capacity(Some(used_bytes(&fs, Path::new("/")) + growth));
    let r2 = commit(&mut j, 1, &second).expect("append");
    assert!(j.tree_degraded());
    let lines = all_lines(&j);
    drop(j);
    fs.set_capacity(None);
    let j = open_in(&fs, JournalOptions::default()).expect("reopen rebuilds");
    assert!(!j.tree_degraded());
    let tree = fs.read_file(&dir().join("tree.hashes")).expect("tree file");
    assert_eq!(tree.len(), 16 + 36, "one tile's entry rebuilt");
    check(&j, &[r1, r2], &lines);
}

#[test]
fn power_loss_fault_torn_tree_header_and_torn_last_segment_open() {
    let opts = small_segments(4096);
    let fs = SimFs::new();
    let mut j = open_in(&fs, opts).expect("open");
    let mut receipts = Vec::new();
    for i in 0..12 {
        receipts.push(commit(&mut j, i, &events("x", 40, 60)).expect("append"));
    }
    j.sync().expect("sync");
    let lines = all_lines(&j);
    let size = j.size();
    drop(j);
    let tree = dir().join("tree.hashes");
    let tree_bytes = fs.read_file(&tree).expect("tree file");
    assert!(tree_bytes.len() > 16, "some tree entries were written");
    let next_seg = dir().join(format!("{size:020}.seg"));

    type Damage<'a> = Box<dyn Fn(&SimFs) + 'a>;
    let damages: Vec<(&str, Damage<'_>)> = vec![
        (
            "tree header torn",
            Box::new(|fs: &SimFs| {
                let f = fs.open(&tree, OpenHow::ReadWrite).expect("open");
                f.write_at(&[0xAB; 8], 4).expect("write");
            }),
        ),
        (
            "tree file cut inside its header",
            Box::new(|fs: &SimFs| {
                let f = fs.open(&tree, OpenHow::ReadWrite).expect("open");
                f.set_len(7).expect("set_len");
            }),
        ),
        (
            "tree file empty",
            Box::new(|fs: &SimFs| {
                let f = fs.open(&tree, OpenHow::ReadWrite).expect("open");
                f.set_len(0).expect("set_len");
            }),
        ),
        (
            "tree file missing",
            Box::new(|fs: &SimFs| fs.remove_file(&tree).expect("remove")),
        ),
        (
            "empty last segment",
            Box::new(|fs: &SimFs| {
                fs.open(&next_seg, OpenHow::CreateNew { mode: 0o644 })
                    .expect("create");
            }),
        ),
        (
            "last segment cut inside its header",
            Box::new(|fs: &SimFs| {
                let f = fs
                    .open(&next_seg, OpenHow::CreateNew { mode: 0o644 })
                    .expect("create");
                f.write_at(&sealog_journal::segment::segment_header(size)[..11], 0)
                    .expect("write");
            }),
        ),
        (
            "last segment header zero-filled",
            Box::new(|fs: &SimFs| {
                let f = fs
                    .open(&next_seg, OpenHow::CreateNew { mode: 0o644 })
                    .expect("create");
                f.set_len(32).expect("set_len");
            }),
        ),
        (
            "last segment with a header and nothing else",
            Box::new(|fs: &SimFs| {
                let f = fs
                    .open(&next_seg, OpenHow::CreateNew { mode: 0o644 })
                    .expect("create");
                f.write_at(&sealog_journal::segment::segment_header(size), 0)
                    .expect("write");
            }),
        ),
    ];
    for (what, damage) in &damages {
        // Each damage on its own durable copy of the journal.
        let img = fs.crash_image(0);
        damage(&img);
        let mut j = open_in(&img, opts).unwrap_or_else(|e| panic!("{what}: does not open: {e}"));
        check(&j, &receipts, &lines);
        // Proofs use the rebuilt tree.
        let cp = j
            .latest_checkpoint()
            .expect("checkpoint")
            .checkpoint
            .clone();
        let proof = j.inclusion_proof(3, size).expect("proof");
        merkle::verify_inclusion(&leaf_hash(&lines[3]), 3, size, &proof, &cp.root)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            img.read_file(&tree).expect("tree file"),
            tree_bytes,
            "{what}: tree file rebuilt"
        );
        // And it takes writes, rolling into the name the torn segment had.
        let r = commit(&mut j, 50, &events("y", 2, 10)).expect("append");
        assert_eq!(r.first_seq, size, "{what}");
        drop(j);
        let j = open_in(&img.crash_image(1), opts).expect("reopen");
        let mut all = receipts.clone();
        all.push(r);
        let mut more = lines.clone();
        more.extend(lines_from(&j, size));
        check(&j, &all, &more);
    }
}

/// A durable image of a journal after committing `batches` (fixed times),
/// its last segment's bytes and the last receipt.
fn journal_after(batches: &[Vec<Vec<u8>>]) -> (Arc<SimFs>, Vec<u8>, Receipt) {
    let fs = SimFs::new();
    let mut j = open_in(&fs, JournalOptions::default()).expect("open");
    let mut last = None;
    for (i, b) in batches.iter().enumerate() {
        last = Some(commit(&mut j, i as u64, b).expect("append"));
    }
    j.sync().expect("sync");
    drop(j);
    let seg = fs.read_file(&last_segment(&fs)).expect("segment");
    (fs.crash_image(0), seg, last.expect("a commit"))
}

/// Opens `img` with `tail` written after its segment's `at` bytes.
fn open_with_tail(
    img: &SimFs,
    at: usize,
    tail: &[u8],
) -> (Arc<SimFs>, Result<Journal, JournalError>) {
    let fs = img.crash_image(0);
    fs.open(&last_segment(&fs), OpenHow::ReadWrite)
        .expect("open")
        .write_at(tail, at as u64)
        .expect("write");
    let j = open_in(&fs, JournalOptions::default());
    (fs, j)
}

/// Zeros `bytes` (which start at file offset `at`) from its start to the
/// next 512-byte boundary: the first sector of the write lost.
fn lose_first_sector(bytes: &mut [u8], at: usize) {
    let end = ((at / 512 + 1) * 512 - at).min(bytes.len());
    bytes[..end].fill(0);
}

#[test]
fn power_loss_fault_torn_commit_with_a_lost_first_sector_is_cut_and_damage_is_not() {
    let a = events("a", 5, 40);
    let (img_a, seg_a, _) = journal_after(std::slice::from_ref(&a));
    let at = seg_a.len();
    // A second commit whose checkpoint frame straddles a sector boundary.
    let (tail, cp_len) = (20..80)
        .find_map(|n| {
            let (_, seg_ab, r) = journal_after(&[a.clone(), events("b", n, 120)]);
            let cp_len = 48 + r.checkpoint.len();
            let cp_at = seg_ab.len() - cp_len;
            (cp_at / 512 != (seg_ab.len() - 1) / 512).then(|| (seg_ab[at..].to_vec(), cp_len))
        })
        .expect("a checkpoint frame across a sector boundary");
    let blocks_len = tail.len() - cp_len;
    assert!(blocks_len > 1024, "the blocks span sectors");
    let seg = last_segment(&img_a);

    // The blocks' write torn: its first sector lost, later ones kept (the
    // file does not end in zeros). Never acknowledged: cut.
    let mut torn = tail[..blocks_len].to_vec();
    lose_first_sector(&mut torn, at);
    let (fs, j) = open_with_tail(&img_a, at, &torn);
    let j = j.expect("torn blocks are cut, not refused");
    assert_eq!(j.size(), 5);
    assert_eq!(fs.read_file(&seg).expect("segment").len(), at);

    // The blocks durable, the checkpoint's write torn: its first sector
    // lost, its last kept (the file ends in the note's newline).
    let mut torn = tail.clone();
    lose_first_sector(&mut torn[blocks_len..], at + blocks_len);
    assert_eq!(torn.last(), Some(&b'\n'));
    let (fs, j) = open_with_tail(&img_a, at, &torn);
    let j = j.expect("a torn checkpoint is cut, not refused");
    assert_eq!(j.size(), 5);
    assert_eq!(fs.read_file(&seg).expect("segment").len(), at);

    // The same commit whole but for one flipped byte in its checkpoint
    // note is damage to what may have been acknowledged: refused.
    let mut damaged = tail.clone();
    let n = damaged.len();
    damaged[n - 10] ^= 0x20;
    let (_, j) = open_with_tail(&img_a, at, &damaged);
    let err = j.expect_err("damage is refused");
    assert!(matches!(err, JournalError::Corrupt { .. }), "{err}");
}
