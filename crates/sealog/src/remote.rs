//! A running server's API as a [`Backend`]: chosen with `--url`, or
//! automatically when a server holds the data directory (it records its
//! address in `<data>/server.json` and its admin token in `admin.token`).
//!
//! The admin token of a data directory goes only to the server recorded in
//! that directory: `--url` naming any other server needs `--token`.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use futures_util::StreamExt;
use reqwest::{Method, StatusCode, Url};
use sealog_event::RealmName;
use sealog_journal::checkpoint::VerifierKey;
use sealog_journal::verify::Evidence;
use sealog_journal::{EventRef, Receipt};
use sealog_query::Order;
use sealog_store::{CreatedRealm, IssuedToken, Scope, TokenInfo};
use serde_json::Value;

use crate::backend::{Backend, Emit, PageRequest, QuerySpec, TailSpec, Verdict};
use crate::Failure;

/// Most records the server returns in one query page (it caps `limit`
/// there; it may also end a page early, with a cursor).
const MAX_PAGE: u64 = 100_000;

/// Where and as whom to call the API.
#[derive(Debug)]
pub struct Remote {
    url: String,
    token: String,
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

/// What `<data>/server.json` says about the server holding the directory.
fn recorded_server(data: &Path) -> Option<SocketAddr> {
    // A server.json left by a killed server names a port anyone may have
    // bound since: trust it only while a process holds the directory.
    if !server_holds(data) {
        return None;
    }
    let text = std::fs::read_to_string(data.join("server.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["http"].as_str()?.parse().ok()
}

fn admin_token(data: &Path) -> Option<String> {
    std::fs::read_to_string(data.join("admin.token"))
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// True while some process holds `data`'s lock.
fn server_holds(data: &Path) -> bool {
    data.join("LOCK").exists()
        && matches!(
            sealog_store::DataDir::open(data, "sealog (probe)"),
            Err(sealog_store::StoreError::Locked { .. })
        )
}

/// True when `url` names the server listening on `addr` (as recorded in
/// `server.json`): plain HTTP, the same port, and the same address, where
/// a server bound to every address answers on the loopback address of its
/// own family (127.0.0.1 for 0.0.0.0, ::1 for ::), and `localhost` is
/// 127.0.0.1. Another loopback address (127.0.0.2) is another listener.
fn names_recorded_server(url: &Url, addr: SocketAddr) -> bool {
    if url.scheme() != "http" || url.port_or_known_default() != Some(addr.port()) {
        return false;
    }
    let host = match url.host_str() {
        Some(h) if h.eq_ignore_ascii_case("localhost") => IpAddr::from([127, 0, 0, 1]),
        Some(h) => match h.trim_start_matches('[').trim_end_matches(']').parse() {
            Ok(ip) => ip,
            Err(_) => return false,
        },
        None => return false,
    };
    let recorded = addr.ip();
    let own_loopback = match recorded {
        IpAddr::V4(_) => IpAddr::from([127, 0, 0, 1]),
        IpAddr::V6(_) => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
    };
    host == recorded || (recorded.is_unspecified() && host == own_loopback)
}

/// Decides whether `command` goes through the API, and with which token.
///
/// With `--url` it always does: with `--token` (or `SEALOG_TOKEN`), or with
/// the data directory's admin token when `--url` names the server recorded
/// in that directory. Without `--url` it does when a server holds the data
/// directory.
///
/// # Errors
/// `--url` naming another server without `--token` (exit 2); a held data
/// directory with no recorded address or token.
pub fn target(
    data: &Path,
    url: Option<&str>,
    token: Option<&str>,
    needs_server: bool,
) -> Result<Option<Remote>, Failure> {
    if let Some(url) = url {
        let parsed = Url::parse(url).map_err(|e| format!("--url {url}: {e}"))?;
        let token = match token {
            Some(t) => t.to_string(),
            None => match recorded_server(data) {
                Some(addr) if names_recorded_server(&parsed, addr) => admin_token(data)
                    .ok_or_else(|| {
                        format!(
                            "--url {url} needs --token (or SEALOG_TOKEN): {} has no admin token",
                            data.display()
                        )
                    })?,
                recorded => {
                    let which = match recorded {
                        Some(addr) => format!(
                            "the server recorded in {} (http://{addr})",
                            data.join("server.json").display()
                        ),
                        None => format!(
                            "a server recorded in {}, and there is none",
                            data.join("server.json").display()
                        ),
                    };
                    return Err(format!(
                        "--url {url} needs --token (or SEALOG_TOKEN): the admin token of {} is sent only to {which}",
                        data.display()
                    )
                    .into());
                }
            },
        };
        return Ok(Some(Remote::new(url, token)?));
    }
    let no_server = || -> Result<Option<Remote>, Failure> {
        if needs_server {
            Err("tail needs a running server: start `sealog serve` or pass --url".into())
        } else {
            Ok(None)
        }
    };
    // A held directory has its lock file; without one nothing holds it (and
    // probing would create the directory).
    if !data.join("LOCK").exists() {
        return no_server();
    }
    // Is a server holding the directory? Probe the lock; if it is free, drop it.
    match sealog_store::DataDir::open(data, "sealog (probe)") {
        Ok(_) => no_server(),
        Err(sealog_store::StoreError::Locked { holder, .. }) => {
            let token = token.map(str::to_string).or_else(|| admin_token(data));
            match (recorded_server(data), token) {
                (Some(addr), Some(token)) => Ok(Some(Remote::new(&format!("http://{addr}"), token)?)),
                _ => Err(format!(
                    "data directory {} is in use by another process ({holder}) and no server address or token was found; pass --url and --token",
                    data.display()
                )
                .into()),
            }
        }
        // Let the local command report the precise error.
        Err(_) => no_server(),
    }
}

/// Percent-encodes a query parameter value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A `where` term as the API spells it (`key:value`).
fn where_param(w: &str) -> String {
    format!("where={}", enc(&w.replacen('=', ":", 1)))
}

impl Remote {
    fn new(url: &str, token: String) -> Result<Self, Failure> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        // No redirects: a token is for the server it was given for.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            url: url.trim_end_matches('/').to_string(),
            token,
            client,
            rt,
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<reqwest::Response, Failure> {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some((content_type, b)) = body {
            req = req.header("content-type", content_type).body(b);
        }
        let resp = req.send().await.map_err(|e| format!("{}: {e}", self.url))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let msg = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| {
                let mut m = v["error"].as_str()?.to_string();
                for l in v["lines"].as_array().into_iter().flatten() {
                    m.push_str(&format!(
                        "\n  line {}: {}",
                        l["line"],
                        l["reason"].as_str().unwrap_or("")
                    ));
                }
                Some(m)
            })
            .unwrap_or(text);
        let hint = match status {
            StatusCode::FORBIDDEN => " (through a server: ingest and drains need the realm's write token, query and checkpoint its query token, the rest the admin token; pass --token)",
            _ => "",
        };
        Err(format!("server answered {status}: {msg}{hint}").into())
    }

    /// A call whose answer is JSON of type `T`.
    fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, Failure> {
        self.rt.block_on(async {
            let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
            let resp = self.call(method, path, body).await?;
            let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
            serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}{path}: unexpected answer: {e}", self.url).into())
        })
    }
}

impl Remote {
    /// A drain API call (the realm's write token); the answer's JSON.
    ///
    /// # Errors
    /// The server's refusal with its reason.
    pub fn drain_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        self.json(method, path, body)
    }
}

impl Backend for Remote {
    fn create_realm(&self, name: &RealmName) -> Result<CreatedRealm, Failure> {
        self.json(
            Method::POST,
            "/v1/admin/realms",
            Some(serde_json::json!({ "name": name })),
        )
    }

