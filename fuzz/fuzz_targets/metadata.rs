//! Any metadata file: the envelope parse must not panic, and whatever it
//! accepts must survive the trips the client makes with it: written back
//! as a file (`to_bytes`) and read again, decoded into its typed form and
//! re-encoded, its `_type` read again by the signing path's `payload_type`.

#![no_main]

use notary_tuf::metadata::Metadata;
use notary_tuf::{payload_type, Root, SignedEnvelope, Snapshot, Targets, Timestamp};

/// A typed decode that succeeds must re-encode to an envelope that decodes
/// to the same value.
fn typed_round_trip<T: Metadata + PartialEq + std::fmt::Debug>(envelope: &SignedEnvelope) {
    let Ok(typed) = envelope.decode::<T>() else {
        return;
    };
    let _ = typed.expires_unix();
    let again = SignedEnvelope::from_metadata(&typed)
        .unwrap_or_else(|e| panic!("decoded {} does not re-encode: {e}", T::TYPE));
    let back: T = again
        .decode()
        .unwrap_or_else(|e| panic!("re-encoded {} does not decode: {e}", T::TYPE));
    assert_eq!(back, typed, "{} changed on a round trip", T::TYPE);
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = SignedEnvelope::parse(data) else {
        return;
    };
    let file = envelope.to_bytes();
    let reread = SignedEnvelope::parse(&file).unwrap_or_else(|e| {
        panic!(
            "to_bytes wrote a file that does not parse ({e}): {:?}",
            String::from_utf8_lossy(&file)
        )
    });
    assert_eq!(reread, envelope, "the envelope changed on a write and read");

    // `signed_bytes` is canonical by construction, so the signing path must
    // read the same `_type` from it as the envelope does.
    let kind = envelope.metadata_type().ok();
    assert_eq!(
        payload_type(&envelope.signed_bytes).ok(),
        kind,
        "payload_type disagrees with the envelope on {:?}",
        String::from_utf8_lossy(&envelope.signed_bytes)
    );

    typed_round_trip::<Root>(&envelope);
    typed_round_trip::<Targets>(&envelope);
    typed_round_trip::<Snapshot>(&envelope);
    typed_round_trip::<Timestamp>(&envelope);
});
