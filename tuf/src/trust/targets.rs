//! Delegations as a verifier sees them: which keys sign each delegated role,
//! and which target paths a role may vouch for (its own `paths` and every
//! ancestor's, all prefixes; `""` allows everything).

use crate::{PublicKey, Targets};
use std::collections::BTreeMap;

/// A role delegated by a verified parent.
#[derive(Clone, Debug)]
pub struct DelegatedRole {
    pub name: String,
    pub keys: BTreeMap<String, PublicKey>,
    pub keyids: Vec<String>,
    pub threshold: u32,
    /// Path prefixes of this role and of each ancestor delegation.
    pub restrictions: Vec<Vec<String>>,
}

/// A verified targets or delegation role with the paths it may sign.
#[derive(Clone, Debug)]
pub struct RoleTargets {
    pub role: String,
    pub targets: Targets,
    pub restrictions: Vec<Vec<String>>,
}

impl RoleTargets {
    /// The targets this role may vouch for, in name order.
    pub fn allowed(&self) -> impl Iterator<Item = (&String, &crate::FileMeta)> {
        self.targets
            .targets
            .iter()
            .filter(|(path, _)| path_allowed(&self.restrictions, path))
    }
}

/// The roles `parent` delegates to, in the order it lists them. Roles that
/// are not direct children of `parent_name` are skipped, as notary does.
pub fn delegated_roles(parent: &RoleTargets) -> Vec<DelegatedRole> {
    let delegations = &parent.targets.delegations;
    delegations
        .roles
        .iter()
        .filter(|role| is_child(&parent.role, &role.name))
        .map(|role| {
            let mut restrictions = parent.restrictions.clone();
            restrictions.push(role.paths.clone());
            DelegatedRole {
                name: role.name.clone(),
                keys: role
                    .keyids
                    .iter()
                    .filter_map(|id| Some((id.clone(), delegations.keys.get(id)?.clone())))
                    .collect(),
                keyids: role.keyids.clone(),
                threshold: role.threshold,
                restrictions,
            }
        })
        .collect()
}

fn is_child(parent: &str, child: &str) -> bool {
    child
        .strip_prefix(parent)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
}

/// Whether every level of `restrictions` has a prefix of `path`.
pub fn path_allowed(restrictions: &[Vec<String>], path: &str) -> bool {
    restrictions
        .iter()
        .all(|prefixes| prefixes.iter().any(|p| path.starts_with(p.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_prefixes_at_every_level() {
        let all = vec![String::new()];
        let rel = vec!["releases/".to_string()];
        assert!(path_allowed(&[], "anything"));
        assert!(path_allowed(std::slice::from_ref(&all), "anything"));
        assert!(path_allowed(&[all.clone(), rel.clone()], "releases/v1"));
        assert!(!path_allowed(&[rel.clone(), all], "other"));
        assert!(!path_allowed(&[vec![]], "x"));
    }

    #[test]
    fn only_direct_children() {
        assert!(is_child("targets", "targets/a"));
        assert!(is_child("targets/a", "targets/a/b"));
        assert!(!is_child("targets", "targets/a/b"));
        assert!(!is_child("targets", "targetsx/a"));
    }
}
