//! Who may do what with which key.
//!
//! ```toml
//! [[policy]]
//! users = ["ci"]           # and/or groups = [...], uids = [...], gids = [...]
//! allow = ["sign", "list"] # operations
//! keys = ["role:targets/*", { role = "targets", gun = "example.com/*" }]
//! ```
//! A request is allowed when any rule matches the caller, names the
//! operation, and has a key selector matching the key (`selector`: a list
//! is OR, a table AND). Selectors test what the key is: its IDs, backend
//! and binding (`KeyFacts`), never the role or GUN a request names. The
//! daemon's own uid is allowed everything except `sign-raw`, which signs
//! bytes the daemon cannot check and so must always be granted by a rule;
//! with no rules, nobody else may do anything.

mod names;
mod rule;
mod selector;

pub(crate) use names::{Directory, Nss};
pub(crate) use rule::{resolve_all, PolicyRule, Rule};

use crate::caller::Caller;
use notary_tuf::metadata::{Gun, Role};
use serde::Deserialize;
use std::collections::HashMap;
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
    /// Generate keys, and attach or issue their certificates.
    Generate,
    /// Delete keys.
    Delete,
    /// Unlock and lock tokens.
    Unlock,
}

impl Operation {
    pub(crate) const ALL: [Operation; 6] = [
        Operation::List,
        Operation::Sign,
        Operation::SignRaw,
        Operation::Generate,
        Operation::Delete,
        Operation::Unlock,
    ];

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

/// What a key is, as selectors test it: its IDs, its backend, its role
/// binding, and its GUN binding (or, for a key without one, the CN of its
/// root certificate). For `generate` the key does not exist yet: the
/// binding it is asked for is tested.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct KeyFacts<'a> {
    pub key_id: Option<&'a str>,
    pub x509_key_id: Option<&'a str>,
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

/// One version of the rules, with the user names they resolved.
struct Rules {
    list: Vec<Rule>,
    names: HashMap<u32, String>,
}

impl Rules {
    fn new(list: Vec<Rule>) -> Rules {
        let names = list.iter().flat_map(|r| r.names.iter().cloned()).collect();
        Rules { list, names }
    }
}

pub(crate) struct Policy {
    owner_uid: u32,
    owner_name: Option<String>,
    /// Swapped whole by a reload; each check reads one version.
    rules: RwLock<Arc<Rules>>,
}

impl Policy {
    /// `owner_name` is the daemon's own user's name, for audit lines.
    pub(crate) fn new(owner_uid: u32, owner_name: Option<String>, rules: Vec<Rule>) -> Policy {
        Policy {
            owner_uid,
            owner_name,
            rules: RwLock::new(Arc::new(Rules::new(rules))),
        }
    }

    /// Applies reloaded rules to every decision from now on; decisions
    /// already taken (a signature in progress) stand.
    pub(crate) fn replace_rules(&self, rules: Vec<Rule>) {
        *self.rules.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(Rules::new(rules));
    }

    fn rules(&self) -> Arc<Rules> {
        Arc::clone(&self.rules.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn allows(&self, caller: &Caller, op: Operation, key: &KeyFacts<'_>) -> bool {
        (caller.uid == self.owner_uid && op != Operation::SignRaw)
            || self
                .rules()
                .list
                .iter()
                .any(|r| r.matches_caller(caller) && r.grants(op) && r.reaches(key))
    }

    /// For operations not about one key (listing backends, unlocking), and
    /// before a key is looked for: does any rule grant the operation to
    /// this caller at all?
    pub(crate) fn allows_any(&self, caller: &Caller, op: Operation) -> bool {
        (caller.uid == self.owner_uid && op != Operation::SignRaw)
            || self
                .rules()
                .list
                .iter()
                .any(|r| r.matches_caller(caller) && r.grants(op))
    }

    /// The caller's user name as the configuration resolved it: the
    /// daemon's own user, or a uid a rule names by name or number.
    pub(crate) fn user_name(&self, uid: u32) -> Option<String> {
        if uid == self.owner_uid {
            return self.owner_name.clone();
        }
        self.rules().names.get(&uid).cloned()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A directory with a few names, for rules that name users or groups.
    pub(crate) struct Fixed {
        pub users: &'static [(&'static str, u32)],
        pub groups: &'static [(&'static str, u32)],
    }

    impl Directory for Fixed {
        fn uid(&self, user: &str) -> Result<Option<u32>, String> {
            Ok(self.users.iter().find(|(n, _)| *n == user).map(|e| e.1))
        }
        fn gid(&self, group: &str) -> Result<Option<u32>, String> {
            Ok(self.groups.iter().find(|(n, _)| *n == group).map(|e| e.1))
        }
        fn user_name(&self, uid: u32) -> Option<String> {
            self.users
                .iter()
                .find(|e| e.1 == uid)
                .map(|(n, _)| n.to_string())
        }
    }

