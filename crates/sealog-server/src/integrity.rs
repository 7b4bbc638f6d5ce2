//! The background verifier: re-hashes every realm's records after start and
//! then at a configurable pace ([`crate::config::Integrity`]), and marks a
//! realm failed when they do not hash to the root of the realm's latest
//! signed checkpoint.
//!
//! Why the server needs it: on open, a journal is checked cheaply (frame
//! headers, the last checkpoint's signature, the signed high-water mark,
//! and the root rebuilt from stored tree hashes plus the newest records).
//! A record edited in place with its block re-encoded and every checksum
//! recomputed passes those checks, because the stored tree hashes still
//! describe the original records; only re-hashing every record finds it.
//! A failed realm takes no writes (so no checkpoint is signed over a
//! damaged history) and answers 503 on every endpoint; `/ready` names it and
//! `sealog_realm_failed{realm}` is 1. Queries report in
//! `x-sealog-verified-through` how many records the last pass matched.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sealog_journal::merkle::Frontier;
use sealog_journal::tree_file::TILE_HEIGHT;
use tokio_util::sync::CancellationToken;

use crate::realm::RealmHandle;
use crate::state::AppState;

/// Runs passes until `stop` is cancelled.
pub async fn run(state: Arc<AppState>, stop: CancellationToken) {
    let cfg = state.config.integrity.clone();
    if cfg.verify_interval_secs == 0 {
        return;
    }
    loop {
        for r in state.open_realms() {
            if stop.is_cancelled() {
                return;
            }
            if r.failure().is_some() {
                continue;
            }
            let (r2, stop2) = (r.clone(), stop.clone());
            let rate = cfg.verify_records_per_sec;
            let started = Instant::now();
            let res = tokio::task::spawn_blocking(move || verify_realm(&r2, rate, &stop2)).await;
            match res {
                Ok(Ok(Some(through))) => {
                    r.set_verified_through(through);
                    state.metrics.verified(r.name(), through);
                    tracing::debug!(realm = %r.name(), through, took_ms = started.elapsed().as_millis() as u64, "verifier pass matched");
                }
                Ok(Ok(None)) => {}
                Ok(Err(reason)) => {
                    state.metrics.realm_failed(r.name());
                    r.fail(reason);
                }
                Err(e) => tracing::error!(realm = %r.name(), cause = %e, "verifier task failed"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(cfg.verify_interval_secs)) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Re-hashes the records under the realm's latest checkpoint at the time
/// the pass starts and compares the root. `Ok(Some(size))`: matched
/// through `size`; `Ok(None)`: stopped early or nothing to check;
/// `Err(reason)`: the realm is damaged.
///
/// # Errors
/// The reason the realm fails.
pub fn verify_realm(
    realm: &RealmHandle,
    records_per_sec: u64,
    stop: &CancellationToken,
) -> Result<Option<u64>, String> {
    let journal = realm.journal();
    let Some((size, root)) = journal.read().ok().and_then(|j| {
        j.latest_checkpoint()
            .map(|c| (c.checkpoint.size, c.checkpoint.root))
    }) else {
        return Ok(None);
    };
    let started = Instant::now();
    let mut frontier = Frontier::new();
    let mut block = 0usize;
    let mut notes: Option<sealog_journal::retention::Notes> = None;
    while frontier.size() < size {
        if stop.is_cancelled() {
            return Ok(None);
        }
        let decoded = {
            let j = journal
                .read()
                .map_err(|_| "journal lock poisoned".to_string())?;
            if block >= j.blocks().len() {
                return Err(format!(
                    "the journal holds {} records but its checkpoint covers {size}",
                    frontier.size()
                ));
            }
            j.read_block(block)
        };
        let decoded = decoded.map_err(|e| format!("background verifier: {e}"))?;
        // Records removed by retention: only under a signed record naming them.
        let first = frontier.size();
        for run in decoded.runs() {
            let start = first + u64::from(run.start);
            let end = start + u64::from(run.len);
            if notes.as_ref().is_none_or(|n| n.get(run.id).is_none()) {
                let j = journal
                    .read()
                    .map_err(|_| "journal lock poisoned".to_string())?;
                notes = Some(
                    j.retention_records()
                        .map_err(|e| format!("background verifier: retention records: {e}"))?,
                );
            }
            let n = notes.as_ref().expect("read above");
            sealog_journal::verify::check_run(run, start, end, n).map_err(|reason| {
                format!("background verifier: seqs {start}..{end}: {reason} (run `sealog verify`)")
            })?;
        }
        let mut completed = Vec::new();
        for (h, leaf) in decoded.items() {
            if frontier.size() >= size {
                break;
            }
            let on_node = |height: u32, index: u64, hash: &sealog_journal::merkle::Hash| {
                if height >= TILE_HEIGHT {
                    completed.push((height, index, *hash));
                }
            };
            if h == 0 {
                frontier.push(leaf, on_node);
            } else {
                frontier
                    .push_subtree(h, leaf, on_node)
                    .map_err(|e| format!("background verifier: block {block}: {e}"))?;
            }
        }
        // Proofs are served from the stored subtree hashes: they must be
        // the records' own, or clients get proofs of another tree.
        if !completed.is_empty() {
            let j = journal
                .read()
                .map_err(|_| "journal lock poisoned".to_string())?;
            for (height, index, hash) in completed {
                match j.stored_node(height, index) {
                    Ok(Some(stored)) if stored != hash => {
                        let (lo, hi) = (index << height, (index + 1) << height);
                        return Err(format!(
                            "background verifier: records {lo}..{hi} do not hash to the stored tree hash of that range: a record or tree.hashes was altered (run `sealog verify` to find which)"
                        ));
                    }
                    Ok(_) => {}
                    Err(e) => return Err(format!("background verifier: {e}")),
                }
            }
        }
        block += 1;
        if records_per_sec > 0 {
            let due = Duration::from_secs_f64(frontier.size() as f64 / records_per_sec as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait.min(Duration::from_secs(1)));
            }
        }
    }
    if frontier.root() != root {
        return Err(format!(
            "background verifier: records 0..{size} do not hash to the root of the checkpoint the realm signed for size {size}; a record was altered on disk (run `sealog verify` to find the first bad seq)"
        ));
    }
    Ok(Some(size))
}
