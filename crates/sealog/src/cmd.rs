//! Every command, written once: arguments, input validation, batching,
//! receipts files, paging and output live here; a [`Backend`] (the data
//! directory itself, or a running server's API) only carries out each
//! operation. Data goes to stdout, messages to stderr.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sealog_event::RealmName;
use sealog_journal::checkpoint::VerifierKey;
use sealog_journal::verify::Evidence;
use sealog_journal::{bundle, JournalError, Receipt};
use sealog_store::Scope;
use serde::Serialize;

use crate::backend::{follow_pages, Backend, QuerySpec, TailSpec, Verdict};
use crate::cli::{BenchCmd, Cli, Command, DigestCmd, ImportCmd, RealmCmd, ScopeArg, TokenCmd};
use crate::local::Local;
use crate::{ingest, progress, Failure};

/// Runs one parsed command.
///
/// # Errors
/// A [`Failure`] with the exit code and message.
pub fn run(cli: Cli) -> Result<(), Failure> {
    let Cli {
        data,
        url,
        token,
        postgres,
        command,
    } = cli;
    let data = data.as_path();
    // Commands that need the files themselves.
    let command = match command {
        Command::Serve {
            config,
            http,
            sidecar,
            syslog_tcp,
            syslog_udp,
            syslog_tls,
            tls_cert,
            tls_key,
            audit_error_dir,
            geoip_db,
            kafka,
            kafka_source,
            role,
            topic,
            node,
            receipt_timeout_secs,
            witness,
            witness_quorum,
            witness_interval,
            witness_max_lag,
        } => {
            if role != crate::cli::Role::All {
                return crate::serve::run_role(
                    role,
                    kafka,
                    postgres,
                    http,
                    (topic, node),
                    std::time::Duration::from_secs(receipt_timeout_secs),
                );
            }
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
            return crate::serve::run(
                data,
                config.as_deref(),
                http,
                (sidecar, syslog_tcp, syslog_udp, tls),
                (audit_error_dir, geoip_db),
                (kafka, kafka_source),
                crate::serve::WitnessFlags {
                    witnesses: witness,
                    quorum: witness_quorum,
                    interval: witness_interval,
                    max_lag: witness_max_lag,
                },
            );
        }
        Command::Migrate {
            realm,
            to_postgres,
            from_postgres,
        } => {
            return match (to_postgres, from_postgres) {
                (Some(to), None) => crate::pg::migrate_to_postgres(data, &realm, &to),
                (None, Some(from)) => crate::pg::migrate_from_postgres(data, &realm, &from),
                _ => Err("give one of --to-postgres and --from-postgres".into()),
            };
        }
        Command::Export {
            realm,
            from_seq,
            to_seq,
            out,
        } if postgres.is_some() => {
            let url = postgres.as_deref().unwrap_or_default();
            let log = sealog_pg::PgLog::open_reader(url, realm.as_str(), None)?;
            return export_store(&log, &realm, from_seq, to_seq, &out, None);
        }
        Command::Export {
            realm,
            from_seq,
            to_seq,
            out,
        } => return cmd_export(data, &realm, from_seq, to_seq, &out),
        Command::VerifyBundle {
            file,
            key,
            witness,
            witness_quorum,
        } => {
            let witnesses = Witnesses::parse(&witness, witness_quorum)?;
            return cmd_verify_bundle(&file, &key, &witnesses);
        }
        Command::Witness(w) => {
            return match w.cmd {
                Some(crate::cli::WitnessCmd::Key) => {
                    println!("{}", crate::witness::cosigner(data, None)?.verifier());
                    Ok(())
                }
                None => crate::witness::serve(data, w.http, w.name.as_deref(), &w.logs, &w.prefix),
            }
        }
        Command::Bench(BenchCmd::Ingest {
            vs,
            lines,
            rounds,
            dir,
        }) => return crate::bench_ingest::ingest(&vs, lines, rounds, &dir),
        Command::Bench(BenchCmd::Cluster {
            records,
            batch,
            clients,
            realms,
            partitions,
            dir,
        }) => {
            return crate::bench_cluster::cluster(&crate::bench_cluster::Args {
                records,
                batch: batch.max(1),
                clients: clients.max(1),
                realms: realms.max(1),
                partitions: partitions.max(1),
                postgres: postgres
                    .unwrap_or_else(|| "host=127.0.0.1 port=5432 user=postgres dbname=test".into()),
                dir,
            })
        }
        Command::Bench(BenchCmd::Http {
            records,
            clients,
            dir,
        }) => return crate::bench_http::http(records, clients, &dir),
        Command::Bench(BenchCmd::Witnessing {
            records,
            clients,
            rounds,
            interval,
            dir,
        }) => return crate::bench_witness::witnessing(records, clients, rounds, interval, &dir),
        Command::Bench(BenchCmd::Realms {
            realms,
            seconds,
            clients,
            batch,
            fill_mib,
            dir,
            keep,
        }) => {
            let p = crate::bench_realms::Params {
                realms,
                seconds,
                clients,
                batch,
                fill_mib,
            };
            return crate::bench_realms::realms(&p, &dir, keep);
        }
        Command::Bench(BenchCmd::Drain {
            records,
            rounds,
            dir,
        }) => return crate::bench_drain::drain(records, rounds, &dir),
        Command::Bench(BenchCmd::Kafka {
            messages,
            partitions,
            brokers,
            librdkafka_dir,
            dir,
        }) => {
            return crate::bench_kafka::kafka(&crate::bench_kafka::Args {
                messages,
                partitions,
                brokers,
                librdkafka_dir,
                dir,
            })
        }
        Command::Bench(BenchCmd::Logharbour { records, dir, keep }) => {
            return crate::bench_logharbour::logharbour(records, &dir, keep)
        }
        Command::Bench(BenchCmd::Digest { records, dir, keep }) => {
            return crate::bench_digest::digest(records, &dir, keep)
        }
        Command::Bench(BenchCmd::Journal {
            records,
            batch,
            dir,
            keep,
        }) => return crate::bench::journal(records, batch, &dir, keep),
        Command::Digest(DigestCmd::Verify { realm, start, stop }) => {
            return crate::flows::verify(data, &realm, &start, &stop)
        }
        Command::Drains(cmd) => {
            let remote = crate::remote::target(data, url.as_deref(), token.as_deref(), true)?
                .ok_or("drains needs a running server")?;
            return drains(&remote, cmd);
        }
        other => other,
    };
    let needs_server = matches!(command, Command::Tail { .. });
    let backend: Box<dyn Backend> = match postgres {
        Some(pg) if url.is_none() => Box::new(crate::pg::Pg::new(pg)),
        Some(_) => {
            return Err("--postgres and --url name two different places to read; give one".into())
        }
        None => {
            match crate::remote::target(data, url.as_deref(), token.as_deref(), needs_server)? {
                Some(remote) => Box::new(remote),
                None => Box::new(Local::new(data)),
            }
        }
    };
    run_on(&*backend, command)
}

