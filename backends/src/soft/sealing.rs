//! Encryption at rest: a key derived from the passphrase with Argon2id seals
//! each private key with XChaCha20-Poly1305. The key ID and algorithm are
//! bound in as associated data, so a ciphertext moved to another file fails.

use crate::BackendError;
use argon2::{Algorithm as Argon2Algorithm, Argon2, Params, Version};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{OsRng, RngCore};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// KDF parameters, stored in the keystore so they can be raised later.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct KdfParams {
    pub kdf: String,
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
    pub salt: String,
}

impl KdfParams {
    /// Argon2id at OWASP's 19 MiB / 2 passes: memory-hard, yet small enough
    /// to keep the daemon's resident size low.
    pub(super) fn new_random() -> KdfParams {
        let mut salt = [0u8; 16];
        OsRng.fill_bytes(&mut salt);
        KdfParams {
            kdf: "argon2id".into(),
            m_kib: 19 * 1024,
            t: 2,
            p: 1,
            salt: B64.encode(salt),
        }
    }
}

/// A sealed blob as stored in JSON.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct Sealed {
    pub nonce: String,
    pub ciphertext: String,
}

pub(super) struct Sealer {
    cipher: XChaCha20Poly1305,
}

/// Known plaintext sealed at keystore creation: opening it at start tells a
/// wrong passphrase apart from a damaged key file.
const CHECK_PLAINTEXT: &[u8] = b"notary-keyd keystore passphrase check";
const CHECK_AAD: &[u8] = b"keystore-check";

impl Sealer {
    pub(super) fn derive(
        passphrase: &SecretString,
        params: &KdfParams,
    ) -> Result<Sealer, BackendError> {
        if params.kdf != "argon2id" {
            return Err(BackendError::Storage(format!(
                "keystore uses unknown KDF {:?}",
                params.kdf
            )));
        }
        let salt = B64
            .decode(&params.salt)
            .map_err(|_| BackendError::Storage("keystore KDF salt is not base64".into()))?;
        let argon_params = Params::new(params.m_kib, params.t, params.p, Some(32))
            .map_err(|e| BackendError::Storage(format!("bad keystore KDF parameters: {e}")))?;
        let argon = Argon2::new(Argon2Algorithm::Argon2id, Version::V0x13, argon_params);
        let mut key = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(passphrase.expose_secret().as_bytes(), &salt, key.as_mut())
            .map_err(|e| BackendError::Storage(format!("keystore key derivation failed: {e}")))?;
        let cipher = XChaCha20Poly1305::new_from_slice(key.as_ref())
            .map_err(|_| BackendError::Storage("derived key has the wrong length".into()))?;
        Ok(Sealer { cipher })
    }

    pub(super) fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, BackendError> {
        let mut nonce = [0u8; 24];
        OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| BackendError::Storage("encryption failed".into()))?;
        Ok(Sealed {
            nonce: B64.encode(nonce),
            ciphertext: B64.encode(ciphertext),
        })
    }

    pub(super) fn open(
        &self,
        sealed: &Sealed,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        let bad = || BackendError::Storage("sealed data is not valid base64".into());
        let nonce = B64.decode(&sealed.nonce).map_err(|_| bad())?;
        let ciphertext = B64.decode(&sealed.ciphertext).map_err(|_| bad())?;
        if nonce.len() != 24 {
            return Err(BackendError::Storage("sealed data has a bad nonce".into()));
        }
        self.cipher
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| {
                BackendError::Storage("decryption failed (wrong passphrase or damaged file)".into())
            })
    }

    pub(super) fn make_check(&self) -> Result<Sealed, BackendError> {
        self.seal(CHECK_PLAINTEXT, CHECK_AAD)
    }

    /// Fails with a clear message when the passphrase does not open the
    /// keystore's check value.
    pub(super) fn verify_check(&self, check: &Sealed) -> Result<(), BackendError> {
        match self.open(check, CHECK_AAD) {
            Ok(p) if p.as_slice() == CHECK_PLAINTEXT => Ok(()),
            _ => Err(BackendError::Storage(
                "the configured passphrase does not open this keystore".into(),
            )),
        }
    }
}
