//! Checking one signature the way notary 0.7's verifiers do.

use super::SignatureMethod;
use crate::keys::{ecdsa_curve, first_certificate, Curve, KeyError, KeyType, PublicKey};
use crate::pem;
use der::{Decode, Encode};
use rsa::pkcs1::RsaPublicKey as Pkcs1PublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256};
use spki::SubjectPublicKeyInfoRef;

/// Notary refuses RSA keys below this size.
const MIN_RSA_BITS: usize = 2048;
/// Above what anyone uses, but bounded so a hostile key cannot stall us.
const MAX_RSA_BITS: usize = 16384;
/// RSA-PSS salt length notary signs and verifies with (SHA-256 output size).
const PSS_SALT_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("signature method {method} cannot be used with a {keytype} key")]
    WrongKeyType {
        method: SignatureMethod,
        keytype: KeyType,
    },
    #[error("unusable key {keyid}: {source}")]
    Key {
        keyid: String,
        #[source]
        source: KeyError,
    },
    #[error("ecdsa signature by key {keyid} must be raw r||s of {expected} bytes, got {got}{}", der_hint(.looks_der))]
    EcdsaLength {
        keyid: String,
        expected: usize,
        got: usize,
        looks_der: bool,
    },
    #[error("RSA key {keyid} has {bits} bits; notary needs at least 2048")]
    RsaTooSmall { keyid: String, bits: usize },
    #[error("signature by key {keyid} does not verify ({method})")]
    Invalid {
        keyid: String,
        method: SignatureMethod,
    },
    #[error("metadata has no signatures")]
    NoSignatures,
    #[error("role threshold must be at least 1, got {0}")]
    BadThreshold(u32),
    #[error("signature names key {listed} but that key's computed ID is {computed}")]
    KeyIdMismatch { listed: String, computed: String },
    #[error("{valid} valid signature(s) of {needed} needed{}", problems_suffix(.problems))]
    Threshold {
        valid: usize,
        needed: u32,
        /// Why each signature from a role key was not counted.
        problems: Vec<String>,
    },
}

fn der_hint(looks_der: &bool) -> &'static str {
    if *looks_der {
        " (this looks like DER; notary only accepts raw r||s)"
    } else {
        ""
    }
}

fn problems_suffix(problems: &[String]) -> String {
    if problems.is_empty() {
        String::new()
    } else {
        format!(": {}", problems.join("; "))
    }
}

/// Verifies `sig` over `message` (the canonical `signed` bytes) with `key`.
///
/// ECDSA is raw r||s over SHA-256(message) whatever the curve, Ed25519 is
/// pure and strict, RSA is SHA-256 with PSS (salt 32) or PKCS#1 v1.5.
pub fn verify(
    key: &PublicKey,
    method: SignatureMethod,
    message: &[u8],
    sig: &[u8],
) -> Result<(), VerifyError> {
    let keyid = key.key_id();
    let wrong_type = || VerifyError::WrongKeyType {
        method,
        keytype: key.keytype(),
    };
    let key_error = |source: KeyError| VerifyError::Key {
        keyid: keyid.clone(),
        source,
    };
    let invalid = || VerifyError::Invalid {
        keyid: keyid.clone(),
        method,
    };
    let digest = Sha256::digest(message);
    match method {
        SignatureMethod::Ecdsa => {
            if key.keytype().bare() != KeyType::Ecdsa {
                return Err(wrong_type());
            }
            let spki = key_spki(key).map_err(key_error)?;
            let curve = ecdsa_curve(&spki).map_err(key_error)?;
            let expected = 2 * curve.field_len();
            if sig.len() != expected {
                return Err(VerifyError::EcdsaLength {
                    keyid,
                    expected,
                    got: sig.len(),
                    looks_der: sig.first() == Some(&0x30),
                });
            }
            if ecdsa_verifies(curve, &spki, &digest, sig, EcdsaEncoding::Raw) {
                Ok(())
            } else {
                Err(invalid())
            }
        }
        SignatureMethod::Eddsa => {
            if key.keytype() != KeyType::Ed25519 {
                return Err(wrong_type());
            }
            let public: &[u8; 32] = key.public_bytes().try_into().map_err(|_| {
                key_error(KeyError::InvalidKey {
                    keytype: KeyType::Ed25519,
                    reason: format!("{} bytes instead of 32", key.public_bytes().len()),
                })
            })?;
            let vk = ed25519_dalek::VerifyingKey::from_bytes(public).map_err(|e| {
                key_error(KeyError::InvalidKey {
                    keytype: KeyType::Ed25519,
                    reason: e.to_string(),
                })
            })?;
            let sig = ed25519_dalek::Signature::from_slice(sig).map_err(|_| invalid())?;
            vk.verify_strict(message, &sig).map_err(|_| invalid())
        }
        SignatureMethod::RsaPss | SignatureMethod::RsaPkcs1v15 => {
            if key.keytype().bare() != KeyType::Rsa {
                return Err(wrong_type());
            }
            let spki = key_spki(key).map_err(key_error)?;
            let rsa_key = rsa_public_key(&spki).map_err(key_error)?;
            check_rsa_size(&rsa_key, &keyid)?;
            let result = if method == SignatureMethod::RsaPss {
                rsa_key.verify(
                    rsa::Pss::new_with_salt::<Sha256>(PSS_SALT_LEN),
                    &digest,
                    sig,
                )
            } else {
                rsa_key.verify(Pkcs1v15Sign::new::<Sha256>(), &digest, sig)
            };
            result.map_err(|_| invalid())
        }
        SignatureMethod::PyCryptoPss => {
            // Notary only takes this method with a bare `rsa` key whose
            // `public` is PEM text rather than DER.
            if key.keytype() != KeyType::Rsa {
                return Err(wrong_type());
            }
            let spki = pem::parse_blocks(key.public_bytes())
                .map_err(|e| key_error(KeyError::Pem(e)))?
                .into_iter()
                .next()
                .map(|block| block.der)
                .ok_or_else(|| key_error(KeyError::Pem(pem::PemError::NoBlock)))?;
            let rsa_key = rsa_public_key(&spki).map_err(key_error)?;
            check_rsa_size(&rsa_key, &keyid)?;
            rsa_key
                .verify(
                    rsa::Pss::new_with_salt::<Sha256>(PSS_SALT_LEN),
                    &digest,
                    sig,
                )
                .map_err(|_| invalid())
        }
    }
}

