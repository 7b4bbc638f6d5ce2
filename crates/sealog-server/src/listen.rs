//! The accept loop every TCP listener shares: a connection permit is taken
//! *before* `accept` (over the limit, clients wait in the kernel's backlog
//! rather than costing a task each), each connection runs on its own
//! tracked task, and on shutdown the loop stops accepting and waits for the
//! connections to finish. An accept error (out of file descriptors, most
//! often) backs off, doubling from 5 ms to 1 s, instead of spinning.
//!
//! [`serve_http`] runs the HTTP API on that loop with hyper's own
//! connection settings: a header timeout (which also closes a kept-alive
//! connection that starts no next request) and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// First and longest pause after a failed `accept`.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(5), Duration::from_secs(1));

/// Accepts on `listener` until `stop`, running `handle` for each connection
/// with at most `max_connections` at once. `what` names the listener in logs.
pub async fn serve_connections<F, Fut>(
    listener: TcpListener,
    max_connections: usize,
    stop: CancellationToken,
    what: &'static str,
    handle: F,
) where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let conns = Arc::new(Semaphore::new(max_connections.max(1)));
    let tracker = TaskTracker::new();
    let mut backoff = ACCEPT_BACKOFF.0;
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => break,
            p = conns.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(listener = what, cause = %e, pause_ms = backoff.as_millis() as u64, "accept failed; pausing");
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                    continue;
                }
            },
        };
        backoff = ACCEPT_BACKOFF.0;
        let conn = handle(stream, peer);
        tracker.spawn(async move {
            conn.await;
            drop(permit);
        });
    }
    tracker.close();
    tracker.wait().await;
}

/// Longest a connection may take to finish once shutdown began (a body
/// still arriving, a response still being read).
const DRAIN: Duration = Duration::from_secs(30);

/// Serves `app` over HTTP/1.1 on `listener` until `stop`.
pub async fn serve_http(
    listener: TcpListener,
    app: axum::Router,
    limits: &crate::config::Limits,
    stop: CancellationToken,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let header_timeout = Duration::from_secs(limits.header_timeout_secs.max(1));
    let conn_stop = stop.clone();
    serve_connections(
        listener,
        limits.max_http_connections,
        stop,
        "http",
        move |stream, _peer| {
            let app = app.clone();
            let stop = conn_stop.clone();
            async move {
                let _ = stream.set_nodelay(true);
                let svc = hyper::service::service_fn(move |req| {
                    use tower::ServiceExt;
                    app.clone().oneshot(req)
                });
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .keep_alive(true);
                let conn = builder.serve_connection(TokioIo::new(stream), svc);
                tokio::pin!(conn);
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::debug!(cause = %e, "http connection ended");
                        }
                    }
                    _ = stop.cancelled() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(DRAIN, conn).await;
                    }
                }
            }
        },
    )
    .await;
}

/// Raises this process's soft open-file limit to its hard limit (a
/// connection is a file descriptor; 1,024 is a common default) and returns
/// the limit now in force.
pub fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current < lim.maximum {
        lim.current = lim.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, lim) {
            tracing::warn!(cause = %e, "could not raise the open-file limit");
        }
    }
    getrlimit(Resource::Nofile).current
}
