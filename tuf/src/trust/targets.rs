//! Delegations as a verifier sees them: which keys sign each delegated role,
//! and which target paths a role may vouch for (its own `paths` and every
//! ancestor's, all prefixes; `""` allows everything).
//!
//! Delegation names come from metadata the server hands us and later become
//! file names in the trust dir, so a file that lists one notary would refuse
//! is refused whole before anything uses its names.

use super::TrustError;
use crate::{PublicKey, Role, Targets};
use std::collections::{BTreeMap, BTreeSet};

/// A role delegated by a verified parent.
#[derive(Clone, Debug)]
pub struct DelegatedRole {
    pub role: Role,
    pub keys: BTreeMap<String, PublicKey>,
    pub keyids: Vec<String>,
    pub threshold: u32,
    /// Path prefixes of this role and of each ancestor delegation.
    pub restrictions: Vec<Vec<String>>,
}

/// A verified targets or delegation role with the paths it may sign.
#[derive(Clone, Debug)]
pub struct RoleTargets {
    pub role: Role,
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

/// The roles `parent` delegates to, in the order it lists them.
///
/// As notary's `isValidTargetsStructure`, the whole file is refused when any
/// entry is not a valid delegation name (`data.IsDelegation`), has a
/// threshold below 1 or names a key the file does not define; unlike notary,
/// an entry that is not a direct child of `parent` (or a name listed twice)
/// refuses the file too, instead of being skipped.
pub fn delegated_roles(parent: &RoleTargets) -> Result<Vec<DelegatedRole>, TrustError> {
    let delegations = &parent.targets.delegations;
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(delegations.roles.len());
    for entry in &delegations.roles {
        let bad = |why: String| TrustError::BadDelegation {
            parent: parent.role.to_string(),
            name: entry.name.clone(),
            why,
        };
        let role = Role::parse(&entry.name).map_err(|e| bad(e.to_string()))?;
        let is_child =
            matches!(&role, Role::Delegation(name) if name.parent() == parent.role.name());
        if !is_child {
            return Err(bad(format!("it is not a direct child of {}", parent.role)));
        }
        if !seen.insert(entry.name.as_str()) {
            return Err(bad("it is listed twice".into()));
        }
        if entry.threshold < 1 {
            return Err(bad(format!("threshold {} is below 1", entry.threshold)));
        }
        let mut keys = BTreeMap::new();
        for id in &entry.keyids {
            let key = delegations
                .keys
                .get(id)
                .ok_or_else(|| bad(format!("it lists key {id}, which the file does not define")))?;
            keys.insert(id.clone(), key.clone());
        }
        let mut restrictions = parent.restrictions.clone();
        restrictions.push(entry.paths.clone());
        out.push(DelegatedRole {
            role,
            keys,
            keyids: entry.keyids.clone(),
            threshold: entry.threshold,
            restrictions,
        });
    }
    Ok(out)
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
    use crate::metadata::{DelegationRole, Delegations};
    use crate::{KeyType, MetadataType};

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

    fn key() -> PublicKey {
        PublicKey::new(KeyType::Ed25519, vec![7; 32])
    }

    fn parent(role: &str, names: &[&str]) -> RoleTargets {
        let key = key();
        RoleTargets {
            role: Role::parse(role).unwrap(),
            targets: Targets {
                kind: MetadataType::Targets,
                delegations: Delegations {
                    keys: BTreeMap::from([(key.key_id(), key.clone())]),
                    roles: names
                        .iter()
                        .map(|name| DelegationRole {
                            keyids: vec![key.key_id()],
                            name: name.to_string(),
                            paths: vec![String::new()],
                            path_hash_prefixes: None,
                            threshold: 1,
                        })
                        .collect(),
                },
                expires: String::new(),
                targets: BTreeMap::new(),
                version: 1,
            },
            restrictions: Vec::new(),
        }
    }

    #[test]
    fn direct_children_with_valid_names() {
        let roles = delegated_roles(&parent("targets", &["targets/a", "targets/b-2"])).unwrap();
        let names: Vec<_> = roles.iter().map(|r| r.role.name()).collect();
        assert_eq!(names, ["targets/a", "targets/b-2"]);
        assert_eq!(roles[0].restrictions, [vec![String::new()]]);
        let nested = delegated_roles(&parent("targets/a", &["targets/a/b"])).unwrap();
        assert_eq!(nested[0].role.name(), "targets/a/b");
    }

    #[test]
    fn a_file_listing_a_bad_name_is_refused_whole() {
        for (role, bad) in [
            ("targets", "targets/.."),
            ("targets", "targets/../../../config"),
            ("targets", "targets/a/../../x"),
            ("targets", "targets//a"),
            ("targets", "targets/a/"),
            ("targets", "targets/A"),
            ("targets", "targets/a.json"),
            ("targets", "targets/*"),
            ("targets", "root"),
            ("targets", "targets"),
            ("targets", "releases"),
            ("targets", "targets/a/b"),
            ("targets", "targetsx/a"),
            ("targets/a", "targets/b"),
            ("targets/a", "targets/a"),
        ] {
            let ok = format!("{role}/ok");
            let err = delegated_roles(&parent(role, &[&ok, bad])).unwrap_err();
            assert!(
                matches!(&err, TrustError::BadDelegation { name, .. } if name == bad),
                "{role} listing {bad}: {err}"
            );
            assert!(err.to_string().contains("invalid delegation"), "{err}");
        }
        let long = format!("targets/{}", "a".repeat(248));
        assert!(delegated_roles(&parent("targets", &[&long])).is_err());
    }

    #[test]
    fn duplicates_unknown_keys_and_zero_thresholds_are_refused() {
        let err = delegated_roles(&parent("targets", &["targets/a", "targets/a"])).unwrap_err();
        assert!(err.to_string().contains("listed twice"), "{err}");
        let mut p = parent("targets", &["targets/a"]);
        p.targets.delegations.keys.clear();
        let err = delegated_roles(&p).unwrap_err();
        assert!(err.to_string().contains("does not define"), "{err}");
        let mut p = parent("targets", &["targets/a"]);
        p.targets.delegations.roles[0].threshold = 0;
        let err = delegated_roles(&p).unwrap_err();
        assert!(err.to_string().contains("below 1"), "{err}");
    }
}
