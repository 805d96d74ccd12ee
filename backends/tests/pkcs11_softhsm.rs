//! The PKCS#11 backend against a real SoftHSM2.
//!
//! Everything runs in ONE test function, on purpose. SoftHSM takes its
//! config (SOFTHSM2_CONF) from the process environment at C_Initialize, and a
//! PKCS#11 module and its login state are process-global. Separate #[test]s
//! would run on parallel threads of this one process: they would share one
//! module instance whatever conf each wanted, setting the variable would race
//! with other threads reading the environment, and a logout in one test would
//! log out another's token. So this binary has a single test: it sets up one
//! SoftHSM, initialises every token it uses (distinct labels) before the
//! module is first loaded, and runs the scenarios in sequence.
#![cfg(feature = "pkcs11")]

mod softhsm;

use der::asn1::BitString;
use der::{Decode, Encode};
use keyd_backends::pkcs11::{Pkcs11Backend, Pkcs11Config, TokenSelector};
use keyd_backends::{
    Algorithm, Availability, BackendError, BackendKey, KeyBackend, KeySpec, KeyUri, TriesLeft,
};
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use softhsm::{SoftHsm, MODULE};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

const PIN: &str = "123456";

fn config(label: &str, pin: Option<&str>) -> Pkcs11Config {
    Pkcs11Config {
        module: MODULE.into(),
        token: TokenSelector::Label(label.into()),
        pin: pin.map(SecretString::from),
        max_sessions: 2,
    }
}

fn unavailable_reason(backend: &Pkcs11Backend) -> String {
    match backend.availability() {
        Availability::Unavailable(reason) => reason,
        Availability::Available => panic!("backend should be unavailable"),
    }
}

#[test]
fn softhsm_backend() {
    let hsm = SoftHsm::new();
    for label in ["notary", "prompt", "badpin"] {
        hsm.init_token(label, PIN);
    }

    missing_module();
    absent_token();
    wrong_configured_pin();
    let keys = generate_and_sign_every_algorithm();
    reopen_lists_the_same_keys(&keys);
    concurrent_signing(&keys[&Algorithm::EcdsaP256]);
    certificates(&keys);
    delete(&keys[&Algorithm::Ed25519]);
    prompt_mode();
    token_initialised_later(&hsm);
}

fn missing_module() {
    let mut config = config("notary", Some(PIN));
    config.module = "/nonexistent/libnope-pkcs11.so".into();
    let backend = Pkcs11Backend::open("missing", config);
    let reason = unavailable_reason(&backend);
    assert!(
        reason.contains("/nonexistent/libnope-pkcs11.so"),
        "{reason}"
    );
    assert!(reason.contains("could not be loaded"), "{reason}");
    assert!(matches!(backend.list(), Err(BackendError::Unavailable(_))));
    assert!(backend.algorithms().is_empty());
}

fn absent_token() {
    let backend = Pkcs11Backend::open("absent", config("absent", Some(PIN)));
    let reason = unavailable_reason(&backend);
    assert!(reason.contains("no token labelled \"absent\""), "{reason}");
    for present in ["\"notary\"", "\"prompt\"", "\"badpin\""] {
        assert!(reason.contains(present), "{reason}");
    }
}

fn wrong_configured_pin() {
    let backend = Pkcs11Backend::open("badpin", config("badpin", Some("000000")));
    let reason = unavailable_reason(&backend);
    assert!(reason.contains("configured PIN"), "{reason}");
    assert!(reason.contains("rejected"), "{reason}");
    // SoftHSM sets CKF_USER_PIN_COUNT_LOW after a failure.
    assert!(reason.contains(&TriesLeft::Low.to_string()), "{reason}");
    assert!(!reason.contains("000000"));
    // Recorded, not retried: the same reason, no new C_Login.
    assert_eq!(unavailable_reason(&backend), reason);
    assert!(matches!(backend.list(), Err(BackendError::Unavailable(r)) if r == reason));
}

