//! Crash test: SIGKILL `sealog ingest` at random moments, then check that
//! the log verifies and holds every record a receipt was printed for.

use std::process::Stdio;
use std::time::Duration;

use crate::util::{events, path_str, Sealog};

#[test]
fn sigkill_during_ingest_loses_nothing_acknowledged() {
    let s = Sealog::new();
    s.realm("crash");
    let input = s.file("in.ndjson", &events(0, 60_000));
    let receipts = s.dir.path().join("receipts.ndjson");
    let printed = s.dir.path().join("printed.ndjson");
    // Time one whole run first (it is also the first round's data), then
    // spread the kills over that duration.
    let t = std::time::Instant::now();
    s.run(&[
        "ingest",
        "--realm",
        "crash",
        path_str(&input),
        "--batch",
        "500",
    ])
    .ok();
    let full = t.elapsed().as_millis().max(20) as u64;
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut killed_mid_run = 0;
    for round in 0..24 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // The first half of a run: under a busy machine the timed run is slow.
        let delay = Duration::from_millis(x % (full / 2 + 1));
        let mut child = s
            .cmd(&[
                "ingest",
                "--realm",
                "crash",
                path_str(&input),
                "--batch",
                "500",
                "--receipts-out",
                path_str(&receipts),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(delay);
        let finished = child.try_wait().expect("poll").is_some();
        if !finished {
            killed_mid_run += 1;
        }
        child.kill().ok(); // SIGKILL
        let out = child.wait_with_output().expect("wait");
        // A receipt printed on stdout by a run that finished is evidence too.
        let stdout = String::from_utf8_lossy(&out.stdout);
        if let Some(line) = stdout.lines().find(|l| l.starts_with('{')) {
            let mut all = std::fs::read_to_string(&printed).unwrap_or_default();
            all.push_str(line);
            all.push('\n');
            std::fs::write(&printed, all).expect("write");
        }
        let mut args = vec!["verify", "--realm", "crash"];
        if receipts.exists() {
            args.extend(["--receipts", path_str(&receipts)]);
        }
        if printed.exists() {
            args.extend(["--receipts", path_str(&printed)]);
        }
        let v = s.run(&args);
        assert_eq!(
            v.code, 0,
            "round {round} (kill after {delay:?}): {}\n{}",
            v.stdout, v.stderr
        );
    }
    eprintln!("crash test: {killed_mid_run} of 24 rounds killed mid-run (full run {full} ms)");
    assert!(
        killed_mid_run >= 8,
        "most rounds must be killed mid-run, got {killed_mid_run}"
    );
    // Every receipted range is present and the log continues densely.
    let last = std::fs::read_to_string(&receipts)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["last_seq"].as_u64())
        .max()
        .expect("some commits were receipted");
    let q = s
        .run(&["query", "--realm", "crash", "--newest", "--limit", "1"])
        .ok();
    let newest: serde_json::Value = serde_json::from_str(q.stdout.trim()).expect("json");
    assert!(newest["seq"].as_u64().expect("seq") >= last);
    let all = s.run(&["query", "--realm", "crash"]).ok();
    for (i, line) in all.stdout.lines().enumerate() {
        assert!(
            line.contains(&format!("\"seq\":{i},")),
            "seq {i} missing or out of place"
        );
    }
}
