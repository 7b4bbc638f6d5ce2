//! `sealog bench cluster`: records/s through ingest → Kafka → writer →
//! PostgreSQL with one and with two writers, and through the embedded
//! single node, in the same run on this machine; the CPU each path spends
//! per record, and the commit latency clients see (p50/p99).
//!
//! Every path runs as real processes of this binary (`sealog serve`, and
//! `serve --role ingest|writer` with tansu and the PostgreSQL given by the
//! global `--postgres`); the load generator is this process, whose own CPU
//! is not counted. A path's CPU is the user and system time of its
//! processes: the server for the single node; the ingest node, the
//! writers, tansu and every `postgres` process for the cluster.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Failure;

/// `sealog bench cluster`'s settings.
#[derive(Debug)]
pub struct Args {
    /// Records per path.
    pub records: u64,
    /// Records per request.
    pub batch: u64,
    /// Concurrent clients.
    pub clients: usize,
    /// Realms the load is spread over.
    pub realms: usize,
    /// Partitions of the cluster's topic.
    pub partitions: i32,
    /// The PostgreSQL the cluster uses (a schema of its own is made and
    /// dropped).
    pub postgres: String,
    /// Directory to run in (absent; removed after).
    pub dir: PathBuf,
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// User plus system seconds of process `pid`.
fn cpu_of(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

/// CPU seconds of every process named `postgres`.
fn postgres_cpu() -> f64 {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(cpu_of)
        .sum()
}

/// Runs the benchmark.
///
/// # Errors
/// tansu or PostgreSQL missing; a node failing to start; a request answered
/// other than 200 or 503.
pub fn cluster(args: &Args) -> Result<(), Failure> {
    if args.dir.exists() {
        return Err(format!("{} exists; pass an absent --dir", args.dir.display()).into());
    }
    std::fs::create_dir_all(&args.dir)?;
    let result = run(args);
    // SEALOG_BENCH_KEEP=1 keeps the nodes' logs for a look.
    if std::env::var_os("SEALOG_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&args.dir);
    }
    result
}

fn free_port() -> Result<u16, Failure> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn me() -> Result<PathBuf, Failure> {
    Ok(std::env::current_exe()?)
}

/// Runs this binary with `args` and returns its stdout.
fn sealog(args: &[&str]) -> Result<String, Failure> {
    let out = Command::new(me()?).args(args).output()?;
    if !out.status.success() {
        return Err(format!(
            "sealog {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn spawn(args: &[&str], log: &Path) -> Result<Proc, Failure> {
    let child = Command::new(me()?)
        .args(args)
        .env(
            "SEALOG_LOG",
            std::env::var("SEALOG_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()?;
    Ok(Proc(child))
}

/// True when `GET path` on `port` answers 200 (a plain HTTP/1.0 request:
/// the load generator's client is async, this is a one-off poll).
fn answers_ok(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && &head[9..12] == b"200"
}

/// Waits until `GET path` on `port` answers 200.
fn wait_ok(port: u16, path: &str) -> Result<(), Failure> {
    let t0 = Instant::now();
    let url = format!("http://127.0.0.1:{port}{path}");
    loop {
        if answers_ok(port, path) {
            return Ok(());
        }
        if t0.elapsed() > Duration::from_secs(60) {
            return Err(format!("{url} did not answer within 60 s").into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What one path gave.
struct Outcome {
    secs: f64,
    latencies: Vec<Duration>,
    refused: u64,
    cpu: f64,
}

/// Posts `records` in batches over `tokens` from `clients` concurrent
/// clients; `cpu` reads the path's CPU seconds before and after.
fn load(
    args: &Args,
    base: &str,
    tokens: &[String],
    cpu: &dyn Fn() -> f64,
) -> Result<Outcome, Failure> {
    let batches = args.records.div_ceil(args.batch);
    let next = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(batches as usize)));
    let refused = Arc::new(AtomicU64::new(0));
    let failure: Arc<Mutex<Option<String>>> = Arc::default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-client")
        .enable_all()
        .build()?;
    let http = reqwest::Client::new();
    let cpu0 = cpu();
    let t0 = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..args.clients {
            let (next, latencies, refused, failure) = (
                next.clone(),
                latencies.clone(),
                refused.clone(),
                failure.clone(),
            );
            let (http, base, tokens, batch) =
                (http.clone(), base.to_string(), tokens.to_vec(), args.batch);
            tasks.push(tokio::spawn(async move {
                loop {
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    if b >= batches {
                        return;
                    }
                    let realm = (b % tokens.len() as u64) as usize;
                    let mut body = String::with_capacity(batch as usize * 120);
                    for i in 0..batch {
                        body.push_str(&format!(
                            r#"{{"app":"bench","level":"info","batch":{b},"i":{i},"msg":"GET /cart/{i} 200 in 12ms"}}"#
                        ));
                        body.push('\n');
                    }
                    loop {
                        let t = Instant::now();
                        let r = http
                            .post(format!("{base}/v1/ingest"))
                            .bearer_auth(&tokens[realm])
                            .header("content-type", "application/x-ndjson")
                            .body(body.clone())
                            .send()
                            .await;
                        match r.map(|r| r.status().as_u16()) {
                            Ok(200) => {
                                if let Ok(mut l) = latencies.lock() {
                                    l.push(t.elapsed());
                                }
                                break;
                            }
                            Ok(503) => {
                                refused.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                            other => {
                                if let Ok(mut f) = failure.lock() {
                                    f.get_or_insert(format!("batch {b}: {other:?}"));
                                }
                                return;
                            }
                        }
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu() - cpu0;
    if let Some(f) = failure.lock().ok().and_then(|mut f| f.take()) {
        return Err(format!("a request failed: {f}").into());
    }
    let mut latencies = std::mem::take(&mut *latencies.lock().map_err(|e| e.to_string())?);
    latencies.sort();
    Ok(Outcome {
        secs,
        latencies,
        refused: refused.load(Ordering::Relaxed),
        cpu,
    })
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len().max(1) - 1) as f64 * p).round() as usize)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn write_tokens(out: &str) -> Result<String, Failure> {
    let v: serde_json::Value = serde_json::from_str(out)?;
    Ok(v["write_token"]
        .as_str()
        .ok_or("realm create printed no write token")?
        .to_string())
}

fn run(args: &Args) -> Result<(), Failure> {
    let dir = &args.dir;
    let n = args.records;
    // The embedded single node.
    let data = dir.join("single");
    let data_s = data.to_str().ok_or("non-UTF-8 --dir")?;
    let mut tokens = Vec::new();
    for r in 0..args.realms {
        let out = sealog(&["--data", data_s, "realm", "create", &format!("bench{r}")])?;
        tokens.push(write_tokens(&out)?);
    }
    let port = free_port()?;
    let single = spawn(
        &[
            "--data",
            data_s,
            "serve",
            "--http",
            &format!("127.0.0.1:{port}"),
        ],
        &dir.join("single.log"),
    )?;
    let base = format!("http://127.0.0.1:{port}");
    wait_ok(port, "/health")?;
    let pid = single.0.id();
    let embedded = load(args, &base, &tokens, &|| cpu_of(pid))?;
    drop(single);

    // tansu, and a schema of its own in PostgreSQL.
    let kport = free_port()?;
    let tansu = Proc(
        Command::new(crate::bench_kafka::tansu_bin()?)
            .args([
                "broker",
                "--storage-engine",
                "memory://tansu/",
                "--listener-url",
                &format!("tcp://127.0.0.1:{kport}"),
                "--advertised-listener-url",
                &format!("tcp://127.0.0.1:{kport}"),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("tansu.log"))?)
            .spawn()
            .map_err(|e| format!("start tansu (cargo install tansu --features dynostore): {e}"))?,
    );
    let brokers = format!("127.0.0.1:{kport}");
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", kport)).is_err() {
        if t0.elapsed() > Duration::from_secs(30) {
            return Err("tansu did not listen within 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut clusters = Vec::new();
    for writers in [1usize, 2] {
        let schema = format!("sealog_bench_{}_{writers}", std::process::id());
        let mut admin = postgres::Client::connect(&args.postgres, postgres::NoTls)
            .map_err(|e| format!("PostgreSQL at {:?}: {e}", args.postgres))?;
        admin.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))?;
        let url = format!("{} options='-c search_path={schema}'", args.postgres);
        let topic = format!("bench.{writers}");
        let kcfg = sealog_server::config::Kafka {
            brokers: brokers.clone(),
            ..Default::default()
        };
        rt.block_on(sealog_server::kafka::create_topic(
            &kcfg,
            &topic,
            args.partitions,
        ))?;
        let mut tokens = Vec::new();
        for r in 0..args.realms {
            let out = sealog(&["--postgres", &url, "realm", "create", &format!("bench{r}")])?;
            tokens.push(write_tokens(&out)?);
        }
        let mut procs = Vec::new();
        for w in 0..writers {
            procs.push(spawn(
                &[
                    "--postgres",
                    &url,
                    "serve",
                    "--role",
                    "writer",
                    "--kafka",
                    &brokers,
                    "--topic",
                    &topic,
                    "--node",
                    &format!("writer-{w}"),
                ],
                &dir.join(format!("writer-{writers}-{w}.log")),
            )?);
        }
        let port = free_port()?;
        procs.push(spawn(
            &[
                "--postgres",
                &url,
                "serve",
                "--role",
                "ingest",
                "--kafka",
                &brokers,
                "--topic",
                &topic,
                "--http",
                &format!("127.0.0.1:{port}"),
                "--receipt-timeout-secs",
                "30",
            ],
            &dir.join(format!("ingest-{writers}.log")),
        )?);
        let base = format!("http://127.0.0.1:{port}");
        wait_ok(port, "/ready")?;
        // The group settled: every writer claimed its share of the partitions.
        let t0 = Instant::now();
        loop {
            let row = admin.query_one(
                &format!("SELECT count(DISTINCT owner), count(*) FROM {schema}.sealog_partition_claims WHERE topic = $1"),
                &[&topic],
            );
            if let Ok(r) = row {
                let (owners, parts): (i64, i64) = (r.get(0), r.get(1));
                if owners == writers as i64 && parts == i64::from(args.partitions) {
                    break;
                }
            }
            if t0.elapsed() > Duration::from_secs(60) {
                return Err(
                    format!("{writers} writers did not share the partitions within 60 s").into(),
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Warm up: every realm opened by its writer once the group settled.
        let warm = Args {
            records: args.realms as u64,
            batch: 1,
            clients: args.realms,
            realms: args.realms,
            partitions: args.partitions,
            postgres: args.postgres.clone(),
            dir: dir.clone(),
        };
        load(&warm, &base, &tokens, &|| 0.0)?;
        let pids: Vec<u32> = procs
            .iter()
            .map(|p| p.0.id())
            .chain([tansu.0.id()])
            .collect();
        let cpu = move || pids.iter().map(|p| cpu_of(*p)).sum::<f64>() + postgres_cpu();
        let outcome = load(args, &base, &tokens, &cpu)?;
        drop(procs);
        let _ = admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
        clusters.push((writers, outcome));
    }

    let rate = |o: &Outcome| n as f64 / o.secs;
    let us = |o: &Outcome| o.cpu / n as f64 * 1e6;
    println!(
        "sealog bench cluster: {n} records per path, batches of {}, {} clients over {} realms, {} partitions; {} cores; tansu (memory storage) and PostgreSQL on this machine",
        args.batch,
        args.clients,
        args.realms,
        args.partitions,
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!(
        "embedded single node: {:.0} records/s; commit latency p50 {:.1} ms, p99 {:.1} ms; CPU {:.2} us/record (the server)",
        rate(&embedded),
        pct(&embedded.latencies, 0.5),
        pct(&embedded.latencies, 0.99),
        us(&embedded)
    );
    for (w, o) in &clusters {
        println!(
            "cluster, {w} writer{} + 1 ingest node: {:.0} records/s ({:.2}x the single node); commit latency p50 {:.1} ms, p99 {:.1} ms; CPU {:.2} us/record (ingest, writers, tansu, postgres), per-core efficiency {:.2}x the single node's; {} answers 503 and retried",
            if *w == 1 { "" } else { "s" },
            rate(o),
            rate(o) / rate(&embedded),
            pct(&o.latencies, 0.5),
            pct(&o.latencies, 0.99),
            us(o),
            us(&embedded) / us(o),
            o.refused
        );
    }
    Ok(())
}
