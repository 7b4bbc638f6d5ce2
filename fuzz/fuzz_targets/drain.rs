//! Drain wire formats from arbitrary bytes: logplex bodies (what a test
//! receiver parses) and destination URLs (what the drain API checks).
//! A logplex body that parses must re-encode to frames that parse the
//! same; a destination that is accepted must name a host and a port.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealog_codec::drain::{logplex_frame, parse_destination, parse_logplex};

fuzz_target!(|data: &[u8]| {
    if let Ok(frames) = parse_logplex(data) {
        let total: usize = frames.iter().map(|f| f.len()).sum();
        assert!(total <= data.len());
    }
    let mut body = Vec::new();
    logplex_frame(&mut body, data);
    let back = parse_logplex(&body).expect("own frame parses");
    assert_eq!(back.len(), 1);
    assert_eq!(&back[0][..data.len()], data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(d) = parse_destination(text) {
            assert!(!d.host.is_empty() && d.port != 0);
        }
    }
});
