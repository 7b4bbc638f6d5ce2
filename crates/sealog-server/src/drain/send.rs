//! The transports a drain delivers over: a syslog stream (TCP or TLS), UDP
//! datagrams, and logplex HTTP POSTs. Each sender is owned by one drain's
//! task, so a slow or dead destination only ever waits in that task.
//!
//! A syslog stream has no acknowledgements. A reader on each connection
//! notices the peer closing or resetting it (logshuttle's watcher); the
//! drain's loop keeps the records written in the last
//! `resend_window_secs` unconfirmed and sends them again after a break.

use std::sync::Arc;
use std::time::Duration;

use sealog_codec::drain::{cut, frame_stream, logplex_frame, Destination, Framing, Transport};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config;

/// Packets of one delivery batch, unframed, back to back.
#[derive(Debug, Default)]
pub struct Batch {
    /// First seq the batch covers.
    pub from: u64,
    /// The seq after the last one it covers (records not selected
    /// included): the cursor once the batch is delivered.
    pub next: u64,
    /// The packets.
    pub buf: Vec<u8>,
    /// Each packet's `(start, end)` in `buf`.
    pub spans: Vec<(usize, usize)>,
    /// Each packet's seq.
    pub seqs: Vec<u64>,
    /// Each packet in `buf` is followed by a newline (outside its span),
    /// so a newline-framed stream writes `buf` as it is.
    pub newline_framed: bool,
}

impl Batch {
    fn packets(&self) -> impl Iterator<Item = &[u8]> {
        self.spans.iter().map(|(s, e)| &self.buf[*s..*e])
    }
}

/// Why a delivery attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth trying again after a backoff (connection refused or broken,
    /// timeout, HTTP 408, 429 or 5xx).
    Retry(String),
    /// The destination refused the records (HTTP 4xx other than 408/429,
    /// or a redirect): the drain is marked failing.
    Refused(String),
    /// The drain is being stopped.
    Stopped,
}

