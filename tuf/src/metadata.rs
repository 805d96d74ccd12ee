//! Notary 0.7's pre-1.0 TUF metadata: roles, the signed envelope, the four
//! metadata types and threshold verification.

mod canonical_scan;
mod envelope;
mod file_meta;
mod gun;
mod payload;
mod role;
mod threshold;
mod time;
mod types;

pub use envelope::SignedEnvelope;
pub use file_meta::FileMeta;
pub use gun::{Gun, GunError};
pub use payload::{payload_type, MetadataType};
pub use role::{DelegationName, Role};
pub use threshold::{canonical_key_id, duplicate_key, valid_signers, verify_role, Signers};
pub use time::{format_expires, parse_expires};
pub use types::{
    DelegationRole, Delegations, Metadata, Root, RootRole, Snapshot, Targets, Timestamp,
};

use crate::CanonicalError;

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("metadata is not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    #[error("payload is not canonical JSON (notary signs the canonical encoding of \"signed\")")]
    NotCanonical,
    #[error("{0} is not a JSON object")]
    NotObject(&'static str),
    #[error("metadata has no {0:?} field")]
    MissingField(&'static str),
    #[error("\"_type\" is not a string")]
    TypeNotString,
    #[error("unknown metadata \"_type\" {0:?} (expected Root, Targets, Snapshot or Timestamp)")]
    UnknownType(String),
    #[error("metadata has \"_type\" {found} where {expected} was expected")]
    WrongType {
        expected: MetadataType,
        found: MetadataType,
    },
    #[error("metadata fields do not match the {kind} format: {source}")]
    Fields {
        kind: MetadataType,
        #[source]
        source: serde_json::Error,
    },
    #[error("\"signatures\" is malformed: {0}")]
    Signatures(#[source] serde_json::Error),
    #[error("role name {name:?} is invalid: {reason}")]
    BadRoleName { name: String, reason: &'static str },
    #[error("length is {got} bytes, metadata says {expected}")]
    LengthMismatch { expected: u64, got: u64 },
    #[error("{0} hash does not match")]
    HashMismatch(&'static str),
    #[error("file meta has neither a sha256 nor a sha512 hash")]
    NoKnownHash,
    #[error("time {0:?} is not RFC 3339 ({1})")]
    BadTime(String, &'static str),
}
