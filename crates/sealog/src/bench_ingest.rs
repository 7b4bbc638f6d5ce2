//! `sealog bench ingest --vs rsyslog`: the same RFC 5424 stream into
//! rsyslog (imptcp → omfile, no fsync) and into sealog (syslog TCP →
//! sealed journal, fsync before every checkpoint), timed until the last line
//! has landed; then sealog's sidecar listener with the same lines as frames.
//! Last, the sealing floor: leaf hashes, interior nodes and zstd timed on
//! one thread over the first round's stored records and over lean records
//! built from them (BENCHMARKS.md, "Floors"), each turned into the most two
//! cores could ingest with nothing else to do, against rsyslog's median.
//!
//! Each receiver gets one TCP connection carrying the whole stream, written
//! by a sender thread in this process. rsyslog is done when its output file
//! holds every line; sealog when the realm's tree size reaches the count.
//! The two take turns for `--rounds` rounds (a fresh rsyslogd each round,
//! one running sealog server), and the medians are compared, so a slow
//! spell of a shared machine does not land on one side only.

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sealog_server::config::{SidecarListener, SyslogListener};
use sealog_server::{Config, Listeners, Server};
use tokio_util::sync::CancellationToken;

use crate::Failure;

/// `n` RFC 5424 lines of ~200 bytes, LF-terminated.
fn lines(n: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(n as usize * 210);
    const APPS: [&str; 4] = ["payments", "checkout", "auth", "ledger"];
    for i in 0..n {
        let _ = writeln!(
            out,
            "<{pri}>1 2026-11-22T08:{m:02}:{s:02}.{ms:03}Z web-{h:02}.prod.example.net {app} {pid} ID{id} [req@32473 id=\"{i:08x}\" route=\"/api/v1/orders\"] request {i} completed in {d} ms for user u-{u:06} with status 200",
            pri = 8 + (i % 8),
            m = (i / 60_000) % 60,
            s = (i / 1000) % 60,
            ms = i % 1000,
            h = i % 16,
            app = APPS[(i % 4) as usize],
            pid = 1000 + i % 50,
            id = i % 97,
            d = i % 2000,
            u = (i * 7919) % 1_000_000,
        );
    }
    out
}

fn send_all(
    addr: std::net::SocketAddr,
    bytes: Vec<u8>,
) -> std::thread::JoinHandle<std::io::Result<()>> {
    std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr)?;
        for chunk in bytes.chunks(1 << 20) {
            s.write_all(chunk)?;
        }
        s.flush()?;
        // Keep the connection open until the receiver has read everything.
        std::thread::sleep(Duration::from_millis(100));
        Ok(())
    })
}

/// Counts the lines of a growing file, reading only what was added since
/// the last call: re-reading the whole output every poll would take CPU
/// from the peer being measured.
#[derive(Default)]
pub(crate) struct LineCounter {
    file: Option<std::fs::File>,
    lines: u64,
    buf: Vec<u8>,
}

impl LineCounter {
    pub(crate) fn poll(&mut self, path: &Path) -> u64 {
        use std::io::Read;
        if self.file.is_none() {
            self.file = std::fs::File::open(path).ok();
        }
        if let Some(f) = self.file.as_mut() {
            self.buf.resize(1 << 20, 0);
            while let Ok(n) = f.read(&mut self.buf) {
                if n == 0 {
                    break;
                }
                self.lines += memchr::memchr_iter(b'\n', &self.buf[..n]).count() as u64;
            }
        }
        self.lines
    }
}

