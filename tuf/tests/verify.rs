//! One signature at a time: each method notary knows, and each way to fail.

mod common;

use common::*;
use notary_tuf::rootcert::check_root_cert;
use notary_tuf::signature::ecdsa_raw_to_der;
use notary_tuf::{verify, KeyType, PublicKey, SignatureMethod, VerifyError};
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::pkcs8::EncodePublicKey;
use rsa::pkcs8::{DecodePrivateKey, LineEnding};
use rsa::{Pkcs1v15Sign, Pss, RsaPrivateKey};
use sha2::{Digest, Sha256};

const MSG: &[u8] = br#"{"_type":"Targets","version":1}"#;

fn rsa_data(name: &str) -> String {
    String::from_utf8(read_data(&format!("rsa/{name}"))).unwrap()
}

fn rsa_private(name: &str) -> RsaPrivateKey {
    RsaPrivateKey::from_pkcs8_pem(&rsa_data(name)).unwrap()
}

fn rsa_public(private: &RsaPrivateKey) -> PublicKey {
    let der = private.to_public_key().to_public_key_der().unwrap();
    PublicKey::from_spki_der(der.as_bytes()).unwrap()
}

fn pss_sign(private: &RsaPrivateKey) -> Vec<u8> {
    private
        .sign_with_rng(
            &mut rand_core::OsRng,
            Pss::new_with_salt::<Sha256>(32),
            &Sha256::digest(MSG),
        )
        .unwrap()
}

#[test]
fn ecdsa_is_raw_rs_over_sha256_for_both_curves() {
    let p256 = p256::ecdsa::SigningKey::from_slice(&[4; 32]).unwrap();
    let key =
        PublicKey::from_spki_der(p256.verifying_key().to_public_key_der().unwrap().as_bytes())
            .unwrap();
    let sig: p256::ecdsa::Signature = p256.sign_prehash(&Sha256::digest(MSG)).unwrap();
    verify(&key, SignatureMethod::Ecdsa, MSG, &sig.to_bytes()).unwrap();

    let der = ecdsa_raw_to_der(&sig.to_bytes()).unwrap();
    let err = verify(&key, SignatureMethod::Ecdsa, MSG, &der).unwrap_err();
    assert!(matches!(err, VerifyError::EcdsaLength { expected: 64, .. }));
    assert!(err.to_string().contains("looks like DER"), "{err}");

    let mut bad = sig.to_bytes().to_vec();
    bad[5] ^= 1;
    let err = verify(&key, SignatureMethod::Ecdsa, MSG, &bad).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("signature by key {} does not verify (ecdsa)", key.key_id())
    );

    let p384 = p384::ecdsa::SigningKey::from_slice(&[4; 48]).unwrap();
    let key =
        PublicKey::from_spki_der(p384.verifying_key().to_public_key_der().unwrap().as_bytes())
            .unwrap();
    let sig: p384::ecdsa::Signature = p384.sign_prehash(&Sha256::digest(MSG)).unwrap();
    verify(&key, SignatureMethod::Ecdsa, MSG, &sig.to_bytes()).unwrap();
    // SHA-384 (what a generic P-384 signer would use) is not notary's scheme.
    let sig384: p384::ecdsa::Signature = p384.sign_prehash(&sha2::Sha384::digest(MSG)).unwrap();
    assert!(verify(&key, SignatureMethod::Ecdsa, MSG, &sig384.to_bytes()).is_err());
}

#[test]
fn ed25519_is_pure() {
    use ed25519_dalek::Signer;
    let sk = ed25519_dalek::SigningKey::from_bytes(&[6; 32]);
    let key = PublicKey::new(KeyType::Ed25519, sk.verifying_key().to_bytes().to_vec());
    let sig = sk.sign(MSG).to_bytes();
    verify(&key, SignatureMethod::Eddsa, MSG, &sig).unwrap();
    assert!(verify(&key, SignatureMethod::Eddsa, b"other", &sig).is_err());
    assert!(verify(&key, SignatureMethod::Eddsa, MSG, &sig[..63]).is_err());
    let short = PublicKey::new(KeyType::Ed25519, vec![1; 31]);
    assert!(matches!(
        verify(&short, SignatureMethod::Eddsa, MSG, &sig),
        Err(VerifyError::Key { .. })
    ));
}

