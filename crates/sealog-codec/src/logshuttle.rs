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
//!   given as `fwd`, URL-unescaped;
//! - a Kubernetes phase message (`Phase: Running/waiting -- ...`) gets the
//!   text logshuttle showed as `msg`;
//! - build arguments (`Step N/M : ARG NAME=value`) are redacted before the
//!   record is made (logshuttle compiled that rule and never applied it);
//! - istio access logs (mixer JSON, or Envoy ALS `HTTPAccessLogEntry`) get
//!   logshuttle's router line as `msg`, app and space from the upstream
//!   cluster `outbound|port||app.space.svc...`.

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
    // Kubernetes phase messages read as logshuttle shows them; `log`
    // itself is kept as sent.
    if let Some(human) = str_at(&v, &["log"]).and_then(humanize_phase) {
        add.push(("msg", human));
    }
    splice(body, &obj, &add)
}

/// Logshuttle's reading of a Kubernetes phase message (`Phase: ...`), or
/// `None` for any other text (seed-systems §3.5).
pub fn humanize_phase(log: &str) -> Option<String> {
    let rest = log.strip_prefix("Phase: ")?;
    let fixed = [
        ("Creating -- ", "Creating Dyno"),
        ("Pending/ --", "Waiting on Dyno"),
        ("Pending/waiting --", "Waiting on Dyno"),
        (
            "Running/waiting --",
            "at=error code=H10 desc=\"App crashed\"",
        ),
        ("Running/running --", "Checking Dyno Health"),
        ("Deleting -- pod", "Deleting Dyno"),
    ];
    if let Some((_, h)) = fixed.iter().find(|(p, _)| rest.starts_with(p)) {
        return Some((*h).to_string());
    }
    if rest.starts_with("Running/terminated --") {
        let code = rest
            .split_whitespace()
            .find_map(|t| t.strip_prefix("exitCode="))
            .unwrap_or("unknown");
        return Some(format!("Dyno exited (exit code {code})"));
    }
    None
}

/// Replaces the value of every Docker `Step N/M : ARG NAME=value` in a
/// build log with `[redacted]`, so build arguments (often credentials)
/// are not stored; logshuttle compiled this rule and never applied it.
/// Returns the text and how many values were redacted.
pub fn redact_build_args(text: &str) -> (String, usize) {
    let mut out = String::with_capacity(text.len());
    let mut n = 0;
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&redact_line(line, &mut n));
    }
    (out, n)
}

fn redact_line(line: &str, n: &mut usize) -> String {
    // The word ARG in any case (Docker's `Step N/M : ARG`, BuildKit's
    // `#5 [2/3] ARG`, an echoed `arg`, `--build-arg`), then everything
    // after the first `=` to the end of the line.
    let b = line.as_bytes();
    let mut i = 0;
    while let Some(off) = b
        .get(i..)
        .and_then(|rest| rest.windows(3).position(|w| w.eq_ignore_ascii_case(b"arg")))
    {
        let at = i + off;
        let before_ok = at == 0 || !b[at - 1].is_ascii_alphanumeric();
        let after_ok = b.get(at + 3).is_some_and(u8::is_ascii_whitespace);
        if before_ok && after_ok {
            if let Some(eq) = b[at + 3..].iter().position(|c| *c == b'=') {
                let keep = at + 3 + eq + 1;
                *n += 1;
                // `keep` follows an ASCII `=`: a char boundary.
                return format!("{}[redacted]", line.get(..keep).unwrap_or(line));
            }
            return line.to_string();
        }
        i = at + 1;
    }
    line.to_string()
}

