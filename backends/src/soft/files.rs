//! On-disk layout of the software keystore:
//!
//! ```text
//! <dir>/keystore.json        format version, KDF parameters, passphrase check
//! <dir>/keys/<id>.json       one key: algorithm, label, sealed or plain PKCS#8
//! <dir>/keys/<id>.crt        DER certificate stored beside the key (optional)
//! <dir>/.lock               held (flock) by the one process that has it open
//! ```
//! Every file is written atomically with mode 0600; directories are 0700.

use super::sealing::{KdfParams, Sealed, Sealer};
use super::signing_key::SigningKey;
use crate::atomic_file::{remove_leftovers, write_atomic};
use crate::dir_lock::{lock_dir, DirLock, LockError};
use crate::import::ImportMark;
use crate::{Algorithm, BackendError};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use notary_tuf::metadata::{Gun, Role};
use rand_core::{OsRng, RngCore};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct KeystoreMeta {
    format: u32,
    /// Present when keys are encrypted at rest.
    encryption: Option<Encryption>,
}

#[derive(Serialize, Deserialize)]
struct Encryption {
    #[serde(flatten)]
    kdf: KdfParams,
    check: Sealed,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum PrivatePart {
    Plain(String),
    Sealed(Sealed),
}

#[derive(Serialize, Deserialize)]
pub(super) struct KeyFile {
    format: u32,
    algorithm: String,
    pub label: String,
    private: PrivatePart,
    /// Set for a key taken in from a stock notary key file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    imported: Option<ImportedFor>,
}

/// The import mark as stored: role and GUN names.
#[derive(Serialize, Deserialize)]
struct ImportedFor {
    role: String,
    gun: String,
}

impl ImportedFor {
    fn of(mark: &ImportMark) -> ImportedFor {
        ImportedFor {
            role: mark.role.name().to_string(),
            gun: mark.gun.as_str().to_string(),
        }
    }

    fn mark(&self, id: &str) -> Result<ImportMark, BackendError> {
        let bad = |e: &dyn std::fmt::Display| {
            BackendError::Storage(format!("key {id}: import mark does not parse: {e}"))
        };
        Ok(ImportMark {
            role: Role::parse(&self.role).map_err(|e| bad(&e))?,
            gun: Gun::parse(&self.gun).map_err(|e| bad(&e))?,
        })
    }
}

fn storage(what: &str, path: &Path, e: impl std::fmt::Display) -> BackendError {
    BackendError::Storage(format!("{what} {}: {e}", path.display()))
}

/// A random, URI-safe identifier for a new key file.
pub(super) fn new_key_id() -> String {
    let mut id = [0u8; 16];
    OsRng.fill_bytes(&mut id);
    hex::encode(id)
}

fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Associated data binding a sealed key to its file, and an imported key
/// to its mark (removing the mark breaks the seal).
fn aad(id: &str, algorithm: &str, imported: Option<&ImportedFor>) -> Vec<u8> {
    let mut aad = format!("notary-keyd soft key {id} {algorithm}");
    if let Some(mark) = imported {
        aad.push_str(&format!(" imported {} {}", mark.role, mark.gun));
    }
    aad.into_bytes()
}

impl KeyFile {
    /// `imported`: the mark of a key taken in from a stock notary file.
    pub(super) fn seal(
        id: &str,
        label: &str,
        key: &SigningKey,
        sealer: Option<&Sealer>,
        imported: Option<&ImportMark>,
    ) -> Result<KeyFile, BackendError> {
        let algorithm = key.algorithm().as_str().to_string();
        let imported = imported.map(ImportedFor::of);
        let pkcs8 = key.to_pkcs8()?;
        let private = match sealer {
            Some(s) => {
                PrivatePart::Sealed(s.seal(&pkcs8, &aad(id, &algorithm, imported.as_ref()))?)
            }
            None => PrivatePart::Plain(B64.encode(pkcs8.as_slice())),
        };
        Ok(KeyFile {
            format: FORMAT,
            algorithm,
            label: label.to_string(),
            private,
            imported,
        })
    }

    /// Whether the private key is encrypted at rest.
    pub(super) fn is_sealed(&self) -> bool {
        matches!(self.private, PrivatePart::Sealed(_))
    }

    /// The import mark, for a key taken in from a stock notary file.
    pub(super) fn import_mark(&self, id: &str) -> Result<Option<ImportMark>, BackendError> {
        self.imported.as_ref().map(|m| m.mark(id)).transpose()
    }

