//! `realm create --out FILE` and `token issue --out FILE`: when FILE cannot
//! be written nothing is created, locally or through a running server.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::util::{path_str, Sealog};

const UNWRITABLE: &str = "/nonexistent/dir/x.json";

fn realm_names(s: &Sealog) -> Vec<String> {
    s.run(&["realm", "list"])
        .ok()
        .stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            v["name"].as_str().expect("name").to_string()
        })
        .collect()
}

/// No temp file is left next to the output.
fn assert_no_temp_files(dir: &std::path::Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "temp files left: {left:?}");
}

#[test]
fn unwritable_out_creates_no_realm_locally() {
    let s = Sealog::new();
    s.realm("first");
    let r = s.run(&["realm", "create", "acme", "--out", UNWRITABLE]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains(UNWRITABLE), "{}", r.stderr);
    assert!(r.stderr.contains("nothing was done"), "{}", r.stderr);
    assert!(
        r.stdout.is_empty(),
        "no tokens were handed out: {}",
        r.stdout
    );
    assert_eq!(realm_names(&s), ["first"]);
    // A directory is not a file to write either.
    let r = s.run(&["realm", "create", "acme", "--out", path_str(s.dir.path())]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("is a directory"), "{}", r.stderr);
    assert_eq!(realm_names(&s), ["first"]);
    // Nor does a token get issued.
    let before = s.run(&["token", "list"]).ok().stdout.lines().count();
    let r = s.run(&[
        "token", "issue", "--realm", "first", "--scope", "write", "--out", UNWRITABLE,
    ]);
    assert_ne!(r.code, 0);
    assert_eq!(
        s.run(&["token", "list"]).ok().stdout.lines().count(),
        before
    );

    // A writable path: created, written whole with mode 0600, no temp left.
    let out = s.dir.path().join("acme.json");
    std::fs::write(&out, "stale").expect("write");
    let r = s
        .run(&["realm", "create", "acme", "--out", path_str(&out)])
        .ok();
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("read")).expect("json");
    assert_eq!(
        saved,
        serde_json::from_str::<serde_json::Value>(&r.stdout).expect("json")
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&out).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_no_temp_files(s.dir.path());
    assert_eq!(realm_names(&s), ["acme", "first"]);
}

// The child is returned to the caller, which kills and waits for it.
#[allow(clippy::zombie_processes)]
fn serve(s: &Sealog) -> Child {
    let mut child = s
        .cmd(&["serve", "--http", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let up = std::fs::read_to_string(s.data().join("server.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .is_some_and(|v| v["http"].is_string());
        if up && s.data().join("admin.token").exists() {
            return child;
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
fn unwritable_out_creates_no_realm_through_the_server() {
    let s = Sealog::new();
    s.realm("first");
    let mut server = serve(&s);
    let r = s.run(&["realm", "create", "web", "--out", UNWRITABLE]);
    let listed = realm_names(&s);
    let out = s.dir.path().join("web.json");
    let good = s.run(&["realm", "create", "web", "--out", path_str(&out)]);
    let after = realm_names(&s);
    let _ = server.kill();
    let _ = server.wait();

    assert_ne!(r.code, 0);
    assert!(r.stderr.contains(UNWRITABLE), "{}", r.stderr);
    assert!(
        !r.stderr.contains("server answered"),
        "the server was never asked: {}",
        r.stderr
    );
    assert_eq!(listed, ["first"]);
    let good = good.ok();
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("read")).expect("json");
    assert_eq!(
        saved,
        serde_json::from_str::<serde_json::Value>(&good.stdout).expect("json")
    );
    assert_eq!(saved["realm"], "web");
    assert_eq!(after, ["first", "web"]);
    assert_no_temp_files(s.dir.path());
}
