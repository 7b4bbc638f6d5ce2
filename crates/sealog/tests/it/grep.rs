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
