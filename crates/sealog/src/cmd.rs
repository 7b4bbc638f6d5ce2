//! The local commands: each opens (and locks) the data directory, does one
//! thing, and reports through stdout (data) and stderr (messages).

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sealog_journal::checkpoint::VerifierKey;
use sealog_journal::verify::{verify_dir, Evidence, Report};
use sealog_journal::{bundle, JournalError, JournalOptions, Receipt};
use sealog_query::{Filter, Order};
use sealog_store::{DataDir, Scope, StoreError};
use serde::Serialize;

use crate::cli::{BenchCmd, Cli, Command, RealmCmd, ScopeArg, TokenCmd};
use crate::{ingest, progress, Failure};

/// Runs one parsed command.
///
/// # Errors
/// A [`Failure`] with the exit code and message.
pub fn run(cli: Cli) -> Result<(), Failure> {
    if let Some(remote) = crate::remote::target(&cli)? {
        return crate::remote::run(&remote, cli.command);
    }
    let data = cli.data.as_path();
    match cli.command {
        Command::Serve {
            config,
            http,
            sidecar,
            syslog_tcp,
            syslog_udp,
            syslog_tls,
            tls_cert,
            tls_key,
        } => {
            let tls = match (syslog_tls, tls_cert, tls_key) {
                (Some(l), Some(cert), Some(key)) => {
                    Some(sealog_server::config::SyslogTlsListener {
                        addr: l.addr,
                        realm: l.realm,
                        cert,
                        key,
                        max_message_bytes: l.max_message_bytes,
                    })
                }
                _ => None,
            };
            crate::serve::run(
                data,
                config.as_deref(),
                http,
                (sidecar, syslog_tcp, syslog_udp, tls),
            )
        }
        Command::Realm(RealmCmd::Create { name, out }) => {
            // The output file first: a realm whose tokens cannot be saved
            // is not created.
            let out = out.as_deref().map(OutFile::prepare).transpose()?;
            let mut dd = DataDir::open(data, "sealog realm create")?;
            let created = dd.create_realm(&name)?;
            emit_json(&created, out, &realm_created(&name))
        }
        Command::Realm(RealmCmd::List) => {
            let dd = DataDir::open(data, "sealog realm list")?;
            // A damaged realm is listed with what is wrong, not hidden.
            for (name, r) in dd.realm_entries()? {
                let line = match r {
                    Ok(info) => serde_json::to_string(&info)?,
                    Err(e) => serde_json::json!({
                        "name": name,
                        "status": "failed",
                        "error": e.to_string(),
                    })
                    .to_string(),
                };
                println!("{line}");
            }
            Ok(())
        }
        Command::Realm(RealmCmd::Key { name }) => {
            let dd = DataDir::open(data, "sealog realm key")?;
            println!("{}", dd.verifier_key(&name)?);
            Ok(())
        }
        Command::Token(TokenCmd::Issue { realm, scope, out }) => {
            let out = out.as_deref().map(OutFile::prepare).transpose()?;
            let mut dd = DataDir::open(data, "sealog token issue")?;
            let scope = match scope {
                ScopeArg::Write => Scope::Write,
                ScopeArg::Query => Scope::Query,
            };
            let t = dd.issue_token(&realm, scope)?;
            emit_json(&t, out, &token_issued(&t.id, &realm))
        }
        Command::Token(TokenCmd::List { realm }) => {
            let dd = DataDir::open(data, "sealog token list")?;
            for t in dd.tokens(realm.as_deref())? {
                println!("{}", serde_json::to_string(&t)?);
            }
            Ok(())
        }
        Command::Token(TokenCmd::Revoke { token_id }) => {
            let mut dd = DataDir::open(data, "sealog token revoke")?;
            let t = dd.revoke_token(&token_id)?;
            println!("{}", serde_json::to_string(&t)?);
            Ok(())
        }
        Command::Ingest {
            realm,
            input,
            batch,
            receipts_out,
        } => cmd_ingest(data, &realm, &input, batch, receipts_out.as_deref()),
        Command::Query {
            realm,
            from,
            to,
            q,
            wheres,
            limit,
            newest,
        } => {
            let mut filter = Filter::default();
            if let Some(f) = from {
                filter = filter.with_from(&f)?;
            }
            if let Some(t) = to {
                filter = filter.with_to(&t)?;
            }
            if let Some(q) = q {
                filter = filter.with_text(&q);
            }
            for w in &wheres {
                filter = filter.with_where(w)?;
            }
            let dd = DataDir::open(data, "sealog query")?;
            let j = dd.open_journal(&realm, JournalOptions::default())?;
            let stdout = std::io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            let mut write_err = None;
            let order = if newest { Order::Newest } else { Order::Oldest };
            let stats = sealog_query::run(&j, &filter, order, limit, &mut |_, line| {
                if write_err.is_none() {
                    write_err = out.write_all(line).and_then(|_| out.write_all(b"\n")).err();
                }
            })?;
            out.flush()?;
            if let Some(e) = write_err {
                return Err(e.into());
            }
            tracing::info!(
                matched = stats.matched,
                scanned = stats.scanned,
                size = stats.size,
                "query done"
            );
            Ok(())
        }
        Command::Checkpoint { realm } => {
            let dd = DataDir::open(data, "sealog checkpoint")?;
            let j = dd.open_journal(&realm, JournalOptions::default())?;
            let cp = j.latest_checkpoint().ok_or_else(|| {
                Failure::from(format!(
                    "realm {realm:?} has no records yet, so no checkpoint"
                ))
            })?;
            print!("{}", cp.text);
            Ok(())
        }
        Command::Verify {
            realm,
            checkpoint,
            receipts,
            key,
        } => cmd_verify(data, &realm, &checkpoint, &receipts, key.as_deref()),
        Command::Export {
            realm,
            from_seq,
            to_seq,
            out,
        } => {
            let dd = DataDir::open(data, "sealog export")?;
            let j = dd.open_journal(&realm, JournalOptions::default())?;
            if j.size() == 0 {
                return Err(format!("realm {realm:?} has no records to export").into());
            }
            let from = from_seq.unwrap_or(0);
            let to = to_seq.unwrap_or(j.size() - 1);
            let pb = progress::bar(to.saturating_sub(from) + 1, "exporting");
            let file = std::fs::File::create(&out)
                .map_err(|e| format!("create {}: {e}", out.display()))?;
            let mut w = BufWriter::new(file);
            let header = bundle::export(&j, from, to, &mut w, &|n| pb.set_position(n))?;
            w.into_inner().map_err(|e| e.to_string())?.sync_all()?;
            pb.finish_and_clear();
            eprintln!(
                "exported seqs {}..={} ({} records) with a proof to the checkpoint of size {} into {}",
                header.from_seq,
                header.to_seq,
                header.records,
                header.tree_size,
                out.display()
            );
            Ok(())
        }
        Command::VerifyBundle { file, key } => {
            let key: VerifierKey = key.parse()?;
            let f =
                std::fs::File::open(&file).map_err(|e| format!("open {}: {e}", file.display()))?;
            // Streamed: memory stays bounded whatever the file holds.
            let r = match bundle::verify_bundle(&mut BufReader::with_capacity(1 << 16, f), &key) {
                Ok(r) => r,
                Err(JournalError::Format { reason, .. }) => {
                    return Err(format!("{}: {reason}", file.display()).into())
                }
                Err(e) => return Err(format!("{}: {e}", file.display()).into()),
            };
            match (r.findings.first(), &r.header) {
                (None, Some(h)) => {
                    println!(
                        "ok: {} records (seqs {}..={}) of realm {} match the checkpoint signed for size {}",
                        h.records, h.from_seq, h.to_seq, h.realm, h.tree_size
                    );
                    Ok(())
                }
                (Some(first), _) => {
                    for f in r.findings.iter().skip(1).take(9) {
                        eprintln!("  also: {f}");
                    }
                    Err(Failure::verify(format!(
                        "bundle verification FAILED: first bad {first}"
                    )))
                }
                (None, None) => Err(Failure::verify("bundle has no header")),
            }
        }
        Command::Tail { .. } => {
            Err("tail needs a running server: start `sealog serve` or pass --url".into())
        }
        Command::Bench(BenchCmd::Ingest {
            vs,
            lines,
            rounds,
            dir,
        }) => crate::bench_ingest::ingest(&vs, lines, rounds, &dir),
        Command::Bench(BenchCmd::Http {
            records,
            clients,
            dir,
        }) => crate::bench_http::http(records, clients, &dir),
        Command::Bench(BenchCmd::Journal {
            records,
            batch,
            dir,
            keep,
        }) => crate::bench::journal(records, batch, &dir, keep),
    }
}