/// The TLS client settings of every drain: the system's roots plus the
/// configured CA, and the optional client certificate.
///
/// # Errors
/// An unreadable or malformed CA, certificate or key file, named.
pub fn client_tls(cfg: &config::Drains) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    let read =
        |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("read {}: {e}", p.display()));
    if let Some(ca) = &cfg.ca_file {
        let pem = read(ca)?;
        let mut n = 0;
        for c in rustls_pemfile::certs(&mut &pem[..]) {
            let c = c.map_err(|e| format!("{}: not a PEM certificate: {e}", ca.display()))?;
            roots
                .add(c)
                .map_err(|e| format!("{}: unusable CA certificate: {e}", ca.display()))?;
            n += 1;
        }
        if n == 0 {
            return Err(format!("{}: no certificate found", ca.display()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match (&cfg.client_cert, &cfg.client_key) {
        (Some(cert), Some(key)) => {
            let pem = read(cert)?;
            let chain: Vec<_> = rustls_pemfile::certs(&mut &pem[..])
                .collect::<Result<_, _>>()
                .map_err(|e| format!("{}: not a PEM certificate chain: {e}", cert.display()))?;
            if chain.is_empty() {
                return Err(format!("{}: no certificate found", cert.display()));
            }
            let pem = read(key)?;
            let key_der = rustls_pemfile::private_key(&mut &pem[..])
                .map_err(|e| format!("{}: not a PEM private key: {e}", key.display()))?
                .ok_or_else(|| format!("{}: no private key found", key.display()))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| format!("client certificate and key do not work together: {e}"))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("drains.client_cert and drains.client_key go together".into()),
    };
    Ok(Arc::new(config))
}

/// What senders share: TLS settings, the HTTP client, limits.
#[derive(Debug, Clone)]
pub struct Shared {
    /// TLS client settings, or why there are none.
    pub tls: Result<Arc<rustls::ClientConfig>, String>,
    /// The HTTP client (rustls with `tls`).
    pub http: Result<reqwest::Client, String>,
    /// The settings.
    pub cfg: config::Drains,
}

impl Shared {
    /// Builds the TLS settings and the HTTP client from `cfg`; a bad TLS
    /// file fails only the drains that need TLS, each saying why.
    pub fn new(cfg: &config::Drains) -> Self {
        let tls = client_tls(cfg);
        let mut http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(cfg.write_timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(cfg.write_timeout_secs.clamp(1, 10)))
            .user_agent(concat!("sealog/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(30));
        if let Ok(t) = &tls {
            http = http.use_preconfigured_tls((**t).clone());
        }
        let http = http.build().map_err(|e| format!("HTTP client: {e}"));
        Self {
            tls,
            http,
            cfg: cfg.clone(),
        }
    }
}

trait Stream: AsyncWrite + Unpin + Send {}
impl<T: AsyncWrite + Unpin + Send> Stream for T {}

/// An open syslog stream connection.
struct Conn {
    write: Box<dyn Stream>,
    /// Cancelled by the reader when the peer closes or resets.
    closed: CancellationToken,
    reader: tokio::task::JoinHandle<()>,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Reads (and drops) what the receiver sends until it closes or resets
/// the connection, then cancels `closed` (logshuttle's watcher).
fn watch<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    mut r: R,
    closed: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while matches!(r.read(&mut buf).await, Ok(n) if n > 0) {}
        closed.cancel();
    })
}

/// One drain's sender.
pub struct Sender {
    dest: Destination,
    framing: Framing,
    id: String,
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
    conn: Option<Conn>,
    udp: Option<UdpSocket>,
    out: Vec<u8>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("dest", &self.dest)
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

/// What one [`Sender::send`] did besides delivering.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sent {
    /// Packets cut to fit (UDP datagrams).
    pub truncated: u64,
}

impl Sender {
    /// A sender for drain `id` to `dest`; `slots` caps its destination's
    /// connections.
    pub fn new(
        id: &str,
        dest: Destination,
        framing: Framing,
        shared: Arc<Shared>,
        slots: Arc<Semaphore>,
    ) -> Self {
        Self {
            dest,
            framing,
            id: id.to_string(),
            shared,
            slots,
            conn: None,
            udp: None,
            out: Vec::new(),
        }
    }

    /// True when batches should be built newline-framed for this sender.
    pub fn wants_newline_framing(&self) -> bool {
        self.is_stream() && self.framing == Framing::Newline
    }

    /// True for transports without acknowledgements, whose recent records
    /// are sent again after a break.
    pub fn is_stream(&self) -> bool {
        matches!(
            self.dest.transport,
            Transport::SyslogTcp | Transport::SyslogTls
        )
    }

    /// True when the receiver closed or reset the stream connection:
    /// what was written on it lately may not have been read.
    pub fn broken(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.closed.is_cancelled())
    }

    /// Cancelled when the stream connection breaks; `None` without one.
    pub fn broken_signal(&self) -> Option<CancellationToken> {
        self.conn.as_ref().map(|c| c.closed.clone())
    }

    /// Closes an idle stream connection (gracefully: what was written is
    /// read) when other drains wait for this destination's slots.
    pub fn release_if_contended(&mut self) -> bool {
        if self.conn.is_some() && self.slots.available_permits() == 0 && !self.broken() {
            self.conn = None;
            return true;
        }
        false
    }

    /// Connects a stream transport that is not connected, so a dead
    /// destination costs a connect attempt, not a batch read from the
    /// journal as well; other transports are always ready.
    ///
    /// # Errors
    /// As [`Sender::send`].
    pub async fn ready(&mut self, stop: &CancellationToken) -> Result<(), Failure> {
        if self.is_stream() && self.conn.is_none() {
            let r = self.connect(stop).await;
            if r.is_err() {
                self.disconnect();
            }
            return r;
        }
        Ok(())
    }

    /// Drops the connection (after a failure, or when stopping).
    pub fn disconnect(&mut self) {
        self.conn = None;
        self.udp = None;
    }

    /// Delivers `batch`; on success every packet was written (streams),
    /// sent (UDP) or acknowledged with a 2xx (HTTP).
    ///
    /// # Errors
    /// [`Failure`]; the connection is dropped on any error.
    pub async fn send(&mut self, batch: &Batch, stop: &CancellationToken) -> Result<Sent, Failure> {
        if batch.spans.is_empty() {
            return Ok(Sent::default());
        }
        let r = match self.dest.transport {
            Transport::SyslogTcp | Transport::SyslogTls => self.send_stream(batch, stop).await,
            Transport::SyslogUdp => self.send_udp(batch).await,
            Transport::Http | Transport::Https => self.send_http(batch, stop).await,
        };
        if r.is_err() {
            self.disconnect();
        }
        r
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.shared.cfg.write_timeout_secs.max(1))
    }

    /// One of the destination's connection slots. Waiting is bounded: a
    /// drain that finds them all busy retries with backoff and says why
    /// (idle connections give theirs up meanwhile).
    fn slot(
        &self,
        stop: &CancellationToken,
    ) -> impl std::future::Future<Output = Result<OwnedSemaphorePermit, Failure>> + Send + 'static
    {
        let (slots, stop) = (self.slots.clone(), stop.clone());
        let busy = format!(
            "all {} connections to {}:{} are in use by other drains (drains.max_connections_per_destination)",
            self.shared.cfg.max_connections_per_destination, self.dest.host, self.dest.port
        );
        async move {
            let wait = tokio::time::timeout(Duration::from_secs(5), slots.acquire_owned());
            tokio::select! {
                r = wait => match r {
                    Ok(Ok(p)) => Ok(p),
                    Ok(Err(_)) => Err(Failure::Stopped),
                    Err(_) => Err(Failure::Retry(busy)),
                },
                () = stop.cancelled() => Err(Failure::Stopped),
            }
        }
    }

    async fn connect(&mut self, stop: &CancellationToken) -> Result<(), Failure> {
        let slot = self.slot(stop).await?;
        let addr = (self.dest.host.as_str(), self.dest.port);
        let dial = tokio::time::timeout(self.timeout().min(Duration::from_secs(10)), async {
            TcpStream::connect(addr).await
        });
        let tcp = tokio::select! {
            r = dial => match r {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(Failure::Retry(format!("connect {}:{}: {e}", self.dest.host, self.dest.port))),
                Err(_) => return Err(Failure::Retry(format!("connect {}:{}: timed out", self.dest.host, self.dest.port))),
            },
            () = stop.cancelled() => return Err(Failure::Stopped),
        };
        let _ = tcp.set_nodelay(true);
        let closed = CancellationToken::new();
        let conn = if self.dest.transport == Transport::SyslogTls {
            let tls = self.shared.tls.clone().map_err(Failure::Retry)?;
            let name =
                rustls::pki_types::ServerName::try_from(self.dest.host.clone()).map_err(|e| {
                    Failure::Refused(format!("TLS server name {}: {e}", self.dest.host))
                })?;
            let hs = tokio::time::timeout(
                self.timeout(),
                tokio_rustls::TlsConnector::from(tls).connect(name, tcp),
            );
            let stream = tokio::select! {
                r = hs => match r {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => return Err(Failure::Retry(format!("TLS handshake with {}:{}: {e}", self.dest.host, self.dest.port))),
                    Err(_) => return Err(Failure::Retry(format!("TLS handshake with {}:{}: timed out", self.dest.host, self.dest.port))),
                },
                () = stop.cancelled() => return Err(Failure::Stopped),
            };
            let (r, w) = tokio::io::split(stream);
            let reader = watch(r, closed.clone());
            Conn {
                write: Box::new(w),
                closed,
                reader,
                _slot: slot,
            }
        } else {
            let (r, w) = tcp.into_split();
            let reader = watch(r, closed.clone());
            Conn {
                write: Box::new(w),
                closed,
                reader,
                _slot: slot,
            }
        };
        self.conn = Some(conn);
        Ok(())
    }

    async fn send_stream(
        &mut self,
        batch: &Batch,
        stop: &CancellationToken,
    ) -> Result<Sent, Failure> {
        if self.conn.as_ref().is_some_and(|c| c.closed.is_cancelled()) {
            return Err(Failure::Retry("the receiver closed the connection".into()));
        }
        if self.conn.is_none() {
            self.connect(stop).await?;
        }
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        let bytes: &[u8] = if batch.newline_framed && self.framing == Framing::Newline {
            &batch.buf
        } else {
            for p in batch.packets() {
                frame_stream(&mut out, p, self.framing);
            }
            &out
        };
        let limit = self.timeout();
        let r = {
            let Some(conn) = self.conn.as_mut() else {
                return Err(Failure::Retry("not connected".into()));
            };
            let write = async {
                conn.write.write_all(bytes).await?;
                conn.write.flush().await
            };
            tokio::select! {
                r = tokio::time::timeout(limit, write) => match r {
                    Ok(Ok(())) => Ok(Sent::default()),
                    Ok(Err(e)) => Err(Failure::Retry(format!("write: {e}"))),
                    Err(_) => Err(Failure::Retry(format!("write made no progress for {}s", limit.as_secs()))),
                },
                () = conn.closed.cancelled() => Err(Failure::Retry("the receiver closed the connection".into())),
                () = stop.cancelled() => Err(Failure::Stopped),
            }
        };
        self.out = out;
        r
    }

    async fn send_udp(&mut self, batch: &Batch) -> Result<Sent, Failure> {
        if self.udp.is_none() {
            let bind = if self.dest.host.contains(':') {
                "[::]:0"
            } else {
                "0.0.0.0:0"
            };
            let s = UdpSocket::bind(bind)
                .await
                .map_err(|e| Failure::Retry(format!("udp bind: {e}")))?;
            s.connect((self.dest.host.as_str(), self.dest.port))
                .await
                .map_err(|e| {
                    Failure::Retry(format!("udp {}:{}: {e}", self.dest.host, self.dest.port))
                })?;
            self.udp = Some(s);
        }
        let Some(s) = self.udp.as_ref() else {
            return Err(Failure::Retry("no socket".into()));
        };
        let max = self.shared.cfg.udp_max_datagram.max(64);
        let mut sent = Sent::default();
        for p in batch.packets() {
            let keep = cut(p, max);
            if keep < p.len() {
                sent.truncated += 1;
            }
            s.send(&p[..keep])
                .await
                .map_err(|e| Failure::Retry(format!("udp send: {e}")))?;
        }
        Ok(sent)
    }

    async fn send_http(
        &mut self,
        batch: &Batch,
        stop: &CancellationToken,
    ) -> Result<Sent, Failure> {
        let client = self.shared.http.clone().map_err(Failure::Retry)?;
        if self.dest.transport == Transport::Https {
            self.shared
                .tls
                .as_ref()
                .map_err(|e| Failure::Retry(e.clone()))?;
        }
        let url = self.dest.http_url.clone().unwrap_or_default();
        let per = self.shared.cfg.http_max_frames.max(1);
        for (i, chunk) in batch.spans.chunks(per).enumerate() {
            let mut body = Vec::new();
            for (s, e) in chunk {
                logplex_frame(&mut body, &batch.buf[*s..*e]);
            }
            // The same records get the same frame id, on a retry and after
            // a restart, so a receiver can drop a repeated frame.
            let first = batch.seqs.get(i * per).copied().unwrap_or_default();
            let frame_id = format!("{first}-{}", chunk.len());
            let mut req = client
                .post(&url)
                .header("content-type", "application/logplex-1")
                .header("logplex-msg-count", chunk.len().to_string())
                .header("logplex-frame-id", frame_id)
                .header("logplex-drain-token", self.id.as_str())
                .body(body);
            if let Some((u, p)) = &self.dest.basic_auth {
                req = req.basic_auth(u, Some(p));
            }
            let _slot = self.slot(stop).await?;
            let resp = tokio::select! {
                r = req.send() => r,
                () = stop.cancelled() => return Err(Failure::Stopped),
            };
            let resp = resp.map_err(|e| Failure::Retry(format!("POST {}: {e}", redact(&url))))?;
            let status = resp.status();
            if status.is_success() {
                continue;
            }
            // At most 4 KiB of the answer is read, whatever it sends.
            let mut resp = resp;
            let mut head = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while head.len() < 4096 {
                    match resp.chunk().await {
                        Ok(Some(c)) => head.extend_from_slice(&c),
                        _ => break,
                    }
                }
            })
            .await;
            drop(resp);
            let text: String = String::from_utf8_lossy(&head).chars().take(200).collect();
            let why = format!("HTTP {status} from {}: {}", redact(&url), text.trim());
            // Frames already acknowledged in this batch are delivered
            // again with the retry: at least once.
            return Err(
                if status.is_server_error()
                    || status == reqwest::StatusCode::REQUEST_TIMEOUT
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                {
                    Failure::Retry(why)
                } else {
                    Failure::Refused(why)
                },
            );
        }
        Ok(Sent::default())
    }
}

fn redact(url: &str) -> String {
    sealog_codec::drain::redacted(url)
}