    fn realms(&self) -> Result<Vec<Value>, Failure> {
        self.json(Method::GET, "/v1/admin/realms", None)
    }

    fn realm_key(&self, name: &RealmName) -> Result<String, Failure> {
        self.realms()?
            .iter()
            .find(|r| r["name"] == name.as_str())
            .and_then(|r| r["public_key"].as_str())
            .map(str::to_string)
            .ok_or_else(|| format!("unknown realm {:?}", name.as_str()).into())
    }

    fn issue_token(&self, realm: &RealmName, scope: Scope) -> Result<IssuedToken, Failure> {
        self.json(
            Method::POST,
            "/v1/admin/tokens",
            Some(serde_json::json!({ "realm": realm, "scope": scope })),
        )
    }

    fn tokens(&self, realm: Option<&RealmName>) -> Result<Vec<TokenInfo>, Failure> {
        let path = match realm {
            // A realm name needs no escaping.
            Some(r) => format!("/v1/admin/tokens?realm={r}"),
            None => "/v1/admin/tokens".into(),
        };
        self.json(Method::GET, &path, None)
    }

    fn revoke_token(&self, id: &str) -> Result<TokenInfo, Failure> {
        self.json(
            Method::DELETE,
            &format!("/v1/admin/tokens/{}", enc(id)),
            None,
        )
    }

