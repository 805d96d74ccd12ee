//! Key URIs (`pkcs11:…`, `soft:…`, `yubikey:…`, `tpm:…`) as operators and
//! clients write them. A URI that parses must print as text that parses to
//! the same URI and prints the same again: the daemon matches keys by that
//! text.

#![no_main]

use keyd_backends::KeyUri;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(uri) = text.parse::<KeyUri>() else {
        return;
    };
    let printed = uri.to_string();
    let again: KeyUri = printed
        .parse()
        .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which does not parse: {e}"));
    assert_eq!(
        again, uri,
        "{text:?} printed as {printed:?} reads differently"
    );
    assert_eq!(again.to_string(), printed);
    for name in ["token", "object", "id", "name", "serial", "slot", "handle"] {
        if let Some(bytes) = uri.get_bytes(name) {
            assert_eq!(uri.get(name).is_some(), std::str::from_utf8(bytes).is_ok());
            assert_eq!(uri.require_bytes(name).ok(), Some(bytes));
        } else {
            assert!(uri.require(name).is_err());
        }
    }
});
