//! A YubiKey's PIV attestation: the device's attestation key (slot F9),
//! certified by a vendor CA, signs a certificate for a key generated in a
//! slot, with the device's serial, firmware and the slot's PIN and touch
//! policies in Yubico's extensions. Checked here against anchors the caller
//! pins; nothing is fetched.
//!
//! Validity periods are not checked: the statement says where a key was
//! born, which stays true, and Yubico's device certificates are not renewed.

use crate::rootcert::verify_cert_signature;
use der::asn1::ObjectIdentifier as Oid;
use der::{Decode, Encode};
use std::fmt;
use x509_cert::Certificate;

/// Yubico's PIV attestation extensions (1.3.6.1.4.1.41482.3.x), whose
/// extnValue holds the bare value rather than a DER encoding of it, except
/// the serial, which is a DER INTEGER.
const FIRMWARE: Oid = Oid::new_unwrap("1.3.6.1.4.1.41482.3.3");
const SERIAL: Oid = Oid::new_unwrap("1.3.6.1.4.1.41482.3.7");
const POLICY: Oid = Oid::new_unwrap("1.3.6.1.4.1.41482.3.8");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinPolicy {
    Never,
    Once,
    Always,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TouchPolicy {
    Never,
    Always,
    Cached,
}

impl fmt::Display for PinPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PinPolicy::Never => "never",
            PinPolicy::Once => "once",
            PinPolicy::Always => "always",
        })
    }
}

impl fmt::Display for TouchPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TouchPolicy::Never => "never",
            TouchPolicy::Always => "always",
            TouchPolicy::Cached => "cached",
        })
    }
}

/// What a verified attestation says about the slot key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PivAttestation {
    /// DER SubjectPublicKeyInfo of the attested key.
    pub spki: Vec<u8>,
    pub serial: Option<u32>,
    /// `major.minor.patch`.
    pub firmware: Option<String>,
    pub pin_policy: Option<PinPolicy>,
    pub touch_policy: Option<TouchPolicy>,
    /// Index of the anchor that issued (or is) the device certificate.
    pub anchor: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PivAttestationError {
    #[error("the {which} certificate does not parse: {why}")]
    Parse { which: &'static str, why: String },
    #[error("no attestation roots to check against")]
    NoAnchors,
    #[error(
        "the slot's attestation certificate is not signed by the device's attestation \
         certificate (slot F9)"
    )]
    SlotNotByDevice,
    #[error(
        "the device's attestation certificate is not issued by any of the {0} pinned \
         attestation root(s)"
    )]
    NotAnchored(usize),
    #[error("the attestation's {0} extension is malformed")]
    BadExtension(&'static str),
}

/// Checks that `device` (the F9 certificate) is one of `anchors` or issued
/// by one, and that it signed `slot` (the slot's attestation certificate);
/// all DER. Returns what the slot certificate attests.
pub fn verify_piv_attestation(
    slot: &[u8],
    device: &[u8],
    anchors: &[Vec<u8>],
) -> Result<PivAttestation, PivAttestationError> {
    if anchors.is_empty() {
        return Err(PivAttestationError::NoAnchors);
    }
    let slot_cert = parse(slot, "slot attestation")?;
    let device_cert = parse(device, "device attestation")?;
    if !issued_by(&slot_cert, &device_cert) {
        return Err(PivAttestationError::SlotNotByDevice);
    }
    let mut anchor = None;
    for (i, der) in anchors.iter().enumerate() {
        let ca = parse(der, "attestation root")?;
        if der == device || issued_by(&device_cert, &ca) {
            anchor = Some(i);
            break;
        }
    }
    let anchor = anchor.ok_or(PivAttestationError::NotAnchored(anchors.len()))?;
    let spki = slot_cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| PivAttestationError::Parse {
            which: "slot attestation",
            why: e.to_string(),
        })?;
    let (pin_policy, touch_policy) = match extension(&slot_cert, POLICY) {
        Some(value) => policies(value)?,
        None => (None, None),
    };
    Ok(PivAttestation {
        spki,
        serial: extension(&slot_cert, SERIAL).map(serial).transpose()?,
        firmware: extension(&slot_cert, FIRMWARE).map(firmware).transpose()?,
        pin_policy,
        touch_policy,
        anchor,
    })
}

