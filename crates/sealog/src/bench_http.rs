//! `sealog bench http`: the server under concurrent HTTP ingest, measured.
//!
//! One process, two tokio runtimes: the server (threads `bench-server`, the
//! realm's writer thread and rayon's sealing pool) and the load generator
//! (threads `bench-client`). CPU time is read per thread from
//! `/proc/self/task/*/stat`, so the report says how much of the machine the
//! load generator took. RSS is the whole process (server and client).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sealog_server::{Config, Server};
use tokio_util::sync::CancellationToken;

use crate::Failure;

/// (client CPU seconds, everything else) from /proc/self/task.
fn cpu_split() -> (f64, f64) {
    let (mut client, mut other) = (0.0, 0.0);
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (0.0, 0.0);
    };
    for t in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map_or("", |(_, c)| c);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
        let secs = (ticks(11) + ticks(12)) / 100.0;
        if comm.starts_with("bench-client") {
            client += secs;
        } else {
            other += secs;
        }
    }
    (client, other)
}

/// Resident set size now and at peak, in MiB.
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs the HTTP benchmark in `dir` (removed afterwards).
///
/// # Errors
/// Setup failures, or any ingest request that is not answered 200/503.
pub fn http(records: u64, clients: usize, dir: &Path) -> Result<(), Failure> {
    if dir.exists() {
        return Err(format!("{} exists; pass an absent --dir", dir.display()).into());
    }
    let result = run(records, clients, dir);
    let _ = std::fs::remove_dir_all(dir);
    result
}

/// The server on its own runtime (threads `bench-server`) at an ephemeral
/// loopback port, and a two-thread runtime for the load generator: its
/// address, the stop token and the serving task.
pub(crate) type Started = (
    tokio::runtime::Runtime,
    tokio::runtime::Runtime,
    String,
    CancellationToken,
    tokio::task::JoinHandle<Result<(), sealog_server::ServerError>>,
);

/// Starts `server` as [`Started`] says.
///
/// # Errors
/// Runtime and bind errors.
pub(crate) fn start(server: Server) -> Result<Started, Failure> {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bench-server")
        .build()?;
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("bench-client")
        .build()?;
    let listener = server_rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let base = format!("http://{}", listener.local_addr()?);
    let stop = CancellationToken::new();
    let serving = server_rt.spawn(server.serve(listener, stop.clone()));
    Ok((server_rt, client_rt, base, stop, serving))
}

/// The bench's request bodies: 64 distinct 1,000-record batches of
/// ~200-byte records, reused.
pub(crate) fn bodies() -> Arc<Vec<bytes::Bytes>> {
    let mut bodies = Vec::new();
    for b in 0..64u64 {
        let mut body = Vec::new();
        crate::bench::generate_from(b * 1000, 1000, &mut body);
        bodies.push(bytes_of(body));
    }
    Arc::new(bodies)
}

