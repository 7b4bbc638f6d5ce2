//! Akkeris logshuttle inputs: fluentd/Kubernetes JSON (`LogSpec`), build
//! logs, and router web logs (`key=value` lines).
//!
//! JSON inputs keep their bytes: sealog splices the stream fields it derives
//! (`app`, `space`, `dyno`, `proc_type`, `source`) in front, only those the
//! sender did not set, like it adds `realm` and `seq`. Web log lines become
//! an object of their `key=value` pairs in order, plus `app`, `space` and
//! the whole line as `msg`.
//!
//! Derivations (logshuttle's rules, seed-systems §3.5):
//! - `kubernetes.container_name` is `app` or `app--type` (type `web` by
//!   default); the space is `topic`, else `kubernetes.namespace_name`; the
//!   dyno is `kubernetes.pod_name`;
//! - a build log's `metadata` is `app-space` split on the first `-` (space
//!   `default` without one); its dyno is `akkeris/build`;
//! - a web log's `hostname=<app>-<space>.<domain>` gives app and space; every
//!   token must be `key=value` or the line is refused; `source` is also
//!   given as `fwd`, URL-unescaped.

use serde_json::Value;

/// Why an input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShuttleError {
    /// Not a JSON object.
    #[error("not a JSON object: {0}")]
    NotObject(String),
    /// A required field is missing.
    #[error("missing field {0}")]
    Missing(&'static str),
    /// A web log token is not `key=value`.
    #[error("web log token {0:?} is not key=value")]
    BadToken(String),
    /// The result is not a storable event.
    #[error("{0}")]
    Event(String),
}

/// An event ready to store: its JSON line and its own time.
pub type Event = (Vec<u8>, Option<i64>);

fn splice(
    original: &[u8],
    obj: &serde_json::Map<String, Value>,
    add: &[(&str, String)],
) -> Result<Event, ShuttleError> {
    let mut compact = Vec::with_capacity(original.len());
    sealog_event::compact_json(original, &mut compact);
    let mut out = Vec::with_capacity(compact.len() + 96);
    out.push(b'{');
    let mut n = 0;
    for (k, v) in add {
        if obj.contains_key(*k) {
            continue;
        }
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(serde_json::to_string(k).unwrap_or_default().as_bytes());
        out.push(b':');
        out.extend_from_slice(serde_json::to_string(v).unwrap_or_default().as_bytes());
        n += 1;
    }
    let rest = compact.get(1..).unwrap_or_default();
    if n > 0 && rest.first() != Some(&b'}') {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    let info = sealog_event::validate(&out).map_err(|e| ShuttleError::Event(e.to_string()))?;
    Ok((out, info.time_ns))
}

fn object(body: &[u8]) -> Result<serde_json::Map<String, Value>, ShuttleError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ShuttleError::NotObject("not an object".into())),
        Err(e) => Err(ShuttleError::NotObject(e.to_string())),
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for k in path {
        cur = cur.get(*k)?;
    }
    cur.as_str()
}

/// A fluentd/Kubernetes log line (`LogSpec`) as an event.
///
/// # Errors
/// [`ShuttleError`] when it is not an object or has no container name.
pub fn fluentd(body: &[u8]) -> Result<Event, ShuttleError> {
    let obj = object(body)?;
    let v = Value::Object(obj.clone());
    let container = str_at(&v, &["kubernetes", "container_name"])
        .ok_or(ShuttleError::Missing("kubernetes.container_name"))?;
    let (app, proc_type) = container.split_once("--").unwrap_or((container, "web"));
    let space = str_at(&v, &["topic"])
        .or_else(|| str_at(&v, &["kubernetes", "namespace_name"]))
        .unwrap_or("default");
    let mut add = vec![
        ("app", app.to_string()),
        ("space", space.to_string()),
        ("proc_type", proc_type.to_string()),
        ("source", "kubernetes".to_string()),
    ];
    if let Some(pod) = str_at(&v, &["kubernetes", "pod_name"]) {
        add.push(("dyno", pod.to_string()));
    }
    splice(body, &obj, &add)
}

/// A build log (`{"build","job","message","metadata":"app-space"}`) as an event.
///
/// # Errors
/// [`ShuttleError`] when it is not an object or has no metadata.
pub fn build_log(body: &[u8]) -> Result<Event, ShuttleError> {
    let obj = object(body)?;
    let meta = obj
        .get("metadata")
        .and_then(Value::as_str)
        .ok_or(ShuttleError::Missing("metadata"))?;
    let (app, space) = meta.split_once('-').unwrap_or((meta, "default"));
    let add = [
        ("app", app.to_string()),
        ("space", space.to_string()),
        ("dyno", "akkeris/build".to_string()),
        ("source", "build".to_string()),
    ];
    splice(body, &obj, &add)
}

