//! `sealog grep`'s query language and the LogHarbour entry reader: any
//! query text parses or is refused without panicking; a parsed query
//! evaluates on any line; the scan's matcher (prefilter, partial parse)
//! answers as the full evaluation does; LogHarbour's filters never panic on any line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealog_query::grep::{Expr, GrepMatcher};
use sealog_query::logharbour::{Entry, LogsQuery, Pri, SetAttr};
use sealog_query::message_index::{filter_check, MessageColumn, Plan, Selected};
use sealog_query::Matcher;

fuzz_target!(|data: &[u8]| {
    // First line: the query; the rest: a record.
    let (q, line) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (
            data,
            &b"{\"app\":\"a\",\"type\":\"A\",\"pri\":\"Err\",\"msg\":\"x\"}"[..],
        ),
    };
    if let Ok(q) = std::str::from_utf8(q) {
        if let Ok(e) = Expr::parse(q) {
            let full = e.matches(line);
            // The message index judges the line as grep does: exactly when
            // its plan is exact, never missing a match otherwise, and its
            // trigram filter never rules out a text the line holds.
            if let Some(plan) = Plan::new(&e) {
                let expected = GrepMatcher::new(e.clone()).matches(line);
                if !line.contains(&b'\n') {
                    let enc = sealog_journal::block::encode(0, &[line], &[[0u8; 32]], (0, 0), 1);
                    let b = sealog_journal::block::decode(&enc.body, enc.count, enc.crc)
                        .expect("a block just encoded decodes");
                    let c = MessageColumn::of(&b, 1);
                    assert_eq!(MessageColumn::decode(&c.encode()).as_ref(), Some(&c));
                    match plan.select(&c, 0, 1) {
                        Selected::Exact(bits) => assert_eq!(bits.get(0), expected, "{q:?}"),
                        Selected::Candidates(bits) => assert!(!expected || bits.get(0), "{q:?}"),
                    }
                    if expected {
                        for t in plan.required() {
                            assert!(filter_check(&c, t), "{q:?}");
                        }
                    }
                }
            }
            let m = GrepMatcher::new(e);
            // The prefilter and the parse of only the fields read change
            // nothing: the same answer as parsing the whole line.
            assert_eq!(m.matches(line), full, "{q:?}");
        }
    }
    if let Some(e) = Entry::parse(line) {
        let _ = (e.status_code(), e.change_fields(), e.priority());
        for a in SetAttr::NAMES {
            if let Ok(a) = SetAttr::parse(a) {
                a.values(&e, &mut |_| {});
            }
        }
    }
    let lq = LogsQuery {
        app: Some("a".into()),
        min_pri: Some(Pri::Warn),
        field: Some("f".into()),
        ..LogsQuery::default()
    };
    let _ = lq.matches(line);
});
