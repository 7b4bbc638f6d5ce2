//! Event validation and leaf-time extraction from arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if sealog_event::validate(data).is_ok() {
        let mut leaf = Vec::new();
        let trimmed = data.trim_ascii();
        sealog_event::LeafBuilder::new("fuzz", 0).build(1, trimmed, &mut leaf);
        assert_eq!(sealog_event::leaf_seq(&leaf), Some(1));
        assert!(
            sealog_event::leaf_time(&leaf).is_some(),
            "a leaf always has a time"
        );
    }
    let _ = sealog_event::leaf_time(data);
});
