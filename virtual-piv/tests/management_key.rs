//! Management key: per-firmware defaults, replacement by a random key kept
//! PIN-protected on the card (what `notaryctl yubikey setup` does), touch.

mod common;

use common::{open, open_as_admin, PIN};
use rand_core::{OsRng, RngCore};
use std::time::Duration;
use virtual_piv::{Profile, TestCard, TestReaders, TouchMode, DEFAULT_MGM_KEY};
use yubikey::piv::{self, AlgorithmId, ManagementSlotId, SlotAlgorithmId, SlotId};
use yubikey::{Error, MgmAlgorithmId, MgmKey, PinPolicy, TouchPolicy, YubiKey};

/// A generation attempt; the result says whether the management key was accepted.
fn generate(yk: &mut YubiKey) -> Result<(), Error> {
    piv::generate(
        yk,
        SlotId::Authentication,
        AlgorithmId::EccP256,
        PinPolicy::Once,
        TouchPolicy::Never,
    )
    .map(drop)
}

fn random_aes192() -> MgmKey {
    let mut bytes = [0u8; 24];
    OsRng.fill_bytes(&mut bytes);
    MgmKey::from_bytes(bytes, Some(MgmAlgorithmId::Aes192)).unwrap()
}

fn mgm_metadata(yk: &mut YubiKey) -> piv::SlotMetadata {
    piv::metadata(yk, SlotId::Management(ManagementSlotId::Management)).unwrap()
}

#[test]
fn firmware_decides_the_default_algorithm() {
    let readers = TestReaders::acquire().unwrap();
    let card = readers.insert(Profile::yubikey_5_7(25_000_001)).unwrap();
    let mut yk = open(&card);
    let metadata = mgm_metadata(&mut yk);
    assert_eq!(
        metadata.algorithm,
        SlotAlgorithmId::Management(MgmAlgorithmId::Aes192)
    );
    assert_eq!(metadata.default, Some(true));
    let three_des = MgmKey::from_bytes(DEFAULT_MGM_KEY, Some(MgmAlgorithmId::ThreeDes)).unwrap();
    assert!(yk.authenticate(&three_des).is_err());
    assert_eq!(generate(&mut yk), Err(Error::AuthenticationError));
    yk.authenticate(&MgmKey::get_default(&yk).unwrap()).unwrap();
    generate(&mut yk).unwrap();

    let card = readers.insert(Profile::yubikey_5_4(25_000_002)).unwrap();
    let mut yk = open(&card);
    assert_eq!(
        mgm_metadata(&mut yk).algorithm,
        SlotAlgorithmId::Management(MgmAlgorithmId::ThreeDes)
    );
    yk.authenticate(&three_des).unwrap();
}

#[test]
fn replaced_key_is_kept_pin_protected_and_the_default_stops_working() {
    let card = TestCard::start(Profile::yubikey_5_4(25_000_003)).unwrap();
    let mut yk = open_as_admin(&card);
    random_aes192().set_protected(&mut yk).unwrap();
    drop(yk);

    let mut yk = open(&card);
    assert!(yk.authenticate(&MgmKey::get_default(&yk).unwrap()).is_err());
    assert_eq!(mgm_metadata(&mut yk).default, Some(false));
    // The stored key is only readable after the PIN.
    assert!(MgmKey::get_protected(&mut yk).is_err());
    yk.verify_pin(PIN).unwrap();
    let key = MgmKey::get_protected(&mut yk).unwrap();
    assert_eq!(key.algorithm_id(), MgmAlgorithmId::Aes192);
    yk.authenticate(&key).unwrap();
    generate(&mut yk).unwrap();
}

#[test]
fn touch_protected_management_key_needs_a_touch() {
    let card = TestCard::start(Profile::yubikey_5_7(25_000_004)).unwrap();
    let mut yk = open_as_admin(&card);
    let key = random_aes192();
    key.set_manual(&mut yk, true).unwrap();
    card.set_touch(TouchMode::Never);
    card.set_touch_timeout(Duration::from_millis(300));
    assert!(yk.authenticate(&key).is_err());
    card.set_touch(TouchMode::Immediate);
    yk.authenticate(&key).unwrap();
    assert_eq!(card.touch_requests(), 2);
}
