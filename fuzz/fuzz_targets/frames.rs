//! Sidecar frames: arbitrary bytes through the length-prefix decoder, and
//! every frame through the message-to-event conversion and the hello check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealog_codec::frame::FrameDecoder;
use sealog_codec::sidecar::{parse_hello, to_event};

fuzz_target!(|data: &[u8]| {
    let mut d = FrameDecoder::new(1024);
    let mut buf = bytes::BytesMut::from(data);
    while let Ok(Some(f)) = d.decode(&mut buf) {
        if let Ok((line, _)) = to_event(&f, Some("svc")) {
            assert!(sealog_event::validate(&line).is_ok(), "unstorable event");
        }
        let _ = parse_hello(&f);
    }
    let _ = to_event(data, None);
});
