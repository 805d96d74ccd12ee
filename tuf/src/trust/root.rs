//! Accepting a root, as notary's trustpinning.ValidateRoot does: its root
//! keys must be valid certificates for the GUN (one leaf, first, then CA
//! certificates); a later root must be signed by the previous root's valid
//! certificates and threshold; every root must be signed by its own.
//!
//! Trust pinning is checked on every root, rotations included: notary's
//! ValidateRoot does so too, but notary's client hands it an empty pinning
//! once a root is cached, so stock notary follows a rotation to certificates
//! the pinning does not allow. A user who pins a CA or certificates expects
//! the pins to hold for the life of the collection, and an operator who
//! tightens them expects clients that already trust it to obey, so here a
//! rotation away from the pins is refused. Only TOFU and `disable_tofu` are
//! about the first root.

use super::cert_chain::key_chain;
use super::chain::{check_fresh, Checked};
use super::pinning::{chains_to_ca, Pin, TrustPinning};
use super::TrustError;
use crate::metadata::RootRole;
use crate::rootcert::{check_root_cert, check_trusted_root_cert};
use crate::{verify_role, PublicKey, Root, SignedEnvelope};
use std::collections::BTreeMap;

/// Validates `bytes` as the root of `gun`. `prev` is the root trusted so far.
pub fn validate_root(
    prev: Option<&Root>,
    bytes: &[u8],
    gun: &str,
    pinning: &TrustPinning,
    now: i64,
) -> Result<Checked<Root>, TrustError> {
    let metadata_error = |source| TrustError::Metadata {
        role: "root".into(),
        source,
    };
    let envelope = SignedEnvelope::parse(bytes).map_err(metadata_error)?;
    let root: Root = envelope.decode().map_err(metadata_error)?;
    let role = root_role(&root, "root")?;
    let certs = valid_root_certs(&root, role, gun, Some(now))?;
    if let Some(prev) = prev {
        let prev_role = root_role(prev, "root")?;
        let rotation_error = |source| TrustError::RotationNotSigned {
            version: root.version,
            source,
        };
        // The previous root's certificates for this GUN, expired or not.
        let prev_certs = valid_root_certs(prev, prev_role, gun, None)?;
        let prev_ids: Vec<String> = prev_certs.keys().cloned().collect();
        verify_role(&envelope, &prev_certs, &prev_ids, prev_role.threshold)
            .map_err(rotation_error)?;
    }
    let certs = pinned(certs, gun, pinning, prev.is_some(), now)?;
    let ids: Vec<String> = certs.keys().cloned().collect();
    verify_role(&envelope, &certs, &ids, role.threshold).map_err(|source| {
        TrustError::Signatures {
            role: "root".into(),
            source,
        }
    })?;
    check_fresh("root", &root, prev.map(|p| p.version), now)?;
    Ok(Checked {
        metadata: root,
        envelope,
    })
}

/// The key IDs and threshold `root` gives `role`.
pub fn root_signing_keys<'a>(root: &'a Root, role: &str) -> Result<&'a RootRole, TrustError> {
    root_role(root, role)
}

fn root_role<'a>(root: &'a Root, role: &str) -> Result<&'a RootRole, TrustError> {
    root.role(role)
        .ok_or_else(|| TrustError::RoleMissing(role.to_string()))
}

/// Root-role keys that are certificates notary accepts for `gun`: at `now`,
/// or with `None` whatever their validity window (a trusted root's).
fn valid_root_certs(
    root: &Root,
    role: &RootRole,
    gun: &str,
    now: Option<i64>,
) -> Result<BTreeMap<String, PublicKey>, TrustError> {
    let mut valid = BTreeMap::new();
    let mut problems = Vec::new();
    for id in &role.keyids {
        let Some(key) = root.keys.get(id) else {
            problems.push(format!("key {id} is listed but not defined"));
            continue;
        };
        if !key.keytype().is_x509() {
            problems.push(format!(
                "key {id} is a bare {} key, not a certificate",
                key.keytype()
            ));
            continue;
        }
        if let Err(e) = key_chain(key.public_bytes()) {
            problems.push(format!("key {id}: {e}"));
            continue;
        }
        let pem = String::from_utf8_lossy(key.public_bytes());
        let checked = match now {
            Some(now) => check_root_cert(&pem, gun, now),
            None => check_trusted_root_cert(&pem, gun),
        };
        match checked {
            Ok(()) => {
                valid.insert(id.clone(), key.clone());
            }
            Err(e) => problems.push(format!("key {id}: {e}")),
        }
    }
    if valid.is_empty() {
        return Err(TrustError::NoValidRootCert {
            gun: gun.to_string(),
            problems: problems.join("; "),
        });
    }
    Ok(valid)
}

/// The certificates a root may be trusted by under the pinning; TOFU and
/// `disable_tofu` only matter without a previously trusted root.
fn pinned(
    certs: BTreeMap<String, PublicKey>,
    gun: &str,
    pinning: &TrustPinning,
    has_prev: bool,
    now: i64,
) -> Result<BTreeMap<String, PublicKey>, TrustError> {
    let mismatch = |why: String| TrustError::PinMismatch {
        gun: gun.to_string(),
        why,
    };
    let kept: BTreeMap<String, PublicKey> = match pinning.pin_for(gun) {
        Pin::Tofu => return Ok(certs),
        Pin::Refuse if has_prev => return Ok(certs),
        Pin::Refuse => {
            return Err(TrustError::TofuDisabled {
                gun: gun.to_string(),
            })
        }
        Pin::Certs(ids) => {
            let kept: BTreeMap<_, _> = certs
                .into_iter()
                .filter(|(id, _)| ids.contains(id))
                .collect();
            if kept.is_empty() {
                return Err(mismatch(format!(
                    "none of its root certificates has a pinned ID ({})",
                    ids.join(", ")
                )));
            }
            kept
        }
        Pin::Ca { prefix, bundle_pem } => {
            let mut kept = BTreeMap::new();
            for (id, key) in certs {
                if chains_to_ca(key.public_bytes(), prefix, bundle_pem, now)? {
                    kept.insert(id, key);
                }
            }
            if kept.is_empty() {
                return Err(mismatch(format!(
                    "no root certificate chains to the CA pinned for {prefix:?}"
                )));
            }
            kept
        }
    };
    Ok(kept)
}