/// An `--out` file made ready before the command does anything: a temp
/// file next to it, renamed over it once the JSON is written and synced.
#[derive(Debug)]
pub(crate) struct OutFile {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<File>,
}

impl OutFile {
    /// Checks that `path` can be written by creating the temp file (mode
    /// 0600) in its directory.
    ///
    /// # Errors
    /// `path` is a directory, or its directory cannot take a new file.
    pub(crate) fn prepare(path: &Path) -> Result<Self, Failure> {
        let refuse = |why: String| -> Failure {
            format!(
                "cannot write --out {}: {why}; nothing was done",
                path.display()
            )
            .into()
        };
        let name = path
            .file_name()
            .ok_or_else(|| refuse("it names no file".into()))?;
        if path.is_dir() {
            return Err(refuse("it is a directory".into()));
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let tmp = dir.join(format!(
            ".{}.{}-{:08x}.tmp",
            name.to_string_lossy(),
            std::process::id(),
            rand::random::<u32>()
        ));
        let file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| refuse(format!("create {}: {e}", tmp.display())))?;
        Ok(Self {
            path: path.to_path_buf(),
            tmp,
            file: Some(file),
        })
    }

    /// Writes `text` and a newline to the temp file, syncs it, renames it
    /// over the target and syncs the directory.
    fn commit(mut self, text: &str) -> std::io::Result<()> {
        let mut f = self.file.take().expect("an OutFile is committed once");
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&self.tmp, &self.path)?;
        if let Some(dir) = self.tmp.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

impl Drop for OutFile {
    fn drop(&mut self) {
        // Not renamed into place (an error, or the command failed first).
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// What `realm create` did, for an error after it.
pub(crate) fn realm_created(name: &str) -> String {
    format!(
        "realm {name:?} was created, but its tokens could not be saved; \
         they are on standard output, or issue new ones with \
         `sealog token issue --realm {name} --scope write` (and `--scope query`)"
    )
}

/// What `token issue` did, for an error after it.
pub(crate) fn token_issued(id: &str, realm: &str) -> String {
    format!(
        "token {id} of realm {realm:?} was issued, but could not be saved; \
         it is on standard output, or revoke it with `sealog token revoke {id}`"
    )
}

/// Prints `value` as JSON and, with an [`OutFile`], writes it there too;
/// `done` says what already happened when writing the file fails.
pub(crate) fn emit_json<T: Serialize>(
    value: &T,
    out: Option<OutFile>,
    done: &str,
) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)?;
    if let Some(out) = out {
        let path = out.path.clone();
        if let Err(e) = out.commit(&text) {
            // Secrets are shown only once: print them rather than lose them.
            println!("{text}");
            return Err(format!("write {}: {e}: {done}", path.display()).into());
        }
    }
    println!("{text}");
    Ok(())
}

fn cmd_ingest(
    data: &Path,
    realm: &str,
    input: &str,
    batch: usize,
    receipts_out: Option<&Path>,
) -> Result<(), Failure> {
    let dd = DataDir::open(data, "sealog ingest")?;
    let mut journal = dd.open_journal(realm, JournalOptions::default())?;
    let bytes = if input == "-" {
        let mut v = Vec::new();
        std::io::stdin().lock().read_to_end(&mut v)?;
        v
    } else {
        std::fs::read(input).map_err(|e| format!("read {input}: {e}"))?
    };
    let events = match ingest::validate_ndjson(&bytes, 20) {
        Ok(ev) => ev,
        Err(bad) => {
            let mut msg = format!(
                "refused the whole input, nothing appended: {} bad line(s)",
                bad.len()
            );
            for b in &bad {
                msg.push_str(&format!("\n  line {}: {}", b.line, b.reason));
            }
            return Err(msg.into());
        }
    };
    if events.is_empty() {
        return Err("input has no events".into());
    }
    let mut receipts_file = match receipts_out {
        Some(p) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| format!("open {}: {e}", p.display()))?,
        ),
        None => None,
    };
    let pb = progress::bar(events.len() as u64, "ingesting");
    let mut write_err = None;
    let total = ingest::append_pipelined(&mut journal, &events, batch, &mut |r| {
        pb.inc(r.count);
        if let Some(f) = receipts_file.as_mut() {
            // One write(2) per receipt, newline included: `writeln!` issues
            // two, and a kill between them leaves a line without its end.
            let mut line = serde_json::to_vec(r).unwrap_or_default();
            line.push(b'\n');
            if let Err(e) = f.write_all(&line) {
                write_err.get_or_insert(e);
            }
        }
    })?;
    pb.finish_and_clear();
    journal.sync()?;
    if let Some(e) = write_err {
        return Err(format!("records are committed, but writing receipts failed: {e}").into());
    }
    let total = total.ok_or("nothing was committed")?;
    println!("{}", serde_json::to_string(&total)?);
    Ok(())
}

