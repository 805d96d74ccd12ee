//! Who may do what with which key.
//!
//! ```toml
//! [[policy]]
//! uids = [1000]            # and/or gids = [...]
//! allow = ["sign", "list"] # operations
//! keys = ["role:targets", "gun:example.com/*"]
//! ```
//! A request is allowed when any rule matches the caller, names the
//! operation, and has a key selector matching the key. The daemon's own uid
//! is allowed everything except `sign-raw`, which signs bytes the daemon
//! cannot check and so must always be granted by a rule; with no rules,
//! nobody else may do anything.

use crate::caller::Caller;
use notary_tuf::metadata::{Gun, Role};
use serde::Deserialize;
use std::sync::{Arc, PoisonError, RwLock};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Operation {
    /// See backends, keys and certificates.
    List,
    /// Sign notary metadata whose `_type` fits the key's role.
    Sign,
    /// Sign payloads that are not notary metadata.
    SignRaw,
    /// Generate keys and attach certificates.
    Generate,
    /// Delete keys.
    Delete,
    /// Unlock and lock tokens.
    Unlock,
}

impl Operation {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Operation::List => "list",
            Operation::Sign => "sign",
            Operation::SignRaw => "sign-raw",
            Operation::Generate => "generate",
            Operation::Delete => "delete",
            Operation::Unlock => "unlock",
        }
    }
}

/// The facts about a key that selectors test. For `generate`, the key does
/// not exist yet: its requested backend, role and GUN are tested.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct KeyFacts<'a> {
    pub key_ids: &'a [&'a str],
    pub backend: &'a str,
    pub role: Option<&'a Role>,
    pub gun: Option<&'a Gun>,
}

impl<'a> KeyFacts<'a> {
    /// For operations on a backend rather than a key (unlock, setup).
    pub(crate) fn backend(backend: &'a str) -> KeyFacts<'a> {
        KeyFacts {
            backend,
            ..KeyFacts::default()
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyRule {
    #[serde(default)]
    pub uids: Vec<u32>,
    #[serde(default)]
    pub gids: Vec<u32>,
    pub allow: Vec<Operation>,
    /// `"*"`, a key ID, `role:R`, `gun:G` (a trailing `*` matches a prefix),
    /// `backend:NAME`. Default: every key.
    #[serde(default = "all_keys")]
    pub keys: Vec<String>,
}

fn all_keys() -> Vec<String> {
    vec!["*".into()]
}

/// `*` at the end of a pattern matches any suffix.
fn glob(pattern: &str, value: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => pattern == value,
    }
}

impl PolicyRule {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.uids.is_empty() && self.gids.is_empty() {
            return Err("a rule needs `uids` or `gids`".into());
        }
        for k in &self.keys {
            let ok = k == "*"
                || (k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()))
                || ["role:", "gun:", "backend:"]
                    .iter()
                    .any(|p| k.starts_with(p));
            if !ok {
                return Err(format!(
                    "key selector {k:?} is not \"*\", a 64-hex key ID, role:…, gun:… or backend:…"
                ));
            }
        }
        Ok(())
    }

    fn matches_caller(&self, caller: &Caller) -> bool {
        self.uids.contains(&caller.uid) || self.gids.iter().any(|&g| caller.in_group(g))
    }

    fn matches_key(&self, key: &KeyFacts<'_>) -> bool {
        self.keys.iter().any(|sel| {
            if sel == "*" {
                true
            } else if let Some(role) = sel.strip_prefix("role:") {
                key.role.is_some_and(|r| glob(role, r.name()))
            } else if let Some(gun) = sel.strip_prefix("gun:") {
                key.gun.is_some_and(|g| glob(gun, g.as_str()))
            } else if let Some(backend) = sel.strip_prefix("backend:") {
                backend == key.backend
            } else {
                key.key_ids.contains(&sel.as_str())
            }
        })
    }
}

pub(crate) struct Policy {
    owner_uid: u32,
    /// Swapped whole by a reload; each check reads one version.
    rules: RwLock<Arc<Vec<PolicyRule>>>,
}

impl Policy {
    pub(crate) fn new(owner_uid: u32, rules: Vec<PolicyRule>) -> Policy {
        Policy {
            owner_uid,
            rules: RwLock::new(Arc::new(rules)),
        }
    }

    /// Applies reloaded rules to every decision from now on; decisions
    /// already taken (a signature in progress) stand.
    pub(crate) fn replace_rules(&self, rules: Vec<PolicyRule>) {
        *self.rules.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(rules);
    }

