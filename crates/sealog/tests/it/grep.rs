//! `sealog grep` (lhgrep's spec) on a local data directory, through the
//! server, and over an NDJSON file: the same answers, equal to a filter
//! written here.

use serde_json::Value;

use crate::util::{path_str, Sealog, Served};

const PRIS: [&str; 8] = [
    "Debug2", "Debug1", "Debug0", "Info", "Warn", "Err", "Crit", "Sec",
];

/// Entries with one message in 7 spelled with a JSON escape
/// (`time\u006fut`), which a plain substring search of the line misses.
fn entries(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let msg = match i % 7 {
                0 => r"request time\u006fut".to_string(),
                1 => format!("request timeout {i}"),
                _ => format!("ok {i}"),
            };
            format!(
                r#"{{"id":"e{i}","app":"app{}","module":"{}","type":"A","pri":"{}","when":"2026-03-01T{:02}:{:02}:00Z","who":"u{}","thread":"t{}","msg":"{msg}"}}"#,
                ["a", "b", "c"][i % 3],
                ["db", "auth", "web", "billing"][i % 4],
                PRIS[i % 8],
                (i / 60) % 24,
                i % 60,
                i % 5,
                i % 2,
            )
        })
        .collect()
}

fn s_(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or("").to_string()
}

fn rank(v: &Value) -> usize {
    PRIS.iter().position(|p| *p == s_(v, "pri")).expect("pri")
}

fn ids(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("json line");
            v["id"].as_str().expect("id").to_string()
        })
        .collect()
}

fn want(all: &[Value], f: impl Fn(&Value) -> bool) -> Vec<String> {
    all.iter()
        .filter(|v| f(v))
        .map(|v| v["id"].as_str().expect("id").to_string())
        .collect()
}

