//! Counts over time and the top values of fields: the console's histogram
//! and facets, computed in one scan of the records a [`Filter`] matches.
//!
//! The scan runs newest first and stops after `sample` matches, so its
//! cost is bounded whatever the realm's size; [`Stats::sampled`] says when
//! it stopped early and [`Stats::scanned_from_seq`] how far back it got
//! (as Kibana's sampled aggregations say so).

use std::collections::{BTreeMap, HashMap};

use sealog_journal::block::DecodedBlock;
use sealog_journal::{BlockMeta, JournalError};
use serde::Serialize;
use serde_json::Value;

use crate::{scan, Filter, Order, QueryError, Scan};

/// Most histogram buckets.
pub const MAX_BUCKETS: u32 = 500;
/// Most facet fields in one request.
pub const MAX_FACETS: usize = 8;
/// Most values listed per facet.
pub const MAX_TOP: usize = 50;
/// Most records one request counts.
pub const MAX_SAMPLE: u64 = 1_000_000;
/// Longest facet value kept whole (longer ones are cut, marked with "…").
const MAX_VALUE_CHARS: usize = 200;
/// Distinct values counted per facet; values first seen after that many
/// are counted in `other` (and the facet says `capped`), so a field with a
/// value per record costs bounded memory.
pub const MAX_DISTINCT: usize = 10_000;

/// What to count.
#[derive(Debug, Clone)]
pub struct StatsRequest {
    /// Histogram buckets over the time range.
    pub buckets: u32,
    /// Fields to list the top values of (dots descend into objects).
    pub facets: Vec<String>,
    /// Values listed per facet.
    pub top: usize,
    /// Stop after this many matching records (newest first).
    pub sample: u64,
    /// The clock, ns since the epoch, for a range open at its end.
    pub now_ns: i64,
}

/// One facet: its most frequent values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Facet {
    /// The top values, most frequent first (ties by value).
    pub top: Vec<FacetValue>,
    /// Counted records with another value.
    pub other: u64,
    /// Counted records without the field (or with an object or array there).
    pub missing: u64,
    /// True when the field had more than [`MAX_DISTINCT`] values: the top
    /// is then of the values seen first, and may miss a later frequent one.
    pub capped: bool,
}

/// A value and how many counted records have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FacetValue {
    /// The value as the query API's `where` compares it.
    pub value: String,
    /// Records with it.
    pub count: u64,
}

/// The counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Records counted.
    pub matched: u64,
    /// True when the sample cap stopped the scan before the oldest record.
    pub sampled: bool,
    /// The oldest seq the scan reached.
    pub scanned_from_seq: u64,
    /// The histogram's start, ns since the epoch.
    pub from_ns: i64,
    /// Each bucket's width, ns.
    pub bucket_ns: i64,
    /// Records per bucket, oldest bucket first.
    pub counts: Vec<u64>,
    /// Counted records with no usable time (not in any bucket).
    pub untimed: u64,
    /// The facets, by field.
    pub facets: BTreeMap<String, Facet>,
}

fn lookup<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(v, |cur, k| cur.get(k))
}

/// A value as `where` compares it; objects and arrays have none.
fn facet_text(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Array(_) | Value::Object(_) => return None,
    };
    Some(if s.chars().count() > MAX_VALUE_CHARS {
        s.chars().take(MAX_VALUE_CHARS).chain(['…']).collect()
    } else {
        s
    })
}

