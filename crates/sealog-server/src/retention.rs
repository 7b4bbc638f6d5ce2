//! Verifiable retention runs (LogHarbour's cleanup tool, done without
//! breaking the proof): `POST /v1/admin/retention`, the scheduled
//! `[[logharbour.retention]]` policies, and `sealog retention` on a data
//! directory all come here. The journal does the work
//! ([`sealog_journal::retention`]); this module turns the operator's
//! `--days --app --type --priority` into a policy and the outcome into a
//! report.

use std::sync::Arc;
use std::time::Duration;

use sealog_journal::retention::{Outcome, Policy};
use sealog_journal::{JournalError, LogStore};
use sealog_query::logharbour::{LhType, Pri, RetentionFilter};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::realm::SharedLog;

const NS_PER_DAY: i64 = 86_400 * 1_000_000_000;
/// Ranges listed in a report (the record holds them all).
const REPORT_RANGES: usize = 1000;

/// What to remove: records older than `days`, optionally only those of one
/// app, type or priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Age limit in days (≥ 1).
    pub days: u32,
    /// LogHarbour filters.
    pub filter: RetentionFilter,
}

impl Spec {
    /// Builds a spec from the operator's words.
    ///
    /// # Errors
    /// A message naming the bad value.
    pub fn new(
        days: u32,
        app: Option<&str>,
        typ: Option<&str>,
        priority: Option<&str>,
    ) -> Result<Self, String> {
        if days == 0 {
            return Err("days must be at least 1".into());
        }
        if i64::from(days).checked_mul(NS_PER_DAY).is_none() || days > 100_000 {
            return Err(format!("days {days} is out of range (at most 100000)"));
        }
        let typ = typ
            .map(|t| {
                LhType::parse(t).ok_or_else(|| {
                    format!(
                        "type {t:?} is not a LogHarbour type (A, C, D or activity, change, debug)"
                    )
                })
            })
            .transpose()?;
        let pri = priority
            .map(|p| {
                Pri::parse(p).ok_or_else(|| {
                    format!("priority {p:?} is not a LogHarbour priority (Debug2, Debug1, Debug0, Info, Warn, Err, Crit, Sec)")
                })
            })
            .transpose()?;
        if app.is_some_and(str::is_empty) {
            return Err("app is empty".into());
        }
        Ok(Self {
            days,
            filter: RetentionFilter {
                app: app.map(str::to_string),
                typ,
                pri,
            },
        })
    }

    /// `days=N` and the filters, as the retention record states them.
    pub fn description(&self) -> String {
        let f = self.filter.describe();
        if f.is_empty() {
            format!("days={}", self.days)
        } else {
            format!("days={} {f}", self.days)
        }
    }

    /// Records whose time is before this are old enough.
    pub fn cutoff(&self, now_ns: i64) -> i64 {
        now_ns.saturating_sub(i64::from(self.days) * NS_PER_DAY)
    }
}

/// What a run did, as the API and the CLI print it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Report {
    /// The realm.
    pub realm: String,
    /// True when nothing was written.
    pub dry_run: bool,
    /// The policy as recorded.
    pub policy: String,
    /// Records older than this were eligible (RFC 3339).
    pub cutoff: String,
    /// Records removed (or that would be).
    pub removed: u64,
    /// Their seqs as half-open `[start, end)` ranges (the first 1,000).
    pub ranges: Vec<[u64; 2]>,
    /// How many ranges in all.
    pub ranges_total: usize,
    /// The retention record's id (none on a dry run or when nothing
    /// matched).
    pub record_id: Option<u64>,
    /// The signed retention record.
    pub record: Option<String>,
    /// Journal bytes before.
    pub bytes_before: u64,
    /// Journal bytes after.
    pub bytes_after: u64,
    /// Segment files rewritten.
    pub segments_rewritten: usize,
}

impl Report {
    fn new(realm: &str, spec: &Spec, now_ns: i64, dry_run: bool, o: Outcome) -> Self {
        Self {
            realm: realm.to_string(),
            dry_run,
            policy: spec.description(),
            cutoff: sealog_event::format_rfc3339_nanos(spec.cutoff(now_ns)),
            removed: o.removed,
            ranges_total: o.ranges.len(),
            ranges: o
                .ranges
                .iter()
                .take(REPORT_RANGES)
                .map(|(a, b)| [*a, *b])
                .collect(),
            record_id: o.record.as_ref().map(|r| r.record.id),
            record: o.record.map(|r| r.text),
            bytes_before: o.bytes_before,
            bytes_after: o.bytes_after,
            segments_rewritten: o.segments_rewritten,
        }
    }
}