pub(crate) fn free_port() -> Result<u16, Failure> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn rsyslog(dir: &Path, stream: &[u8], n: u64) -> Result<f64, Failure> {
    let port = free_port()?;
    let out = dir.join("out.log");
    let conf = format!(
        r#"global(workDirectory="{w}")
module(load="imptcp")
input(type="imptcp" port="{port}" address="127.0.0.1" ruleset="bench")
ruleset(name="bench") {{
  action(type="omfile" file="{out}")
}}
"#,
        w = dir.display(),
        out = out.display()
    );
    // Started (and killed when dropped) as the drain bench starts its own.
    let _rsyslogd = crate::bench_drain::rsyslogd(dir, &conf, &[port])?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let t0 = Instant::now();
    let sender = send_all(addr, stream.to_vec());
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut counter = LineCounter::default();
    loop {
        if counter.poll(&out) >= n {
            break;
        }
        if Instant::now() > deadline {
            return Err(Failure::from(
                "rsyslog did not write every line within 600 s",
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = t0.elapsed().as_secs_f64();
    let _ = sender.join();
    Ok(took)
}

/// Runs the comparison in `dir` (removed afterwards).
///
/// # Errors
/// rsyslog missing or failing; sealog setup failures.
pub fn ingest(vs: &str, n: u64, rounds: u32, dir: &Path) -> Result<(), Failure> {
    if vs != "rsyslog" {
        return Err(format!("--vs {vs:?}: only rsyslog is supported").into());
    }
    if dir.exists() {
        return Err(format!("{} exists; pass an absent --dir", dir.display()).into());
    }
    let result = run(n, rounds.max(1), dir);
    let _ = std::fs::remove_dir_all(dir);
    result
}

fn run(n: u64, rounds: u32, dir: &Path) -> Result<(), Failure> {
    let stream = lines(n);
    let per_line = stream.len() as f64 / n as f64;
    let data = dir.join("sealog");
    {
        let mut dd = sealog_store::DataDir::open(&data, "sealog bench ingest")?;
        dd.create_realm(&"bench".parse()?)?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (server, _) = Server::open(&data, Config::default())?;
    let (http, tcp, side) = rt.block_on(async {
        Ok::<_, std::io::Error>((
            tokio::net::TcpListener::bind("127.0.0.1:0").await?,
            tokio::net::TcpListener::bind("127.0.0.1:0").await?,
            tokio::net::TcpListener::bind("127.0.0.1:0").await?,
        ))
    })?;
    let (http_addr, tcp_addr, side_addr) =
        (http.local_addr()?, tcp.local_addr()?, side.local_addr()?);
    let listeners = Listeners {
        syslog_tcp: vec![(
            tcp,
            SyslogListener {
                realm: Some("bench".into()),
                ..SyslogListener::default()
            },
        )],
        sidecar: vec![(
            side,
            SidecarListener {
                realm: Some("bench".into()),
                ..SidecarListener::default()
            },
        )],
        ..Default::default()
    };
    let stop = CancellationToken::new();
    let serving = rt.spawn(server.serve_with(http, listeners, stop.clone()));
    let admin = std::fs::read_to_string(data.join("admin.token"))?;
    let token = {
        // A query token for polling the size.
        let v: serde_json::Value = rt.block_on(async {
            reqwest::Client::new()
                .post(format!("http://{http_addr}/v1/admin/tokens"))
                .bearer_auth(admin.trim())
                .json(&serde_json::json!({"realm": "bench", "scope": "query"}))
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json::<serde_json::Value>()
                .await
                .map_err(|e| e.to_string())
        })?;
        v["token"].as_str().unwrap_or_default().to_string()
    };
    let http_base = http_addr.to_string();
    let size = |rt: &tokio::runtime::Runtime| tree_size(rt, &http_base, &token);
    let wait_for = |rt: &tokio::runtime::Runtime, want: u64| -> Result<(), Failure> {
        let deadline = Instant::now() + Duration::from_secs(600);
        while size(rt) < want {
            if Instant::now() > deadline {
                return Err("sealog did not commit every line within 600 s".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    };
    // Alternate the two receivers round by round, so a slow spell of this
    // shared machine hits both alike; compare the medians.
    let (mut rs_times, mut sl_times) = (Vec::new(), Vec::new());
    for round in 0..u64::from(rounds) {
        eprintln!(
            "round {}: rsyslog, then sealog, {n} lines each ...",
            round + 1
        );
        rs_times.push(rsyslog(&dir.join(format!("rsyslog-{round}")), &stream, n)?);
        let t0 = Instant::now();
        let sender = send_all(tcp_addr, stream.clone());
        wait_for(&rt, (round + 1) * n)?;
        sl_times.push(t0.elapsed().as_secs_f64());
        let _ = sender.join();
    }

    // Sidecar: the same lines as length-prefixed frames.
    let mut frames = Vec::with_capacity(stream.len() + 4 * n as usize);
    for line in stream.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        frames.extend_from_slice(&(line.len() as u32).to_be_bytes());
        frames.extend_from_slice(line);
    }
    let t1 = Instant::now();
    let sender = send_all(side_addr, frames);
    wait_for(&rt, (u64::from(rounds) + 1) * n)?;
    let sc = t1.elapsed().as_secs_f64();
    let _ = sender.join();
    stop.cancel();
    let _ = rt.block_on(serving);
    // Printed after the comparison, which stands without it.
    let floor = sealing_floor(&data, n);

    eprintln!("memory: a separate sealog serve under 4 senders ...");
    let mem = memory_phase(&dir.join("memory"), &stream, 3 * n)?;

    let rates = |times: &[f64]| -> String {
        let v: Vec<String> = times
            .iter()
            .map(|t| format!("{:.0}", n as f64 / t))
            .collect();
        v.join(", ")
    };
    let (rs, sl) = (median(&rs_times), median(&sl_times));
    let (rs_rate, sl_rate, sc_rate) = (n as f64 / rs, n as f64 / sl, n as f64 / sc);
    println!("sealog bench ingest --vs rsyslog: {n} RFC 5424 lines of ~{per_line:.0} bytes over one TCP connection each, {rounds} alternating rounds");
    println!(
        "rsyslog {} imptcp -> omfile (no fsync): median {rs:.2} s, {rs_rate:.0} lines/s (rounds: {} lines/s)",
        rsyslog_version(),
        rates(&rs_times)
    );
    println!(
        "sealog syslog tcp -> sealed journal (fsync per commit): median {sl:.2} s, {sl_rate:.0} lines/s (rounds: {} lines/s)",
        rates(&sl_times)
    );
    let per_round: Vec<String> = rs_times
        .iter()
        .zip(&sl_times)
        .map(|(r, s)| format!("{:.2}x", r / s))
        .collect();
    println!(
        "ratio sealog / rsyslog: {:.2}x of the medians (rounds: {})",
        sl_rate / rs_rate,
        per_round.join(", ")
    );
    println!("sealog sidecar tcp (same lines as frames, receipts sent back): {sc:.2} s, {sc_rate:.0} records/s");
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get()) as f64;
    match &floor {
        Ok(floor) => {
            for (what, f) in [("stored", &floor.stored), ("lean", &floor.lean)] {
                let us = |s: f64| 1e6 * s / n as f64;
                let per_line = f.cpu.sealing() / n as f64;
                let most = if per_line > 0.0 {
                    cores / per_line
                } else {
                    f64::INFINITY
                };
                println!(
                    "floor, {what} records ({:.0} bytes/leaf): leaf hashes {:.3} us + interior nodes {:.3} us + zstd 1 {:.3} us = {:.3} us per line on one thread; on {cores} cores with nothing else at all (no socket, parse, JSON, copies, fsync) at most {most:.0} lines/s = {:.2}x rsyslog's median",
                    f.bytes_per_leaf,
                    us(f.cpu.leaf),
                    us(f.cpu.nodes),
                    us(f.cpu.compress),
                    us(f.cpu.sealing()),
                    most / rs_rate,
                );
            }
        }
        Err(e) => println!("floor: not measured: {}", e.message),
    }
    println!(
        "memory: `sealog serve` (separate process) took {} lines from 4 senders writing as fast as they could in {:.2} s; peak RSS {:.0} MiB; {} of {} lines committed",
        mem.sent, mem.took, mem.peak_mib, mem.committed, mem.sent
    );
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "targets: sealog >= 2.5x rsyslog: {}; >= 1,000,000 lines/s: {}; not slower than rsyslog: {}; RSS < 256 MiB with nothing dropped: {}",
        verdict(sl_rate >= 2.5 * rs_rate),
        verdict(sl_rate >= 1e6),
        verdict(sl_rate >= rs_rate),
        verdict(mem.sent > 0 && mem.peak_mib < 256.0 && mem.committed == mem.sent),
    );
    Ok(())
}

/// The sealing floor of one round's stored lines, and of the same lines
/// as lean records.
struct SealingFloor {
    stored: LeafFloor,
    lean: LeafFloor,
}

struct LeafFloor {
    bytes_per_leaf: f64,
    cpu: crate::bench::Floor,
}

/// Times, on one thread, the work no implementation can skip when it
/// seals the first `n` stored records of the realm (the first round's
/// syslog lines): leaf hashes, interior nodes, and zstd level 1 over the
/// blocks as stored. Then the same for lean records built from them: the
/// server's `realm`, `seq` and `received_at`, `"source":"syslog"`, a parser
/// version (`"syslog":1`), `time` when the line had one, and `raw`; nothing
/// else parsed. Lean records are cut into blocks as `prepare` would cut
/// them.
fn sealing_floor(data: &Path, n: u64) -> Result<SealingFloor, Failure> {
    let dd = sealog_store::DataDir::open(data, "sealog bench ingest")?;
    let realm: sealog_event::RealmName = "bench".parse()?;
    let journal = dd.open_journal(&realm, sealog_journal::JournalOptions::default())?;
    let mut counts = Vec::new();
    let mut held = 0u64;
    for b in journal.blocks() {
        if held >= n {
            break;
        }
        counts.push(b.count);
        held += u64::from(b.count);
    }
    if held != n {
        return Err(format!("the first {n} records do not end at a block boundary").into());
    }
    let (mut stored, mut stored_ends) = (Vec::new(), Vec::with_capacity(n as usize));
    let (mut lean, mut lean_ends) = (Vec::new(), Vec::with_capacity(n as usize));
    let mut lean_events = Vec::with_capacity(n as usize);
    let mut bad = None;
    journal.read(0, n, &mut |seq, line| {
        stored.extend_from_slice(line);
        stored_ends.push(stored.len());
        let cut = memchr::memmem::find(line, br#","source":"#);
        let v = serde_json::from_slice::<serde_json::Value>(line).ok();
        let field = |k: &str| v.as_ref().and_then(|v| v.get(k)).map(|x| x.to_string());
        match (cut, field("raw")) {
            (Some(cut), Some(raw)) => {
                let at = lean.len();
                lean.extend_from_slice(&line[..cut]);
                lean.extend_from_slice(br#","source":"syslog","syslog":1"#);
                if let Some(time) = field("time") {
                    lean.extend_from_slice(br#","time":"#);
                    lean.extend_from_slice(time.as_bytes());
                }
                lean.extend_from_slice(br#","raw":"#);
                lean.extend_from_slice(raw.as_bytes());
                lean.push(b'}');
                lean_ends.push(lean.len());
                // The event a listener would hand over: `{` and the fields.
                lean_events.push(lean.len() - at - cut);
                std::ops::ControlFlow::Continue(())
            }
            _ => {
                bad = Some(seq);
                std::ops::ControlFlow::Break(())
            }
        }
    })?;
    if let Some(seq) = bad {
        return Err(format!("stored record {seq} is not a syslog record with a raw line").into());
    }
    let lean_counts: Vec<u32> = sealog_journal::block_cuts(lean_events.iter().copied())
        .into_iter()
        .map(|r| r.len() as u32)
        .collect();
    Ok(SealingFloor {
        stored: LeafFloor {
            bytes_per_leaf: stored.len() as f64 / n as f64,
            cpu: crate::bench::floor(&stored, &stored_ends, &counts)?,
        },
        lean: LeafFloor {
            bytes_per_leaf: lean.len() as f64 / n as f64,
            cpu: crate::bench::floor(&lean, &lean_ends, &lean_counts)?,
        },
    })
}

/// The median of `v` (the mean of the middle two for an even count).
pub(crate) fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        l if l % 2 == 1 => s[l / 2],
        l => (s[l / 2 - 1] + s[l / 2]) / 2.0,
    }
}

pub(crate) fn rsyslog_version() -> String {
    Command::new("rsyslogd")
        .arg("-v")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string())
        })
        .unwrap_or_default()
}

/// What the memory phase saw.
struct Memory {
    sent: u64,
    committed: u64,
    took: f64,
    peak_mib: f64,
}

/// Runs `sealog serve` (this binary) as a child with a syslog TCP listener,
/// sends `total` lines from 4 connections as fast as they go, samples the
/// child's RSS every 20 ms, and waits until every line is committed.
fn memory_phase(dir: &Path, stream: &[u8], total: u64) -> Result<Memory, Failure> {
    let data = dir.join("data");
    let query_token = {
        let mut dd = sealog_store::DataDir::open(&data, "sealog bench ingest")?;
        dd.create_realm(&"mem".parse()?)?.query_token
    };
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .arg("--data")
        .arg(&data)
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--syslog-tcp",
            "mem@127.0.0.1:0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let result = (|| {
        let deadline = Instant::now() + Duration::from_secs(20);
        let info: serde_json::Value = loop {
            if let Some(v) = std::fs::read_to_string(data.join("server.json"))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
            {
                break v;
            }
            if Instant::now() > deadline {
                return Err(Failure::from("sealog serve did not start"));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let http = info["http"].as_str().ok_or("no http address")?.to_string();
        let syslog: std::net::SocketAddr = info["syslog_tcp"][0]
            .as_str()
            .ok_or("no syslog address")?
            .parse()
            .map_err(|e| format!("{e}"))?;
        // Exactly `per` lines for each sender: whole copies of the stream,
        // then a prefix of it.
        let per = total / 4;
        let body_for = |per: u64| -> Vec<u8> {
            let mut body = Vec::new();
            let mut left = per;
            while left > 0 {
                let mut taken = 0u64;
                let mut end = 0usize;
                for at in memchr::memchr_iter(b'\n', stream) {
                    taken += 1;
                    end = at + 1;
                    if taken == left {
                        break;
                    }
                }
                if taken == 0 {
                    break;
                }
                body.extend_from_slice(&stream[..end]);
                left -= taken;
            }
            body
        };
        let t0 = Instant::now();
        let mut senders = Vec::new();
        let mut sent = 0u64;
        for _ in 0..4 {
            let body = body_for(per);
            sent += memchr::memchr_iter(b'\n', &body).count() as u64;
            senders.push(send_all(syslog, body));
        }
        let pid = child.id();
        let rss = || -> f64 {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("VmRSS:"))
                        .and_then(|l| l.split_whitespace().nth(1))
                        .and_then(|v| v.parse::<f64>().ok())
                })
                .unwrap_or(0.0)
                / 1024.0
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let size = || tree_size(&rt, &http, &query_token);
        let mut peak = 0.0f64;
        let deadline = Instant::now() + Duration::from_secs(600);
        let mut committed = 0;
        while committed < sent && Instant::now() < deadline {
            peak = peak.max(rss());
            committed = size();
            std::thread::sleep(Duration::from_millis(20));
        }
        let took = t0.elapsed().as_secs_f64();
        for s in senders {
            let _ = s.join();
        }
        peak = peak.max(rss());
        Ok(Memory {
            sent,
            committed,
            took,
            peak_mib: peak,
        })
    })();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    result
}

/// The realm's tree size as the query API reports it (0 when unreachable).
fn tree_size(rt: &tokio::runtime::Runtime, http: &str, token: &str) -> u64 {
    rt.block_on(async {
        reqwest::Client::new()
            .get(format!("http://{http}/v1/query?limit=0"))
            .bearer_auth(token)
            .send()
            .await
            .ok()
            .and_then(|r| {
                r.headers()
                    .get("x-sealog-tree-size")?
                    .to_str()
                    .ok()?
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    })
}
