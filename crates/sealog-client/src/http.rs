//! The HTTP writer: batches entries to `POST /v1/ingest` from a background
//! thread, keeps what it cannot deliver in a fallback file, and replays
//! that file once the server answers again.

use std::io::{BufRead as _, Write as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sealog_journal::checkpoint::VerifierKey;
use sealog_journal::merkle::{leaf_hash, root_from_range, verify_consistency, Hash};

use crate::Writer;

/// True when `line` is exactly what sealog stores for the entry `body`
/// (the sent line without its `{`): `{"realm":…,"seq":…,"received_at":"…",`
/// and then the entry byte for byte. Nothing else may be spliced in.
fn stored_as_sent(line: &[u8], realm: &str, seq: u64, body: &[u8]) -> bool {
    let head = format!(r#"{{"realm":"{realm}","seq":{seq},"received_at":""#);
    let Some(rest) = line.strip_prefix(head.as_bytes()) else {
        return false;
    };
    let Some(end) = rest.iter().position(|b| *b == b'"') else {
        return false;
    };
    let when = std::str::from_utf8(&rest[..end]).ok();
    when.and_then(sealog_event::parse_rfc3339).is_some()
        && rest[end..].strip_prefix(b"\",") == Some(body)
}

/// The end of the chunk starting at `at`: at most `records` entries and,
/// past the first, at most `bytes` bytes.
fn chunk_end(lines: &[Vec<u8>], at: usize, records: usize, bytes: usize) -> usize {
    let mut end = at;
    let mut size = 0;
    while end < lines.len() && end - at < records.max(1) {
        size += lines[end].len();
        if end > at && size > bytes {
            break;
        }
        end += 1;
    }
    end
}

fn decode_hashes(p: &serde_json::Value) -> Result<Vec<Hash>, String> {
    p.get("hashes")
        .and_then(|h| h.as_array())
        .ok_or_else(|| format!("a proof without hashes: {p}"))?
        .iter()
        .map(|h| {
            let b = B64
                .decode(h.as_str().unwrap_or_default())
                .map_err(|e| format!("proof hash: {e}"))?;
            Hash::try_from(b.as_slice()).map_err(|_| "proof hash is not 32 bytes".to_string())
        })
        .collect()
}

/// How an [`HttpWriter`] sends.
///
/// ```
/// let cfg = sealog_client::HttpConfig::new("http://127.0.0.1:7700", "slw_token", "/tmp/app.fallback.ndjson");
/// assert_eq!(cfg.batch_records, 1000);
/// ```
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The server, e.g. `https://logs.example:7700`.
    pub url: String,
    /// The realm's write token.
    pub write_token: String,
    /// Entries that could not be delivered are appended here, and sent
    /// again once the server answers.
    pub fallback: PathBuf,
    /// Most entries in one request.
    pub batch_records: usize,
    /// Most bytes in one request.
    pub batch_bytes: usize,
    /// How long an entry may wait for others to fill its batch.
    pub linger: Duration,
    /// Entries queued in memory; past this, entries go to the fallback
    /// file (the application is never blocked).
    pub queue: usize,
    /// How long a batch is retried before it goes to the fallback file.
    pub retry_for: Duration,
    /// How long one request may take.
    pub timeout: Duration,
    /// The realm's query token, if the application has it: after a request
    /// whose answer was lost (a timeout, a connection cut during a server
    /// restart), the writer asks whether the batch was committed before
    /// sending it again, so no entry is stored twice. Without it such a
    /// batch is sent again.
    pub query_token: Option<String>,
    /// The realm's verifier key (`sealog realm key`, or `public_key` when
    /// the realm was created). With it and the query token, every receipt
    /// is checked: the checkpoint's signature, the stored records against
    /// what was sent and their inclusion in the checkpoint (one range
    /// proof), and consistency with the previous checkpoint (one proof).
    /// A server that forks or rewrites its log shows up in
    /// [`HttpWriter::violations`].
    pub verifier_key: Option<String>,
}

impl HttpConfig {
    /// Defaults: batches of up to 1,000 entries or 4 MiB, 50 ms linger, a
    /// queue of 100,000, retries for 10 s, requests of at most 30 s.
    ///
    /// ```
    /// let cfg = sealog_client::HttpConfig::new("http://127.0.0.1:7700", "t", "f.ndjson");
    /// assert_eq!(cfg.queue, 100_000);
    /// ```
    pub fn new(
        url: impl Into<String>,
        write_token: impl Into<String>,
        fallback: impl Into<PathBuf>,
    ) -> HttpConfig {
        HttpConfig {
            url: url.into().trim_end_matches('/').to_string(),
            write_token: write_token.into(),
            fallback: fallback.into(),
            batch_records: 1000,
            batch_bytes: 4 << 20,
            linger: Duration::from_millis(50),
            queue: 100_000,
            retry_for: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            query_token: None,
            verifier_key: None,
        }
    }
}

/// What an [`HttpWriter`] has done so far.
///
/// ```
/// let s = sealog_client::HttpStats::default();
/// assert_eq!((s.delivered, s.violations), (0, 0));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpStats {
    /// Entries the server acknowledged (durable).
    pub delivered: u64,
    /// Entries written to the fallback file.
    pub to_fallback: u64,
    /// Entries replayed from the fallback file and acknowledged.
    pub replayed: u64,
    /// Entries the server refused as invalid (never retried; on stderr).
    pub refused: u64,
    /// Receipts received.
    pub receipts: u64,
    /// Requests that failed or went unanswered (each retried, checked or
    /// kept).
    pub failures: u64,
    /// Batches whose answer was lost but that the server had committed
    /// (found by id, not sent again).
    pub found_committed: u64,
    /// Receipts checked against the realm key, with their proofs.
    pub verified: u64,
    /// Receipts that failed a check (see [`HttpWriter::violations`]).
    pub violations: u64,
    /// Receipts that could not be checked (the proofs or records could
    /// not be fetched: network, token, overload); on stderr.
    pub unverified: u64,
}

