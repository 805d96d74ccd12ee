//! The real `yubikey` crate, through the real pcscd and vpcd, against the
//! virtual card: what the YubiKey backend relies on.

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use sha2::{Digest, Sha256};
use virtual_piv::{Profile, TestCard};
use yubikey::piv::{self, AlgorithmId, SlotId};
use yubikey::{MgmKey, PinPolicy, Serial, TouchPolicy, YubiKey};

fn open(card: &TestCard) -> YubiKey {
    YubiKey::open_by_serial(Serial(card.serial())).expect("open by serial")
}

#[test]
fn opens_by_serial_among_two_cards_and_signs_p256() {
    let old = TestCard::start(Profile::yubikey_5_4(11_000_001)).unwrap();
    let new = TestCard::start(Profile::yubikey_5_7(11_000_002)).unwrap();

    let mut yk = open(&new);
    assert_eq!(yk.serial(), Serial(11_000_002));
    assert_eq!((yk.version().major, yk.version().minor), (5, 7));
    yk.verify_pin(b"123456").unwrap();
    yk.authenticate(&MgmKey::get_default(&yk).unwrap()).unwrap();
    let spki = piv::generate(
        &mut yk,
        SlotId::Authentication,
        AlgorithmId::EccP256,
        PinPolicy::Once,
        TouchPolicy::Never,
    )
    .unwrap();
    let digest = Sha256::digest(b"targets.json");
    let der = piv::sign_data(
        &mut yk,
        &digest,
        AlgorithmId::EccP256,
        SlotId::Authentication,
    )
    .unwrap();
    let key =
        p256::ecdsa::VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes()).unwrap();
    key.verify_prehash(&digest, &p256::ecdsa::Signature::from_der(&der).unwrap())
        .unwrap();

    let old_yk = open(&old);
    assert_eq!((old_yk.version().major, old_yk.version().minor), (5, 4));
}