    fn ingest(
        &self,
        realm: &RealmName,
        events: &[EventRef<'_>],
        batch: usize,
        on_commit: &mut dyn FnMut(&Receipt),
    ) -> Result<(), Failure> {
        for chunk in events.chunks(batch.max(1)) {
            let mut body = Vec::with_capacity(chunk.iter().map(|e| e.bytes.len() + 1).sum());
            for e in chunk {
                body.extend_from_slice(e.bytes);
                body.push(b'\n');
            }
            let receipt: Receipt = self.rt.block_on(async {
                let resp = self
                    .call(
                        Method::POST,
                        "/v1/ingest",
                        Some(("application/x-ndjson", body)),
                    )
                    .await?;
                let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
                serde_json::from_slice(&bytes)
                    .map_err(|e| Failure::from(format!("/v1/ingest: not a receipt: {e}")))
            })?;
            on_commit(&receipt);
            // The server takes the realm from the token: a token of another
            // realm must not quietly fill it. Stop at the first commit.
            if receipt.realm != realm.as_str() {
                return Err(format!(
                    "the token is for realm {:?}, not {realm:?}: {} records were committed to {:?} (seqs {}..={}); stopped",
                    receipt.realm, receipt.count, receipt.realm, receipt.first_seq, receipt.last_seq
                )
                .into());
            }
        }
        Ok(())
    }

    fn query_page(
        &self,
        _realm: &RealmName,
        spec: &QuerySpec,
        page: PageRequest,
        emit: &mut Emit<'_>,
    ) -> Result<Option<u64>, Failure> {
        let limit = page.limit.unwrap_or(MAX_PAGE).min(MAX_PAGE);
        let mut params = vec![format!("limit={limit}")];
        if let Some(f) = &spec.from {
            params.push(format!("from={}", enc(f)));
        }
        if let Some(t) = &spec.to {
            params.push(format!("to={}", enc(t)));
        }
        if let Some(q) = &spec.q {
            params.push(format!("q={}", enc(q)));
        }
        params.extend(spec.wheres.iter().map(|w| where_param(w)));
        if spec.order == Order::Newest {
            params.push("order=newest".into());
        }
        if let Some(c) = page.cursor {
            params.push(format!("cursor={c}"));
        }
        self.rt.block_on(async {
            let resp = self
                .call(
                    Method::GET,
                    &format!("/v1/query?{}", params.join("&")),
                    None,
                )
                .await?;
            let next = match resp.headers().get("x-sealog-next-cursor") {
                Some(v) => Some(
                    v.to_str()
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                        .ok_or("the server sent a malformed x-sealog-next-cursor")?,
                ),
                None => None,
            };
            // Lines are passed on as they arrive: a page is never held whole.
            let mut stream = resp.bytes_stream();
            let mut buf = Vec::new();
            while let Some(chunk) = stream.next().await {
                buf.extend_from_slice(&chunk.map_err(|e| format!("query: {e}"))?);
                let mut start = 0;
                while let Some(at) = memchr::memchr(b'\n', &buf[start..]) {
                    emit(&buf[start..start + at])?;
                    start += at + 1;
                }
                buf.drain(..start);
            }
            if !buf.is_empty() {
                return Err("query: the answer ended inside a line".into());
            }
            Ok(next)
        })
    }

    fn checkpoint(&self, _realm: &RealmName) -> Result<String, Failure> {
        self.rt.block_on(async {
            let resp = self.call(Method::GET, "/v1/checkpoint", None).await?;
            Ok(resp.text().await.map_err(|e| e.to_string())?)
        })
    }

    fn witnessed(&self, realm: &RealmName) -> Result<Option<String>, Failure> {
        // GET /v1/checkpoint takes a query token, and verify an admin one.
        Err(format!(
            "over --url, fetch the realm's cosigned checkpoint with its query token \
             (`sealog checkpoint --realm {realm} --token QUERY_TOKEN > cosigned.note`) \
             and pass it with --checkpoint cosigned.note"
        )
        .into())
    }

    fn retention(
        &self,
        realm: &RealmName,
        args: &crate::backend::RetentionArgs,
        dry_run: bool,
    ) -> Result<sealog_server::retention::Report, Failure> {
        args.spec()?;
        self.json(
            Method::POST,
            "/v1/admin/retention",
            Some(serde_json::json!({
                "realm": realm,
                "days": args.days,
                "app": args.app,
                "type": args.typ,
                "priority": args.priority,
                "dry_run": dry_run,
            })),
        )
    }

    fn verify(
        &self,
        realm: &RealmName,
        evidence: Evidence,
        key: Option<&VerifierKey>,
    ) -> Result<Verdict, Failure> {
        // A mistyped realm is a usage error, not a failed (or passed) verification.
        if !self.realms()?.iter().any(|r| r["name"] == realm.as_str()) {
            return Err(format!("no realm named {realm} on {}", self.url).into());
        }
        // A pinned key is sent, so the server verifies with it, not with
        // whatever key realm.meta holds now.
        let v: Value = self.json(
            Method::POST,
            "/v1/admin/verify",
            Some(serde_json::json!({
                "realm": realm,
                "checkpoints": evidence.checkpoints,
                "receipts": evidence.receipts,
                "key": key.map(ToString::to_string),
            })),
        )?;
        let strings = |field: &str, inner: Option<&str>| -> Vec<String> {
            v[field]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| {
                    inner
                        .map_or(x, |k| &x[k])
                        .as_str()
                        .unwrap_or("unknown")
                        .to_string()
                })
                .collect()
        };
        let mut findings = strings("findings", Some("text"));
        if v["ok"] != true && findings.is_empty() {
            findings.push("the server reported a failure without a finding".into());
        }
        Ok(Verdict {
            committed: v["committed"].as_u64().unwrap_or(0),
            checkpoints: v["checkpoints"].as_u64().unwrap_or(0),
            evidence: v["evidence"].as_u64().unwrap_or(0),
            findings,
            notes: strings("notes", None),
            key: v["key"].as_str().unwrap_or("").to_string(),
            damage: None,
        })
    }

