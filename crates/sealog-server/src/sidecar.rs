//! The sidecar TCP listener (Mojaloop wire format) with receipts.
//!
//! Per connection: frames are read and turned into events; every frame that
//! is decodable right now (up to `batch_records`) goes into one commit
//! request. The request waits for room in the realm's queue rather than
//! being refused, so a sender faster than the commit path stops being read
//! and TCP flow control slows it; at most [`MAX_PENDING_BATCHES`] commits per
//! connection are outstanding. After each commit an ack frame carries the
//! receipt. Acks go through a bounded queue: a client that never reads
//! them fills it, and from then on acks (never records) are dropped and
//! counted.
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

/// Sends acks without ever blocking the reader; a full queue drops the
/// ack (never a record) and counts it at once.
struct Acks {
    tx: mpsc::Sender<Vec<u8>>,
    dropped: Arc<AtomicU64>,
    metrics: Arc<crate::metrics::Metrics>,
    realm: std::sync::Mutex<String>,
}

impl Acks {
    fn send(&self, frame: Vec<u8>) {
        if self.tx.try_send(frame).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            let realm = self.realm.lock().map(|r| r.clone()).unwrap_or_default();
            self.metrics.refused(&realm, "ack_dropped", 1);
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
    let acks = Arc::new(Acks {
        tx,
        dropped: dropped.clone(),
        metrics: state.metrics.clone(),
        realm: std::sync::Mutex::new(cfg.realm.clone().unwrap_or_default()),
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

    let mut decoder = FrameDecoder::new(cfg.max_frame_bytes);
    let mut buf = BytesMut::with_capacity(256 * 1024);
    let mut frame_no = 0u64;
    let mut realm: Option<Arc<RealmHandle>> = match &cfg.realm {
        Some(name) => match state.realm(name) {
            Ok(r) => Some(r),
            Err(_) => {
                acks.send(error_frame(
                    &format!("listener's realm {name:?} does not exist"),
                    0,
                ));
                drop(acks);
                let _ = writer.await;
                return Ok(());
            }
        },
        None => None,
    };
    let pending = Arc::new(Semaphore::new(MAX_PENDING_BATCHES as usize));
    let mut batch = Batch::default();
    let mut refusals = Refusals::new("sidecar", peer);
    let mut closing = false;
    'conn: loop {
        let n = tokio::select! {
            _ = stop.cancelled() => 0,
            r = rd.read_buf(&mut buf) => r.unwrap_or(0),
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
                    acks.send(error_frame(&format!("{e}; closing"), frame_no));
                    closing = true;
                    break 'conn;
                }
            };
            frame_no += 1;
            let Some(r) = realm.as_ref() else {
                // First frame of an unbound listener: the hello.
                match hello_realm(state, &frame) {
                    Ok(r) => {
                        if let Ok(mut label) = acks.realm.lock() {
                            *label = r.name().to_string();
                        }
                        realm = Some(r);
                        continue;
                    }
                    Err(reason) => {
                        state.metrics.refused("", "bad_hello", 1);
                        acks.send(error_frame(&reason, frame_no));
                        closing = true;
                        break 'conn;
                    }
                }
            };
            match to_event(&frame, cfg.service.as_deref()) {
                Ok((line, time)) => batch.push(&line, time),
                Err(e) => {
                    state.metrics.refused(r.name(), "bad_message", 1);
                    refusals.note("bad_message");
                    acks.send(error_frame(&e.to_string(), frame_no));
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
            if !batch.is_empty() {
                submit(r, std::mem::take(&mut batch), &pending, &acks).await;
            }
        }
    }
    if let Some(r) = realm.as_ref() {
        // The connection's last refusals, whatever the interval.
        if let Some(ev) = refusals.flush() {
            crate::refusal::record(r, ev).await;
        }
        if !batch.is_empty() {
            submit(r, std::mem::take(&mut batch), &pending, &acks).await;
        }
    }
    // Wait for every outstanding commit so its ack is queued before closing.
    let _ = pending.acquire_many(MAX_PENDING_BATCHES).await;
    let lost = dropped.load(Ordering::Relaxed);
    if lost > 0 {
        tracing::info!(
            acks_dropped = lost,
            "sidecar client did not read its acks; some were dropped"
        );
    }
    drop(acks);
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
    let _ = closing;
    Ok(())
}

fn hello_realm(state: &AppState, frame: &[u8]) -> Result<Arc<RealmHandle>, String> {
    let token = parse_hello(frame).ok_or_else(|| {
        "the first frame must be a hello {\"token\": \"<write token>\"}; closing".to_string()
    })?;
    let info = state
        .tokens
        .read()
        .map_err(|_| "internal error".to_string())?
        .find(&token)
        .cloned()
        .ok_or_else(|| "token is not valid; closing".to_string())?;
    if info.scope != Scope::Write {
        return Err(format!("token scope {} cannot write; closing", info.scope));
    }
    state.realm(&info.realm).map_err(|e| e.to_string())
}

/// Events gathered from one read.
#[derive(Default)]
struct Batch {
    buf: Vec<u8>,
    events: Vec<(std::ops::Range<usize>, Option<i64>)>,
}

impl Batch {
    fn push(&mut self, line: &[u8], time: Option<i64>) {
        let at = self.buf.len();
        self.buf.extend_from_slice(line);
        self.events.push((at..self.buf.len(), time));
    }
    fn len(&self) -> usize {
        self.events.len()
    }
    fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// Queues a batch (waiting for room) and acks it when durable, without
/// waiting for the commit here unless too many are outstanding.
async fn submit(
    realm: &Arc<RealmHandle>,
    batch: Batch,
    pending: &Arc<Semaphore>,
    acks: &Arc<Acks>,
) {
    let Ok(permit) = pending.clone().acquire_owned().await else {
        return;
    };
    let (tx, rx) = oneshot::channel();
    let req = CommitRequest {
        buf: batch.buf,
        events: batch.events,
        reply: tx,
    };
    if realm.submit_wait(req).await.is_err() {
        acks.send(error_frame("server is shutting down; not committed", 0));
        return;
    }
    let acks = acks.clone();
    tokio::spawn(async move {
        let frame = match rx.await {
            Ok(Ok(receipt)) => {
                let mut v = serde_json::to_value(&receipt).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("type".into(), "receipt".into());
                }
                encode(v.to_string().as_bytes())
            }
            Ok(Err(e)) => error_frame(&format!("commit failed, not acknowledged: {e}"), 0),
            Err(_) => error_frame("server is shutting down; not committed", 0),
        };
        acks.send(frame);
        drop(permit);
    });
}
