//! Software keystore: the zero-setup default backend.
//!
//! Keys live as files in the state directory (mode 0600), one per key,
//! encrypted at rest with a passphrase-derived key (Argon2id + XChaCha20-
//! Poly1305) when a passphrase is configured. Without one the keystore works
//! but warns on every start that keys are stored unencrypted. Private keys are
//! decrypted once at open and held in zeroizing types, except the copy of a
//! P-256 key that ring signs with (ring does not wipe it when it is freed;
//! the daemon marks itself non-dumpable); they never leave this module.

mod encrypt;
mod files;
mod import;
mod sealing;
mod signing_key;

use crate::backend::{Availability, BackendKey, CertificateStore, DeviceInfo, KeyBackend, KeySpec};
use crate::import::{ImportMark, KeyImport};
use crate::{Algorithm, BackendError, KeyUri};
pub use encrypt::{encrypt_in_place, Encrypted};
use files::{KeyFile, KeystoreDir};
use sealing::Sealer;
use secrecy::SecretString;
use signing_key::SigningKey;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::RwLock;

pub struct SoftConfig {
    /// Directory for the keystore; created 0700 if missing.
    pub dir: PathBuf,
    /// Passphrase for encryption at rest; `None` stores keys unencrypted.
    pub passphrase: Option<SecretString>,
}

