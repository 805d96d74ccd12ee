//! Key objects and notary key IDs.

mod from_spki;
mod json;
mod x509;

pub(crate) use from_spki::ecdsa_curve;
pub use from_spki::Curve;
pub(crate) use x509::first_certificate;

use crate::pem::PemError;
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// TUF key types as notary names them in key objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyType {
    Ecdsa,
    Ed25519,
    Rsa,
    EcdsaX509,
    RsaX509,
}

impl KeyType {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Ecdsa => "ecdsa",
            KeyType::Ed25519 => "ed25519",
            KeyType::Rsa => "rsa",
            KeyType::EcdsaX509 => "ecdsa-x509",
            KeyType::RsaX509 => "rsa-x509",
        }
    }

    /// True for `*-x509` types, whose `public` is the PEM text of a certificate.
    pub fn is_x509(self) -> bool {
        matches!(self, KeyType::EcdsaX509 | KeyType::RsaX509)
    }

    /// The bare type behind an x509 type (`ecdsa-x509` -> `ecdsa`).
    pub fn bare(self) -> KeyType {
        match self {
            KeyType::EcdsaX509 => KeyType::Ecdsa,
            KeyType::RsaX509 => KeyType::Rsa,
            other => other,
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown key type {0:?} (expected ecdsa, ed25519, rsa, ecdsa-x509 or rsa-x509)")]
pub struct UnknownKeyType(pub String);

impl FromStr for KeyType {
    type Err = UnknownKeyType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "ecdsa" => KeyType::Ecdsa,
            "ed25519" => KeyType::Ed25519,
            "rsa" => KeyType::Rsa,
            "ecdsa-x509" => KeyType::EcdsaX509,
            "rsa-x509" => KeyType::RsaX509,
            other => return Err(UnknownKeyType(other.to_string())),
        })
    }
}

/// Why a key object, certificate or SubjectPublicKeyInfo was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key object carries private material")]
    PrivateMaterial,
    #[error("key object is malformed: {0}")]
    Malformed(String),
    #[error(transparent)]
    UnknownKeyType(#[from] UnknownKeyType),
    #[error("key type {0} is not an x509 key type")]
    NotX509(KeyType),
    #[error("x509 key: {0}")]
    Pem(#[from] PemError),
    #[error("x509 key: no parsable CERTIFICATE block in the PEM text")]
    NoCertificate,
    #[error("SubjectPublicKeyInfo is not valid DER: {0}")]
    Spki(String),
    #[error("unsupported public key algorithm {0} (expected ecdsa, rsa or ed25519)")]
    UnsupportedAlgorithm(String),
    #[error("unsupported elliptic curve {0} (expected P-256 or P-384)")]
    UnsupportedCurve(String),
    #[error("compressed EC points are refused: notary only parses uncompressed points")]
    CompressedPoint,
    #[error("invalid {keytype} public key: {reason}")]
    InvalidKey { keytype: KeyType, reason: String },
    #[error("certificate holds a {cert} key but the key type is {keytype}")]
    CertKeyMismatch { cert: KeyType, keytype: KeyType },
}

/// A notary public key object: `{"keytype":T,"keyval":{"private":null,"public":b64}}`.
///
/// `public` holds DER SubjectPublicKeyInfo for `ecdsa` and `rsa`, the raw 32
/// bytes for `ed25519`, and the certificate PEM text for `*-x509`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PublicKey {
    keytype: KeyType,
    public: Vec<u8>,
}

impl PublicKey {
    pub fn new(keytype: KeyType, public: Vec<u8>) -> Self {
        Self { keytype, public }
    }

    pub fn keytype(&self) -> KeyType {
        self.keytype
    }

    pub fn public_bytes(&self) -> &[u8] {
        &self.public
    }

    /// Base64 (standard, padded) of the public bytes, as in the key object.
    pub fn public_b64(&self) -> String {
        B64.encode(&self.public)
    }

    /// Canonical JSON of the key object, exactly what notary hashes for the ID.
    pub fn canonical_json(&self) -> String {
        // Keys are already in sorted order and base64 needs no escaping.
        format!(
            r#"{{"keytype":"{}","keyval":{{"private":null,"public":"{}"}}}}"#,
            self.keytype.as_str(),
            self.public_b64()
        )
    }

    /// Notary key ID: hex SHA-256 of the canonical key object.
    pub fn key_id(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_json().as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_type_round_trips() {
        for t in [
            KeyType::Ecdsa,
            KeyType::Ed25519,
            KeyType::Rsa,
            KeyType::EcdsaX509,
            KeyType::RsaX509,
        ] {
            assert_eq!(t.as_str().parse::<KeyType>(), Ok(t));
        }
        assert!("ecdsa-sha2-nistp256".parse::<KeyType>().is_err());
    }

    #[test]
    fn key_id_matches_notary_fixture() {
        // From the stock notary 0.7 root.json fixture.
        let public = B64
            .decode("bCDhA6Gb79d6hCaFubHojc9H3LtyRLnVAhNpVaglyho=")
            .unwrap();
        let key = PublicKey::new(KeyType::Ed25519, public);
        assert_eq!(
            key.key_id(),
            "69854116bc422ce5d69f12565315a35fc96c76a8ad3e0bc2559fbeecb50d8487"
        );
    }
}
