//! Generate and sign with each algorithm; PIN policies; certificates,
//! metadata and attestation as the YubiKey backend reads them.

mod common;

use common::{assert_p256_signs, certificate_from_object, generate_p256, open, open_as_admin, PIN};
use der::{Decode, Encode};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::signature::Verifier;
use rsa::pkcs1::DecodeRsaPublicKey;
use sha2::{Digest, Sha256, Sha384};
use virtual_piv::{ins, root_certificate_der, Profile, TestCard, TestReaders};
use yubikey::certificate::CertInfo;
use yubikey::piv::{self, AlgorithmId, SlotId};
use yubikey::{Certificate, Error, PinPolicy, TouchPolicy};

#[test]
fn p256_and_p384_signatures_verify() {
    let card = TestCard::start(Profile::yubikey_5_7(23_000_001)).unwrap();
    let mut yk = open_as_admin(&card);

    let slot = SlotId::Retired(piv::RetiredSlotId::R1);
    let point = generate_p256(&mut yk, slot);
    assert_p256_signs(&mut yk, slot, &point);

    let spki = piv::generate(
        &mut yk,
        SlotId::Authentication,
        AlgorithmId::EccP384,
        PinPolicy::Once,
        TouchPolicy::Never,
    )
    .unwrap();
    let digest = Sha384::digest(b"targets.json");
    let der = piv::sign_data(
        &mut yk,
        &digest,
        AlgorithmId::EccP384,
        SlotId::Authentication,
    )
    .unwrap();
    p384::ecdsa::VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes())
        .unwrap()
        .verify_prehash(&digest, &p384::ecdsa::Signature::from_der(&der).unwrap())
        .unwrap();
}

#[test]
fn ed25519_on_firmware_5_7_only() {
    let readers = TestReaders::acquire().unwrap();
    let card = readers.insert(Profile::yubikey_5_7(23_000_006)).unwrap();
    let mut yk = open_as_admin(&card);
    let spki = piv::generate(
        &mut yk,
        SlotId::Authentication,
        AlgorithmId::Ed25519,
        PinPolicy::Once,
        TouchPolicy::Never,
    )
    .unwrap();
    let message = b"timestamp.json";
    let signature = piv::sign_data(
        &mut yk,
        message,
        AlgorithmId::Ed25519,
        SlotId::Authentication,
    )
    .unwrap();
    let key: [u8; 32] = spki.subject_public_key.raw_bytes().try_into().unwrap();
    ed25519_dalek::VerifyingKey::from_bytes(&key)
        .unwrap()
        .verify_strict(
            message,
            &ed25519_dalek::Signature::from_slice(&signature).unwrap(),
        )
        .unwrap();

    let old = readers.insert(Profile::yubikey_5_4(23_000_007)).unwrap();
    let mut yk = open_as_admin(&old);
    assert!(piv::generate(
        &mut yk,
        SlotId::Authentication,
        AlgorithmId::Ed25519,
        PinPolicy::Once,
        TouchPolicy::Never,
    )
    .is_err());
}

