//! kill -9 of `sealog serve` under concurrent HTTP load: after a restart,
//! every record from a 200 response is present and `verify` passes.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::util::Sealog;

// The child is returned to the caller, which kills and waits for it.
#[allow(clippy::zombie_processes)]
fn start(s: &Sealog) -> (Child, String) {
    let _ = std::fs::remove_file(s.data().join("server.json"));
    let mut child = s
        .cmd(&["serve", "--http", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(s.data().join("server.json")) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                let addr = v["http"].as_str().expect("http").to_string();
                return (child, format!("http://{addr}"));
            }
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("server did not start within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kill_9_under_load_loses_no_acknowledged_record() {
    let s = Sealog::new();
    let (mut server, base) = start(&s);
    let admin = std::fs::read_to_string(s.data().join("admin.token")).expect("admin token");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let http = reqwest::Client::new();
    let realm: serde_json::Value = rt.block_on(async {
        http.post(format!("{base}/v1/admin/realms"))
            .bearer_auth(admin.trim())
            .json(&serde_json::json!({"name": "crash"}))
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json")
    });
    let w = realm["write_token"].as_str().expect("token").to_string();
    // 8 writers POST 200-record batches as fast as they can; each writer
    // records the marker ids of every batch acknowledged with a 200.
    let acked: Vec<Vec<(u64, u64)>> = rt.block_on(async {
        let mut tasks = Vec::new();
        for writer in 0..8u64 {
            let (http, base, w) = (http.clone(), base.clone(), w.clone());
            tasks.push(tokio::spawn(async move {
                let mut ok = Vec::new();
                for batch in 0u64.. {
                    let body: String = (0..200)
                        .map(|i| format!("{{\"writer\":{writer},\"batch\":{batch},\"i\":{i}}}\n"))
                        .collect();
                    match http
                        .post(format!("{base}/v1/ingest"))
                        .bearer_auth(&w)
                        .body(body)
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == 200 => {
                            let v: serde_json::Value = match r.json().await {
                                Ok(v) => v,
                                Err(_) => break, // killed mid-response: not acknowledged
                            };
                            ok.push((v["first_seq"].as_u64().expect("seq"), batch));
                        }
                        Ok(r) if r.status() == 503 => continue,
                        _ => break,
                    }
                }
                ok
            }));
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        server.kill().expect("kill -9");
        let _ = server.wait();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("task"));
        }
        out
    });
    let total: usize = acked.iter().map(Vec::len).sum();
    assert!(total > 0, "some batches were acknowledged before the kill");
    // Restart on the same directory: recovery, then every acknowledged batch is there.
    let (mut server, base) = start(&s);
    let q = realm["query_token"].as_str().expect("token");
    // Page through everything with the query cursor.
    let text = rt.block_on(async {
        let mut all = String::new();
        let mut cursor = 0u64;
        loop {
            let r = http
                .get(format!("{base}/v1/query?limit=100000&cursor={cursor}"))
                .bearer_auth(q)
                .send()
                .await
                .expect("send");
            let next = r
                .headers()
                .get("x-sealog-next-cursor")
                .map(|v| v.to_str().expect("ascii").parse::<u64>().expect("number"));
            all.push_str(&r.text().await.expect("text"));
            match next {
                Some(c) => cursor = c,
                None => break,
            }
        }
        all
    });
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    for (writer, batches) in acked.iter().enumerate() {
        for (first_seq, batch) in batches {
            for i in 0..200u64 {
                let rec = lines
                    .get((first_seq + i) as usize)
                    .expect("acknowledged record present");
                assert_eq!(rec["seq"], first_seq + i);
                assert_eq!(
                    (
                        rec["writer"].as_u64(),
                        rec["batch"].as_u64(),
                        rec["i"].as_u64()
                    ),
                    (Some(writer as u64), Some(*batch), Some(i))
                );
            }
        }
    }
    // Stop cleanly (SIGTERM), then verify offline.
    let pid = server.id().to_string();
    let st = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(st.success());
    let t = Instant::now();
    let code = server.wait().expect("wait");
    assert!(code.success(), "SIGTERM exits 0, got {code:?}");
    assert!(t.elapsed() < Duration::from_secs(10));
    let v = s.run(&["verify", "--realm", "crash"]).ok();
    eprintln!("server crash test: {total} batches of 200 acknowledged before kill -9; {} records after restart; {}", lines.len(), v.stdout.trim());
}

