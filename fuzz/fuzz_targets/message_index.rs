//! The message index's on-disk forms: any bytes as an entry's payload
//! decode or are refused without panicking, and a column decoded from
//! them encodes back to the same column; any bytes as an index file open
//! without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealog_query::message_index::{MessageColumn, MessageIndex};

fuzz_target!(|data: &[u8]| {
    if let Some(c) = MessageColumn::decode(data) {
        assert_eq!(MessageColumn::decode(&c.encode()).as_ref(), Some(&c));
    }
    // The same bytes raw (not zstd): compressed first, so the varint and
    // text checks behind the decompression are reached too.
    if let Ok(z) = zstd_bytes(data) {
        if let Some(c) = MessageColumn::decode(&z) {
            assert_eq!(MessageColumn::decode(&c.encode()).as_ref(), Some(&c));
        }
    }
    let dir = std::env::temp_dir().join(format!("sealog-fuzz-mx-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("grep.index");
    if std::fs::write(&path, data).is_ok() {
        let x = MessageIndex::open(&path);
        let _ = x.entries();
    }
});

fn zstd_bytes(data: &[u8]) -> std::io::Result<Vec<u8>> {
    zstd::bulk::compress(data, 1)
}
