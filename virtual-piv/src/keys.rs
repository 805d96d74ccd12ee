//! Private keys held in PIV slots: generation, the public-key TLV the card
//! returns, and the signing operation GENERAL AUTHENTICATE performs.

use crate::tlv::tlv;
use rand_core::OsRng;
use rsa::traits::PublicKeyParts;
use rsa::BigUint;

pub(crate) const ALG_RSA2048: u8 = 0x07;
pub(crate) const ALG_P256: u8 = 0x11;
pub(crate) const ALG_P384: u8 = 0x14;
/// Firmware 5.7 and later.
pub(crate) const ALG_ED25519: u8 = 0xE0;

/// Why a key operation was refused (mapped to a status word by the applet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeyError {
    #[error("algorithm not supported by this card")]
    UnsupportedAlgorithm,
    #[error("input has the wrong length or value for this key")]
    BadInput,
}

pub(crate) enum KeyPair {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Rsa2048(Box<rsa::RsaPrivateKey>),
    Ed25519(ed25519_dalek::SigningKey),
}

impl KeyPair {
    pub(crate) fn generate(alg: u8) -> Result<KeyPair, KeyError> {
        Ok(match alg {
            ALG_P256 => KeyPair::P256(p256::ecdsa::SigningKey::random(&mut OsRng)),
            ALG_P384 => KeyPair::P384(p384::ecdsa::SigningKey::random(&mut OsRng)),
            ALG_RSA2048 => KeyPair::Rsa2048(Box::new(
                rsa::RsaPrivateKey::new(&mut OsRng, 2048).map_err(|_| KeyError::BadInput)?,
            )),
            ALG_ED25519 => KeyPair::Ed25519(ed25519_dalek::SigningKey::generate(&mut OsRng)),
            _ => return Err(KeyError::UnsupportedAlgorithm),
        })
    }

    pub(crate) fn alg(&self) -> u8 {
        match self {
            KeyPair::P256(_) => ALG_P256,
            KeyPair::P384(_) => ALG_P384,
            KeyPair::Rsa2048(_) => ALG_RSA2048,
            KeyPair::Ed25519(_) => ALG_ED25519,
        }
    }

    /// The inner public-key TLVs: `86 <SEC1 point>` for EC (`86 <key>` for
    /// Ed25519), `81 <n> 82 <e>` for RSA.
    pub(crate) fn public_tlvs(&self) -> Vec<u8> {
        match self {
            KeyPair::P256(k) => tlv(0x86, k.verifying_key().to_encoded_point(false).as_bytes()),
            KeyPair::P384(k) => tlv(0x86, k.verifying_key().to_encoded_point(false).as_bytes()),
            KeyPair::Rsa2048(k) => [
                tlv(0x81, &k.n().to_bytes_be()),
                tlv(0x82, &k.e().to_bytes_be()),
            ]
            .concat(),
            KeyPair::Ed25519(k) => tlv(0x86, k.verifying_key().as_bytes()),
        }
    }

    /// DER SubjectPublicKeyInfo (for attestation certificates).
    pub(crate) fn spki_der(&self) -> Vec<u8> {
        use p256::pkcs8::EncodePublicKey;
        let der = match self {
            KeyPair::P256(k) => k.verifying_key().to_public_key_der(),
            KeyPair::P384(k) => k.verifying_key().to_public_key_der(),
            KeyPair::Rsa2048(k) => k.to_public_key().to_public_key_der(),
            KeyPair::Ed25519(k) => k.verifying_key().to_public_key_der(),
        };
        der.map(|d| d.into_vec()).unwrap_or_default()
    }

    /// EC: ECDSA over the given digest (left-padded to the field size), DER.
    /// RSA: the raw private-key operation on a host-padded block.
    /// Ed25519: PureEdDSA over the message itself.
    pub(crate) fn sign(&self, input: &[u8]) -> Result<Vec<u8>, KeyError> {
        use p256::ecdsa::signature::hazmat::PrehashSigner;
        match self {
            KeyPair::P256(k) => {
                let sig: p256::ecdsa::Signature = k
                    .sign_prehash(&field_sized(input, 32)?)
                    .map_err(|_| KeyError::BadInput)?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            KeyPair::P384(k) => {
                let sig: p384::ecdsa::Signature = k
                    .sign_prehash(&field_sized(input, 48)?)
                    .map_err(|_| KeyError::BadInput)?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            KeyPair::Rsa2048(k) => {
                let size = k.size();
                if input.len() != size {
                    return Err(KeyError::BadInput);
                }
                let c = BigUint::from_bytes_be(input);
                if &c >= k.n() {
                    return Err(KeyError::BadInput);
                }
                let m = rsa::hazmat::rsa_decrypt_and_check(k.as_ref(), Some(&mut OsRng), &c)
                    .map_err(|_| KeyError::BadInput)?;
                let raw = m.to_bytes_be();
                let mut out = vec![0u8; size - raw.len()];
                out.extend_from_slice(&raw);
                Ok(out)
            }
            KeyPair::Ed25519(k) => {
                use ed25519_dalek::Signer;
                Ok(k.sign(input).to_bytes().to_vec())
            }
        }
    }
}

fn field_sized(digest: &[u8], len: usize) -> Result<Vec<u8>, KeyError> {
    if digest.is_empty() || digest.len() > len {
        return Err(KeyError::BadInput);
    }
    let mut out = vec![0u8; len - digest.len()];
    out.extend_from_slice(digest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::hazmat::PrehashVerifier;

    #[test]
    fn p256_signature_verifies() {
        let key = KeyPair::generate(ALG_P256).unwrap();
        let KeyPair::P256(sk) = &key else {
            unreachable!()
        };
        let digest = [9u8; 32];
        let sig = p256::ecdsa::Signature::from_der(&key.sign(&digest).unwrap()).unwrap();
        sk.verifying_key().verify_prehash(&digest, &sig).unwrap();
        assert_eq!(key.sign(&[0; 33]), Err(KeyError::BadInput));
    }

    #[test]
    fn rsa_raw_operation_inverts_public_operation() {
        let key = KeyPair::generate(ALG_RSA2048).unwrap();
        let KeyPair::Rsa2048(sk) = &key else {
            unreachable!()
        };
        let mut block = vec![0u8; 256];
        block[1] = 1;
        block[255] = 0x42;
        let sig = key.sign(&block).unwrap();
        let back = rsa::hazmat::rsa_encrypt(&sk.to_public_key(), &BigUint::from_bytes_be(&sig))
            .unwrap()
            .to_bytes_be();
        assert_eq!(back, block[1..]);
        assert_eq!(key.sign(&[0xFF; 256]), Err(KeyError::BadInput));
    }
}
