//! The background summarizer: makes LogHarbour's per-block `GetSet`
//! summaries ([`sealog_query::logharbour::BlockFacets`]) for newly
//! committed blocks, so a count over a whole realm is answered from
//! summaries instead of reading every block on the request that first
//! needs them (12 s over 10,000,000 records on 2 cores; 0.05 s from
//! summaries).
//!
//! Which realms: those named in `[logharbour] summarize_realms` (`*` for
//! every one), and any realm that has already been counted once (it has a
//! `lh.facets` file): a realm nobody asks for counts costs nothing. The
//! pace is capped by `summarize_records_per_sec` (default 200,000, about a
//! fifth of a core; 0 for no cap), so the summarizer never competes with
//! ingest for more than that. A pass runs every two seconds and starts
//! where the last one stopped; a block retention rewrites afterwards is
//! summarized again by the count that needs it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sealog_query::logharbour::{BlockFacets, FacetStore};
use tokio_util::sync::CancellationToken;

use crate::realm::RealmHandle;
use crate::state::AppState;

/// Time between passes.
const PASS_EVERY: Duration = Duration::from_secs(2);

/// Runs passes until `stop` is cancelled.
pub async fn run(state: Arc<AppState>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(PASS_EVERY) => {}
        }
        let (st, stop2) = (state.clone(), stop.clone());
        if let Err(e) = tokio::task::spawn_blocking(move || pass(&st, &stop2)).await {
            tracing::error!(cause = %e, "block summarizer task failed");
        }
    }
}

/// One pass over every realm that wants summaries.
pub fn pass(state: &AppState, stop: &CancellationToken) {
    let cfg = &state.config.logharbour;
    let every = cfg.summarize_realms.iter().any(|r| r == "*");
    for r in state.open_realms() {
        if stop.is_cancelled() {
            return;
        }
        let named = every || cfg.summarize_realms.iter().any(|n| n == r.name());
        if r.failure().is_some() || !(named || r.facets.has_file()) {
            continue;
        }
        let rate = cfg.summarize_records_per_sec.unwrap_or(200_000);
        match summarize(&r, rate, stop) {
            Ok(Some(through)) => state.metrics.summarized(r.name(), through),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(realm = %r.name(), cause = %e, "block summaries not made; counts read the blocks")
            }
        }
    }
}

/// Summarizes the realm's whole blocks not yet looked at, at most `rate`
/// records a second (0: no cap). Returns the seq the summaries now reach.
///
/// # Errors
/// A block that cannot be read (the verifier reports damage).
pub fn summarize(
    realm: &RealmHandle,
    rate: u64,
    stop: &CancellationToken,
) -> Result<Option<u64>, sealog_journal::JournalError> {
    let journal = realm.journal();
    let facets = &realm.facets;
    let from = facets.next_block.load(Ordering::Relaxed);
    // Only the blocks not looked at yet are copied out of the lock: a pass
    // over a realm with nothing new costs one comparison.
    let (blocks, size) = match journal.read() {
        Ok(j) if from < j.blocks().len() => (j.blocks()[from..].to_vec(), j.size()),
        // A journal cut back by recovery: go on from its new end.
        Ok(j) if from > j.blocks().len() => {
            facets.next_block.store(j.blocks().len(), Ordering::Relaxed);
            return Ok(None);
        }
        _ => return Ok(None),
    };
    let started = Instant::now();
    let mut done = 0u64;
    let mut through = None;
    for (i, m) in blocks.iter().enumerate().map(|(k, m)| (from + k, m)) {
        if stop.is_cancelled() {
            break;
        }
        let end = m.first_seq + u64::from(m.count);
        if end > size {
            break;
        }
        if facets.get(m).is_none() {
            let b = match journal.read() {
                Ok(j) => j.read_block(i)?,
                Err(_) => return Ok(through),
            };
            facets.put(m, BlockFacets::of(&b, m.count as usize));
            done += u64::from(m.count);
            if rate > 0 {
                let due = Duration::from_secs_f64(done as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait.min(Duration::from_secs(1)));
                }
            }
        }
        facets.next_block.store(i + 1, Ordering::Relaxed);
        through = Some(end);
    }
    if done > 0 {
        tracing::debug!(realm = %realm.name(), records = done, took_ms = started.elapsed().as_millis() as u64, "block summaries made");
    }
    Ok(through)
}