pub(crate) fn read_receipts(path: &Path) -> Result<Vec<Receipt>, Failure> {
    let f = std::fs::File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    let mut out = Vec::new();
    let mut text = String::new();
    BufReader::new(f).read_to_string(&mut text)?;
    // Either one JSON receipt (possibly pretty-printed) or one per line.
    if let Ok(r) = serde_json::from_str::<Receipt>(&text) {
        return Ok(vec![r]);
    }
    let lines: Vec<&str> = text.lines().collect();
    for (n, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(r) => out.push(r),
            // A last line without its newline is a write the client did not
            // finish (it was killed or lost power): it was never evidence.
            Err(e) if n + 1 == lines.len() && !text.ends_with('\n') => {
                eprintln!(
                    "sealog: {} line {}: unfinished last line skipped: {e}",
                    path.display(),
                    n + 1
                );
            }
            Err(e) => {
                return Err(format!("{} line {}: not a receipt: {e}", path.display(), n + 1).into())
            }
        }
    }
    Ok(out)
}

fn cmd_verify(
    data: &Path,
    realm: &str,
    checkpoints: &[std::path::PathBuf],
    receipts: &[std::path::PathBuf],
    key: Option<&str>,
) -> Result<(), Failure> {
    let realm_dir = data.join("realms").join(realm);
    let known = sealog_event::validate_realm_name(realm).is_ok() && realm_dir.is_dir();
    let dd = match DataDir::open(data, "sealog verify") {
        Ok(dd) => dd,
        Err(e) => {
            return Err(match damage(data, &e) {
                // The files of the realm cannot be trusted without it.
                Some(what) if known => Failure::verify(format!(
                    "verification FAILED for realm {realm}: {what}; the realm was not checked"
                )),
                Some(what) => format!("unknown realm {realm:?}; also, {what}").into(),
                None => e.into(),
            });
        }
    };
    // realm.meta holds the verifier key; without it, a key the operator kept.
    let meta = match dd.verifier_key(realm) {
        Ok(k) => Ok(k),
        Err(StoreError::UnknownRealm(_)) if known => Err(format!(
            "{} is missing",
            realm_dir.join("realm.meta").display()
        )),
        Err(e) => Err(damage(data, &e).ok_or(e)?),
    };
    let key: VerifierKey = match (key, &meta) {
        (Some(k), _) => k.parse()?,
        (None, Ok(k)) => k.clone(),
        (None, Err(what)) => {
            return Err(Failure::verify(format!(
                "verification FAILED for realm {realm}: {what}; it holds the realm's verifier key: \
                 pass the key you kept (`sealog/{realm}+...`, as `sealog realm key` printed it) \
                 with --key to verify the journal without it"
            )))
        }
    };
    let mut evidence = Evidence::default();
    for p in checkpoints {
        let text = std::fs::read_to_string(p).map_err(|e| format!("read {}: {e}", p.display()))?;
        evidence.checkpoints.push(text);
    }
    for p in receipts {
        evidence.receipts.extend(read_receipts(p)?);
    }
    let dir = dd.journal_dir(realm);
    // Every realm made by this version has its journal (and mark) from the
    // start; a legacy realm that never took a record may have none.
    let created = dd.realm(realm).map(|i| i.journal_created).unwrap_or(true);
    evidence.require_mark = created;
    if !dir.is_dir() {
        if created {
            return Err(Failure::verify(format!(
                "verification FAILED for realm {realm}: its journal directory {} is missing",
                dir.display()
            )));
        }
        println!("ok: realm {realm}: no journal yet (0 records)");
        return Ok(());
    }
    let pb = progress::bar(0, "verifying");
    pb.set_length(estimate_records(&dir));
    let report = verify_dir(&dir, realm, &key, &evidence, &|n| pb.set_position(n))?;
    pb.finish_and_clear();
    print_report(realm, &key, &report, meta.err())
}

