//! `sealog bench realms`: what many realms cost one server, measured.
//!
//! Creates the realms in a fresh data directory (optionally filling each
//! with records first), starts `sealog serve` as a child process so the
//! figures read from `/proc/<pid>` are the server's alone, and reports:
//! how soon it answers its first request, its idle RSS, threads and open
//! descriptors, then records/s, ack latency and peak RSS while clients send
//! 100-record batches round-robin over every realm, and the same load on a
//! single realm in the same run, as a ratio.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sealog_event::RealmName;
use sealog_store::DataDir;

use crate::Failure;

/// What the run is asked to do.
#[derive(Debug, Clone)]
pub struct Params {
    /// Realms to create.
    pub realms: usize,
    /// Seconds of load, for each of the two loads.
    pub seconds: u64,
    /// Concurrent clients.
    pub clients: usize,
    /// Records per batch.
    pub batch: u64,
    /// MiB of raw NDJSON written into each realm before the server starts.
    pub fill_mib: u64,
}

/// The server's resident set, peak resident set (KiB), threads and open
/// descriptors, from `/proc/<pid>`.
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    rss_kib: u64,
    hwm_kib: u64,
    threads: u64,
    fds: u64,
}

fn usage(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
    Usage {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
        threads: field("Threads:"),
        fds,
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0
}

/// Runs the benchmark in `dir` (an absent directory; removed afterwards
/// unless `keep`).
///
/// # Errors
/// Setup failures, a server that does not start, or an ingest answered
/// with anything but 200 or 503.
pub fn realms(p: &Params, dir: &Path, keep: bool) -> Result<(), Failure> {
    if dir.exists() {
        return Err(format!("{} exists; pass an absent --dir", dir.display()).into());
    }
    if p.realms == 0 || p.clients == 0 || p.batch == 0 {
        return Err("--realms, --clients and --batch must be at least 1".into());
    }
    let result = run(p, dir);
    if !keep {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM first, so the server closes its realms as in production.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(p: &Params, dir: &Path) -> Result<(), Failure> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // 1. The realms, created in chunks (one token-file write per chunk).
    let t = Instant::now();
    let mut tokens = Vec::with_capacity(p.realms);
    {
        let mut dd = DataDir::open(dir, "sealog bench realms")?;
        let names: Vec<RealmName> = (0..p.realms)
            .map(|i| format!("r{i:05}").parse())
            .collect::<Result<_, _>>()?;
        for chunk in names.chunks(1000) {
            for c in dd.create_realms(chunk)? {
                tokens.push(c.write_token);
            }
            eprintln!("created {} of {} realms", tokens.len(), p.realms);
        }
        if p.fill_mib > 0 {
            fill(&dd, &names, p.fill_mib)?;
        }
    }
    let created = t.elapsed();
    let on_disk = du(&dir.join("realms"));

    // 2. The server, and how soon it answers.
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let child = Command::new(exe)
        .arg("--data")
        .arg(dir)
        .args(["serve", "--http", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = child.id();
    let server = Server { child };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("bench-client")
        .build()?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(p.clients * 2)
        .build()?;
    let base = rt.block_on(first_answer(dir, &http, started))?;
    let first_health = started.elapsed();
    let mut body = Vec::new();
    crate::bench::generate_from(0, p.batch, &mut body);
    let body = bytes::Bytes::from(body);
    let last = tokens.len() - 1;
    let t = Instant::now();
    rt.block_on(post(&http, &base, &tokens[last], body.clone()))?;
    let first_ingest = (started.elapsed(), t.elapsed());

    // 3. Idle: wait until the background opener has opened every realm
    // (sealog_realms{state="unopened"} 0), let the rest of the startup
    // work settle, then read the server's usage.
    let all_open = rt.block_on(all_opened(&http, &base, started))?;
    let idle_from = Instant::now();
    let idle = settle(pid, Duration::from_secs(120));
    let settled = idle_from.elapsed();

    // 4. Load over every realm, then the same load on one realm.
    let tokens = Arc::new(tokens);
    let spread = rt.block_on(load(p, &http, &base, &tokens, true, &body, pid))?;
    let after_spread = usage(pid);
    let single = rt.block_on(load(p, &http, &base, &tokens, false, &body, pid))?;
    drop(server);

    let per = |v: u64| v as f64 / p.realms as f64;
    println!(
        "sealog bench realms: {} realms ({} MiB raw records each, {:.1} GiB on disk), {} clients, {}-record batches, {} s per load, {cores} cores",
        p.realms,
        p.fill_mib,
        on_disk as f64 / (1u64 << 30) as f64,
        p.clients,
        p.batch,
        p.seconds
    );
    println!(
        "setup: realms created (and filled) in {:.1} s",
        created.as_secs_f64()
    );
    println!(
        "startup: first /health answered {:.2} s after exec; first ingest (realm {}) acknowledged {:.2} s after exec, {:.1} ms after it was sent",
        first_health.as_secs_f64(),
        last,
        first_ingest.0.as_secs_f64(),
        first_ingest.1.as_secs_f64() * 1000.0
    );
    println!(
        "every realm opened {:.2} s after exec",
        all_open.as_secs_f64()
    );
    println!(
        "idle (steady {:.1} s after that): RSS {:.0} MiB, {} threads, {} fds; per realm {:.1} KiB, {:.4} threads, {:.4} fds",
        settled.as_secs_f64(),
        mib(idle.rss_kib),
        idle.threads,
        idle.fds,
        per(idle.rss_kib),
        per(idle.threads),
        per(idle.fds)
    );
    for (what, l) in [
        ("round-robin over every realm", &spread),
        ("one realm", &single),
    ] {
        println!(
            "load, {what}: {} records in {:.1} s = {:.0} records/s; ack p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} retries after 503; peak RSS {:.0} MiB; max {} threads, {} fds",
            l.records,
            l.wall.as_secs_f64(),
            l.rate(),
            pct(&l.lat, 0.5),
            pct(&l.lat, 0.99),
            pct(&l.lat, 1.0),
            l.retries,
            mib(l.peak.rss_kib),
            l.peak.threads,
            l.peak.fds,
        );
    }
    let ratio = spread.rate() / single.rate().max(1.0);
    println!("ratio: every realm / one realm = {ratio:.2}");
    println!(
        "after the loads: RSS {:.0} MiB, VmHWM {:.0} MiB",
        mib(after_spread.rss_kib),
        mib(after_spread.hwm_kib)
    );
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let peak = spread.peak.rss_kib.max(single.peak.rss_kib);
    let threads = idle.threads.max(spread.peak.threads);
    let fds = idle.fds.max(spread.peak.fds).max(single.peak.fds);
    println!(
        "targets: idle RSS < 512 MiB: {}; threads <= 4 x cores + 16 ({}): {}; fds < 1,024: {}; peak RSS < 1 GiB: {}; throughput >= 50% of one realm: {}; p99 < 100 ms: {}; first request < 5 s: {}",
        verdict(mib(idle.rss_kib) < 512.0),
        4 * cores + 16,
        verdict(threads <= (4 * cores + 16) as u64),
        verdict(fds < 1024),
        verdict(mib(peak) < 1024.0),
        verdict(ratio >= 0.5),
        verdict(pct(&spread.lat, 0.99) < 100.0),
        verdict(first_health < Duration::from_secs(5)),
    );
    Ok(())
}

/// Writes `mib` MiB of generated records into each realm, two realms at a
/// time, one durable commit each.
fn fill(dd: &DataDir, names: &[RealmName], mib: u64) -> Result<(), Failure> {
    let mut input = Vec::new();
    let mut n = 0;
    while (input.len() as u64) < mib << 20 {
        crate::bench::generate_from(n, 1000, &mut input);
        n += 1000;
    }
    let events = crate::ingest::validate_ndjson(&input, 1)
        .map_err(|b| format!("generated line {} is invalid: {}", b[0].line, b[0].reason))?;
    let done = AtomicU64::new(0);
    let t = Instant::now();
    let failed = std::sync::Mutex::new(None::<String>);
    std::thread::scope(|s| {
        for part in 0..2 {
            let (events, done, failed) = (&events, &done, &failed);
            s.spawn(move || {
                for name in names.iter().skip(part).step_by(2) {
                    let r = dd
                        .open_journal(name, sealog_journal::JournalOptions::default())
                        .map_err(|e| e.to_string())
                        .and_then(|mut j| {
                            crate::ingest::append_pipelined(&mut j, events, 65_536, &mut |_| {})
                                .map_err(|e| e.to_string())?;
                            j.sync().map_err(|e| e.to_string())
                        });
                    if let Err(e) = r {
                        if let Ok(mut f) = failed.lock() {
                            f.get_or_insert(format!("fill {name}: {e}"));
                        }
                        return;
                    }
                    let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if d % 1000 == 0 {
                        eprintln!(
                            "filled {d} of {} realms ({:.0} s)",
                            names.len(),
                            t.elapsed().as_secs_f64()
                        );
                    }
                }
            });
        }
    });
    match failed.into_inner().ok().flatten() {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// Bytes under `dir`.
fn du(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => du(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Waits for `server.json` and a 200 from `/health`; the base URL.
async fn first_answer(
    dir: &Path,
    http: &reqwest::Client,
    started: Instant,
) -> Result<String, Failure> {
    loop {
        if started.elapsed() > Duration::from_secs(300) {
            return Err("sealog serve did not answer /health within 300 s".into());
        }
        if let Some(addr) = std::fs::read_to_string(dir.join("server.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["http"].as_str().map(str::to_string))
        {
            let base = format!("http://{addr}");
            if let Ok(r) = http.get(format!("{base}/health")).send().await {
                if r.status().is_success() {
                    return Ok(base);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until `/metrics` says no realm is left unopened; the time since
/// exec.
async fn all_opened(
    http: &reqwest::Client,
    base: &str,
    started: Instant,
) -> Result<Duration, Failure> {
    loop {
        let text = http
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        let unopened = text
            .lines()
            .find(|l| l.starts_with("sealog_realms{state=\"unopened\"}"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse::<f64>().ok());
        match unopened {
            Some(n) if n < 0.5 => return Ok(started.elapsed()),
            Some(_) => {}
            None => return Err("/metrics has no sealog_realms{state=\"unopened\"}".into()),
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err("realms still unopened 600 s after exec".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One batch, retried while the server answers 503; the retries.
async fn post(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    body: bytes::Bytes,
) -> Result<u64, String> {
    let (r, retries) = crate::bench_http::post_accepted(http, base, token, body).await?;
    let _ = r.bytes().await.map_err(|e| e.to_string())?;
    Ok(retries)
}

/// Usage that has stopped moving: sampled until RSS and threads hold for
/// two seconds (or `most` passes).
fn settle(pid: u32, most: Duration) -> Usage {
    let t = Instant::now();
    let mut last = usage(pid);
    let mut steady_since = Instant::now();
    while t.elapsed() < most {
        std::thread::sleep(Duration::from_millis(250));
        let u = usage(pid);
        let moved = u.threads != last.threads || u.rss_kib.abs_diff(last.rss_kib) > 1024;
        last = u;
        if moved {
            steady_since = Instant::now();
        } else if steady_since.elapsed() >= Duration::from_secs(2) {
            break;
        }
    }
    last
}

struct Load {
    records: u64,
    wall: Duration,
    lat: Vec<Duration>,
    retries: u64,
    peak: Usage,
}

impl Load {
    fn rate(&self) -> f64 {
        self.records as f64 / self.wall.as_secs_f64()
    }
}

/// `p.clients` clients sending batches for `p.seconds`, to realm after
/// realm (`spread`) or all to the first realm; server usage sampled.
async fn load(
    p: &Params,
    http: &reqwest::Client,
    base: &str,
    tokens: &Arc<Vec<String>>,
    spread: bool,
    body: &bytes::Bytes,
    pid: u32,
) -> Result<Load, Failure> {
    let next = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(p.seconds);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..p.clients {
        let (http, base, tokens, next, body) = (
            http.clone(),
            base.to_string(),
            tokens.clone(),
            next.clone(),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut retries, mut batches) = (Vec::new(), 0u64, 0u64);
            while Instant::now() < until {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let token = if spread {
                    &tokens[i % tokens.len()]
                } else {
                    &tokens[0]
                };
                let t = Instant::now();
                retries += post(&http, &base, token, body.clone()).await?;
                lat.push(t.elapsed());
                batches += 1;
            }
            Ok::<_, String>((lat, retries, batches))
        }));
    }
    let sampler = tokio::spawn(async move {
        let mut peak = Usage::default();
        loop {
            let u = usage(pid);
            peak.rss_kib = peak.rss_kib.max(u.rss_kib);
            peak.threads = peak.threads.max(u.threads);
            peak.fds = peak.fds.max(u.fds);
            if Instant::now() >= until {
                return peak;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let (mut lat, mut retries, mut batches) = (Vec::new(), 0, 0);
    for t in tasks {
        let (l, r, b) = t.await??;
        lat.extend(l);
        retries += r;
        batches += b;
    }
    let wall = t0.elapsed();
    let peak = sampler.await?;
    lat.sort();
    Ok(Load {
        records: batches * p.batch,
        wall,
        lat,
        retries,
        peak,
    })
}
