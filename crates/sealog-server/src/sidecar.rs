//! The sidecar TCP listener (Mojaloop wire format) with receipts.
//!
//! Per connection: frames are read and turned into events; every frame that
//! is decodable right now (up to `batch_records`) goes into one commit
//! request. The request waits for room in the realm's queue rather than
//! being refused, so a sender faster than the commit path stops being read
//! and TCP flow control slows it; at most [`MAX_PENDING_BATCHES`] commits per
//! connection are outstanding. After each commit an ack frame carries the
//! receipt and names the frames it covers (`"frames": [first, last]`,
//! counted from 1 on the connection, the hello included). Acks and error
//! frames leave in frame order: a batch is cut before a refused frame, and
//! one task answers the commits in the order they were queued. Acks go
//! through a bounded queue: a client that never reads them fills it, and
//! from then on acks (never records) are dropped and counted.
//!
//! A connection is closed when its whole hello has not come within
//! `hello_timeout_secs` of accept, when it sends nothing for `stream_idle_timeout_secs`,
//! or when its hello's token is revoked (checked before every frame; the
//! frames before it are committed and acknowledged).
//!
//! Outcomes of bad input (each answered with an error frame and counted):
//! an oversized length prefix closes the connection after everything before
//! it is committed and acknowledged; a zero-length or non-UTF-8 message is
//! refused and the connection goes on; half a frame at disconnect was never
//! acknowledged and is dropped; a bad hello closes the connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use sealog_codec::frame::{encode, FrameDecoder, FrameError};
use sealog_codec::sidecar::{parse_hello, to_event};
use sealog_store::Scope;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config::SidecarListener;
use crate::realm::{CommitRequest, RealmHandle};
use crate::refusal::Refusals;
use crate::state::AppState;

/// Commits outstanding per connection before it stops reading.
pub const MAX_PENDING_BATCHES: u32 = 16;

/// Accepts connections until `stop`; each is served on its own task.
pub async fn run(
    listener: TcpListener,
    cfg: SidecarListener,
    state: Arc<AppState>,
    stop: CancellationToken,
) {
    let cfg = Arc::new(cfg);
    let max = cfg.max_connections;
    crate::listen::serve_connections(
        listener,
        max,
        stop.clone(),
        "sidecar",
        move |stream, peer| {
            let (cfg, state, stop) = (cfg.clone(), state.clone(), stop.clone());
            async move {
                let _ = stream.set_nodelay(true);
                if let Err(e) = serve_conn(stream, peer, &cfg, &state, stop).await {
                    tracing::debug!(%peer, cause = %e, "sidecar connection ended");
                }
            }
        },
    )
    .await;
}

fn error_frame(reason: &str, frame: u64) -> Vec<u8> {
    encode(
        json!({"type": "error", "error": reason, "frame": frame})
            .to_string()
            .as_bytes(),
    )
}

/// One answer owed to the client, in frame order.
enum Ack {
    /// A frame ready to send (an error for one frame).
    Ready(Vec<u8>),
    /// A commit's outcome, for frames `first..=last`.
    Commit {
        frames: (u64, u64),
        reply: oneshot::Receiver<Result<sealog_journal::Receipt, crate::realm::CommitError>>,
        _permit: tokio::sync::OwnedSemaphorePermit,
    },
}

impl Ack {
    async fn resolve(self) -> Vec<u8> {
        match self {
            Ack::Ready(f) => f,
            Ack::Commit { frames, reply, .. } => {
                let frames = [frames.0, frames.1];
                match reply.await {
                    Ok(Ok(receipt)) => {
                        let mut v = serde_json::to_value(&receipt).unwrap_or_default();
                        if let Some(o) = v.as_object_mut() {
                            o.insert("type".into(), "receipt".into());
                            o.insert("frames".into(), json!(frames));
                        }
                        encode(v.to_string().as_bytes())
                    }
                    Ok(Err(e)) => encode(
                        json!({"type": "error", "error": format!("commit failed, not acknowledged: {e}"), "frames": frames, "frame": frames[0]})
                            .to_string()
                            .as_bytes(),
                    ),
                    Err(_) => encode(
                        json!({"type": "error", "error": "server is shutting down; not committed", "frames": frames, "frame": frames[0]})
                            .to_string()
                            .as_bytes(),
                    ),
                }
            }
        }
    }
}

