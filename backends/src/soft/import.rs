//! Stock notary key files into the software keystore: decrypted here (the
//! passphrase and the key never leave this module), stored sealed like any
//! other key, and marked imported.

use super::signing_key::SigningKey;
use super::SoftBackend;
use crate::import::{ImportError, ImportMark, KeyImport, NotaryKeyFile};
use crate::{BackendKey, KeyUri};
use pkcs8::EncryptedPrivateKeyInfo;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

/// Decrypts the PKCS#8 inside a stock notary key file (PBES2; notary 0.7
/// writes PBKDF2-HMAC-SHA1 with AES-256-CBC).
fn decrypt(file: &NotaryKeyFile, passphrase: &SecretString) -> Result<SigningKey, ImportError> {
    let info = EncryptedPrivateKeyInfo::try_from(file.encrypted_der.as_slice())
        .map_err(|e| ImportError::Invalid(format!("not an encrypted PKCS#8 key: {e}")))?;
    let plain = match info.decrypt(passphrase.expose_secret().as_bytes()) {
        Ok(plain) => plain,
        // A wrong passphrase fails the CBC padding (pkcs5 0.7 reports that
        // as EncryptFailed), or (rarely) yields bytes that are not DER.
        Err(pkcs8::Error::EncryptedPrivateKey(
            pkcs5::Error::DecryptFailed | pkcs5::Error::EncryptFailed,
        ))
        | Err(pkcs8::Error::Asn1(_)) => return Err(ImportError::WrongPassphrase),
        Err(e) => {
            return Err(ImportError::Invalid(format!(
                "its encryption is not one notary-keyd reads: {e}"
            )))
        }
    };
    let plain = as_version_1(plain.as_bytes());
    // The padding happened to fit, but the bytes are no private key.
    if pkcs8::PrivateKeyInfo::try_from(plain.as_slice()).is_err() {
        return Err(ImportError::WrongPassphrase);
    }
    SigningKey::from_any_pkcs8(&plain).map_err(|e| {
        ImportError::Invalid(format!("its key is not one notary-keyd signs with: {e}"))
    })
}

/// Notary 0.7 writes its ECDSA keys with PrivateKeyInfo version 2 (RFC
/// 5958) but without the public key field that version adds; the RustCrypto
/// parsers then refuse them. Such a key is a version 1 PrivateKeyInfo in
/// all but the number, so the number is set to 1 (encoded 0).
fn as_version_1(der: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut der = Zeroizing::new(der.to_vec());
    let header = match der.get(1) {
        Some(len) if *len < 0x80 => 2,
        Some(0x81) => 3,
        Some(0x82) => 4,
        _ => return der,
    };
    if der.first() == Some(&0x30) && der.get(header..header + 3) == Some(&[0x02, 0x01, 0x01]) {
        der[header + 2] = 0x00;
    }
    der
}

impl KeyImport for SoftBackend {
    fn import(
        &self,
        file: &NotaryKeyFile,
        passphrase: &SecretString,
        expected_key_id: &str,
        mark: &ImportMark,
    ) -> Result<BackendKey, ImportError> {
        let key = decrypt(file, passphrase)?;
        let public = key.public_key()?;
        let found = public.key_id();
        if found != expected_key_id {
            return Err(ImportError::KeyMismatch {
                found,
                expected: expected_key_id.to_string(),
            });
        }
        let held = {
            let keys = self.keys.read().map_err(|_| Self::poisoned())?;
            keys.values()
                .find(|k| k.info.public == public)
                .map(|k| k.info.clone())
        };
        if let Some(held) = held {
            return Ok(held);
        }
        let label = format!("{} {} (imported)", mark.gun, mark.role);
        Ok(self.store(key, &label, Some(mark.clone()))?)
    }

    fn imported(&self, uri: &KeyUri) -> Option<ImportMark> {
        let id = Self::id_of(uri).ok()?;
        let keys = self.keys.read().ok()?;
        keys.get(id).and_then(|k| k.imported.clone())
    }
}
