//! Byte formats between device key attributes (PKCS#11, TPM) and notary: EC parameters and
//! points, SubjectPublicKeyInfo, and signature shapes.

use crate::Algorithm;
use der::asn1::{BitString, ObjectIdentifier, OctetStringRef, UintRef};
use der::{Any, Decode, Encode, Sequence};
use notary_tuf::{KeyType, PublicKey};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// CKA_EC_PARAMS for Ed25519 keys: the RFC 8410 OID. SoftHSM 2.6 accepts it
/// and reads it back unchanged.
pub(crate) const ED25519_PARAMS: &[u8] = &[0x06, 0x03, 0x2B, 0x65, 0x70];
/// PrintableString "edwards25519": the older form some tokens report.
const ED25519_PARAMS_NAME: &[u8] = b"\x13\x0cedwards25519";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
}

impl Curve {
    pub(crate) fn for_algorithm(algorithm: Algorithm) -> Option<Curve> {
        match algorithm {
            Algorithm::EcdsaP256 => Some(Curve::P256),
            Algorithm::EcdsaP384 => Some(Curve::P384),
            _ => None,
        }
    }

    pub(crate) fn algorithm(self) -> Algorithm {
        match self {
            Curve::P256 => Algorithm::EcdsaP256,
            Curve::P384 => Algorithm::EcdsaP384,
        }
    }

    fn oid(self) -> ObjectIdentifier {
        match self {
            Curve::P256 => SECP256R1,
            Curve::P384 => SECP384R1,
        }
    }

    /// Bytes of one coordinate, and so of each of r and s.
    pub(crate) fn field_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
        }
    }

    /// CKA_EC_PARAMS: the DER-encoded named-curve OID.
    pub(crate) fn params(self) -> Result<Vec<u8>, der::Error> {
        self.oid().to_der()
    }

    pub(crate) fn from_params(params: &[u8]) -> Option<Curve> {
        let oid = ObjectIdentifier::from_der(params).ok()?;
        [Curve::P256, Curve::P384]
            .into_iter()
            .find(|c| c.oid() == oid)
    }

    fn from_oid(oid: ObjectIdentifier) -> Option<Curve> {
        [Curve::P256, Curve::P384]
            .into_iter()
            .find(|c| c.oid() == oid)
    }
}

pub(crate) fn is_ed25519_params(params: &[u8]) -> bool {
    params == ED25519_PARAMS || params == ED25519_PARAMS_NAME
}

/// The point inside CKA_EC_POINT. The spec says DER OCTET STRING, some tokens
/// return the bare point; `len` (known from the curve) tells them apart, since
/// an uncompressed point also starts with 0x04.
pub(crate) fn ec_point(value: &[u8], len: usize) -> Option<&[u8]> {
    if value.len() == len {
        return Some(value);
    }
    OctetStringRef::from_der(value)
        .ok()
        .map(|o| o.as_bytes())
        .filter(|p| p.len() == len)
}

/// Uncompressed SEC1 point length for a curve.
pub(crate) fn uncompressed_len(curve: Curve) -> usize {
    1 + 2 * curve.field_len()
}

/// Notary `ecdsa` key: DER SPKI with the named curve, as Go's
/// x509.MarshalPKIXPublicKey writes it.
pub(crate) fn ecdsa_public(curve: Curve, point: &[u8]) -> Result<PublicKey, String> {
    if point.len() != uncompressed_len(curve) || point.first() != Some(&0x04) {
        return Err(format!("EC point is not an uncompressed {curve:?} point"));
    }
    let spki = SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: ID_EC_PUBLIC_KEY,
            parameters: Some(Any::encode_from(&curve.oid()).map_err(der_error)?),
        },
        subject_public_key: BitString::from_bytes(point).map_err(der_error)?,
    };
    Ok(PublicKey::new(
        KeyType::Ecdsa,
        spki.to_der().map_err(der_error)?,
    ))
}

/// Notary `ed25519` key: the raw 32 bytes.
pub(crate) fn ed25519_public(point: &[u8]) -> Result<PublicKey, String> {
    if point.len() != 32 {
        return Err(format!(
            "Ed25519 public key is {} bytes, not 32",
            point.len()
        ));
    }
    Ok(PublicKey::new(KeyType::Ed25519, point.to_vec()))
}