/// Runs a command that works the same on either backend.
fn run_on(backend: &dyn Backend, command: Command) -> Result<(), Failure> {
    match command {
        Command::Realm(RealmCmd::Create { name, out }) => {
            // The output file first: a realm whose tokens cannot be saved
            // is not created.
            let out = out.as_deref().map(OutFile::prepare).transpose()?;
            let created = backend.create_realm(&name)?;
            emit_json(&created, out, &realm_created(&name))
        }
        Command::Realm(RealmCmd::List) => {
            // A damaged realm is listed with what is wrong, not hidden.
            for r in backend.realms()? {
                println!("{r}");
            }
            Ok(())
        }
        Command::Realm(RealmCmd::Key { name }) => {
            println!("{}", backend.realm_key(&name)?);
            Ok(())
        }
        Command::Token(TokenCmd::Issue { realm, scope, out }) => {
            let out = out.as_deref().map(OutFile::prepare).transpose()?;
            let scope = match scope {
                ScopeArg::Write => Scope::Write,
                ScopeArg::Query => Scope::Query,
            };
            let t = backend.issue_token(&realm, scope)?;
            emit_json(&t, out, &token_issued(&t.id, &realm))
        }
        Command::Token(TokenCmd::List { realm }) => {
            for t in backend.tokens(realm.as_ref())? {
                println!("{}", serde_json::to_string(&t)?);
            }
            Ok(())
        }
        Command::Token(TokenCmd::Revoke { token_id }) => {
            let t = backend.revoke_token(&token_id)?;
            println!("{}", serde_json::to_string(&t)?);
            Ok(())
        }
        Command::Ingest {
            realm,
            input,
            batch,
            receipts_out,
        } => cmd_ingest(backend, &realm, &input, batch, receipts_out.as_deref()),
        Command::Import(ImportCmd::Vpcflow {
            realm,
            paths,
            batch,
        }) => crate::flows::import(backend, &realm, &paths, batch),
        Command::Query {
            realm,
            from,
            to,
            q,
            wheres,
            limit,
            newest,
        } => {
            let spec = QuerySpec::new(from, to, q, wheres, newest)?;
            let stdout = std::io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            let n = follow_pages(
                limit,
                &mut |page, emit| backend.query_page(&realm, &spec, page, emit),
                &mut |line| {
                    out.write_all(line)?;
                    out.write_all(b"\n")
                },
            )?;
            out.flush()?;
            tracing::info!(records = n, "query done");
            Ok(())
        }
        Command::Grep {
            realm,
            file,
            app,
            level,
            fields,
            from,
            to,
            message,
            module,
            thread,
            query,
            positional,
            output,
            color,
            count,
            limit,
            newest,
            no_index,
        } => {
            let terms = crate::grep::Terms {
                app,
                level,
                from,
                to,
                message,
                module,
                thread,
                queries: query.into_iter().chain(positional).collect(),
            };
            let show = crate::grep::Show {
                output,
                color,
                fields,
                count,
            };
            crate::grep::run(
                backend,
                realm.as_ref(),
                file.as_deref(),
                &terms,
                &show,
                crate::grep::Scope {
                    limit,
                    newest,
                    no_index,
                },
            )
        }
        Command::Checkpoint { realm } => {
            print!("{}", backend.checkpoint(&realm)?);
            Ok(())
        }
        Command::Verify {
            realm,
            checkpoint,
            receipts,
            key,
            witness,
            witness_quorum,
        } => {
            // A malformed key is a usage error, found before anything is read.
            let key: Option<VerifierKey> = key.as_deref().map(str::parse).transpose()?;
            let witnesses = Witnesses::parse(&witness, witness_quorum)?;
            let mut evidence = Evidence::default();
            let mut witness_findings = Vec::new();
            // The largest --checkpoint with the quorum, where the store
            // keeps no cosigned checkpoint of its own.
            let mut given: Option<(u64, String)> = None;
            for p in &checkpoint {
                let text =
                    std::fs::read_to_string(p).map_err(|e| format!("read {}: {e}", p.display()))?;
                if let Some(w) = &witnesses {
                    match w.check(&text) {
                        Err(e) => witness_findings.push(format!("checkpoint {}: {e}", p.display())),
                        Ok(()) => {
                            let size =
                                sealog_journal::checkpoint::SignedCheckpoint::parse_unverified(
                                    &text,
                                )
                                .map_or(0, |c| c.checkpoint.size);
                            if given.as_ref().is_none_or(|g| g.0 < size) {
                                given = Some((size, text.clone()));
                            }
                        }
                    }
                }
                evidence.checkpoints.push(text);
            }
            for p in &receipts {
                evidence.receipts.extend(read_receipts(p)?);
            }
            // The realm's newest cosigned checkpoint is checked against its
            // records like a client's, and must carry the quorum.
            let cosigned = match &witnesses {
                Some(w) => {
                    let note = match (backend.witnessed(&realm), given) {
                        (Ok(Some(n)), _) => Some(n),
                        (Ok(None), g) => g.map(|g| g.1),
                        (Err(_), Some(g)) => Some(g.1),
                        (Err(e), None) => return Err(e),
                    };
                    if let Some(t) = &note {
                        evidence.checkpoints.push(t.clone());
                        if let Err(e) = w.check(t) {
                            witness_findings
                                .push(format!("the realm's newest cosigned checkpoint: {e}"));
                        }
                    }
                    Some(note)
                }
                None => None,
            };
            let mut verdict = backend.verify(&realm, evidence, key.as_ref())?;
            if let (Some(w), Some(note)) = (&witnesses, cosigned) {
                match note
                    .as_deref()
                    .map(sealog_journal::checkpoint::SignedCheckpoint::parse_unverified)
                {
                    None => witness_findings.push(format!(
                        "no checkpoint of realm {realm} is cosigned by the witnesses (a quorum of {} of {} is needed)",
                        w.quorum,
                        w.keys.len()
                    )),
                    Some(Err(e)) => witness_findings
                        .push(format!("the realm's cosigned checkpoint is malformed: {e}")),
                    Some(Ok(cp)) if cp.checkpoint.size < verdict.committed => {
                        witness_findings.push(format!(
                            "records {}..{} are not covered by a checkpoint the witnesses cosigned (the newest cosigned one is of size {}): the witnesses never saw them",
                            cp.checkpoint.size, verdict.committed, cp.checkpoint.size
                        ));
                    }
                    Some(Ok(_)) if !witness_findings.is_empty() => {}
                    Some(Ok(cp)) => verdict.notes.push(format!(
                        "all {} records are covered by a checkpoint of size {} cosigned by a quorum of {} witnesses",
                        verdict.committed, cp.checkpoint.size, w.quorum
                    )),
                }
            }
            verdict.findings.extend(witness_findings);
            print_report(&realm, &verdict)
        }
        Command::Retention {
            realm,
            days,
            app,
            typ,
            priority,
            dry_run,
            force,
        } => {
            let args = crate::backend::RetentionArgs {
                days,
                app,
                typ,
                priority,
            };
            cmd_retention(backend, &realm, &args, dry_run, force)
        }
        Command::Tail {
            realm,
            q,
            wheres,
            since_seq,
        } => backend.tail(
            &realm,
            &TailSpec {
                q,
                wheres,
                since_seq,
            },
        ),
        Command::Serve { .. }
        | Command::Drains(_)
        | Command::Digest(_)
        | Command::Export { .. }
        | Command::Migrate { .. }
        | Command::VerifyBundle { .. }
        | Command::Witness(_)
        | Command::Bench(_) => Err("this command needs the data directory itself".into()),
    }
}

