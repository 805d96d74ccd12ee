//! The `_type` of a `signed` payload, read strictly so a key for one role
//! cannot be made to sign another role's metadata.

use super::{MetadataError, Role};
use crate::canonical::to_canonical_vec;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

/// The four `_type` values of notary's metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetadataType {
    Root,
    Targets,
    Snapshot,
    Timestamp,
}

impl MetadataType {
    pub fn as_str(self) -> &'static str {
        match self {
            MetadataType::Root => "Root",
            MetadataType::Targets => "Targets",
            MetadataType::Snapshot => "Snapshot",
            MetadataType::Timestamp => "Timestamp",
        }
    }

    /// Whether a role may sign this type: delegations sign `Targets`.
    pub fn fits_role(&self, role: &Role) -> bool {
        matches!(
            (self, role),
            (MetadataType::Root, Role::Root)
                | (MetadataType::Targets, Role::Targets | Role::Delegation(_))
                | (MetadataType::Snapshot, Role::Snapshot)
                | (MetadataType::Timestamp, Role::Timestamp)
        )
    }
}

impl fmt::Display for MetadataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MetadataType {
    type Err = MetadataError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "Root" => MetadataType::Root,
            "Targets" => MetadataType::Targets,
            "Snapshot" => MetadataType::Snapshot,
            "Timestamp" => MetadataType::Timestamp,
            other => return Err(MetadataError::UnknownType(other.to_string())),
        })
    }
}

impl Serialize for MetadataType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MetadataType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Reads `_type` from the canonical bytes of a `signed` object.
///
/// Refuses anything that is not already canonical JSON, not an object, or
/// has no string `_type` among the four notary types.
pub fn payload_type(payload: &[u8]) -> Result<MetadataType, MetadataError> {
    // The one-pass scan answers for canonical payloads; the full parse runs
    // only to name what is wrong with the others.
    if let Some(kind) = super::canonical_scan::canonical_type(payload) {
        return kind.parse();
    }
    let value: Value = serde_json::from_slice(payload).map_err(MetadataError::Json)?;
    if to_canonical_vec(&value)? != payload {
        return Err(MetadataError::NotCanonical);
    }
    type_of(&value)
}

/// `_type` of an already parsed `signed` object.
pub(crate) fn type_of(signed: &Value) -> Result<MetadataType, MetadataError> {
    let object = signed
        .as_object()
        .ok_or(MetadataError::NotObject("payload"))?;
    match object.get("_type") {
        None => Err(MetadataError::MissingField("_type")),
        Some(Value::String(t)) => t.parse(),
        Some(_) => Err(MetadataError::TypeNotString),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_type_of_canonical_payloads() {
        assert_eq!(
            payload_type(br#"{"_type":"Root","version":1}"#).unwrap(),
            MetadataType::Root
        );
        assert_eq!(
            payload_type(br#"{"_type":"Timestamp"}"#).unwrap(),
            MetadataType::Timestamp
        );
    }

    #[test]
    fn refuses_everything_else() {
        let cases: [(&[u8], &str); 8] = [
            (b"not json", "not valid JSON"),
            (br#"{"version":1,"_type":"Root"}"#, "not canonical"),
            (br#"{"_type": "Root"}"#, "not canonical"),
            (br#"["Root"]"#, "not a JSON object"),
            (br#"{"version":1}"#, "no \"_type\""),
            (br#"{"_type":1}"#, "not a string"),
            (br#"{"_type":"root"}"#, "unknown metadata"),
            (br#"{"_type":"Root","x":1.5}"#, "non-integer"),
        ];
        for (payload, why) in cases {
            let err = payload_type(payload).unwrap_err().to_string();
            assert!(err.contains(why), "{err:?} should mention {why:?}");
        }
    }

    #[test]
    fn types_fit_their_roles() {
        let releases = Role::parse("targets/releases").unwrap();
        assert!(MetadataType::Targets.fits_role(&Role::Targets));
        assert!(MetadataType::Targets.fits_role(&releases));
        assert!(!MetadataType::Root.fits_role(&Role::Targets));
        assert!(!MetadataType::Root.fits_role(&releases));
        assert!(MetadataType::Root.fits_role(&Role::Root));
        assert!(MetadataType::Snapshot.fits_role(&Role::Snapshot));
        assert!(!MetadataType::Snapshot.fits_role(&Role::Timestamp));
        assert!(MetadataType::Timestamp.fits_role(&Role::Timestamp));
    }
}
