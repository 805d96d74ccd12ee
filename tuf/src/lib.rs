//! Notary 0.7's TUF vocabulary, shared by the daemon and the client.
//!
//! Everything here follows what the stock notary writes and accepts
//! (see `docs/notary-protocol.md` in the repository); it knows nothing about
//! where private keys live.

#![forbid(unsafe_code)]

pub mod b64;
pub mod canonical;
pub mod ceremony;
pub mod keys;
pub mod metadata;
mod oids;
pub mod pem;
pub mod rootcert;
pub mod signature;
pub mod trust;

pub use canonical::{canonicalize, to_canonical, to_canonical_vec, CanonicalError};
pub use keys::{Curve, KeyError, KeyType, PublicKey};
pub use metadata::{
    payload_type, verify_role, FileMeta, Gun, Metadata, MetadataError, MetadataType, Role, Root,
    SignedEnvelope, Snapshot, Targets, Timestamp,
};
pub use signature::{verify, Signature, SignatureMethod, VerifyError};
