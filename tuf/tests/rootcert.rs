//! Root certificates: byte-identical to notary's, signable by a key we never
//! see, and accepted by notary's checks (and by OpenSSL when present).

mod common;

use common::*;
use der::{Decode, Encode};
use notary_tuf::rootcert::{assemble_root_cert, check_root_cert, root_cert_tbs, CertError};
use notary_tuf::signature::{ecdsa_der_to_raw, ecdsa_raw_to_der};
use notary_tuf::{KeyType, PublicKey};
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::pkcs8::EncodePublicKey;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

const TEN_YEARS: u32 = 10 * 365;

fn p256_key(seed: u8) -> (p256::ecdsa::SigningKey, Vec<u8>) {
    let sk = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap();
    let spki = sk.verifying_key().to_public_key_der().unwrap().into_vec();
    (sk, spki)
}

/// What the daemon's hardware does: SHA-256 over the TBS, raw r||s.
fn sign_p256(sk: &p256::ecdsa::SigningKey, tbs: &[u8]) -> Vec<u8> {
    let sig: p256::ecdsa::Signature = sk.sign_prehash(&Sha256::digest(tbs)).unwrap();
    sig.to_bytes().to_vec()
}

fn make_cert(gun: &str, not_before: i64) -> (String, Vec<u8>) {
    let (sk, spki) = p256_key(7);
    let serial = [0x9a; 16];
    let tbs = root_cert_tbs(gun, &spki, serial, not_before, TEN_YEARS).unwrap();
    (
        assemble_root_cert(&tbs, &sign_p256(&sk, &tbs)).unwrap(),
        spki,
    )
}

#[test]
fn rebuilds_notarys_own_root_certificates_byte_for_byte() {
    for collection in COLLECTIONS {
        let key = root_cert_key(collection);
        let pem = std::str::from_utf8(key.public_bytes()).unwrap();
        let der = key.x509_certificate_der().unwrap();
        let cert = Certificate::from_der(&der).unwrap();
        let tbs = &cert.tbs_certificate;
        let serial = serial_16(tbs.serial_number.as_bytes());
        let not_before = tbs.validity.not_before.to_unix_duration().as_secs() as i64;
        let spki = tbs.subject_public_key_info.to_der().unwrap();

        let ours = root_cert_tbs(GUN, &spki, serial, not_before, TEN_YEARS).unwrap();
        assert_eq!(
            ours,
            tbs.to_der().unwrap(),
            "{collection}: TBS differs from notary's"
        );

        let raw = ecdsa_der_to_raw(cert.signature.raw_bytes(), 32).unwrap();
        assert_eq!(
            assemble_root_cert(&ours, &raw).unwrap(),
            pem,
            "{collection}"
        );
    }
}

/// The DER serial (maybe with a sign byte) as the 16 bytes notary drew.
fn serial_16(der_int: &[u8]) -> [u8; 16] {
    let trimmed: Vec<u8> = der_int.iter().copied().skip_while(|&b| b == 0).collect();
    let mut serial = [0u8; 16];
    serial[16 - trimmed.len()..].copy_from_slice(&trimmed);
    serial
}

#[test]
fn signed_root_cert_parses_and_passes_notary_checks() {
    let now = fixture_now();
    let (pem, spki) = make_cert(GUN, now);
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
    assert!(pem.ends_with("\n-----END CERTIFICATE-----\n"));
    assert!(pem.lines().all(|l| l.len() <= 64));

    let key = PublicKey::from_certificate_pem(&pem).unwrap();
    assert_eq!(key.keytype(), KeyType::EcdsaX509);
    assert_eq!(key.public_bytes(), pem.as_bytes());
    let bare = key.bare_key().unwrap();
    assert_eq!(
        bare.key_id(),
        PublicKey::from_spki_der(&spki).unwrap().key_id()
    );
    assert_ne!(bare.key_id(), key.key_id());

    let cert = Certificate::from_der(&key.x509_certificate_der().unwrap()).unwrap();
    let tbs = &cert.tbs_certificate;
    assert_eq!(tbs.issuer, tbs.subject);
    assert_eq!(tbs.subject.to_string(), format!("CN={GUN}"));
    assert_eq!(
        tbs.validity.not_after.to_unix_duration().as_secs() as i64
            - tbs.validity.not_before.to_unix_duration().as_secs() as i64,
        3650 * 86_400
    );
    let exts: Vec<(String, bool)> = tbs
        .extensions
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| (e.extn_id.to_string(), e.critical))
        .collect();
    assert_eq!(
        exts,
        [
            ("2.5.29.15".to_string(), true),
            ("2.5.29.37".to_string(), false),
            ("2.5.29.19".to_string(), true)
        ]
    );

    check_root_cert(&pem, GUN, now).unwrap();
    check_root_cert(&pem, GUN, now - 86_000).unwrap();
    assert!(matches!(
        check_root_cert(&pem, GUN, now - 90_000),
        Err(CertError::NotYetValid { .. })
    ));
    assert!(matches!(
        check_root_cert(&pem, GUN, now + 3651 * 86_400),
        Err(CertError::Expired { .. })
    ));
    assert!(matches!(
        check_root_cert(&pem, "example.com/other", now),
        Err(CertError::GunMismatch { .. })
    ));
}

