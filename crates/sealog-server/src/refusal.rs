//! Refusals as records: what a listener refused is written, rate-limited,
//! into the realm's own log, so the evidence of what was *not* accepted is
//! as durable and verifiable as what was.
//!
//! One [`Refusals`] per connection (or UDP socket) counts refusals by
//! reason and yields at most one event per second, plus a last one when the
//! connection ends:
//!
//! ```json
//! {"source":"sealog","event":"refused","listener":"sidecar","peer":"127.0.0.1:50612","reasons":{"bad_message":2}}
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Commits a refusal event on its own, so a client's receipts count only
/// its own records. Waits for room in the queue like the listener's data.
pub async fn record(realm: &crate::realm::RealmHandle, event: Vec<u8>) {
    let (tx, _rx) = tokio::sync::oneshot::channel();
    let len = event.len();
    let req = crate::realm::CommitRequest {
        buf: event,
        events: vec![(0..len, None)],
        reply: tx,
    };
    if realm.submit_wait(req).await.is_err() {
        tracing::warn!(realm = %realm.name(), "refusal event not recorded: realm closing");
    }
}

/// Least time between two refusal events from one connection.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Refusals of one connection, waiting to be recorded.
#[derive(Debug)]
pub struct Refusals {
    listener: &'static str,
    peer: String,
    last: Option<Instant>,
    pending: BTreeMap<&'static str, u64>,
}

impl Refusals {
    /// Refusals for `listener` (e.g. `sidecar`) and a peer address.
    pub fn new(listener: &'static str, peer: impl ToString) -> Self {
        Self {
            listener,
            peer: peer.to_string(),
            last: None,
            pending: BTreeMap::new(),
        }
    }

    /// Counts one refusal.
    pub fn note(&mut self, reason: &'static str) {
        *self.pending.entry(reason).or_default() += 1;
    }

    /// The event to record now, if any are waiting and the last one was at
    /// least [`MIN_INTERVAL`] ago.
    pub fn due(&mut self) -> Option<Vec<u8>> {
        if self.pending.is_empty() || self.last.is_some_and(|t| t.elapsed() < MIN_INTERVAL) {
            return None;
        }
        self.flush()
    }

    /// The event for everything waiting, regardless of the interval.
    pub fn flush(&mut self) -> Option<Vec<u8>> {
        if self.pending.is_empty() {
            return None;
        }
        self.last = Some(Instant::now());
        let reasons: serde_json::Map<String, serde_json::Value> = std::mem::take(&mut self.pending)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into()))
            .collect();
        let ev = serde_json::json!({
            "source": "sealog",
            "event": "refused",
            "listener": self.listener,
            "peer": self.peer,
            "reasons": reasons,
        });
        Some(ev.to_string().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limited_and_aggregated() {
        let mut r = Refusals::new("sidecar", "127.0.0.1:1");
        assert_eq!(r.due(), None);
        r.note("bad_message");
        r.note("bad_message");
        let ev: serde_json::Value =
            serde_json::from_slice(&r.due().expect("first is due")).expect("json");
        assert_eq!(ev["reasons"]["bad_message"], 2);
        r.note("frame_too_large");
        assert_eq!(r.due(), None, "within the interval");
        let ev: serde_json::Value =
            serde_json::from_slice(&r.flush().expect("flush")).expect("json");
        assert_eq!(ev["reasons"]["frame_too_large"], 1);
        assert!(sealog_event::validate(&r.flush().unwrap_or_else(|| b"{}".to_vec())).is_ok());
    }
}
