//! Certificates built field by field (CA or not, keyUsage, pathLen,
//! validity, issuer), and roots whose every role is one such key, for the
//! path-validation and rotation tests.

use der::asn1::{BitString, OctetString, UtcTime};
use der::{Decode, Encode};
use notary_tuf::metadata::RootRole;
use notary_tuf::{KeyType, MetadataType, PublicKey, Root, Signature, SignatureMethod};
use notary_tuf::{Metadata, SignedEnvelope};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::SigningKey;
use p256::pkcs8::EncodePublicKey;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

/// The moment the tests verify at (2027-01-15).
pub(crate) const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

/// What goes into one certificate.
#[derive(Clone)]
pub(crate) struct Spec {
    pub cn: String,
    /// basicConstraints: `None` leaves the extension out.
    pub ca: Option<bool>,
    pub path_len: Option<u8>,
    /// keyUsage: `None` leaves the extension out.
    pub key_usage: Option<KeyUsage>,
    pub not_before: i64,
    pub not_after: i64,
    /// Also seeds the key, so two specs with the same seed share a key.
    pub seed: u8,
    pub serial: u8,
}

impl Spec {
    /// An end entity (CA:FALSE, digitalSignature) valid around [`NOW`].
    pub(crate) fn leaf(cn: &str, seed: u8) -> Spec {
        Spec {
            cn: cn.into(),
            ca: Some(false),
            path_len: None,
            key_usage: Some(KeyUsage(KeyUsages::DigitalSignature.into())),
            not_before: NOW - 30 * DAY,
            not_after: NOW + 365 * DAY,
            seed,
            serial: seed,
        }
    }

    /// A CA (CA:TRUE, keyCertSign) valid around [`NOW`].
    pub(crate) fn ca(cn: &str, seed: u8) -> Spec {
        Spec {
            ca: Some(true),
            key_usage: Some(KeyUsage(KeyUsages::KeyCertSign.into())),
            ..Spec::leaf(cn, seed)
        }
    }
}

pub(crate) struct TestCert {
    pub cert: Certificate,
    pub pem: String,
    pub key: SigningKey,
}

impl TestCert {
    /// The `ecdsa-x509` key of this certificate followed by `chain`.
    pub(crate) fn root_key(&self, chain: &[&TestCert]) -> PublicKey {
        let mut pem = self.pem.clone();
        for c in chain {
            pem.push_str(&c.pem);
        }
        PublicKey::new(KeyType::EcdsaX509, pem.into_bytes())
    }
}

fn signing_key(seed: u8) -> SigningKey {
    SigningKey::from_slice(&[seed.max(1); 32]).unwrap()
}

/// Issues `spec`, signed by `issuer` (self-signed without one).
pub(crate) fn issue(spec: &Spec, issuer: Option<&TestCert>) -> TestCert {
    let key = signing_key(spec.seed);
    let spki_der = key.verifying_key().to_public_key_der().unwrap();
    let subject = Name::from_str(&format!("CN={}", spec.cn)).unwrap();
    let issuer_name = issuer.map_or(subject.clone(), |i| i.cert.tbs_certificate.subject.clone());
    let mut extensions = Vec::new();
    if let Some(ca) = spec.ca {
        let bc = BasicConstraints {
            ca,
            path_len_constraint: spec.path_len,
        };
        extensions.push(extension("2.5.29.19", bc.to_der().unwrap()));
    }
    if let Some(usage) = &spec.key_usage {
        extensions.push(extension("2.5.29.15", usage.to_der().unwrap()));
    }
    let algorithm = AlgorithmIdentifierOwned {
        oid: "1.2.840.10045.4.3.2".parse().unwrap(),
        parameters: None,
    };
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&[spec.serial.max(1)]).unwrap(),
        signature: algorithm.clone(),
        issuer: issuer_name,
        validity: Validity {
            not_before: time(spec.not_before),
            not_after: time(spec.not_after),
        },
        subject,
        subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(spki_der.as_bytes()).unwrap(),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let signer = issuer.map_or(&key, |i| &i.key);
    let sig: p256::ecdsa::Signature = signer.sign(&tbs.to_der().unwrap());
    let cert = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: algorithm,
        signature: BitString::from_bytes(sig.to_der().as_bytes()).unwrap(),
    };
    let pem = notary_tuf::pem::encode("CERTIFICATE", &cert.to_der().unwrap());
    TestCert { cert, pem, key }
}

fn extension(oid: &str, value: Vec<u8>) -> Extension {
    Extension {
        extn_id: oid.parse().unwrap(),
        critical: true,
        extn_value: OctetString::new(value).unwrap(),
    }
}

fn time(unix: i64) -> Time {
    Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(unix as u64)).unwrap())
}

/// Root `version` whose root role is `root_keys` (threshold `threshold`)
/// and whose other roles are the first of them.
pub(crate) fn root(version: u64, root_keys: &[&PublicKey], threshold: u32) -> Root {
    let ids: Vec<String> = root_keys.iter().map(|k| k.key_id()).collect();
    let role = |keyids: Vec<String>, threshold| RootRole { keyids, threshold };
    Root {
        kind: MetadataType::Root,
        consistent_snapshot: false,
        expires: "2030-01-01T00:00:00Z".into(),
        keys: root_keys
            .iter()
            .map(|k| (k.key_id(), (*k).clone()))
            .collect(),
        roles: BTreeMap::from([
            ("root".to_string(), role(ids.clone(), threshold)),
            ("targets".to_string(), role(ids[..1].to_vec(), 1)),
            ("snapshot".to_string(), role(ids[..1].to_vec(), 1)),
            ("timestamp".to_string(), role(ids[..1].to_vec(), 1)),
        ]),
        version,
    }
}

/// `root` as a file, signed by each `(key, listed key)` pair.
pub(crate) fn signed(root: &Root, signers: &[(&SigningKey, &PublicKey)]) -> Vec<u8> {
    let mut envelope = SignedEnvelope::from_metadata(root).unwrap();
    assert_eq!(envelope.signed_bytes, root.canonical_bytes().unwrap());
    for (key, listed) in signers {
        let sig: p256::ecdsa::Signature = key.sign(&envelope.signed_bytes);
        envelope.signatures.push(Signature {
            keyid: listed.key_id(),
            method: SignatureMethod::Ecdsa,
            sig: sig.to_bytes().to_vec(),
        });
    }
    envelope.to_bytes()
}