/// POSTs `body` to `/v1/ingest` until it is taken (a 503 is retried after
/// 5 ms): the 200 response and how many 503s came first.
///
/// # Errors
/// A connection error or any other status.
pub(crate) async fn post_accepted(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    body: bytes::Bytes,
) -> Result<(reqwest::Response, u64), String> {
    let mut retries = 0;
    loop {
        let r = http
            .post(format!("{base}/v1/ingest"))
            .bearer_auth(token)
            .body(body.clone())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        match r.status().as_u16() {
            200 => return Ok((r, retries)),
            503 => {
                retries += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            s => {
                let text = r.text().await.unwrap_or_default();
                return Err(format!("ingest answered {s}: {text}"));
            }
        }
    }
}

fn run(records: u64, clients: usize, dir: &Path) -> Result<(), Failure> {
    let (server, admin) = Server::open(dir, Config::default())?;
    let admin = admin.ok_or("a fresh directory issues an admin token")?;
    let (server_rt, client_rt, base, stop, serving) = start(server)?;

    let bodies = bodies();
    let raw_per_record = bodies[0].len() as f64 / 1000.0;

    let result = client_rt.block_on(async {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(clients * 2)
            .build()
            .map_err(|e| e.to_string())?;
        let realm: serde_json::Value = http
            .post(format!("{base}/v1/admin/realms"))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"name": "bench"}))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let w = realm["write_token"]
            .as_str()
            .ok_or("no write token")?
            .to_string();
        let q = realm["query_token"]
            .as_str()
            .ok_or("no query token")?
            .to_string();

        // A tail client measures sequencing -> delivery latency from received_at.
        let tail = http
            .get(format!("{base}/v1/tail?where=app:ledger&q=upstream"))
            .bearer_auth(&q)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let tail_task = tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut seen: Vec<(u64, Instant)> = Vec::new();
            let mut stream = tail.bytes_stream();
            let mut buf = String::new();
            while let Some(Ok(chunk)) = stream.next().await {
                let now = sealog_event::now_ns();
                let arrived = Instant::now();
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let event: String = buf.drain(..end + 2).collect();
                    if let Some(seq) = event
                        .strip_prefix("id: ")
                        .and_then(|r| r.split('\n').next())
                        .and_then(|s| s.parse::<u64>().ok())
                    {
                        seen.push((seq, arrived));
                    }
                    if let Some(at) = event.find("\"received_at\":\"") {
                        let ts = &event[at + 15..];
                        if let Some(ns) = ts.split('"').next().and_then(sealog_event::parse_rfc3339)
                        {
                            lat.push(Duration::from_nanos((now - ns).max(0) as u64));
                        }
                    }
                }
            }
            (lat, seen)
        });

        let batches = records.div_ceil(1000);
        let acks: Arc<std::sync::Mutex<Vec<(u64, Instant)>>> = Arc::default();
        let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (cpu_c0, cpu_s0) = cpu_split();
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (http, base, w, next, bodies) = (
                http.clone(),
                base.clone(),
                w.clone(),
                next.clone(),
                bodies.clone(),
            );
            let acks = acks.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut retries = 0u64;
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= batches {
                        break;
                    }
                    let body = bodies[(i % bodies.len() as u64) as usize].clone();
                    let t = Instant::now();
                    let (r, again) = post_accepted(&http, &base, &w, body).await?;
                    retries += again;
                    let receipt: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
                    let acked = Instant::now();
                    lat.push(acked - t);
                    if let Some(first) = receipt["first_seq"].as_u64() {
                        if let Ok(mut a) = acks.lock() {
                            a.push((first, acked));
                        }
                    }
                }
                Ok::<_, String>((lat, retries))
            }));
        }
        let mut lat = Vec::new();
        let mut retries = 0;
        let mut peak_rss = 0.0f64;
        for t in tasks {
            let (l, r) = t.await.map_err(|e| e.to_string())??;
            lat.extend(l);
            retries += r;
            peak_rss = peak_rss.max(rss_mib().0);
        }
        let wall = t0.elapsed();
        let (cpu_c1, cpu_s1) = cpu_split();
        let ingest_hwm = rss_mib().1;
        lat.sort();

        // Queries against the filled realm.
        let mut newest = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            let body = http
                .get(format!("{base}/v1/query?order=newest&limit=1000"))
                .bearer_auth(&q)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .bytes()
                .await
                .map_err(|e| e.to_string())?;
            newest.push(t.elapsed());
            if body.iter().filter(|b| **b == b'\n').count() != 1000 {
                return Err("newest query did not return 1000 records".to_string());
            }
        }
        newest.sort();
        // The whole filtered scan, page by page as a client must (a page
        // ends at the server's byte cap with a next cursor).
        let t = Instant::now();
        let (mut matched, mut cursor, mut first_lo) = (0usize, None::<String>, None::<String>);
        let mut last_hi;
        loop {
            let mut url = format!(
                "{base}/v1/query?where=app:ledger&where=status:500&q=upstream&limit=100000"
            );
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let page = http
                .get(url)
                .bearer_auth(&q)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let h = |name: &str| {
                page.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let range = h("x-sealog-scanned").unwrap_or_default();
            let (lo, hi) = range.split_once("..").unwrap_or(("", ""));
            first_lo.get_or_insert_with(|| lo.to_string());
            last_hi = hi.to_string();
            cursor = h("x-sealog-next-cursor");
            matched += page
                .bytes()
                .await
                .map_err(|e| e.to_string())?
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            if cursor.is_none() {
                break;
            }
        }
        let scanned = format!("{}..{last_hi}", first_lo.unwrap_or_default());
        let filtered_took = t.elapsed();
        Ok::<_, String>((
            wall,
            lat,
            retries,
            cpu_c1 - cpu_c0,
            cpu_s1 - cpu_s0,
            (peak_rss, ingest_hwm),
            newest,
            filtered_took,
            matched,
            scanned,
            (
                tail_task,
                acks.lock().map(|a| a.clone()).unwrap_or_default(),
            ),
        ))
    });
    stop.cancel();
    let _ = server_rt.block_on(serving);
    let (
        wall,
        lat,
        retries,
        cpu_client,
        cpu_server,
        (peak_rss, ingest_hwm),
        newest,
        filtered,
        matched,
        scanned,
        (tail_task, mut acks),
    ) = result?;
    let (mut tail_lat, seen) = client_rt.block_on(tail_task).unwrap_or_default();
    tail_lat.sort();
    // Ack-relative latency: the 200 for a batch arrives right after its
    // commit; a tail event may even arrive before it (counted as 0).
    acks.sort_by_key(|a| a.0);
    let mut after_ack: Vec<Duration> = seen
        .iter()
        .filter_map(|(seq, at)| {
            let i = acks.partition_point(|a| a.0 <= *seq).checked_sub(1)?;
            Some(at.saturating_duration_since(acks[i].1))
        })
        .collect();
    after_ack.sort();
    let (_, hwm) = rss_mib();
    let rate = records as f64 / wall.as_secs_f64();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    println!(
        "sealog bench http: {records} records of ~{raw_per_record:.0} bytes in 1,000-record POSTs from {clients} concurrent clients, durable (fsync) commits"
    );
    println!(
        "ingest: {:.2} s, {:.0} records/s, {:.1} MB/s; ack latency p50 {:.1} ms, p99 {:.1} ms; {retries} retries after 503",
        wall.as_secs_f64(),
        rate,
        rate * raw_per_record / 1e6,
        ms(pct(&lat, 0.5)),
        ms(pct(&lat, 0.99)),
    );
    println!(
        "cpu: server {:.2} s ({:.0}% of {cores} cores), load generator {:.2} s ({:.0}% of {cores} cores)",
        cpu_server,
        100.0 * cpu_server / wall.as_secs_f64() / cores,
        cpu_client,
        100.0 * cpu_client / wall.as_secs_f64() / cores,
    );
    println!("memory: RSS {peak_rss:.0} MiB sampled during load; peak (VmHWM) {ingest_hwm:.0} MiB through the ingest phase, {hwm:.0} MiB after the queries; server and client together");
    println!(
        "query: newest 1,000 records p50 {:.1} ms, max {:.1} ms (20 runs); filtered scan (where app:ledger, where status:500, q upstream) over seqs {scanned}: {:.2} s, {matched} matches",
        ms(pct(&newest, 0.5)),
        ms(pct(&newest, 1.0)),
        filtered.as_secs_f64(),
    );
    println!(
        "tail (where app:ledger, q upstream): {} events; commit (ack) -> client p50 {:.1} ms, p99 {:.1} ms; sequencing -> client p50 {:.1} ms, p99 {:.1} ms (the latter includes the commit's fsyncs)",
        tail_lat.len(),
        ms(pct(&after_ack, 0.5)),
        ms(pct(&after_ack, 0.99)),
        ms(pct(&tail_lat, 0.5)),
        ms(pct(&tail_lat, 0.99)),
    );
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "targets: ingest >= 1,000,000 records/s: {}; RSS under load < 256 MiB: {}; newest 1,000 < 20 ms: {}; filtered scan of {records} < 2 s: {}; tail p99 < 50 ms: {}",
        verdict(rate >= 1e6),
        verdict(ingest_hwm < 256.0),
        verdict(ms(pct(&newest, 0.5)) < 20.0),
        verdict(filtered.as_secs_f64() < 2.0),
        verdict(ms(pct(&after_ack, 0.99)) < 50.0),
    );
    Ok(())
}

fn bytes_of(v: Vec<u8>) -> bytes::Bytes {
    bytes::Bytes::from(v)
}
