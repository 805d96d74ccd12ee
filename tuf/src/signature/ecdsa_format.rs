//! Conversions between notary's raw r||s ECDSA signatures and DER
//! `Ecdsa-Sig-Value`, which PIV cards, TPMs, OpenSSL and X.509 use, through
//! the `p256`/`p384` signature types (which also check that r and s are in
//! range for the curve).

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum EcdsaFormatError {
    #[error("ECDSA signature is not a DER Ecdsa-Sig-Value for P-{curve} with r and s in range")]
    NotDer { curve: u16 },
    #[error("raw ECDSA signature must be r||s of 64 (P-256) or 96 (P-384) bytes with r and s in range, got {0} bytes")]
    BadRaw(usize),
    #[error("no ECDSA curve has a {0}-byte field (P-256 has 32, P-384 48)")]
    UnknownField(usize),
}

/// DER `Ecdsa-Sig-Value` to raw r||s, each left-padded to `field_len` bytes
/// (32 for P-256, 48 for P-384).
pub fn ecdsa_der_to_raw(der: &[u8], field_len: usize) -> Result<Vec<u8>, EcdsaFormatError> {
    match field_len {
        32 => p256::ecdsa::Signature::from_der(der)
            .map(|s| s.to_bytes().to_vec())
            .map_err(|_| EcdsaFormatError::NotDer { curve: 256 }),
        48 => p384::ecdsa::Signature::from_der(der)
            .map(|s| s.to_bytes().to_vec())
            .map_err(|_| EcdsaFormatError::NotDer { curve: 384 }),
        other => Err(EcdsaFormatError::UnknownField(other)),
    }
}

/// Raw r||s (P-256 or P-384, told apart by length) to DER `Ecdsa-Sig-Value`.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, EcdsaFormatError> {
    let bad = |_| EcdsaFormatError::BadRaw(raw.len());
    match raw.len() {
        64 => p256::ecdsa::Signature::from_slice(raw)
            .map(|s| s.to_der().as_bytes().to_vec())
            .map_err(bad),
        96 => p384::ecdsa::Signature::from_slice(raw)
            .map(|s| s.to_der().as_bytes().to_vec())
            .map_err(bad),
        _ => Err(EcdsaFormatError::BadRaw(raw.len())),
    }
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
    fn converts_p384_both_ways() {
        let key = p384::ecdsa::SigningKey::from_slice(&[5u8; 48]).unwrap();
        let sig: p384::ecdsa::Signature = key.sign(b"p384");
        let raw = ecdsa_der_to_raw(sig.to_der().as_bytes(), 48).unwrap();
        assert_eq!(raw, sig.to_bytes().to_vec());
        assert_eq!(ecdsa_raw_to_der(&raw).unwrap(), sig.to_der().as_bytes());
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
        let not_der = EcdsaFormatError::NotDer { curve: 256 };
        assert_eq!(ecdsa_der_to_raw(&[0u8; 64], 32), Err(not_der.clone()));
        // r = 0.
        let der = [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01];
        assert_eq!(ecdsa_der_to_raw(&der, 32), Err(not_der.clone()));
        // r of 33 bytes.
        let mut long = vec![0x30, 0x27, 0x02, 0x21];
        long.extend_from_slice(&[0x11; 33]);
        long.extend_from_slice(&[0x02, 0x02, 0x01, 0x01]);
        assert_eq!(ecdsa_der_to_raw(&long, 32), Err(not_der.clone()));
        // r and s above the group order, though they fit 32 bytes.
        assert_eq!(
            ecdsa_raw_to_der(&[0xff; 64]),
            Err(EcdsaFormatError::BadRaw(64))
        );
        assert_eq!(
            ecdsa_der_to_raw(&der, 33),
            Err(EcdsaFormatError::UnknownField(33))
        );
        assert_eq!(
            ecdsa_raw_to_der(&[1, 2, 3]),
            Err(EcdsaFormatError::BadRaw(3))
        );
        assert_eq!(
            ecdsa_raw_to_der(&[0; 64]),
            Err(EcdsaFormatError::BadRaw(64))
        );
    }
}