#[test]
fn grep_agrees_locally_through_the_server_and_on_a_file() {
    let s = Sealog::new();
    let realm = s.realm("lh");
    let q = realm["query_token"].as_str().expect("token").to_string();
    let lines = entries(1_500);
    let file = s.file("lh.ndjson", (lines.join("\n") + "\n").as_bytes());
    s.run(&["ingest", "--realm", "lh", path_str(&file)]).ok();
    let all: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("entry"))
        .collect();
    type Case<'a> = (Vec<&'a str>, Box<dyn Fn(&Value) -> bool>);
    let cases: Vec<Case> = vec![
        (
            vec!["--app", "appb", "--level", "error"],
            Box::new(move |v: &Value| s_(v, "app") == "appb" && s_(v, "pri") == "Err"),
        ),
        (
            vec!["--message", "timeout"],
            Box::new(move |v: &Value| s_(v, "msg").contains("timeout")),
        ),
        (
            vec!["timestamp > '2026-03-01T10:00:00Z' AND module = 'db'"],
            Box::new(move |v: &Value| {
                s_(v, "when").as_str() > "2026-03-01T10:00:00Z" && s_(v, "module") == "db"
            }),
        ),
        (
            vec![
                "--query",
                "select(.who == \"u3\" or .who == \"u4\")",
                "--thread",
                "t1",
            ],
            Box::new(move |v: &Value| {
                (s_(v, "who") == "u3" || s_(v, "who") == "u4") && s_(v, "thread") == "t1"
            }),
        ),
        (
            vec![
                "--from",
                "2026-03-01T05:00:00Z",
                "--to",
                "2026-03-01T06:30:00Z",
                "--module",
                "auth",
            ],
            Box::new(move |v: &Value| {
                let w = s_(v, "when");
                w.as_str() >= "2026-03-01T05:00:00Z"
                    && w.as_str() <= "2026-03-01T06:30:00Z"
                    && s_(v, "module") == "auth"
            }),
        ),
        (
            vec!["NOT level >= info"],
            Box::new(move |v: &Value| rank(v) < 3),
        ),
    ];
    let mut local_answers = Vec::new();
    for (args, f) in &cases {
        let expected = want(&all, f);
        assert!(!expected.is_empty(), "{args:?} matches something");
        let mut a = vec!["grep", "--realm", "lh", "-o", "json"];
        a.extend(args.iter());
        let got = ids(&s.run(&a).ok().stdout);
        assert_eq!(got, expected, "local {args:?}");
        let mut a = vec!["grep", "-f", path_str(&file), "-o", "json"];
        a.extend(args.iter());
        assert_eq!(ids(&s.run(&a).ok().stdout), expected, "file {args:?}");
        let mut a = vec!["grep", "--realm", "lh", "-c"];
        a.extend(args.iter());
        assert_eq!(
            s.run(&a).ok().stdout.trim(),
            expected.len().to_string(),
            "count {args:?}"
        );
        local_answers.push(expected);
    }

    // Text output: time, level, app, module, message; colour on request only.
    let r = s
        .run(&[
            "grep", "--realm", "lh", "--app", "appa", "--level", "crit", "--limit", "1",
        ])
        .ok();
    assert_eq!(r.stdout, "2026-03-01T00:06:00Z Crit   appa web: ok 6\n");
    let r = s
        .run(&[
            "grep", "--realm", "lh", "--app", "appa", "--level", "crit", "--limit", "1", "--color",
            "always",
        ])
        .ok();
    assert!(r.stdout.contains("\x1b[31mCrit  \x1b[0m"), "{:?}", r.stdout);
    let r = s
        .run(&[
            "grep", "--realm", "lh", "--limit", "2", "--fields", "id,pri", "--newest",
        ])
        .ok();
    assert_eq!(r.stdout, "e1499 Info\ne1498 Debug0\n");

    // Refusals: exit 2 with the reason.
    for (args, says) in [
        (
            vec!["grep", "--realm", "lh", "app = 'x"],
            "unterminated string",
        ),
        (
            vec!["grep", "--realm", "lh", "app x"],
            "expected an operator",
        ),
        (
            vec!["grep", "--realm", "lh", "--from", "soon"],
            "is not RFC 3339",
        ),
        (
            vec!["grep", "--realm", "lh", "--level", "loud"],
            "is not a severity",
        ),
        (vec!["grep", "--realm", "nope", "--app", "x"], "nope"),
    ] {
        let r = s.run(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }

    // Through the server: the same answers.
    let server = Served::start(&s);
    for ((args, _), expected) in cases.iter().zip(&local_answers) {
        let mut a = vec!["grep", "--realm", "lh", "--token", q.as_str(), "-o", "json"];
        a.extend(args.iter());
        assert_eq!(&ids(&s.run(&a).ok().stdout), expected, "server {args:?}");
    }
    server.stop();
}