enum Msg {
    Line(Vec<u8>),
    Flush(SyncSender<()>),
}

/// Sends entries to a sealog server in batches, from a background thread.
/// A 200 means the batch is durable; a batch that fails (server down,
/// 503, timeout) is retried with backoff for `retry_for`, then appended to
/// the fallback file, which is replayed (and emptied) once the server
/// answers again. Closing or dropping the writer sends what is queued.
///
/// ```no_run
/// use std::sync::Arc;
/// use sealog_client::{HttpConfig, HttpWriter, Logger, LoggerContext, Priority};
/// let w = Arc::new(HttpWriter::start(HttpConfig::new(
///     "http://127.0.0.1:7700", "slw_...", "/var/tmp/shop.fallback.ndjson")).unwrap());
/// let log = Logger::new(&LoggerContext::new(Priority::Info), "shop", w.clone());
/// log.log("started");
/// w.flush();
/// ```
#[derive(Debug)]
pub struct HttpWriter {
    tx: Mutex<Option<SyncSender<Msg>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    stats: Arc<Mutex<HttpStats>>,
    fallback: Arc<Mutex<FallbackFile>>,
    violations: Arc<Mutex<Vec<String>>>,
    /// Entries went to the fallback file because the queue was full: the
    /// sender replays them once the queue drains.
    spilled: Arc<AtomicBool>,
}

#[derive(Debug)]
struct FallbackFile {
    path: PathBuf,
}

impl FallbackFile {
    fn append(&self, lines: &[Vec<u8>]) -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let mut buf = Vec::new();
        for l in lines {
            buf.extend_from_slice(l);
            if !l.ends_with(b"\n") {
                buf.push(b'\n');
            }
        }
        f.write_all(&buf)?;
        f.sync_data()
    }

    /// The file a replay works from: entries moved out of the fallback
    /// file (under its lock) so appends made meanwhile are never lost.
    fn replaying(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".replaying");
        PathBuf::from(p)
    }

    /// The entries to replay, oldest first: a replay file left by an
    /// earlier attempt, else the fallback file moved aside. Called with
    /// the lock held, so no append can fall between read and move.
    fn take(&self) -> std::io::Result<Vec<Vec<u8>>> {
        let replaying = self.replaying();
        if !replaying.exists() {
            match std::fs::rename(&self.path, &replaying) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e),
            }
        }
        let f = std::fs::File::open(&replaying)?;
        let mut out = Vec::new();
        for line in std::io::BufReader::new(f).split(b'\n') {
            let line = line?;
            if !line.iter().all(u8::is_ascii_whitespace) {
                let mut l = line;
                l.push(b'\n');
                out.push(l);
            }
        }
        Ok(out)
    }

    /// What is left of a replay after a failure: written over the replay
    /// file (through a temporary file and a rename), or the file removed
    /// when nothing is left.
    fn keep_replaying(&self, rest: &[Vec<u8>]) -> std::io::Result<()> {
        let replaying = self.replaying();
        if rest.is_empty() {
            return match std::fs::remove_file(&replaying) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        let mut tmp = replaying.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&rest.concat())?;
        f.sync_data()?;
        std::fs::rename(&tmp, &replaying)
    }
}