#[test]
fn cli_goes_through_a_running_server() {
    let s = Sealog::new();
    s.realm("before");
    let (mut server, base) = start(&s);
    // Found through server.json and admin.token, without flags.
    let created: serde_json::Value =
        serde_json::from_str(&s.run(&["realm", "create", "live"]).ok().stdout).expect("json");
    let listed = s.run(&["realm", "list"]).ok();
    assert_eq!(listed.stdout.lines().count(), 2, "{}", listed.stdout);
    let key = s.run(&["realm", "key", "live"]).ok();
    assert_eq!(
        key.stdout.trim(),
        created["public_key"].as_str().expect("key")
    );
    // Ingest needs the realm's write token; the admin token is refused with a hint.
    let refused = s.run_stdin(&["ingest", "--realm", "live", "-"], b"{\"a\":1}\n");
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("403") && refused.stderr.contains("write token"),
        "{}",
        refused.stderr
    );
    let w = created["write_token"].as_str().expect("token");
    let r = s
        .run_stdin(
            &["ingest", "--realm", "live", "--token", w, "-"],
            &crate::util::events(0, 30),
        )
        .ok();
    assert!(r.stdout.contains("\"count\":30"), "{}", r.stdout);
    let q = created["query_token"].as_str().expect("token");
    let rows = s
        .run(&[
            "query",
            "--realm",
            "live",
            "--token",
            q,
            "--where",
            "app=payments",
            "--limit",
            "2",
        ])
        .ok();
    assert_eq!(rows.stdout.lines().count(), 2, "{}", rows.stdout);
    let cp = s.run(&["checkpoint", "--realm", "live", "--token", q]).ok();
    assert!(cp.stdout.starts_with("sealog/live\n30\n"), "{}", cp.stdout);
    let saved = s.file("cp.txt", cp.stdout.as_bytes());
    let v = s
        .run(&[
            "verify",
            "--realm",
            "live",
            "--checkpoint",
            crate::util::path_str(&saved),
        ])
        .ok();
    assert!(
        v.stdout.starts_with("ok: realm live: 30 records"),
        "{}",
        v.stdout
    );
    // Explicit --url works the same.
    let admin = std::fs::read_to_string(s.data().join("admin.token")).expect("token");
    let t = s
        .run(&[
            "--url",
            &base,
            "--token",
            admin.trim(),
            "token",
            "list",
            "--realm",
            "live",
        ])
        .ok();
    assert_eq!(t.stdout.lines().count(), 2);
    // Export needs the files themselves.
    let e = s.run(&["export", "--realm", "live", "--out", "/tmp/x.bundle"]);
    assert_eq!(e.code, 2);
    assert!(
        e.stderr.contains("in use") || e.stderr.contains("stop the server"),
        "{}",
        e.stderr
    );
    server.kill().expect("kill");
    let _ = server.wait();
}

