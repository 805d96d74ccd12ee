//! One step of the chain: bytes a parent role describes, signed by the keys
//! the parent names, not expired, not older than what we trusted before.

use super::{root_signing_keys, DelegatedRole, TrustError};
use crate::metadata::Metadata;
use crate::{verify_role, FileMeta, PublicKey, Root, SignedEnvelope};
use std::collections::BTreeMap;

/// What the verifier expects of one metadata file.
pub struct Expected<'a> {
    /// Role name, for messages and the `_type` check.
    pub role: &'a str,
    /// Keys the signatures may come from (a superset is fine).
    pub keys: &'a BTreeMap<String, PublicKey>,
    pub keyids: &'a [String],
    pub threshold: u32,
    /// Length and hashes from the parent (timestamp for snapshot, snapshot
    /// for targets and delegations); `None` for timestamp itself.
    pub meta: Option<(&'static str, &'a FileMeta)>,
    /// Version of the copy trusted so far, if any.
    pub trusted_version: Option<u64>,
    /// Unix seconds.
    pub now: i64,
}

impl<'a> Expected<'a> {
    /// A base role (`timestamp`, `snapshot`, `targets`) signed by the keys
    /// and threshold `root` gives it, checked at `now`; no parent entry and
    /// no rollback floor until [`listed_by`](Self::listed_by) and
    /// [`above`](Self::above) add them.
    pub fn from_root(root: &'a Root, role: &'a str, now: i64) -> Result<Expected<'a>, TrustError> {
        let keys = root_signing_keys(root, role)?;
        Ok(Expected {
            role,
            keys: &root.keys,
            keyids: &keys.keyids,
            threshold: keys.threshold,
            meta: None,
            trusted_version: None,
            now,
        })
    }

    /// A delegated role signed by the keys and threshold its parent gives
    /// it, checked at `now`.
    pub fn delegated(role: &'a DelegatedRole, now: i64) -> Expected<'a> {
        Expected {
            role: role.role.name(),
            keys: &role.keys,
            keyids: &role.keyids,
            threshold: role.threshold,
            meta: None,
            trusted_version: None,
            now,
        }
    }

    /// The file must have the length and hashes `parent` lists for it.
    pub fn listed_by(self, parent: &'static str, meta: &'a FileMeta) -> Expected<'a> {
        Expected {
            meta: Some((parent, meta)),
            ..self
        }
    }

    /// The file must not be older than `trusted_version`, when there is one.
    pub fn above(self, trusted_version: Option<u64>) -> Expected<'a> {
        Expected {
            trusted_version,
            ..self
        }
    }
}

/// Verified metadata with the envelope it came in.
#[derive(Clone, Debug)]
pub struct Checked<T> {
    pub metadata: T,
    pub envelope: SignedEnvelope,
}

/// Checks `bytes` against `expected`; returns the decoded metadata only if
/// every check passes.
pub fn verify_signed<T: Metadata>(
    bytes: &[u8],
    expected: &Expected<'_>,
) -> Result<Checked<T>, TrustError> {
    let role = expected.role.to_string();
    if let Some((parent, meta)) = expected.meta {
        meta.check(bytes).map_err(|source| TrustError::Mismatch {
            role: role.clone(),
            parent,
            source,
        })?;
    }
    let metadata_error = |source| TrustError::Metadata {
        role: role.clone(),
        source,
    };
    let envelope = SignedEnvelope::parse(bytes).map_err(metadata_error)?;
    let metadata: T = envelope.decode().map_err(metadata_error)?;
    verify_role(
        &envelope,
        expected.keys,
        expected.keyids,
        expected.threshold,
    )
    .map_err(|source| TrustError::Signatures {
        role: role.clone(),
        source,
    })?;
    check_fresh(&role, &metadata, expected.trusted_version, expected.now)?;
    Ok(Checked { metadata, envelope })
}

/// Expiry and rollback checks shared by every role.
pub fn check_fresh<T: Metadata>(
    role: &str,
    metadata: &T,
    trusted_version: Option<u64>,
    now: i64,
) -> Result<(), TrustError> {
    let expires = metadata
        .expires_unix()
        .map_err(|source| TrustError::Metadata {
            role: role.to_string(),
            source,
        })?;
    if expires <= now {
        return Err(TrustError::Expired {
            role: role.to_string(),
            expires: metadata.expires().to_string(),
        });
    }
    if let Some(trusted) = trusted_version {
        if metadata.version() < trusted {
            return Err(TrustError::Rollback {
                role: role.to_string(),
                trusted,
                got: metadata.version(),
            });
        }
    }
    Ok(())
}
