//! Serde helpers for Go's `[]byte` fields, which JSON carries as standard,
//! padded base64.

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use serde::{de::Error as _, Deserialize, Deserializer, Serializer};
use std::collections::BTreeMap;

pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&B64.encode(bytes))
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(d)?;
    B64.decode(text.as_bytes())
        .map_err(|e| D::Error::custom(format!("invalid base64 {text:?}: {e}")))
}

/// For `map[string][]byte` such as file hashes.
pub mod map {
    use super::*;

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<String, Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_map(map.iter().map(|(k, v)| (k, B64.encode(v))))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Vec<u8>>, D::Error> {
        BTreeMap::<String, String>::deserialize(d)?
            .into_iter()
            .map(|(k, v)| {
                let bytes = B64
                    .decode(v.as_bytes())
                    .map_err(|e| D::Error::custom(format!("invalid base64 for {k:?}: {e}")))?;
                Ok((k, bytes))
            })
            .collect()
    }
}

/// Standard, padded base64, as Go writes `[]byte`.
pub fn encode(bytes: &[u8]) -> String {
    B64.encode(bytes)
}