#[test]
fn rsa_2048_signs_a_host_padded_block() {
    let card = TestCard::start(Profile::yubikey_5_4(23_000_002)).unwrap();
    let mut yk = open_as_admin(&card);
    let spki = piv::generate(
        &mut yk,
        SlotId::KeyManagement,
        AlgorithmId::Rsa2048,
        PinPolicy::Once,
        TouchPolicy::Never,
    )
    .unwrap();
    let public = rsa::RsaPublicKey::from_pkcs1_der(spki.subject_public_key.raw_bytes()).unwrap();

    // EMSA-PKCS1-v1_5 with SHA-256, done by the host as the backend does.
    const SHA256_DIGEST_INFO: [u8; 19] = [
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    let message = b"snapshot.json";
    let mut block = vec![0x00, 0x01];
    block.resize(256 - SHA256_DIGEST_INFO.len() - 32 - 1, 0xFF);
    block.push(0x00);
    block.extend_from_slice(&SHA256_DIGEST_INFO);
    block.extend_from_slice(&Sha256::digest(message));
    // 256 bytes of input: the crate sends it in two chained APDUs.
    let signature =
        piv::sign_data(&mut yk, &block, AlgorithmId::Rsa2048, SlotId::KeyManagement).unwrap();
    rsa::pkcs1v15::VerifyingKey::<Sha256>::new(public)
        .verify(
            message,
            &rsa::pkcs1v15::Signature::try_from(&signature[..]).unwrap(),
        )
        .unwrap();
}

#[test]
fn pin_always_slot_needs_a_verify_right_before_each_signature() {
    let card = TestCard::start(Profile::yubikey_5_4(23_000_003)).unwrap();
    let mut yk = open_as_admin(&card);
    // 9C defaults to PIN "always", as on a real YubiKey.
    piv::generate(
        &mut yk,
        SlotId::Signature,
        AlgorithmId::EccP256,
        PinPolicy::Default,
        TouchPolicy::Never,
    )
    .unwrap();
    let metadata = piv::metadata(&mut yk, SlotId::Signature).unwrap();
    assert_eq!(
        metadata.policy,
        Some((PinPolicy::Always, TouchPolicy::Never))
    );

    let digest = Sha256::digest(b"x");
    card.clear_commands();
    yk.verify_pin(PIN).unwrap();
    piv::sign_data(&mut yk, &digest, AlgorithmId::EccP256, SlotId::Signature).unwrap();
    assert_eq!(
        piv::sign_data(&mut yk, &digest, AlgorithmId::EccP256, SlotId::Signature),
        Err(Error::AuthenticationError),
        "the PIN verification was used up by the first signature"
    );
    yk.verify_pin(PIN).unwrap();
    piv::sign_data(&mut yk, &digest, AlgorithmId::EccP256, SlotId::Signature).unwrap();
    let verifies = card
        .commands()
        .iter()
        .filter(|c| c.ins == ins::VERIFY)
        .count();
    assert_eq!(verifies, 2);
}

#[test]
fn pin_once_slot_signs_until_the_session_is_reset() {
    let card = TestCard::start(Profile::yubikey_5_4(23_000_004)).unwrap();
    let mut yk = open_as_admin(&card);
    piv::generate(
        &mut yk,
        SlotId::Authentication,
        AlgorithmId::EccP256,
        PinPolicy::Once,
        TouchPolicy::Never,
    )
    .unwrap();
    let digest = Sha256::digest(b"x");
    for _ in 0..2 {
        piv::sign_data(
            &mut yk,
            &digest,
            AlgorithmId::EccP256,
            SlotId::Authentication,
        )
        .unwrap();
    }
    // get_pin_retries SELECTs the applet again, which forgets the PIN.
    yk.get_pin_retries().unwrap();
    assert_eq!(
        piv::sign_data(
            &mut yk,
            &digest,
            AlgorithmId::EccP256,
            SlotId::Authentication
        ),
        Err(Error::AuthenticationError)
    );
}

#[test]
fn certificates_are_stored_read_back_and_attested() {
    let card = TestCard::start(Profile::yubikey_5_7(23_000_005)).unwrap();
    let mut yk = open_as_admin(&card);
    piv::generate(
        &mut yk,
        SlotId::Signature,
        AlgorithmId::EccP256,
        PinPolicy::Always,
        TouchPolicy::Always,
    )
    .unwrap();

    // Longer than one APDU both ways: chaining in, GET RESPONSE out.
    let der = root_certificate_der();
    assert!(der.len() > 255);
    Certificate::from_bytes(der.clone())
        .unwrap()
        .write(&mut yk, SlotId::Signature, CertInfo::Uncompressed)
        .unwrap();
    drop(yk);
    let mut yk = open(&card);
    let read = Certificate::read(&mut yk, SlotId::Signature).unwrap();
    assert_eq!(read.subject(), "CN=Virtual YubiKey Test PIV Root CA");
    assert!(matches!(
        Certificate::read(&mut yk, SlotId::Authentication),
        Err(Error::InvalidObject) | Err(Error::NotFound)
    ));

    // Attestation: slot certificate <- device (F9) certificate <- root.
    let attestation = piv::attest(&mut yk, SlotId::Signature).unwrap();
    let attestation = x509_cert::Certificate::from_der(&attestation).unwrap();
    let device = yk.fetch_object(0x5F_FF01).unwrap();
    let device = x509_cert::Certificate::from_der(&certificate_from_object(&device)).unwrap();
    let root = x509_cert::Certificate::from_der(&der).unwrap();
    assert_signed_by(&attestation, &device);
    assert_signed_by(&device, &root);
    let metadata = piv::metadata(&mut yk, SlotId::Signature).unwrap();
    assert_eq!(
        attestation
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes(),
        metadata.public.unwrap().subject_public_key.raw_bytes()
    );
    let extension = |oid: &str| {
        attestation
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id.to_string() == oid)
            .map(|e| e.extn_value.as_bytes().to_vec())
    };
    assert_eq!(extension("1.3.6.1.4.1.41482.3.3"), Some(vec![5, 7, 1]));
    assert_eq!(extension("1.3.6.1.4.1.41482.3.8"), Some(vec![3, 2]));
    assert_eq!(
        extension("1.3.6.1.4.1.41482.3.7"),
        Some(
            der::asn1::Int::new(&23_000_005u32.to_be_bytes())
                .unwrap()
                .to_der()
                .unwrap()
        )
    );
}

fn assert_signed_by(cert: &x509_cert::Certificate, issuer: &x509_cert::Certificate) {
    assert_eq!(cert.tbs_certificate.issuer, issuer.tbs_certificate.subject);
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(
        issuer
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes(),
    )
    .unwrap();
    let signature = p256::ecdsa::Signature::from_der(cert.signature.raw_bytes()).unwrap();
    key.verify(&cert.tbs_certificate.to_der().unwrap(), &signature)
        .unwrap();
}

#[test]
fn firmware_before_5_3_has_no_metadata_but_signs() {
    let card = TestCard::start(Profile::yubikey_5_2(23_000_008)).unwrap();
    let mut yk = open_as_admin(&card);
    let point = generate_p256(&mut yk, SlotId::Authentication);
    assert!(matches!(
        piv::metadata(&mut yk, SlotId::Authentication),
        Err(Error::NotSupported)
    ));
    assert_p256_signs(&mut yk, SlotId::Authentication, &point);
}
