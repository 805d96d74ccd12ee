//! Applying staged changes to targets and delegation metadata.

use crate::trust_dir::{Change, ChangeAction, ChangeKind, DelegationEdit};
use anyhow::{bail, Result};
use notary_tuf::metadata::{duplicate_key, DelegationRole, Delegations};
use notary_tuf::{MetadataType, PublicKey, Targets};
use std::collections::{BTreeMap, BTreeSet};

/// An empty role file, as a new collection or delegation starts.
pub(crate) fn empty_targets() -> Targets {
    Targets {
        kind: MetadataType::Targets,
        delegations: Default::default(),
        expires: String::new(),
        targets: BTreeMap::new(),
        version: 0,
    }
}

/// The role that delegates to `role` (`targets/a/b` → `targets/a`).
pub(crate) fn parent_of(role: &str) -> Option<&str> {
    role.rsplit_once('/').map(|(parent, _)| parent)
}

/// Applies `changes` in order; returns the roles whose metadata changed.
pub(crate) fn apply(
    roles: &mut BTreeMap<String, Targets>,
    changes: &[Change],
) -> Result<BTreeSet<String>> {
    let mut dirty = BTreeSet::new();
    for change in changes {
        match change.kind {
            ChangeKind::Target => {
                ensure_role(roles, &change.role)?;
                let Some(targets) = roles.get_mut(&change.role) else {
                    continue;
                };
                match (change.action, &change.meta) {
                    (ChangeAction::Create, Some(meta)) => {
                        targets.targets.insert(change.path.clone(), meta.clone());
                    }
                    (ChangeAction::Create, None) => {
                        bail!("staged target {} has no hashes", change.path)
                    }
                    (ChangeAction::Delete, _) => {
                        targets.targets.remove(&change.path);
                    }
                }
                dirty.insert(change.role.clone());
            }
            ChangeKind::Delegation if change.role.ends_with("/*") => {
                let remove = change
                    .delegation
                    .as_ref()
                    .map(|e| e.remove_keys.clone())
                    .unwrap_or_default();
                purge_keys(roles, &remove, &mut dirty);
            }
            ChangeKind::Delegation => {
                let Some(parent) = parent_of(&change.role) else {
                    bail!("{} is not a delegation role", change.role)
                };
                ensure_role(roles, parent)?;
                let Some(parent_targets) = roles.get_mut(parent) else {
                    continue;
                };
                let edit = change.delegation.clone().unwrap_or_default();
                edit_delegation(parent_targets, &change.role, change.action, &edit)?;
                if change.action == ChangeAction::Delete && is_whole_removal(&edit) {
                    roles.remove(&change.role);
                }
                dirty.insert(parent.to_string());
            }
            ChangeKind::Witness => {
                ensure_role(roles, &change.role)?;
                dirty.insert(change.role.clone());
            }
        }
    }
    Ok(dirty)
}

/// Creates the empty file of a delegation its parent declares.
fn ensure_role(roles: &mut BTreeMap<String, Targets>, role: &str) -> Result<()> {
    if roles.contains_key(role) {
        return Ok(());
    }
    let declared = parent_of(role)
        .and_then(|p| roles.get(p))
        .is_some_and(|p| p.delegations.roles.iter().any(|r| r.name == role));
    if !declared {
        bail!(
            "role {role} does not exist in this collection; create it with \
             `notaryctl delegation add GUN {role} …` first"
        );
    }
    roles.insert(role.to_string(), empty_targets());
    Ok(())
}

/// Removes keys from every delegation of every role (`delegation purge`).
fn purge_keys(
    roles: &mut BTreeMap<String, Targets>,
    remove: &[String],
    dirty: &mut BTreeSet<String>,
) {
    for (name, targets) in roles.iter_mut() {
        let delegations = &mut targets.delegations;
        let before = delegations.keys.len();
        for role in &mut delegations.roles {
            role.keyids.retain(|id| !remove.contains(id));
        }
        delegations.keys.retain(|id, _| !remove.contains(id));
        if delegations.keys.len() != before {
            dirty.insert(name.clone());
        }
    }
}

fn is_whole_removal(edit: &DelegationEdit) -> bool {
    edit.remove_keys.is_empty() && edit.remove_paths.is_empty() && !edit.clear_all_paths
}

/// One key under two IDs (a certificate and its bare key, or two
/// certificates) would count twice towards a threshold in notary, so a
/// role may list each key once.
fn refuse_one_key_twice(delegations: &Delegations, role: &str, add: &[PublicKey]) -> Result<()> {
    let mut keys = delegations.keys.clone();
    let mut ids: Vec<String> = delegations
        .roles
        .iter()
        .find(|r| r.name == role)
        .map(|r| r.keyids.clone())
        .unwrap_or_default();
    for key in add {
        keys.insert(key.key_id(), key.clone());
        ids.push(key.key_id());
    }
    if let Some((a, b)) = duplicate_key(&keys, &ids)? {
        bail!(
            "{role} would list keys {a} and {b}, which are the same key; a key may be \
             listed once per role (remove one with `notaryctl delegation remove`)"
        );
    }
    Ok(())
}

