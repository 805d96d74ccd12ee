//! Rollback floors: the version of a role's cached copy, below which the
//! server may not go. A copy sets a floor only if it verifies under the keys
//! trusted for the role now (expiry aside). A copy that does not read, or
//! carries a signature by one of those keys that does not verify, is damaged:
//! that is an error, never a silent loss of the floor. A copy whose
//! signatures all verify but no longer meet the threshold was signed by keys
//! the role has since dropped: its floor is reset, as TUF (5.3.11) asks so a
//! fast-forward attack with a leaked key ends when the key is rotated.

use crate::trust_dir::GunDir;
use notary_tuf::metadata::{valid_signers, Metadata, RootRole};
use notary_tuf::{PublicKey, Role, Root, SignedEnvelope};
use std::collections::BTreeMap;

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Floor {
    /// No cached copy.
    None,
    Version(u64),
    /// The cached copy is signed by keys the role no longer has.
    KeysChanged,
}

impl Floor {
    pub(super) fn version(&self) -> Option<u64> {
        match self {
            Floor::Version(v) => Some(*v),
            Floor::None | Floor::KeysChanged => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "the cached {role} of {gun} is damaged ({why}), so its rollback protection cannot be \
     checked; refusing to update (`notaryctl delete {gun}` forgets the local trust data and \
     the next use trusts the server's root again)"
)]
pub(super) struct DamagedCache {
    pub gun: String,
    pub role: String,
    pub why: String,
}

/// The keys a role is trusted with now.
pub(super) struct RoleKeys<'a> {
    pub keys: &'a BTreeMap<String, PublicKey>,
    pub keyids: &'a [String],
    pub threshold: u32,
}

impl<'a> RoleKeys<'a> {
    /// A top-level role's keys in `root`.
    pub(super) fn of(root: &'a Root, role: &'a RootRole) -> RoleKeys<'a> {
        RoleKeys {
            keys: &root.keys,
            keyids: &role.keyids,
            threshold: role.threshold,
        }
    }
}

/// The floor the cached copy of `role` sets under `trusted`.
pub(super) fn floor<T: Metadata>(
    dir: &GunDir,
    role: &Role,
    trusted: &RoleKeys<'_>,
) -> anyhow::Result<Floor> {
    let Some(bytes) = dir.read_cached(role)? else {
        return Ok(Floor::None);
    };
    let damaged = |why: String| DamagedCache {
        gun: dir.gun.clone(),
        role: role.to_string(),
        why,
    };
    let envelope = SignedEnvelope::parse(&bytes).map_err(|e| damaged(e.to_string()))?;
    let metadata: T = envelope.decode().map_err(|e| damaged(e.to_string()))?;
    // A signature whose key ID does not match its key is damage too.
    let signers = valid_signers(&envelope, trusted.keys, trusted.keyids)
        .map_err(|e| damaged(e.to_string()))?;
    if let Some(first) = signers.rejected.first() {
        return Err(damaged(first.clone()).into());
    }
    if signers.keys.len() >= trusted.threshold as usize && trusted.threshold >= 1 {
        Ok(Floor::Version(metadata.version()))
    } else {
        Ok(Floor::KeysChanged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust_dir::TrustDir;
    use notary_tuf::{KeyType, MetadataType, Signature, SignatureMethod, Timestamp};
    use p256::ecdsa::signature::Signer;
    use p256::pkcs8::EncodePublicKey;

    fn key(seed: u8) -> (p256::ecdsa::SigningKey, PublicKey) {
        let sk = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap();
        let spki = sk.verifying_key().to_public_key_der().unwrap().to_vec();
        (sk, PublicKey::new(KeyType::Ecdsa, spki))
    }

    fn timestamp(version: u64, signers: &[&(p256::ecdsa::SigningKey, PublicKey)]) -> Vec<u8> {
        let ts = Timestamp {
            kind: MetadataType::Timestamp,
            expires: "2001-01-01T00:00:00Z".into(),
            meta: BTreeMap::new(),
            version,
        };
        let mut env = SignedEnvelope::from_metadata(&ts).unwrap();
        for (sk, pk) in signers {
            let sig: p256::ecdsa::Signature = sk.sign(&env.signed_bytes);
            env.signatures.push(Signature {
                keyid: pk.key_id(),
                method: SignatureMethod::Ecdsa,
                sig: sig.to_bytes().to_vec(),
            });
        }
        env.to_bytes()
    }

    #[test]
    fn floors_come_from_copies_that_verify_under_the_trusted_keys() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = TrustDir::new(tmp.path().into()).gun("a.com/b").unwrap();
        let (a, b) = (key(1), key(2));
        let keys = BTreeMap::from([(a.1.key_id(), a.1.clone()), (b.1.key_id(), b.1.clone())]);
        let role = Role::Timestamp;
        let check = |signers: &[&PublicKey], threshold| {
            let keyids: Vec<String> = signers.iter().map(|k| k.key_id()).collect();
            let trusted = RoleKeys {
                keys: &keys,
                keyids: &keyids,
                threshold,
            };
            floor::<Timestamp>(&dir, &role, &trusted)
        };
        assert_eq!(check(&[&a.1], 1).unwrap(), Floor::None);

        // Expired, but signed by the trusted key: its version is the floor.
        dir.write_cached(&role, &timestamp(1_000_000, &[&a]))
            .unwrap();
        assert_eq!(check(&[&a.1], 1).unwrap(), Floor::Version(1_000_000));
        // The role now has other keys, or needs more of them: reset.
        assert_eq!(check(&[&b.1], 1).unwrap(), Floor::KeysChanged);
        assert_eq!(check(&[&a.1, &b.1], 2).unwrap(), Floor::KeysChanged);

        // Damage is an error, whatever the keys.
        let mut flipped = timestamp(7, &[&a]);
        let at = flipped.len() - 10;
        flipped[at] = if flipped[at] == b'A' { b'B' } else { b'A' };
        let bumped = String::from_utf8(timestamp(7, &[&a]))
            .unwrap()
            .replace("\"version\":7", "\"version\":8");
        for bad in [
            b"{\"signed\":".to_vec(),
            b"[]".to_vec(),
            flipped,
            bumped.into_bytes(),
        ] {
            dir.write_cached(&role, &bad).unwrap();
            let err = check(&[&a.1], 1).unwrap_err();
            assert!(err.to_string().contains("is damaged"), "{err}");
        }
    }
}