/// Runs `spec` on an open store (the CLI's path: it holds the journal).
///
/// # Errors
/// The journal's error.
pub fn run(
    store: &mut dyn LogStore,
    spec: &Spec,
    now_ns: i64,
    dry_run: bool,
) -> Result<Report, JournalError> {
    let filter = spec.filter.clone();
    let select = move |line: &[u8]| filter.matches(line);
    let policy = Policy {
        description: spec.description(),
        cutoff_ns: spec.cutoff(now_ns),
        select: &select,
    };
    let realm = store.realm().to_string();
    let outcome = store.retain(&policy, now_ns, dry_run)?;
    Ok(Report::new(&realm, spec, now_ns, dry_run, outcome))
}

/// Runs `spec` on a realm the server has open. The journal's write lock is
/// taken between commits: while one is staged (its fsync in progress)
/// the run waits and tries again, for up to `patience`.
///
/// # Errors
/// The journal's error; a lock poisoned by a panic.
pub fn run_shared(
    journal: &SharedLog,
    spec: &Spec,
    now_ns: i64,
    dry_run: bool,
    patience: Duration,
) -> Result<Report, JournalError> {
    let started = std::time::Instant::now();
    let mut wait = Duration::from_millis(1);
    loop {
        let mut j = journal
            .write()
            .map_err(|_| JournalError::Batch("journal lock poisoned".into()))?;
        match run(&mut **j, spec, now_ns, dry_run) {
            Err(JournalError::Batch(m))
                if m.contains("commit is in progress") && started.elapsed() < patience =>
            {
                drop(j);
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// Runs the scheduled policies every `interval` until `stop`: each
/// policy's realm (`*` = every realm) in turn, on the blocking pool.
pub async fn schedule(
    state: Arc<crate::state::AppState>,
    policies: Vec<crate::config::RetentionPolicy>,
    interval: Duration,
    stop: CancellationToken,
) {
    let specs: Vec<(String, Spec)> = policies
        .iter()
        .filter_map(|p| match p.spec() {
            Ok(s) => Some((p.realm.clone(), s)),
            Err(e) => {
                tracing::error!(realm = %p.realm, cause = %e, "retention policy ignored");
                None
            }
        })
        .collect();
    if specs.is_empty() {
        return;
    }
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let state = state.clone();
        let specs = specs.clone();
        let stop2 = stop.clone();
        let done = tokio::task::spawn_blocking(move || {
            for (realm, spec) in &specs {
                let names = if realm == "*" {
                    state.realm_names()
                } else {
                    vec![realm.clone()]
                };
                for name in names {
                    if stop2.is_cancelled() {
                        return;
                    }
                    let handle = match state.realm(&name) {
                        Ok(h) => h,
                        Err(e) => {
                            tracing::warn!(realm = %name, cause = %e, "scheduled retention: realm not open");
                            continue;
                        }
                    };
                    let now = sealog_event::now_ns();
                    match run_shared(handle.journal(), spec, now, false, Duration::from_secs(30)) {
                        Ok(r) if r.removed > 0 => tracing::info!(
                            realm = %name,
                            policy = %r.policy,
                            removed = r.removed,
                            record = r.record_id,
                            "scheduled retention ran"
                        ),
                        Ok(_) => {}
                        Err(e) => tracing::error!(realm = %name, cause = %e, "scheduled retention failed"),
                    }
                }
            }
        })
        .await;
        if let Err(e) = done {
            tracing::error!(cause = %e, "scheduled retention task failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_check_their_words() {
        let s = Spec::new(30, Some("shop"), Some("A"), Some("Info")).expect("valid");
        assert_eq!(s.description(), "days=30 app=shop type=A priority=Info");
        assert_eq!(s.cutoff(40 * NS_PER_DAY), 10 * NS_PER_DAY);
        assert!(Spec::new(0, None, None, None)
            .expect_err("refused")
            .contains("at least 1"));
        assert!(Spec::new(1, None, Some("X"), None)
            .expect_err("refused")
            .contains("not a LogHarbour type"));
        assert!(Spec::new(1, None, None, Some("Loud"))
            .expect_err("refused")
            .contains("not a LogHarbour priority"));
        assert!(Spec::new(1, Some(""), None, None).is_err());
        assert_eq!(
            Spec::new(7, None, None, None).expect("valid").description(),
            "days=7"
        );
        assert_eq!(
            Spec::new(7, Some("shop type=A"), None, None)
                .expect("valid")
                .description(),
            r#"days=7 app="shop type=A""#
        );
    }
}
