//! Attestation the way a YubiKey does it: slot F9 holds a device key whose
//! certificate (object 5FFF01) is issued by a root, and INS F9 returns a
//! certificate for a generated slot key, signed by that device key and
//! carrying Yubico's firmware, serial, policy and form-factor extensions.
//! The root here is a per-process test CA, not Yubico's.

use crate::profile::Profile;
use der::asn1::{BitString, ObjectIdentifier, OctetString, UtcTime};
use der::{Decode, Encode};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey;
use rand_core::{OsRng, RngCore};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::ext::pkix::BasicConstraints;
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
/// Yubico's PIV attestation extensions (1.3.6.1.4.1.41482.3.x).
const YK_FIRMWARE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.3");
const YK_SERIAL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.7");
const YK_POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.8");
const YK_FORM_FACTOR: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.9");
/// Form factor byte of a USB-A keychain YubiKey.
const FORM_FACTOR_USB_A_KEYCHAIN: u8 = 0x01;

const ROOT_NAME: &str = "CN=Virtual YubiKey Test PIV Root CA";

struct Root {
    key: SigningKey,
    cert_der: Vec<u8>,
}

/// DER certificate of the per-process root that issues every virtual card's
/// device attestation certificate (the stand-in for Yubico's PIV root).
pub fn root_certificate_der() -> Vec<u8> {
    root().cert_der.clone()
}

fn root() -> &'static Root {
    static ROOT: OnceLock<Root> = OnceLock::new();
    ROOT.get_or_init(|| {
        let key = SigningKey::random(&mut OsRng);
        let name = name(ROOT_NAME);
        let cert_der = issue(&key, &name, &name, &spki_of(&key), vec![ca_constraint()]);
        Root { key, cert_der }
    })
}

/// A card's device attestation key (slot F9) and its certificate.
pub(crate) struct DeviceAttestation {
    key: SigningKey,
    subject: Name,
    cert_der: Vec<u8>,
}

impl DeviceAttestation {
    pub(crate) fn new(profile: &Profile) -> DeviceAttestation {
        let key = SigningKey::random(&mut OsRng);
        let subject = name(&format!(
            "CN=Virtual Yubico PIV Attestation {}",
            profile.serial
        ));
        let root = root();
        let cert_der = issue(
            &root.key,
            &name(ROOT_NAME),
            &subject,
            &spki_of(&key),
            vec![ca_constraint()],
        );
        DeviceAttestation {
            key,
            subject,
            cert_der,
        }
    }

    pub(crate) fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The attestation certificate for the key in `slot`.
    pub(crate) fn attest(
        &self,
        profile: &Profile,
        slot: u8,
        slot_spki_der: &[u8],
        pin_policy: u8,
        touch_policy: u8,
    ) -> Vec<u8> {
        let serial = der::asn1::Int::new(&profile.serial.to_be_bytes())
            .and_then(|i| i.to_der())
            .unwrap_or_default();
        let extensions = vec![
            raw_extension(YK_FIRMWARE, profile.version.to_vec()),
            raw_extension(YK_SERIAL, serial),
            raw_extension(YK_POLICY, vec![pin_policy, touch_policy]),
            raw_extension(YK_FORM_FACTOR, vec![FORM_FACTOR_USB_A_KEYCHAIN]),
        ];
        let spki = SubjectPublicKeyInfoOwned::from_der(slot_spki_der)
            .expect("the card encodes its own keys");
        issue(
            &self.key,
            &self.subject,
            &name(&format!("CN=YubiKey PIV Attestation {slot:02x}")),
            &spki,
            extensions,
        )
    }
}

fn issue(
    issuer_key: &SigningKey,
    issuer: &Name,
    subject: &Name,
    spki: &SubjectPublicKeyInfoOwned,
    extensions: Vec<Extension>,
) -> Vec<u8> {
    let algorithm = AlgorithmIdentifierOwned {
        oid: ECDSA_WITH_SHA256,
        parameters: None,
    };
    let mut serial = [0u8; 16];
    OsRng.fill_bytes(&mut serial);
    serial[0] &= 0x7F;
    serial[0] |= 0x01;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&serial).expect("16 positive bytes"),
        signature: algorithm.clone(),
        issuer: issuer.clone(),
        validity: Validity {
            not_before: utc(now.saturating_sub(Duration::from_secs(3600))),
            not_after: utc(now + Duration::from_secs(10 * 365 * 86_400)),
        },
        subject: subject.clone(),
        subject_public_key_info: spki.clone(),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let tbs_der = tbs.to_der().expect("TBS encodes");
    let signature: Signature = issuer_key.sign(&tbs_der);
    Certificate {
        tbs_certificate: tbs,
        signature_algorithm: algorithm,
        signature: BitString::from_bytes(signature.to_der().as_bytes()).expect("bit string"),
    }
    .to_der()
    .expect("certificate encodes")
}

fn spki_of(key: &SigningKey) -> SubjectPublicKeyInfoOwned {
    let der = key
        .verifying_key()
        .to_public_key_der()
        .expect("P-256 SPKI encodes");
    SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).expect("own SPKI decodes")
}

fn name(dn: &str) -> Name {
    Name::from_str(dn).expect("fixed names parse")
}

fn utc(since_epoch: Duration) -> Time {
    Time::UtcTime(UtcTime::from_unix_duration(since_epoch).expect("date before 2050"))
}

fn ca_constraint() -> Extension {
    let value = BasicConstraints {
        ca: true,
        path_len_constraint: None,
    }
    .to_der()
    .expect("basic constraints encode");
    Extension {
        extn_id: BASIC_CONSTRAINTS,
        critical: true,
        extn_value: OctetString::new(value).expect("octet string"),
    }
}

/// Yubico puts the bare bytes in extnValue, not a DER encoding of them.
fn raw_extension(oid: ObjectIdentifier, value: Vec<u8>) -> Extension {
    Extension {
        extn_id: oid,
        critical: false,
        extn_value: OctetString::new(value).expect("octet string"),
    }
}
