//! Keys that come from outside, for one migration only: a stock notary
//! client's key file, taken in still encrypted and decrypted inside the
//! backend that keeps it.
//!
//! Stock notary 0.7 writes `private/<key ID>.key` as a PEM block
//! `ENCRYPTED PRIVATE KEY` (PKCS#8, PBES2) with `role:` and, for keys of
//! one collection, `gun:` headers before the base64 body. RFC 7468 has no
//! headers, so this module reads the block itself.

use crate::{BackendError, BackendKey, KeyUri};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use notary_tuf::metadata::{Gun, Role};
use secrecy::SecretString;

/// Largest key file accepted: an RSA 4096 key file is about 3.3 KiB.
pub const MAX_KEY_FILE: usize = 16 * 1024;

const LABEL: &str = "ENCRYPTED PRIVATE KEY";

/// Why a key file could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("not a stock notary key file: {0}")]
    Invalid(String),
    #[error("the passphrase does not decrypt the key file")]
    WrongPassphrase,
    #[error("the key file holds key {found}, not key {expected}")]
    KeyMismatch { found: String, expected: String },
    #[error(transparent)]
    Backend(#[from] BackendError),
}

fn invalid(what: impl Into<String>) -> ImportError {
    ImportError::Invalid(what.into())
}

/// A stock notary key file, parsed but not decrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotaryKeyFile {
    /// The `role:` header.
    pub role: String,
    /// The `gun:` header; stock notary writes none for root keys.
    pub gun: Option<String>,
    /// DER of the PKCS#8 `EncryptedPrivateKeyInfo`.
    pub encrypted_der: Vec<u8>,
}

impl NotaryKeyFile {
    pub fn parse(bytes: &[u8]) -> Result<NotaryKeyFile, ImportError> {
        if bytes.len() > MAX_KEY_FILE {
            return Err(invalid(format!(
                "{} bytes, more than the {MAX_KEY_FILE} a key file can have",
                bytes.len()
            )));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| invalid("not text"))?;
        let mut lines = text.lines().map(str::trim).skip_while(|l| l.is_empty());
        let begin = format!("-----BEGIN {LABEL}-----");
        if lines.next() != Some(begin.as_str()) {
            return Err(invalid(format!("it does not start with {begin:?}")));
        }
        let end = format!("-----END {LABEL}-----");
        let (mut role, mut gun, mut body) = (None, None, String::new());
        let mut terminated = false;
        for line in lines.by_ref() {
            if line == end {
                terminated = true;
                break;
            }
            match line.split_once(':') {
                Some((name, value)) if body.is_empty() => {
                    let slot = match name.trim() {
                        "role" => &mut role,
                        "gun" => &mut gun,
                        other => return Err(invalid(format!("unknown PEM header {other:?}"))),
                    };
                    if slot.replace(value.trim().to_string()).is_some() {
                        return Err(invalid(format!("PEM header {:?} twice", name.trim())));
                    }
                }
                Some(_) => return Err(invalid("a PEM header after the key")),
                None => body.push_str(line),
            }
        }
        if !terminated {
            return Err(invalid(format!("no {end:?} line")));
        }
        if lines.any(|l| !l.is_empty()) {
            return Err(invalid("text after the key"));
        }
        let encrypted_der = B64
            .decode(body.as_bytes())
            .map_err(|_| invalid("the key is not base64"))?;
        Ok(NotaryKeyFile {
            role: role.ok_or_else(|| invalid("no \"role\" header"))?,
            gun: gun.filter(|g| !g.is_empty()),
            encrypted_der,
        })
    }
}

/// What an imported key is for: signing the root of one collection, until
/// it is rotated away.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportMark {
    pub role: Role,
    pub gun: Gun,
}

/// A backend that can take in a stock notary key file (the software
/// keystore). Imported keys stay marked as such for as long as they exist.
pub trait KeyImport: Send + Sync {
    /// Decrypts `file` with `passphrase` and stores the key marked with
    /// `mark`, if its notary key ID is `expected_key_id`. A key the backend
    /// holds already is returned as it is, not stored twice.
    fn import(
        &self,
        file: &NotaryKeyFile,
        passphrase: &SecretString,
        expected_key_id: &str,
        mark: &ImportMark,
    ) -> Result<BackendKey, ImportError>;

    /// The mark of an imported key; `None` for a key made in the backend.
    fn imported(&self, uri: &KeyUri) -> Option<ImportMark>;
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nrole: targets\ngun: example.com/app\n\nMIHuMEkG\n-----END ENCRYPTED PRIVATE KEY-----\n";

    #[test]
    fn headers_and_body_are_read() {
        let file = NotaryKeyFile::parse(FILE.as_bytes()).unwrap();
        assert_eq!(file.role, "targets");
        assert_eq!(file.gun.as_deref(), Some("example.com/app"));
        assert_eq!(file.encrypted_der, B64.decode("MIHuMEkG").unwrap());
    }

    #[test]
    fn malformed_files_are_invalid() {
        let cases = [
            ("", "does not start"),
            (
                "-----BEGIN PRIVATE KEY-----\nrole: root\n",
                "does not start",
            ),
            (
                &FILE.replace("-----END ENCRYPTED PRIVATE KEY-----\n", ""),
                "no \"-----END",
            ),
            (&FILE.replace("role: targets\n", ""), "no \"role\" header"),
            (
                &FILE.replace("gun:", "owner:"),
                "unknown PEM header \"owner\"",
            ),
            (
                &FILE.replace("gun: example.com/app", "role: root"),
                "\"role\" twice",
            ),
            (&FILE.replace("MIHuMEkG", "MIHu!EkG"), "not base64"),
            (&format!("{FILE}extra\n"), "text after the key"),
        ];
        for (text, want) in cases {
            match NotaryKeyFile::parse(text.as_bytes()) {
                Err(ImportError::Invalid(why)) => assert!(why.contains(want), "{why} / {want}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
        let big = vec![b'A'; MAX_KEY_FILE + 1];
        assert!(matches!(
            NotaryKeyFile::parse(&big),
            Err(ImportError::Invalid(_))
        ));
    }
}
