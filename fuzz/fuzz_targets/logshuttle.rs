//! logshuttle inputs: fluentd JSON, build logs and web log lines from
//! arbitrary bytes; anything accepted must be a storable event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealog_codec::logshuttle::{build_log, fluentd, web_log};

fuzz_target!(|data: &[u8]| {
    for r in [fluentd(data), build_log(data)] {
        if let Ok((line, _)) = r {
            assert!(sealog_event::validate(&line).is_ok(), "unstorable event");
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok((line, _)) = web_log(text) {
            assert!(sealog_event::validate(&line).is_ok(), "unstorable event");
        }
    }
});