fn edit_delegation(
    parent: &mut Targets,
    role: &str,
    action: ChangeAction,
    edit: &DelegationEdit,
) -> Result<()> {
    let delegations = &mut parent.delegations;
    if action == ChangeAction::Delete && is_whole_removal(edit) {
        delegations.roles.retain(|r| r.name != role);
    } else {
        refuse_one_key_twice(delegations, role, &edit.add_keys)?;
        let index = match delegations.roles.iter().position(|r| r.name == role) {
            Some(i) => i,
            None => {
                delegations.roles.push(DelegationRole {
                    keyids: Vec::new(),
                    name: role.to_string(),
                    paths: Vec::new(),
                    path_hash_prefixes: None,
                    threshold: 1,
                });
                delegations.roles.len() - 1
            }
        };
        let r = &mut delegations.roles[index];
        for key in &edit.add_keys {
            let id = key.key_id();
            if !r.keyids.contains(&id) {
                r.keyids.push(id.clone());
            }
            delegations.keys.insert(id, key.clone());
        }

        r.keyids.retain(|id| !edit.remove_keys.contains(id));
        if edit.clear_all_paths {
            r.paths.clear();
        }
        r.paths.retain(|p| !edit.remove_paths.contains(p));
        for path in &edit.add_paths {
            if !r.paths.contains(path) {
                r.paths.push(path.clone());
            }
        }
    }
    // Keys no role uses any more are dropped, as notary does.
    let used: BTreeSet<String> = delegations
        .roles
        .iter()
        .flat_map(|r| r.keyids.iter().cloned())
        .collect();
    delegations.keys.retain(|id, _| used.contains(id));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use notary_tuf::FileMeta;

    fn change(kind: ChangeKind, action: ChangeAction, role: &str, path: &str) -> Change {
        Change {
            action,
            kind,
            role: role.into(),
            path: path.into(),
            meta: Some(FileMeta::for_bytes(path.as_bytes())),
            delegation: None,
        }
    }

    /// Staging `targets/x` with `edit`.
    fn add_delegation(edit: DelegationEdit) -> Change {
        let mut add = change(
            ChangeKind::Delegation,
            ChangeAction::Create,
            "targets/x",
            "",
        );
        add.delegation = Some(edit);
        add
    }

    #[test]
    fn targets_and_delegations() {
        let mut roles = BTreeMap::from([("targets".to_string(), empty_targets())]);
        let dirty = apply(
            &mut roles,
            &[
                change(ChangeKind::Target, ChangeAction::Create, "targets", "a"),
                change(ChangeKind::Target, ChangeAction::Create, "targets", "b"),
                change(ChangeKind::Target, ChangeAction::Delete, "targets", "a"),
            ],
        )
        .unwrap();
        assert_eq!(dirty, BTreeSet::from(["targets".to_string()]));
        assert_eq!(roles["targets"].targets.keys().collect::<Vec<_>>(), ["b"]);

        let err = apply(
            &mut roles,
            &[change(
                ChangeKind::Target,
                ChangeAction::Create,
                "targets/x",
                "a",
            )],
        )
        .unwrap_err();
        assert!(err.to_string().contains("delegation add"), "{err}");

        let add = add_delegation(DelegationEdit {
            add_paths: vec![String::new()],
            ..Default::default()
        });
        apply(
            &mut roles,
            &[
                add,
                change(ChangeKind::Target, ChangeAction::Create, "targets/x", "a"),
            ],
        )
        .unwrap();
        assert_eq!(roles["targets"].delegations.roles[0].paths, [""]);
        assert!(roles["targets/x"].targets.contains_key("a"));

        let remove = change(
            ChangeKind::Delegation,
            ChangeAction::Delete,
            "targets/x",
            "",
        );
        apply(&mut roles, &[remove]).unwrap();
        assert!(roles["targets"].delegations.roles.is_empty());
        assert!(!roles.contains_key("targets/x"));
    }

    /// The root certificate key of the notary 0.7 fixture collection.
    fn fixture_cert() -> notary_tuf::PublicKey {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tuf/tests/data/notary-0.7/local/root.json"
        );
        let root: notary_tuf::Root =
            notary_tuf::SignedEnvelope::parse(&std::fs::read(path).unwrap())
                .unwrap()
                .decode()
                .unwrap();
        root.keys[&root.roles["root"].keyids[0]].clone()
    }

    #[test]
    fn a_delegation_cannot_list_one_key_twice() {
        let cert = fixture_cert();
        let pem = String::from_utf8(cert.public_bytes().to_vec()).unwrap();
        let respelled = notary_tuf::PublicKey::from_certificate_pem(pem.trim_end()).unwrap();
        let bare = cert.bare_key().unwrap();
        for twin in [respelled, bare] {
            let mut roles = BTreeMap::from([("targets".to_string(), empty_targets())]);
            let add = add_delegation(DelegationEdit {
                add_keys: vec![cert.clone()],
                add_paths: vec![String::new()],
                ..Default::default()
            });
            let again = add_delegation(DelegationEdit {
                add_keys: vec![twin.clone()],
                ..Default::default()
            });
            apply(&mut roles, std::slice::from_ref(&add)).unwrap();
            let before = roles["targets"].clone();
            let err = apply(&mut roles, &[again]).unwrap_err();
            assert!(err.to_string().contains("are the same key"), "{err}");
            assert_eq!(roles["targets"].delegations.roles, before.delegations.roles);
        }
    }
}