/// `sealog retention`: counts first unless `--force`, asks on a terminal,
/// then runs and prints the report as JSON.
fn cmd_retention(
    backend: &dyn crate::backend::Backend,
    realm: &RealmName,
    args: &crate::backend::RetentionArgs,
    dry_run: bool,
    force: bool,
) -> Result<(), Failure> {
    use std::io::{BufRead, IsTerminal, Write};
    args.spec()?;
    if !dry_run && !force {
        let preview = backend.retention(realm, args, true)?;
        if preview.removed == 0 {
            println!("{}", serde_json::to_string_pretty(&preview)?);
            return Ok(());
        }
        if !std::io::stdin().is_terminal() {
            return Err(format!(
                "would remove the bodies of {} records of realm {realm} ({}); pass --force to do it without asking, or --dry-run to only count",
                preview.removed, preview.policy
            )
            .into());
        }
        eprint!(
            "Remove the bodies of {} records of realm {realm} older than {} ({})? Their leaf hashes and a signed retention record are kept. [y/N] ",
            preview.removed, preview.cutoff, preview.policy
        );
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Err("nothing removed".into());
        }
    }
    let report = backend.retention(realm, args, dry_run)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    if !dry_run && report.removed > 0 {
        eprintln!(
            "removed the bodies of {} records ({} → {} bytes); retention record {} signed",
            report.removed,
            report.bytes_before,
            report.bytes_after,
            report.record_id.unwrap_or(0)
        );
    }
    Ok(())
}