/// Counts what `filter` matches among seqs below `size`, newest first, up to
/// `req.sample` records.
///
/// # Errors
/// Whatever reading a block fails with.
pub fn stats(
    blocks: &[BlockMeta],
    read_block: &(dyn Fn(usize) -> Result<DecodedBlock, JournalError> + Sync),
    filter: &Filter,
    req: &StatsRequest,
    size: u64,
) -> Result<Stats, QueryError> {
    let mut times: Vec<i64> = Vec::new();
    let mut untimed = 0u64;
    let mut values: Vec<HashMap<String, u64>> = vec![HashMap::new(); req.facets.len()];
    let mut missing = vec![0u64; req.facets.len()];
    let mut overflow = vec![0u64; req.facets.len()];
    let r = scan(
        blocks,
        read_block,
        filter,
        Scan {
            order: Order::Newest,
            limit: Some(req.sample.clamp(1, MAX_SAMPLE)),
            max_bytes: None,
            seq_from: 0,
            seq_to: size,
        },
        &mut |_, line| {
            match sealog_event::leaf_time(line) {
                Some(t) => times.push(t),
                None => untimed += 1,
            }
            if req.facets.is_empty() {
                return;
            }
            let v = serde_json::from_slice::<Value>(line).unwrap_or(Value::Null);
            for (i, path) in req.facets.iter().enumerate() {
                match lookup(&v, path).and_then(facet_text) {
                    Some(s) => {
                        if let Some(n) = values[i].get_mut(&s) {
                            *n += 1;
                        } else if values[i].len() < MAX_DISTINCT {
                            values[i].insert(s, 1);
                        } else {
                            overflow[i] += 1;
                        }
                    }
                    None => missing[i] += 1,
                }
            }
        },
    )?;
    let lo = filter
        .from_ns()
        .or_else(|| times.iter().min().copied())
        .unwrap_or(req.now_ns);
    let hi = match filter.to_ns() {
        Some(t) => t,
        None => {
            let newest = times.iter().max().map_or(lo, |t| t.saturating_add(1));
            if filter.from_ns().is_some() {
                newest.max(req.now_ns)
            } else {
                newest
            }
        }
    };
    let buckets = req.buckets.clamp(1, MAX_BUCKETS);
    let span = hi.saturating_sub(lo).max(1);
    let b = i64::from(buckets);
    let bucket_ns = (span.saturating_add(b - 1) / b).max(1);
    let mut counts = vec![0u64; buckets as usize];
    for t in &times {
        if *t >= lo && *t < hi {
            let at = usize::try_from((t - lo) / bucket_ns).unwrap_or(usize::MAX);
            if let Some(c) = counts.get_mut(at) {
                *c += 1;
            }
        } else {
            untimed += 1;
        }
    }
    let top = req.top.clamp(1, MAX_TOP);
    let facets = req
        .facets
        .iter()
        .zip(values)
        .zip(missing.into_iter().zip(overflow))
        .map(|((name, vals), (missing, overflow))| {
            let total: u64 = vals.values().sum();
            let mut all: Vec<(String, u64)> = vals.into_iter().collect();
            all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            all.truncate(top);
            let shown: u64 = all.iter().map(|v| v.1).sum();
            (
                name.clone(),
                Facet {
                    top: all
                        .into_iter()
                        .map(|(value, count)| FacetValue { value, count })
                        .collect(),
                    other: total - shown + overflow,
                    missing,
                    capped: overflow > 0,
                },
            )
        })
        .collect();
    Ok(Stats {
        matched: r.stats.matched,
        sampled: r.next_cursor.is_some(),
        scanned_from_seq: r.scanned.0,
        from_ns: lo,
        bucket_ns,
        counts,
        untimed,
        facets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sealog_journal::{EventRef, Journal, JournalOptions};

    /// An event body at time `t` (ns).
    fn body(t: i64, app: &str, level: Option<&str>) -> String {
        let mut v = serde_json::json!({
            "time": sealog_event::format_rfc3339_nanos(t),
            "app": app, "msg": "m",
        });
        if let Some(l) = level {
            v["level"] = l.into();
        }
        v.to_string()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Buckets and facets equal a count written out plainly, sampled or not.
        #[test]
        fn counts_equal_a_plain_count(
            recs in prop::collection::vec((0i64..10_000, 0usize..4, prop::option::of(0usize..3)), 1..400),
            buckets in 1u32..40,
            sample in 1u64..500,
            filtered in any::<bool>(),
        ) {
            let base = 1_700_000_000_000_000_000i64;
            let apps = ["api", "web", "db", "cron"];
            let levels = ["info", "warn", "error"];
            let bodies: Vec<(i64, String)> = recs.iter().map(|(dt, a, l)| {
                let t = base + dt * 1_000_000;
                (t, body(t, apps[*a], l.map(|l| levels[l])))
            }).collect();
            let d = tempfile::tempdir().expect("tempdir");
            let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
            let signer = sealog_journal::checkpoint::Signer::new("sealog/r", key);
            let mut j = Journal::open(d.path(), "r", signer, JournalOptions::default()).expect("open");
            for chunk in bodies.chunks(37) {
                let events: Vec<EventRef<'_>> = chunk
                    .iter()
                    .map(|(t, b)| EventRef { bytes: b.as_bytes(), time_ns: Some(*t) })
                    .collect();
                j.append(&events).expect("append");
            }
            let filter = if filtered { Filter::default().with_text("\"app\":\"api\"") } else { Filter::default() };
            let req = StatsRequest { buckets, facets: vec!["app".into(), "level".into()], top: 2, sample, now_ns: base };
            let s = stats(j.blocks(), &|i| j.read_block(i), &filter, &req, j.size()).expect("stats");
            // The plain count: the newest `sample` matching lines.
            let matching: Vec<&(i64, usize, Option<usize>)> = recs.iter().rev()
                .filter(|(_, a, _)| !filtered || *a == 0).collect();
            let counted: Vec<_> = matching.iter().take(sample as usize).collect();
            prop_assert_eq!(s.matched, counted.len() as u64);
            prop_assert_eq!(s.sampled, matching.len() > sample as usize);
            prop_assert_eq!(s.counts.iter().sum::<u64>() + s.untimed, s.matched);
            if let (Some(lo), Some(hi)) = (counted.iter().map(|r| r.0).min(), counted.iter().map(|r| r.0).max()) {
                prop_assert_eq!(s.from_ns, base + lo * 1_000_000);
                prop_assert_eq!(s.untimed, 0);
                for r in &counted {
                    let t = base + r.0 * 1_000_000;
                    prop_assert!(t >= s.from_ns && t < s.from_ns + s.bucket_ns * i64::from(buckets));
                }
                let _ = hi;
                let mut want = vec![0u64; buckets as usize];
                for r in &counted {
                    want[((base + r.0 * 1_000_000 - s.from_ns) / s.bucket_ns) as usize] += 1;
                }
                prop_assert_eq!(&s.counts, &want);
            }
            let mut by_app: HashMap<&str, u64> = HashMap::new();
            let mut no_level = 0;
            for r in &counted {
                *by_app.entry(apps[r.1]).or_default() += 1;
                if r.2.is_none() { no_level += 1; }
            }
            let mut want: Vec<(&str, u64)> = by_app.into_iter().collect();
            want.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
            let shown: Vec<(&str, u64)> = s.facets["app"].top.iter().map(|v| (v.value.as_str(), v.count)).collect();
            prop_assert_eq!(&shown[..], &want[..want.len().min(2)]);
            prop_assert_eq!(s.facets["app"].other, want.iter().skip(2).map(|v| v.1).sum::<u64>());
            prop_assert_eq!(s.facets["level"].missing, no_level);
        }
    }

    #[test]
    fn a_field_with_a_value_per_record_costs_bounded_memory() {
        let d = tempfile::tempdir().expect("tempdir");
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let signer = sealog_journal::checkpoint::Signer::new("sealog/r", key);
        let mut j = Journal::open(d.path(), "r", signer, JournalOptions::default()).expect("open");
        let n = MAX_DISTINCT + 500;
        let bodies: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    r#"{{"id":"req-{i}","app":"{}"}}"#,
                    if i % 2 == 0 { "a" } else { "b" }
                )
            })
            .collect();
        for chunk in bodies.chunks(1000) {
            let events: Vec<EventRef<'_>> = chunk
                .iter()
                .map(|b| EventRef {
                    bytes: b.as_bytes(),
                    time_ns: None,
                })
                .collect();
            j.append(&events).expect("append");
        }
        let req = StatsRequest {
            buckets: 10,
            facets: vec!["id".into(), "app".into()],
            top: 5,
            sample: MAX_SAMPLE,
            now_ns: 0,
        };
        let s = stats(
            j.blocks(),
            &|i| j.read_block(i),
            &Filter::default(),
            &req,
            j.size(),
        )
        .expect("stats");
        let id = &s.facets["id"];
        assert!(id.capped);
        assert_eq!(id.top.len(), 5);
        assert_eq!(
            id.top.iter().map(|v| v.count).sum::<u64>() + id.other,
            n as u64,
            "every record counted once"
        );
        let app = &s.facets["app"];
        assert!(!app.capped);
        assert_eq!((app.top[0].count, app.top[1].count), (5250, 5250));
    }

    #[test]
    fn long_values_are_cut_and_objects_are_missing() {
        assert_eq!(facet_text(&serde_json::json!({"a": 1})), None);
        assert_eq!(facet_text(&serde_json::json!(3)), Some("3".into()));
        let long = facet_text(&Value::String("x".repeat(10_000))).expect("text");
        assert_eq!(long.chars().count(), MAX_VALUE_CHARS + 1);
        assert!(long.ends_with('…'));
    }
}
