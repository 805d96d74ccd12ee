//! Signature objects and notary's signature methods.

mod ecdsa_format;
mod verify;

pub use ecdsa_format::{ecdsa_der_to_raw, ecdsa_raw_to_der, EcdsaFormatError};
pub(crate) use verify::{ecdsa_verifies, rsa_public_key, EcdsaEncoding};
pub use verify::{verify, VerifyError};

use crate::KeyType;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The `method` strings notary 0.7 knows (TUF 1.0 scheme names are unknown to it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureMethod {
    Ecdsa,
    Eddsa,
    RsaPss,
    RsaPkcs1v15,
    PyCryptoPss,
}

impl SignatureMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureMethod::Ecdsa => "ecdsa",
            SignatureMethod::Eddsa => "eddsa",
            SignatureMethod::RsaPss => "rsapss",
            SignatureMethod::RsaPkcs1v15 => "rsapkcs1v15",
            SignatureMethod::PyCryptoPss => "pycrypto-pkcs#1 pss",
        }
    }

    /// The method notary writes for a key type.
    pub fn for_key_type(keytype: KeyType) -> SignatureMethod {
        match keytype {
            KeyType::Ecdsa | KeyType::EcdsaX509 => SignatureMethod::Ecdsa,
            KeyType::Ed25519 => SignatureMethod::Eddsa,
            KeyType::Rsa | KeyType::RsaX509 => SignatureMethod::RsaPss,
        }
    }
}

impl fmt::Display for SignatureMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown signature method {0:?} (notary knows ecdsa, eddsa, rsapss, rsapkcs1v15 and \"pycrypto-pkcs#1 pss\")")]
pub struct UnknownSignatureMethod(pub String);

impl FromStr for SignatureMethod {
    type Err = UnknownSignatureMethod;

    /// Case-insensitive, because notary lower-cases `method` when reading.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "ecdsa" => SignatureMethod::Ecdsa,
            "eddsa" => SignatureMethod::Eddsa,
            "rsapss" => SignatureMethod::RsaPss,
            "rsapkcs1v15" => SignatureMethod::RsaPkcs1v15,
            "pycrypto-pkcs#1 pss" => SignatureMethod::PyCryptoPss,
            _ => return Err(UnknownSignatureMethod(s.to_string())),
        })
    }
}

impl Serialize for SignatureMethod {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SignatureMethod {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// One entry of an envelope's `signatures`: `{"keyid":…,"method":…,"sig":b64}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub keyid: String,
    pub method: SignatureMethod,
    #[serde(with = "crate::b64")]
    pub sig: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_round_trip() {
        for m in [
            SignatureMethod::Ecdsa,
            SignatureMethod::Eddsa,
            SignatureMethod::RsaPss,
            SignatureMethod::RsaPkcs1v15,
            SignatureMethod::PyCryptoPss,
        ] {
            assert_eq!(m.as_str().parse::<SignatureMethod>(), Ok(m));
        }
        assert_eq!("ECDSA".parse(), Ok(SignatureMethod::Ecdsa));
        assert!("ecdsa-sha2-nistp256".parse::<SignatureMethod>().is_err());
        assert!("ed25519".parse::<SignatureMethod>().is_err());
    }

    #[test]
    fn method_for_key_type() {
        use SignatureMethod as M;
        assert_eq!(M::for_key_type(KeyType::Ecdsa), M::Ecdsa);
        assert_eq!(M::for_key_type(KeyType::EcdsaX509), M::Ecdsa);
        assert_eq!(M::for_key_type(KeyType::Ed25519), M::Eddsa);
        assert_eq!(M::for_key_type(KeyType::Rsa), M::RsaPss);
        assert_eq!(M::for_key_type(KeyType::RsaX509), M::RsaPss);
    }

    #[test]
    fn signature_json_shape() {
        let sig = Signature {
            keyid: "ab".into(),
            method: SignatureMethod::Eddsa,
            sig: vec![1, 2, 3],
        };
        assert_eq!(
            crate::to_canonical(&sig).unwrap(),
            br#"{"keyid":"ab","method":"eddsa","sig":"AQID"}"#
        );
        let back: Signature =
            serde_json::from_str(r#"{"keyid":"ab","method":"EdDSA","sig":"AQID"}"#).unwrap();
        assert_eq!(back, sig);
    }
}
