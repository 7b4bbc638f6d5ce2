//! `sealog grep`'s query language and the LogHarbour entry reader: any
//! query text parses or is refused without panicking; a parsed query
//! evaluates on any line; the scan's matcher (prefilter, partial parse)
//! answers as the full evaluation does; LogHarbour's filters never panic on any line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealog_query::grep::{Expr, GrepMatcher};
use sealog_query::logharbour::{Entry, LogsQuery, Pri, SetAttr};
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