/// Checks `sig` over `payload` with an independent implementation, in
/// notary's encoding for the key's algorithm.
fn verify(key: &BackendKey, payload: &[u8], sig: &[u8]) {
    use p256::pkcs8::DecodePublicKey as _;
    let public = key.public.public_bytes();
    match key.algorithm {
        Algorithm::EcdsaP256 => {
            use p256::ecdsa::signature::Verifier;
            assert_eq!(sig.len(), 64);
            let vk = p256::ecdsa::VerifyingKey::from_public_key_der(public).unwrap();
            let sig = p256::ecdsa::Signature::from_slice(sig).unwrap();
            vk.verify(payload, &sig).unwrap(); // SHA-256 of the payload
        }
        Algorithm::EcdsaP384 => {
            use p384::ecdsa::signature::hazmat::PrehashVerifier;
            assert_eq!(sig.len(), 96);
            let vk = p384::ecdsa::VerifyingKey::from_public_key_der(public).unwrap();
            let sig = p384::ecdsa::Signature::from_slice(sig).unwrap();
            // Notary hashes with SHA-256 for P-384 too.
            vk.verify_prehash(&Sha256::digest(payload), &sig).unwrap();
        }
        Algorithm::Ed25519 => {
            let vk = ed25519_dalek::VerifyingKey::from_bytes(public.try_into().unwrap()).unwrap();
            let sig = ed25519_dalek::Signature::from_slice(sig).unwrap();
            vk.verify_strict(payload, &sig).unwrap();
        }
        Algorithm::Rsa2048 | Algorithm::Rsa3072 | Algorithm::Rsa4096 => {
            use rsa::pkcs8::DecodePublicKey as _;
            use rsa::signature::Verifier;
            let pk = rsa::RsaPublicKey::from_public_key_der(public).unwrap();
            assert_eq!(sig.len() * 8, key.algorithm.rsa_bits().unwrap() as usize);
            let vk = rsa::pss::VerifyingKey::<Sha256>::new_with_salt_len(pk, 32);
            vk.verify(payload, &rsa::pss::Signature::try_from(sig).unwrap())
                .unwrap();
        }
    }
}

fn generate_and_sign_every_algorithm() -> HashMap<Algorithm, BackendKey> {
    let backend = Pkcs11Backend::open("hsm", config("notary", Some(PIN)));
    assert_eq!(backend.availability(), Availability::Available);
    assert_eq!(backend.kind(), "pkcs11");
    assert_eq!(backend.concurrency(), 2);
    let info = backend.device_info();
    assert_eq!(info.label, "notary");
    assert_eq!(info.model, "SoftHSM v2");
    assert!(!info.serial.is_empty());
    assert_eq!(backend.algorithms(), Algorithm::ALL.to_vec());
    assert!(backend.list().unwrap().is_empty());

    let mut keys = HashMap::new();
    for algorithm in Algorithm::ALL {
        let label = format!("targets/{algorithm}");
        let key = backend
            .generate(&KeySpec {
                algorithm,
                label: label.clone(),
            })
            .unwrap();
        assert_eq!(key.algorithm, algorithm);
        assert_eq!(key.label, label);
        assert_eq!(key.public.keytype(), algorithm.key_type());
        if algorithm == Algorithm::Ed25519 {
            assert_eq!(key.public.public_bytes().len(), 32);
        }
        assert_eq!(key.uri.scheme(), "pkcs11");
        assert_eq!(key.uri.get("token"), Some("notary"));
        assert_eq!(key.uri.get("object"), Some(label.as_str()));
        assert_eq!(key.uri.get_bytes("id").map(<[u8]>::len), Some(16));

        // Through the URI's text form, as the daemon stores it.
        let uri = KeyUri::from_str(&key.uri.to_string()).unwrap();
        assert_eq!(uri, key.uri);
        for payload in [&b"{\"signed\":{}}"[..], b"", &[0xA5; 5000]] {
            let sig = backend.sign(&uri, payload).unwrap();
            verify(&key, payload, &sig);
        }
        // Generated on the token and never extractable, as the token says.
        let origin = backend.key_origin().unwrap().key_origin(&uri).unwrap();
        assert!(origin.local && origin.never_extractable, "{origin:?}");
        keys.insert(algorithm, key);
    }

    let listed = backend.list().unwrap();
    assert_eq!(listed.len(), keys.len());
    for key in keys.values() {
        assert!(listed.contains(key), "{} not listed", key.uri);
    }

    // A URI for another token, or an unknown id, is not found.
    let p256 = &keys[&Algorithm::EcdsaP256];
    let other = KeyUri::new("pkcs11")
        .with("token", "other")
        .with_bytes("id", p256.uri.get_bytes("id").unwrap());
    assert!(matches!(
        backend.sign(&other, b"x"),
        Err(BackendError::KeyNotFound(_))
    ));
    let unknown = KeyUri::new("pkcs11")
        .with("token", "notary")
        .with_bytes("id", &[9; 16]);
    assert!(matches!(
        backend.sign(&unknown, b"x"),
        Err(BackendError::KeyNotFound(_))
    ));
    let bad = KeyUri::new("soft").with("name", "x");
    assert!(matches!(
        backend.sign(&bad, b"x"),
        Err(BackendError::InvalidUri { .. })
    ));
    keys
}