    fn tail(&self, _realm: &RealmName, spec: &TailSpec) -> Result<(), Failure> {
        use std::io::Write;
        let mut params = Vec::new();
        if let Some(q) = &spec.q {
            params.push(format!("q={}", enc(q)));
        }
        params.extend(spec.wheres.iter().map(|w| where_param(w)));
        if let Some(s) = spec.since_seq {
            params.push(format!("since_seq={s}"));
        }
        self.rt.block_on(async {
            let resp = self
                .call(Method::GET, &format!("/v1/tail?{}", params.join("&")), None)
                .await?;
            let mut stream = resp.bytes_stream();
            let mut buf = Vec::new();
            let stdout = std::io::stdout();
            while let Some(chunk) = stream.next().await {
                buf.extend_from_slice(&chunk.map_err(|e| format!("tail stream: {e}"))?);
                while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
                    let event: Vec<u8> = buf.drain(..end + 2).collect();
                    let mut out = stdout.lock();
                    for line in event.split(|b| *b == b'\n') {
                        if let Some(data) = line.strip_prefix(b"data: ") {
                            out.write_all(data)?;
                            out.write_all(b"\n")?;
                        }
                    }
                    out.flush()?;
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_recorded_server_is_the_recorded_server() {
        let url = |u: &str| Url::parse(u).expect("url");
        let lo: SocketAddr = "127.0.0.1:7700".parse().expect("addr");
        let any: SocketAddr = "0.0.0.0:7700".parse().expect("addr");
        assert!(names_recorded_server(&url("http://127.0.0.1:7700"), lo));
        assert!(names_recorded_server(&url("http://127.0.0.1:7700/"), lo));
        assert!(names_recorded_server(&url("http://localhost:7700"), lo));
        assert!(names_recorded_server(&url("http://127.0.0.1:7700"), any));
        assert!(!names_recorded_server(&url("http://127.0.0.1:7701"), lo));
        assert!(!names_recorded_server(&url("https://127.0.0.1:7700"), lo));
        assert!(!names_recorded_server(&url("http://10.0.0.5:7700"), lo));
        assert!(!names_recorded_server(&url("http://10.0.0.5:7700"), any));
        assert!(!names_recorded_server(&url("http://evil.example:7700"), lo));
        assert!(!names_recorded_server(&url("http://127.0.0.1"), lo));
        let v6: SocketAddr = "[::1]:7700".parse().expect("addr");
        assert!(names_recorded_server(&url("http://[::1]:7700"), v6));
        // Another loopback address, or the other family, is another listener.
        assert!(!names_recorded_server(&url("http://127.0.0.2:7700"), lo));
        assert!(!names_recorded_server(&url("http://127.0.0.2:7700"), any));
        assert!(!names_recorded_server(&url("http://[::1]:7700"), lo));
        assert!(!names_recorded_server(&url("http://127.0.0.1:7700"), v6));
    }

    #[test]
    fn a_server_json_without_a_holder_is_not_trusted() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("server.json"),
            r#"{"http":"127.0.0.1:7700"}"#,
        )
        .expect("write");
        assert_eq!(recorded_server(dir.path()), None, "no LOCK file");
        std::fs::write(dir.path().join("LOCK"), "").expect("write");
        assert_eq!(recorded_server(dir.path()), None, "a LOCK nobody holds");
    }
}