fn cmd_export(
    data: &Path,
    realm: &RealmName,
    from_seq: Option<u64>,
    to_seq: Option<u64>,
    out: &Path,
) -> Result<(), Failure> {
    let dd = sealog_store::DataDir::open(data, "sealog export")?;
    let j = dd.open_journal(realm, sealog_journal::JournalOptions::default())?;
    // A bundle carries the newest checkpoint the server's witnesses
    // cosigned when it covers the range.
    let cosigned = match Local::new(data).witnessed(realm)? {
        Some(text) => match sealog_journal::LogStore::verifier(&j).verify(&text) {
            Ok(checkpoint) => {
                Some(sealog_journal::checkpoint::SignedCheckpoint { checkpoint, text })
            }
            Err(e) => {
                eprintln!("sealog: the realm's cosigned checkpoint is not used: {e}");
                None
            }
        },
        None => None,
    };
    let to_seq = match (&cosigned, to_seq) {
        (Some(c), None) if from_seq.unwrap_or(0) < c.checkpoint.size => Some(c.checkpoint.size - 1),
        _ => to_seq,
    };
    let had = cosigned.is_some();
    let cp = cosigned.filter(|c| to_seq.is_some_and(|t| t < c.checkpoint.size));
    if cp.is_none() && had {
        eprintln!("sealog: the range goes past the newest cosigned checkpoint: the bundle carries the newest signed one, without cosignatures");
    }
    export_store(&j, realm, from_seq, to_seq, out, cp.as_ref())
}