    fn rules(&self) -> Arc<Vec<PolicyRule>> {
        Arc::clone(&self.rules.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn allows(&self, caller: &Caller, op: Operation, key: &KeyFacts<'_>) -> bool {
        (caller.uid == self.owner_uid && op != Operation::SignRaw)
            || self
                .rules()
                .iter()
                .any(|r| r.matches_caller(caller) && r.allow.contains(&op) && r.matches_key(key))
    }

    /// For operations not about one key (listing backends, unlocking): does
    /// any rule grant the operation to this caller at all?
    pub(crate) fn allows_any(&self, caller: &Caller, op: Operation) -> bool {
        caller.uid == self.owner_uid
            || self
                .rules()
                .iter()
                .any(|r| r.matches_caller(caller) && r.allow.contains(&op))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(uid: u32, gid: u32) -> Caller {
        Caller {
            uid,
            gid,
            groups: Arc::from([]),
            pid: None,
        }
    }

    fn rules(text: &str) -> Vec<PolicyRule> {
        #[derive(Deserialize)]
        struct W {
            policy: Vec<PolicyRule>,
        }
        let rules = toml::from_str::<W>(text).unwrap().policy;
        for r in &rules {
            r.validate().unwrap();
        }
        rules
    }

    const ID: &str = "aeb6481e0bf1d22811fdbf6b297a7c5d243be5059581602f18e7f5b307cb8f08";

    #[test]
    fn owner_only_by_default() {
        let p = Policy::new(1000, Vec::new());
        let k = KeyFacts::default();
        assert!(p.allows(&caller(1000, 1000), Operation::Delete, &k));
        assert!(!p.allows(&caller(1000, 1000), Operation::SignRaw, &k));
        assert!(!p.allows(&caller(1001, 1000), Operation::List, &k));
        assert!(!p.allows(&caller(0, 0), Operation::Sign, &k));
    }

    #[test]
    fn selectors_by_role_gun_backend_and_id() {
        let p = Policy::new(
            0,
            rules(
                r#"
                [[policy]]
                gids = [50]
                allow = ["sign", "list"]
                keys = ["role:targets/*", "gun:example.com/app*"]
                [[policy]]
                uids = [7]
                allow = ["sign"]
                keys = ["aeb6481e0bf1d22811fdbf6b297a7c5d243be5059581602f18e7f5b307cb8f08", "backend:hsm"]
                "#,
            ),
        );
        let releases = Role::parse("targets/releases").unwrap();
        let app_x = Gun::parse("example.com/app/x").unwrap();
        let other_org = Gun::parse("other.org/x").unwrap();
        let deleg = KeyFacts {
            role: Some(&releases),
            ..Default::default()
        };
        let gun = KeyFacts {
            role: Some(&Role::Targets),
            gun: Some(&app_x),
            ..Default::default()
        };
        let other = KeyFacts {
            role: Some(&Role::Root),
            gun: Some(&other_org),
            ..Default::default()
        };
        assert!(p.allows(&caller(9, 50), Operation::Sign, &deleg));
        // A supplementary group counts as membership, like the primary one.
        let member = Caller {
            groups: Arc::from([20, 50]),
            ..caller(9, 9)
        };
        assert!(p.allows(&member, Operation::Sign, &deleg));
        assert!(!p.allows(&caller(9, 9), Operation::Sign, &deleg));
        assert!(p.allows(&caller(9, 50), Operation::Sign, &gun));
        assert!(!p.allows(&caller(9, 50), Operation::Sign, &other));
        assert!(!p.allows(&caller(9, 50), Operation::Delete, &deleg));
        let ids = [ID];
        let by_id = KeyFacts {
            key_ids: &ids,
            ..Default::default()
        };
        assert!(p.allows(&caller(7, 1), Operation::Sign, &by_id));
        assert!(p.allows(
            &caller(7, 1),
            Operation::Sign,
            &KeyFacts {
                backend: "hsm",
                ..Default::default()
            }
        ));
        assert!(!p.allows(&caller(7, 1), Operation::List, &by_id));
        assert!(p.allows_any(&caller(9, 50), Operation::List));
        assert!(!p.allows_any(&caller(7, 1), Operation::List));
    }

    #[test]
    fn replaced_rules_apply_to_later_checks() {
        let p = Policy::new(0, rules("[[policy]]\nuids = [5]\nallow = [\"sign\"]\n"));
        let k = KeyFacts::default();
        assert!(p.allows(&caller(5, 5), Operation::Sign, &k));
        p.replace_rules(rules("[[policy]]\nuids = [6]\nallow = [\"sign\"]\n"));
        assert!(!p.allows(&caller(5, 5), Operation::Sign, &k));
        assert!(p.allows(&caller(6, 6), Operation::Sign, &k));
    }

    #[test]
    fn invalid_rules_are_named() {
        let r = PolicyRule {
            uids: vec![],
            gids: vec![],
            allow: vec![Operation::Sign],
            keys: all_keys(),
        };
        assert!(r.validate().unwrap_err().contains("uids"));
        let r = PolicyRule {
            uids: vec![1],
            gids: vec![],
            allow: vec![],
            keys: vec!["targets".into()],
        };
        assert!(r.validate().unwrap_err().contains("\"targets\""));
    }
}