#[test]
fn wildcard_common_name_covers_a_prefix() {
    let (pem, _) = make_cert("example.com/*", fixture_now());
    check_root_cert(&pem, "example.com/app", fixture_now()).unwrap();
    assert!(check_root_cert(&pem, "example.org/app", fixture_now()).is_err());
}

#[test]
fn p384_keys_sign_with_sha256_like_notary() {
    let sk = p384::ecdsa::SigningKey::from_slice(&[3; 48]).unwrap();
    let spki = sk.verifying_key().to_public_key_der().unwrap().into_vec();
    let tbs = root_cert_tbs(GUN, &spki, [1; 16], fixture_now(), TEN_YEARS).unwrap();
    let sig: p384::ecdsa::Signature = sk.sign_prehash(&Sha256::digest(&tbs)).unwrap();
    assert_eq!(sig.to_bytes().len(), 96);
    let pem = assemble_root_cert(&tbs, &sig.to_bytes()).unwrap();
    check_root_cert(&pem, GUN, fixture_now()).unwrap();
    let err = assemble_root_cert(&tbs, &sig.to_bytes()[..64]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "raw ECDSA signature must be 96 bytes (r||s), got 64"
    );
}

#[test]
fn refuses_bad_inputs() {
    let (sk, spki) = p256_key(7);
    let ed = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
    let ed_spki = ed.verifying_key().to_public_key_der().unwrap();
    let err = root_cert_tbs(GUN, ed_spki.as_bytes(), [1; 16], 0, 1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "notary root certificates need an ECDSA key (P-256 or P-384)"
    );
    assert!(matches!(
        root_cert_tbs(GUN, &spki, [0; 16], 0, 1),
        Err(CertError::ZeroSerial)
    ));
    assert!(matches!(
        root_cert_tbs("", &spki, [1; 16], 0, 1),
        Err(CertError::EmptyGun)
    ));
    assert!(root_cert_tbs(GUN, &spki, [1; 16], -1, 1).is_err());

    let tbs = root_cert_tbs(GUN, &spki, [1; 16], fixture_now(), TEN_YEARS).unwrap();
    // Signed by another key, or DER instead of raw r||s.
    let (other, _) = p256_key(8);
    assert!(matches!(
        assemble_root_cert(&tbs, &sign_p256(&other, &tbs)),
        Err(CertError::BadSelfSignature)
    ));
    let der = ecdsa_raw_to_der(&sign_p256(&sk, &tbs)).unwrap();
    assert!(matches!(
        assemble_root_cert(&tbs, &der),
        Err(CertError::SignatureLength { expected: 64, .. })
    ));
}

#[test]
fn detects_a_broken_self_signature() {
    let (pem, _) = make_cert(GUN, fixture_now());
    let key = PublicKey::from_certificate_pem(&pem).unwrap();
    let mut der = key.x509_certificate_der().unwrap();
    let last = der.len() - 1;
    der[last] ^= 1;
    let broken = notary_tuf::pem::encode("CERTIFICATE", &der);
    assert!(matches!(
        check_root_cert(&broken, GUN, fixture_now()),
        Err(CertError::BadSelfSignature)
    ));
}

/// Runs only where `openssl` is installed; says so when it is skipped.
#[test]
fn openssl_accepts_the_certificate() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: openssl is not on PATH, cannot cross-check with OpenSSL");
        return;
    }
    let (pem, _) = make_cert(GUN, fixture_now());
    let dir = std::env::temp_dir().join(format!("notary-tuf-openssl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.pem");
    std::fs::write(&good, &pem).unwrap();

    let text = openssl(&["x509", "-noout", "-text", "-in", good.to_str().unwrap()]);
    let text = text.expect("openssl x509 -text failed");
    for needle in [
        "Signature Algorithm: ecdsa-with-SHA256",
        &format!("Issuer: CN = {GUN}"),
        &format!("Subject: CN = {GUN}"),
        "X509v3 Key Usage: critical",
        "Digital Signature, Key Encipherment",
        "Code Signing",
        "X509v3 Basic Constraints: critical",
        "CA:FALSE",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(!text.contains("Subject Alternative Name"));
    assert!(!text.contains("Subject Key Identifier"));

    let at = fixture_now().to_string();
    let verify = |path: &std::path::Path| {
        let p = path.to_str().unwrap();
        openssl(&[
            "verify",
            "-check_ss_sig",
            "-partial_chain",
            "-attime",
            &at,
            "-CAfile",
            p,
            p,
        ])
    };
    verify(&good).expect("openssl verify refused our certificate");

    // Prove the check bites: a flipped signature byte must be refused.
    let mut der = PublicKey::from_certificate_pem(&pem)
        .unwrap()
        .x509_certificate_der()
        .unwrap();
    let last = der.len() - 1;
    der[last] ^= 1;
    let bad = dir.join("bad.pem");
    std::fs::write(&bad, notary_tuf::pem::encode("CERTIFICATE", &der)).unwrap();
    assert!(verify(&bad).is_err(), "openssl accepted a broken signature");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn openssl(args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
    }
}

#[test]
fn the_common_name_is_read_back() {
    let (pem, _) = make_cert("example.com/app", 1_700_000_000);
    assert_eq!(
        notary_tuf::rootcert::root_cert_common_name(&pem).unwrap(),
        "example.com/app"
    );
    assert!(notary_tuf::rootcert::root_cert_common_name("no certificate").is_err());
}
