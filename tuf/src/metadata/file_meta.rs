//! Length and hashes of a file, as in targets, snapshot and timestamp `meta`.

use super::MetadataError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    /// Algorithm name (`sha256`, `sha512`) to digest.
    #[serde(with = "crate::b64::map")]
    pub hashes: BTreeMap<String, Vec<u8>>,
    pub length: u64,
    /// Opaque per-target data; notary omits it when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Value>,
}

impl FileMeta {
    /// sha256 + sha512 and length, as notary records every file.
    pub fn for_bytes(bytes: &[u8]) -> FileMeta {
        let hashes = BTreeMap::from([
            ("sha256".to_string(), Sha256::digest(bytes).to_vec()),
            ("sha512".to_string(), Sha512::digest(bytes).to_vec()),
        ]);
        FileMeta {
            hashes,
            length: bytes.len() as u64,
            custom: None,
        }
    }

    /// Checks length and every sha256/sha512 hash present; like notary, other
    /// algorithms are ignored but at least one known hash must be there.
    pub fn check(&self, bytes: &[u8]) -> Result<(), MetadataError> {
        let got = bytes.len() as u64;
        if got != self.length {
            return Err(MetadataError::LengthMismatch {
                expected: self.length,
                got,
            });
        }
        let mut checked = false;
        if let Some(want) = self.hashes.get("sha256") {
            if Sha256::digest(bytes)[..] != want[..] {
                return Err(MetadataError::HashMismatch("sha256"));
            }
            checked = true;
        }
        if let Some(want) = self.hashes.get("sha512") {
            if Sha512::digest(bytes)[..] != want[..] {
                return Err(MetadataError::HashMismatch("sha512"));
            }
            checked = true;
        }
        if !checked {
            return Err(MetadataError::NoKnownHash);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computes_and_checks() {
        let meta = FileMeta::for_bytes(b"hello");
        assert_eq!(meta.length, 5);
        meta.check(b"hello").unwrap();
        assert!(matches!(
            meta.check(b"hellO"),
            Err(MetadataError::HashMismatch("sha256"))
        ));
        assert!(matches!(
            meta.check(b"hell"),
            Err(MetadataError::LengthMismatch {
                expected: 5,
                got: 4
            })
        ));
        let mut only512 = meta.clone();
        only512.hashes.remove("sha256");
        only512.check(b"hello").unwrap();
        only512.hashes.get_mut("sha512").unwrap()[0] ^= 1;
        assert!(matches!(
            only512.check(b"hello"),
            Err(MetadataError::HashMismatch("sha512"))
        ));
        let none = FileMeta {
            hashes: BTreeMap::from([("md5".to_string(), vec![0])]),
            ..meta
        };
        assert!(matches!(
            none.check(b"hello"),
            Err(MetadataError::NoKnownHash)
        ));
    }

    #[test]
    fn json_shape() {
        let meta = FileMeta::for_bytes(b"");
        let json = String::from_utf8(crate::to_canonical(&meta).unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"hashes":{"sha256":"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=","sha512":"z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=="},"length":0}"#
        );
    }
}
