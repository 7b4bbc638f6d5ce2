//! Commands through a running server's API: chosen with `--url`, or
//! automatically when a server holds the data directory (it records its
//! address in `<data>/server.json` and its admin token in `admin.token`).

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::cli::{Cli, Command, RealmCmd, ScopeArg, TokenCmd};
use crate::cmd::{emit_json, realm_created, token_issued, OutFile};
use crate::Failure;

/// Where and as whom to call the API.
#[derive(Debug)]
pub struct Remote {
    url: String,
    token: String,
}

/// Decides whether this invocation goes through the API.
///
/// # Errors
/// `--url` without any token to use.
pub fn target(cli: &Cli) -> Result<Option<Remote>, Failure> {
    let remote_capable = matches!(
        cli.command,
        Command::Realm(_)
            | Command::Token(_)
            | Command::Ingest { .. }
            | Command::Query { .. }
            | Command::Checkpoint { .. }
            | Command::Verify { .. }
            | Command::Tail { .. }
    );
    if !remote_capable {
        return Ok(None);
    }
    let token = |data: &Path| -> Option<String> {
        cli.token.clone().or_else(|| {
            std::fs::read_to_string(data.join("admin.token"))
                .ok()
                .map(|t| t.trim().to_string())
        })
    };
    if let Some(url) = &cli.url {
        let token = token(&cli.data).ok_or("--url needs --token (or SEALOG_TOKEN)")?;
        return Ok(Some(Remote {
            url: url.trim_end_matches('/').to_string(),
            token,
        }));
    }
    // Is a server holding the directory? Probe the lock; if it is free, drop it.
    match sealog_store::DataDir::open(&cli.data, "sealog (probe)") {
        Ok(_) if matches!(cli.command, Command::Tail { .. }) => {
            Err("tail needs a running server: start `sealog serve` or pass --url".into())
        }
        Ok(_) => Ok(None),
        Err(sealog_store::StoreError::Locked { holder, .. }) => {
            let info = std::fs::read_to_string(cli.data.join("server.json")).ok();
            let addr = info
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .and_then(|v| v["http"].as_str().map(str::to_string));
            match (addr, token(&cli.data)) {
                (Some(addr), Some(token)) => Ok(Some(Remote {
                    url: format!("http://{addr}"),
                    token,
                })),
                _ => Err(format!(
                    "data directory {} is in use by another process ({holder}) and no server address or token was found; pass --url and --token",
                    cli.data.display()
                )
                .into()),
            }
        }
        Err(_) if matches!(cli.command, Command::Tail { .. }) => {
            Err("tail needs a running server: start `sealog serve` or pass --url".into())
        }
        Err(_) => Ok(None), // let the local command report the precise error
    }
}

/// Runs `command` against the API.
///
/// # Errors
/// HTTP failures and API errors (with the server's message).
pub fn run(remote: &Remote, command: Command) -> Result<(), Failure> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(remote, command))
}

async fn call(
    remote: &Remote,
    method: Method,
    path: &str,
    body: Option<reqwest::Body>,
    json: bool,
) -> Result<reqwest::Response, Failure> {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", remote.url))
        .bearer_auth(&remote.token);
    if let Some(b) = body {
        req = req
            .header(
                "content-type",
                if json {
                    "application/json"
                } else {
                    "application/x-ndjson"
                },
            )
            .body(b);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("{}: {e}", remote.url))?;
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
        StatusCode::FORBIDDEN => " (through a server: ingest needs the realm's write token, query and checkpoint its query token, the rest the admin token; pass --token)",
        _ => "",
    };
    Err(format!("server answered {status}: {msg}{hint}").into())
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

async fn json(resp: reqwest::Response) -> Result<Value, Failure> {
    Ok(resp.json().await.map_err(|e| e.to_string())?)
}

