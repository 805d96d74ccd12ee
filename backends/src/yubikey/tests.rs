//! The backend's own rules, against the in-memory card below the seam.

use super::fake::{FakeConnector, Shared, DEFAULT_PIN, DEFAULT_PUK};
use super::{YubiKeyBackend, YubiKeyConfig};
use crate::backend::{CertificateStore, KeyBackend, KeySpec};
use crate::error::Precondition;
use crate::piv::{PinPolicy, PivKeyOptions, SetupSecrets, Slot, TouchNeed, TouchPolicy};
use crate::Algorithm::{EcdsaP256, EcdsaP384};
use crate::{Algorithm, BackendError, BackendKey, TriesLeft};
use notary_tuf::{verify, SignatureMethod};
use secrecy::SecretString;

const NEW_PIN: &str = "654321";
const NEW_PUK: &str = "87654321";

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_string())
}

fn backend(connector: &FakeConnector, serial: Option<u32>) -> YubiKeyBackend {
    YubiKeyBackend::with_connector("yk", YubiKeyConfig { serial }, Box::new(connector.clone()))
}

fn setup_secrets() -> SetupSecrets {
    SetupSecrets {
        current_pin: secret(DEFAULT_PIN),
        new_pin: secret(NEW_PIN),
        current_puk: secret(DEFAULT_PUK),
        new_puk: secret(NEW_PUK),
    }
}

/// A backend on one card that was set up, with the PIN verified.
fn ready() -> (YubiKeyBackend, Shared) {
    let connector = FakeConnector::default();
    let card = connector.plug(1001);
    let b = backend(&connector, Some(1001));
    b.piv().unwrap().setup(&setup_secrets(), false).unwrap();
    (b, card)
}

fn generate(
    b: &YubiKeyBackend,
    slot: &str,
    algorithm: Algorithm,
    pin: PinPolicy,
    touch: TouchPolicy,
) -> BackendKey {
    let spec = KeySpec {
        algorithm,
        label: format!("key in {slot}"),
    };
    let options = PivKeyOptions {
        slot: Some(slot.parse().unwrap()),
        pin_policy: pin,
        touch_policy: touch,
        role: "targets".into(),
        gun: "example.com/app".into(),
    };
    if pin == PinPolicy::Always {
        b.token_login().unwrap().login(&secret(NEW_PIN)).unwrap();
    }
    b.piv().unwrap().generate_in_slot(&spec, &options).unwrap()
}

/// Signs a throwaway message, for tests that only look at the refusal.
fn sign_x(b: &YubiKeyBackend, key: &BackendKey) -> Result<Vec<u8>, BackendError> {
    b.sign(&key.uri, b"x")
}

fn generate_refused(b: &YubiKeyBackend, spec: &KeySpec, options: &PivKeyOptions) -> BackendError {
    b.piv()
        .unwrap()
        .generate_in_slot(spec, options)
        .unwrap_err()
}

fn touch_need(b: &YubiKeyBackend, key: &BackendKey) -> TouchNeed {
    b.piv().unwrap().touch_hint(&key.uri).unwrap().need
}

fn assert_signs(b: &YubiKeyBackend, key: &BackendKey) {
    let sig = b.sign(&key.uri, b"{\"_type\":\"Targets\"}").unwrap();
    verify(
        &key.public,
        SignatureMethod::Ecdsa,
        b"{\"_type\":\"Targets\"}",
        &sig,
    )
    .unwrap();
}

#[test]
fn without_a_serial_several_cards_are_an_error_listing_them() {
    let connector = FakeConnector::default();
    connector.plug(2002);
    connector.plug(1001);
    let crate::Availability::Unavailable(why) = backend(&connector, None).availability() else {
        panic!("two cards and no serial must not be usable");
    };
    assert!(why.contains("serials 1001, 2002"), "{why}");
    assert!(why.contains("set `serial`"), "{why}");
    assert_eq!(backend(&connector, Some(2002)).device_info().serial, "2002");
    let b = backend(&connector, Some(3003));
    let crate::Availability::Unavailable(why) = b.availability() else {
        panic!("absent serial");
    };
    assert!(why.contains("YubiKey 3003 not found"), "{why}");
    assert!(why.contains("1001, 2002"), "{why}");
}

