//! `sealog bench witnessing`: HTTP ingest with two local witnesses and
//! quorum 2 against the same ingest without witnesses, in alternating
//! rounds of one run, and the lag from a commit to its cosigned checkpoint.
//!
//! Each round is a fresh data directory and a fresh realm; the witnessed
//! rounds start two `sealog witness` processes (this binary) watching the
//! realm's key, and the server (in this process, as in `bench http`) with
//! `--witness-interval` 1 s by default, the shipped setting. Rates are
//! medians over rounds; the lag is the server's own
//! `sealog_witness_lag_seconds` (every commit seen, to the cosigned
//! checkpoint covering it stored), and the catch-up is the time from the
//! last ack to `GET /v1/checkpoint` serving the final size.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sealog_server::config::WitnessTarget;
use sealog_server::{Config, Server};

use crate::Failure;

/// A witness child process, killed when dropped.
struct WitnessProc {
    child: Child,
    target: String,
}

impl Drop for WitnessProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_witness(dir: &Path, name: &str, log_key: &str) -> Result<WitnessProc, Failure> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .arg("--data")
        .arg(dir)
        .args([
            "witness",
            "--http",
            "127.0.0.1:0",
            "--name",
            name,
            "--log",
            log_key,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut out = BufReader::new(child.stdout.take().ok_or("witness stdout")?);
    let mut err = BufReader::new(child.stderr.take().ok_or("witness stderr")?);
    let (mut vkey, mut line) = (String::new(), String::new());
    out.read_line(&mut vkey)?;
    err.read_line(&mut line)?;
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let at = line
        .find("http://")
        .ok_or_else(|| format!("witness {name} did not start: {line:?}"))?;
    let url = line[at..]
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_end_matches("/add-checkpoint")
        .to_string();
    Ok(WitnessProc {
        child,
        target: format!("{}@{url}", vkey.trim()),
    })
}

/// One round's figures.
struct Round {
    rate: f64,
    catch_up: Option<Duration>,
}

fn round(
    dir: &Path,
    records: u64,
    clients: usize,
    witnessed: bool,
    interval: Duration,
) -> Result<Round, Failure> {
    let mut dd = sealog_store::DataDir::open(dir, "sealog bench")?;
    let name = sealog_event::RealmName::new("bench").map_err(|e| e.to_string())?;
    let created = dd.create_realm(&name)?;
    drop(dd);
    let mut cfg = Config::default();
    let mut witnesses = Vec::new();
    if witnessed {
        for n in ["w1.bench", "w2.bench"] {
            witnesses.push(start_witness(
                &dir.join(format!("witness-{n}")),
                n,
                &created.public_key,
            )?);
        }
        for w in &witnesses {
            cfg.witnessing
                .witnesses
                .push(w.target.parse::<WitnessTarget>()?);
        }
        cfg.witnessing.quorum = 2;
        cfg.witnessing.interval_ms = u64::try_from(interval.as_millis()).unwrap_or(1000);
    }
    let (server, _) = Server::open(dir, cfg)?;
    let (server_rt, client_rt, base, stop, serving) = crate::bench_http::start(server)?;
    let bodies = crate::bench_http::bodies();
    let (w, q) = (created.write_token, created.query_token);
    let result = client_rt.block_on(async {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(clients * 2)
            .build()
            .map_err(|e| e.to_string())?;
        let batches = records.div_ceil(1000);
        let next = Arc::new(AtomicU64::new(0));
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
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= batches {
                        return Ok::<_, String>(());
                    }
                    let body = bodies[(i % 64) as usize].clone();
                    crate::bench_http::post_accepted(&http, &base, &w, body).await?;
                }
            }));
        }
        for t in tasks {
            t.await.map_err(|e| e.to_string())??;
        }
        let wall = t0.elapsed();
        let mut catch_up = None;
        if witnessed {
            let want = batches * 1000;
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(60) {
                let r = http
                    .get(format!("{base}/v1/checkpoint"))
                    .bearer_auth(&q)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                if r.status().as_u16() == 200 {
                    let text = r.text().await.map_err(|e| e.to_string())?;
                    if text.lines().nth(1) == Some(want.to_string().as_str()) {
                        catch_up = Some(t.elapsed());
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if catch_up.is_none() {
                return Err("the final checkpoint was not cosigned within 60 s".to_string());
            }
        }
        Ok::<_, String>(Round {
            rate: (batches * 1000) as f64 / wall.as_secs_f64(),
            catch_up,
        })
    });
    stop.cancel();
    let _ = server_rt.block_on(serving);
    drop(witnesses);
    Ok(result?)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs `rounds` alternating pairs and prints the rates, their ratio and
/// the lag.
///
/// # Errors
/// An existing `dir`, start or ingest failures.
pub fn witnessing(
    records: u64,
    clients: usize,
    rounds: usize,
    interval: Duration,
    dir: &Path,
) -> Result<(), Failure> {
    if dir.exists() {
        return Err(format!("{} exists; pass an absent --dir", dir.display()).into());
    }
    let (mut plain, mut with, mut catch) = (Vec::new(), Vec::new(), Vec::new());
    let result = (|| -> Result<(), Failure> {
        for r in 0..rounds.max(1) {
            for witnessed in [r % 2 == 1, r % 2 == 0] {
                let d = dir.join(format!("round-{r}-{witnessed}"));
                std::fs::create_dir_all(&d)?;
                let got = round(&d, records, clients, witnessed, interval)?;
                let _ = std::fs::remove_dir_all(&d);
                println!(
                    "round {}: {} {:.0} records/s{}",
                    r + 1,
                    if witnessed {
                        "two witnesses"
                    } else {
                        "no witness   "
                    },
                    got.rate,
                    got.catch_up.map_or(String::new(), |c| format!(
                        "; final checkpoint cosigned {:.0} ms after the last ack",
                        c.as_secs_f64() * 1000.0
                    ))
                );
                if witnessed {
                    with.push(got.rate);
                    catch.extend(got.catch_up.map(|c| c.as_secs_f64() * 1000.0));
                } else {
                    plain.push(got.rate);
                }
            }
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(dir);
    result?;
    let (p, w) = (median(&mut plain), median(&mut with));
    println!(
        "sealog bench witnessing: {records} records in 1,000-record POSTs from {clients} clients, {} rounds each, alternated; witness interval {} ms",
        plain.len(),
        interval.as_millis()
    );
    println!(
        "median ingest: no witness {p:.0} records/s, two witnesses (quorum 2) {w:.0} records/s: {:.3}x ({:+.1}%)",
        w / p,
        100.0 * (w / p - 1.0)
    );
    let text = sealog_server::metrics::Metrics::new(100).render();
    let q = |quantile: &str| {
        text.lines()
            .find(|l| {
                l.starts_with("sealog_witness_lag_seconds{")
                    && l.contains(&format!("quantile=\"{quantile}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .map_or("n/a".to_string(), |s| format!("{:.0} ms", s * 1000.0))
    };
    println!(
        "cosigned-checkpoint lag (a commit seen to its cosigned checkpoint stored, every commit of the witnessed rounds): p50 {}, p99 {}, max {}",
        q("0.5"),
        q("0.99"),
        q("1")
    );
    println!(
        "final checkpoint cosigned after the last ack: median {:.0} ms",
        median(&mut catch)
    );
    Ok(())
}
