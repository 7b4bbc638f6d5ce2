//! Syslog listeners: TCP (RFC 6587 octet counting or LF, detected per
//! connection from its first byte) and UDP (one datagram, one message).
//!
//! Messages are parsed leniently ([`sealog_codec::syslog::parse`]); the raw
//! line is always kept. On a listener bound to a realm every message goes
//! there; on an unbound one each message must carry
//! `[sealog@32473 token="<write token>"]` and is refused (counted) without.
//! A TCP sender faster than the commit path stops being read, so TCP flow
//! control slows it; UDP cannot be slowed, so a burst beyond the socket's
//! receive buffer is dropped by the kernel (as with any UDP syslog daemon).
//! A framing error (oversized or malformed octet count, an over-long line)
//! closes the TCP connection after committing what came before it.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::BytesMut;
use sealog_codec::syslog::{parse, SyslogFramer};
use sealog_store::Scope;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{oneshot, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::auth::Grant;
use crate::config::SyslogListener;
use crate::realm::{CommitRequest, RealmHandle};
use crate::refusal::Refusals;
use crate::state::AppState;

/// Commits outstanding per connection (or UDP socket) before reading
/// stops. Memory stays bounded by the realm's queued-bytes budget; this only
/// keeps enough in flight to cover the fsyncs of a commit.
const MAX_PENDING: usize = 16;

/// Bytes read from a connection at a time.
const READ_BUF: usize = 256 * 1024;

/// One realm's share of a read: the realm, event bytes, event ranges and times.
type RealmBatch = (
    Arc<RealmHandle>,
    Vec<u8>,
    Vec<(std::ops::Range<usize>, Option<i64>)>,
);

/// Per-realm batches of one read.
#[derive(Default)]
struct Batches {
    by_realm: HashMap<String, RealmBatch>,
    count: usize,
}

impl Batches {
    fn push(&mut self, realm: &Arc<RealmHandle>, event: &[u8], time: Option<i64>) {
        if !self.by_realm.contains_key(realm.name()) {
            self.by_realm.insert(
                realm.name().to_string(),
                (realm.clone(), Vec::with_capacity(256 * 1024), Vec::new()),
            );
        }
        let Some(e) = self.by_realm.get_mut(realm.name()) else {
            return;
        };
        let at = e.1.len();
        e.1.extend_from_slice(event);
        e.2.push((at..e.1.len(), time));
        self.count += 1;
    }

    /// Adds a whole parsed chunk for one realm, taking its buffer as it is
    /// when the realm has nothing yet in this batch.
    fn push_chunk(&mut self, realm: &Arc<RealmHandle>, chunk: Chunk) {
        // A read that held no whole message (half of one, at a close)
        // adds nothing: an empty commit would be refused and logged.
        if chunk.events.is_empty() {
            return;
        }
        self.count += chunk.events.len();
        match self.by_realm.get_mut(realm.name()) {
            None => {
                self.by_realm.insert(
                    realm.name().to_string(),
                    (realm.clone(), chunk.buf, chunk.events),
                );
            }
            Some(e) => {
                let base = e.1.len();
                e.1.extend_from_slice(&chunk.buf);
                e.2.extend(
                    chunk
                        .events
                        .into_iter()
                        .map(|(r, t)| (r.start + base..r.end + base, t)),
                );
            }
        }
    }

    async fn submit(&mut self, pending: &Arc<Semaphore>) {
        for (_, (realm, buf, events)) in self.by_realm.drain() {
            if events.is_empty() {
                continue;
            }
            let Ok(permit) = pending.clone().acquire_owned().await else {
                return;
            };
            let (tx, rx) = oneshot::channel();
            let req = CommitRequest {
                buf,
                events,
                reply: tx,
            };
            if realm.submit_wait(req).await.is_err() {
                tracing::warn!(realm = %realm.name(), "syslog batch not committed: realm closing");
                continue;
            }
            tokio::spawn(async move {
                if let Ok(Err(e)) = rx.await {
                    tracing::error!(cause = %e, "syslog batch commit failed");
                }
                drop(permit);
            });
        }
        self.count = 0;
    }
}

/// Messages parsed into one buffer: event ranges with times, and each
/// message's token (used only by listeners bound to no realm).
#[derive(Default)]
struct Chunk {
    buf: Vec<u8>,
    events: Vec<(std::ops::Range<usize>, Option<i64>)>,
    tokens: Vec<Option<String>>,
}

impl Chunk {
    fn parse(msgs: &[bytes::Bytes], now: i64) -> Self {
        let bytes: usize = msgs.iter().map(|m| m.len()).sum();
        let mut c = Chunk {
            buf: Vec::with_capacity(bytes * 2 + msgs.len() * 64),
            events: Vec::with_capacity(msgs.len()),
            tokens: Vec::with_capacity(msgs.len()),
        };
        for m in msgs {
            let at = c.buf.len();
            let meta = sealog_codec::syslog::parse_into(m, now, &mut c.buf);
            c.events.push((at..c.buf.len(), meta.time_ns));
            c.tokens.push(meta.token);
        }
        c
    }
}

/// Resolves the realm of one message. A bound listener looks its realm up
/// until it exists (a realm created after start starts receiving at once;
/// before that its messages are refused as `unknown_realm`, counted). An
/// unbound one caches each token's realm with its [`Grant`], re-checked
/// before every message, so a revoked token stops at its next message.
struct Router {
    bound: Option<String>,
    bound_handle: Option<Arc<RealmHandle>>,
    cache: HashMap<String, (Arc<RealmHandle>, Grant)>,
}

impl Router {
    fn new(cfg: &SyslogListener) -> Self {
        Self {
            bound: cfg.realm.clone(),
            bound_handle: None,
            cache: HashMap::new(),
        }
    }

    /// The bound realm, if the listener has one and it exists now.
    fn bound(&mut self, state: &AppState) -> Option<Arc<RealmHandle>> {
        if self.bound_handle.is_none() {
            let name = self.bound.as_deref()?;
            self.bound_handle = state.realm(name).ok();
        }
        self.bound_handle.clone()
    }

    fn route(
        &mut self,
        state: &AppState,
        token: Option<&str>,
    ) -> Result<Arc<RealmHandle>, &'static str> {
        if self.bound.is_some() {
            return self.bound(state).ok_or("unknown_realm");
        }
        let token = token.ok_or("no_token")?;
        if let Some((r, grant)) = self.cache.get_mut(token) {
            if grant.still_valid(state) {
                return Ok(r.clone());
            }
            self.cache.remove(token);
            return Err("bad_token");
        }
        let grant = Grant::find(state, token).map_err(|_| "bad_token")?;
        if grant.info.scope != Scope::Write {
            return Err("bad_token");
        }
        let r = state.realm(&grant.info.realm).map_err(|_| "bad_token")?;
        self.cache.insert(token.to_string(), (r.clone(), grant));
        Ok(r)
    }

    fn label(&self) -> &str {
        self.bound.as_deref().unwrap_or("")
    }
}