/// The message index (`grep.index`): built by the first grep, then used;
/// every answer equals a scan of every block (`--no-index`) and the
/// filter written here, after new records, with the index damaged, torn,
/// unwritable, and after retention rewrote blocks.
#[test]
fn grep_answers_through_the_message_index_equal_a_full_scan() {
    let s = Sealog::new();
    s.realm("lh");
    let lines = entries(2_000);
    // Many small blocks: 100 records a commit.
    let first = s.file("a.ndjson", (lines[..1_200].join("\n") + "\n").as_bytes());
    s.run(&[
        "ingest",
        "--realm",
        "lh",
        "--batch",
        "100",
        path_str(&first),
    ])
    .ok();
    let all: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("entry"))
        .collect();
    let index = s.data().join("realms/lh").join("grep.index");
    type Case<'a> = (Vec<&'a str>, Box<dyn Fn(&Value) -> bool>);
    let msg = |v: &Value| s_(v, "msg");
    let cases: Vec<Case> = vec![
        (
            vec!["--message", "timeout"],
            Box::new(move |v: &Value| msg(v).contains("timeout")),
        ),
        (
            vec!["message ~ 'ok 1' AND NOT message ~ '9'"],
            Box::new(move |v: &Value| msg(v).contains("ok 1") && !msg(v).contains('9')),
        ),
        (
            vec!["message ~ 'timeout 1' OR message ~ 'ok 77'"],
            Box::new(move |v: &Value| msg(v).contains("timeout 1") || msg(v).contains("ok 77")),
        ),
        (
            // Not exact: the index narrows, the records decide.
            vec!["--message", "ok", "--app", "appc", "--level", "warn"],
            Box::new(move |v: &Value| {
                msg(v).contains("ok") && s_(v, "app") == "appc" && s_(v, "pri") == "Warn"
            }),
        ),
        (
            vec!["--message", "no such text"],
            Box::new(|_: &Value| false),
        ),
    ];
    let check = |upto: usize, when: &str| {
        for (args, f) in &cases {
            let expected = want(&all[..upto], f);
            let mut a = vec!["grep", "--realm", "lh", "-o", "json"];
            a.extend(args.iter());
            assert_eq!(ids(&s.run(&a).ok().stdout), expected, "{when}: {args:?}");
            let mut c = vec!["grep", "--realm", "lh", "-c"];
            c.extend(args.iter());
            assert_eq!(
                s.run(&c).ok().stdout.trim(),
                expected.len().to_string(),
                "{when}: count {args:?}"
            );
            c.push("--no-index");
            assert_eq!(
                s.run(&c).ok().stdout.trim(),
                expected.len().to_string(),
                "{when}: count --no-index {args:?}"
            );
            // Newest first with a limit: the last matches, reversed.
            let mut n = vec![
                "grep", "--realm", "lh", "-o", "json", "--newest", "--limit", "3",
            ];
            n.extend(args.iter());
            let newest: Vec<String> = expected.iter().rev().take(3).cloned().collect();
            assert_eq!(
                ids(&s.run(&n).ok().stdout),
                newest,
                "{when}: newest {args:?}"
            );
        }
    };
    assert!(!index.exists(), "no grep, no index");
    check(1_200, "first");
    let built = std::fs::metadata(&index)
        .expect("the first grep built the index")
        .len();
    assert!(built > 0);

    // New blocks are indexed as they are first read.
    let second = s.file("b.ndjson", (lines[1_200..].join("\n") + "\n").as_bytes());
    s.run(&[
        "ingest",
        "--realm",
        "lh",
        "--batch",
        "100",
        path_str(&second),
    ])
    .ok();
    check(2_000, "more records");
    let grown = std::fs::metadata(&index).expect("index").len();
    assert!(grown > built, "{grown} > {built}");

    // A flipped byte in an entry: that block is read instead.
    let mut bytes = std::fs::read(&index).expect("index");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&index, &bytes).expect("damage");
    check(2_000, "a damaged entry");
    // A torn tail and then garbage.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&index)
        .expect("open");
    f.set_len(grown - 7).expect("truncate");
    drop(f);
    check(2_000, "a torn tail");
    std::fs::write(&index, b"not an index at all, just bytes").expect("garbage");
    check(2_000, "garbage");
    // An index that cannot be written (a directory in its place).
    std::fs::remove_file(&index).expect("rm");
    std::fs::create_dir(&index).expect("dir");
    check(2_000, "unwritable");
    std::fs::remove_dir(&index).expect("rmdir");
    check(2_000, "rebuilt");

    // Retention rewrites blocks; their old entries no longer apply.
    let r = s.run(&[
        "retention",
        "--realm",
        "lh",
        "--days",
        "30",
        "--app",
        "appa",
        "--force",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let kept: Vec<Value> = all
        .iter()
        .filter(|v| s_(v, "app") != "appa")
        .cloned()
        .collect();
    for (args, f) in &cases {
        let expected = want(&kept, f);
        let mut c = vec!["grep", "--realm", "lh", "-c"];
        c.extend(args.iter());
        assert_eq!(
            s.run(&c).ok().stdout.trim(),
            expected.len().to_string(),
            "after retention: {args:?}"
        );
        let mut a = vec!["grep", "--realm", "lh", "-o", "json"];
        a.extend(args.iter());
        assert_eq!(
            ids(&s.run(&a).ok().stdout),
            expected,
            "after retention: {args:?}"
        );
    }
}
