//! `sealog bench drain`: records/s from a realm's journal to one rsyslog
//! imptcp receiver through a sealog drain, side by side in the same run with
//! rsyslog relaying the same lines to that receiver (imptcp → omfwd over
//! TCP); then a log session's latency from commit to line.
//!
//! One receiving rsyslogd has two imptcp inputs, one per side, each
//! writing `%rawmsg%` lines to its own file; a side is done when its file
//! holds every line. sealog's side starts when the drain is created (the
//! records are already committed) and reads them from the journal; the
//! relay's side starts when this process begins writing the same packets
//! (as the drain formats them) into the relay's imptcp input. The two take
//! turns for `--rounds` rounds and the medians are compared.
//!
//! Both rsyslogd instances get the tuning an operator gives rsyslog for
//! throughput, the same for each side: main-queue batches of 1,024, and a
//! 1 MiB `omfile` buffer in the receiver.

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sealog_server::{Config, Server};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::bench_ingest::{free_port, median, rsyslog_version, LineCounter};
use crate::Failure;

/// Single-record commits timed through a log session.
const PROBES: usize = 300;

/// A record as logshuttle's ingest stores it, ~230 bytes (also the
/// Kafka bench's message).
pub(crate) fn record(i: u64) -> String {
    format!(
        "{{\"app\":\"api\",\"space\":\"prod\",\"proc_type\":\"web\",\"dyno\":\"api-7f9c4d-{p:05}\",\"source\":\"kubernetes\",\"stream\":\"stdout\",\"time\":\"2026-11-23T08:{m:02}:{s:02}.{ms:03}Z\",\"log\":\"request {i} GET /api/v1/orders/{o} completed in {d} ms status 200\"}}\n",
        p = i % 64,
        m = (i / 60_000) % 60,
        s = (i / 1000) % 60,
        ms = i % 1000,
        o = (i * 7919) % 1_000_000,
        d = i % 2000,
    )
}

/// A running rsyslogd, killed when dropped.
pub(crate) struct Rsyslogd(Child);

impl Drop for Rsyslogd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes `conf` into `dir`, starts rsyslogd on it and waits until it
/// listens on every port in `ports`.
pub(crate) fn rsyslogd(dir: &Path, conf: &str, ports: &[u16]) -> Result<Rsyslogd, Failure> {
    rsyslogd_env(dir, conf, ports, &[])
}