fn url_unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A router web log line (`k=v k=v ...`) as an event.
///
/// # Errors
/// [`ShuttleError::BadToken`] when any token is not `key=value`;
/// [`ShuttleError::Missing`] without a `hostname`.
pub fn web_log(line: &str) -> Result<Event, ShuttleError> {
    let mut out = String::from("{");
    let mut seen = std::collections::HashSet::new();
    let mut host = None;
    let push = |out: &mut String, k: &str, v: &str| {
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(k).unwrap_or_default());
        out.push(':');
        out.push_str(&serde_json::to_string(v).unwrap_or_default());
    };
    let mut pairs = Vec::new();
    for tok in line.split_whitespace() {
        let (k, v) = tok
            .split_once('=')
            .ok_or_else(|| ShuttleError::BadToken(tok.to_string()))?;
        if k.is_empty() {
            return Err(ShuttleError::BadToken(tok.to_string()));
        }
        if k == "hostname" {
            host = Some(v.to_string());
        }
        pairs.push((k.to_string(), v.trim_matches('"').to_string()));
    }
    let host = host.ok_or(ShuttleError::Missing("hostname"))?;
    let label = host.split('.').next().unwrap_or("");
    let (app, space) = label.split_once('-').unwrap_or((label, "default"));
    for (k, v) in [
        ("app", app),
        ("space", space),
        ("source", "weblog"),
        ("msg", line),
    ] {
        seen.insert(k.to_string());
        push(&mut out, k, v);
    }
    for (k, v) in pairs {
        let (k, v) = if k == "source" {
            ("fwd".to_string(), url_unescape(&v))
        } else {
            (k, v)
        };
        if sealog_event::RESERVED_FIELDS.contains(&k.as_str()) || !seen.insert(k.clone()) {
            continue;
        }
        push(&mut out, &k, &v);
    }
    out.push('}');
    let info =
        sealog_event::validate(out.as_bytes()).map_err(|e| ShuttleError::Event(e.to_string()))?;
    Ok((out.into_bytes(), info.time_ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fluentd_lines_get_app_space_dyno() {
        let body = br#"{"log":"GET / 200\n","stream":"stdout","time":"2026-11-22T08:00:00.5Z","docker":{"container_id":"c1"},"kubernetes":{"namespace_name":"prod","pod_id":"p1","pod_name":"web-7d9-x2","container_name":"shop--worker","labels":{"name":"shop"},"host":"node-3"},"topic":"prod","tag":"t"}"#;
        let (line, t) = fluentd(body).expect("event");
        let v: Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(
            (
                v["app"].as_str(),
                v["proc_type"].as_str(),
                v["dyno"].as_str()
            ),
            (Some("shop"), Some("worker"), Some("web-7d9-x2"))
        );
        assert_eq!(
            v["space"], "prod",
            "the sender's own space is kept, not duplicated"
        );
        assert_eq!(
            String::from_utf8_lossy(&line).matches("\"space\"").count(),
            1
        );
        assert!(t.is_some());
        assert!(
            line.ends_with(br#""topic":"prod","tag":"t"}"#),
            "original bytes follow"
        );
        assert!(matches!(
            fluentd(br#"{"log":"x"}"#),
            Err(ShuttleError::Missing(_))
        ));
        assert!(matches!(fluentd(b"[1]"), Err(ShuttleError::NotObject(_))));
    }

    #[test]
    fn build_logs() {
        let (line, _) = build_log(
            br#"{"build":7,"job":"j","message":"Step 1/9 : FROM rust","metadata":"shop-prod"}"#,
        )
        .expect("event");
        let v: Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(
            (v["app"].as_str(), v["space"].as_str(), v["dyno"].as_str()),
            (Some("shop"), Some("prod"), Some("akkeris/build"))
        );
        let (line, _) = build_log(br#"{"message":"m","metadata":"solo"}"#).expect("event");
        assert!(String::from_utf8_lossy(&line).contains("\"space\":\"default\""));
    }

    #[test]
    fn web_logs() {
        let (line, _) = web_log("hostname=shop-prod.example.com path=/cart method=GET status=200 source=10.0.0.1%3A443 total=12ms").expect("event");
        let v: Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(
            (v["app"].as_str(), v["space"].as_str()),
            (Some("shop"), Some("prod"))
        );
        assert_eq!(v["fwd"], "10.0.0.1:443");
        assert_eq!(v["status"], "200");
        assert!(matches!(
            web_log("hostname=a-b.c not-a-pair"),
            Err(ShuttleError::BadToken(_))
        ));
        assert!(matches!(
            web_log("path=/x"),
            Err(ShuttleError::Missing("hostname"))
        ));
    }

    proptest::proptest! {
        #[test]
        fn never_panic(s in "\\PC{0,120}") {
            let _ = web_log(&s);
            let _ = fluentd(s.as_bytes());
            let _ = build_log(s.as_bytes());
        }
    }
}