/// The connection's answers: queued in frame order, resolved in that order
/// by one task, then handed to the socket writer without ever blocking on
/// it; a client that does not read its acks loses acks (never records),
/// counted.
struct Acks {
    order: mpsc::Sender<Ack>,
    realm: Arc<std::sync::Mutex<String>>,
}

impl Acks {
    /// Queues an error frame behind every earlier answer.
    async fn send(&self, frame: Vec<u8>) {
        let _ = self.order.send(Ack::Ready(frame)).await;
    }

    async fn commit(&self, ack: Ack) {
        let _ = self.order.send(ack).await;
    }

    fn label(&self, name: &str) {
        if let Ok(mut label) = self.realm.lock() {
            *label = name.to_string();
        }
    }
}

/// Resolves answers in order and passes them to the writer; drops (and
/// counts) those the writer has no room for.
async fn ack_pipeline(
    mut order: mpsc::Receiver<Ack>,
    out: mpsc::Sender<Vec<u8>>,
    dropped: Arc<AtomicU64>,
    metrics: Arc<crate::metrics::Metrics>,
    realm: Arc<std::sync::Mutex<String>>,
) {
    while let Some(ack) = order.recv().await {
        let frame = ack.resolve().await;
        if out.try_send(frame).is_err() {
            dropped.fetch_add(1, Ordering::Relaxed);
            let name = realm.lock().map(|r| r.clone()).unwrap_or_default();
            metrics.refused(&name, "ack_dropped", 1);
        }
    }
}

