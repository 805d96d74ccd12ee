//! Encrypting a keystore's unencrypted keys in place (`notary-keyd
//! keystore encrypt`).
//!
//! `keystore.json` takes the new passphrase first; then each plain key file
//! is replaced (atomically) by its sealed form, which is read back and
//! opened before the next one. A keystore whose `keystore.json` says
//! encrypted still opens a plain key file, so a run cut short at any point
//! leaves every key usable with the passphrase, and running the command
//! again with the same passphrase seals the rest.

use super::files::{KeyFile, KeystoreDir};
use crate::BackendError;
use secrecy::SecretString;
use std::path::Path;

/// What [`encrypt_in_place`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encrypted {
    /// Key files that were plain and are now sealed.
    pub sealed: usize,
    /// Key files that were sealed already.
    pub already_sealed: usize,
}

/// Seals every unencrypted key in the keystore at `dir` with `passphrase`.
/// Refuses a directory that is not a keystore, a keystore another process
/// has open (a running daemon), and an encrypted keystore whose passphrase
/// is a different one.
pub fn encrypt_in_place(dir: &Path, passphrase: &SecretString) -> Result<Encrypted, BackendError> {
    if !dir.join("keystore.json").is_file() {
        return Err(BackendError::Storage(format!(
            "{} is not a software keystore (it has no keystore.json)",
            dir.display()
        )));
    }
    let store = KeystoreDir::open(dir)?;
    let sealer = store.encryption_sealer(passphrase)?;
    let mut done = Encrypted {
        sealed: 0,
        already_sealed: 0,
    };
    for (id, plain) in store.read_key_files()? {
        if plain.is_sealed() {
            done.already_sealed += 1;
            continue;
        }
        let key = plain.load(&id, None)?;
        let mark = plain.import_mark(&id)?;
        let sealed = KeyFile::seal(&id, &plain.label, &key, Some(&sealer), mark.as_ref())?;
        store.write_key_file(&id, &sealed)?;
        let reopened = store.read_key_file(&id)?.load(&id, Some(&sealer))?;
        if reopened.public_key()? != key.public_key()? {
            return Err(BackendError::Storage(format!(
                "key {id}: the sealed file written does not open to the same key"
            )));
        }
        done.sealed += 1;
    }
    Ok(done)
}