impl HttpWriter {
    /// Starts the background sender.
    ///
    /// # Errors
    /// The HTTP client or its runtime cannot be built.
    ///
    /// ```no_run
    /// let w = sealog_client::HttpWriter::start(sealog_client::HttpConfig::new(
    ///     "http://127.0.0.1:7700", "slw_...", "fallback.ndjson")).unwrap();
    /// ```
    pub fn start(cfg: HttpConfig) -> std::io::Result<HttpWriter> {
        let key = match &cfg.verifier_key {
            Some(k) => Some(k.parse::<VerifierKey>().map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("verifier key: {e}"),
                )
            })?),
            None => None,
        };
        if key.is_some() && cfg.query_token.is_none() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "checking receipts needs the realm's query token too",
            ));
        }
        let violations = Arc::new(Mutex::new(Vec::new()));
        let spilled = Arc::new(AtomicBool::new(false));
        let (tx, rx) = sync_channel(cfg.queue.max(1));
        let stats = Arc::new(Mutex::new(HttpStats::default()));
        let fallback = Arc::new(Mutex::new(FallbackFile {
            path: cfg.fallback.clone(),
        }));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .build()
            .map_err(std::io::Error::other)?;
        let sender = Sender {
            cfg,
            client,
            stats: stats.clone(),
            fallback: fallback.clone(),
            degraded: false,
            key,
            seen: None,
            violations: violations.clone(),
            spilled: spilled.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("sealog-client-http".into())
            .spawn(move || rt.block_on(sender.run(rx)))?;
        Ok(HttpWriter {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            stats,
            fallback,
            violations,
            spilled,
        })
    }

    /// Waits until everything written so far was acknowledged or put in
    /// the fallback file.
    ///
    /// ```no_run
    /// # let w = sealog_client::HttpWriter::start(sealog_client::HttpConfig::new("http://127.0.0.1:7700", "t", "f")).unwrap();
    /// w.flush();
    /// ```
    pub fn flush(&self) {
        let (done_tx, done_rx) = sync_channel(1);
        // A clone of the sender, so writers are not held up while this
        // waits for room in the queue.
        let tx = self.tx.lock().ok().and_then(|g| g.as_ref().cloned());
        let sent = tx.is_some_and(|tx| tx.send(Msg::Flush(done_tx)).is_ok());
        if sent {
            let _ = done_rx.recv();
        }
    }

    /// Sends what is queued and stops the background thread.
    ///
    /// ```no_run
    /// # let w = sealog_client::HttpWriter::start(sealog_client::HttpConfig::new("http://127.0.0.1:7700", "t", "f")).unwrap();
    /// w.close();
    /// ```
    pub fn close(&self) {
        if let Ok(mut g) = self.tx.lock() {
            g.take();
        }
        if let Some(t) = self.thread.lock().ok().and_then(|mut g| g.take()) {
            let _ = t.join();
        }
    }

    /// What the writer has done so far.
    ///
    /// ```no_run
    /// # let w = sealog_client::HttpWriter::start(sealog_client::HttpConfig::new("http://127.0.0.1:7700", "t", "f")).unwrap();
    /// println!("{:?}", w.stats());
    /// ```
    pub fn stats(&self) -> HttpStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// What the receipt checks found wrong, oldest first: each names the
    /// receipt and the check it failed. Empty while the server's log is
    /// append-only and agrees with what was sent.
    ///
    /// ```no_run
    /// # let w = sealog_client::HttpWriter::start(sealog_client::HttpConfig::new("http://127.0.0.1:7700", "t", "f")).unwrap();
    /// assert!(w.violations().is_empty());
    /// ```
    pub fn violations(&self) -> Vec<String> {
        self.violations
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
    }
}

