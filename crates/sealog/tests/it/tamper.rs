//! Tampering with a realm's files on disk: `sealog verify` must exit 1 and
//! name the first bad seq in every case.

use std::fs::OpenOptions;

use ed25519_dalek::SigningKey;
use sealog_journal::checkpoint::Signer;
use sealog_journal::tamper::{self, Hints};

use crate::util::{events, path_str, Run, Sealog};

/// A realm with 3000 records in three commits (checkpoints at 1000, 2000,
/// 3000); returns the client's saved checkpoint and receipts paths.
fn setup() -> (Sealog, std::path::PathBuf, std::path::PathBuf) {
    let s = Sealog::new();
    s.realm("acme");
    let f = s.file("in.ndjson", &events(0, 3000));
    let receipts = s.dir.path().join("receipts.ndjson");
    s.run(&[
        "ingest",
        "--realm",
        "acme",
        path_str(&f),
        "--batch",
        "1000",
        "--receipts-out",
        path_str(&receipts),
    ])
    .ok();
    let cp = s.run(&["checkpoint", "--realm", "acme"]).ok();
    let saved = s.file("client.checkpoint", cp.stdout.as_bytes());
    s.run(&[
        "verify",
        "--realm",
        "acme",
        "--checkpoint",
        path_str(&saved),
    ])
    .ok();
    (s, saved, receipts)
}

fn verify(s: &Sealog, extra: &[&str]) -> Run {
    let mut args = vec!["verify", "--realm", "acme"];
    args.extend_from_slice(extra);
    s.run(&args)
}

fn assert_fails_at(r: &Run, what: &str) {
    assert_eq!(
        r.code, 1,
        "verify must fail\nstdout: {}\nstderr: {}",
        r.stdout, r.stderr
    );
    assert!(
        r.stderr.contains(&format!("first bad {what}")),
        "expected 'first bad {what}' in:\n{}",
        r.stderr
    );
}

#[test]
fn flipped_byte_on_disk() {
    let (s, _, _) = setup();
    let seg = s.segment("acme");
    let (body, first, len) = tamper::block_body_offset(&seg, 1500).expect("block");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&seg)
        .expect("open");
    use std::os::unix::fs::FileExt;
    let at = body + u64::from(len) - 40;
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).expect("read");
    f.write_all_at(&[b[0] ^ 0x01], at).expect("write");
    let r = verify(&s, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    // The damaged block is named; when it still decompresses, the exact record.
    let named: u64 = r
        .stderr
        .split("first bad seq ")
        .nth(1)
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .expect("a seq is named");
    assert!(
        (first..first + 1024).contains(&named),
        "named {named}, block starts {first}: {}",
        r.stderr
    );
    assert!(r.stderr.contains("damaged"), "{}", r.stderr);
}

#[test]
fn edited_record() {
    let (s, _, _) = setup();
    tamper::rewrite_blocks(&s.segment("acme"), Hints::Keep, |first, lines| {
        for (i, l) in lines.iter_mut().enumerate() {
            if first + i as u64 == 1234 {
                let text =
                    String::from_utf8_lossy(l).replace("event number 1234", "event number 9999");
                *l = text.into_bytes();
            }
        }
    })
    .expect("tamper");
    assert_fails_at(&verify(&s, &[]), "seq 1234:");
}

#[test]
fn edited_record_with_every_hash_recomputed_is_caught_by_the_signed_checkpoint() {
    let (s, _, _) = setup();
    tamper::rewrite_blocks(&s.segment("acme"), Hints::Recompute, |first, lines| {
        for (i, l) in lines.iter_mut().enumerate() {
            if first + i as u64 == 1234 {
                let text =
                    String::from_utf8_lossy(l).replace("event number 1234", "event number 9999");
                *l = text.into_bytes();
            }
        }
    })
    .expect("tamper");
    std::fs::remove_file(s.data().join("realms/acme/journal/tree.hashes")).expect("rm");
    // Only the checkpoint signed at 2000 can tell: the range after the last good one.
    assert_fails_at(&verify(&s, &[]), "seq 1000 (range 1000..2000)");
}

#[test]
fn deleted_record() {
    let (s, _, _) = setup();
    tamper::rewrite_blocks(&s.segment("acme"), Hints::Recompute, |first, lines| {
        if (first..first + lines.len() as u64).contains(&1500) {
            lines.remove((1500 - first) as usize);
        }
    })
    .expect("tamper");
    assert_fails_at(&verify(&s, &[]), "seq 1500:");
}

#[test]
fn swapped_records() {
    let (s, _, _) = setup();
    tamper::rewrite_blocks(&s.segment("acme"), Hints::Recompute, |first, lines| {
        if (first..first + lines.len() as u64 - 1).contains(&1500) {
            let i = (1500 - first) as usize;
            lines.swap(i, i + 1);
        }
    })
    .expect("tamper");
    assert_fails_at(&verify(&s, &[]), "seq 1500:");
}

#[test]
fn inserted_record() {
    let (s, _, _) = setup();
    tamper::rewrite_blocks(&s.segment("acme"), Hints::Recompute, |first, lines| {
        if (first..first + lines.len() as u64).contains(&1500) {
            let i = (1500 - first) as usize;
            // A forged record made to look like seq 1500.
            let forged =
                String::from_utf8_lossy(&lines[i]).replace("event number", "forged number");
            lines.insert(i, forged.into_bytes());
        }
    })
    .expect("tamper");
    assert_fails_at(&verify(&s, &[]), "seq 1500:");
}

#[test]
fn truncated_log_against_a_client_checkpoint_and_receipts() {
    let (s, saved, receipts) = setup();
    let seg = s.segment("acme");
    let ends = tamper::checkpoint_ends(&seg).expect("ends");
    let (size, end) = ends[0];
    assert_eq!(size, 1000);
    let f = OpenOptions::new().write(true).open(&seg).expect("open");
    f.set_len(end).expect("truncate");
    drop(f);
    std::fs::remove_file(s.data().join("realms/acme/journal/tree.hashes")).expect("rm");
    // A clean cut at a checkpoint: the realm's signed high-water mark
    // (kept apart from the segments) catches it without any client
    // evidence; the client's checkpoint or receipts must catch it too.
    let r = verify(&s, &[]);
    assert_fails_at(&r, "seq 1000 (range 1000..3000)");
    assert!(r.stderr.contains("high-water mark"), "{}", r.stderr);
    let r = verify(&s, &["--checkpoint", path_str(&saved)]);
    assert_fails_at(&r, "seq 1000 (range 1000..3000)");
    assert!(r.stderr.contains("missing"), "{}", r.stderr);
    let r = verify(&s, &["--receipts", path_str(&receipts)]);
    assert_fails_at(&r, "seq 1000 (range 1000..2000)");

    // A cut in the middle of a frame is the same to the verifier.
    let f = OpenOptions::new().write(true).open(&seg).expect("open");
    f.set_len(end - 7).expect("truncate");
    drop(f);
    let r = verify(&s, &["--checkpoint", path_str(&saved)]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("missing"), "{}", r.stderr);
}

#[test]
fn checkpoint_signed_with_another_key() {
    let (s, _, _) = setup();
    let forger = Signer::new("sealog/acme", SigningKey::from_bytes(&[9; 32]));
    tamper::resign_checkpoints(&s.segment("acme"), &forger).expect("tamper");
    let r = verify(&s, &[]);
    assert_fails_at(&r, "seq 0 (range 0..1000)");
    assert!(r.stderr.contains("no signature by key"), "{}", r.stderr);
}