    pub(crate) const NAMES: Fixed = Fixed {
        users: &[("ci", 1001), ("alice", 1002)],
        groups: &[("release", 990)],
    };

    fn caller(uid: u32, gid: u32) -> Caller {
        Caller {
            uid,
            gid,
            groups: Arc::from([]),
            pid: None,
        }
    }

    pub(crate) fn rules(text: &str) -> Vec<Rule> {
        #[derive(Deserialize)]
        struct W {
            policy: Vec<PolicyRule>,
        }
        resolve_all(&toml::from_str::<W>(text).unwrap().policy, &NAMES).unwrap()
    }

    const ID: &str = "aeb6481e0bf1d22811fdbf6b297a7c5d243be5059581602f18e7f5b307cb8f08";

    #[test]
    fn owner_only_by_default() {
        let p = Policy::new(1000, None, Vec::new());
        let k = KeyFacts::default();
        assert!(p.allows(&caller(1000, 1000), Operation::Delete, &k));
        assert!(!p.allows(&caller(1000, 1000), Operation::SignRaw, &k));
        assert!(!p.allows_any(&caller(1000, 1000), Operation::SignRaw));
        assert!(!p.allows(&caller(1001, 1000), Operation::List, &k));
        assert!(!p.allows(&caller(0, 0), Operation::Sign, &k));
    }

    #[test]
    fn selectors_by_role_gun_backend_and_id() {
        let p = Policy::new(
            0,
            None,
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
        let app_evil = Gun::parse("example.com/app-evil").unwrap();
        let deleg = KeyFacts {
            role: Some(&releases),
            ..Default::default()
        };
        let gun = KeyFacts {
            role: Some(&Role::Targets),
            gun: Some(&app_x),
            ..Default::default()
        };
        let sibling = KeyFacts {
            role: Some(&Role::Targets),
            gun: Some(&app_evil),
            ..Default::default()
        };
        let unbound_root = KeyFacts {
            role: Some(&Role::Root),
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
        assert!(!p.allows(&caller(9, 50), Operation::Sign, &sibling));
        // A key without a GUN is never reached by gun: (review finding 2).
        assert!(!p.allows(&caller(9, 50), Operation::Sign, &unbound_root));
        assert!(!p.allows(&caller(9, 50), Operation::Delete, &deleg));
        let by_id = KeyFacts {
            key_id: Some(ID),
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
    fn users_and_groups_by_name_and_their_names_for_audit() {
        let p = Policy::new(
            0,
            Some("notary-keyd".into()),
            rules(
                r#"
                [[policy]]
                users = ["ci"]
                allow = ["sign"]
                [[policy]]
                groups = ["release"]
                uids = [1002]
                allow = ["list"]
                "#,
            ),
        );
        let k = KeyFacts::default();
        assert!(p.allows(&caller(1001, 1001), Operation::Sign, &k));
        assert!(!p.allows(&caller(1002, 1002), Operation::Sign, &k));
        assert!(p.allows(&caller(3000, 990), Operation::List, &k));
        assert_eq!(p.user_name(1001).as_deref(), Some("ci"));
        assert_eq!(p.user_name(1002).as_deref(), Some("alice"));
        assert_eq!(p.user_name(0).as_deref(), Some("notary-keyd"));
        assert_eq!(p.user_name(3000), None);
    }

    #[test]
    fn replaced_rules_apply_to_later_checks() {
        let p = Policy::new(
            0,
            None,
            rules("[[policy]]\nuids = [5]\nallow = [\"sign\"]\n"),
        );
        let k = KeyFacts::default();
        assert!(p.allows(&caller(5, 5), Operation::Sign, &k));
        p.replace_rules(rules("[[policy]]\nuids = [6]\nallow = [\"sign\"]\n"));
        assert!(!p.allows(&caller(5, 5), Operation::Sign, &k));
        assert!(p.allows(&caller(6, 6), Operation::Sign, &k));
    }

    #[test]
    fn invalid_rules_and_unknown_names_are_named() {
        #[derive(Deserialize)]
        struct W {
            policy: Vec<PolicyRule>,
        }
        let resolve = |text: &str| {
            let w: W = toml::from_str(text).unwrap();
            resolve_all(&w.policy, &NAMES).unwrap_err()
        };
        assert!(resolve("[[policy]]\nallow = [\"sign\"]\n").contains("users"));
        let err = resolve(
            "[[policy]]\nuids = [1]\nallow = []\n[[policy]]\nusers = [\"bob\"]\nallow = []\n",
        );
        assert!(
            err.contains("#2") && err.contains("no user \"bob\""),
            "{err}"
        );
        let err = resolve("[[policy]]\ngroups = [\"staff\"]\nallow = []\n");
        assert!(err.contains("no group \"staff\""), "{err}");
        let err = toml::from_str::<W>("[[policy]]\nuids = [1]\nallow = []\nkeys = [\"targets\"]\n")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("\"targets\""), "{err}");
    }
}
