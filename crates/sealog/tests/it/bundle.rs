//! `sealog verify-bundle` on untrusted input: bounded memory and time
//! whatever the file holds, and every kind of damage refused precisely.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{bin, events, path_str, Run, Sealog};

/// Address space allowed to a guarded run: a safety net, so that a
/// regression fails the test quickly instead of waking the OOM killer.
const ULIMIT_V_KIB: u64 = 512 * 1024;
/// Peak resident memory allowed to verify-bundle.
const MAX_RSS_KIB: u64 = 64 * 1024;

struct Guarded {
    run: Run,
    /// Peak RSS, when `/usr/bin/time -v` could measure it.
    max_rss_kib: Option<u64>,
    elapsed: Duration,
}

/// Runs `script` with `sh -c` under `ulimit -v`, `$SEALOG` naming the
/// binary prefixed by `/usr/bin/time -v` when present; kills it after
/// `limit`.
fn guarded(dir: &Path, script: &str, args: &[&str], limit: Duration) -> Guarded {
    let time = Path::new("/usr/bin/time");
    let timed = time.exists()
        && Command::new(time)
            .args(["-v", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    let sealog = if timed {
        format!("/usr/bin/time -v {}", bin())
    } else {
        bin().to_string()
    };
    let (out, err) = (dir.join("guarded.out"), dir.join("guarded.err"));
    let start = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {ULIMIT_V_KIB} || exit 99; {script}"))
        .arg("sh")
        .args(args)
        .env("SEALOG", sealog)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("out"))
        .stderr(std::fs::File::create(&err).expect("err"))
        .spawn()
        .expect("spawn sh");
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{script} {args:?} still running after {limit:?}: {}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = start.elapsed();
    let stderr = std::fs::read_to_string(&err).expect("stderr");
    let max_rss_kib = stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|n| n.parse().ok());
    // With time -v the exit code is sealog's; time says so when it died of a signal.
    assert!(
        !stderr.contains("Command terminated by signal"),
        "killed: {stderr}"
    );
    assert_ne!(status.code(), Some(99), "ulimit -v refused: {stderr}");
    Guarded {
        run: Run {
            code: status.code().unwrap_or(-1),
            stdout: std::fs::read_to_string(&out).expect("stdout"),
            stderr,
        },
        max_rss_kib,
        elapsed,
    }
}

fn assert_bounded(g: &Guarded, what: &str) {
    if let Some(kib) = g.max_rss_kib {
        eprintln!("{what}: peak RSS {kib} KiB in {:?}", g.elapsed);
        assert!(
            kib < MAX_RSS_KIB,
            "{what}: peak RSS {kib} KiB, over {MAX_RSS_KIB}"
        );
    } else {
        eprintln!("{what}: no /usr/bin/time; bounded by ulimit -v {ULIMIT_V_KIB} KiB only");
    }
}

/// A realm `acme` of `n` records and a bundle of seqs `from..=to`; returns
/// the bundle's path and the realm's key.
fn exported(s: &Sealog, n: u64, from: u64, to: u64) -> (PathBuf, String) {
    let realm = s.realm("acme");
    let f = s.file("in.ndjson", &events(0, n));
    s.run(&["ingest", "--realm", "acme", path_str(&f)]).ok();
    let bundle = s.dir.path().join("slice.bundle");
    s.run(&[
        "export",
        "--realm",
        "acme",
        "--from-seq",
        &from.to_string(),
        "--to-seq",
        &to.to_string(),
        "--out",
        path_str(&bundle),
    ])
    .ok();
    let key = realm["public_key"].as_str().expect("key").to_string();
    (bundle, key)
}

fn verify_bytes(s: &Sealog, name: &str, bytes: &[u8], key: &str) -> Run {
    let p = s.file(name, bytes);
    s.run(&["verify-bundle", path_str(&p), "--key", key])
}

