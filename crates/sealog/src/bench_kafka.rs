//! `sealog bench kafka`: records/s from a Kafka topic into the sealed
//! journal, side by side in the same run with rsyslog consuming the same
//! topic (`imkafka` into `omfile`) and with `kcat -C -e` copying it to a
//! file (the cost of only reading it).
//!
//! The topic is preloaded once (with `kcat -P`); each consumer then reads it
//! whole from the beginning, in its own consumer group, and is timed from
//! its start until its output holds every message: kcat until it exits at
//! the end of every partition, rsyslog until its file has every line,
//! sealog until the realm's journal has every record committed and synced.
//!
//! Without `--brokers`, a tansu broker (the Kafka-protocol broker the tests
//! use) is started on loopback. Debian's kcat and rsyslog link librdkafka
//! 2.0.2, whose ApiVersion handshake tansu 0.6 answers in a form 2.0.2
//! cannot read; they are run with `LD_LIBRARY_PATH` set to the librdkafka
//! sealog was built with (`--librdkafka-dir`, by default found under
//! `target/*/build/rdkafka-sys-*/out/src`), so all three use the same
//! client library. tansu also holds every fetch for `fetch.wait.max.ms`
//! (librdkafka's default 500 ms) even when messages are waiting, which
//! caps any consumer near 100,000 records/s; all three consumers are given
//! the same [`FETCH_WAIT_MS`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sealog_server::config::{KafkaFormat, KafkaSource};
use sealog_server::{Config, Server};
use tokio_util::sync::CancellationToken;

use crate::bench_drain::{record as message, rsyslogd_env};
use crate::bench_ingest::{free_port, rsyslog_version, LineCounter};
use crate::Failure;

/// `fetch.wait.max.ms` for every consumer of the run.
const FETCH_WAIT_MS: &str = "10";

/// What the bench is told.
#[derive(Debug)]
pub struct Args {
    /// Messages preloaded.
    pub messages: u64,
    /// Partitions of the topic.
    pub partitions: i32,
    /// An existing broker (else tansu is started).
    pub brokers: Option<String>,
    /// Where librdkafka.so.1 for kcat and rsyslog is.
    pub librdkafka_dir: Option<PathBuf>,
    /// Directory to run in (absent; removed after).
    pub dir: PathBuf,
}

