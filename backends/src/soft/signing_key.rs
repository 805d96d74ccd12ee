//! In-memory private keys of the software keystore and notary-format signing.

use crate::{Algorithm, BackendError};
use notary_tuf::{KeyType, PublicKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use rand_core::OsRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub(super) enum SigningKey {
    /// P-256 signs through ring (its assembly is several times faster than
    /// the `p256` crate here, and the software keystore is what the signer
    /// API is measured on); `p256` keeps the key for storage and its public
    /// half.
    P256(p256::ecdsa::SigningKey, Box<ring::signature::EcdsaKeyPair>),
    P384(p384::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
    Rsa(Box<rsa::pss::BlindedSigningKey<Sha256>>, Algorithm),
}

fn keygen_err(e: impl std::fmt::Display) -> BackendError {
    BackendError::Device(format!("key generation failed: {e}"))
}

fn encoding_err(e: impl std::fmt::Display) -> BackendError {
    BackendError::Storage(format!("key encoding failed: {e}"))
}

/// Pairs a P-256 key with ring's form of it, made from the same PKCS#8.
fn p256_key(key: p256::ecdsa::SigningKey) -> Result<SigningKey, BackendError> {
    let pkcs8 = Zeroizing::new(
        key.to_pkcs8_der()
            .map_err(encoding_err)?
            .as_bytes()
            .to_vec(),
    );
    let fast = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &pkcs8,
        &ring::rand::SystemRandom::new(),
    )
    .map_err(|e| encoding_err(format!("ring rejects the P-256 key: {e}")))?;
    Ok(SigningKey::P256(key, Box::new(fast)))
}

impl SigningKey {
    pub(super) fn generate(algorithm: Algorithm) -> Result<SigningKey, BackendError> {
        Ok(match algorithm {
            Algorithm::EcdsaP256 => p256_key(p256::ecdsa::SigningKey::random(&mut OsRng))?,
            Algorithm::EcdsaP384 => SigningKey::P384(p384::ecdsa::SigningKey::random(&mut OsRng)),
            Algorithm::Ed25519 => {
                SigningKey::Ed25519(ed25519_dalek::SigningKey::generate(&mut OsRng))
            }
            Algorithm::Rsa2048 | Algorithm::Rsa3072 | Algorithm::Rsa4096 => {
                let bits = algorithm.rsa_bits().unwrap_or(3072) as usize;
                let key = rsa::RsaPrivateKey::new(&mut OsRng, bits).map_err(keygen_err)?;
                SigningKey::Rsa(Box::new(rsa::pss::BlindedSigningKey::new(key)), algorithm)
            }
        })
    }

    pub(super) fn algorithm(&self) -> Algorithm {
        match self {
            SigningKey::P256(..) => Algorithm::EcdsaP256,
            SigningKey::P384(_) => Algorithm::EcdsaP384,
            SigningKey::Ed25519(_) => Algorithm::Ed25519,
            SigningKey::Rsa(_, alg) => *alg,
        }
    }

    pub(super) fn to_pkcs8(&self) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        let doc = match self {
            SigningKey::P256(k, _) => k.to_pkcs8_der(),
            SigningKey::P384(k) => k.to_pkcs8_der(),
            SigningKey::Ed25519(k) => k.to_pkcs8_der(),
            SigningKey::Rsa(k, _) => k.as_ref().as_ref().to_pkcs8_der(),
        }
        .map_err(encoding_err)?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    pub(super) fn from_pkcs8(algorithm: Algorithm, der: &[u8]) -> Result<SigningKey, BackendError> {
        let bad = |e: &dyn std::fmt::Display| {
            BackendError::Storage(format!("stored {algorithm} key does not decode: {e}"))
        };
        Ok(match algorithm {
            Algorithm::EcdsaP256 => {
                p256_key(p256::ecdsa::SigningKey::from_pkcs8_der(der).map_err(|e| bad(&e))?)?
            }
            Algorithm::EcdsaP384 => {
                SigningKey::P384(p384::ecdsa::SigningKey::from_pkcs8_der(der).map_err(|e| bad(&e))?)
            }
            Algorithm::Ed25519 => SigningKey::Ed25519(
                ed25519_dalek::SigningKey::from_pkcs8_der(der).map_err(|e| bad(&e))?,
            ),
            Algorithm::Rsa2048 | Algorithm::Rsa3072 | Algorithm::Rsa4096 => {
                let key = rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(|e| bad(&e))?;
                SigningKey::Rsa(Box::new(rsa::pss::BlindedSigningKey::new(key)), algorithm)
            }
        })
    }

    /// A key of whichever algorithm `der` (plain PKCS#8) holds.
    pub(super) fn from_any_pkcs8(der: &[u8]) -> Result<SigningKey, BackendError> {
        use rsa::traits::PublicKeyParts;
        for algorithm in [
            Algorithm::EcdsaP256,
            Algorithm::EcdsaP384,
            Algorithm::Ed25519,
        ] {
            if let Ok(key) = SigningKey::from_pkcs8(algorithm, der) {
                return Ok(key);
            }
        }
        let rsa = rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(|_| {
            BackendError::Storage("not a P-256, P-384, Ed25519 or RSA private key".into())
        })?;
        let algorithm = match rsa.size() * 8 {
            2048 => Algorithm::Rsa2048,
            3072 => Algorithm::Rsa3072,
            4096 => Algorithm::Rsa4096,
            bits => {
                return Err(BackendError::UnsupportedAlgorithm(format!(
                    "RSA keys of {bits} bits (2048, 3072 or 4096 only)"
                )))
            }
        };
        Ok(SigningKey::Rsa(
            Box::new(rsa::pss::BlindedSigningKey::new(rsa)),
            algorithm,
        ))
    }

    /// The notary public key object: DER SPKI for ECDSA and RSA, raw 32
    /// bytes for Ed25519.
    pub(super) fn public_key(&self) -> Result<PublicKey, BackendError> {
        let (keytype, bytes) = match self {
            SigningKey::P256(k, _) => (
                KeyType::Ecdsa,
                k.verifying_key()
                    .to_public_key_der()
                    .map_err(encoding_err)?
                    .into_vec(),
            ),
            SigningKey::P384(k) => (
                KeyType::Ecdsa,
                k.verifying_key()
                    .to_public_key_der()
                    .map_err(encoding_err)?
                    .into_vec(),
            ),
            SigningKey::Ed25519(k) => (KeyType::Ed25519, k.verifying_key().to_bytes().to_vec()),
            SigningKey::Rsa(k, _) => (
                KeyType::Rsa,
                k.as_ref()
                    .as_ref()
                    .to_public_key()
                    .to_public_key_der()
                    .map_err(encoding_err)?
                    .into_vec(),
            ),
        };
        Ok(PublicKey::new(keytype, bytes))
    }

    /// Signs as notary does: ECDSA (both curves) over SHA-256 with raw r||s,
    /// pure Ed25519, RSA-PSS SHA-256 with a 32-byte salt.
    pub(super) fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, BackendError> {
        use p256::ecdsa::signature::hazmat::PrehashSigner;
        use rsa::signature::{RandomizedSigner, SignatureEncoding};
        let failed =
            |e: &dyn std::fmt::Display| BackendError::Device(format!("signing failed: {e}"));
        Ok(match self {
            // FIXED_SIGNING: SHA-256 of the payload, raw r||s, as notary.
            SigningKey::P256(_, fast) => fast
                .sign(&ring::rand::SystemRandom::new(), payload)
                .map_err(|_| failed(&"ring ECDSA P-256"))?
                .as_ref()
                .to_vec(),
            SigningKey::P384(k) => {
                let sig: p384::ecdsa::Signature = k
                    .sign_prehash(&Sha256::digest(payload))
                    .map_err(|e| failed(&e))?;
                sig.to_bytes().to_vec()
            }
            SigningKey::Ed25519(k) => {
                use ed25519_dalek::Signer;
                k.sign(payload).to_bytes().to_vec()
            }
            SigningKey::Rsa(k, _) => k
                .try_sign_with_rng(&mut OsRng, payload)
                .map_err(|e| failed(&e))?
                .to_vec(),
        })
    }
}