async fn run_async(remote: &Remote, command: Command) -> Result<(), Failure> {
    match command {
        Command::Realm(RealmCmd::Create { name, out }) => {
            // The output file first: a realm whose tokens cannot be saved
            // is not created.
            let out = out.as_deref().map(OutFile::prepare).transpose()?;
            let body = serde_json::json!({"name": name}).to_string();
            let v = json(
                call(
                    remote,
                    Method::POST,
                    "/v1/admin/realms",
                    Some(body.into()),
                    true,
                )
                .await?,
            )
            .await?;
            emit_json(&v, out, &realm_created(&name))
        }
        Command::Realm(RealmCmd::List) => {
            let v = json(call(remote, Method::GET, "/v1/admin/realms", None, false).await?).await?;
            for r in v.as_array().into_iter().flatten() {
                println!("{r}");
            }
            Ok(())
        }
        Command::Realm(RealmCmd::Key { name }) => {
            let v = json(call(remote, Method::GET, "/v1/admin/realms", None, false).await?).await?;
            let key = v
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["name"] == name.as_str())
                .and_then(|r| r["public_key"].as_str())
                .ok_or_else(|| format!("unknown realm {name:?}"))?;
            println!("{key}");
            Ok(())
        }
        Command::Token(TokenCmd::Issue { realm, scope, out }) => {
            let out = out.as_deref().map(OutFile::prepare).transpose()?;
            let scope = match scope {
                ScopeArg::Write => "write",
                ScopeArg::Query => "query",
            };
            let body = serde_json::json!({"realm": realm, "scope": scope}).to_string();
            let v = json(
                call(
                    remote,
                    Method::POST,
                    "/v1/admin/tokens",
                    Some(body.into()),
                    true,
                )
                .await?,
            )
            .await?;
            let id = v["id"].as_str().unwrap_or("(id unknown)");
            emit_json(&v, out, &token_issued(id, &realm))
        }
        Command::Token(TokenCmd::List { realm }) => {
            let path = match realm {
                Some(r) => format!("/v1/admin/tokens?realm={r}"),
                None => "/v1/admin/tokens".into(),
            };
            let v = json(call(remote, Method::GET, &path, None, false).await?).await?;
            for t in v.as_array().into_iter().flatten() {
                println!("{t}");
            }
            Ok(())
        }
        Command::Token(TokenCmd::Revoke { token_id }) => {
            let v = json(
                call(
                    remote,
                    Method::DELETE,
                    &format!("/v1/admin/tokens/{token_id}"),
                    None,
                    false,
                )
                .await?,
            )
            .await?;
            println!("{v}");
            Ok(())
        }
        Command::Ingest { input, .. } => {
            let bytes = if input == "-" {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut v)?;
                v
            } else {
                std::fs::read(&input).map_err(|e| format!("read {input}: {e}"))?
            };
            let v = json(
                call(
                    remote,
                    Method::POST,
                    "/v1/ingest",
                    Some(bytes.into()),
                    false,
                )
                .await?,
            )
            .await?;
            println!("{v}");
            Ok(())
        }
        Command::Tail {
            q,
            wheres,
            since_seq,
            ..
        } => {
            let mut params = Vec::new();
            if let Some(q) = q {
                params.push(format!("q={}", enc(&q)));
            }
            for w in wheres {
                params.push(format!("where={}", enc(&w.replacen('=', ":", 1))));
            }
            if let Some(s) = since_seq {
                params.push(format!("since_seq={s}"));
            }
            let resp = call(
                remote,
                Method::GET,
                &format!("/v1/tail?{}", params.join("&")),
                None,
                false,
            )
            .await?;
            let mut stream = resp.bytes_stream();
            let mut buf = Vec::new();
            use futures_util::StreamExt;
            use std::io::Write;
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
        }
        Command::Query {
            from,
            to,
            q,
            wheres,
            limit,
            newest,
            ..
        } => {
            let mut params = vec![format!("limit={}", limit.unwrap_or(100_000))];
            if let Some(f) = from {
                params.push(format!("from={}", enc(&f)));
            }
            if let Some(t) = to {
                params.push(format!("to={}", enc(&t)));
            }
            if let Some(q) = q {
                params.push(format!("q={}", enc(&q)));
            }
            for w in wheres {
                params.push(format!("where={}", enc(&w.replacen('=', ":", 1))));
            }
            if newest {
                params.push("order=newest".into());
            }
            let resp = call(
                remote,
                Method::GET,
                &format!("/v1/query?{}", params.join("&")),
                None,
                false,
            )
            .await?;
            print!("{}", resp.text().await.map_err(|e| e.to_string())?);
            Ok(())
        }
        Command::Checkpoint { .. } => {
            let resp = call(remote, Method::GET, "/v1/checkpoint", None, false).await?;
            print!("{}", resp.text().await.map_err(|e| e.to_string())?);
            Ok(())
        }
        Command::Verify {
            realm,
            checkpoint,
            receipts,
            key,
        } => {
            let mut cps = Vec::new();
            for p in &checkpoint {
                cps.push(
                    std::fs::read_to_string(p).map_err(|e| format!("read {}: {e}", p.display()))?,
                );
            }
            let mut rs = Vec::new();
            for p in &receipts {
                rs.extend(crate::cmd::read_receipts(p)?);
            }
            // A pinned key is checked here (a malformed one is a usage
            // error) and sent, so the server verifies with it, not with
            // whatever key realm.meta holds now.
            if let Some(k) = &key {
                k.parse::<sealog_journal::checkpoint::VerifierKey>()?;
            }
            let body =
                serde_json::json!({"realm": realm, "checkpoints": cps, "receipts": rs, "key": key})
                    .to_string();
            let v = json(
                call(
                    remote,
                    Method::POST,
                    "/v1/admin/verify",
                    Some(body.into()),
                    true,
                )
                .await?,
            )
            .await?;
            for n in v["notes"].as_array().into_iter().flatten() {
                eprintln!("note: {}", n.as_str().unwrap_or(""));
            }
            if v["ok"] == true {
                println!(
                    "ok: realm {realm}: {} records and {} checkpoints verified with key {}; {} client checkpoints/receipts hold",
                    v["committed"], v["checkpoints"], v["key"].as_str().unwrap_or(""), v["evidence"]
                );
                Ok(())
            } else {
                let first = v["findings"][0]["text"]
                    .as_str()
                    .unwrap_or("unknown")
                    .to_string();
                Err(Failure::verify(format!(
                    "verification FAILED for realm {realm}: first bad {first}"
                )))
            }
        }
        _ => Err("this command needs the data directory itself; stop the server first".into()),
    }
}
