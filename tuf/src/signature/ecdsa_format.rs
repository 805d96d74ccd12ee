//! Conversions between notary's raw r||s ECDSA signatures and DER
//! `Ecdsa-Sig-Value`, which PIV cards, TPMs, OpenSSL and X.509 use.

use der::asn1::UintRef;
use der::{Decode, Encode, Sequence};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EcdsaFormatError {
    #[error("ECDSA signature is not a DER Ecdsa-Sig-Value: {0}")]
    NotDer(String),
    #[error("ECDSA signature scalar is {got} bytes, longer than the {field_len}-byte field")]
    ScalarTooLong { got: usize, field_len: usize },
    #[error("raw ECDSA signature must be r||s of even, non-zero length, got {0} bytes")]
    BadRawLength(usize),
    #[error("ECDSA signature has a zero r or s")]
    ZeroScalar,
}

/// `Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }`
#[derive(Sequence)]
struct EcdsaSigValue<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// DER `Ecdsa-Sig-Value` to raw r||s, each left-padded to `field_len` bytes
/// (32 for P-256, 48 for P-384).
pub fn ecdsa_der_to_raw(der: &[u8], field_len: usize) -> Result<Vec<u8>, EcdsaFormatError> {
    let value =
        EcdsaSigValue::from_der(der).map_err(|e| EcdsaFormatError::NotDer(e.to_string()))?;
    let mut raw = Vec::with_capacity(2 * field_len);
    for scalar in [value.r.as_bytes(), value.s.as_bytes()] {
        if is_zero(scalar) {
            return Err(EcdsaFormatError::ZeroScalar);
        }
        if scalar.len() > field_len {
            return Err(EcdsaFormatError::ScalarTooLong {
                got: scalar.len(),
                field_len,
            });
        }
        raw.resize(raw.len() + field_len - scalar.len(), 0);
        raw.extend_from_slice(scalar);
    }
    Ok(raw)
}

/// Raw r||s (two equal halves) to DER `Ecdsa-Sig-Value`.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, EcdsaFormatError> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return Err(EcdsaFormatError::BadRawLength(raw.len()));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    if is_zero(r) || is_zero(s) {
        return Err(EcdsaFormatError::ZeroScalar);
    }
    let value = EcdsaSigValue {
        r: UintRef::new(r).map_err(|e| EcdsaFormatError::NotDer(e.to_string()))?,
        s: UintRef::new(s).map_err(|e| EcdsaFormatError::NotDer(e.to_string()))?,
    };
    value
        .to_der()
        .map_err(|e| EcdsaFormatError::NotDer(e.to_string()))
}

fn is_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::{signature::Signer, Signature, SigningKey};

    #[test]
    fn converts_both_ways_like_p256() {
        let key = SigningKey::from_slice(&[3u8; 32]).unwrap();
        for msg in [&b"a"[..], b"bb", b"ccc", b"dddd", b"eeeee"] {
            let sig: Signature = key.sign(msg);
            let der = sig.to_der();
            let raw = ecdsa_der_to_raw(der.as_bytes(), 32).unwrap();
            assert_eq!(raw, sig.to_bytes().to_vec());
            assert_eq!(ecdsa_raw_to_der(&raw).unwrap(), der.as_bytes());
        }
    }

    #[test]
    fn pads_short_scalars() {
        // r = 1, s = 0x80 (needs a sign byte in DER).
        let der = [0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x00, 0x80];
        let raw = ecdsa_der_to_raw(&der, 32).unwrap();
        assert_eq!(raw.len(), 64);
        assert_eq!(raw[31], 1);
        assert_eq!(raw[63], 0x80);
        assert_eq!(ecdsa_raw_to_der(&raw).unwrap(), der);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            ecdsa_der_to_raw(&[0u8; 64], 32),
            Err(EcdsaFormatError::NotDer(_))
        ));
        let der = [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01];
        assert_eq!(
            ecdsa_der_to_raw(&der, 32),
            Err(EcdsaFormatError::ZeroScalar)
        );
        let mut long = vec![0x30, 0x27, 0x02, 0x21];
        long.extend_from_slice(&[0x11; 33]);
        long.extend_from_slice(&[0x02, 0x02, 0x01, 0x01]);
        assert_eq!(
            ecdsa_der_to_raw(&long, 32),
            Err(EcdsaFormatError::ScalarTooLong {
                got: 33,
                field_len: 32
            })
        );
        assert_eq!(
            ecdsa_raw_to_der(&[1, 2, 3]),
            Err(EcdsaFormatError::BadRawLength(3))
        );
        assert_eq!(ecdsa_raw_to_der(&[0, 0]), Err(EcdsaFormatError::ZeroScalar));
    }
}
