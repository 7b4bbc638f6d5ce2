//! `sealog bench journal`: durable append and verify, measured on this disk.
//!
//! Generated records look like application logs (~200 bytes: time, app,
//! host, level, user, trace id, path, status, duration, message). The run
//! validates and appends them with the same code as `sealog ingest`
//! (durable group commit: fdatasync before every checkpoint and again
//! after it), then runs the offline verifier over the result. CPU time
//! comes from /proc/self/stat, so "per core" figures are records per
//! CPU-second actually used.

use std::path::Path;
use std::time::Instant;

use sealog_journal::verify::{verify_dir, Evidence};
use sealog_journal::JournalOptions;
use sealog_store::DataDir;

use crate::{ingest, Failure};

/// A small xorshift generator: deterministic, fast, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

/// Appends `n` generated NDJSON records to `out`.
pub fn generate(n: u64, out: &mut Vec<u8>) {
    generate_from(0, n, out);
}

/// Appends records `start..start + n` of the generated sequence to `out`.
pub fn generate_from(start: u64, n: u64, out: &mut Vec<u8>) {
    use std::io::Write;
    const APPS: [&str; 6] = [
        "payments", "checkout", "auth", "search", "ledger", "gateway",
    ];
    const LEVELS: [&str; 4] = ["info", "info", "warn", "error"];
    const MSGS: [&str; 5] = [
        "request completed",
        "payment authorised",
        "cache miss, fetched from origin",
        "token refreshed for session",
        "upstream responded slowly",
    ];
    const PATHS: [&str; 4] = [
        "/api/v1/orders",
        "/api/v1/users",
        "/api/v2/payments",
        "/health",
    ];
    let mut r = Rng(0x9E37_79B9_7F4A_7C15 ^ start.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let base = 1_795_500_000_000u64; // ms
    for i in start..start + n {
        let ms = base + i / 10;
        let _ = writeln!(
            out,
            r#"{{"time":"{}","app":"{}","host":"web-{:02}","level":"{}","user":"u-{:06}","trace_id":"{:016x}","msg":"{}","path":"{}/{}","status":{},"duration_ms":{}}}"#,
            sealog_event::format_rfc3339_nanos((ms * 1_000_000) as i64),
            r.pick(&APPS),
            r.next() % 32,
            r.pick(&LEVELS),
            r.next() % 1_000_000,
            r.next(),
            r.pick(&MSGS),
            r.pick(&PATHS),
            r.next() % 100_000,
            [200, 200, 200, 201, 404, 500][(r.next() % 6) as usize],
            r.next() % 2000,
        );
    }
}

/// Seconds, on one thread, of the work over a journal's leaves that no
/// implementation of sealing or of verify can skip. Timed by the clock:
/// the process runs nothing else meanwhile, and `/proc/self/stat` counts
/// 10 ms ticks, too coarse for pieces of a few tenths of a second.
pub(crate) struct Floor {
    /// Leaf hashes, one message at a time.
    pub leaf: f64,
    /// The tree's interior nodes over those leaf hashes, added a block's
    /// worth at a time as commits and verify add them.
    pub nodes: f64,
    /// zstd level 1 compression of the blocks (with each block's CRC).
    pub compress: f64,
    /// Decompressing those blocks.
    pub decompress: f64,
}

impl Floor {
    /// What sealing cannot skip: leaf hashes, interior nodes, compression.
    pub fn sealing(&self) -> f64 {
        self.leaf + self.nodes + self.compress
    }

    /// What verify cannot skip: leaf hashes, interior nodes, decompression.
    pub fn verify(&self) -> f64 {
        self.leaf + self.nodes + self.decompress
    }
}

/// Times [`Floor`] over `leaves` (stored lines back to back, line `i`
/// ending at `ends[i]`), in blocks of `counts` records.
///
/// # Errors
/// Block counts that do not add up to the leaves; a block that does not
/// decode to its lines.
pub(crate) fn floor(leaves: &[u8], ends: &[usize], counts: &[u32]) -> Result<Floor, Failure> {
    let total: usize = counts.iter().map(|c| *c as usize).sum();
    if total != ends.len() {
        return Err(format!("blocks hold {total} records, not {}", ends.len()).into());
    }
    let span = |k: usize| (if k == 0 { 0 } else { ends[k - 1] })..ends[k];
    // Written once before timing, so no page is first touched while timed.
    let mut hashes = vec![[0u8; 32]; ends.len()];
    let t = Instant::now();
    for (k, h) in hashes.iter_mut().enumerate() {
        *h = sealog_journal::merkle::leaf_hash(&leaves[span(k)]);
    }
    let leaf = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut frontier = sealog_journal::merkle::Frontier::new();
    let mut at = 0;
    for &c in counts {
        frontier.extend(&hashes[at..at + c as usize], |_, _, _| {});
        at += c as usize;
    }
    std::hint::black_box(frontier.root());
    let nodes = t.elapsed().as_secs_f64();
    let (mut raw, mut blocks, mut compress) = (Vec::new(), Vec::with_capacity(counts.len()), 0.0);
    let mut at = 0;
    for &c in counts {
        let range = at..at + c as usize;
        raw.clear();
        for k in range.clone() {
            raw.extend_from_slice(&leaves[span(k)]);
            raw.push(b'\n');
        }
        let t = Instant::now();
        blocks.push(sealog_journal::block::encode_raw(
            at as u64,
            &raw,
            &hashes[range],
            (0, 0),
            1,
        ));
        compress += t.elapsed().as_secs_f64();
        at += c as usize;
    }
    drop(raw);
    let t = Instant::now();
    let mut lines = 0usize;
    for b in &blocks {
        let d = sealog_journal::block::decode_unchecked(&b.body, b.count)
            .map_err(|e| format!("block at {} does not decode: {e}", b.first_seq))?;
        lines += d.len();
    }
    let decompress = t.elapsed().as_secs_f64();
    if lines != ends.len() {
        return Err(format!("blocks decoded to {lines} lines, not {}", ends.len()).into());
    }
    Ok(Floor {
        leaf,
        nodes,
        compress,
        decompress,
    })
}

/// CPU seconds used by this process so far (user + system).
pub(crate) fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    // utime is field 14, stime 15 (1-based); `rest` starts at field 3.
    (ticks(11) + ticks(12)) / 100.0
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Runs the journal benchmark in `dir` (removed afterwards).
///
/// # Errors
/// Setup, append or verify failures.
pub fn journal(records: u64, batch: usize, dir: &Path, keep: bool) -> Result<(), Failure> {
    if dir.exists() {
        return Err(format!("{} exists; pass an absent --dir", dir.display()).into());
    }
    let result = run(records, batch, dir);
    if !keep {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

fn run(records: u64, batch: usize, dir: &Path) -> Result<(), Failure> {
    let mut dd = DataDir::open(dir, "sealog bench journal")?;
    let bench: sealog_event::RealmName = "bench".parse()?;
    dd.create_realm(&bench)?;
    eprintln!("generating {records} records ...");
    let mut input = Vec::with_capacity(records as usize * 220);
    generate(records, &mut input);
    let raw = input.len() as u64;
    let mut journal = dd.open_journal(&bench, JournalOptions::default())?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    let (t0, c0) = (Instant::now(), cpu_seconds());
    let events = ingest::validate_ndjson(&input, 1)
        .map_err(|b| format!("generated line {} is invalid: {}", b[0].line, b[0].reason))?;
    let validated = t0.elapsed().as_secs_f64();
    let mut commits = 0u64;
    ingest::append_pipelined(&mut journal, &events, batch, &mut |_| commits += 1)?;
    journal.sync()?;
    let (append_s, append_cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    drop(events);
    let disk = dir_bytes(&dd.journal_dir(&bench));

    let key = dd.verifier_key(&bench)?;
    let (t1, c1) = (Instant::now(), cpu_seconds());
    let report = verify_dir(
        &dd.journal_dir(&bench),
        "bench",
        &key,
        &Evidence::default(),
        &|_| {},
    )?;
    let (verify_s, verify_cpu) = (t1.elapsed().as_secs_f64(), cpu_seconds() - c1);
    if !report.ok() || report.committed != records {
        return Err(Failure::verify(format!(
            "verify failed on the benchmark's own data: {:?}",
            report.first_bad()
        )));
    }

    // The limit for recomputing every leaf: a plain SHA-256 pass over the
    // same leaf bytes (0x00 then the stored line, as RFC 9162 hashes a
    // leaf), held in memory so only the hashing is timed, on one core.
    let mut leaves: Vec<u8> = Vec::new();
    let mut ends: Vec<usize> = Vec::with_capacity(records as usize);
    journal.read(0, records, &mut |_, line| {
        leaves.extend_from_slice(line);
        ends.push(leaves.len());
        std::ops::ControlFlow::Continue(())
    })?;
    let leaf_bytes = leaves.len();
    let c2 = cpu_seconds();
    let mut fold = [0u8; 32];
    let mut start = 0;
    for &end in &ends {
        let h = sealog_journal::merkle::leaf_hash(&leaves[start..end]);
        fold[0] ^= h[0];
        start = end;
    }
    let sha_cpu = cpu_seconds() - c2;
    std::hint::black_box(fold);
    // The same leaves through each batch engine this CPU has, in batches
    // of a block's size, as commit and verify hash them.
    let mut engines = Vec::new();
    for engine in sealog_journal::sha256x8::Engine::available() {
        let c = cpu_seconds();
        let mut out = Vec::with_capacity(1024);
        let mut start = 0;
        for chunk in ends.chunks(1024) {
            out.clear();
            let mut s = start;
            let msgs = chunk.iter().map(|&e| {
                let m = &leaves[s..e];
                s = e;
                m
            });
            sealog_journal::sha256x8::hash_all_with(engine, 0, msgs, &mut out);
            fold[1] ^= out[0][1];
            start = *chunk.last().expect("chunks are not empty");
        }
        engines.push((engine, cpu_seconds() - c));
    }
    std::hint::black_box(fold);
    // SHA-256 blocks per leaf (0x00, the line, 0x80, the 8-byte length),
    // against the tree's one interior node per leaf (65 bytes: 2 blocks).
    let mut blocks = 0u64;
    let mut start = 0;
    for &end in &ends {
        blocks += (end - start + 1 + 9).div_ceil(64) as u64;
        start = end;
    }
    let leaf_blocks = blocks as f64 / records as f64;
    let counts: Vec<u32> = journal.blocks().iter().map(|b| b.count).collect();
    let floor = floor(&leaves, &ends, &counts)?;
    drop(leaves);

    let mb = raw as f64 / 1e6;
    println!("sealog bench journal: {records} records, {:.1} bytes/record raw NDJSON, {commits} durable commits of up to {batch}, {cores} cores", raw as f64 / records as f64);
    println!(
        "append (validate + seal + fsync x2 per commit): {:.2} s, {:.0} records/s, {:.1} MB/s raw; validation alone {:.2} s; CPU {:.2} s ({:.0}% of {cores} cores)",
        append_s,
        records as f64 / append_s,
        mb / append_s,
        validated,
        append_cpu,
        100.0 * append_cpu / append_s / cores as f64,
    );
    println!(
        "disk: {} bytes = {:.1} bytes/record, {:.1}% of raw NDJSON (segments, checkpoints and tree hashes included)",
        disk,
        disk as f64 / records as f64,
        100.0 * disk as f64 / raw as f64
    );
    println!(
        "verify: {:.2} s, {:.0} records/s wall, CPU {:.2} s = {:.0} records/s per core",
        verify_s,
        records as f64 / verify_s,
        verify_cpu,
        records as f64 / verify_cpu.max(1e-9)
    );
    println!(
        "plain SHA-256 over the same leaves ({:.1} bytes/leaf): CPU {:.2} s = {:.0} records/s on one core; verify per core is {:.2}x of it",
        leaf_bytes as f64 / records as f64,
        sha_cpu,
        records as f64 / sha_cpu.max(1e-9),
        (records as f64 / verify_cpu.max(1e-9)) / (records as f64 / sha_cpu.max(1e-9)),
    );
    println!(
        "leaf hashing by engine, same leaves, one core: {}; this CPU uses {}",
        engines
            .iter()
            .map(|(e, cpu)| format!("{} {:.2} s", e.name(), cpu))
            .collect::<Vec<_>>()
            .join(", "),
        sealog_journal::sha256x8::Engine::best().name()
    );
    println!(
        "ceiling: a leaf is {:.2} SHA-256 blocks and the tree adds one interior node (2 blocks) per leaf, so recomputing leaves and tree with nothing else is {:.2}x of the plain pass",
        leaf_blocks,
        leaf_blocks / (leaf_blocks + 2.0)
    );
    let share = |s: f64| records as f64 / s.max(1e-9);
    println!(
        "what verify cannot skip, one thread, the stored blocks: leaf hashes {:.3} s, the tree's interior nodes {:.3} s, zstd decompression {:.3} s; with nothing else at all verify would be {:.2}x of leaf hashing alone ({:.0} records/s per core)",
        floor.leaf,
        floor.nodes,
        floor.decompress,
        floor.leaf / floor.verify().max(1e-9),
        share(floor.verify()),
    );
    println!(
        "what sealing cannot skip, one thread, the stored blocks: leaf hashes {:.3} s + interior nodes {:.3} s + zstd level 1 compression {:.3} s = {:.0} records/s per core",
        floor.leaf,
        floor.nodes,
        floor.compress,
        share(floor.sealing()),
    );
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "targets: append >= 1,000,000 records/s: {}; verify >= 2,000,000 records/s per core: {}; disk <= 40% of raw: {}",
        verdict(records as f64 / append_s >= 1e6),
        verdict(records as f64 / verify_cpu.max(1e-9) >= 2e6),
        verdict(disk as f64 <= 0.4 * raw as f64),
    );
    Ok(())
}
