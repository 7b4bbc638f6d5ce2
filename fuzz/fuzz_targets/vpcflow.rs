//! VPC flow-log lines: any text through the line parser; every record it
//! writes must be a storable event that reads back to the same fields; and
//! arbitrary bytes through the stored-record reader and the digester, and
//! the audit message check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealog_codec::vpcflow::{parse_line, read_stored, Digester, Line};

fuzz_target!(|data: &[u8]| {
    let mut d = Digester::new(0, i64::MAX);
    if let Ok(text) = std::str::from_utf8(data) {
        for l in text.lines() {
            if let Ok(Line::Flow(rec, _)) = parse_line(l) {
                assert!(
                    sealog_event::validate(&rec).is_ok(),
                    "unstorable flow record"
                );
                let f = read_stored(&rec).expect("a written flow reads back");
                let fields: Vec<&str> = l.split_ascii_whitespace().collect();
                assert_eq!(f.srcaddr, fields[3].as_bytes());
                d.add_line(&rec);
            }
        }
    }
    let _ = read_stored(data);
    d.add_line(data);
    let out = d.finish();
    assert!(out.is_empty() || out.ends_with(b"\n"));
});
