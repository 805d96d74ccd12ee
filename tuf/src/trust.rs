//! What a client may believe: the root it trusts (TOFU or pinned, then
//! rotations signed by the previous root) and the rest of a collection
//! verified from that root. Nothing here fetches; callers hand in bytes.

mod cert_chain;
mod chain;
mod pinning;
mod root;
mod targets;

pub use chain::{check_fresh, verify_signed, Checked, Expected};
pub(crate) use pinning::chains_to_ca;
pub use pinning::{Pin, TrustPinning};
pub use root::{root_signing_keys, validate_root};
pub use targets::{delegated_roles, path_allowed, DelegatedRole, RoleTargets};

use crate::{MetadataError, VerifyError};

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("{role}: {source}")]
    Metadata {
        role: String,
        #[source]
        source: MetadataError,
    },
    #[error("{role} is not validly signed: {source}")]
    Signatures {
        role: String,
        #[source]
        source: VerifyError,
    },
    #[error("root does not define the {0} role")]
    RoleMissing(String),
    #[error("{role} expired at {expires}")]
    Expired { role: String, expires: String },
    #[error("{role} version {got} is older than the trusted version {trusted} (rollback refused)")]
    Rollback {
        role: String,
        trusted: u64,
        got: u64,
    },
    #[error("{role} does not match what {parent} says about it: {source}")]
    Mismatch {
        role: String,
        parent: &'static str,
        #[source]
        source: MetadataError,
    },
    #[error("{parent} lists no {role}")]
    NotListed { role: String, parent: &'static str },
    #[error("root of {gun} has no valid root certificate: {problems}")]
    NoValidRootCert { gun: String, problems: String },
    #[error(
        "root v{version} is not signed by the previously trusted root's keys, so the rotation \
         is refused: {source}"
    )]
    RotationNotSigned {
        version: u64,
        #[source]
        source: VerifyError,
    },
    #[error("root of {gun} does not match the trust pinning ({why})")]
    PinMismatch { gun: String, why: String },
    #[error(
        "no trusted root for {gun} and trust on first use is disabled (trust_pinning.disable_tofu); \
         pin its certificate or CA in the client config"
    )]
    TofuDisabled { gun: String },
    #[error("{parent} lists an invalid delegation {name:?}: {why}; the whole file is refused")]
    BadDelegation {
        parent: String,
        name: String,
        why: String,
    },
    #[error("pinned CA bundle for {prefix:?}: {why}")]
    BadCaBundle { prefix: String, why: String },
}
