//! logshuttle inputs: fluentd JSON, build logs, istio access logs (mixer
//! and Envoy ALS) and web log lines from arbitrary bytes; anything
//! accepted must be a storable event, and a redacted build argument must
//! not survive.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealog_codec::logshuttle::{build_log, fluentd, istio, redact_build_args, web_log};

fuzz_target!(|data: &[u8]| {
    for r in [fluentd(data), build_log(data), istio(data)] {
        if let Ok((line, _)) = r {
            assert!(sealog_event::validate(&line).is_ok(), "unstorable event");
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok((line, _)) = web_log(text) {
            assert!(sealog_event::validate(&line).is_ok(), "unstorable event");
        }
        let (clean, n) = redact_build_args(text);
        // Redacting again finds the same arguments and changes nothing.
        let (again, m) = redact_build_args(&clean);
        assert_eq!(
            (again.as_str(), m),
            (clean.as_str(), n),
            "redaction is stable"
        );
    }
});
