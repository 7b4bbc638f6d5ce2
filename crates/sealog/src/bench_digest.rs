//! `sealog bench digest`: VPC flow-log digests, sealog against `awk | sort`
//! doing the same aggregation over the same lines, in the same run.
//!
//! Generates `--records` flow lines (160 hosts, five service ports, start
//! times over 24 hours: about 41,000 groups; see [`line`]), writes them to `flows.log` and appends them as
//! `flow` records to a realm's journal. Then, timed: sealog's digest from
//! the journal (the server's own [`sealog_server::digest::compute`]: blocks
//! decoded and aggregated in parallel), and `LC_ALL=C awk ... flows.log |
//! LC_ALL=C sort`. Both outputs must be byte for byte the same digest.

use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use sealog_codec::vpcflow::{parse_line, Line};
use sealog_journal::{EventRef, JournalOptions, LogStore};
use sealog_store::DataDir;

use crate::bench::cpu_seconds;
use crate::Failure;

const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

/// The digest as awk computes it (sort does the ordering).
const AWK: &str = r#"$1 == "2" && tolower($14) == "ok" && $11 >= S && $11 < T {
  sp = $6 + 0; dp = $7 + 0; if (sp < dp) dp = 0; else sp = 0
  k = $1 " " $2 " " $3 " " $4 " " $5 " " sp " " dp " " $8 SUBSEP $13 " " $14
  p[k] += $9; b[k] += $10
  if (!(k in s) || $11 + 0 < s[k]) s[k] = $11 + 0
  if (!(k in e) || $12 + 0 > e[k]) e[k] = $12 + 0
}
END { for (k in p) { split(k, kk, SUBSEP); printf "%s %.0f %.0f %.0f %.0f %s\n", kk[1], p[k], b[k], s[k], e[k], kk[2] } }"#;

/// One flow line. As in a VPC: 128 clients (10.0.0.0/21) talk to 32
/// servers (10.1.0.0/21) on five service ports, in both directions; the
/// logging interface belongs to the host whose traffic it is, the protocol
/// follows the port (UDP for 53), and whether a flow is rejected follows
/// the security rules for that client, server and port. Client ports are
/// ephemeral (32768-60767), which the digest folds away.
fn line(i: u64, out: &mut Vec<u8>) {
    let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5851_f42d_4c95_7f2d;
    x ^= x >> 29;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 32;
    let start = T0 + (x % 86_400) as i64;
    let client = (x >> 8) % 128;
    let server = (x >> 16) % 32;
    let port = [22u64, 80, 443, 5432, 53][(x >> 20) as usize % 5];
    let ephemeral = 32_768 + (x >> 24) % 28_000;
    let (c_ip, s_ip) = (
        format!("10.0.{}.{}", client / 16, client % 16),
        format!("10.1.{}.{}", server / 8, server % 8),
    );
    let proto = if port == 53 { 17 } else { 6 };
    let rejected = (client * 7 + server * 3 + port).is_multiple_of(11);
    // Outbound from the client's interface, or the server's answer logged
    // on the server's interface.
    let (iface, src, dst, sp, dp) = if x & 1 == 0 {
        (format!("eni-c{client:03x}"), &c_ip, &s_ip, ephemeral, port)
    } else {
        (format!("eni-s{server:03x}"), &s_ip, &c_ip, port, ephemeral)
    };
    let _ = writeln!(
        out,
        "2 123456789012 {iface} {src} {dst} {sp} {dp} {proto} {} {} {start} {} {} OK",
        1 + (x >> 52) % 60,
        40 + (x >> 30) % 60_000,
        start + ((x >> 36) % 90) as i64,
        if rejected { "REJECT" } else { "ACCEPT" },
    );
}

