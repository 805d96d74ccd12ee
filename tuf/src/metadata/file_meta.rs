//! Length and hashes of a file, as in targets, snapshot and timestamp `meta`.

use super::MetadataError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read};

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

    /// sha256 + sha512 and length of everything `reader` yields, read a
    /// piece at a time: a file of any size costs the same memory.
    pub fn for_reader(mut reader: impl Read) -> std::io::Result<FileMeta> {
        let (mut sha256, mut sha512) = (Sha256::new(), Sha512::new());
        let mut buf = vec![0u8; 1 << 16];
        let mut length = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let piece = &buf[..n];
            sha256.update(piece);
            sha512.update(piece);
            length += n as u64;
        }
        Ok(FileMeta {
            hashes: BTreeMap::from([
                ("sha256".to_string(), sha256.finalize().to_vec()),
                ("sha512".to_string(), sha512.finalize().to_vec()),
            ]),
            length,
            custom: None,
        })
    }

    /// Checks length and every sha256/sha512 hash present; like notary, other
    /// algorithms are ignored but at least one known hash must be there.
    pub fn check(&self, bytes: &[u8]) -> Result<(), MetadataError> {
        self.check_against(&FileMeta::for_bytes(bytes))
    }

    /// [`check`](Self::check) for content already measured (e.g. with
    /// [`for_reader`](Self::for_reader)): `got` is its length and hashes.
    pub fn check_against(&self, got: &FileMeta) -> Result<(), MetadataError> {
        if got.length != self.length {
            return Err(MetadataError::LengthMismatch {
                expected: self.length,
                got: got.length,
            });
        }
        let mut checked = false;
        for name in ["sha256", "sha512"] {
            if let Some(want) = self.hashes.get(name) {
                if got.hashes.get(name) != Some(want) {
                    return Err(MetadataError::HashMismatch(name));
                }
                checked = true;
            }
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
    fn reading_in_pieces_gives_the_same_meta() {
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let streamed = FileMeta::for_reader(&bytes[..]).unwrap();
        assert_eq!(streamed, FileMeta::for_bytes(&bytes));
        FileMeta::for_bytes(&bytes)
            .check_against(&streamed)
            .unwrap();
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