/// DER SPKI of a bare key, or of the first certificate of an x509 key.
fn key_spki(key: &PublicKey) -> Result<Vec<u8>, KeyError> {
    if !key.keytype().is_x509() {
        return Ok(key.public_bytes().to_vec());
    }
    let (_, cert) = first_certificate(key.public_bytes())?;
    cert.tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| KeyError::Spki(e.to_string()))
}

/// How an ECDSA signature is encoded: notary's raw r||s, or X.509's DER.
#[derive(Clone, Copy)]
pub(crate) enum EcdsaEncoding {
    Raw,
    Der,
}

/// Verifies an ECDSA signature over a SHA-256 digest (notary hashes with
/// SHA-256 for P-384 too).
pub(crate) fn ecdsa_verifies(
    curve: Curve,
    spki: &[u8],
    digest: &[u8],
    sig: &[u8],
    encoding: EcdsaEncoding,
) -> bool {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use p256::pkcs8::DecodePublicKey;
    match curve {
        Curve::P256 => {
            let sig = match encoding {
                EcdsaEncoding::Raw => p256::ecdsa::Signature::from_slice(sig),
                EcdsaEncoding::Der => p256::ecdsa::Signature::from_der(sig),
            };
            let (Ok(vk), Ok(sig)) = (p256::ecdsa::VerifyingKey::from_public_key_der(spki), sig)
            else {
                return false;
            };
            vk.verify_prehash(digest, &sig).is_ok()
        }
        Curve::P384 => {
            let sig = match encoding {
                EcdsaEncoding::Raw => p384::ecdsa::Signature::from_slice(sig),
                EcdsaEncoding::Der => p384::ecdsa::Signature::from_der(sig),
            };
            let (Ok(vk), Ok(sig)) = (p384::ecdsa::VerifyingKey::from_public_key_der(spki), sig)
            else {
                return false;
            };
            vk.verify_prehash(digest, &sig).is_ok()
        }
    }
}

/// Parses an RSA SPKI without the `rsa` crate's 4096-bit cap.
pub(crate) fn rsa_public_key(spki_der: &[u8]) -> Result<RsaPublicKey, KeyError> {
    let bad = |reason: String| KeyError::InvalidKey {
        keytype: KeyType::Rsa,
        reason,
    };
    let spki =
        SubjectPublicKeyInfoRef::from_der(spki_der).map_err(|e| KeyError::Spki(e.to_string()))?;
    if spki.algorithm.oid != crate::oids::RSA_ENCRYPTION {
        return Err(bad(format!(
            "algorithm {} is not rsaEncryption",
            spki.algorithm.oid
        )));
    }
    let bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| bad("public key BIT STRING has unused bits".into()))?;
    let pkcs1 = Pkcs1PublicKey::from_der(bits).map_err(|e| bad(e.to_string()))?;
    RsaPublicKey::new_with_max_size(
        BigUint::from_bytes_be(pkcs1.modulus.as_bytes()),
        BigUint::from_bytes_be(pkcs1.public_exponent.as_bytes()),
        MAX_RSA_BITS,
    )
    .map_err(|e| bad(e.to_string()))
}

fn check_rsa_size(key: &RsaPublicKey, keyid: &str) -> Result<(), VerifyError> {
    let bits = key.n().bits();
    if bits < MIN_RSA_BITS {
        return Err(VerifyError::RsaTooSmall {
            keyid: keyid.to_string(),
            bits,
        });
    }
    Ok(())
}