/// `sealog export` from a realm's log in any store.
fn export_store(
    j: &dyn sealog_journal::LogStore,
    realm: &RealmName,
    from_seq: Option<u64>,
    to_seq: Option<u64>,
    out: &Path,
    cp: Option<&sealog_journal::checkpoint::SignedCheckpoint>,
) -> Result<(), Failure> {
    if j.size() == 0 {
        return Err(format!("realm {realm:?} has no records to export").into());
    }
    // A bundle carries bodies, so records retention removed cannot be in
    // one: by default it starts after the last of them.
    let from = match from_seq {
        Some(f) => f,
        None => j
            .retention_records()?
            .records
            .iter()
            .filter_map(|r| r.record.ranges.last().map(|x| x.1))
            .max()
            .unwrap_or(0),
    };
    if from >= j.size() {
        return Err(format!(
            "every record of realm {realm:?} from seq {from} on was removed by retention or is not there yet; nothing to export"
        )
        .into());
    }
    let to = to_seq.unwrap_or(j.size() - 1);
    let pb = progress::bar(to.saturating_sub(from) + 1, "exporting");
    let file = std::fs::File::create(out).map_err(|e| format!("create {}: {e}", out.display()))?;
    let mut w = BufWriter::new(file);
    let header = match cp {
        Some(cp) => bundle::export_at(j, cp, from, to, &mut w, &|n| pb.set_position(n))?,
        None => bundle::export(j, from, to, &mut w, &|n| pb.set_position(n))?,
    };
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

/// `--witness` keys and the quorum they must reach.
struct Witnesses {
    keys: Vec<sealog_journal::cosignature::CosignatureKey>,
    quorum: usize,
}

impl Witnesses {
    /// None without `--witness`; a usage error for a bad key or quorum.
    fn parse(keys: &[String], quorum: Option<usize>) -> Result<Option<Self>, Failure> {
        if keys.is_empty() {
            return Ok(None);
        }
        let keys = keys
            .iter()
            .map(|k| {
                k.parse()
                    .map_err(|e| Failure::from(format!("--witness {k:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].contains(k) {
                return Err(format!("--witness {k} is given twice").into());
            }
        }
        let quorum = quorum.unwrap_or(keys.len());
        if quorum == 0 || quorum > keys.len() {
            return Err(format!(
                "--witness-quorum {quorum} must be between 1 and the {} witnesses given",
                keys.len()
            )
            .into());
        }
        Ok(Some(Self { keys, quorum }))
    }

    /// Whether the note `text` carries the quorum.
    fn check(&self, text: &str) -> Result<(), String> {
        let n = sealog_journal::cosignature::count_cosigners(text, &self.keys)
            .map_err(|e| format!("a witness's cosignature does not verify: {e}"))?;
        if n < self.quorum {
            return Err(format!(
                "carries {n} valid cosignatures of the given witnesses, fewer than the quorum of {}",
                self.quorum
            ));
        }
        Ok(())
    }
}

fn cmd_verify_bundle(file: &Path, key: &str, witnesses: &Option<Witnesses>) -> Result<(), Failure> {
    let key: VerifierKey = key.parse()?;
    let f = std::fs::File::open(file).map_err(|e| format!("open {}: {e}", file.display()))?;
    // Streamed: memory stays bounded whatever the file holds.
    let r = match bundle::verify_bundle(&mut BufReader::with_capacity(1 << 16, f), &key) {
        Ok(r) => r,
        Err(JournalError::Format { reason, .. }) => {
            return Err(format!("{}: {reason}", file.display()).into())
        }
        Err(e) => return Err(format!("{}: {e}", file.display()).into()),
    };
    let mut findings: Vec<String> = r.findings.iter().map(ToString::to_string).collect();
    if let (Some(w), Some(h)) = (witnesses, &r.header) {
        if let Err(e) = w.check(&h.checkpoint) {
            findings.push(format!("the bundle's checkpoint {e}"));
        }
    }
    match (findings.first(), &r.header) {
        (None, Some(h)) => {
            let cosigned = witnesses
                .as_ref()
                .map(|w| format!(", cosigned by a quorum of {} witnesses", w.quorum))
                .unwrap_or_default();
            println!(
                "ok: {} records (seqs {}..={}) of realm {} match the checkpoint signed for size {}{cosigned}",
                h.records, h.from_seq, h.to_seq, h.realm, h.tree_size
            );
            Ok(())
        }
        (Some(first), _) => {
            for f in findings.iter().skip(1).take(9) {
                eprintln!("  also: {f}");
            }
            Err(Failure::verify(format!(
                "bundle verification FAILED: first bad {first}"
            )))
        }
        (None, None) => Err(Failure::verify("bundle has no header")),
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
fn realm_created(name: &str) -> String {
    format!(
        "realm {name:?} was created, but its tokens could not be saved; \
         they are on standard output, or issue new ones with \
         `sealog token issue --realm {name} --scope write` (and `--scope query`)"
    )
}

/// What `token issue` did, for an error after it.
fn token_issued(id: &str, realm: &str) -> String {
    format!(
        "token {id} of realm {realm:?} was issued, but could not be saved; \
         it is on standard output, or revoke it with `sealog token revoke {id}`"
    )
}

/// Prints `value` as JSON and, with an [`OutFile`], writes it there too;
/// `done` says what already happened when writing the file fails.
fn emit_json<T: Serialize>(value: &T, out: Option<OutFile>, done: &str) -> Result<(), Failure> {
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
    backend: &dyn Backend,
    realm: &RealmName,
    input: &str,
    batch: usize,
    receipts_out: Option<&Path>,
) -> Result<(), Failure> {
    let bytes = if input == "-" {
        let mut v = Vec::new();
        std::io::stdin().lock().read_to_end(&mut v)?;
        v
    } else {
        std::fs::read(input).map_err(|e| format!("read {input}: {e}"))?
    };
    // The whole input is checked before anything is sent or appended.
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
    let mut total: Option<Receipt> = None;
    let result = backend.ingest(realm, &events, batch, &mut |r| {
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
        total = Some(match total.take() {
            None => r.clone(),
            Some(t) => Receipt {
                last_seq: r.last_seq,
                count: t.count + r.count,
                checkpoint: r.checkpoint.clone(),
                ..t
            },
        });
    });
    pb.finish_and_clear();
    if let Err(mut f) = result {
        // Commits before the failure stand: say which.
        if let Some(t) = &total {
            f.message = format!(
                "{}; {} records were committed before it (seqs {}..={}{})",
                f.message,
                t.count,
                t.first_seq,
                t.last_seq,
                match receipts_out {
                    Some(p) => format!(", receipts in {}", p.display()),
                    None => String::new(),
                }
            );
        }
        return Err(f);
    }
    if let Some(e) = write_err {
        return Err(format!("records are committed, but writing receipts failed: {e}").into());
    }
    let total = total.ok_or("nothing was committed")?;
    println!("{}", serde_json::to_string(&total)?);
    Ok(())
}

fn read_receipts(path: &Path) -> Result<Vec<Receipt>, Failure> {
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

/// Prints the verdict: ok, or the first finding (and up to nine more) as
/// a verification failure.
fn print_report(realm: &RealmName, v: &Verdict) -> Result<(), Failure> {
    for n in &v.notes {
        eprintln!("note: {n}");
    }
    let key = &v.key;
    match (v.findings.first(), &v.damage) {
        (None, Some(what)) => Err(Failure::verify(format!(
            "verification FAILED for realm {realm}: {what}; its journal ({} records, {} checkpoints) verified with key {key}",
            v.committed, v.checkpoints
        ))),
        (None, None) => {
            println!(
                "ok: realm {realm}: {} records and {} checkpoints verified with key {key}; {} client checkpoints/receipts hold",
                v.committed, v.checkpoints, v.evidence
            );
            Ok(())
        }
        (Some(first), damage) => {
            if let Some(what) = damage {
                eprintln!("  also: {what}");
            }
            for f in v.findings.iter().skip(1).take(9) {
                eprintln!("  also: {f}");
            }
            if v.findings.len() > 10 {
                eprintln!("  ... {} findings in all", v.findings.len());
            }
            Err(Failure::verify(format!(
                "verification FAILED for realm {realm}: first bad {first}"
            )))
        }
    }
}

/// `sealog drains ...` over the API.
fn drains(remote: &crate::remote::Remote, cmd: crate::cli::DrainsCmd) -> Result<(), Failure> {
    use crate::cli::DrainsCmd;
    match cmd {
        DrainsCmd::Add {
            destination,
            app,
            space,
            site,
            wheres,
            q,
            framing,
        } => {
            let mut body = serde_json::json!({ "url": destination });
            if let Some(f) = framing {
                body["framing"] = f.into();
            }
            let path = match (app, space, site) {
                (Some(app), Some(space), _) => {
                    if app.contains('-') {
                        return Err(format!(
                            "--app {app:?}: logshuttle splits <app>-<space> at the first '-', so an app name cannot contain one"
                        )
                        .into());
                    }
                    format!("/apps/{}-{}/log-drains", enc_path(&app), enc_path(&space))
                }
                (_, _, Some(site)) => format!("/sites/{}/log-drains", enc_path(&site)),
                _ => {
                    if wheres.is_empty() && q.is_none() {
                        return Err(
                            "say which records: --app with --space, --site, or --where/--q".into(),
                        );
                    }
                    body["where"] = wheres.into();
                    if let Some(q) = q {
                        body["q"] = q.into();
                    }
                    "/v1/drains".into()
                }
            };
            let d = remote.drain_call(reqwest::Method::POST, &path, Some(body))?;
            println!("{}", serde_json::to_string_pretty(&d)?);
            Ok(())
        }
        DrainsCmd::List { json } => {
            let all = remote.drain_call(reqwest::Method::GET, "/v1/drains", None)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
                return Ok(());
            }
            for d in all.as_array().into_iter().flatten() {
                let st = &d["status"];
                println!(
                    "{}  {:<10} cursor {} lag {} delivered {}  {}  {}{}",
                    d["id"].as_str().unwrap_or(""),
                    st["state"].as_str().unwrap_or("-"),
                    st["cursor"],
                    st["lag"],
                    st["delivered"],
                    d["url"].as_str().unwrap_or(""),
                    d["select"],
                    st["last_error"]
                        .as_str()
                        .map(|e| format!("  last error: {e}"))
                        .unwrap_or_default(),
                );
            }
            Ok(())
        }
        DrainsCmd::Rm { id } => {
            let d = remote.drain_call(
                reqwest::Method::DELETE,
                &format!("/v1/drains/{}", enc_path(&id)),
                None,
            )?;
            println!("{}", serde_json::to_string_pretty(&d)?);
            Ok(())
        }
    }
}

/// Percent-encodes one path segment.
fn enc_path(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