fn parse(der: &[u8], which: &'static str) -> Result<Certificate, PivAttestationError> {
    Certificate::from_der(der).map_err(|e| PivAttestationError::Parse {
        which,
        why: e.to_string(),
    })
}

fn issued_by(cert: &Certificate, issuer: &Certificate) -> bool {
    cert.tbs_certificate.issuer == issuer.tbs_certificate.subject
        && issuer
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .is_ok_and(|spki| verify_cert_signature(cert, &spki).is_ok())
}

fn extension(cert: &Certificate, oid: Oid) -> Option<&[u8]> {
    cert.tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == oid)
        .map(|e| e.extn_value.as_bytes())
}

fn serial(value: &[u8]) -> Result<u32, PivAttestationError> {
    let bad = || PivAttestationError::BadExtension("serial");
    let int = der::asn1::UintRef::from_der(value).map_err(|_| bad())?;
    let bytes = int.as_bytes();
    if bytes.len() > 4 {
        return Err(bad());
    }
    Ok(bytes.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)))
}

fn firmware(value: &[u8]) -> Result<String, PivAttestationError> {
    match value {
        [major, minor, patch] => Ok(format!("{major}.{minor}.{patch}")),
        _ => Err(PivAttestationError::BadExtension("firmware")),
    }
}