impl Drop for HttpWriter {
    fn drop(&mut self) {
        self.close();
    }
}

impl Writer for HttpWriter {
    fn write(&self, line: &[u8]) {
        let msg = Msg::Line(line.to_vec());
        let r = match self.tx.lock() {
            Ok(g) => match g.as_ref() {
                Some(tx) => tx.try_send(msg),
                None => Err(TrySendError::Disconnected(msg)),
            },
            Err(_) => return,
        };
        // A full queue (or a closed writer) spills to the fallback file:
        // nothing is dropped and the application is not blocked.
        if let Err(TrySendError::Full(Msg::Line(l)) | TrySendError::Disconnected(Msg::Line(l))) = r
        {
            let ok = self
                .fallback
                .lock()
                .map(|f| f.append(&[l]).is_ok())
                .unwrap_or(false);
            if ok {
                self.spilled.store(true, Ordering::Relaxed);
                if let Ok(mut s) = self.stats.lock() {
                    s.to_fallback += 1;
                }
            } else {
                eprintln!(
                    "sealog-client: an entry was lost: queue full and fallback file not writable"
                );
            }
        }
    }
}

/// The background side.
struct Sender {
    cfg: HttpConfig,
    client: reqwest::Client,
    stats: Arc<Mutex<HttpStats>>,
    fallback: Arc<Mutex<FallbackFile>>,
    /// The last delivery failed: batches go to the fallback file until a
    /// replay succeeds.
    degraded: bool,
    /// Checks receipts when set.
    key: Option<VerifierKey>,
    /// The newest checkpoint verified: (size, root).
    seen: Option<(u64, Hash)>,
    violations: Arc<Mutex<Vec<String>>>,
    spilled: Arc<AtomicBool>,
}

/// Why a receipt did not pass.
enum Check {
    /// The server's answer contradicts what was sent or seen before.
    Violation(String),
    /// The evidence could not be fetched.
    Unverifiable(String),
}

/// A contradiction found while checking (the default for a plain message).
impl From<String> for Check {
    fn from(why: String) -> Check {
        Check::Violation(why)
    }
}

/// What [`Sender::send`] did with a batch.
enum Sent {
    /// Sent; this many entries were refused as invalid or too large.
    Delivered(usize),
    /// These entries (in order) were not sent.
    Failed(Vec<Vec<u8>>),
}

enum Outcome {
    Delivered,
    /// 400: these lines (1-based) are invalid; nothing was committed.
    Invalid(Vec<usize>),
    /// 413: the batch is larger than the server takes.
    TooLarge,
    /// Not received (no connection, or refused before any commit: 503).
    Failed,
    /// Sent, but no answer came: it may have been committed.
    Unknown,
}

impl Sender {
    async fn run(mut self, rx: Receiver<Msg>) {
        // Entries left from an earlier run go first.
        self.replay().await;
        let mut batch: Vec<Vec<u8>> = Vec::new();
        let mut bytes = 0usize;
        let mut waiting: Vec<SyncSender<()>> = Vec::new();
        let mut first_at: Option<Instant> = None;
        loop {
            let timeout = match first_at {
                Some(t) => self.cfg.linger.saturating_sub(t.elapsed()),
                None => Duration::from_millis(500),
            };
            // The runtime is this thread's alone: waiting here blocks nothing else.
            let got = rx.recv_timeout(timeout);
            let closed = match got {
                Ok(Msg::Line(l)) => {
                    bytes += l.len();
                    batch.push(l);
                    first_at.get_or_insert_with(Instant::now);
                    false
                }
                Ok(Msg::Flush(done)) => {
                    waiting.push(done);
                    false
                }
                Err(RecvTimeoutError::Timeout) => false,
                Err(RecvTimeoutError::Disconnected) => true,
            };
            let full = batch.len() >= self.cfg.batch_records || bytes >= self.cfg.batch_bytes;
            let due = first_at.is_some_and(|t| t.elapsed() >= self.cfg.linger);
            if !batch.is_empty() && (full || due || closed || !waiting.is_empty()) {
                let b = std::mem::take(&mut batch);
                bytes = 0;
                first_at = None;
                self.deliver(b).await;
            } else if batch.is_empty()
                && (self.degraded || self.spilled.swap(false, Ordering::Relaxed))
            {
                self.replay().await;
            }
            if batch.is_empty()
                && !waiting.is_empty()
                && self.spilled.swap(false, Ordering::Relaxed)
            {
                // A flush covers what spilled to the file too.
                self.replay().await;
            }
            if batch.is_empty() {
                for w in waiting.drain(..) {
                    let _ = w.send(());
                }
            }
            if closed && batch.is_empty() {
                return;
            }
        }
    }

