//! Publishing staged changes: update from the server, apply the changes,
//! re-sign the changed roles (and the snapshot when notary-keyd holds the
//! snapshot key) and upload them in one atomic POST. Staged changes are
//! removed only after the server accepted the update.

use super::apply::{apply, empty_targets, parent_of};
use super::expiry::{expires_in_years, SNAPSHOT_YEARS, TARGETS_YEARS};
use super::signer::KeydSigner;
use super::update::{cached_root, update, Missing};
use crate::errors::KeydError;
use crate::remote::Remote;
use crate::trust_dir::GunDir;
use anyhow::{anyhow, Result};
use notary_tuf::trust::root_signing_keys;
use notary_tuf::{FileMeta, MetadataType, Role, Root, SignedEnvelope, Snapshot, Targets};
use std::collections::BTreeMap;

/// The collection as publish starts from it.
struct Base {
    root: Root,
    root_bytes: Vec<u8>,
    /// Root must be uploaded (first publish, or a new root version).
    upload_root: bool,
    snapshot: Option<Snapshot>,
    roles: BTreeMap<String, Targets>,
    role_bytes: BTreeMap<String, Vec<u8>>,
}

/// Outcome of a publish, for the caller's message.
pub(crate) struct Published {
    pub changes: usize,
    pub roles: Vec<String>,
}

/// Publishes the staged changes, replacing root with `new_root` (signed,
/// bytes) when given.
pub(crate) async fn publish(
    remote: &mut Remote,
    dir: &GunDir,
    signer: &mut KeydSigner,
    pinning: &notary_tuf::trust::TrustPinning,
    new_root: Option<(Root, Vec<u8>)>,
) -> Result<Published> {
    let changelist = dir.changelist();
    let staged = changelist.list()?;
    let mut base = base(remote, dir, pinning).await?;
    if let Some((root, bytes)) = new_root {
        base.root = root;
        base.root_bytes = bytes;
        base.upload_root = true;
    }
    let changes: Vec<_> = staged
        .iter()
        .flat_map(|s| s.changes.iter().cloned())
        .collect();
    if changes.is_empty() && !base.upload_root {
        return Ok(Published {
            changes: 0,
            roles: Vec::new(),
        });
    }
    let mut dirty = apply(&mut base.roles, &changes)?;
    if base.upload_root && !base.role_bytes.contains_key("targets") {
        dirty.insert("targets".into());
    }
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    if base.upload_root {
        files.push(("root".into(), base.root_bytes.clone()));
    }
    // Parents before children: a child's keys come from its (new) parent.
    let mut order: Vec<String> = dirty.iter().cloned().collect();
    order.sort_by_key(|r| r.matches('/').count());
    let expires = expires_in_years(TARGETS_YEARS);
    for role in &order {
        let Some(targets) = base.roles.get_mut(role) else {
            continue;
        };
        targets.version += 1;
        targets.expires = expires.clone();
        let mut envelope = SignedEnvelope::from_metadata(&*targets)?;
        let (keys, keyids, threshold) = signing_keys(&base.root, &base.roles, role)?;
        signer
            .sign_role(&mut envelope, role, &keys, &keyids, threshold)
            .await
            .map_err(|e| explain_lost_daemon(e, &dir.gun))?;
        let bytes = envelope.to_bytes();
        base.role_bytes.insert(role.clone(), bytes.clone());
        files.push((role.clone(), bytes));
    }
    let snapshot = sign_snapshot(&base, signer)
        .await
        .map_err(|e| explain_lost_daemon(e, &dir.gun))?;
    if let Some(snapshot) = snapshot {
        files.push(("snapshot".into(), snapshot));
    }
    remote.publish(&files).await?;
    let staged_files: Vec<_> = staged.iter().map(|s| s.file.clone()).collect();
    changelist.remove(&staged_files)?;
    if base.upload_root {
        dir.write_cached(&Role::Root, &base.root_bytes)?;
    }
    Ok(Published {
        changes: changes.len(),
        roles: files.into_iter().map(|(r, _)| r).collect(),
    })
}

/// Every signature is made before the one upload, so a daemon lost while
/// signing means nothing reached the server and every staged change is
/// still there.
fn explain_lost_daemon(e: anyhow::Error, gun: &str) -> anyhow::Error {
    let lost = e
        .chain()
        .filter_map(|c| c.downcast_ref::<KeydError>())
        .any(KeydError::connection_lost);
    if !lost {
        return e;
    }
    e.context(format!(
        "notary-keyd went away while signing for {gun}: nothing was uploaded and the staged \
         changes are kept; run the command again once notary-keyd is back"
    ))
}