fn reopen_lists_the_same_keys(keys: &HashMap<Algorithm, BackendKey>) {
    // A restart: the previous backend is gone, the module is loaded afresh.
    let backend = Pkcs11Backend::open("hsm", config("notary", Some(PIN)));
    let listed: HashMap<Algorithm, BackendKey> = backend
        .list()
        .unwrap()
        .into_iter()
        .map(|k| (k.algorithm, k))
        .collect();
    assert_eq!(listed.len(), keys.len());
    for (algorithm, key) in keys {
        let found = &listed[algorithm];
        assert_eq!(found.public.key_id(), key.public.key_id());
        assert_eq!(found, key);
        let sig = backend.sign(&found.uri, b"after restart").unwrap();
        verify(key, b"after restart", &sig);
    }
}

fn concurrent_signing(key: &BackendKey) {
    // More threads than sessions: they queue for the pool.
    let backend = Arc::new(Pkcs11Backend::open("hsm", config("notary", Some(PIN))));
    // With a configured PIN a lost login is restored on the next sign (the
    // threads race to find it gone; one logs in).
    let login = backend.token_login().unwrap();
    login.logout().unwrap();
    assert!(!login.pin_status().unwrap().logged_in);
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let backend = backend.clone();
            let key = key.clone();
            std::thread::spawn(move || {
                for j in 0..25 {
                    let payload = format!("payload {i} {j}");
                    let sig = backend.sign(&key.uri, payload.as_bytes()).unwrap();
                    verify(&key, payload.as_bytes(), &sig);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(login.pin_status().unwrap().logged_in);
}

/// A self-signed certificate for `key`, signed through the backend.
fn self_signed(backend: &Pkcs11Backend, key: &BackendKey, serial: u8) -> Vec<u8> {
    use x509_cert::{name::Name, serial_number::SerialNumber, time::Validity};
    let ecdsa_with_sha256 = spki::AlgorithmIdentifierOwned {
        oid: der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2"),
        parameters: None,
    };
    let name = Name::from_str("CN=docker.io/library/test").unwrap();
    let tbs = x509_cert::TbsCertificate {
        version: x509_cert::Version::V3,
        serial_number: SerialNumber::new(&[serial]).unwrap(),
        signature: ecdsa_with_sha256.clone(),
        issuer: name.clone(),
        validity: Validity::from_now(Duration::from_secs(3600)).unwrap(),
        subject: name,
        subject_public_key_info: spki::SubjectPublicKeyInfoOwned::from_der(
            key.public.public_bytes(),
        )
        .unwrap(),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: None,
    };
    let raw = backend.sign(&key.uri, &tbs.to_der().unwrap()).unwrap();
    let sig = p256::ecdsa::Signature::from_slice(&raw).unwrap().to_der();
    x509_cert::Certificate {
        tbs_certificate: tbs,
        signature_algorithm: ecdsa_with_sha256,
        signature: BitString::from_bytes(sig.as_bytes()).unwrap(),
    }
    .to_der()
    .unwrap()
}

fn certificates(keys: &HashMap<Algorithm, BackendKey>) {
    let backend = Pkcs11Backend::open("hsm", config("notary", Some(PIN)));
    let store = backend.certificates().unwrap();
    let key = &keys[&Algorithm::EcdsaP256];
    assert_eq!(store.certificate(&key.uri).unwrap(), None);

    let first = self_signed(&backend, key, 1);
    store.put_certificate(&key.uri, &first).unwrap();
    assert_eq!(store.certificate(&key.uri).unwrap(), Some(first));
    let second = self_signed(&backend, key, 2);
    store.put_certificate(&key.uri, &second).unwrap();
    assert_eq!(store.certificate(&key.uri).unwrap(), Some(second.clone()));

    // The certificate is read back after a restart, and the key is listed once.
    drop(backend);
    let backend = Pkcs11Backend::open("hsm", config("notary", Some(PIN)));
    let store = backend.certificates().unwrap();
    assert_eq!(store.certificate(&key.uri).unwrap(), Some(second.clone()));
    assert_eq!(backend.list().unwrap().len(), keys.len());

    // A certificate for another key, or not a certificate at all, is refused.
    let p384 = &keys[&Algorithm::EcdsaP384];
    let err = store.put_certificate(&p384.uri, &second).unwrap_err();
    assert!(err.to_string().contains("not this key's"), "{err}");
    assert!(store
        .put_certificate(&key.uri, b"not a certificate")
        .is_err());
    assert_eq!(store.certificate(&key.uri).unwrap(), Some(second));
}

fn delete(key: &BackendKey) {
    let backend = Pkcs11Backend::open("hsm", config("notary", Some(PIN)));
    assert!(backend.sign(&key.uri, b"x").is_ok());
    backend.delete(&key.uri).unwrap();
    assert!(!backend.list().unwrap().iter().any(|k| k.uri == key.uri));
    assert!(matches!(
        backend.sign(&key.uri, b"x"),
        Err(BackendError::KeyNotFound(_))
    ));
    assert!(matches!(
        backend.delete(&key.uri),
        Err(BackendError::KeyNotFound(_))
    ));
}

fn prompt_mode() {
    let backend = Pkcs11Backend::open("prompt", config("prompt", None));
    assert_eq!(backend.availability(), Availability::Available);
    let login = backend.token_login().unwrap();
    assert!(!login.pin_status().unwrap().logged_in);
    assert!(backend.list().unwrap().is_empty());

    let spec = KeySpec {
        algorithm: Algorithm::EcdsaP256,
        label: "targets/releases".into(),
    };
    assert!(matches!(
        backend.generate(&spec),
        Err(BackendError::LoginRequired)
    ));

    let err = login.login(&SecretString::from("999999")).unwrap_err();
    assert!(
        matches!(err, BackendError::WrongPin(TriesLeft::Low)),
        "{err:?}"
    );
    login.login(&SecretString::from(PIN)).unwrap();
    let status = login.pin_status().unwrap();
    assert!(status.logged_in);
    assert!(!status.blocked);
    // A good login clears CKF_USER_PIN_COUNT_LOW.
    assert_eq!(status.tries_left, TriesLeft::Unknown);

    let key = backend.generate(&spec).unwrap();
    let sig = backend.sign(&key.uri, b"unlocked").unwrap();
    verify(&key, b"unlocked", &sig);

    login.logout().unwrap();
    assert!(!login.pin_status().unwrap().logged_in);
    // Public objects stay listable while locked.
    assert_eq!(backend.list().unwrap(), vec![key.clone()]);
    assert!(matches!(
        backend.sign(&key.uri, b"x"),
        Err(BackendError::LoginRequired)
    ));
    assert!(matches!(
        backend.delete(&key.uri),
        Err(BackendError::LoginRequired)
    ));
    assert_eq!(backend.availability(), Availability::Available);

    // Logging in again: the cached key handle died with the logout.
    login.login(&SecretString::from(PIN)).unwrap();
    let sig = backend.sign(&key.uri, b"again").unwrap();
    verify(&key, b"again", &sig);

    // While logged in, a PIN is still checked: the right one keeps the
    // token usable, a wrong one is refused and leaves it logged out.
    login.login(&SecretString::from(PIN)).unwrap();
    let sig = backend.sign(&key.uri, b"checked").unwrap();
    verify(&key, b"checked", &sig);
    let err = login.login(&SecretString::from("999999")).unwrap_err();
    assert!(matches!(err, BackendError::WrongPin(_)), "{err:?}");
    assert!(!login.pin_status().unwrap().logged_in);
    assert!(matches!(
        backend.sign(&key.uri, b"x"),
        Err(BackendError::LoginRequired)
    ));
    login.login(&SecretString::from(PIN)).unwrap();
    let sig = backend.sign(&key.uri, b"after").unwrap();
    verify(&key, b"after", &sig);
}

fn token_initialised_later(hsm: &SoftHsm) {
    // No other backend is open here, so the module is finalised while this
    // one waits, and its next attempt initialises SoftHSM afresh.
    let backend = Pkcs11Backend::open("late", config("late", Some(PIN)));
    let reason = unavailable_reason(&backend);
    assert!(reason.contains("no token labelled \"late\""), "{reason}");
    hsm.init_token("late", PIN);
    // Retries are spaced out, so not picked up at once...
    assert_eq!(unavailable_reason(&backend), reason);
    std::thread::sleep(Duration::from_millis(5100));
    // ...but on the first use after the interval.
    assert_eq!(backend.availability(), Availability::Available);
    assert_eq!(backend.device_info().label, "late");
}