#[test]
fn factory_management_key_is_never_used_for_generation() {
    let connector = FakeConnector::default();
    let card = connector.plug(1001);
    let b = backend(&connector, Some(1001));
    let spec = KeySpec {
        algorithm: Algorithm::EcdsaP256,
        label: "k".into(),
    };
    let err = b.generate(&spec).unwrap_err();
    assert!(
        matches!(
            err,
            BackendError::Precondition {
                reason: Precondition::SetupNeeded,
                ..
            }
        ),
        "{err}"
    );
    assert!(err
        .to_string()
        .contains("notaryctl yubikey setup --serial 1001"));
    let log = &card.lock().unwrap().log;
    assert!(
        !log.contains(&"AUTH-MGMT") && !log.contains(&"VERIFY"),
        "{log:?}"
    );
}

#[test]
fn setup_changes_pin_puk_and_management_key_once() {
    let (b, card) = ready();
    {
        let s = card.lock().unwrap();
        assert_eq!((s.pin.as_str(), s.puk.as_str()), (NEW_PIN, NEW_PUK));
        assert!(!s.mgmt_default && s.mgmt_protected);
    }
    let err = b.piv().unwrap().setup(&setup_secrets(), false).unwrap_err();
    assert!(
        matches!(
            err,
            BackendError::Precondition {
                reason: Precondition::AlreadySetUp,
                ..
            }
        ),
        "{err}"
    );
    let again = SetupSecrets {
        current_pin: secret(NEW_PIN),
        new_pin: secret("11112222"),
        current_puk: secret(NEW_PUK),
        new_puk: secret("33334444"),
    };
    b.piv().unwrap().setup(&again, true).unwrap();
    assert_eq!(card.lock().unwrap().pin, "11112222");
}