async fn base(
    remote: &mut Remote,
    dir: &GunDir,
    pinning: &notary_tuf::trust::TrustPinning,
) -> Result<Base> {
    match update(remote, dir, pinning, false).await {
        Ok(repo) => {
            let mut roles = BTreeMap::new();
            let mut role_bytes = BTreeMap::new();
            for (role, bytes) in repo.roles {
                role_bytes.insert(role.role.name().to_string(), bytes);
                roles.insert(role.role.name().to_string(), role.targets);
            }
            Ok(Base {
                root: repo.root.checked.metadata,
                root_bytes: repo.root.bytes,
                upload_root: false,
                snapshot: Some(repo.snapshot.checked.metadata),
                roles,
                role_bytes,
            })
        }
        Err(e) if e.downcast_ref::<Missing>().is_some() => {
            let root = cached_root(dir)?
                .ok_or_else(|| anyhow!("{e}; initialise it first: notaryctl init {}", dir.gun))?;
            Ok(Base {
                root: root.checked.metadata,
                root_bytes: root.bytes,
                upload_root: true,
                snapshot: None,
                roles: BTreeMap::from([("targets".to_string(), empty_targets())]),
                role_bytes: BTreeMap::new(),
            })
        }
        Err(e) => Err(e),
    }
}

type RoleKeys = (BTreeMap<String, notary_tuf::PublicKey>, Vec<String>, u32);

/// Keys, key IDs and threshold that sign `role`.
fn signing_keys(root: &Root, roles: &BTreeMap<String, Targets>, role: &str) -> Result<RoleKeys> {
    if role == "targets" {
        let r = root_signing_keys(root, "targets")?;
        return Ok((root.keys.clone(), r.keyids.clone(), r.threshold));
    }
    let parent = parent_of(role)
        .and_then(|p| roles.get(p))
        .ok_or_else(|| anyhow!("the parent of {role} is not in the collection"))?;
    let d = parent
        .delegations
        .roles
        .iter()
        .find(|r| r.name == role)
        .ok_or_else(|| anyhow!("{role} is not delegated by its parent"))?;
    Ok((
        parent.delegations.keys.clone(),
        d.keyids.clone(),
        d.threshold,
    ))
}

/// A new snapshot if notary-keyd holds a snapshot key of root; `None` when
/// the server manages the snapshot.
async fn sign_snapshot(base: &Base, signer: &mut KeydSigner) -> Result<Option<Vec<u8>>> {
    let role = root_signing_keys(&base.root, "snapshot")?;
    let mut held = false;
    for id in &role.keyids {
        if let Some(key) = base.root.keys.get(id) {
            held |= signer.find(key).await?.is_some();
        }
    }
    if !held {
        return Ok(None);
    }
    let mut meta = BTreeMap::from([("root".to_string(), FileMeta::for_bytes(&base.root_bytes))]);
    for role in reachable(&base.roles) {
        if let Some(bytes) = base.role_bytes.get(&role) {
            meta.insert(role, FileMeta::for_bytes(bytes));
        }
    }
    let snapshot = Snapshot {
        kind: MetadataType::Snapshot,
        expires: expires_in_years(SNAPSHOT_YEARS),
        meta,
        version: base.snapshot.as_ref().map_or(0, |s| s.version) + 1,
    };
    let mut envelope = SignedEnvelope::from_metadata(&snapshot)?;
    signer
        .sign_role(
            &mut envelope,
            "snapshot",
            &base.root.keys,
            &role.keyids,
            role.threshold,
        )
        .await?;
    Ok(Some(envelope.to_bytes()))
}

/// `targets` and every delegation still declared by a reachable parent.
fn reachable(roles: &BTreeMap<String, Targets>) -> Vec<String> {
    let mut out = vec!["targets".to_string()];
    let mut i = 0;
    while i < out.len() {
        if let Some(t) = roles.get(&out[i]) {
            for d in &t.delegations.roles {
                if roles.contains_key(&d.name) && !out.contains(&d.name) {
                    out.push(d.name.clone());
                }
            }
        }
        i += 1;
    }
    out
}
