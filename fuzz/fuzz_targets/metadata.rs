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
    // Canonical bytes with a raw control byte are not JSON (see below), so
    // an envelope of them is refused rather than made.
    if let Ok(bytes) = typed.canonical_bytes() {
        if bytes.iter().any(|&b| b < 0x20) {
            assert!(SignedEnvelope::from_metadata(&typed).is_err());
            return;
        }
    }
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
    // What is signed and the signatures must survive; `signed` itself may
    // differ in how a number is held (`1e2` is read as a float, written as
    // `100` and read back as an integer).
    assert_eq!(
        reread.signed_bytes, envelope.signed_bytes,
        "signed bytes changed on a write and read"
    );
    assert_eq!(
        reread.signatures, envelope.signatures,
        "signatures changed on a write and read"
    );

    // `signed_bytes` is canonical by construction, so the signing path must
    // read the same `_type` from it as the envelope does. The one exception
    // is by design: canonical JSON writes control bytes raw, which is no
    // longer JSON, so the daemon refuses to sign such a payload (notary
    // cannot write one either).
    let raw_control = envelope.signed_bytes.iter().any(|&b| b < 0x20);
    let kind = envelope.metadata_type().ok().filter(|_| !raw_control);
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
