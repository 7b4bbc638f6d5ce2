//! Syslog: RFC 6587 framing of an arbitrary TCP stream, then lenient
//! RFC 5424/3164 parsing of each message. Every message must come out as a
//! storable event, with no token left in it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealog_codec::syslog::{parse, SyslogFramer};

fuzz_target!(|data: &[u8]| {
    let mut framer = SyslogFramer::new(512);
    let mut buf = bytes::BytesMut::from(data);
    let mut msgs = Vec::new();
    while let Ok(Some(m)) = framer.decode(&mut buf) {
        msgs.push(m);
    }
    msgs.extend(framer.finish(&mut buf));
    msgs.push(bytes::Bytes::copy_from_slice(data));
    for m in msgs {
        let p = parse(&m, 1_795_500_000_000_000_000);
        assert!(sealog_event::validate(&p.event).is_ok(), "unstorable event");
        if let Some(t) = p.token.filter(|t| t.len() > 3) {
            let ev = String::from_utf8_lossy(&p.event);
            assert!(
                !ev.contains(&format!("\"{t}\"")),
                "token leaked into the event"
            );
        }
    }
});
