//! Helpers shared by the tests that drive the virtual card with the real
//! `yubikey` crate through pcscd.
#![allow(dead_code)] // each test binary uses a different subset

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use sha2::{Digest, Sha256};
use virtual_piv::TestCard;
use yubikey::piv::{self, AlgorithmId, SlotId};
use yubikey::{MgmKey, PinPolicy, Serial, TouchPolicy, YubiKey};

pub(crate) const PIN: &[u8] = b"123456";

pub(crate) fn open(card: &TestCard) -> YubiKey {
    YubiKey::open_by_serial(Serial(card.serial())).expect("open by serial")
}

/// Opened, PIN verified and authenticated with the factory management key.
pub(crate) fn open_as_admin(card: &TestCard) -> YubiKey {
    let mut yk = open(card);
    yk.verify_pin(PIN).expect("factory PIN");
    let key = MgmKey::get_default(&yk).expect("default management key");
    yk.authenticate(&key).expect("factory management key");
    yk
}

/// The DER inside a PIV certificate object (`70 <DER> 71 .. FE ..`).
pub(crate) fn certificate_from_object(object: &[u8]) -> Vec<u8> {
    assert_eq!(object[0], 0x70, "certificate tag");
    let (len, start) = match object[1] {
        0x82 => (usize::from(u16::from_be_bytes([object[2], object[3]])), 4),
        0x81 => (usize::from(object[2]), 3),
        n => (usize::from(n), 2),
    };
    object[start..start + len].to_vec()
}

/// A P-256 key in `slot` with PIN once and no touch (the plain case);
/// returns its SEC1 public point.
pub(crate) fn generate_p256(yk: &mut YubiKey, slot: SlotId) -> Vec<u8> {
    piv::generate(
        yk,
        slot,
        AlgorithmId::EccP256,
        PinPolicy::Once,
        TouchPolicy::Never,
    )
    .expect("generate P-256")
    .subject_public_key
    .raw_bytes()
    .to_vec()
}

/// Signs a digest with the P-256 key in `slot` and checks it with `point`.
pub(crate) fn assert_p256_signs(yk: &mut YubiKey, slot: SlotId, point: &[u8]) {
    let digest = Sha256::digest(b"targets.json");
    let der = piv::sign_data(yk, &digest, AlgorithmId::EccP256, slot).expect("sign");
    p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
        .unwrap()
        .verify_prehash(&digest, &p256::ecdsa::Signature::from_der(&der).unwrap())
        .expect("signature verifies");
}