/// PKCS#1 RSAPublicKey.
#[derive(Sequence)]
struct RsaPublicKeyDer<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

/// Notary `rsa` key: DER SPKI (rsaEncryption, NULL parameters), and the
/// algorithm its modulus size makes it.
pub(crate) fn rsa_public(
    modulus: &[u8],
    exponent: &[u8],
) -> Result<(Algorithm, PublicKey), String> {
    let pkcs1 = RsaPublicKeyDer {
        modulus: UintRef::new(modulus).map_err(der_error)?,
        public_exponent: UintRef::new(exponent).map_err(der_error)?,
    };
    let bits = rsa_bits(modulus);
    let algorithm = Algorithm::ALL
        .into_iter()
        .find(|a| a.rsa_bits().and_then(|b| usize::try_from(b).ok()) == Some(bits))
        .ok_or_else(|| {
            format!("RSA-{bits} is not a size notary-keyd signs with (2048, 3072, 4096)")
        })?;
    let spki = SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: RSA_ENCRYPTION,
            parameters: Some(Any::encode_from(&der::asn1::Null).map_err(der_error)?),
        },
        subject_public_key: BitString::from_bytes(&pkcs1.to_der().map_err(der_error)?)
            .map_err(der_error)?,
    };
    Ok((
        algorithm,
        PublicKey::new(KeyType::Rsa, spki.to_der().map_err(der_error)?),
    ))
}

/// Significant bits of a big-endian unsigned integer.
fn rsa_bits(modulus: &[u8]) -> usize {
    let trimmed: &[u8] = match modulus.iter().position(|&b| b != 0) {
        Some(i) => &modulus[i..],
        None => &[],
    };
    match trimmed.first() {
        Some(&top) => trimmed.len() * 8 - top.leading_zeros() as usize,
        None => 0,
    }
}

/// The notary key in a certificate's SPKI (for keys a token only holds as a
/// certificate), re-encoded the way keys read from objects are.
pub(crate) fn public_from_spki(
    spki: &SubjectPublicKeyInfoOwned,
) -> Result<(Algorithm, PublicKey), String> {
    let key = spki
        .subject_public_key
        .as_bytes()
        .ok_or("public key BIT STRING has unused bits")?;
    let oid = spki.algorithm.oid;
    if oid == ID_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
            .and_then(Curve::from_oid)
            .ok_or("EC key on a curve other than P-256/P-384")?;
        Ok((curve.algorithm(), ecdsa_public(curve, key)?))
    } else if oid == ID_ED25519 {
        Ok((Algorithm::Ed25519, ed25519_public(key)?))
    } else if oid == RSA_ENCRYPTION {
        let pkcs1 = RsaPublicKeyDer::from_der(key).map_err(der_error)?;
        rsa_public(pkcs1.modulus.as_bytes(), pkcs1.public_exponent.as_bytes())
    } else {
        Err(format!("unsupported public key algorithm {oid}"))
    }
}

/// ECDSA-Sig-Value, for tokens that return DER instead of r||s.
#[derive(Sequence)]
struct EcdsaSigDer<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// Notary's ECDSA signature: raw r||s, each left-padded to the field size.
pub(crate) fn ecdsa_raw_signature(sig: &[u8], curve: Curve) -> Result<Vec<u8>, String> {
    let n = curve.field_len();
    if sig.len() == 2 * n {
        return Ok(sig.to_vec());
    }
    let (r, s) = match EcdsaSigDer::from_der(sig) {
        Ok(der) => (der.r.as_bytes(), der.s.as_bytes()),
        // Some tokens return r||s with both halves shorter than the field.
        Err(_) if sig.len().is_multiple_of(2) && sig.len() < 2 * n => sig.split_at(sig.len() / 2),
        Err(_) => {
            return Err(format!(
                "token returned a {}-byte ECDSA signature",
                sig.len()
            ))
        }
    };
    if r.len() > n || s.len() > n {
        return Err("token returned an ECDSA signature larger than the curve".into());
    }
    let mut out = vec![0u8; 2 * n];
    out[n - r.len()..n].copy_from_slice(r);
    out[2 * n - s.len()..].copy_from_slice(s);
    Ok(out)
}