#[test]
fn setup_with_a_wrong_puk_changes_nothing() {
    let connector = FakeConnector::default();
    let card = connector.plug(1001);
    let b = backend(&connector, Some(1001));
    let secrets = SetupSecrets {
        current_puk: secret("00000000"),
        ..setup_secrets()
    };
    let err = b.piv().unwrap().setup(&secrets, false).unwrap_err();
    assert!(
        matches!(
            err,
            BackendError::Precondition {
                reason: Precondition::WrongPuk,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("2 tries left"), "{err}");
    let s = card.lock().unwrap();
    assert_eq!(s.pin, DEFAULT_PIN);
    assert!(s.mgmt_default);
}

#[test]
fn generated_keys_are_listed_with_policies_and_records() {
    let (b, _card) = ready();
    let a = generate(&b, "9a", EcdsaP256, PinPolicy::Once, TouchPolicy::Never);
    let c = generate(&b, "9c", EcdsaP384, PinPolicy::Always, TouchPolicy::Always);
    let r = generate(&b, "82", EcdsaP256, PinPolicy::Never, TouchPolicy::Cached);
    assert_eq!(a.uri.to_string(), "yubikey:serial=1001;slot=9a");
    let listed = b.list().unwrap();
    assert_eq!(listed.len(), 3);
    for key in [&a, &c, &r] {
        let found = listed.iter().find(|k| k.uri == key.uri).unwrap();
        assert_eq!(found.public, key.public);
        assert_eq!(found.label, key.label);
    }
    let status = b.piv().unwrap().status().unwrap();
    let slot_9c = status
        .slots
        .iter()
        .find(|s| s.slot == "9c".parse::<Slot>().unwrap())
        .unwrap();
    assert_eq!(slot_9c.pin_policy, Some(PinPolicy::Always));
    assert_eq!(slot_9c.touch_policy, Some(TouchPolicy::Always));
    assert_eq!(status.default_management_key, Some(false));
    // Record certificates describe keys; they are not offered as the
    // key's certificate (that is for notary root certificates).
    assert_eq!(b.certificate(&a.uri).unwrap(), None);
}

#[test]
fn an_occupied_slot_is_never_overwritten() {
    let (b, _card) = ready();
    let first = generate(&b, "9a", EcdsaP256, PinPolicy::Once, TouchPolicy::Never);
    let spec = KeySpec {
        algorithm: Algorithm::EcdsaP256,
        label: "second".into(),
    };
    let options = PivKeyOptions {
        slot: Some("9a".parse().unwrap()),
        ..PivKeyOptions::default()
    };
    let err = generate_refused(&b, &spec, &options);
    assert!(
        matches!(
            err,
            BackendError::Precondition {
                reason: Precondition::SlotOccupied,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&first.public.key_id()), "{err}");
    assert_signs(&b, &first);
}

#[test]
fn pin_always_verifies_right_before_each_signature() {
    let (b, card) = ready();
    let spec = KeySpec {
        algorithm: Algorithm::EcdsaP256,
        label: "always".into(),
    };
    let options = PivKeyOptions {
        slot: Some("9c".parse().unwrap()),
        pin_policy: PinPolicy::Always,
        touch_policy: TouchPolicy::Never,
        ..PivKeyOptions::default()
    };
    let err = generate_refused(&b, &spec, &options);
    assert!(matches!(err, BackendError::LoginRequired), "{err}");
    assert!(
        b.list().unwrap().is_empty(),
        "nothing generated without the PIN"
    );
    let key = generate(&b, "9c", EcdsaP256, PinPolicy::Always, TouchPolicy::Never);
    let login = b.token_login().unwrap();
    for _ in 0..2 {
        // Without a PIN for this signature the daemon must ask for one.
        assert!(matches!(sign_x(&b, &key), Err(BackendError::LoginRequired)));
        login.login(&secret(NEW_PIN)).unwrap();
        card.lock().unwrap().log.clear();
        assert_signs(&b, &key);
        let log = card.lock().unwrap().log.clone();
        let sign_at = log.iter().position(|c| *c == "SIGN").unwrap();
        assert_eq!(log[sign_at - 1], "VERIFY", "{log:?}");
    }
}

#[test]
fn pin_once_lasts_between_signatures() {
    let (b, card) = ready();
    let key = generate(&b, "9a", EcdsaP384, PinPolicy::Once, TouchPolicy::Never);
    b.token_login().unwrap().logout().unwrap();
    assert!(matches!(sign_x(&b, &key), Err(BackendError::LoginRequired)));
    b.token_login().unwrap().login(&secret(NEW_PIN)).unwrap();
    card.lock().unwrap().log.clear();
    assert_signs(&b, &key);
    assert_signs(&b, &key);
    let log = card.lock().unwrap().log.clone();
    assert!(!log.contains(&"VERIFY"), "{log:?}");
}

#[test]
fn wrong_pins_report_tries_and_block_without_retrying() {
    let (b, card) = ready();
    let login = b.token_login().unwrap();
    login.logout().unwrap();
    let err = login.login(&secret("000000")).unwrap_err();
    assert!(
        matches!(err, BackendError::WrongPin(TriesLeft::Exactly(2))),
        "{err}"
    );
    let err = login.login(&secret("000000")).unwrap_err();
    assert!(
        matches!(err, BackendError::WrongPin(TriesLeft::Exactly(1))),
        "{err}"
    );
    let err = login.login(&secret("000000")).unwrap_err();
    assert!(matches!(err, BackendError::PinBlocked), "{err}");
    let verifies = card
        .lock()
        .unwrap()
        .log
        .iter()
        .filter(|c| **c == "VERIFY")
        .count();
    // Setup's two VERIFYs plus exactly one per login: nothing retried.
    assert_eq!(verifies, 2 + 3);
    let status = login.pin_status().unwrap();
    assert!(status.blocked);
}

#[test]
fn a_missed_touch_is_not_a_pin_error() {
    let (b, card) = ready();
    let key = generate(&b, "9c", EcdsaP256, PinPolicy::Once, TouchPolicy::Always);
    assert_eq!(touch_need(&b, &key), TouchNeed::Required);
    card.lock().unwrap().touch_given = false;
    let err = sign_x(&b, &key).unwrap_err();
    assert!(matches!(err, BackendError::TouchTimeout(_)), "{err}");
    assert!(err.to_string().contains("slot 9c"), "{err}");
    // With the PIN missing it is the PIN the daemon asks for.
    b.token_login().unwrap().logout().unwrap();
    assert!(matches!(sign_x(&b, &key), Err(BackendError::LoginRequired)));
}

#[test]
fn touch_cached_needs_no_second_touch_prompt() {
    let (b, _card) = ready();
    let key = generate(&b, "83", EcdsaP256, PinPolicy::Never, TouchPolicy::Cached);
    // Generating signed the record certificate, which took a touch.
    assert_eq!(touch_need(&b, &key), TouchNeed::NotNeeded);
    let never = generate(&b, "84", EcdsaP256, PinPolicy::Never, TouchPolicy::Never);
    assert_eq!(touch_need(&b, &never), TouchNeed::NotNeeded);
}

#[test]
fn a_reinserted_card_is_reopened_without_a_restart() {
    let (b, card) = ready();
    let never = generate(&b, "82", EcdsaP256, PinPolicy::Never, TouchPolicy::Never);
    let once = generate(&b, "9a", EcdsaP256, PinPolicy::Once, TouchPolicy::Never);
    card.lock().unwrap().present = false;
    assert!(matches!(
        sign_x(&b, &never),
        Err(BackendError::Unavailable(_))
    ));
    {
        let mut s = card.lock().unwrap();
        s.present = true;
        s.reinsert();
    }
    assert_signs(&b, &never);
    // The card forgot its PIN state with the re-insertion.
    assert!(matches!(
        sign_x(&b, &once),
        Err(BackendError::LoginRequired)
    ));
}

#[test]
fn release_closes_the_card_and_the_next_use_reopens_it() {
    let (b, card) = ready();
    let key = generate(&b, "82", EcdsaP256, PinPolicy::Never, TouchPolicy::Never);
    b.piv().unwrap().release().unwrap();
    assert!(b.session.lock().unwrap().card.is_none());
    // Another program resets the card meanwhile.
    card.lock().unwrap().reinsert();
    assert_signs(&b, &key);
}

#[test]
fn uris_for_another_card_are_refused() {
    let (b, _card) = ready();
    let key = generate(&b, "82", EcdsaP256, PinPolicy::Never, TouchPolicy::Never);
    let other: crate::KeyUri = "yubikey:serial=999;slot=82".parse().unwrap();
    assert!(matches!(
        b.sign(&other, b"x"),
        Err(BackendError::KeyNotFound(_))
    ));
    let bad: crate::KeyUri = "yubikey:serial=1001;slot=9b".parse().unwrap();
    assert!(matches!(
        b.sign(&bad, b"x"),
        Err(BackendError::InvalidUri { .. })
    ));
    assert_signs(&b, &key);
}

#[test]
fn automatic_placement_skips_slots_holding_anything() {
    let (b, card) = ready();
    // Slot 82 holds only a certificate another tool put there.
    card.lock()
        .unwrap()
        .certs
        .insert("82".parse().unwrap(), vec![0x30, 0x00]);
    let spec = KeySpec {
        algorithm: Algorithm::EcdsaP256,
        label: "auto".into(),
    };
    let options = PivKeyOptions {
        touch_policy: TouchPolicy::Never,
        ..PivKeyOptions::default()
    };
    let key = b.piv().unwrap().generate_in_slot(&spec, &options).unwrap();
    assert_eq!(key.uri.get("slot"), Some("83"));
    let explicit = PivKeyOptions {
        slot: Some("82".parse().unwrap()),
        ..options
    };
    let err = b
        .piv()
        .unwrap()
        .generate_in_slot(&spec, &explicit)
        .unwrap_err();
    assert!(err.to_string().contains("does not use"), "{err}");
}
