//! Prometheus metrics: records and bytes committed, refusals by reason,
//! commit latency, labelled per realm up to a cap (the rest are `other`).

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The recorder is process-global; the first server installs it.
static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    handle: Option<PrometheusHandle>,
    realms: Mutex<HashSet<String>>,
    cap: usize,
}

impl Metrics {
    /// Metrics labelling at most `cap` realms by name.
    pub fn new(cap: usize) -> Self {
        let handle = HANDLE
            .get_or_init(|| {
                let builder = PrometheusBuilder::new()
                    .set_buckets_for_metric(
                        Matcher::Full("sealog_commit_seconds".into()),
                        &[
                            0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        ],
                    )
                    .ok()?;
                match builder.install_recorder() {
                    Ok(h) => Some(h),
                    Err(e) => {
                        tracing::warn!(cause = %e, "metrics recorder not installed");
                        None
                    }
                }
            })
            .clone();
        Self {
            handle,
            realms: Mutex::new(HashSet::new()),
            cap,
        }
    }

    /// The realm label metrics use: the realm, or `other` past the cap.
    pub fn label(&self, realm: &str) -> String {
        let Ok(mut seen) = self.realms.lock() else {
            return "other".into();
        };
        if seen.contains(realm) {
            return realm.to_string();
        }
        if seen.len() < self.cap {
            seen.insert(realm.to_string());
            return realm.to_string();
        }
        "other".into()
    }

    /// Records a durable commit.
    pub fn committed(&self, realm: &str, records: u64, bytes: u64, took: Duration) {
        let realm = self.label(realm);
        metrics::counter!("sealog_ingested_records_total", "realm" => realm.clone())
            .increment(records);
        metrics::counter!("sealog_ingested_bytes_total", "realm" => realm.clone()).increment(bytes);
        metrics::counter!("sealog_commits_total", "realm" => realm.clone()).increment(1);
        metrics::histogram!("sealog_commit_seconds", "realm" => realm).record(took.as_secs_f64());
    }

    /// Records refused requests or records.
    pub fn refused(&self, realm: &str, reason: &'static str, n: u64) {
        let realm = self.label(realm);
        metrics::counter!("sealog_refused_total", "realm" => realm, "reason" => reason)
            .increment(n);
    }

    /// Marks a realm failed (it could not open, or failed an integrity
    /// check): `sealog_realm_failed{realm} 1`.
    pub fn realm_failed(&self, realm: &str) {
        let realm = self.label(realm);
        metrics::gauge!("sealog_realm_failed", "realm" => realm).set(1.0);
    }

    /// How many realms are open, not opened yet (after a start, until the
    /// background opener reaches them) and failed:
    /// `sealog_realms{state="open|unopened|failed"}`.
    pub fn realm_counts(&self, open: usize, unopened: usize, failed: usize) {
        for (state, n) in [("open", open), ("unopened", unopened), ("failed", failed)] {
            metrics::gauge!("sealog_realms", "state" => state).set(n as f64);
        }
    }

    /// Records a verifier pass: records re-hashed and matched, and the pass.
    pub fn verified(&self, realm: &str, through: u64) {
        let realm = self.label(realm);
        metrics::gauge!("sealog_realm_verified_through", "realm" => realm.clone())
            .set(through as f64);
        metrics::counter!("sealog_verifier_passes_total", "realm" => realm).increment(1);
    }

    /// How far a realm's LogHarbour block summaries reach:
    /// `sealog_lh_summarized_through{realm}` (records).
    pub fn summarized(&self, realm: &str, through: u64) {
        let realm = self.label(realm);
        metrics::gauge!("sealog_lh_summarized_through", "realm" => realm).set(through as f64);
    }

    /// How many drains are in `state`: `sealog_drains{state}`.
    pub fn drains(&self, state: &'static str, n: usize) {
        metrics::gauge!("sealog_drains", "state" => state).set(n as f64);
    }

    /// Records delivered by a realm's drains, and UDP packets cut.
    pub fn drain_delivered(&self, realm: &str, records: u64, truncated: u64) {
        let realm = self.label(realm);
        metrics::counter!("sealog_drain_delivered_records_total", "realm" => realm.clone())
            .increment(records);
        if truncated > 0 {
            metrics::counter!("sealog_drain_truncated_total", "realm" => realm)
                .increment(truncated);
        }
    }

    /// A failed delivery attempt of one of a realm's drains.
    pub fn drain_retry(&self, realm: &str) {
        let realm = self.label(realm);
        metrics::counter!("sealog_drain_failures_total", "realm" => realm).increment(1);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.handle
            .as_ref()
            .map(PrometheusHandle::render)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realm_labels_are_capped() {
        let m = Metrics::new(2);
        assert_eq!(m.label("alpha"), "alpha");
        assert_eq!(m.label("beta"), "beta");
        assert_eq!(m.label("gamma"), "other", "the third realm is past the cap");
        assert_eq!(
            m.label("alpha"),
            "alpha",
            "realms already labelled keep their label"
        );
        m.committed("gamma", 3, 30, Duration::from_millis(1));
        let text = m.render();
        if !text.is_empty() {
            // The recorder is process-global: another test may own it; when
            // this one does, the capped realm is counted under `other`.
            assert!(!text.contains("realm=\"gamma\""), "{text}");
        }
    }
}