fn policies(value: &[u8]) -> Result<(Option<PinPolicy>, Option<TouchPolicy>), PivAttestationError> {
    let [pin, touch] = value else {
        return Err(PivAttestationError::BadExtension("PIN and touch policy"));
    };
    let pin = match pin {
        1 => Some(PinPolicy::Never),
        2 => Some(PinPolicy::Once),
        3 => Some(PinPolicy::Always),
        _ => None,
    };
    let touch = match touch {
        1 => Some(TouchPolicy::Never),
        2 => Some(TouchPolicy::Always),
        3 => Some(TouchPolicy::Cached),
        _ => None,
    };
    Ok((pin, touch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_yubico_extension_values() {
        assert_eq!(
            serial(&[0x02, 0x04, 0x02, 0x71, 0x9c, 0x41]).unwrap(),
            41_000_001
        );
        assert_eq!(serial(&[0x02, 0x01, 0x05]).unwrap(), 5);
        assert!(serial(&[0x02, 0x06, 1, 2, 3, 4, 5, 6]).is_err());
        assert!(serial(&[0x04, 0x01, 0x05]).is_err());
        assert_eq!(firmware(&[5, 7, 1]).unwrap(), "5.7.1");
        assert!(firmware(&[5, 7]).is_err());
        assert_eq!(
            policies(&[2, 2]).unwrap(),
            (Some(PinPolicy::Once), Some(TouchPolicy::Always))
        );
        assert_eq!(
            policies(&[3, 3]).unwrap(),
            (Some(PinPolicy::Always), Some(TouchPolicy::Cached))
        );
        assert_eq!(policies(&[0, 9]).unwrap(), (None, None));
        assert!(policies(&[1]).is_err());
    }

    use der::asn1::{BitString, OctetString, UtcTime};
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::SigningKey;
    use p256::pkcs8::EncodePublicKey;
    use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
    use std::str::FromStr;
    use std::time::Duration;
    use x509_cert::certificate::{TbsCertificate, Version};
    use x509_cert::ext::Extension;
    use x509_cert::name::Name;
    use x509_cert::serial_number::SerialNumber;
    use x509_cert::time::{Time, Validity};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_slice(&[seed; 32]).unwrap()
    }

    fn spki(key: &SigningKey) -> Vec<u8> {
        key.verifying_key().to_public_key_der().unwrap().into_vec()
    }

    /// A certificate for `subject_key`, issued by `issuer` (name and key).
    fn issue(
        issuer: (&str, &SigningKey),
        subject: &str,
        subject_key: &SigningKey,
        extensions: Vec<(Oid, Vec<u8>)>,
    ) -> Vec<u8> {
        let algorithm = AlgorithmIdentifierOwned {
            oid: crate::oids::ECDSA_WITH_SHA256,
            parameters: None,
        };
        let time = |s| Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(s)).unwrap());
        let tbs = TbsCertificate {
            version: Version::V3,
            serial_number: SerialNumber::new(&[1]).unwrap(),
            signature: algorithm.clone(),
            issuer: Name::from_str(issuer.0).unwrap(),
            validity: Validity {
                not_before: time(1_700_000_000),
                not_after: time(2_000_000_000),
            },
            subject: Name::from_str(subject).unwrap(),
            subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(&spki(subject_key))
                .unwrap(),
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(
                extensions
                    .into_iter()
                    .map(|(extn_id, value)| Extension {
                        extn_id,
                        critical: false,
                        extn_value: OctetString::new(value).unwrap(),
                    })
                    .collect(),
            ),
        };
        let signature: p256::ecdsa::Signature = issuer.1.sign(&tbs.to_der().unwrap());
        Certificate {
            tbs_certificate: tbs,
            signature_algorithm: algorithm,
            signature: BitString::from_bytes(signature.to_der().as_bytes()).unwrap(),
        }
        .to_der()
        .unwrap()
    }

    const ROOT: &str = "CN=Test PIV Root";
    const DEVICE: &str = "CN=Test PIV Attestation 41000001";

    fn chain() -> (Vec<u8>, Vec<u8>, Vec<u8>, SigningKey) {
        let (root, device, slot) = (key(1), key(2), key(3));
        let root_der = issue((ROOT, &root), ROOT, &root, vec![]);
        let device_der = issue((ROOT, &root), DEVICE, &device, vec![]);
        let slot_der = issue(
            (DEVICE, &device),
            "CN=YubiKey PIV Attestation 9c",
            &slot,
            vec![
                (FIRMWARE, vec![5, 7, 1]),
                (SERIAL, vec![0x02, 0x04, 0x02, 0x71, 0x9c, 0x41]),
                (POLICY, vec![2, 2]),
            ],
        );
        (root_der, device_der, slot_der, slot)
    }

    #[test]
    fn verifies_a_chain_to_a_pinned_root() {
        let (root, device, slot, slot_key) = chain();
        let other = issue((ROOT, &key(9)), ROOT, &key(9), vec![]);
        let got = verify_piv_attestation(&slot, &device, &[other.clone(), root.clone()]).unwrap();
        assert_eq!(got.spki, spki(&slot_key));
        assert_eq!(got.serial, Some(41_000_001));
        assert_eq!(got.firmware.as_deref(), Some("5.7.1"));
        assert_eq!(got.pin_policy, Some(PinPolicy::Once));
        assert_eq!(got.touch_policy, Some(TouchPolicy::Always));
        assert_eq!(got.anchor, 1);
        // The device certificate itself may be what is pinned.
        assert_eq!(
            verify_piv_attestation(&slot, &device, std::slice::from_ref(&device))
                .unwrap()
                .anchor,
            0
        );
        assert_eq!(
            verify_piv_attestation(&slot, &device, &[other]),
            Err(PivAttestationError::NotAnchored(1))
        );
    }

    #[test]
    fn refuses_a_slot_certificate_the_device_did_not_sign() {
        let (root, device, _, slot_key) = chain();
        let forged = issue((DEVICE, &key(4)), "CN=forged", &slot_key, vec![]);
        assert_eq!(
            verify_piv_attestation(&forged, &device, &[root]),
            Err(PivAttestationError::SlotNotByDevice)
        );
    }

    #[test]
    fn refuses_without_anchors_or_garbage() {
        assert_eq!(
            verify_piv_attestation(b"x", b"y", &[]),
            Err(PivAttestationError::NoAnchors)
        );
        assert!(matches!(
            verify_piv_attestation(b"x", b"y", &[b"z".to_vec()]),
            Err(PivAttestationError::Parse {
                which: "slot attestation",
                ..
            })
        ));
    }
}
