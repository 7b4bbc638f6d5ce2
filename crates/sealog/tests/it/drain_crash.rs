//! kill -9 of `sealog serve` while a drain delivers to a slow receiver:
//! after a restart the drain resumes from its saved cursor and every seq
//! arrives at least once (repeats allowed, gaps not).

use std::collections::BTreeSet;
use std::io::Read;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::{Sealog, Served};

/// A receiver that reads slowly (about 2 MB/s) and keeps every seq it saw,
/// and the first seq of each connection.
#[allow(clippy::type_complexity)]
fn slow_receiver() -> (u16, Arc<Mutex<Vec<u64>>>, Arc<Mutex<Vec<u64>>>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let firsts = Arc::new(Mutex::new(Vec::new()));
    let (sink, first) = (seen.clone(), firsts.clone());
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let (sink, first) = (sink.clone(), first.clone());
            std::thread::spawn(move || {
                let mut fresh = true;
                let mut buf = [0u8; 4096];
                let mut carry = String::new();
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    carry.push_str(&String::from_utf8_lossy(&buf[..n]));
                    while let Some(at) = carry.find('\n') {
                        let line: String = carry.drain(..=at).collect();
                        if let Some(seq) = line
                            .split("seq=\"")
                            .nth(1)
                            .and_then(|r| r.split('"').next())
                            .and_then(|v| v.parse().ok())
                        {
                            if std::mem::take(&mut fresh) {
                                first.lock().expect("lock").push(seq);
                            }
                            sink.lock().expect("lock").push(seq);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            });
        }
    });
    (port, seen, firsts)
}

#[test]
fn kill_9_mid_delivery_repeats_but_never_skips() {
    let s = Sealog::new();
    let realm = s.realm("dr");
    let w = realm["write_token"].as_str().expect("token").to_string();
    let records: String = (0..20_000)
        .map(|i| {
            format!(
                "{{\"app\":\"api\",\"space\":\"prod\",\"msg\":\"record {i} {}\"}}\n",
                "x".repeat(120)
            )
        })
        .collect();
    let f = s.file("in.ndjson", records.as_bytes());
    s.run(&["ingest", "--realm", "dr", f.to_str().expect("path")])
        .ok();
    // No resend window: the saved cursor is exactly what was written, so
    // the restart resumes from the cursor file itself.
    let conf = s.file(
        "sealog.toml",
        b"[drains]\nresend_window_secs = 0\nmax_backoff_secs = 1\n",
    );
    let args = ["--config", conf.to_str().expect("path")];
    let (port, seen, firsts) = slow_receiver();
    let server = Served::start_with(&s, &args, None);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let http = reqwest::Client::new();
    let r = rt.block_on(
        http.post(format!("{}/apps/api-prod/log-drains", server.base))
            .header("authorization", &w)
            .json(&serde_json::json!({"url": format!("syslog://127.0.0.1:{port}")}))
            .send(),
    );
    assert_eq!(r.expect("send").status(), 201);
    // Kill -9 once some, not all, records arrived.
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.lock().expect("lock").len() < 2_000 {
        assert!(Instant::now() < deadline, "the drain did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Let the cursor be saved at least once past the start.
    let saved_path = || {
        std::fs::read_dir(s.data().join("drains"))
            .ok()?
            .filter_map(Result::ok)
            .find(|e| e.path().extension().is_some_and(|x| x == "cursor"))
            .map(|e| e.path())
    };
    while saved_path()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .is_none_or(|t| t.contains("\"cursor\": 0,"))
    {
        assert!(Instant::now() < deadline, "no cursor was saved");
        std::thread::sleep(Duration::from_millis(5));
    }
    let at_kill = seen.lock().expect("lock").len();
    drop(server); // SIGKILL
    assert!(at_kill < 20_000, "killed mid-delivery ({at_kill} seen)");
    let cursor = std::fs::read_to_string(saved_path().expect("a saved cursor")).expect("cursor");
    let saved: u64 = cursor
        .split("\"cursor\":")
        .nth(1)
        .and_then(|r| r.trim().split([',', '\n']).next())
        .and_then(|v| v.trim().parse().ok())
        .expect("cursor value");
    assert!(saved > 0, "a cursor was saved before the kill: {cursor}");
    // Restart, add more records, and wait for all of them.
    let server = Served::start_with(&s, &args, None);
    let more: String = (20_000..21_000)
        .map(|i| format!("{{\"app\":\"api\",\"space\":\"prod\",\"msg\":\"record {i}\"}}\n"))
        .collect();
    let r = rt.block_on(
        http.post(format!("{}/v1/ingest", server.base))
            .bearer_auth(&w)
            .body(more)
            .send(),
    );
    assert_eq!(r.expect("send").status(), 200);
    let want: BTreeSet<u64> = (0..21_000).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let have: BTreeSet<u64> = seen.lock().expect("lock").iter().copied().collect();
        if want.is_subset(&have) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "missing after restart: {:?}",
            want.difference(&have).take(10).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let total = seen.lock().expect("lock").len();
    eprintln!(
        "drain kill -9: {at_kill} lines before the kill, cursor saved at {saved}, {total} lines in all for 21,000 records ({} repeats)",
        total - 21_000
    );
    // The restarted drain's first connection starts at the saved cursor:
    // it repeats what followed it, and nothing before.
    let firsts = firsts.lock().expect("lock").clone();
    assert_eq!(firsts.first(), Some(&0), "{firsts:?}");
    assert_eq!(firsts.get(1), Some(&saved), "{firsts:?}");
    server.stop();
}
