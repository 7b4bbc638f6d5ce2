//! Commands through a server (issue 8, finding 4): the data directory's
//! admin token goes only to the server recorded in it, and remote commands
//! behave as the local ones do (`--batch`, `--receipts-out`, `--key`,
//! queries longer than a page).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::{events, path_str, Sealog, Served};

const ADMIN: &str = "sla_the-local-admin-token-never-leaves-home";

/// A TCP listener that records every byte sent to it and answers each
/// connection with `200 []` (so a client that does send finishes).
struct Recorder {
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Recorder {
    fn start() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.set_nonblocking(true).expect("nonblocking");
        let addr = l.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let Ok((mut c, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = c.set_nonblocking(false);
                let _ = c.set_read_timeout(Some(Duration::from_millis(500)));
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                seen2.lock().expect("lock").extend_from_slice(&req);
                let _ = c.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n[]",
                );
            }
        });
        Self {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().expect("lock")).into_owned()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Finding 4: `--url` without `--token` sent `<data>/admin.token` to any URL.
#[test]
fn admin_token_goes_only_to_the_server_recorded_in_the_data_directory() {
    let s = Sealog::new();
    s.realm("acme");
    std::fs::write(s.data().join("admin.token"), format!("{ADMIN}\n")).expect("token");
    let rec = Recorder::start();
    let url = rec.url();

    // No server recorded: refused before connecting, saying what to do.
    let r = s.run(&["--url", &url, "realm", "list"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("--token"), "{}", r.stderr);
    assert!(r.stderr.contains("sent only to"), "{}", r.stderr);
    // Every command that can go remote is refused the same way.
    let r = s.run(&["--url", &url, "verify", "--realm", "acme"]);
    assert_eq!(r.code, 2, "{}", r.stderr);

    // Another server recorded (and the directory held, as by a live
    // server): still refused, naming the recorded one.
    let held = sealog_store::DataDir::open(&s.data(), "test (a server)").expect("hold");
    std::fs::write(
        s.data().join("server.json"),
        r#"{"http":"127.0.0.1:9","pid":1}"#,
    )
    .expect("server.json");
    let r = s.run(&["--url", &url, "token", "list"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("127.0.0.1:9"), "{}", r.stderr);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !rec.seen().contains(ADMIN),
        "the admin token reached another server: {}",
        rec.seen()
    );
    assert!(rec.seen().is_empty(), "nothing is sent: {}", rec.seen());

    // With --token (or SEALOG_TOKEN) the user chose what to send.
    let r = s
        .cmd(&["--url", &url, "realm", "list"])
        .env("SEALOG_TOKEN", "sla_chosen")
        .output()
        .expect("run");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !rec.seen().contains("sla_chosen") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(rec.seen().contains("Bearer sla_chosen"), "{}", rec.seen());
    assert!(!rec.seen().contains(ADMIN), "{}", rec.seen());

    // A server.json naming the listener, left behind with nothing holding
    // the directory (a killed server; the port may be anyone's now): not
    // trusted.
    drop(held);
    std::fs::write(
        s.data().join("server.json"),
        format!(r#"{{"http":"{}","pid":1}}"#, rec.addr),
    )
    .expect("server.json");
    let r = s.run(&["--url", &format!("{url}/"), "realm", "list"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !rec.seen().contains(ADMIN),
        "a stale server.json was trusted"
    );

    // The recorded server of a held directory does get it (so the listener
    // above would have seen it, had it been sent).
    let _held = sealog_store::DataDir::open(&s.data(), "test (a server)").expect("hold");
    s.run(&["--url", &format!("{url}/"), "realm", "list"]).ok();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !rec.seen().contains(ADMIN) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(rec.seen().contains(&format!("Bearer {ADMIN}")));
}

/// The JSON keys of each line of a receipts file, and the seq ranges.
fn receipts_shape(path: &std::path::Path) -> Vec<(Vec<String>, u64, u64, u64)> {
    std::fs::read_to_string(path)
        .expect("receipts")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON receipt per line");
            let mut keys: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
            keys.sort();
            let n = |k: &str| v[k].as_u64().expect("number");
            (keys, n("first_seq"), n("last_seq"), n("count"))
        })
        .collect()
}

/// Finding 4: remote ingest dropped `--batch` and `--receipts-out`.
#[test]
fn remote_ingest_honours_batch_and_receipts_out_like_local() {
    let input = events(0, 1000);
    // Local, for the shape to match.
    let local = Sealog::new();
    local.realm("pay");
    let f = local.file("in.ndjson", &input);
    let local_receipts = local.dir.path().join("local.receipts");
    local
        .run(&[
            "ingest",
            "--realm",
            "pay",
            path_str(&f),
            "--batch",
            "300",
            "--receipts-out",
            path_str(&local_receipts),
        ])
        .ok();

    let s = Sealog::new();
    let pay = s.realm("pay");
    let other = s.realm("other");
    let w = pay["write_token"].as_str().expect("token");
    let f = s.file("in.ndjson", &input);
    let receipts = s.dir.path().join("remote.receipts");
    let server = Served::start(&s);
    // The data directory is held: this goes through the server.
    let r = s
        .run(&[
            "ingest",
            "--realm",
            "pay",
            "--token",
            w,
            path_str(&f),
            "--batch",
            "300",
            "--receipts-out",
            path_str(&receipts),
        ])
        .ok();
    let total: serde_json::Value = serde_json::from_str(&r.stdout).expect("receipt");
    assert_eq!(
        (total["first_seq"].as_u64(), total["count"].as_u64()),
        (Some(0), Some(1000))
    );
    let shape = receipts_shape(&receipts);
    assert_eq!(
        shape.iter().map(|r| r.3).collect::<Vec<_>>(),
        [300, 300, 300, 100],
        "one request, one receipt, per --batch"
    );
    assert_eq!(shape, receipts_shape(&local_receipts), "same file as local");
    // The receipts are evidence `verify` accepts, through the server and offline.
    let v = s
        .run(&[
            "verify",
            "--realm",
            "pay",
            "--receipts",
            path_str(&receipts),
        ])
        .ok();
    assert!(
        v.stdout.contains("1000 records")
            && v.stdout.contains("4 client checkpoints/receipts hold"),
        "{}",
        v.stdout
    );

    // A write token of another realm does not quietly fill it: the first
    // commit shows whose it is, and nothing more is sent.
    let wo = other["write_token"].as_str().expect("token");
    let small = s.file("small.ndjson", &events(0, 10));
    let r = s.run(&[
        "ingest",
        "--realm",
        "pay",
        "--token",
        wo,
        path_str(&small),
        "--batch",
        "4",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("the token is for realm \"other\""),
        "{}",
        r.stderr
    );
    server.stop();
    let v = s
        .run(&[
            "verify",
            "--realm",
            "pay",
            "--receipts",
            path_str(&receipts),
        ])
        .ok();
    assert!(v.stdout.contains("1000 records"), "{}", v.stdout);
    let v = s.run(&["verify", "--realm", "other"]).ok();
    assert!(
        v.stdout.contains(": 4 records"),
        "only one batch went: {}",
        v.stdout
    );
}

/// Finding 4: remote `verify` must use `--key`: a wrong key fails (exit 1),
/// the right one passes, and a realm that is not there is a usage error.
#[test]
fn remote_verify_uses_the_pinned_key() {
    let s = Sealog::new();
    s.realm("pay");
    let f = s.file("a.ndjson", &events(0, 20));
    s.run(&["ingest", "--realm", "pay", path_str(&f)]).ok();
    let right = s
        .run(&["realm", "key", "pay"])
        .ok()
        .stdout
        .trim()
        .to_string();
    // A key of another realm of the same name.
    let forger = Sealog::new();
    forger.realm("pay");
    let wrong = forger
        .run(&["realm", "key", "pay"])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert_ne!(right, wrong);
    let server = Served::start(&s);
    let admin = std::fs::read_to_string(s.data().join("admin.token")).expect("admin token");
    for through in [
        vec![],
        vec!["--url", server.base.as_str(), "--token", admin.trim()],
    ] {
        let run = |extra: &[&str]| {
            let mut args = through.clone();
            args.extend_from_slice(extra);
            s.run(&args)
        };
        let ok = run(&["verify", "--realm", "pay", "--key", &right]);
        assert_eq!(ok.code, 0, "{}", ok.stderr);
        assert!(ok.stdout.contains(&right), "{}", ok.stdout);
        let bad = run(&["verify", "--realm", "pay", "--key", &wrong]);
        assert_eq!(
            bad.code, 1,
            "a wrong key fails: {}{}",
            bad.stdout, bad.stderr
        );
        assert!(bad.stderr.contains("verification FAILED"), "{}", bad.stderr);
        let ghost = run(&["verify", "--realm", "ghost", "--key", &right]);
        assert_eq!(ghost.code, 2, "{}", ghost.stderr);
        assert!(
            ghost.stderr.contains("no realm named ghost"),
            "{}",
            ghost.stderr
        );
    }
    server.stop();
}

/// Finding 4: remote `query` stopped at one page (100,000 records) without a
/// word. The client follows `x-sealog-next-cursor` to the limit or the end.
#[test]
fn remote_query_follows_the_cursor_past_one_page() {
    const N: u64 = 100_050;
    let s = Sealog::new();
    let realm = s.realm("big");
    let q = realm["query_token"].as_str().expect("token");
    let mut input = Vec::with_capacity(N as usize * 12);
    for i in 0..N {
        input.extend_from_slice(format!("{{\"i\":{i}}}\n").as_bytes());
    }
    let f = s.file("big.ndjson", &input);
    s.run(&["ingest", "--realm", "big", path_str(&f)]).ok();
    let server = Served::start(&s);
    let query = |extra: &[&str]| -> Vec<u64> {
        let mut args = vec!["query", "--realm", "big", "--token", q];
        args.extend_from_slice(extra);
        s.run(&args)
            .ok()
            .stdout
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("json");
                v["seq"].as_u64().expect("seq")
            })
            .collect()
    };
    // No limit: every record, in order, across the server's pages.
    let all = query(&[]);
    assert_eq!(all.len() as u64, N);
    assert!(all.iter().copied().eq(0..N), "every seq once, in order");
    // A limit past one page stops there; one past the records stops at the end.
    assert_eq!(query(&["--limit", "100010"]).len(), 100_010);
    assert_eq!(query(&["--limit", "200000"]).len() as u64, N);
    // Newest first pages down.
    let newest = query(&["--newest", "--limit", "100002"]);
    assert_eq!(newest.len(), 100_002);
    assert_eq!((newest[0], newest[100_001]), (N - 1, N - 100_002));
    server.stop();
}