/// RSA signatures are exactly the modulus length; some tokens drop leading zeros.
pub(crate) fn left_pad(sig: Vec<u8>, len: usize) -> Vec<u8> {
    if sig.len() >= len {
        return sig;
    }
    let mut out = vec![0u8; len - sig.len()];
    out.extend_from_slice(&sig);
    out
}

fn der_error(e: der::Error) -> String {
    format!("DER encoding error: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::pkcs8::EncodePublicKey;

    #[test]
    fn ec_params_round_trip() {
        assert_eq!(
            Curve::P256.params().unwrap(),
            [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]
        );
        assert_eq!(
            Curve::P384.params().unwrap(),
            [0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22]
        );
        for c in [Curve::P256, Curve::P384] {
            assert_eq!(Curve::from_params(&c.params().unwrap()), Some(c));
        }
        assert_eq!(Curve::from_params(ED25519_PARAMS), None);
        assert!(is_ed25519_params(ED25519_PARAMS));
    }

    #[test]
    fn ec_point_accepts_wrapped_and_raw() {
        let mut raw = vec![0x04];
        raw.extend([0x3f; 64]); // 04 3f looks like an OCTET STRING header too
        let mut wrapped = vec![0x04, 0x41];
        wrapped.extend(&raw);
        assert_eq!(ec_point(&raw, 65), Some(&raw[..]));
        assert_eq!(ec_point(&wrapped, 65), Some(&raw[..]));
        assert_eq!(ec_point(&wrapped[..20], 65), None);
    }

    #[test]
    fn spki_matches_the_rustcrypto_encoding() {
        let secret = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let public = secret.public_key();
        let point = public.to_sec1_bytes();
        let ours = ecdsa_public(Curve::P256, &point).unwrap();
        assert_eq!(
            ours.public_bytes(),
            public.to_public_key_der().unwrap().as_bytes()
        );

        let secret = p384::SecretKey::from_slice(&[9u8; 48]).unwrap();
        let public = secret.public_key();
        let ours = ecdsa_public(Curve::P384, &public.to_sec1_bytes()).unwrap();
        assert_eq!(
            ours.public_bytes(),
            public.to_public_key_der().unwrap().as_bytes()
        );
    }

    #[test]
    fn rsa_spki_matches_the_rsa_crate() {
        use rsa::pkcs8::EncodePublicKey as _;
        use rsa::traits::PublicKeyParts;
        // A fixed 2048-bit modulus shape is enough: the encoding is what matters.
        let mut n = vec![0xC5u8; 256];
        n[255] |= 1;
        let key = rsa::RsaPublicKey::new(
            rsa::BigUint::from_bytes_be(&n),
            rsa::BigUint::from(65537u32),
        )
        .unwrap();
        let (alg, ours) = rsa_public(&key.n().to_bytes_be(), &key.e().to_bytes_be()).unwrap();
        assert_eq!(alg, Algorithm::Rsa2048);
        assert_eq!(
            ours.public_bytes(),
            key.to_public_key_der().unwrap().as_bytes()
        );
        let spki = SubjectPublicKeyInfoOwned::from_der(ours.public_bytes()).unwrap();
        assert_eq!(public_from_spki(&spki).unwrap(), (alg, ours));
        assert!(rsa_public(&n[..128], &[1, 0, 1]).is_err());
    }

    #[test]
    fn ecdsa_signatures_are_normalised_to_raw() {
        let raw: Vec<u8> = (1..=64).collect();
        assert_eq!(ecdsa_raw_signature(&raw, Curve::P256).unwrap(), raw);
        let short: Vec<u8> = vec![1; 62];
        let padded = ecdsa_raw_signature(&short, Curve::P256).unwrap();
        assert_eq!(padded.len(), 64);
        assert_eq!((padded[0], padded[1], padded[32], padded[33]), (0, 1, 0, 1));
        let der = EcdsaSigDer {
            r: UintRef::new(&[0x80; 48]).unwrap(),
            s: UintRef::new(&[0x01; 47]).unwrap(),
        }
        .to_der()
        .unwrap();
        let out = ecdsa_raw_signature(&der, Curve::P384).unwrap();
        assert_eq!(&out[..48], &[0x80; 48]);
        assert_eq!(out[48], 0);
        assert!(ecdsa_raw_signature(&[1; 65], Curve::P256).is_err());
        assert_eq!(left_pad(vec![1, 2], 4), vec![0, 0, 1, 2]);
    }
}
