//! The signing path reads a payload's `_type` with a one-pass scan of
//! canonical bytes and falls back to the full parse only to name what is
//! wrong. The `_type` decides which role's key may sign the payload, so
//! `payload_type` must say exactly what the full parse says: accept the
//! bytes only if they are their own canonical encoding, with the same
//! `_type`.

#![no_main]

use notary_tuf::{canonicalize, MetadataType};
use serde_json::Value;

/// The full parse, written out independently of `payload_type`: parse,
/// re-encode canonically, compare, read `_type`.
fn full_parse(data: &[u8]) -> Option<MetadataType> {
    let canonical = canonicalize(data).ok()?;
    if canonical != data {
        return None;
    }
    let value: Value = serde_json::from_slice(&canonical).ok()?;
    value.get("_type")?.as_str()?.parse().ok()
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let fast = notary_tuf::payload_type(data).ok();
    let slow = full_parse(data);
    assert_eq!(
        fast,
        slow,
        "payload_type and the full parse disagree on {:?}",
        String::from_utf8_lossy(data)
    );
});