#[test]
fn sealog_tail_prints_new_records() {
    let s = Sealog::new();
    let (mut server, _) = start(&s);
    let created: serde_json::Value =
        serde_json::from_str(&s.run(&["realm", "create", "t"]).ok().stdout).expect("json");
    let (w, q) = (
        created["write_token"].as_str().expect("w"),
        created["query_token"].as_str().expect("q"),
    );
    let no_server = Sealog::new();
    let r = no_server.run(&["tail", "--realm", "t"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("needs a running server"), "{}", r.stderr);
    let mut tail = s
        .cmd(&[
            "tail",
            "--realm",
            "t",
            "--token",
            q,
            "--where",
            "app=payments",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tail");
    std::thread::sleep(Duration::from_millis(500));
    s.run_stdin(
        &["ingest", "--realm", "t", "--token", w, "-"],
        &crate::util::events(0, 15),
    )
    .ok();
    let mut out = tail.stdout.take().expect("stdout");
    let mut got = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while got.lines().count() < 3 && Instant::now() < deadline {
        use std::io::Read;
        let n = out.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let _ = tail.kill();
    let _ = tail.wait();
    let seqs: Vec<u64> = got
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("leaf json")["seq"]
                .as_u64()
                .expect("seq")
        })
        .collect();
    assert_eq!(
        seqs,
        vec![0, 7, 14],
        "payments records, as committed: {got}"
    );
    server.kill().expect("kill");
    let _ = server.wait();
}

/// Issue 17: kill -9 while 8 clients write round-robin over 1,000 realms,
/// with the descriptor pool bound far below the realm count (files are
/// synced and closed, then reopened, all through the load). After a
/// restart every record from every 200 is in its realm at its seq, and
/// sampled realms verify offline.
#[test]
fn kill_9_mid_load_over_1000_realms_loses_no_acknowledged_record() {
    const REALMS: usize = 1000;
    let s = Sealog::new();
    let tokens: Vec<(String, String)> = {
        let mut dd = sealog_store::DataDir::open(&s.data(), "test setup").expect("data dir");
        let names: Vec<sealog_event::RealmName> = (0..REALMS)
            .map(|i| format!("t{i:04}").parse().expect("name"))
            .collect();
        dd.create_realms(&names)
            .expect("create realms")
            .into_iter()
            .map(|c| (c.write_token, c.query_token))
            .collect()
    };
    let config = s.file("many.toml", b"[limits]\nmax_open_files = 64\n");
    let served =
        crate::util::Served::start_with(&s, &["--config", crate::util::path_str(&config)], None);
    let base = served.base.clone();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let http = reqwest::Client::new();
    let tokens = std::sync::Arc::new(tokens);
    // acked[realm] = (first_seq, writer, batch) of every 200.
    let acked: Vec<(usize, u64, u64, u64)> = rt.block_on(async {
        let mut tasks = Vec::new();
        for writer in 0..8u64 {
            let (http, base, tokens) = (http.clone(), base.clone(), tokens.clone());
            tasks.push(tokio::spawn(async move {
                let mut ok = Vec::new();
                for batch in 0u64.. {
                    let realm = ((batch * 8 + writer) as usize * 7) % REALMS;
                    let body: String = (0..20)
                        .map(|i| format!("{{\"writer\":{writer},\"batch\":{batch},\"i\":{i}}}\n"))
                        .collect();
                    match http
                        .post(format!("{base}/v1/ingest"))
                        .bearer_auth(&tokens[realm].0)
                        .body(body)
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == 200 => match r.json::<serde_json::Value>().await {
                            Ok(v) => ok.push((
                                realm,
                                v["first_seq"].as_u64().expect("seq"),
                                writer,
                                batch,
                            )),
                            Err(_) => break, // killed mid-response: not acknowledged
                        },
                        Ok(r) if r.status() == 503 => continue,
                        _ => break,
                    }
                }
                ok
            }));
        }
        // Mid-load, the server's descriptors stay near the pool's 64
        // (plus sockets and listeners), not 2-3 per realm.
        let mut most_fds = 0;
        for _ in 0..25 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let fds =
                std::fs::read_dir(format!("/proc/{}/fd", served.pid())).map_or(0, |d| d.count());
            most_fds = most_fds.max(fds);
        }
        assert!(
            (1..200).contains(&most_fds),
            "{most_fds} descriptors open over 1,000 realms with max_open_files = 64"
        );
        let pid = served.pid().to_string();
        let st = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .expect("kill");
        assert!(st.success());
        let mut out = Vec::new();
        for t in tasks {
            out.extend(t.await.expect("task"));
        }
        out
    });
    drop(served);
    let realms_hit: std::collections::BTreeSet<usize> = acked.iter().map(|a| a.0).collect();
    assert!(
        realms_hit.len() >= 200,
        "the load reached {} realms before the kill",
        realms_hit.len()
    );

    let served =
        crate::util::Served::start_with(&s, &["--config", crate::util::path_str(&config)], None);
    let mut records = 0usize;
    rt.block_on(async {
        // The background opener opens every realm after the restart.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let m = http
                .get(format!("{}/metrics", served.base))
                .send()
                .await
                .expect("send")
                .text()
                .await
                .expect("text");
            let gauge = |state: &str| {
                m.lines()
                    .find(|l| l.starts_with(&format!("sealog_realms{{state=\"{state}\"}}")))
                    .and_then(|l| l.split_whitespace().last())
                    .and_then(|v| v.parse::<f64>().ok())
            };
            if gauge("unopened") == Some(0.0) {
                assert_eq!(gauge("open"), Some(REALMS as f64), "{m}");
                assert_eq!(gauge("failed"), Some(0.0), "{m}");
                break;
            }
            assert!(Instant::now() < deadline, "realms still unopened: {m}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for &realm in &realms_hit {
            let text = http
                .get(format!("{}/v1/query?limit=100000", served.base))
                .bearer_auth(&tokens[realm].1)
                .send()
                .await
                .expect("send")
                .text()
                .await
                .expect("text");
            let lines: Vec<serde_json::Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).expect("json"))
                .collect();
            records += lines.len();
            for &(_, first, writer, batch) in acked.iter().filter(|a| a.0 == realm) {
                for i in 0..20u64 {
                    let rec = lines.get((first + i) as usize).unwrap_or_else(|| {
                        panic!("realm t{realm:04}: acknowledged seq {} missing", first + i)
                    });
                    assert_eq!(rec["seq"], first + i);
                    assert_eq!(
                        (
                            rec["writer"].as_u64(),
                            rec["batch"].as_u64(),
                            rec["i"].as_u64()
                        ),
                        (Some(writer), Some(batch), Some(i)),
                        "realm t{realm:04} seq {}",
                        first + i
                    );
                }
            }
        }
    });
    served.stop();
    // Offline verification of the ten realms that took the most batches.
    let mut by_count: Vec<(usize, usize)> = realms_hit
        .iter()
        .map(|&r| (acked.iter().filter(|a| a.0 == r).count(), r))
        .collect();
    by_count.sort_unstable_by(|a, b| b.cmp(a));
    for &(_, realm) in by_count.iter().take(10) {
        s.run(&["verify", "--realm", &format!("t{realm:04}")]).ok();
    }
    eprintln!(
        "1,000-realm crash test: {} batches of 20 acknowledged across {} realms before kill -9; {records} records read back after restart",
        acked.len(),
        realms_hit.len()
    );
}
