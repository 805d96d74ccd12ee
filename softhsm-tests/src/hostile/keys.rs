//! The attacker's signing keys: ECDSA P-256, listed as a bare key, as a
//! self-signed root certificate in notary's profile, or as a certificate an
//! openssl CA issued ([`crate::notary_stack::Pki`]).

use anyhow::{Context, Result};
use notary_tuf::rootcert::{assemble_root_cert, root_cert_tbs};
use notary_tuf::{KeyType, PublicKey, Signature, SignatureMethod, SignedEnvelope};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::SigningKey;
use p256::pkcs8::EncodePublicKey;
use std::path::Path;

#[derive(Clone)]
pub struct Key {
    secret: SigningKey,
    /// The key as metadata lists it (its ID is what signatures name).
    pub public: PublicKey,
}

impl Key {
    /// A bare `ecdsa` key; the same seed gives the same key.
    pub fn ecdsa(seed: u8) -> Key {
        let secret = secret(seed);
        let public = PublicKey::new(KeyType::Ecdsa, spki(&secret));
        Key { secret, public }
    }

    /// A root key for `gun`: a self-signed certificate as notary makes
    /// them, valid from an hour ago for a year.
    pub fn root(gun: &str, seed: u8) -> Result<Key> {
        let secret = secret(seed);
        Ok(Key {
            public: self_signed(&secret, gun, seed)?,
            secret,
        })
    }

    /// The key and certificate files [`crate::notary_stack::Pki::issue`]
    /// writes, as an `ecdsa-x509` key.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Key> {
        let pem = std::fs::read_to_string(cert)?;
        let key_pem = std::fs::read(key)?;
        let block = notary_tuf::pem::parse_blocks(&key_pem)?
            .into_iter()
            .find(|b| b.label == "EC PRIVATE KEY")
            .context("no EC PRIVATE KEY block")?;
        let secret = SigningKey::from(p256::SecretKey::from_sec1_der(&block.der)?);
        Ok(Key {
            secret,
            public: PublicKey::from_certificate_pem(&pem)?,
        })
    }

    /// This private key listed as `public`: another ID for one key.
    pub fn listed_as(&self, public: PublicKey) -> Key {
        Key {
            secret: self.secret.clone(),
            public,
        }
    }

    /// This private key as a bare `ecdsa` key.
    pub fn bare(&self) -> Key {
        self.listed_as(PublicKey::new(KeyType::Ecdsa, spki(&self.secret)))
    }

    /// This private key in a self-signed certificate for `cn` (any CN: a
    /// certificate for a non-root role only carries the key).
    pub fn certified(&self, cn: &str, serial: u8) -> Result<Key> {
        Ok(self.listed_as(self_signed(&self.secret, cn, serial)?))
    }

    pub fn id(&self) -> String {
        self.public.key_id()
    }

    /// Adds a signature over the envelope's canonical `signed`.
    pub fn sign(&self, envelope: &mut SignedEnvelope) {
        let sig: p256::ecdsa::Signature = self.secret.sign(&envelope.signed_bytes);
        envelope.signatures.push(Signature {
            keyid: self.id(),
            method: SignatureMethod::Ecdsa,
            sig: sig.to_bytes().to_vec(),
        });
    }
}

fn secret(seed: u8) -> SigningKey {
    let mut bytes = [seed.max(1); 32];
    bytes[0] = 0x42;
    SigningKey::from_slice(&bytes).expect("a valid P-256 scalar")
}

fn spki(secret: &SigningKey) -> Vec<u8> {
    secret
        .verifying_key()
        .to_public_key_der()
        .expect("P-256 SPKI")
        .to_vec()
}

fn self_signed(secret: &SigningKey, cn: &str, serial: u8) -> Result<PublicKey> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let tbs = root_cert_tbs(
        cn,
        &spki(secret),
        [serial.max(1); 16],
        now as i64 - 3600,
        365,
    )?;
    let sig: p256::ecdsa::Signature = secret.sign(&tbs);
    Ok(PublicKey::from_certificate_pem(&assemble_root_cert(
        &tbs,
        &sig.to_bytes(),
    )?)?)
}
