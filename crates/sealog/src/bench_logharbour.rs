//! `sealog bench logharbour`: LogHarbour's query functions and `sealog
//! grep` over `--records` generated entries (issue 12's speed targets).
//!
//! Setup (untimed): the entries (50 apps, three types, eight priorities,
//! a rare token in 1 record in 10,000, a common one in about half) are
//! written as plain NDJSON to `entries.ndjson` and appended to a realm's
//! journal. Then, timed:
//!
//! - how long after the server starts its background summarizer has made
//!   every block's `GetSet` summary (uncapped here);
//! - `GET /v1/sets?attr=app` and a filtered `/v1/sets` through a server,
//!   first call and the median of the next three; the unfiltered one again
//!   after a restart (block summaries read back from `lh.facets`);
//! - the newest page of `GET /v1/logs` with three filters, median of 20;
//! - `sealog grep -c` on the data directory against `rg -c` over
//!   `entries.ndjson`, for the rare token (selective) and the common one
//!   (unselective); both counts must agree with the generator's.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sealog_journal::{EventRef, JournalOptions};
use sealog_store::DataDir;

use crate::Failure;

const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const PRIS: [&str; 8] = [
    "Debug2", "Debug1", "Debug0", "Info", "Warn", "Err", "Crit", "Sec",
];
/// In 1 message in 10,000.
pub const RARE: &str = "quasar-7f3a";
/// In about half the messages.
pub const COMMON: &str = "session-renewed";

fn mix(i: u64) -> u64 {
    let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5851_f42d_4c95_7f2d;
    x ^= x >> 29;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^ (x >> 32)
}

/// Entry `i` as LogHarbour's client writes it; returns its time (ns).
pub fn entry(i: u64, out: &mut Vec<u8>) -> i64 {
    let x = mix(i);
    let app = x % 50;
    let ty = ["C", "A", "D"][((x >> 8) % 3) as usize];
    let pri = PRIS[((x >> 12) % 8) as usize];
    let when = T0 * 1_000_000_000 + i as i64 * 1_000_000;
    let secs = when / 1_000_000_000;
    let t =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let msg = if i % 10_000 == 4_321 {
        RARE
    } else if (x >> 20) & 1 == 0 {
        COMMON
    } else {
        "request served"
    };
    let _ = write!(
        out,
        r#"{{"id":"lh{i:010}","app":"app{}{}","system":"web-{}","module":"{}","type":"{ty}","pri":"{pri}","when":"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z","who":"user{}","op":"{}","class":"account","instance":"i{}","remote_ip":"10.0.{}.{}","status":{},"msg":"{msg} #{i}""#,
        (b'a' + (app / 10) as u8) as char,
        (b'a' + (app % 10) as u8) as char,
        (x >> 24) % 4,
        ["auth", "billing", "search", "admin"][((x >> 28) % 4) as usize],
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        (when / 1_000_000) % 1000,
        (x >> 32) % 500,
        ["create", "update", "delete", "login"][((x >> 40) % 4) as usize],
        (x >> 44) % 100,
        (x >> 48) % 8,
        (x >> 52) % 200,
        (x >> 60) & 1,
    );
    if ty == "C" {
        let _ = write!(
            out,
            r#","data":{{"change_data":{{"entity":"account","op":"update","changes":[{{"field":"{}","old_value":"a","new_value":"b"}}]}}}}"#,
            ["email", "name", "phone", "role"][((x >> 56) % 4) as usize]
        );
    }
    out.extend_from_slice(b"}\n");
    when
}