/// [`rsyslogd`] with more environment variables.
pub(crate) fn rsyslogd_env(
    dir: &Path,
    conf: &str,
    ports: &[u16],
    env: &[(&str, &Path)],
) -> Result<Rsyslogd, Failure> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("rsyslog.conf"), conf)?;
    let child = Command::new("rsyslogd")
        .envs(env.iter().copied())
        .arg("-n")
        .arg("-f")
        .arg(dir.join("rsyslog.conf"))
        .arg("-i")
        .arg(dir.join("rsyslog.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("start rsyslogd (Debian package rsyslog): {e}"))?;
    let r = Rsyslogd(child);
    let deadline = Instant::now() + Duration::from_secs(15);
    for p in ports {
        while TcpStream::connect(("127.0.0.1", *p)).is_err() {
            if Instant::now() > deadline {
                return Err("rsyslogd did not start listening".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(r)
}

/// CPU seconds (user + system) process `pid` (or `self`) has used, from
/// `/proc/<pid>/stat` (in USER_HZ ticks, 100 a second on Linux).
fn cpu_secs(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name's closing parenthesis start at the 3rd.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (tick(11) + tick(12)) / 100.0
}

/// Waits until `path` has `want` lines; the seconds since `t0`.
fn wait_lines(c: &mut LineCounter, path: &Path, want: u64, t0: Instant) -> Result<f64, Failure> {
    let deadline = Instant::now() + Duration::from_secs(600);
    while c.poll(path) < want {
        if Instant::now() > deadline {
            return Err(format!(
                "{} has {} of {want} lines after 600 s",
                path.display(),
                c.poll(path)
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(t0.elapsed().as_secs_f64())
}

/// Runs the comparison in `dir` (absent; removed afterwards).
///
/// # Errors
/// rsyslog missing or failing; sealog setup failures.
pub fn drain(n: u64, rounds: u32, dir: &Path) -> Result<(), Failure> {
    if dir.exists() {
        return Err(format!("{} exists; pass an absent --dir", dir.display()).into());
    }
    let result = run(n.max(1), rounds.max(1), dir);
    let _ = std::fs::remove_dir_all(dir);
    result
}

#[allow(clippy::too_many_lines)]
fn run(n: u64, rounds: u32, dir: &Path) -> Result<(), Failure> {
    // The receiver: one input per side.
    let (to_sealog, to_relay_out, relay_in) = (free_port()?, free_port()?, free_port()?);
    let (got_sealog, got_relay) = (dir.join("recv/sealog.log"), dir.join("recv/relay.log"));
    let _receiver = rsyslogd(
        &dir.join("recv"),
        &format!(
            r#"global(workDirectory="{w}")
main_queue(queue.dequeueBatchSize="1024")
module(load="imptcp")
template(name="raw" type="string" string="%rawmsg%\n")
input(type="imptcp" port="{to_sealog}" address="127.0.0.1" ruleset="s")
input(type="imptcp" port="{to_relay_out}" address="127.0.0.1" ruleset="r")
ruleset(name="s") {{ action(type="omfile" file="{a}" template="raw" ioBufferSize="1m") }}
ruleset(name="r") {{ action(type="omfile" file="{b}" template="raw" ioBufferSize="1m") }}
"#,
            w = dir.join("recv").display(),
            a = got_sealog.display(),
            b = got_relay.display()
        ),
        &[to_sealog, to_relay_out],
    )?;
    // The relay: imptcp in, omfwd over TCP to the receiver, the lines as
    // they came.
    let relay = rsyslogd(
        &dir.join("relay"),
        &format!(
            r#"global(workDirectory="{w}")
main_queue(queue.dequeueBatchSize="1024")
module(load="imptcp")
template(name="same" type="string" string="%rawmsg%")
input(type="imptcp" port="{relay_in}" address="127.0.0.1" ruleset="fwd")
ruleset(name="fwd") {{ action(type="omfwd" target="127.0.0.1" port="{to_relay_out}" protocol="tcp" template="same") }}
"#,
            w = dir.join("relay").display()
        ),
        &[relay_in],
    )?;

    // sealog, with the records committed before the drain starts.
    let data = dir.join("sealog");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (server, admin) = Server::open(&data, Config::default())?;
    let admin = admin.ok_or("a new data directory has an admin token")?;
    let http = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let base = format!("http://{}", http.local_addr()?);
    let stop = CancellationToken::new();
    let serving = rt.spawn(server.serve(http, stop.clone()));
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, token: &str, body: Option<Vec<u8>>| {
        let req = client
            .request(method, format!("{base}{path}"))
            .header(
                "content-type",
                if path == "/v1/ingest" {
                    "application/x-ndjson"
                } else {
                    "application/json"
                },
            )
            .bearer_auth(token);
        let req = match body {
            Some(b) => req.body(b),
            None => req,
        };
        rt.block_on(async {
            let r = req.send().await.map_err(|e| e.to_string())?;
            let status = r.status();
            let v: Value = r.json().await.map_err(|e| e.to_string())?;
            if status.is_success() {
                Ok(v)
            } else {
                Err(Failure::from(format!("{path}: {status} {v}")))
            }
        })
    };
    let realm = call(
        reqwest::Method::POST,
        "/v1/admin/realms",
        &admin,
        Some(json!({"name": "bench"}).to_string().into_bytes()),
    )?;
    let write = realm["write_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let query = realm["query_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    eprintln!("committing {n} records ...");
    let mut i = 0;
    while i < n {
        let k = (n - i).min(20_000);
        let body: String = (i..i + k).map(record).collect();
        call(
            reqwest::Method::POST,
            "/v1/ingest",
            &write,
            Some(body.into_bytes()),
        )?;
        i += k;
    }
    // The relay's input: the packets the drain sends, newline framed.
    let stream = {
        let mut out = Vec::new();
        // Every stored line, page by page (a page stops at 4 MiB).
        let mut text = String::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = format!(
                "{base}/v1/query?limit={n}{}",
                cursor
                    .as_deref()
                    .map(|c| format!("&cursor={c}"))
                    .unwrap_or_default()
            );
            let r = rt
                .block_on(client.get(page).bearer_auth(&query).send())
                .map_err(|e| e.to_string())?;
            cursor = r
                .headers()
                .get("x-sealog-next-cursor")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            text.push_str(&rt.block_on(r.text()).map_err(|e| e.to_string())?);
            if cursor.is_none() {
                break;
            }
        }
        let m = sealog_server::drain::record::Matcher::new(&sealog_store::Select::App {
            app: "api".into(),
            space: "prod".into(),
        })?;
        let mut memo = sealog_server::drain::record::Memo::default();
        for line in text.lines() {
            let f = sealog_server::drain::record::fields(line.as_bytes())
                .ok_or("a stored record that is not JSON")?;
            let mut p = Vec::new();
            sealog_server::drain::record::packet(
                &mut p,
                "bench",
                line.as_bytes(),
                &f,
                &m,
                &mut memo,
            );
            sealog_codec::drain::frame_stream(&mut out, &p, sealog_codec::drain::Framing::Newline);
        }
        out
    };
    let bytes_per = stream.len() as f64 / n as f64;

    let relay_pid = relay.0.id().to_string();
    let (mut rs_times, mut sl_times) = (Vec::new(), Vec::new());
    let (mut rs_cpu, mut sl_cpu) = (Vec::new(), Vec::new());
    let (mut rs_count, mut sl_count) = (LineCounter::default(), LineCounter::default());
    for round in 0..u64::from(rounds) {
        eprintln!(
            "round {}: rsyslog relay, then sealog drain, {n} lines each ...",
            round + 1
        );
        let c0 = cpu_secs(&relay_pid);
        let t0 = Instant::now();
        let bytes = stream.clone();
        let sender = std::thread::spawn(move || -> std::io::Result<()> {
            let mut s = TcpStream::connect(("127.0.0.1", relay_in))?;
            for chunk in bytes.chunks(1 << 20) {
                s.write_all(chunk)?;
            }
            s.flush()?;
            // Hold the connection until the relay has read it all.
            std::thread::sleep(Duration::from_secs(2));
            Ok(())
        });
        rs_times.push(wait_lines(&mut rs_count, &got_relay, n * (round + 1), t0)?);
        rs_cpu.push(cpu_secs(&relay_pid) - c0);
        let _ = sender.join();
        let c0 = cpu_secs("self");
        let t0 = Instant::now();
        let d = call(
            reqwest::Method::POST,
            "/apps/api-prod/log-drains",
            &write,
            Some(
                json!({"url": format!("syslog://127.0.0.1:{to_sealog}")})
                    .to_string()
                    .into_bytes(),
            ),
        )?;
        sl_times.push(wait_lines(&mut sl_count, &got_sealog, n * (round + 1), t0)?);
        sl_cpu.push(cpu_secs("self") - c0);
        let id = d["id"].as_str().unwrap_or_default();
        call(
            reqwest::Method::DELETE,
            &format!("/v1/drains/{id}"),
            &write,
            None,
        )?;
    }

    // Log session: commit → line.
    let lat = rt.block_on(session_latency(&client, &base, &write))?;
    stop.cancel();
    let _ = rt.block_on(serving);

    let (rs, sl) = (median(&rs_times), median(&sl_times));
    let (rs_rate, sl_rate) = (n as f64 / rs, n as f64 / sl);
    let rates = |v: &[f64]| {
        v.iter()
            .map(|t| format!("{:.0}", n as f64 / t))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "sealog bench drain: {n} records (~{bytes_per:.0}-byte syslog packets) to one rsyslog {} imptcp receiver, {rounds} alternating rounds",
        rsyslog_version()
    );
    println!(
        "rsyslog relay (imptcp -> omfwd tcp): median {rs:.2} s, {rs_rate:.0} records/s (rounds: {})",
        rates(&rs_times)
    );
    println!(
        "sealog drain (journal -> syslog tcp): median {sl:.2} s, {sl_rate:.0} records/s (rounds: {})",
        rates(&sl_times)
    );
    println!("ratio sealog / rsyslog: {:.2}x", sl_rate / rs_rate);
    let (rc, sc) = (median(&rs_cpu), median(&sl_cpu));
    println!(
        "CPU per record (user + system, medians): rsyslog relay {:.2} us, sealog drain {:.2} us (the whole bench process, its file polling included); ratio {:.2}",
        rc * 1e6 / n as f64,
        sc * 1e6 / n as f64,
        sc / rc
    );
    println!(
        "log session, commit -> line ({PROBES} single-record commits with fsync, 10 ms apart): p50 {:.1} ms, p99 {:.1} ms; send -> line (the fsync included) p99 {:.1} ms",
        lat.p50, lat.p99, lat.send99
    );
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "targets: >= 1x rsyslog: {}; >= 200,000 records/s: {}; session p99 < 50 ms: {}",
        verdict(sl_rate >= rs_rate),
        verdict(sl_rate >= 200_000.0),
        verdict(lat.p99 < 50.0)
    );
    Ok(())
}

/// A log session's latencies, ms.
struct Latency {
    /// From the acknowledgement (durable commit) to the line: p50.
    p50: f64,
    /// The same, p99.
    p99: f64,
    /// From sending the record (commit with fsync included) to the line: p99.
    send99: f64,
}

/// Opens a tailing log session, commits single records and times each
/// from its acknowledgement (the commit is durable) to its line on the
/// session's stream. A line that arrives before the acknowledgement counts
/// as 0.
async fn session_latency(
    client: &reqwest::Client,
    base: &str,
    write: &str,
) -> Result<Latency, Failure> {
    use futures_util::StreamExt;
    let s: Value = client
        .post(format!("{base}/log-sessions"))
        .bearer_auth(write)
        .json(&json!({"app": "probe", "space": "prod", "lines": 0, "tail": true}))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let url = s["logplex_url"]
        .as_str()
        .ok_or("no logplex_url")?
        .to_string();
    let resp = client.get(&url).send().await.map_err(|e| e.to_string())?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    let reader = tokio::spawn(async move {
        let mut body = resp.bytes_stream();
        let mut buf = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            let now = Instant::now();
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(at) = buf.find('\n') {
                let line: String = buf.drain(..=at).collect();
                if let Some(k) = line
                    .rsplit("probe ")
                    .next()
                    .and_then(|k| k.trim().parse().ok())
                {
                    let _ = tx.send((k, now));
                }
            }
        }
    });
    let mut sent = vec![Instant::now(); PROBES];
    let mut acked = vec![None; PROBES];
    let mut lines = vec![None; PROBES];
    for (k, ack) in acked.iter_mut().enumerate() {
        let body = format!("{{\"app\":\"probe\",\"space\":\"prod\",\"msg\":\"probe {k}\"}}\n");
        sent[k] = Instant::now();
        let r = client
            .post(format!("{base}/v1/ingest"))
            .bearer_auth(write)
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        *ack = Some(Instant::now());
        if !r.status().is_success() {
            return Err(format!("probe ingest: {}", r.status()).into());
        }
        while let Ok((k, at)) = rx.try_recv() {
            if let Some(l) = lines.get_mut(k) {
                *l = Some(at);
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while lines.iter().any(Option::is_none) && Instant::now() < deadline {
        if let Ok(Some((k, at))) = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await
        {
            if let Some(l) = lines.get_mut(k) {
                *l = Some(at);
            }
        }
    }
    reader.abort();
    let pct = |from: &dyn Fn(usize) -> Option<Instant>| {
        let mut ms: Vec<f64> = (0..PROBES)
            .map(|k| match (from(k), lines[k]) {
                (Some(a), Some(l)) => l.saturating_duration_since(a).as_secs_f64() * 1000.0,
                _ => f64::INFINITY,
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        let at = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
        (at(0.5), at(0.99))
    };
    let (p50, p99) = pct(&|k| acked[k]);
    let (_, send99) = pct(&|k| Some(sent[k]));
    Ok(Latency { p50, p99, send99 })
}
