//! PEM text and X.509 root certificates, as a root's `*-x509` keys carry
//! them: the PEM reader, notary's root-certificate checks and the key
//! derived from a certificate. The first byte picks how the rest is read:
//! even, as PEM text; odd, as the DER of one certificate (so the fuzzer
//! mutates the certificate, not its base64).
//!
//! Oracles: every block read re-encodes (Go's way) to text that reads back
//! to the same block; a self-issued certificate that passes the checks has
//! the TBS the fixtures' keys signed (the fuzzer cannot sign); a key made
//! from a certificate has the certificate's algorithm.

#![no_main]

use der::{Decode, Encode};
use notary_fuzz::{fixture_now, COLLECTIONS, GUN};
use notary_tuf::pem;
use notary_tuf::rootcert::check_root_cert;
use notary_tuf::{KeyType, PublicKey};
use std::sync::OnceLock;
use x509_cert::Certificate;

/// The self-signed RSA certificate among the seeds.
const RSA_CERT: &[u8] = include_bytes!("../../tuf/tests/data/rsa/cert-2048.pem");

/// DER of the TBS part of each fixture certificate: the fixture root
/// certificates and the RSA one.
fn signed_tbs() -> &'static Vec<Vec<u8>> {
    static TBS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    TBS.get_or_init(|| {
        COLLECTIONS
            .iter()
            .flat_map(|c| c.trusted_root().keys.into_values())
            .filter_map(|key| key.x509_certificate_der().ok())
            .chain(
                pem::parse_blocks(RSA_CERT)
                    .into_iter()
                    .flatten()
                    .map(|b| b.der),
            )
            .filter_map(|der| Certificate::from_der(&der).ok())
            .filter_map(|cert| cert.tbs_certificate.to_der().ok())
            .collect()
    })
}

fn blocks_round_trip(text: &[u8]) {
    let Ok(blocks) = pem::parse_blocks(text) else {
        return;
    };
    for block in blocks {
        let written = pem::encode(&block.label, &block.der);
        let read = pem::parse_blocks(written.as_bytes())
            .unwrap_or_else(|e| panic!("encoded block {written:?} does not read back: {e}"));
        assert_eq!(read.len(), 1, "one block written, {} read", read.len());
        assert_eq!(read[0].label, block.label);
        assert_eq!(read[0].der, block.der);
        assert!(!read[0].has_headers);
    }
}

fn first_cert(text: &str) -> Option<Certificate> {
    pem::parse_blocks(text.as_bytes())
        .ok()?
        .into_iter()
        .filter(|b| b.label == "CERTIFICATE" && !b.has_headers)
        .find_map(|b| Certificate::from_der(&b.der).ok())
}

fn certificate_checks(text: &str) {
    for gun in [GUN, "example.com/other"] {
        if check_root_cert(text, gun, fixture_now()).is_err() {
            continue;
        }
        let Some(cert) = first_cert(text) else {
            panic!("check_root_cert accepted text without a certificate");
        };
        let tbs = &cert.tbs_certificate;
        if tbs.issuer == tbs.subject {
            let der = tbs.to_der().unwrap_or_default();
            assert!(
                signed_tbs().contains(&der),
                "accepted a self-signed certificate no fixture key signed"
            );
        }
    }
    if let Ok(key) = PublicKey::from_certificate_pem(text) {
        assert!(key.keytype().is_x509());
        let bare = key
            .bare_key()
            .unwrap_or_else(|e| panic!("a key made from a certificate has no bare key: {e}"));
        assert_eq!(bare.keytype(), key.keytype().bare());
        assert!(matches!(bare.keytype(), KeyType::Ecdsa | KeyType::Rsa));
        assert!(key.x509_certificate_der().is_ok());
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = if mode & 1 == 0 {
        blocks_round_trip(rest);
        String::from_utf8_lossy(rest).into_owned()
    } else {
        pem::encode("CERTIFICATE", rest)
    };
    certificate_checks(&text);
});