#[test]
fn methods_must_fit_the_key_type() {
    let ed = PublicKey::new(KeyType::Ed25519, vec![1; 32]);
    let err = verify(&ed, SignatureMethod::Ecdsa, MSG, &[0; 64]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "signature method ecdsa cannot be used with a ed25519 key"
    );
    let ecdsa = root_cert_key("local").bare_key().unwrap();
    for method in [
        SignatureMethod::Eddsa,
        SignatureMethod::RsaPss,
        SignatureMethod::RsaPkcs1v15,
        SignatureMethod::PyCryptoPss,
    ] {
        assert!(matches!(
            verify(&ecdsa, method, MSG, &[0; 64]),
            Err(VerifyError::WrongKeyType { .. })
        ));
    }
}

#[test]
fn rsa_pss_pkcs1v15_and_pycrypto() {
    let private = rsa_private("key-2048.pem");
    let key = rsa_public(&private);
    assert_eq!(key.keytype(), KeyType::Rsa);
    let pss = pss_sign(&private);
    verify(&key, SignatureMethod::RsaPss, MSG, &pss).unwrap();
    assert!(verify(&key, SignatureMethod::RsaPss, b"other", &pss).is_err());
    assert!(verify(&key, SignatureMethod::RsaPkcs1v15, MSG, &pss).is_err());

    let pkcs1 = private
        .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(MSG))
        .unwrap();
    verify(&key, SignatureMethod::RsaPkcs1v15, MSG, &pkcs1).unwrap();
    assert!(verify(&key, SignatureMethod::RsaPss, MSG, &pkcs1).is_err());

    // PyCrypto keys carry PEM text in `public`; DER is refused, as in notary.
    let pem = private
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let pycrypto = PublicKey::new(KeyType::Rsa, pem.into_bytes());
    verify(&pycrypto, SignatureMethod::PyCryptoPss, MSG, &pss).unwrap();
    assert!(verify(&key, SignatureMethod::PyCryptoPss, MSG, &pss).is_err());
}

#[test]
fn rsa_below_2048_bits_is_refused() {
    let private = rsa_private("key-1024.pem");
    let key = rsa_public(&private);
    let err = verify(&key, SignatureMethod::RsaPss, MSG, &pss_sign(&private)).unwrap_err();
    assert!(matches!(err, VerifyError::RsaTooSmall { bits: 1024, .. }));
}

#[test]
fn rsa_x509_keys_verify_with_the_certificate_key() {
    let private = rsa_private("key-2048.pem");
    let cert = rsa_data("cert-2048.pem");
    let key = PublicKey::from_certificate_pem(&cert).unwrap();
    assert_eq!(key.keytype(), KeyType::RsaX509);
    assert_eq!(key.bare_key().unwrap(), rsa_public(&private));
    verify(&key, SignatureMethod::RsaPss, MSG, &pss_sign(&private)).unwrap();
    // An OpenSSL-made RSA root (sha256WithRSAEncryption, UTF8String CN).
    check_root_cert(&cert, GUN, fixture_now()).unwrap();
}

#[test]
fn x509_key_of_the_wrong_family_is_refused() {
    let cert = rsa_data("cert-2048.pem");
    let lying = PublicKey::new(KeyType::EcdsaX509, cert.into_bytes());
    assert!(lying.bare_key().is_err());
    assert!(verify(&lying, SignatureMethod::Ecdsa, MSG, &[1; 64]).is_err());
    let bare = root_cert_key("local").bare_key().unwrap();
    assert!(bare.bare_key().is_err());
    assert!(bare.x509_certificate_der().is_err());
}
