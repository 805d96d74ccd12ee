//! Building the root certificate: TBS first, then the hardware's signature.

use super::name::common_name;
use super::CertError;
use crate::keys::{ecdsa_curve, KeyType, PublicKey};
use crate::signature::{ecdsa_raw_to_der, verify, SignatureMethod};
use crate::{oids, pem};
use der::asn1::{BitString, GeneralizedTime, OctetString, UtcTime};
use der::{DateTime, Decode, Encode};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use std::time::Duration;
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::ext::Extension;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

/// DER TbsCertificate of notary's root certificate profile: self-issued
/// `CN=<gun>`, KeyUsage (critical) digitalSignature+keyEncipherment, EKU
/// codeSigning, BasicConstraints (critical) CA:FALSE, ecdsa-with-SHA256.
pub fn root_cert_tbs(
    gun: &str,
    spki_der: &[u8],
    serial: [u8; 16],
    not_before_unix: i64,
    validity_days: u32,
) -> Result<Vec<u8>, CertError> {
    if gun.is_empty() {
        return Err(CertError::EmptyGun);
    }
    if PublicKey::from_spki_der(spki_der)?.keytype() != KeyType::Ecdsa {
        return Err(CertError::NeedEcdsa);
    }
    if serial.iter().all(|&b| b == 0) {
        return Err(CertError::ZeroSerial);
    }
    let not_after_unix = i64::from(validity_days)
        .checked_mul(86_400)
        .and_then(|v| v.checked_add(not_before_unix))
        .ok_or_else(|| CertError::BadValidity("NotAfter overflows".into()))?;
    let name = common_name(gun)?;
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&serial)?,
        signature: ecdsa_with_sha256(),
        issuer: name.clone(),
        validity: Validity {
            not_before: cert_time(not_before_unix)?,
            not_after: cert_time(not_after_unix)?,
        },
        subject: name,
        subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(spki_der)?,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions()?),
    };
    Ok(tbs.to_der()?)
}

/// Wraps the raw r||s signature over SHA-256(`tbs_der`) into a certificate
/// and returns it as Go-style PEM (the exact text root.json will carry).
/// The signature is checked first, so a faulty signer cannot yield a bad cert.
pub fn assemble_root_cert(tbs_der: &[u8], raw_rs_signature: &[u8]) -> Result<String, CertError> {
    let tbs = TbsCertificate::from_der(tbs_der)?;
    if tbs.to_der()? != tbs_der {
        return Err(CertError::TbsNotCanonical);
    }
    if tbs.signature.oid != oids::ECDSA_WITH_SHA256 {
        return Err(CertError::TbsAlgorithm(tbs.signature.oid.to_string()));
    }
    let spki = tbs.subject_public_key_info.to_der()?;
    let key = PublicKey::from_spki_der(&spki)?;
    if key.keytype() != KeyType::Ecdsa {
        return Err(CertError::NeedEcdsa);
    }
    let expected = 2 * ecdsa_curve(&spki)?.field_len();
    if raw_rs_signature.len() != expected {
        return Err(CertError::SignatureLength {
            expected,
            got: raw_rs_signature.len(),
        });
    }
    verify(&key, SignatureMethod::Ecdsa, tbs_der, raw_rs_signature)
        .map_err(|_| CertError::BadSelfSignature)?;
    let der_sig = ecdsa_raw_to_der(raw_rs_signature).map_err(|_| CertError::BadSelfSignature)?;
    let cert = Certificate {
        signature_algorithm: tbs.signature.clone(),
        tbs_certificate: tbs,
        signature: BitString::from_bytes(&der_sig)?,
    };
    Ok(pem::encode("CERTIFICATE", &cert.to_der()?))
}

fn ecdsa_with_sha256() -> AlgorithmIdentifierOwned {
    // Go leaves the parameters out for ECDSA algorithms.
    AlgorithmIdentifierOwned {
        oid: oids::ECDSA_WITH_SHA256,
        parameters: None,
    }
}

/// Go's order: KeyUsage, ExtKeyUsage, BasicConstraints.
fn extensions() -> Result<Vec<Extension>, CertError> {
    let key_usage = KeyUsage(KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment);
    let eku = ExtendedKeyUsage(vec![oids::KP_CODE_SIGNING]);
    let basic = BasicConstraints {
        ca: false,
        path_len_constraint: None,
    };
    Ok(vec![
        extension(oids::KEY_USAGE, true, key_usage.to_der()?)?,
        extension(oids::EXT_KEY_USAGE, false, eku.to_der()?)?,
        extension(oids::BASIC_CONSTRAINTS, true, basic.to_der()?)?,
    ])
}

fn extension(
    extn_id: der::asn1::ObjectIdentifier,
    critical: bool,
    value: Vec<u8>,
) -> Result<Extension, CertError> {
    Ok(Extension {
        extn_id,
        critical,
        extn_value: OctetString::new(value)?,
    })
}

/// RFC 5280: UTCTime through 2049, GeneralizedTime from 2050.
fn cert_time(unix: i64) -> Result<Time, CertError> {
    let secs = u64::try_from(unix)
        .map_err(|_| CertError::BadValidity(format!("time {unix} is before 1970")))?;
    let duration = Duration::from_secs(secs);
    let bad = |e: der::Error| CertError::BadValidity(e.to_string());
    if DateTime::from_unix_duration(duration).map_err(bad)?.year() < 2050 {
        Ok(Time::UtcTime(
            UtcTime::from_unix_duration(duration).map_err(bad)?,
        ))
    } else {
        Ok(Time::GeneralTime(
            GeneralizedTime::from_unix_duration(duration).map_err(bad)?,
        ))
    }
}