struct Tansu(std::process::Child);

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn tansu_bin() -> Result<PathBuf, Failure> {
    if let Ok(p) = std::env::var("SEALOG_TANSU") {
        return Ok(PathBuf::from(p));
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let cargo = PathBuf::from(format!("{home}/.cargo/bin/tansu"));
    if cargo.exists() {
        return Ok(cargo);
    }
    Ok(PathBuf::from("tansu"))
}

fn find_librdkafka() -> Option<PathBuf> {
    for profile in ["release", "debug"] {
        let build = PathBuf::from("target").join(profile).join("build");
        let Ok(rd) = std::fs::read_dir(&build) else {
            continue;
        };
        for e in rd.filter_map(Result::ok) {
            let dir = e.path().join("out/src");
            if e.file_name().to_string_lossy().starts_with("rdkafka-sys-")
                && dir.join("librdkafka.so.1").exists()
            {
                return Some(dir);
            }
        }
    }
    None
}

/// Runs the bench.
///
/// # Errors
/// A peer that is missing or fails, or a count that does not add up.
pub fn kafka(args: &Args) -> Result<(), Failure> {
    if args.dir.exists() {
        return Err(format!("{} exists; pass an absent --dir", args.dir.display()).into());
    }
    std::fs::create_dir_all(&args.dir)?;
    let result = run(args);
    let _ = std::fs::remove_dir_all(&args.dir);
    result
}

#[allow(clippy::too_many_lines)]
fn run(args: &Args) -> Result<(), Failure> {
    let n = args.messages.max(1);
    let dir = &args.dir;
    let lib = args
        .librdkafka_dir
        .clone()
        .or_else(find_librdkafka)
        .ok_or("no librdkafka.so.1 for kcat and rsyslog: pass --librdkafka-dir")?;
    let lib = lib.canonicalize()?;
    let _tansu;
    let brokers = match &args.brokers {
        Some(b) => b.clone(),
        None => {
            let port = free_port()?;
            let child = Command::new(tansu_bin()?)
                .args([
                    "broker",
                    "--storage-engine",
                    "memory://tansu/",
                    "--listener-url",
                    &format!("tcp://127.0.0.1:{port}"),
                    "--advertised-listener-url",
                    &format!("tcp://127.0.0.1:{port}"),
                ])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("tansu.log"))?)
                .spawn()
                .map_err(|e| {
                    format!("start tansu (cargo install tansu --features dynostore): {e}")
                })?;
            _tansu = Tansu(child);
            let t0 = Instant::now();
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                if t0.elapsed() > Duration::from_secs(30) {
                    return Err("tansu did not listen within 30 s".into());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            format!("127.0.0.1:{port}")
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut kcfg = sealog_server::config::Kafka {
        brokers: brokers.clone(),
        ..Default::default()
    };
    kcfg.options
        .insert("fetch.wait.max.ms".into(), FETCH_WAIT_MS.into());
    rt.block_on(sealog_server::kafka::create_topic(
        &kcfg,
        "bench",
        args.partitions,
    ))?;

    // Preload with kcat -P.
    let input = dir.join("input.ndjson");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&input)?);
        for i in 0..n {
            f.write_all(message(i).as_bytes())?;
        }
        f.flush()?;
    }
    let bytes = std::fs::metadata(&input)?.len();
    eprintln!(
        "preloading {n} messages ({:.1} MB) with kcat -P ...",
        bytes as f64 / 1e6
    );
    let t0 = Instant::now();
    let st = Command::new("kcat")
        .env("LD_LIBRARY_PATH", &lib)
        .args([
            "-P",
            "-b",
            &brokers,
            "-t",
            "bench",
            "-X",
            "linger.ms=20",
            "-X",
            "batch.num.messages=10000",
            "-l",
        ])
        .arg(&input)
        .status()
        .map_err(|e| format!("kcat (Debian package kcat): {e}"))?;
    if !st.success() {
        return Err(format!("kcat -P failed: {st}").into());
    }
    let preload = t0.elapsed().as_secs_f64();

    // kcat -C -e: reading the topic to a file.
    eprintln!("kcat -C -e ...");
    let out = dir.join("kcat.out");
    let t0 = Instant::now();
    let st = Command::new("kcat")
        .env("LD_LIBRARY_PATH", &lib)
        .args([
            "-C",
            "-b",
            &brokers,
            "-t",
            "bench",
            "-o",
            "beginning",
            "-e",
            "-q",
            "-X",
            "group.id=kcat-bench",
            "-X",
        ])
        .arg(format!("fetch.wait.max.ms={FETCH_WAIT_MS}"))
        .stdout(std::fs::File::create(&out)?)
        .status()?;
    let kcat_secs = t0.elapsed().as_secs_f64();
    let kcat_lines = LineCounter::default().poll(&out);
    if !st.success() || kcat_lines != n {
        return Err(format!("kcat -C read {kcat_lines} of {n} lines ({st})").into());
    }

    // rsyslog: imkafka into omfile.
    eprintln!("rsyslog imkafka -> omfile ...");
    let rs_dir = dir.join("rsyslog");
    let rs_out = rs_dir.join("out.log");
    std::fs::create_dir_all(&rs_dir)?;
    let t0 = Instant::now();
    let rs = rsyslogd_env(
        &rs_dir,
        &format!(
            r#"global(workDirectory="{w}")
module(load="imkafka")
template(name="m" type="string" string="%msg%\n")
input(type="imkafka" topic="bench" broker="{brokers}" consumergroup="rsyslog-bench" confParam=["auto.offset.reset=smallest", "fetch.wait.max.ms={FETCH_WAIT_MS}"] ruleset="k")
ruleset(name="k") {{ action(type="omfile" file="{o}" template="m") }}
"#,
            w = rs_dir.display(),
            o = rs_out.display()
        ),
        &[],
        &[("LD_LIBRARY_PATH", lib.as_path())],
    )?;
    let mut c = LineCounter::default();
    loop {
        let got = c.poll(&rs_out);
        if got >= n {
            break;
        }
        if t0.elapsed() > Duration::from_secs(1800) {
            return Err(format!("rsyslog wrote {got} of {n} lines in 30 minutes").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let rs_secs = t0.elapsed().as_secs_f64();
    drop(rs);

    // sealog: the source into a realm, fsync on.
    eprintln!("sealog kafka source -> sealed journal ...");
    let data = dir.join("sealog");
    std::fs::create_dir_all(&data)?;
    let realm = sealog_store::DataDir::open(&data, "sealog bench kafka")?
        .create_realm(&"bench".parse().map_err(|e| format!("{e}"))?)?;
    let mut cfg = Config {
        kafka: kcfg.clone(),
        ..Default::default()
    };
    cfg.kafka.sources.push(KafkaSource {
        realm: "bench".into(),
        topics: vec!["bench".into()],
        format: KafkaFormat::Ndjson,
        group_id: "sealog-bench".into(),
        ..Default::default()
    });
    let (server, _) = Server::open(&data, cfg)?;
    let http = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let base = format!("http://{}", http.local_addr()?);
    let stop = CancellationToken::new();
    let t0 = Instant::now();
    let serving = rt.spawn(server.serve(http, stop.clone()));
    let client = reqwest::Client::new();
    let size = || -> u64 {
        rt.block_on(async {
            client
                .get(format!("{base}/v1/query?limit=1&order=newest"))
                .bearer_auth(&realm.query_token)
                .send()
                .await
                .ok()
                .and_then(|r| {
                    r.headers()
                        .get("x-sealog-tree-size")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok())
                })
                .unwrap_or(0)
        })
    };
    loop {
        let got = size();
        if got >= n {
            break;
        }
        if t0.elapsed() > Duration::from_secs(1800) {
            return Err(format!("sealog committed {got} of {n} records in 30 minutes").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let sl_secs = t0.elapsed().as_secs_f64();
    stop.cancel();
    let _ = rt.block_on(serving);
    let stored = size_offline(&data)?;

    let rate = |s: f64| n as f64 / s;
    println!(
        "sealog bench kafka: {n} messages of {:.0} bytes over {} partitions, broker {}",
        bytes as f64 / n as f64,
        args.partitions,
        if args.brokers.is_some() {
            brokers.as_str()
        } else {
            "tansu 0.6 (memory storage) on loopback"
        }
    );
    println!(
        "peers: {} (imkafka), kcat, librdkafka from {}; fetch.wait.max.ms={FETCH_WAIT_MS} for all three",
        rsyslog_version(),
        lib.display()
    );
    println!(
        "preload (kcat -P): {preload:.2} s, {:.0} messages/s",
        rate(preload)
    );
    println!(
        "kcat -C -e to a file: {kcat_secs:.2} s, {:.0} records/s",
        rate(kcat_secs)
    );
    println!(
        "rsyslog imkafka -> omfile: {rs_secs:.2} s, {:.0} records/s",
        rate(rs_secs)
    );
    println!("sealog kafka source -> sealed journal (fsync): {sl_secs:.2} s, {:.0} records/s; {stored} records stored", rate(sl_secs));
    println!(
        "sealog / rsyslog: {:.2}x (target >= 1); sealog / kcat: {:.2}x (target >= 0.5); {:.0} records/s (target >= 300,000)",
        rs_secs / sl_secs,
        kcat_secs / sl_secs,
        rate(sl_secs)
    );
    if stored != n {
        return Err(format!("sealog stored {stored} records, not {n}").into());
    }
    Ok(())
}

/// The realm's size, read from its journal after the server stopped.
fn size_offline(data: &Path) -> Result<u64, Failure> {
    let dd = sealog_store::DataDir::open(data, "sealog bench kafka")?;
    let name = "bench".parse().map_err(|e| format!("{e}"))?;
    let j = dd.open_journal(&name, sealog_journal::JournalOptions::default())?;
    Ok(sealog_journal::LogStore::size(&j))
}
