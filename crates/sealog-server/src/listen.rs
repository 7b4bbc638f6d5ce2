//! The accept loop every TCP listener shares: a connection permit is taken
//! *before* `accept` (over the limit, clients wait in the kernel's backlog
//! rather than costing a task each), each connection runs on its own
//! tracked task, and on shutdown the loop stops accepting and waits for the
//! connections to finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
                    tracing::warn!(listener = what, cause = %e, "accept failed");
                    continue;
                }
            },
        };
        let conn = handle(stream, peer);
        tracker.spawn(async move {
            conn.await;
            drop(permit);
        });
    }
    tracker.close();
    tracker.wait().await;
}