/// When `e` says a file of the data directory is damaged or missing (not
/// merely unreadable for lack of permission), what is wrong, naming it.
fn damage(data: &Path, e: &StoreError) -> Option<String> {
    match e {
        StoreError::Format { path, .. } if path == data => Some(format!(
            "{} is missing: the directory is not marked as a sealog data directory",
            data.join("sealog.meta").display()
        )),
        StoreError::Format { .. } => Some(e.to_string()),
        StoreError::Io { source, .. } if source.kind() != std::io::ErrorKind::PermissionDenied => {
            Some(e.to_string())
        }
        _ => None,
    }
}

/// A rough record count for the progress bar: segment bytes at ~50 bytes per record.
fn estimate_records(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len() / 50)
                .sum()
        })
        .unwrap_or(0)
}

/// Prints the verdict; `meta` is damage to `realm.meta` found besides the
/// journal (verified with a key given on the command line).
fn print_report(
    realm: &str,
    key: &VerifierKey,
    r: &Report,
    meta: Option<String>,
) -> Result<(), Failure> {
    for n in &r.notes {
        eprintln!("note: {n}");
    }
    match (r.first_bad(), meta) {
        (None, Some(what)) => Err(Failure::verify(format!(
            "verification FAILED for realm {realm}: {what}; its journal ({} records, {} checkpoints) verified with key {key}",
            r.committed, r.checkpoints
        ))),
        (None, None) => {
            println!(
                "ok: realm {realm}: {} records and {} checkpoints verified with key {key}; {} client checkpoints/receipts hold",
                r.committed, r.checkpoints, r.evidence
            );
            Ok(())
        }
        (Some(first), meta) => {
            if let Some(what) = meta {
                eprintln!("  also: {what}");
            }
            for f in r.findings.iter().skip(1).take(9) {
                eprintln!("  also: {f}");
            }
            if r.findings.len() > 10 {
                eprintln!("  ... {} findings in all", r.findings.len());
            }
            Err(Failure::verify(format!(
                "verification FAILED for realm {realm}: first bad {first}"
            )))
        }
    }
}