/// Accepts TCP syslog connections until `stop`.
pub async fn run_tcp(
    listener: TcpListener,
    cfg: SyslogListener,
    state: Arc<AppState>,
    stop: CancellationToken,
) {
    let cfg = Arc::new(cfg);
    let max = cfg.max_connections;
    crate::listen::serve_connections(
        listener,
        max,
        stop.clone(),
        "syslog-tcp",
        move |stream, peer| {
            let (cfg, state, stop) = (cfg.clone(), state.clone(), stop.clone());
            async move {
                serve_tcp(stream, peer, "syslog-tcp", &cfg, &state, stop).await;
                tracing::debug!(%peer, "syslog connection closed");
            }
        },
    )
    .await;
}

async fn serve_tcp<S: AsyncRead + Unpin>(
    mut stream: S,
    peer: std::net::SocketAddr,
    listener: &'static str,
    cfg: &SyslogListener,
    state: &Arc<AppState>,
    stop: CancellationToken,
) {
    let mut router = Router::new(cfg);
    let idle = std::time::Duration::from_secs(state.config.limits.stream_idle_timeout_secs.max(1));
    // On an unbound listener a connection must send a message with a valid
    // token within the hello timeout of accept; refused messages do not
    // keep it open.
    let mut authenticated = cfg.realm.is_some();
    let hello_deadline = tokio::time::Instant::now()
        + std::time::Duration::from_secs(state.config.limits.hello_timeout_secs.max(1));
    let mut framer = SyslogFramer::new(cfg.max_message_bytes);
    let mut refusals = Refusals::new(listener, peer);
    let mut buf = BytesMut::with_capacity(READ_BUF);
    let pending = Arc::new(Semaphore::new(MAX_PENDING));
    let mut batches = Batches::default();
    'conn: loop {
        let n = tokio::select! {
            _ = stop.cancelled() => 0,
            r = tokio::time::timeout_at(
                if authenticated { tokio::time::Instant::now() + idle } else { hello_deadline },
                stream.read_buf(&mut buf),
            ) => match r {
                Ok(r) => r.unwrap_or(0),
                Err(_) => {
                    let reason = if authenticated { "idle_timeout" } else { "hello_timeout" };
                    tracing::info!(%peer, reason, "syslog connection closed by a timeout");
                    state.metrics.refused(router.label(), reason, 1);
                    0
                }
            },
        };
        if n == 0 {
            if let Some(last) = framer.finish(&mut buf) {
                take(state, &mut router, &mut batches, &last);
            }
            break;
        }
        let mut msgs = Vec::new();
        let mut framing_error = false;
        loop {
            match framer.decode(&mut buf) {
                Ok(Some(msg)) => msgs.push(msg),
                Ok(None) => break,
                Err(e) => {
                    tracing::info!(cause = %e, "syslog framing error; closing the connection");
                    state.metrics.refused(router.label(), "syslog_framing", 1);
                    refusals.note("syslog_framing");
                    framing_error = true;
                    break;
                }
            }
        }
        // Parsing is most of the per-message work: spread a read's worth
        // over rayon's threads, each parsing its share into one buffer.
        let now = sealog_event::now_ns();
        let chunks: Vec<Chunk> = if msgs.len() >= 128 {
            tokio::task::spawn_blocking(move || {
                use rayon::prelude::*;
                let per = msgs.len().div_ceil(rayon::current_num_threads().max(1));
                msgs.par_chunks(per.max(64))
                    .map(|c| Chunk::parse(c, now))
                    .collect()
            })
            .await
            .unwrap_or_default()
        } else {
            vec![Chunk::parse(&msgs, now)]
        };
        for chunk in chunks {
            route_chunk(state, &mut router, &mut batches, chunk);
            authenticated |= batches.count > 0;
            if batches.count >= cfg.batch_records.max(1) {
                batches.submit(&pending).await;
            }
        }
        if let Some(ev) = refusals.due() {
            if let Some(r) = router.bound(state) {
                crate::refusal::record(&r, ev).await;
            }
        }
        batches.submit(&pending).await;
        if framing_error {
            break 'conn;
        }
    }
    if let Some(ev) = refusals.flush() {
        if let Some(r) = router.bound(state) {
            crate::refusal::record(&r, ev).await;
        }
    }
    batches.submit(&pending).await;
    let _ = pending.acquire_many(MAX_PENDING as u32).await;
}