    /// Sends a batch, retrying for `retry_for`; what fails goes to the
    /// fallback file.
    async fn deliver(&mut self, batch: Vec<Vec<u8>>) {
        if self.degraded || self.spilled.swap(false, Ordering::Relaxed) {
            // Keep order: the fallback file goes first.
            self.replay().await;
        }
        let mut pending = batch;
        if !self.degraded {
            let deadline = Instant::now() + self.cfg.retry_for;
            let mut wait = Duration::from_millis(50);
            loop {
                match self.send(&pending).await {
                    Sent::Delivered(refused) => {
                        let n = pending.len();
                        self.count(|s| {
                            s.delivered += (n - refused) as u64;
                            s.refused += refused as u64;
                        });
                        return;
                    }
                    Sent::Failed(rest) if Instant::now() + wait < deadline => {
                        let sent = pending.len() - rest.len();
                        self.count(|s| s.delivered += sent as u64);
                        pending = rest;
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(2));
                    }
                    Sent::Failed(rest) => {
                        let sent = pending.len() - rest.len();
                        self.count(|s| s.delivered += sent as u64);
                        pending = rest;
                        break;
                    }
                }
            }
            self.degraded = true;
        }
        let ok = self
            .fallback
            .lock()
            .map(|f| f.append(&pending).is_ok())
            .unwrap_or(false);
        if ok {
            self.count(|s| s.to_fallback += pending.len() as u64);
        } else {
            eprintln!(
                "sealog-client: {} entries lost: the server is unreachable and {} is not writable",
                pending.len(),
                self.cfg.fallback.display()
            );
        }
    }

    /// Sends the fallback file's entries; on success the file is removed
    /// and the writer is no longer degraded. Entries spilled meanwhile
    /// (the queue was full) are picked up by the next round.
    async fn replay(&mut self) {
        loop {
            let lines = match self.fallback.lock().map(|f| f.take()) {
                Ok(Ok(l)) => l,
                Ok(Err(e)) => {
                    eprintln!("sealog-client: cannot read the fallback file: {e}");
                    return;
                }
                Err(_) => return,
            };
            if lines.is_empty() {
                if let Ok(f) = self.fallback.lock() {
                    let _ = f.keep_replaying(&[]);
                }
                self.degraded = false;
                return;
            }
            let mut at = 0;
            while at < lines.len() {
                let end = chunk_end(&lines, at, self.cfg.batch_records, self.cfg.batch_bytes);
                let chunk = &lines[at..end];
                match self.send(chunk).await {
                    Sent::Delivered(refused) => self.count(|s| {
                        s.replayed += (chunk.len() - refused) as u64;
                        s.refused += refused as u64;
                    }),
                    Sent::Failed(mut rest) => {
                        // Keep what is left, in order, before anything
                        // spilled since; what was sent is not sent again.
                        rest.extend_from_slice(&lines[end..]);
                        if let Ok(f) = self.fallback.lock() {
                            let _ = f.keep_replaying(&rest);
                        }
                        self.degraded = true;
                        return;
                    }
                }
                at = end;
            }
            if let Ok(f) = self.fallback.lock() {
                let _ = f.keep_replaying(&[]);
            }
        }
    }

    /// Posts a batch, dropping only the lines the server names as invalid
    /// and splitting a batch it finds too large; `Delivered(n)` with the
    /// number of entries refused, or `Failed` to keep it for later.
    async fn send(&mut self, batch: &[Vec<u8>]) -> Sent {
        let mut todo: Vec<Vec<Vec<u8>>> = vec![batch.to_vec()];
        let mut refused = 0;
        while let Some(b) = todo.pop() {
            if b.is_empty() {
                continue;
            }
            match self.post(&b).await {
                Outcome::Delivered => {}
                Outcome::Unknown if self.committed(&b).await == Some(true) => {
                    self.count(|s| s.found_committed += 1);
                }
                Outcome::Failed | Outcome::Unknown => {
                    // What is not sent yet, in order.
                    let mut rest = b;
                    for t in todo.into_iter().rev() {
                        rest.extend(t);
                    }
                    if refused > 0 {
                        self.count(|s| s.refused += refused as u64);
                    }
                    return Sent::Failed(rest);
                }
                Outcome::TooLarge if b.len() > 1 => {
                    let half = b.len() / 2;
                    todo.push(b[half..].to_vec());
                    todo.push(b[..half].to_vec());
                }
                Outcome::TooLarge => {
                    eprintln!("sealog-client: an entry larger than the server takes was dropped");
                    refused += 1;
                }
                Outcome::Invalid(bad) => {
                    let kept: Vec<Vec<u8>> = b
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| !bad.contains(&(i + 1)))
                        .map(|(_, l)| l.clone())
                        .collect();
                    let dropped = b.len() - kept.len();
                    if dropped == 0 {
                        // The server named no line it could match: the
                        // whole batch is refused.
                        refused += b.len();
                        continue;
                    }
                    refused += dropped;
                    todo.push(kept);
                }
            }
        }
        Sent::Delivered(refused)
    }

    fn count(&self, f: impl FnOnce(&mut HttpStats)) {
        if let Ok(mut s) = self.stats.lock() {
            f(&mut s);
        }
    }

    async fn post(&mut self, batch: &[Vec<u8>]) -> Outcome {
        let body: Vec<u8> = batch.concat();
        let r = self
            .client
            .post(format!("{}/v1/ingest", self.cfg.url))
            .bearer_auth(&self.cfg.write_token)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await;
        let outcome = match r {
            Ok(resp) if resp.status().is_success() => {
                self.count(|s| s.receipts += 1);
                if self.key.is_some() {
                    let receipt = resp.json::<serde_json::Value>().await;
                    let r = match receipt {
                        Ok(r) => self.check(&r, batch).await,
                        Err(e) => Err(Check::Violation(format!("the receipt is not JSON: {e}"))),
                    };
                    match r {
                        Ok(()) => self.count(|s| s.verified += 1),
                        Err(Check::Violation(why)) => self.violation(why),
                        Err(Check::Unverifiable(why)) => {
                            eprintln!("sealog-client: a receipt could not be checked: {why}");
                            self.count(|s| s.unverified += 1);
                        }
                    }
                }
                Outcome::Delivered
            }
            Ok(resp) if resp.status().as_u16() == 413 => Outcome::TooLarge,
            Ok(resp) if resp.status().as_u16() == 400 => {
                let text = resp.text().await.unwrap_or_default();
                eprintln!(
                    "sealog-client: the server refused entries of a batch of {}: {text}",
                    batch.len()
                );
                let bad = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| {
                        v.get("lines").and_then(|l| l.as_array()).map(|l| {
                            l.iter()
                                .filter_map(|x| x.get("line").and_then(|n| n.as_u64()))
                                .map(|n| n as usize)
                                .collect::<Vec<_>>()
                        })
                    })
                    .unwrap_or_default();
                Outcome::Invalid(bad)
            }
            Ok(resp) if resp.status().as_u16() == 503 || resp.status().as_u16() == 507 => {
                Outcome::Failed
            }
            Ok(_) => Outcome::Unknown,
            Err(e) if e.is_connect() => Outcome::Failed,
            Err(_) => Outcome::Unknown,
        };
        if matches!(outcome, Outcome::Failed | Outcome::Unknown) {
            self.count(|s| s.failures += 1);
        }
        outcome
    }

    fn violation(&self, why: String) {
        eprintln!("sealog-client: RECEIPT CHECK FAILED: {why}");
        self.count(|s| s.violations += 1);
        if let Ok(mut v) = self.violations.lock() {
            v.push(why);
        }
    }

    async fn get_json(&self, path: &str) -> Result<serde_json::Value, Check> {
        let token = self.cfg.query_token.as_deref().unwrap_or_default();
        let r = self
            .client
            .get(format!("{}{path}", self.cfg.url))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| Check::Unverifiable(format!("GET {path}: {e}")))?;
        if !r.status().is_success() {
            return Err(Check::Unverifiable(format!("GET {path}: {}", r.status())));
        }
        r.json()
            .await
            .map_err(|e| Check::Unverifiable(format!("GET {path}: {e}")))
    }

    /// Checks one receipt for `batch`: signature, stored content,
    /// inclusion and consistency with the last checkpoint seen.
    async fn check(&mut self, receipt: &serde_json::Value, batch: &[Vec<u8>]) -> Result<(), Check> {
        let Some(key) = &self.key else {
            return Ok(());
        };
        let n = |k: &str| receipt.get(k).and_then(serde_json::Value::as_u64);
        let (Some(first), Some(last), Some(count)) = (n("first_seq"), n("last_seq"), n("count"))
        else {
            return Err(Check::Violation(format!(
                "the receipt lacks its seqs: {receipt}"
            )));
        };
        let note = receipt
            .get("checkpoint")
            .and_then(|c| c.as_str())
            .unwrap_or("");
        let cp = key.verify(note).map_err(|e| {
            Check::Violation(format!(
                "receipt for seqs {first}..={last}: checkpoint signature: {e}"
            ))
        })?;
        let realm = receipt
            .get("realm")
            .and_then(|r| r.as_str())
            .unwrap_or("")
            .to_string();
        if cp.origin != sealog_journal::checkpoint::origin_for(&realm) {
            return Err(Check::Violation(format!(
                "receipt for realm {realm:?} carries a checkpoint of {:?}",
                cp.origin
            )));
        }
        if count != batch.len() as u64 || last + 1 != first + count || cp.size <= last {
            return Err(Check::Violation(format!(
                "receipt for seqs {first}..={last} (count {count}, checkpoint size {}) does not cover the {} entries sent",
                cp.size,
                batch.len()
            )));
        }
        // Consistency with the newest checkpoint seen before.
        if let Some((size0, root0)) = self.seen {
            if cp.size < size0 {
                return Err(Check::Violation(format!(
                    "checkpoint of size {} after one of size {size0}: the log shrank",
                    cp.size
                )));
            }
            if cp.size == size0 && cp.root != root0 {
                return Err(Check::Violation(format!(
                    "two checkpoints of size {size0} with different roots: a fork"
                )));
            }
            if cp.size > size0 {
                let p = self
                    .get_json(&format!(
                        "/v1/proof/consistency?from={size0}&to={}",
                        cp.size
                    ))
                    .await?;
                let hashes = decode_hashes(&p)?;
                verify_consistency(size0, cp.size, &hashes, &root0, &cp.root).map_err(|e| {
                    format!(
                        "checkpoint of size {} is not consistent with the one of size {size0} seen before: {e}",
                        cp.size
                    )
                })?;
            }
        }
        // The stored records: what was sent, at the receipt's seqs, included
        // in the checkpoint. A page may stop short (the server's byte
        // budget): follow its cursor.
        let mut stored: Vec<Vec<u8>> = Vec::with_capacity(batch.len());
        let mut cursor = first;
        while (stored.len() as u64) < count {
            let want = count - stored.len() as u64;
            let r = self
                .client
                .get(format!(
                    "{}/v1/query?cursor={cursor}&limit={want}",
                    self.cfg.url
                ))
                .bearer_auth(self.cfg.query_token.as_deref().unwrap_or_default())
                .send()
                .await
                .map_err(|e| Check::Unverifiable(format!("reading seqs {first}..={last}: {e}")))?;
            if !r.status().is_success() {
                return Err(Check::Unverifiable(format!(
                    "reading seqs {first}..={last}: {}",
                    r.status()
                )));
            }
            let next = r
                .headers()
                .get("x-sealog-next-cursor")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let text = r
                .bytes()
                .await
                .map_err(|e| Check::Unverifiable(format!("reading seqs {first}..={last}: {e}")))?;
            let before = stored.len();
            stored.extend(
                text.split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(<[u8]>::to_vec),
            );
            match next {
                Some(c) if c > cursor && stored.len() > before => cursor = c,
                _ => break,
            }
        }
        if stored.len() != batch.len() {
            return Err(Check::Violation(format!(
                "seqs {first}..={last}: the server returned {} records for {} sent",
                stored.len(),
                batch.len()
            )));
        }
        let mut leaves = Vec::with_capacity(stored.len());
        for (i, (line, sent)) in stored.iter().zip(batch).enumerate() {
            let seq = first + i as u64;
            // The server stores the line without surrounding whitespace.
            let sent = sent.trim_ascii();
            let body = sent.strip_prefix(b"{").unwrap_or(sent);
            if !stored_as_sent(line, &realm, seq, body) {
                return Err(Check::Violation(format!(
                    "seq {seq}: the stored record is not the entry sent: {}",
                    String::from_utf8_lossy(line)
                )));
            }
            leaves.push(leaf_hash(line));
        }
        let p = self
            .get_json(&format!(
                "/v1/proof/range?from={first}&to={}&size={}",
                last + 1,
                cp.size
            ))
            .await?;
        let hashes = decode_hashes(&p)?;
        let root = root_from_range(&leaves, first, cp.size, &hashes)
            .map_err(|e| Check::Violation(format!("seqs {first}..={last}: range proof: {e}")))?;
        if root != cp.root {
            return Err(Check::Violation(format!(
                "seqs {first}..={last} as stored are not the records checkpoint {} signed: the log was rewritten",
                cp.size
            )));
        }
        self.seen = Some((cp.size, cp.root));
        Ok(())
    }

    /// Whether a batch whose answer was lost was committed: its first
    /// entry's `id` looked up among the records of its time (a batch is
    /// committed whole or not at all). `None` when it cannot be told.
    async fn committed(&self, batch: &[Vec<u8>]) -> Option<bool> {
        let token = self.cfg.query_token.as_ref()?;
        let first: serde_json::Value = serde_json::from_slice(batch.first()?).ok()?;
        let id = first.get("id")?.as_str()?;
        let when = first.get("when").and_then(|w| w.as_str());
        let from = when
            .and_then(|w| {
                time::OffsetDateTime::parse(w, &time::format_description::well_known::Rfc3339).ok()
            })
            .map(|t| t - time::Duration::minutes(10))
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            });
        let mut url = reqwest::Url::parse(&format!("{}/v1/query", self.cfg.url)).ok()?;
        url.query_pairs_mut()
            .append_pair("where", &format!("id={id}"))
            .append_pair("order", "newest")
            .append_pair("limit", "1");
        if let Some(f) = from {
            url.query_pairs_mut().append_pair("from", &f);
        }
        // The server may still be coming back: ask a few times.
        for _ in 0..20 {
            match self.client.get(url.clone()).bearer_auth(token).send().await {
                Ok(r) if r.status().is_success() => {
                    let body = r.bytes().await.ok()?;
                    return Some(!body.iter().all(u8::is_ascii_whitespace));
                }
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::stored_as_sent;

    #[test]
    fn only_the_exact_stored_form_passes() {
        let body = br#""app":"shop","n":1}"#;
        let ok = br#"{"realm":"shop","seq":7,"received_at":"2026-11-24T05:00:00.000000001Z","app":"shop","n":1}"#;
        assert!(stored_as_sent(ok, "shop", 7, body));
        assert!(!stored_as_sent(ok, "shop", 8, body), "another seq");
        assert!(!stored_as_sent(ok, "other", 7, body), "another realm");
        let spliced = br#"{"realm":"shop","seq":7,"received_at":"2026-11-24T05:00:00Z","x":1,"app":"shop","n":1}"#;
        assert!(
            !stored_as_sent(spliced, "shop", 7, body),
            "a field spliced in"
        );
        let bad_time = br#"{"realm":"shop","seq":7,"received_at":"soon","app":"shop","n":1}"#;
        assert!(!stored_as_sent(bad_time, "shop", 7, body));
    }
}
