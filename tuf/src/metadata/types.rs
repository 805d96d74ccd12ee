//! Typed `signed` objects of the four metadata types, field for field as
//! notary 0.7 writes them (pre-1.0 TUF: `"_type":"Root"`, no meta versions).

use super::payload::{type_of, MetadataType};
use super::time::parse_expires;
use super::{FileMeta, MetadataError};
use crate::PublicKey;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Common behaviour of the four `signed` types.
pub trait Metadata: Serialize + DeserializeOwned {
    const TYPE: MetadataType;

    fn expires(&self) -> &str;
    fn version(&self) -> u64;

    /// Decodes a `signed` object, refusing one of another `_type`.
    fn from_signed(signed: &Value) -> Result<Self, MetadataError> {
        let found = type_of(signed)?;
        if found != Self::TYPE {
            return Err(MetadataError::WrongType {
                expected: Self::TYPE,
                found,
            });
        }
        Self::deserialize(signed).map_err(|source| MetadataError::Fields {
            kind: Self::TYPE,
            source,
        })
    }

    /// The canonical bytes to sign.
    fn canonical_bytes(&self) -> Result<Vec<u8>, MetadataError> {
        Ok(crate::to_canonical(self)?)
    }

    /// `expires` as Unix seconds.
    fn expires_unix(&self) -> Result<i64, MetadataError> {
        parse_expires(self.expires())
    }
}

/// Key IDs and threshold of one role (notary's `RootRole`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootRole {
    pub keyids: Vec<String>,
    pub threshold: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Root {
    #[serde(rename = "_type")]
    pub kind: MetadataType,
    pub consistent_snapshot: bool,
    pub expires: String,
    pub keys: BTreeMap<String, PublicKey>,
    /// `root`, `targets`, `snapshot`, `timestamp`.
    pub roles: BTreeMap<String, RootRole>,
    pub version: u64,
}

impl Root {
    pub fn role(&self, name: &str) -> Option<&RootRole> {
        self.roles.get(name)
    }
}

/// One delegation in `delegations.roles`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegationRole {
    pub keyids: Vec<String>,
    pub name: String,
    /// Path prefixes; `""` means every path. Go omits an empty list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// The TUF alternative to `paths`; notary 0.7 itself never writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hash_prefixes: Option<Vec<String>>,
    pub threshold: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegations {
    pub keys: BTreeMap<String, PublicKey>,
    pub roles: Vec<DelegationRole>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    #[serde(rename = "_type")]
    pub kind: MetadataType,
    /// Always written, even when empty (`{"keys":{},"roles":[]}`).
    #[serde(default)]
    pub delegations: Delegations,
    pub expires: String,
    pub targets: BTreeMap<String, FileMeta>,
    pub version: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    #[serde(rename = "_type")]
    pub kind: MetadataType,
    pub expires: String,
    /// Role name (`root`, `targets`, `targets/…`) to the stored file's meta.
    pub meta: BTreeMap<String, FileMeta>,
    pub version: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timestamp {
    #[serde(rename = "_type")]
    pub kind: MetadataType,
    pub expires: String,
    /// Only `snapshot`.
    pub meta: BTreeMap<String, FileMeta>,
    pub version: u64,
}

impl Timestamp {
    pub fn snapshot_meta(&self) -> Option<&FileMeta> {
        self.meta.get("snapshot")
    }
}

macro_rules! impl_metadata {
    ($ty:ty, $kind:expr) => {
        impl Metadata for $ty {
            const TYPE: MetadataType = $kind;
            fn expires(&self) -> &str {
                &self.expires
            }
            fn version(&self) -> u64 {
                self.version
            }
        }
    };
}

impl_metadata!(Root, MetadataType::Root);
impl_metadata!(Targets, MetadataType::Targets);
impl_metadata!(Snapshot, MetadataType::Snapshot);
impl_metadata!(Timestamp, MetadataType::Timestamp);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typed_round_trip_and_type_check() {
        let signed = json!({"_type":"Timestamp","expires":"2026-12-09T12:44:01.243577048Z",
            "meta":{"snapshot":{"hashes":{"sha256":"AQ=="},"length":3}},"version":5});
        let ts = Timestamp::from_signed(&signed).unwrap();
        assert_eq!(ts.snapshot_meta().unwrap().length, 3);
        assert_eq!(ts.version(), 5);
        assert_eq!(
            ts.canonical_bytes().unwrap(),
            crate::to_canonical_vec(&signed).unwrap()
        );
        assert!(ts.expires_unix().unwrap() > 0);
        let err = Snapshot::from_signed(&signed).unwrap_err();
        assert_eq!(
            err.to_string(),
            "metadata has \"_type\" Timestamp where Snapshot was expected"
        );
        let broken = json!({"_type":"Timestamp","expires":"x","meta":{},"version":-1});
        assert!(matches!(
            Timestamp::from_signed(&broken),
            Err(MetadataError::Fields { .. })
        ));
    }

    #[test]
    fn delegation_paths_are_omitted_when_empty() {
        let role = DelegationRole {
            keyids: vec!["a".into()],
            name: "targets/x".into(),
            paths: vec![],
            path_hash_prefixes: None,
            threshold: 1,
        };
        assert_eq!(
            crate::to_canonical(&role).unwrap(),
            br#"{"keyids":["a"],"name":"targets/x","threshold":1}"#
        );
    }
}