    pub(super) fn load(
        &self,
        id: &str,
        sealer: Option<&Sealer>,
    ) -> Result<SigningKey, BackendError> {
        let algorithm: Algorithm = self
            .algorithm
            .parse()
            .map_err(|e| BackendError::Storage(format!("key {id}: {e}")))?;
        let pkcs8 = match (&self.private, sealer) {
            (PrivatePart::Sealed(sealed), Some(s)) => s
                .open(sealed, &aad(id, &self.algorithm, self.imported.as_ref()))
                .map_err(|e| BackendError::Storage(format!("key {id}: {e}")))?,
            (PrivatePart::Sealed(_), None) => {
                return Err(BackendError::Storage(format!(
                    "key {id} is encrypted but no passphrase is configured"
                )))
            }
            (PrivatePart::Plain(b64), _) => Zeroizing::new(B64.decode(b64).map_err(|_| {
                BackendError::Storage(format!("key {id}: private key is not base64"))
            })?),
        };
        SigningKey::from_pkcs8(algorithm, &pkcs8)
    }
}

pub(super) struct KeystoreDir {
    root: PathBuf,
    keys: PathBuf,
    /// Held while the keystore is open. Two processes writing one keystore
    /// would each miss the other's keys, and `keystore encrypt` must not
    /// rewrite files under a running daemon.
    _lock: DirLock,
}

/// Takes `<root>/.lock`, or says which process is likely to hold it.
fn lock_keystore(root: &Path) -> Result<DirLock, BackendError> {
    lock_dir(root).map_err(|e| match e {
        LockError::Open { path, error } => storage("cannot open", &path, error),
        LockError::Held => BackendError::Storage(format!(
            "keystore {} is already open (its .lock is held): \
             is a notary-keyd running on it? Stop it first",
            root.display()
        )),
    })
}

/// Refuses directories other users could read or write: keys (even sealed
/// ones) and the passphrase check must stay private to the daemon's user.
fn check_private_dir(path: &Path) -> Result<(), BackendError> {
    let meta = fs::metadata(path).map_err(|e| storage("cannot read", path, e))?;
    if !meta.is_dir() {
        return Err(BackendError::Storage(format!(
            "{} is not a directory",
            path.display()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(BackendError::Storage(format!(
            "refusing keystore directory {}: mode {mode:03o} lets other users in; run `chmod 700 {}`",
            path.display(),
            path.display()
        )));
    }
    if meta.uid() != nix_uid() {
        return Err(BackendError::Storage(format!(
            "refusing keystore directory {}: owned by uid {}, not by this daemon's uid {}",
            path.display(),
            meta.uid(),
            nix_uid()
        )));
    }
    Ok(())
}

fn nix_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

fn create_private_dir(path: &Path) -> Result<(), BackendError> {
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(storage("cannot create", path, e)),
    }
}

impl KeystoreDir {
    pub(super) fn open(root: &Path) -> Result<KeystoreDir, BackendError> {
        create_private_dir(root)?;
        check_private_dir(root)?;
        let lock = lock_keystore(root)?;
        let keys = root.join("keys");
        create_private_dir(&keys)?;
        check_private_dir(&keys)?;
        remove_leftovers(root);
        remove_leftovers(&keys);
        Ok(KeystoreDir {
            root: root.to_path_buf(),
            keys,
            _lock: lock,
        })
    }

    pub(super) fn path(&self) -> &Path {
        &self.root
    }

    fn meta_path(&self) -> PathBuf {
        self.root.join("keystore.json")
    }

    /// `keystore.json`, or `None` for a keystore not yet initialised.
    fn read_meta(&self) -> Result<Option<KeystoreMeta>, BackendError> {
        let path = self.meta_path();
        let meta: KeystoreMeta = match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| storage("malformed", &path, e))?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(storage("cannot read", &path, e)),
        };
        if meta.format != FORMAT {
            return Err(BackendError::Storage(format!(
                "{} has format {}, this daemon reads format {FORMAT}",
                path.display(),
                meta.format
            )));
        }
        Ok(Some(meta))
    }

    /// Reads or initialises `keystore.json` and returns the sealer for the
    /// configured passphrase. A keystore created with a passphrase cannot be
    /// opened without one; one that holds unencrypted keys is encrypted
    /// first (`notary-keyd keystore encrypt`, [`Self::encryption_sealer`]).
    pub(super) fn sealer(
        &self,
        passphrase: Option<&SecretString>,
    ) -> Result<Option<Sealer>, BackendError> {
        match (self.read_meta()?, passphrase) {
            (
                Some(KeystoreMeta {
                    encryption: Some(enc),
                    ..
                }),
                Some(p),
            ) => Ok(Some(Self::unlock(&enc, p)?)),
            (
                Some(KeystoreMeta {
                    encryption: Some(_),
                    ..
                }),
                None,
            ) => Err(BackendError::Storage(
                "this keystore is encrypted: configure its passphrase source".into(),
            )),
            (
                Some(KeystoreMeta {
                    encryption: None, ..
                }),
                Some(p),
            ) => {
                if self.read_key_files()?.is_empty() {
                    self.init_meta(Some(p))
                } else {
                    Err(BackendError::Storage(
                        "this keystore holds unencrypted keys but a passphrase is configured; \
                         with the daemon stopped, run `notary-keyd keystore encrypt` to encrypt \
                         them in place with that passphrase, or remove the passphrase source"
                            .into(),
                    ))
                }
            }
            (
                Some(KeystoreMeta {
                    encryption: None, ..
                }),
                None,
            ) => Ok(None),
            (None, p) => self.init_meta(p),
        }
    }

    /// The sealer that `keystore encrypt` seals keys with: the keystore's
    /// own when it is already encrypted (the passphrase must match: an
    /// encryption cut short is finished with the same passphrase), else a
    /// new one, recorded in `keystore.json` before any key is rewritten.
    pub(super) fn encryption_sealer(
        &self,
        passphrase: &SecretString,
    ) -> Result<Sealer, BackendError> {
        match self.read_meta()? {
            Some(KeystoreMeta {
                encryption: Some(enc),
                ..
            }) => Self::unlock(&enc, passphrase),
            _ => self.init_meta(Some(passphrase))?.ok_or_else(|| {
                BackendError::Storage("no sealer was made for the passphrase".into())
            }),
        }
    }

    fn unlock(encryption: &Encryption, passphrase: &SecretString) -> Result<Sealer, BackendError> {
        let sealer = Sealer::derive(passphrase, &encryption.kdf)?;
        sealer.verify_check(&encryption.check)?;
        Ok(sealer)
    }

    fn init_meta(&self, passphrase: Option<&SecretString>) -> Result<Option<Sealer>, BackendError> {
        let (encryption, sealer) = match passphrase {
            Some(p) => {
                let kdf = KdfParams::new_random();
                let sealer = Sealer::derive(p, &kdf)?;
                let check = sealer.make_check()?;
                (Some(Encryption { kdf, check }), Some(sealer))
            }
            None => (None, None),
        };
        let meta = KeystoreMeta {
            format: FORMAT,
            encryption,
        };
        let path = self.meta_path();
        let bytes =
            serde_json::to_vec_pretty(&meta).map_err(|e| storage("cannot encode", &path, e))?;
        write_atomic(&path, &bytes, 0o600).map_err(|e| storage("cannot write", &path, e))?;
        Ok(sealer)
    }

    pub(super) fn read_key_files(&self) -> Result<Vec<(String, KeyFile)>, BackendError> {
        let mut out = Vec::new();
        let entries =
            fs::read_dir(&self.keys).map_err(|e| storage("cannot list", &self.keys, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| storage("cannot list", &self.keys, e))?;
            let path = entry.path();
            let Some(id) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
                .filter(|id| valid_id(id))
            else {
                continue;
            };
            out.push((id.to_string(), Self::read_key_file_at(&path)?));
        }
        Ok(out)
    }

    /// The key file of `id`.
    pub(super) fn read_key_file(&self, id: &str) -> Result<KeyFile, BackendError> {
        Self::read_key_file_at(&self.checked(id, "json")?)
    }

    fn read_key_file_at(path: &Path) -> Result<KeyFile, BackendError> {
        let bytes = fs::read(path).map_err(|e| storage("cannot read", path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| storage("malformed key file", path, e))
    }

    pub(super) fn write_key_file(&self, id: &str, file: &KeyFile) -> Result<(), BackendError> {
        let path = self.keys.join(format!("{id}.json"));
        let bytes = Zeroizing::new(
            serde_json::to_vec_pretty(file).map_err(|e| storage("cannot encode", &path, e))?,
        );
        write_atomic(&path, &bytes, 0o600).map_err(|e| storage("cannot write", &path, e))
    }

    fn checked(&self, id: &str, ext: &str) -> Result<PathBuf, BackendError> {
        if !valid_id(id) {
            return Err(BackendError::KeyNotFound(format!("soft:id={id}")));
        }
        Ok(self.keys.join(format!("{id}.{ext}")))
    }

    pub(super) fn remove_key(&self, id: &str) -> Result<(), BackendError> {
        let cert = self.checked(id, "crt")?;
        if let Err(e) = fs::remove_file(&cert) {
            if e.kind() != io::ErrorKind::NotFound {
                return Err(storage("cannot remove", &cert, e));
            }
        }
        let path = self.checked(id, "json")?;
        fs::remove_file(&path).map_err(|e| storage("cannot remove", &path, e))
    }

    pub(super) fn write_certificate(&self, id: &str, der: &[u8]) -> Result<(), BackendError> {
        let path = self.checked(id, "crt")?;
        write_atomic(&path, der, 0o600).map_err(|e| storage("cannot write", &path, e))
    }

    pub(super) fn read_certificate(&self, id: &str) -> Result<Option<Vec<u8>>, BackendError> {
        let path = self.checked(id, "crt")?;
        match fs::read(&path) {
            Ok(der) => Ok(Some(der)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(storage("cannot read", &path, e)),
        }
    }
}