fn take(state: &AppState, router: &mut Router, batches: &mut Batches, msg: &[u8]) {
    route_parsed(state, router, batches, parse(msg, sealog_event::now_ns()));
}

fn route_parsed(
    state: &AppState,
    router: &mut Router,
    batches: &mut Batches,
    p: sealog_codec::syslog::Parsed,
) {
    match router.route(state, p.token.as_deref()) {
        Ok(realm) => batches.push(&realm, &p.event, p.time_ns),
        Err(reason) => state.metrics.refused(router.label(), reason, 1),
    }
}

/// Routes a parsed chunk: whole to the bound realm, else message by message
/// on each one's token.
fn route_chunk(state: &AppState, router: &mut Router, batches: &mut Batches, chunk: Chunk) {
    if chunk.events.is_empty() {
        return;
    }
    if router.bound.is_some() {
        match router.bound(state) {
            Some(realm) => batches.push_chunk(&realm, chunk),
            None => {
                state
                    .metrics
                    .refused(router.label(), "unknown_realm", chunk.events.len() as u64)
            }
        }
        return;
    }
    for ((range, time), token) in chunk.events.iter().zip(&chunk.tokens) {
        match router.route(state, token.as_deref()) {
            Ok(realm) => batches.push(&realm, &chunk.buf[range.clone()], *time),
            Err(reason) => state.metrics.refused(router.label(), reason, 1),
        }
    }
}