impl std::fmt::Debug for SoftConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftConfig")
            .field("dir", &self.dir)
            .field(
                "passphrase",
                &self.passphrase.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

struct LoadedKey {
    info: BackendKey,
    key: SigningKey,
    /// Set for a key taken in from a stock notary key file.
    imported: Option<ImportMark>,
}

pub struct SoftBackend {
    dir: KeystoreDir,
    sealer: Option<Sealer>,
    keys: RwLock<HashMap<String, LoadedKey>>,
}

const SCHEME: &str = "soft";

impl SoftBackend {
    /// Opens (or creates) the keystore and decrypts every key in it.
    pub fn open(config: SoftConfig) -> Result<SoftBackend, BackendError> {
        let dir = KeystoreDir::open(&config.dir)?;
        let sealer = dir.sealer(config.passphrase.as_ref())?;
        if sealer.is_none() {
            tracing::warn!(
                dir = %config.dir.display(),
                "software keystore keys are stored UNENCRYPTED; configure a passphrase source to encrypt them at rest"
            );
        }
        let mut keys = HashMap::new();
        let mut plain = 0;
        for (id, file) in dir.read_key_files()? {
            plain += usize::from(!file.is_sealed());
            let key = file.load(&id, sealer.as_ref())?;
            let imported = file.import_mark(&id)?;
            let info = BackendKey {
                uri: KeyUri::new(SCHEME).with("id", &id),
                public: key.public_key()?,
                algorithm: key.algorithm(),
                label: file.label.clone(),
            };
            keys.insert(
                id,
                LoadedKey {
                    info,
                    key,
                    imported,
                },
            );
        }
        if sealer.is_some() && plain > 0 {
            tracing::warn!(
                dir = %config.dir.display(),
                unencrypted = plain,
                "this encrypted keystore still holds unencrypted keys (an encryption cut short?); \
                 stop the daemon and run `notary-keyd keystore encrypt` to seal them"
            );
        }
        Ok(SoftBackend {
            dir,
            sealer,
            keys: RwLock::new(keys),
        })
    }

    fn id_of(uri: &KeyUri) -> Result<&str, BackendError> {
        if uri.scheme() != SCHEME {
            return Err(BackendError::InvalidUri {
                uri: uri.to_string(),
                reason: "not a soft: key URI".into(),
            });
        }
        uri.require("id")
    }

    fn poisoned() -> BackendError {
        BackendError::Storage("keystore lock poisoned by a panic".into())
    }

    /// Writes a new key file, then serves the key.
    fn store(
        &self,
        key: SigningKey,
        label: &str,
        imported: Option<ImportMark>,
    ) -> Result<BackendKey, BackendError> {
        let id = files::new_key_id();
        let file = KeyFile::seal(&id, label, &key, self.sealer.as_ref(), imported.as_ref())?;
        self.dir.write_key_file(&id, &file)?;
        let info = BackendKey {
            uri: KeyUri::new(SCHEME).with("id", &id),
            public: key.public_key()?,
            algorithm: key.algorithm(),
            label: label.to_string(),
        };
        let mut keys = self.keys.write().map_err(|_| Self::poisoned())?;
        keys.insert(
            id,
            LoadedKey {
                info: info.clone(),
                key,
                imported,
            },
        );
        Ok(info)
    }
}

impl KeyBackend for SoftBackend {
    fn kind(&self) -> &'static str {
        "soft"
    }

    fn availability(&self) -> Availability {
        Availability::Available
    }

    fn device_info(&self) -> DeviceInfo {
        DeviceInfo {
            manufacturer: "notary-keyd".into(),
            model: if self.sealer.is_some() {
                "software keystore (encrypted)".into()
            } else {
                "software keystore (UNENCRYPTED)".into()
            },
            label: self.dir.path().display().to_string(),
            serial: String::new(),
        }
    }

    fn algorithms(&self) -> Vec<Algorithm> {
        Algorithm::ALL.to_vec()
    }

    fn concurrency(&self) -> usize {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    }

    /// ring's P-256 signs in about 25 µs here, dalek's Ed25519 in about 40 µs; P-384
    /// (RustCrypto) and RSA take milliseconds and go to a blocking thread.
    fn signs_in_place(&self, algorithm: Algorithm) -> bool {
        matches!(algorithm, Algorithm::EcdsaP256 | Algorithm::Ed25519)
    }

    fn list(&self) -> Result<Vec<BackendKey>, BackendError> {
        let keys = self.keys.read().map_err(|_| Self::poisoned())?;
        Ok(keys.values().map(|k| k.info.clone()).collect())
    }

    fn generate(&self, spec: &KeySpec) -> Result<BackendKey, BackendError> {
        let key = SigningKey::generate(spec.algorithm)?;
        self.store(key, &spec.label, None)
    }

    fn sign(&self, uri: &KeyUri, payload: &[u8]) -> Result<Vec<u8>, BackendError> {
        let id = Self::id_of(uri)?;
        let keys = self.keys.read().map_err(|_| Self::poisoned())?;
        let key = keys
            .get(id)
            .ok_or_else(|| BackendError::KeyNotFound(uri.to_string()))?;
        key.key.sign(payload)
    }

    fn delete(&self, uri: &KeyUri) -> Result<(), BackendError> {
        let id = Self::id_of(uri)?;
        let mut keys = self.keys.write().map_err(|_| Self::poisoned())?;
        if !keys.contains_key(id) {
            return Err(BackendError::KeyNotFound(uri.to_string()));
        }
        self.dir.remove_key(id)?;
        keys.remove(id);
        Ok(())
    }

    fn certificates(&self) -> Option<&dyn CertificateStore> {
        Some(self)
    }

    fn imports(&self) -> Option<&dyn KeyImport> {
        Some(self)
    }
}

impl CertificateStore for SoftBackend {
    fn put_certificate(&self, uri: &KeyUri, der: &[u8]) -> Result<(), BackendError> {
        let id = Self::id_of(uri)?;
        let keys = self.keys.read().map_err(|_| Self::poisoned())?;
        if !keys.contains_key(id) {
            return Err(BackendError::KeyNotFound(uri.to_string()));
        }
        self.dir.write_certificate(id, der)
    }

    fn certificate(&self, uri: &KeyUri) -> Result<Option<Vec<u8>>, BackendError> {
        self.dir.read_certificate(Self::id_of(uri)?)
    }
}

#[cfg(test)]
mod tests;