fn num_at(v: &Value, path: &[&str]) -> i64 {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(next) => cur = next,
            None => return 0,
        }
    }
    match cur {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

/// An Envoy duration (`"0.002s"`, or a number of nanoseconds) in
/// milliseconds, formatted `%.2fms`.
fn envoy_ms(v: &Value) -> Option<String> {
    let ms = match v {
        Value::String(s) => {
            let s = s.trim();
            if let Some(x) = s.strip_suffix("ms") {
                x.parse::<f64>().ok()?
            } else if let Some(x) = s.strip_suffix('s') {
                x.parse::<f64>().ok()? * 1000.0
            } else {
                s.parse::<f64>().ok()? / 1e6
            }
        }
        Value::Number(n) => n.as_f64()? / 1e6,
        Value::Object(o) => {
            // protobuf Duration as an object
            let secs = o.get("seconds").map(|s| num_at(s, &[])).unwrap_or(0);
            let nanos = o.get("nanos").map(|s| num_at(s, &[])).unwrap_or(0);
            secs as f64 * 1000.0 + nanos as f64 / 1e6
        }
        _ => return None,
    };
    ms.is_finite().then(|| format!("{ms:.2}ms"))
}

/// An istio access log (`istio-access-logs`): Envoy ALS
/// `HTTPAccessLogEntry` JSON when it has `common_properties`, else the
/// mixer JSON. The record keeps the message and adds `app`, `space`,
/// `dyno` (`akkeris/router`), `path` and `msg`, the router line
/// logshuttle built.
///
/// # Errors
/// [`ShuttleError`] for a body without the fields logshuttle required.
pub fn istio(body: &[u8]) -> Result<Event, ShuttleError> {
    let obj = object(body)?;
    let v = Value::Object(obj.clone());
    if obj.contains_key("common_properties") {
        return envoy_als(body, &obj, &v);
    }
    let s = |k: &str| str_at(&v, &[k]).unwrap_or_default().to_string();
    let app = str_at(&v, &["app"]).ok_or(ShuttleError::Missing("app"))?;
    let space = str_at(&v, &["space"]).unwrap_or("default");
    let msg = format!(
        "bytes={} method={} request_id={} fwd={} origin={} status={} service={} total={} source={} dyno={}",
        num_at(&v, &["bytes"]),
        s("method"),
        s("request_id"),
        s("fwd"),
        s("origin"),
        num_at(&v, &["status"]),
        s("service"),
        s("total"),
        s("source"),
        s("dyno"),
    );
    let add = [
        ("app", app.to_string()),
        ("space", space.to_string()),
        ("proc_type", "web".to_string()),
        ("dyno", "akkeris/router".to_string()),
        ("msg", msg),
    ];
    splice(body, &obj, &add)
}

fn envoy_als(
    body: &[u8],
    obj: &serde_json::Map<String, Value>,
    v: &Value,
) -> Result<Event, ShuttleError> {
    let cp = &v["common_properties"];
    let cluster = str_at(v, &["common_properties", "upstream_cluster"])
        .filter(|c| !c.is_empty())
        .ok_or(ShuttleError::Missing("common_properties.upstream_cluster"))?;
    if v.get("request").is_none_or(Value::is_null) {
        return Err(ShuttleError::Missing("request"));
    }
    let code = v
        .get("response")
        .and_then(|r| r.get("response_code"))
        .filter(|c| !c.is_null())
        .ok_or(ShuttleError::Missing("response.response_code"))?;
    let connect = cp
        .get("time_to_last_upstream_tx_byte")
        .and_then(envoy_ms)
        .ok_or(ShuttleError::Missing(
            "common_properties.time_to_last_upstream_tx_byte",
        ))?;
    let rx = cp
        .get("time_to_last_rx_byte")
        .and_then(envoy_ms)
        .ok_or(ShuttleError::Missing(
            "common_properties.time_to_last_rx_byte",
        ))?;
    // `outbound|<port>||<app>.<space>.svc...`
    let host = cluster.split('|').nth(3).unwrap_or_default();
    let mut labels = host.split('.');
    let (app, space) = match (labels.next(), labels.next()) {
        (Some(a), Some(s)) if !a.is_empty() && !s.is_empty() => (a, s),
        _ => {
            return Err(ShuttleError::Event(format!(
                "upstream_cluster {cluster:?} is not outbound|port||app.space.svc..."
            )))
        }
    };
    let mut status = num_at(code, &[]);
    if status == 0 && cp["response_flags"]["downstream_connection_termination"] == Value::Bool(true)
    {
        status = 499;
    }
    let req = |k: &str| str_at(v, &["request", k]).unwrap_or_default().to_string();
    let request_size = num_at(v, &["request", "request_headers_bytes"])
        + num_at(v, &["request", "request_body_bytes"]);
    let response_size = num_at(v, &["response", "response_headers_bytes"])
        + num_at(v, &["response", "response_body_bytes"]);
    let origin = str_at(
        v,
        &["common_properties", "tls_properties", "tls_sni_hostname"],
    )
    .map(|sni| format!("https://{sni}{}", req("original_path")))
    .unwrap_or_default();
    let tls =
        str_at(v, &["common_properties", "tls_properties", "tls_version"]).unwrap_or_default();
    let service = cp
        .get("time_to_last_upstream_rx_byte")
        .and_then(envoy_ms)
        .unwrap_or_default();
    let total = cp
        .get("time_to_last_downstream_tx_byte")
        .and_then(envoy_ms)
        .unwrap_or(rx);
    let msg = format!(
        "bytes={} request_size={request_size} response_size={response_size} method={} request_id={} fwd={} authority={} origin={origin} protocol={} tls={tls} status={status} connect={connect} service={service} total={total} dyno={app}-{space}",
        request_size + response_size,
        req("request_method"),
        req("request_id"),
        req("forwarded_for"),
        req("authority"),
        str_at(v, &["protocol_version"]).unwrap_or_default().to_lowercase(),
    );
    let add = [
        ("app", app.to_string()),
        ("space", space.to_string()),
        ("proc_type", "web".to_string()),
        ("dyno", "akkeris/router".to_string()),
        ("path", req("path")),
        ("msg", msg),
    ];
    splice(body, obj, &add)
}

/// A build log (`{"build","job","message","metadata":"app-space"}`) as an event.
///
/// # Errors
/// [`ShuttleError`] when it is not an object or has no metadata.
pub fn build_log(body: &[u8]) -> Result<Event, ShuttleError> {
    let obj = object(body)?;
    // The message is redacted from the parsed object: a second `message`
    // key would keep the first one's text, unredacted, in the stored bytes.
    if let Some(k) = duplicate_key(body) {
        return Err(ShuttleError::Event(format!(
            "field {k:?} appears more than once"
        )));
    }
    let meta = obj
        .get("metadata")
        .and_then(Value::as_str)
        .ok_or(ShuttleError::Missing("metadata"))?;
    let (app, space) = meta.split_once('-').unwrap_or((meta, "default"));
    if app.is_empty() || space.is_empty() {
        return Err(ShuttleError::Event(format!(
            "metadata {meta:?} is not app-space"
        )));
    }
    let add = [
        ("app", app.to_string()),
        ("space", space.to_string()),
        ("dyno", "akkeris/build".to_string()),
        ("source", "build".to_string()),
    ];
    // Build arguments are redacted before anything is stored: the body is
    // then re-written with the new message (and `redacted`, the count).
    if let Some(text) = obj.get("message").and_then(Value::as_str) {
        let (clean, n) = redact_build_args(text);
        if n > 0 {
            let mut changed = obj.clone();
            changed.insert("message".into(), Value::String(clean));
            changed.insert("redacted".into(), Value::from(n));
            let rewritten =
                serde_json::to_vec(&changed).map_err(|e| ShuttleError::Event(e.to_string()))?;
            return splice(&rewritten, &changed, &add);
        }
    }
    splice(body, &obj, &add)
}

/// The first top-level key that appears twice in a JSON object, if any.
pub fn duplicate_key(body: &[u8]) -> Option<String> {
    use serde::de::{Deserializer as _, IgnoredAny, MapAccess, Visitor};
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
            let mut seen = std::collections::HashSet::new();
            let mut dup = None;
            while let Some(k) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                if dup.is_none() && !seen.insert(k.clone()) {
                    dup = Some(k);
                }
            }
            Ok(dup)
        }
    }
    serde_json::Deserializer::from_slice(body)
        .deserialize_map(Keys)
        .ok()
        .flatten()
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
            // logshuttle took the last hostname; a line naming two is
            // ambiguous, and an empty one names no app.
            if host.is_some() {
                return Err(ShuttleError::BadToken(format!("{tok} (a second hostname)")));
            }
            if v.is_empty() {
                return Err(ShuttleError::Missing("hostname"));
            }
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
        assert!(web_log("hostname=shop-prod.x hostname=evil-space.x").is_err());
        assert!(web_log("hostname= path=/").is_err());
    }

    #[test]
    fn phase_messages_are_humanised_and_log_is_kept() {
        let body = br#"{"log":"Phase: Running/terminated --  reason=Error exitCode=137","kubernetes":{"container_name":"shop","pod_name":"shop-1"},"topic":"prod"}"#;
        let (line, _) = fluentd(body).expect("event");
        let v: Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(v["msg"], "Dyno exited (exit code 137)");
        assert_eq!(
            v["log"],
            "Phase: Running/terminated --  reason=Error exitCode=137"
        );
        for (log, want) in [
            (
                "Phase: Creating -- Creating pod blog-1",
                Some("Creating Dyno"),
            ),
            ("Phase: Pending/ --", Some("Waiting on Dyno")),
            (
                "Phase: Pending/waiting --  reason=ContainerCreating",
                Some("Waiting on Dyno"),
            ),
            (
                "Phase: Running/waiting --  reason=CrashLoopBackOff",
                Some("at=error code=H10 desc=\"App crashed\""),
            ),
            (
                "Phase: Running/running --  startedAt=2017",
                Some("Checking Dyno Health"),
            ),
            (
                "Phase: Deleting -- pod blog-4 in space default",
                Some("Deleting Dyno"),
            ),
            ("Phase: Unknown", None),
            ("GET / 200", None),
        ] {
            assert_eq!(humanize_phase(log).as_deref(), want, "{log}");
        }
    }

    #[test]
    fn build_args_are_redacted() {
        let (line, _) = build_log(br#"{"build":7,"job":"j","message":"Step 3/9 : ARG NPM_TOKEN=s3cret\nStep 4/9 : RUN make\nStep 5/9 : ARG X=1","metadata":"shop-prod"}"#).expect("event");
        let v: Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(
            v["message"],
            "Step 3/9 : ARG NPM_TOKEN=[redacted]\nStep 4/9 : RUN make\nStep 5/9 : ARG X=[redacted]"
        );
        assert_eq!(v["redacted"], 2);
        assert!(!String::from_utf8_lossy(&line).contains("s3cret"));
        assert_eq!(v["app"], "shop");
        for (text, want) in [
            (
                "Step 2/5 : ARG TOKEN=x\r",
                "Step 2/5 : ARG TOKEN=[redacted]",
            ),
            ("Step 1/3 : arg TOKEN=s3", "Step 1/3 : arg TOKEN=[redacted]"),
            (
                "Step 1/3 : ARG A B=secret more",
                "Step 1/3 : ARG A B=[redacted]",
            ),
            (
                "Step 1/3 : RUN x; Step 2/3 :  ARG T=s",
                "Step 1/3 : RUN x; Step 2/3 :  ARG T=[redacted]",
            ),
            ("#5 [2/3] ARG TOKEN=s3", "#5 [2/3] ARG TOKEN=[redacted]"),
            (
                "docker build --build-arg NPM=s3 .",
                "docker build --build-arg NPM=[redacted]",
            ),
            ("a cargo build with target=x", "a cargo build with target=x"),
            ("Step 1/2 : ARG NAME", "Step 1/2 : ARG NAME"),
        ] {
            assert_eq!(redact_build_args(text).0, want, "{text}");
        }
        assert!(matches!(
            build_log(br#"{"message":"Step 1/2 : ARG T=s3","message":"ok","metadata":"a-b"}"#),
            Err(ShuttleError::Event(_))
        ));
        assert!(build_log(br#"{"message":"m","metadata":"-prod"}"#).is_err());
    }

    #[test]
    fn istio_mixer_and_envoy_als() {
        let (line, _) = istio(br#"{"time":"2026-11-24T01:00:00Z","severity":"Info","bytes":512,"method":"GET","source":"10.0.0.9","space":"prod","path":"/cart","request_id":"r-1","origin":"https://shop.example.com","from":"x","host":"shop-prod","app":"shop","fwd":"1.2.3.4","status":200,"service":"5ms","dyno":"shop-prod","total":"7ms"}"#).expect("mixer");
        let v: Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(v["msg"], "bytes=512 method=GET request_id=r-1 fwd=1.2.3.4 origin=https://shop.example.com status=200 service=5ms total=7ms source=10.0.0.9 dyno=shop-prod");
        assert_eq!(
            (v["app"].as_str(), v["space"].as_str()),
            (Some("shop"), Some("prod"))
        );
        let als = br#"{"common_properties":{"upstream_cluster":"outbound|80||shop.prod.svc.cluster.local","time_to_last_rx_byte":"0.003s","time_to_last_upstream_tx_byte":"0.001s","time_to_last_upstream_rx_byte":"0.0025s","time_to_last_downstream_tx_byte":"0.004s","tls_properties":{"tls_version":"TLSv1_2","tls_sni_hostname":"shop.example.com"}},"protocol_version":"HTTP11","request":{"request_method":"POST","authority":"shop.example.com","path":"/pay","original_path":"/pay?x=1","request_id":"r-2","forwarded_for":"5.6.7.8","request_headers_bytes":"100","request_body_bytes":"20"},"response":{"response_code":201,"response_headers_bytes":"50","response_body_bytes":"30"}}"#;
        let (line, _) = istio(als).expect("als");
        let v: Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(v["msg"], "bytes=200 request_size=120 response_size=80 method=POST request_id=r-2 fwd=5.6.7.8 authority=shop.example.com origin=https://shop.example.com/pay?x=1 protocol=http11 tls=TLSv1_2 status=201 connect=1.00ms service=2.50ms total=4.00ms dyno=shop-prod");
        assert_eq!(
            (v["app"].as_str(), v["space"].as_str(), v["path"].as_str()),
            (Some("shop"), Some("prod"), Some("/pay"))
        );
        // Each field logshuttle required.
        for cut in [
            "upstream_cluster",
            "response_code",
            "time_to_last_upstream_tx_byte",
            "time_to_last_rx_byte",
        ] {
            let s = String::from_utf8_lossy(als).replace(cut, "other");
            assert!(istio(s.as_bytes()).is_err(), "without {cut}");
        }
        assert!(istio(br#"{"common_properties":{"upstream_cluster":"outbound|80"}}"#).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panic(s in "\\PC{0,120}") {
            let _ = web_log(&s);
            let _ = fluentd(s.as_bytes());
            let _ = build_log(s.as_bytes());
            let _ = istio(s.as_bytes());
            let _ = redact_build_args(&s);
            let _ = humanize_phase(&s);
        }
    }
}
