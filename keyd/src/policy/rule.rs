//! One `[[policy]]` rule: as written in the config (`PolicyRule`), and with
//! its user and group names resolved (`Rule`), which is what decides.

use super::names::Directory;
use super::selector::Selector;
use super::{KeyFacts, Operation};
use crate::caller::Caller;
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyRule {
    #[serde(default)]
    pub uids: Vec<u32>,
    #[serde(default)]
    pub gids: Vec<u32>,
    /// User names, resolved to uids when the config is (re)loaded.
    #[serde(default)]
    pub users: Vec<String>,
    /// Group names, resolved to gids when the config is (re)loaded.
    #[serde(default)]
    pub groups: Vec<String>,
    pub allow: Vec<Operation>,
    /// Which keys (see `selector`); default: every key.
    #[serde(default = "all_keys")]
    pub keys: Vec<Selector>,
}

fn all_keys() -> Vec<Selector> {
    vec![Selector::Any]
}

/// A rule with numbers only, and the names it was given for its uids.
#[derive(Clone, Debug)]
pub(crate) struct Rule {
    uids: Vec<u32>,
    gids: Vec<u32>,
    allow: Vec<Operation>,
    keys: Vec<Selector>,
    /// (uid, user name) for every uid the rule names, for audit lines.
    pub(super) names: Vec<(u32, String)>,
}

impl PolicyRule {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.uids.is_empty()
            && self.gids.is_empty()
            && self.users.is_empty()
            && self.groups.is_empty()
        {
            return Err("a rule needs `users`, `groups`, `uids` or `gids`".into());
        }
        Ok(())
    }

    /// Resolves the rule's names; a name `directory` does not know is an
    /// error that names it.
    pub(crate) fn resolve(&self, directory: &dyn Directory) -> Result<Rule, String> {
        self.validate()?;
        let mut uids = self.uids.clone();
        let mut names = Vec::new();
        for user in &self.users {
            let uid = directory
                .uid(user)?
                .ok_or_else(|| format!("there is no user {user:?} (looked up through NSS)"))?;
            uids.push(uid);
            names.push((uid, user.clone()));
        }
        for &uid in &self.uids {
            if let Some(name) = directory.user_name(uid) {
                names.push((uid, name));
            }
        }
        let mut gids = self.gids.clone();
        for group in &self.groups {
            gids.push(
                directory.gid(group)?.ok_or_else(|| {
                    format!("there is no group {group:?} (looked up through NSS)")
                })?,
            );
        }
        Ok(Rule {
            uids,
            gids,
            allow: self.allow.clone(),
            keys: self.keys.clone(),
            names,
        })
    }
}

impl Rule {
    pub(super) fn matches_caller(&self, caller: &Caller) -> bool {
        self.uids.contains(&caller.uid) || self.gids.iter().any(|&g| caller.in_group(g))
    }

    pub(super) fn grants(&self, op: Operation) -> bool {
        self.allow.contains(&op)
    }

    pub(super) fn reaches(&self, key: &KeyFacts<'_>) -> bool {
        self.keys.iter().any(|s| s.matches(key))
    }
}

/// Every rule of a config, resolved; errors name the rule by its place.
pub(crate) fn resolve_all(
    rules: &[PolicyRule],
    directory: &dyn Directory,
) -> Result<Vec<Rule>, String> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            r.resolve(directory)
                .map_err(|e| format!("[[policy]] #{}: {e}", i + 1))
        })
        .collect()
}