fn assert_fails(r: &Run, code: i32, needle: &str) {
    assert_eq!(
        r.code, code,
        "expected exit {code} with {needle:?}\nstdout: {}\nstderr: {}",
        r.stdout, r.stderr
    );
    assert!(
        r.stderr.contains(needle),
        "expected {needle:?} in {}",
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}

#[test]
fn dev_zero_is_not_a_bundle_and_memory_stays_bounded() {
    let s = Sealog::new();
    let key = s.realm("acme")["public_key"]
        .as_str()
        .expect("key")
        .to_string();
    let g = guarded(
        s.dir.path(),
        r#"exec $SEALOG verify-bundle /dev/zero --key "$1""#,
        &[&key],
        Duration::from_secs(30),
    );
    assert_fails(&g.run, 2, "not a sealog-bundle");
    assert!(g.run.stderr.contains("/dev/zero"), "{}", g.run.stderr);
    assert!(g.elapsed < Duration::from_secs(10), "{:?}", g.elapsed);
    assert_bounded(&g, "/dev/zero");
}

#[test]
fn endless_record_after_a_valid_header_is_refused_in_bounded_memory() {
    let s = Sealog::new();
    let (bundle, key) = exported(&s, 50, 10, 19);
    let text = std::fs::read(&bundle).expect("read");
    let nl = text.iter().position(|b| *b == b'\n').expect("header");
    let header = s.file("header.line", &text[..=nl]);
    // A header, then zeros without end: one record longer than any stored.
    let g = guarded(
        s.dir.path(),
        r#"cat "$1" /dev/zero | $SEALOG verify-bundle /dev/stdin --key "$2""#,
        &[path_str(&header), &key],
        Duration::from_secs(60),
    );
    assert_fails(&g.run, 1, "first bad seq 10: record is longer than");
    assert_bounded(&g, "header + /dev/zero");
    // A header, then empty lines without end: reading stops after the
    // declared count.
    let g = guarded(
        s.dir.path(),
        r#"(cat "$1"; yes '') | $SEALOG verify-bundle /dev/stdin --key "$2""#,
        &[path_str(&header), &key],
        Duration::from_secs(60),
    );
    assert_fails(&g.run, 1, "record at position 10 claims no seq");
    assert!(
        g.run
            .stderr
            .contains("also: seq 20: bundle has data after the 10 records"),
        "{}",
        g.run.stderr
    );
    assert_bounded(&g, "header + endless newlines");
}

#[test]
fn truncated_bundles_are_refused_naming_the_cut() {
    let s = Sealog::new();
    let (bundle, key) = exported(&s, 300, 50, 249);
    let text = std::fs::read(&bundle).expect("read");
    verify_bytes(&s, "whole.bundle", &text, &key).ok();
    let nl = text.iter().position(|b| *b == b'\n').expect("header");
    // Start of each record line, by seq.
    let starts: Vec<usize> = std::iter::once(nl + 1)
        .chain(
            text.iter()
                .enumerate()
                .skip(nl + 1)
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    assert_eq!(starts.len(), 201, "200 records, then the end");
    let cases: &[(usize, i32, &str)] = &[
        // Too little is left to tell it was a bundle: an input error.
        (5, 2, "not a sealog-bundle"),
        (nl / 2, 1, "first bad seq 0: bundle ends inside its header"),
        (
            nl,
            1,
            "bundle ends after its header line, which has no newline",
        ),
        (
            nl + 1,
            1,
            "first bad seq 50 (range 50..250): bundle holds 0 records, header says 200",
        ),
        (
            starts[120],
            1,
            "first bad seq 170 (range 170..250): bundle holds 120 records, header says 200",
        ),
        (
            starts[120] + 17,
            1,
            "first bad seq 170 (range 170..250): bundle ends inside this record",
        ),
        (
            text.len() - 1,
            1,
            "first bad seq 249: bundle ends inside this record",
        ),
    ];
    for (i, (cut, code, needle)) in cases.iter().enumerate() {
        let r = verify_bytes(&s, &format!("cut{i}.bundle"), &text[..*cut], &key);
        assert_fails(&r, *code, needle);
    }
    // Records past the declared count are refused too.
    let mut longer = text.clone();
    longer.extend_from_slice(&text[starts[0]..starts[1]]);
    let r = verify_bytes(&s, "longer.bundle", &longer, &key);
    assert_fails(&r, 1, "seq 250: bundle has data after the 200 records");
}

#[test]
fn huge_declared_numbers_are_refused_at_once() {
    let s = Sealog::new();
    let (bundle, key) = exported(&s, 300, 50, 249);
    let text = std::fs::read(&bundle).expect("read");
    let nl = text.iter().position(|b| *b == b'\n').expect("header");
    let header: serde_json::Value = serde_json::from_slice(&text[..nl]).expect("header");
    let with = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| -> Run {
        let mut h = header.clone();
        edit(&mut h);
        let mut bytes = serde_json::to_vec(&h).expect("json");
        bytes.extend_from_slice(&text[nl..]);
        let start = Instant::now();
        let r = verify_bytes(&s, name, &bytes, &key);
        assert!(start.elapsed() < Duration::from_secs(10), "{name}");
        r
    };
    let r = with("huge-count.bundle", &|h| {
        h["to_seq"] = serde_json::json!(50u64 + 1_000_000_000_000_000_000);
        h["records"] = serde_json::json!(1_000_000_000_000_000_001u64);
    });
    assert_fails(
        &r,
        1,
        "range ends at 1000000000000000050, beyond the 300 records",
    );
    let r = with("max-count.bundle", &|h| {
        h["from_seq"] = serde_json::json!(0);
        h["to_seq"] = serde_json::json!(u64::MAX);
        h["records"] = serde_json::json!(u64::MAX);
    });
    assert_fails(&r, 1, "seq range and record count disagree");
    let r = with("many-hashes.bundle", &|h| {
        h["range_proof"] = serde_json::json!(vec!["AAAA"; 500]);
    });
    assert_fails(
        &r,
        1,
        "range proof has 500 hashes; no tree needs more than 128",
    );
    let r = with("long-header.bundle", &|h| {
        h["range_proof"] = serde_json::json!(vec![format!("{}=", "A".repeat(43)); 3000]);
    });
    assert_fails(&r, 1, "bundle header is longer than 65536 bytes");
}

#[test]
fn large_bundle_verifies_in_bounded_memory() {
    let s = Sealog::new();
    let (bundle, key) = exported(&s, 200_000, 0, 199_999);
    let g = guarded(
        s.dir.path(),
        r#"exec $SEALOG verify-bundle "$1" --key "$2""#,
        &[path_str(&bundle), &key],
        Duration::from_secs(120),
    );
    assert_eq!(g.run.code, 0, "{}", g.run.stderr);
    assert!(
        g.run
            .stdout
            .contains("ok: 200000 records (seqs 0..=199999) of realm acme"),
        "{}",
        g.run.stdout
    );
    assert_bounded(&g, "200,000 records");
    // One character of one record changed: refused, naming the range.
    let text = std::fs::read_to_string(&bundle).expect("read");
    let forged = text.replacen("event number 123456\"", "event number 123457\"", 1);
    assert_ne!(forged, text);
    let r = verify_bytes(&s, "forged.bundle", forged.as_bytes(), &key);
    assert_fails(
        &r,
        1,
        "first bad seq 0 (range 0..200000): records 0..200000 do not match the checkpoint",
    );
}
