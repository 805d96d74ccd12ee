//! `expires` times: the parser must not panic on any text, and Go's
//! RFC3339Nano rendering of what it reads must read back to the same instant
//! (and, for a UTC time written that way, be the same text).

#![no_main]

use notary_tuf::metadata::{format_expires, parse_expires};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(unix) = parse_expires(text) else {
        return;
    };
    // A zone offset can move an instant out of RFC 3339's years 0000-9999;
    // such an instant has no RFC 3339 text to be written as.
    let (Ok(first), Ok(last)) = (
        parse_expires("0000-01-01T00:00:00Z"),
        parse_expires("9999-12-31T23:59:59Z"),
    ) else {
        panic!("the RFC 3339 year range does not parse");
    };
    if !(first..=last).contains(&unix) {
        return;
    }
    let written = format_expires(unix, 0);
    assert_eq!(
        parse_expires(&written).ok(),
        Some(unix),
        "{text:?} read as {unix}, written as {written:?}, which reads differently"
    );
    if text.len() == 20 && text.ends_with('Z') {
        assert_eq!(
            written, text,
            "a whole-second UTC time is written back differently"
        );
    }
});