/// Runs the benchmark in `dir` (which must not exist).
///
/// # Errors
/// Setup failures, ripgrep missing, or counts that disagree.
pub fn logharbour(records: u64, dir: &Path, keep: bool) -> Result<(), Failure> {
    if dir.exists() {
        return Err(format!("{} exists; pass an absent --dir", dir.display()).into());
    }
    let result = run(records, dir);
    if !keep {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn run(records: u64, dir: &Path) -> Result<(), Failure> {
    let data = dir.join("data");
    std::fs::create_dir_all(dir)?;
    let (query_token, rare, common) = {
        let mut dd = DataDir::open(&data, "sealog bench logharbour")?;
        let name: sealog_event::RealmName = "lh".parse()?;
        let created = dd.create_realm(&name)?;
        let mut journal = dd.open_journal(&name, JournalOptions::default())?;
        let mut text = std::io::BufWriter::new(std::fs::File::create(dir.join("entries.ndjson"))?);
        eprintln!("generating {records} LogHarbour entries, appending them to a journal ...");
        let t = Instant::now();
        let (mut rare, mut common) = (0u64, 0u64);
        let chunk = 500_000u64;
        let mut buf = Vec::new();
        for from in (0..records).step_by(chunk as usize) {
            buf.clear();
            let mut spans = Vec::new();
            for i in from..(from + chunk).min(records) {
                let at = buf.len();
                let when = entry(i, &mut buf);
                spans.push((at, buf.len() - 1, when));
            }
            text.write_all(&buf)?;
            for (a, b, _) in &spans {
                let l = &buf[*a..*b];
                rare += u64::from(memchr::memmem::find(l, RARE.as_bytes()).is_some());
                common += u64::from(memchr::memmem::find(l, COMMON.as_bytes()).is_some());
            }
            let events: Vec<EventRef<'_>> = spans
                .iter()
                .map(|(a, b, when)| EventRef {
                    bytes: &buf[*a..*b],
                    time_ns: Some(*when),
                })
                .collect();
            crate::ingest::append_pipelined(&mut journal, &events, 65_536, &mut |_| {})?;
        }
        text.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        journal.sync()?;
        eprintln!("setup took {:.1} s", t.elapsed().as_secs_f64());
        (created.query_token, rare, common)
    };
    let ndjson = dir.join("entries.ndjson");
    let bytes = std::fs::metadata(&ndjson)?.len();
    let exe = std::env::current_exe()?;
    println!(
        "sealog bench logharbour: {records} entries ({:.2} GB as NDJSON), {} cores",
        bytes as f64 / 1e9,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // Through a server: the query functions; then again after a restart,
    // when the block summaries the first counts made are read back.
    // The summarizer makes the realm's block summaries in the background,
    // uncapped here; the first server waits for it before counting.
    let config = dir.join("sealog.toml");
    std::fs::write(
        &config,
        "[logharbour]\nsummarize_realms = [\"lh\"]\nsummarize_records_per_sec = 0\n",
    )?;
    for restarted in [false, true] {
        let log = std::fs::File::create(dir.join("serve.log"))?;
        let started = Instant::now();
        let mut child = Command::new(&exe)
            .args(["--data"])
            .arg(&data)
            .args(["serve", "--http", "127.0.0.1:0", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        let result = (|| -> Result<(), Failure> {
            let deadline = Instant::now() + Duration::from_secs(60);
            let base = loop {
                if let Ok(t) = std::fs::read_to_string(data.join("server.json")) {
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&t) {
                        break format!("http://{}", v["http"].as_str().unwrap_or_default());
                    }
                }
                if Instant::now() > deadline {
                    return Err("the server did not start within 60 s".into());
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(600))
                .build()?;
            let get = |path: &str| -> Result<(f64, serde_json::Value), Failure> {
                rt.block_on(async {
                    let t = Instant::now();
                    let r = http
                        .get(format!("{base}{path}"))
                        .bearer_auth(&query_token)
                        .send()
                        .await?;
                    let status = r.status();
                    let body = r.bytes().await?;
                    let s = t.elapsed().as_secs_f64();
                    if !status.is_success() {
                        return Err(
                            format!("{path}: {status} {}", String::from_utf8_lossy(&body)).into(),
                        );
                    }
                    Ok((s, serde_json::from_slice(&body)?))
                })
            };
            if !restarted {
                let want = format!("sealog_lh_summarized_through{{realm=\"lh\"}} {records}");
                let deadline = Instant::now() + Duration::from_secs(1200);
                loop {
                    let text = rt.block_on(async {
                        http.get(format!("{base}/metrics"))
                            .send()
                            .await?
                            .text()
                            .await
                    })?;
                    if text.lines().any(|l| l.trim() == want) {
                        break;
                    }
                    if Instant::now() > deadline {
                        return Err("the block summaries were not made within 1200 s".into());
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                println!(
                    "background block summaries of all {records} entries made {:.1} s after the server started",
                    started.elapsed().as_secs_f64()
                );
            }
            let paths: &[&str] = if restarted {
                &["/v1/sets?attr=app"]
            } else {
                &[
                    "/v1/sets?attr=app",
                    "/v1/sets?attr=remote_ip&pri=Warn&module=auth",
                ]
            };
            let when = if restarted { " after a restart" } else { "" };
            for path in paths {
                let (first, v) = get(path)?;
                let mut warm = Vec::new();
                for _ in 0..3 {
                    warm.push(get(path)?.0);
                }
                println!(
                    "GET {path}{when}: first {first:.3} s, then median {:.3} s ({} values, {} entries counted)",
                    median(warm),
                    v["distinct"],
                    v["total"]
                );
            }
            if restarted {
                return Ok(());
            }
            let path = "/v1/logs?app=appae&type=A&pri=Warn";
            let (first, v) = get(path)?;
            let mut warm = Vec::new();
            for _ in 0..20 {
                warm.push(get(path)?.0);
            }
            println!(
                "GET {path} (newest page, {} entries): first {:.1} ms, then median {:.1} ms",
                v["logs"].as_array().map_or(0, Vec::len),
                first * 1e3,
                median(warm) * 1e3
            );
            Ok(())
        })();
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        let _ = child.wait();
        result?;
    }

    // sealog grep against ripgrep over the same entries: first reading
    // every block (`--no-index`), then the first indexed run (which builds
    // the message index as it reads), then with the index.
    let rg = which("rg").ok_or("ripgrep (rg) is not installed: apt-get install ripgrep")?;
    let grep = |pattern: &str, want: u64, extra: &[&str]| -> Result<f64, Failure> {
        let t = Instant::now();
        let o = Command::new(&exe)
            .arg("--data")
            .arg(&data)
            .args(["grep", "--realm", "lh", "-c", "--message", pattern])
            .args(extra)
            .output()?;
        let took = t.elapsed().as_secs_f64();
        let n = String::from_utf8_lossy(&o.stdout).trim().to_string();
        if n != want.to_string() {
            return Err(Failure::verify(format!(
                "sealog grep {extra:?} counted {n:?} for {pattern}; the generator wrote {want} ({})",
                String::from_utf8_lossy(&o.stderr)
            )));
        }
        Ok(took)
    };
    let index_file = data
        .join("realms")
        .join("lh")
        .join(sealog_query::message_index::INDEX_FILE);
    for (label, pattern, want) in [("selective", RARE, rare), ("unselective", COMMON, common)] {
        let mut scans = Vec::new();
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for _ in 0..3 {
            scans.push(grep(pattern, want, &["--no-index"])?);
            let t = Instant::now();
            let o = Command::new(&rg)
                .args(["-c", pattern])
                .arg(&ndjson)
                .output()?;
            theirs.push(t.elapsed().as_secs_f64());
            let n = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if n != want.to_string() {
                return Err(Failure::verify(format!(
                    "rg counted {n:?} for {pattern}; the generator wrote {want}"
                )));
            }
        }
        let built = if index_file.exists() {
            None
        } else {
            Some(grep(pattern, want, &[])?)
        };
        for _ in 0..5 {
            ours.push(grep(pattern, want, &[])?);
        }
        let (s, o, t) = (median(scans), median(ours), median(theirs));
        if let Some(b) = built {
            let size = std::fs::metadata(&index_file).map_or(0, |m| m.len());
            println!(
                "message index built by the first indexed grep: {b:.3} s, {:.1} MB ({:.1} bytes a record)",
                size as f64 / 1e6,
                size as f64 / records.max(1) as f64
            );
        }
        println!(
            "grep {label} ({want} matches): sealog grep -c {o:.3} s (index), {s:.3} s (--no-index); rg -c {t:.3} s; ratio rg/sealog {:.2}x (index), {:.2}x (--no-index)",
            t / o,
            t / s
        );
    }
    Ok(())
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    })
}
