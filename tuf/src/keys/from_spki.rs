//! Building key objects from DER SubjectPublicKeyInfo.

use super::{KeyError, KeyType, PublicKey};
use crate::oids;
use der::Decode;
use rsa::pkcs8::DecodePublicKey;
use spki::SubjectPublicKeyInfoRef;

/// The elliptic curves notary keys may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
}

impl Curve {
    /// Bytes in one scalar, hence half of a raw r||s signature.
    pub fn field_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
        }
    }
}

impl PublicKey {
    /// Builds an `ecdsa` (P-256/P-384), `rsa` or `ed25519` key from DER SPKI.
    ///
    /// ECDSA and RSA keep the SPKI bytes as given (they are what the key ID
    /// covers); Ed25519 keeps the raw 32 bytes, as notary does.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, KeyError> {
        let spki = parse(der)?;
        let oid = spki.algorithm.oid;
        if oid == oids::EC_PUBLIC_KEY {
            ec_curve(&spki)?;
            Ok(PublicKey::new(KeyType::Ecdsa, der.to_vec()))
        } else if oid == oids::RSA_ENCRYPTION {
            rsa::RsaPublicKey::from_public_key_der(der).map_err(|e| invalid(KeyType::Rsa, e))?;
            Ok(PublicKey::new(KeyType::Rsa, der.to_vec()))
        } else if oid == oids::ED25519 {
            let raw = spki_bits(&spki)?;
            if raw.len() != 32 {
                return Err(invalid(
                    KeyType::Ed25519,
                    format!("{} bytes instead of 32", raw.len()),
                ));
            }
            Ok(PublicKey::new(KeyType::Ed25519, raw.to_vec()))
        } else {
            Err(KeyError::UnsupportedAlgorithm(oid.to_string()))
        }
    }
}

/// The curve of an `ecdsa` SPKI, after checking that the point is valid.
pub(crate) fn ecdsa_curve(der: &[u8]) -> Result<Curve, KeyError> {
    let spki = parse(der)?;
    if spki.algorithm.oid != oids::EC_PUBLIC_KEY {
        return Err(invalid(KeyType::Ecdsa, "SPKI is not an EC public key"));
    }
    ec_curve(&spki)
}

fn parse(der: &[u8]) -> Result<SubjectPublicKeyInfoRef<'_>, KeyError> {
    SubjectPublicKeyInfoRef::from_der(der).map_err(|e| KeyError::Spki(e.to_string()))
}

fn spki_bits<'a>(spki: &SubjectPublicKeyInfoRef<'a>) -> Result<&'a [u8], KeyError> {
    spki.subject_public_key
        .as_bytes()
        .ok_or_else(|| KeyError::Spki("public key BIT STRING has unused bits".into()))
}

fn ec_curve(spki: &SubjectPublicKeyInfoRef<'_>) -> Result<Curve, KeyError> {
    let curve_oid = spki
        .algorithm
        .parameters_oid()
        .map_err(|_| invalid(KeyType::Ecdsa, "EC parameters are not a named curve"))?;
    let point = spki_bits(spki)?;
    if point.first() != Some(&0x04) {
        return Err(KeyError::CompressedPoint);
    }
    if curve_oid == oids::SECP256R1 {
        p256::PublicKey::from_sec1_bytes(point).map_err(|e| invalid(KeyType::Ecdsa, e))?;
        Ok(Curve::P256)
    } else if curve_oid == oids::SECP384R1 {
        p384::PublicKey::from_sec1_bytes(point).map_err(|e| invalid(KeyType::Ecdsa, e))?;
        Ok(Curve::P384)
    } else {
        Err(KeyError::UnsupportedCurve(curve_oid.to_string()))
    }
}

fn invalid(keytype: KeyType, reason: impl ToString) -> KeyError {
    KeyError::InvalidKey {
        keytype,
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::{engine::general_purpose::STANDARD as B64, Engine};
    use p256::pkcs8::EncodePublicKey;

    #[test]
    fn detects_each_algorithm() {
        // The targets key of the notary fixture.
        let der = B64.decode("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEnIPFw0XqOpo2DKUfw9Q9SvADlOZALg2BrLhK5wfsKTsg95+qm0QUk5KnbilDQdlPZkkEHZw5veH5KdA0LLGxIQ==").unwrap();
        let key = PublicKey::from_spki_der(&der).unwrap();
        assert_eq!(key.keytype(), KeyType::Ecdsa);
        assert_eq!(
            key.key_id(),
            "aeb6481e0bf1d22811fdbf6b297a7c5d243be5059581602f18e7f5b307cb8f08"
        );
        assert_eq!(ecdsa_curve(&der).unwrap(), Curve::P256);

        let p384 = p384::SecretKey::from_slice(&[7u8; 48])
            .unwrap()
            .public_key();
        let der = p384.to_public_key_der().unwrap();
        assert_eq!(ecdsa_curve(der.as_bytes()).unwrap(), Curve::P384);

        let ed = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]).verifying_key();
        let der = ed.to_public_key_der().unwrap();
        let key = PublicKey::from_spki_der(der.as_bytes()).unwrap();
        assert_eq!(key.keytype(), KeyType::Ed25519);
        assert_eq!(key.public_bytes(), ed.as_bytes());
    }

    #[test]
    fn refuses_compressed_points_and_garbage() {
        let pk = p256::SecretKey::from_slice(&[5u8; 32])
            .unwrap()
            .public_key();
        let compressed = p256::EncodedPoint::from(&pk).compress();
        let der = spki::SubjectPublicKeyInfoRef {
            algorithm: spki::AlgorithmIdentifier {
                oid: oids::EC_PUBLIC_KEY,
                parameters: Some(der::asn1::AnyRef::from(&oids::SECP256R1)),
            },
            subject_public_key: der::asn1::BitStringRef::from_bytes(compressed.as_bytes()).unwrap(),
        };
        let der = der::Encode::to_der(&der).unwrap();
        assert!(matches!(
            PublicKey::from_spki_der(&der),
            Err(KeyError::CompressedPoint)
        ));
        assert!(matches!(
            PublicKey::from_spki_der(b"\x30\x00"),
            Err(KeyError::Spki(_))
        ));
    }
}