/// `sealog drains add|list|rm` over the API with the realm's write token:
/// each selection, a refused URL with its reason, and the admin token
/// refused (drains belong to a realm).
#[test]
fn drains_add_list_rm_through_the_server() {
    let s = Sealog::new();
    let realm = s.realm("shop");
    let w = realm["write_token"].as_str().expect("token");
    let server = Served::start(&s);
    let add = |extra: &[&str]| {
        let mut args = vec!["drains", "add", "--token", w];
        args.extend_from_slice(extra);
        s.run(&args)
    };
    let app = add(&["syslog://127.0.0.1:9", "--app", "api", "--space", "prod"]).ok();
    let app: serde_json::Value = serde_json::from_str(&app.stdout).expect("json");
    assert_eq!(app["token"], "api-prod");
    add(&["syslog+udp://127.0.0.1:9", "--site", "www.example.com"]).ok();
    add(&[
        "http://u:p@127.0.0.1:9/logs",
        "--where",
        "app=api",
        "--q",
        "error",
        "--framing",
        "octet-counting",
    ])
    .ok();
    let bad = add(&["gopher://h:70", "--app", "api", "--space", "prod"]);
    assert_eq!(bad.code, 2, "a refused input: {}", bad.stderr);
    assert!(
        bad.stderr.contains("422") && bad.stderr.contains("not supported"),
        "{}",
        bad.stderr
    );
    let none = add(&["syslog://127.0.0.1:9"]);
    assert_ne!(none.code, 0);
    assert!(none.stderr.contains("say which records"), "{}", none.stderr);
    let list = s.run(&["drains", "list", "--token", w]).ok().stdout;
    assert_eq!(list.lines().count(), 3, "{list}");
    assert!(
        list.contains("http://u:***@127.0.0.1:9/logs"),
        "passwords are not shown: {list}"
    );
    let id = app["id"].as_str().expect("id");
    s.run(&["drains", "rm", "--token", w, id]).ok();
    let list = s.run(&["drains", "list", "--token", w]).ok().stdout;
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(!list.contains(id));
    // The admin token manages realms, not a realm's drains.
    let admin = s.run(&["drains", "list"]);
    assert_ne!(admin.code, 0);
    assert!(admin.stderr.contains("403"), "{}", admin.stderr);
    server.stop();
}