/// Runs the benchmark in `dir` (which must not exist).
///
/// # Errors
/// Setup failures, awk missing, or the two digests differing.
pub fn digest(records: u64, dir: &Path, keep: bool) -> Result<(), Failure> {
    if dir.exists() {
        return Err(format!("{} exists; pass an absent --dir", dir.display()).into());
    }
    let result = run(records, dir);
    if !keep {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

fn run(records: u64, dir: &Path) -> Result<(), Failure> {
    let mut dd = DataDir::open(dir, "sealog bench digest")?;
    let name: sealog_event::RealmName = "flows".parse()?;
    dd.create_realm(&name)?;
    let mut journal = dd.open_journal(&name, JournalOptions::default())?;
    let text_path = dir.join("flows.log");
    let mut text = std::io::BufWriter::new(std::fs::File::create(&text_path)?);
    eprintln!("generating {records} flow lines and appending them as records ...");
    let t = Instant::now();
    let chunk = 1_000_000u64;
    let mut buf = Vec::new();
    for from in (0..records).step_by(chunk as usize) {
        buf.clear();
        for i in from..(from + chunk).min(records) {
            line(i, &mut buf);
        }
        text.write_all(&buf)?;
        let mut recs = Vec::with_capacity(chunk as usize);
        for l in buf.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let l = std::str::from_utf8(l).map_err(|e| e.to_string())?;
            match parse_line(l)? {
                Line::Flow(r, t) => recs.push((r, t)),
                Line::Skip(_) => {}
            }
        }
        let events: Vec<EventRef<'_>> = recs
            .iter()
            .map(|(b, t)| EventRef {
                bytes: b,
                time_ns: Some(*t),
            })
            .collect();
        crate::ingest::append_pipelined(&mut journal, &events, 65_536, &mut |_| {})?;
    }
    // Both inputs on disk before anything is timed, so neither side
    // competes with the kernel writing the other's pages back.
    text.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    journal.sync()?;
    eprintln!("setup took {:.1} s", t.elapsed().as_secs_f64());
    let shared: sealog_server::realm::SharedLog =
        Arc::new(RwLock::new(Box::new(journal) as Box<dyn LogStore>));
    let w =
        sealog_server::digest::window(Some("2026-01-01T00:00:00Z"), Some("2026-01-03T00:00:00Z"))?;

    let (t1, c1) = (Instant::now(), cpu_seconds());
    let (ours, flows, size, _) = sealog_server::digest::compute(&shared, &w)?;
    let (ours_s, ours_cpu) = (t1.elapsed().as_secs_f64(), cpu_seconds() - c1);
    if flows != records || size != records {
        return Err(Failure::verify(format!(
            "sealog digested {flows} flows of {size} records; expected {records}"
        )));
    }

    let out_path = dir.join("awk-digest.txt");
    let script = format!(
        "LC_ALL=C awk -v S={} -v T={} '{AWK}' '{}' | LC_ALL=C sort > '{}'",
        w.start,
        w.stop,
        text_path.display(),
        out_path.display()
    );
    let t2 = Instant::now();
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .status()
        .map_err(|e| format!("run sh: {e}"))?;
    let peer_s = t2.elapsed().as_secs_f64();
    if !st.success() {
        return Err(format!("awk | sort failed: {st}").into());
    }
    let theirs = std::fs::read(&out_path)?;
    let same = theirs == ours;
    let awk = std::process::Command::new("sh")
        .arg("-c")
        .arg("readlink -f $(command -v awk)")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let groups = ours.iter().filter(|b| **b == b'\n').count();
    println!(
        "sealog bench digest: {records} flow records, {groups} groups in the digest, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "sealog (journal -> digest): {ours_s:.2} s, {:.0} records/s, CPU {ours_cpu:.2} s ({:.2} us/record)",
        records as f64 / ours_s,
        ours_cpu * 1e6 / records as f64
    );
    println!(
        "awk | sort ({awk}) over the same lines: {peer_s:.2} s, {:.0} records/s",
        records as f64 / peer_s
    );
    println!(
        "ratio sealog/awk: {:.2}x; outputs identical: {same}",
        peer_s / ours_s
    );
    if !same {
        return Err(Failure::verify(
            "the two digests differ; see awk-digest.txt (kept with --keep)".to_string(),
        ));
    }
    Ok(())
}