async fn serve_conn(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    cfg: &SidecarListener,
    state: &Arc<AppState>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(cfg.max_unread_acks.max(1));
    let dropped = Arc::new(AtomicU64::new(0));
    // Answers waiting to be resolved: a reader ahead of its commits waits
    // here, so this bounds memory too.
    let (order_tx, order_rx) =
        mpsc::channel(cfg.max_unread_acks.max(1) + MAX_PENDING_BATCHES as usize);
    let label = Arc::new(std::sync::Mutex::new(cfg.realm.clone().unwrap_or_default()));
    let acks = Arc::new(Acks {
        order: order_tx,
        realm: label.clone(),
    });
    let writer = tokio::spawn(async move {
        while let Some(f) = rx.recv().await {
            if wr.write_all(&f).await.is_err() {
                // The client is gone or closed its read side: drain silently.
                while rx.recv().await.is_some() {}
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    // `acks` is dropped when the reader is done, which ends the pipeline.
    let pipeline = tokio::spawn(ack_pipeline(
        order_rx,
        tx,
        dropped.clone(),
        state.metrics.clone(),
        label.clone(),
    ));

    let limits = &state.config.limits;
    let hello_timeout = std::time::Duration::from_secs(limits.hello_timeout_secs.max(1));
    let idle_timeout = std::time::Duration::from_secs(limits.stream_idle_timeout_secs.max(1));
    let mut decoder = FrameDecoder::new(cfg.max_frame_bytes);
    let mut buf = BytesMut::with_capacity(256 * 1024);
    let mut frame_no = 0u64;
    let mut realm: Option<Arc<RealmHandle>> = match &cfg.realm {
        Some(name) => match state.realm(name) {
            Ok(r) => Some(r),
            Err(e) => {
                state.metrics.refused(name, "unknown_realm", 1);
                acks.send(error_frame(&format!("{e}; closing"), 0)).await;
                drop(acks);
                let _ = pipeline.await;
                let _ = writer.await;
                return Ok(());
            }
        },
        None => None,
    };
    let mut grant: Option<crate::auth::Grant> = None;
    // Listed in `GET /sidecars` while connected (a bound listener's
    // connection at once, another after its hello).
    let mut listed = realm.as_ref().and_then(|r| {
        state
            .sidecars
            .register(cfg.service.clone(), r.name(), peer)
            .inspect_err(|e| tracing::warn!(%peer, cause = %e, "sidecar not listed"))
            .ok()
    });
    let mut service = cfg.service.clone();
    // The whole hello must arrive within the hello timeout of accept, not
    // each byte of it.
    let hello_deadline = tokio::time::Instant::now() + hello_timeout;
    let pending = Arc::new(Semaphore::new(MAX_PENDING_BATCHES as usize));
    let mut batch = Batch::default();
    let mut refusals = Refusals::new("sidecar", peer);
    'conn: loop {
        let until = if realm.is_none() {
            hello_deadline
        } else {
            tokio::time::Instant::now() + idle_timeout
        };
        let n = tokio::select! {
            _ = stop.cancelled() => 0,
            r = tokio::time::timeout_at(until, rd.read_buf(&mut buf)) => match r {
                Ok(r) => r.unwrap_or(0),
                Err(_) => {
                    let (what, reason) = if realm.is_none() {
                        ("hello_timeout", "no hello within the hello timeout; closing")
                    } else {
                        ("idle_timeout", "connection idle past the idle timeout; closing")
                    };
                    state.metrics.refused(realm.as_ref().map_or("", |r| r.name()), what, 1);
                    acks.send(error_frame(reason, frame_no)).await;
                    break 'conn;
                }
            },
        };
        if n == 0 {
            if !buf.is_empty() {
                // Half a frame at disconnect: never acknowledged, dropped.
                state
                    .metrics
                    .refused(realm.as_ref().map_or("", |r| r.name()), "partial_frame", 1);
                refusals.note("partial_frame");
            }
            break;
        }
        loop {
            let frame = match decoder.decode(&mut buf) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e @ FrameError::TooLarge { .. }) => {
                    frame_no += 1;
                    state.metrics.refused(
                        realm.as_ref().map_or("", |r| r.name()),
                        "frame_too_large",
                        1,
                    );
                    refusals.note("frame_too_large");
                    if let Some(r) = realm.as_ref() {
                        submit(r, std::mem::take(&mut batch), &pending, &acks).await;
                    }
                    acks.send(error_frame(&format!("{e}; closing"), frame_no))
                        .await;
                    break 'conn;
                }
            };
            frame_no += 1;
            if let Some(l) = listed.as_ref() {
                l.frame(frame.len());
            }
            let Some(r) = realm.as_ref() else {
                // First frame of an unbound listener: the hello.
                match hello_realm(state, &frame) {
                    Ok((r, g, named)) => {
                        acks.label(r.name());
                        if named.is_some() {
                            service = named;
                        }
                        let l = match state.sidecars.register(service.clone(), r.name(), peer) {
                            Ok(l) => l,
                            Err(reason) => {
                                state.metrics.refused(r.name(), "bad_hello", 1);
                                acks.send(error_frame(&reason, frame_no)).await;
                                break 'conn;
                            }
                        };
                        l.frame(frame.len());
                        listed = Some(l);
                        realm = Some(r);
                        grant = Some(g);
                        continue;
                    }
                    Err(reason) => {
                        state.metrics.refused("", "bad_hello", 1);
                        acks.send(error_frame(&reason, frame_no)).await;
                        break 'conn;
                    }
                }
            };
            if let Some(g) = grant.as_mut() {
                if !g.still_valid(state) {
                    // Revoked: what came before is committed and acked;
                    // this frame and everything after it is not taken.
                    state.metrics.refused(r.name(), "token_revoked", 1);
                    submit(r, std::mem::take(&mut batch), &pending, &acks).await;
                    acks.send(error_frame(
                        "token is not valid (revoked); this frame and the rest were not taken; closing",
                        frame_no,
                    ))
                    .await;
                    break 'conn;
                }
            }
            match to_event(&frame, service.as_deref()) {
                Ok((line, time)) => batch.push(&line, time, frame_no),
                Err(e) => {
                    state.metrics.refused(r.name(), "bad_message", 1);
                    refusals.note("bad_message");
                    // Cut the batch here so the answers stay in frame order.
                    submit(r, std::mem::take(&mut batch), &pending, &acks).await;
                    acks.send(error_frame(&e.to_string(), frame_no)).await;
                }
            }
            if batch.len() >= cfg.batch_records.max(1) {
                submit(r, std::mem::take(&mut batch), &pending, &acks).await;
            }
        }
        if let Some(r) = realm.as_ref() {
            if let Some(ev) = refusals.due() {
                crate::refusal::record(r, ev).await;
            }
            submit(r, std::mem::take(&mut batch), &pending, &acks).await;
        }
    }
    if let Some(r) = realm.as_ref() {
        // The connection's last refusals, whatever the interval.
        if let Some(ev) = refusals.flush() {
            crate::refusal::record(r, ev).await;
        }
        submit(r, std::mem::take(&mut batch), &pending, &acks).await;
    }
    // Every answer is queued; the pipeline ends once it has resolved them.
    drop(acks);
    let _ = pipeline.await;
    let lost = dropped.load(Ordering::Relaxed);
    if lost > 0 {
        tracing::info!(
            acks_dropped = lost,
            "sidecar client did not read its acks; some were dropped"
        );
    }
    // A client that keeps its socket open but never reads would block the
    // ack writer forever: give it a moment, then stop writing to it.
    let abort = writer.abort_handle();
    if tokio::time::timeout(std::time::Duration::from_secs(2), writer)
        .await
        .is_err()
    {
        abort.abort();
        tracing::info!(%peer, "sidecar client is not reading its acks; stopped writing to it");
    }
    Ok(())
}

/// The realm, grant and service name a hello frame gives.
type HelloOk = (Arc<RealmHandle>, crate::auth::Grant, Option<String>);

fn hello_realm(state: &AppState, frame: &[u8]) -> Result<HelloOk, String> {
    let hello = parse_hello(frame).ok_or_else(|| {
        "the first frame must be a hello {\"token\": \"<write token>\"} (and optionally \"serviceName\"); closing".to_string()
    })?;
    let grant = crate::auth::Grant::find(state, &hello.token)
        .map_err(|_| "token is not valid; closing".to_string())?;
    if grant.info.scope != Scope::Write {
        return Err(format!(
            "token scope {} cannot write; closing",
            grant.info.scope
        ));
    }
    let realm = state
        .realm(&grant.info.realm)
        .map_err(|e| format!("{e}; closing"))?;
    Ok((realm, grant, hello.service))
}

/// Events gathered from one read, and the frames they came from.
#[derive(Default)]
struct Batch {
    buf: Vec<u8>,
    events: Vec<(std::ops::Range<usize>, Option<i64>)>,
    frames: Option<(u64, u64)>,
}

impl Batch {
    fn push(&mut self, line: &[u8], time: Option<i64>, frame: u64) {
        let at = self.buf.len();
        self.buf.extend_from_slice(line);
        self.events.push((at..self.buf.len(), time));
        let first = self.frames.map_or(frame, |f| f.0);
        self.frames = Some((first, frame));
    }
    fn len(&self) -> usize {
        self.events.len()
    }
}

/// Queues a batch (waiting for room) and its answer, without waiting for
/// the commit here unless too many are outstanding. An empty batch is
/// nothing to do.
async fn submit(
    realm: &Arc<RealmHandle>,
    batch: Batch,
    pending: &Arc<Semaphore>,
    acks: &Arc<Acks>,
) {
    let Some(frames) = batch.frames else {
        return;
    };
    let Ok(permit) = pending.clone().acquire_owned().await else {
        return;
    };
    let (tx, rx) = oneshot::channel();
    let req = CommitRequest {
        buf: batch.buf,
        events: batch.events,
        reply: tx,
    };
    // A closed realm drops `tx`: the answer says "not committed".
    let _ = realm.submit_wait(req).await;
    acks.commit(Ack::Commit {
        frames,
        reply: rx,
        _permit: permit,
    })
    .await;
}