/// Loads a PEM certificate chain and private key into a TLS acceptor
/// (rustls; TLS 1.2 and 1.3, no client certificates).
///
/// # Errors
/// A message naming the file and what is wrong with it.
pub fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, String> {
    let read =
        |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("read {}: {e}", p.display()));
    let cert_pem = read(cert)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not a PEM certificate chain: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", cert.display()));
    }
    let key_pem = read(key)?;
    let key_der = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|e| format!("{}: not a PEM private key: {e}", key.display()))?
        .ok_or_else(|| format!("{}: no private key found", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| format!("certificate and key do not work together: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Accepts TLS syslog connections (RFC 5425: TLS, then octet counting or
/// LF as on plain TCP) until `stop`. A handshake that fails or takes
/// longer than `hello_timeout_secs` closes that connection and is counted.
pub async fn run_tls(
    listener: TcpListener,
    cfg: SyslogListener,
    acceptor: tokio_rustls::TlsAcceptor,
    state: Arc<AppState>,
    stop: CancellationToken,
) {
    let cfg = Arc::new(cfg);
    let max = cfg.max_connections;
    crate::listen::serve_connections(
        listener,
        max,
        stop.clone(),
        "syslog-tls",
        move |stream, peer| {
            let (cfg, state, stop, acceptor) =
                (cfg.clone(), state.clone(), stop.clone(), acceptor.clone());
            async move {
                let label = cfg.realm.clone().unwrap_or_default();
                let handshake =
                    std::time::Duration::from_secs(state.config.limits.hello_timeout_secs.max(1));
                match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => serve_tcp(tls, peer, "syslog-tls", &cfg, &state, stop).await,
                    Ok(Err(e)) => {
                        tracing::info!(%peer, cause = %e, "syslog tls handshake failed");
                        state.metrics.refused(&label, "tls_handshake", 1);
                    }
                    Err(_) => {
                        tracing::info!(%peer, "syslog tls handshake timed out");
                        state.metrics.refused(&label, "tls_handshake", 1);
                    }
                }
            }
        },
    )
    .await;
}

/// Receives UDP syslog datagrams until `stop`.
pub async fn run_udp(
    socket: UdpSocket,
    cfg: SyslogListener,
    state: Arc<AppState>,
    stop: CancellationToken,
) {
    let mut router = Router::new(&cfg);
    let pending = Arc::new(Semaphore::new(MAX_PENDING));
    let mut batches = Batches::default();
    let mut buf = vec![0u8; 65_536];
    loop {
        let n = tokio::select! {
            _ = stop.cancelled() => break,
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, _)) => n,
                Err(e) => {
                    tracing::warn!(cause = %e, "syslog udp receive failed");
                    continue;
                }
            },
        };
        take_datagram(
            &state,
            &mut router,
            &mut batches,
            &buf[..n],
            cfg.max_message_bytes,
        );
        // Take whatever else is already waiting, up to a batch.
        while batches.count < cfg.batch_records.max(1) {
            match socket.try_recv_from(&mut buf) {
                Ok((n, _)) => take_datagram(
                    &state,
                    &mut router,
                    &mut batches,
                    &buf[..n],
                    cfg.max_message_bytes,
                ),
                Err(_) => break,
            }
        }
        batches.submit(&pending).await;
    }
    batches.submit(&pending).await;
    let _ = pending.acquire_many(MAX_PENDING as u32).await;
}

fn take_datagram(
    state: &AppState,
    router: &mut Router,
    batches: &mut Batches,
    d: &[u8],
    max: usize,
) {
    if d.len() > max {
        state.metrics.refused(router.label(), "syslog_too_large", 1);
        return;
    }
    let d = d.strip_suffix(b"\n").unwrap_or(d);
    if d.is_empty() {
        return;
    }
    take(state, router, batches, d);
}
