//! Signatures and keys as devices and servers hand them over: the ECDSA
//! conversions between DER `Ecdsa-Sig-Value` (PIV cards, PKCS#11 tokens,
//! TPMs, X.509) and notary's raw r||s, and `verify` with a key and a
//! signature that both come from the input.
//!
//! Input: a mode byte, then for even modes a signature to convert; for odd
//! modes a key type, a method, a two-byte key length, the key's public bytes
//! and the signature.
//!
//! Oracles: DER that converts to raw converts back to DER giving the same
//! raw, and raw that converts to DER converts back to the same raw; the
//! only signatures that verify over the fixed message are the ones made for
//! it with a private key (the `made-*` seeds, P-256 and Ed25519, signed by
//! OpenSSL): a mutated one that verifies is malleable, a wrong-length or
//! padded one the verifier let through, or a weak key.

#![no_main]

use notary_tuf::signature::{ecdsa_der_to_raw, ecdsa_raw_to_der};
use notary_tuf::{verify, KeyType, PublicKey, SignatureMethod};

const KEY_TYPES: [KeyType; 5] = [
    KeyType::Ecdsa,
    KeyType::Ed25519,
    KeyType::Rsa,
    KeyType::EcdsaX509,
    KeyType::RsaX509,
];
const METHODS: [SignatureMethod; 5] = [
    SignatureMethod::Ecdsa,
    SignatureMethod::Eddsa,
    SignatureMethod::RsaPss,
    SignatureMethod::RsaPkcs1v15,
    SignatureMethod::PyCryptoPss,
];
const MESSAGE: &[u8] = br#"{"_type":"Targets","version":1}"#;

fn conversions(mode: u8, sig: &[u8]) {
    let field_len = if mode & 2 == 0 { 32 } else { 48 };
    if let Ok(raw) = ecdsa_der_to_raw(sig, field_len) {
        assert_eq!(raw.len(), 2 * field_len);
        let der = ecdsa_raw_to_der(&raw)
            .unwrap_or_else(|e| panic!("raw {raw:02x?} from DER does not convert back: {e}"));
        assert_eq!(ecdsa_der_to_raw(&der, field_len).ok(), Some(raw));
    }
    if let Ok(der) = ecdsa_raw_to_der(sig) {
        assert_eq!(
            ecdsa_der_to_raw(&der, sig.len() / 2).ok().as_deref(),
            Some(sig),
            "raw {sig:02x?} does not come back from its DER"
        );
    }
}

/// The seeds whose signatures were made over `MESSAGE` with a private key.
const MADE: [&[u8]; 2] = [
    include_bytes!("../corpus/signature/made-p256"),
    include_bytes!("../corpus/signature/made-ed25519"),
];

/// Key type, method, public bytes and signature of a verify-mode input
/// (without its mode byte).
fn split_key_input(input: &[u8]) -> Option<(KeyType, SignatureMethod, &[u8], &[u8])> {
    let [keytype, method, len_hi, len_lo, rest @ ..] = input else {
        return None;
    };
    let key_len = usize::from(u16::from_be_bytes([*len_hi, *len_lo])).min(rest.len());
    let (public, sig) = rest.split_at(key_len);
    Some((
        KEY_TYPES[usize::from(keytype % 5)],
        METHODS[usize::from(method % 5)],
        public,
        sig,
    ))
}

fn made(sig: &[u8]) -> bool {
    MADE.iter()
        .filter_map(|seed| split_key_input(seed.get(1..)?))
        .any(|(_, _, _, made)| made == sig)
}

fn no_forgery(input: &[u8]) {
    let Some((keytype, method, public, sig)) = split_key_input(input) else {
        return;
    };
    let mut keys = vec![PublicKey::new(keytype, public.to_vec())];
    keys.extend(PublicKey::from_spki_der(public));
    for key in keys {
        let _ = key.key_id();
        if verify(&key, method, MESSAGE, sig).is_ok() {
            assert!(
                made(sig),
                "{method} signature nobody made verified with key type {}: {sig:02x?}",
                key.keytype()
            );
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        conversions(mode, rest);
    } else {
        no_forgery(rest);
    }
});
