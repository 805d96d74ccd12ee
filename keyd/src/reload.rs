//! `SIGHUP` / `systemctl reload`: re-read the config file and apply what can
//! change while requests are in flight. Today that is the `[[policy]]`
//! rules; every other section (socket, state, backends) is fixed for the
//! life of the process, and a change to it is reported as needing a restart
//! rather than silently ignored. A file that fails to read, parse or
//! validate changes nothing.

use crate::config::{Config, ConfigError};
use crate::policy::Policy;
use std::path::PathBuf;
use std::sync::Arc;

/// Top-level config keys a reload applies.
const RELOADABLE: &[&str] = &["policy"];

pub(crate) struct Reloader {
    path: PathBuf,
    /// The running configuration's fixed sections, to spot changes that
    /// need a restart.
    fixed: toml::Table,
    policy: Arc<Policy>,
}

/// What a successful reload did.
#[derive(Debug)]
pub(crate) struct Reloaded {
    pub policy_rules: usize,
    /// Sections that changed in the file but apply only after a restart.
    pub needs_restart: Vec<String>,
}

impl Reloader {
    /// `text` is the file as loaded at startup.
    pub(crate) fn new(path: PathBuf, text: &str, policy: Arc<Policy>) -> Reloader {
        Reloader {
            path,
            fixed: fixed_sections(text),
            policy,
        }
    }

    pub(crate) fn reload(&self) -> Result<Reloaded, ConfigError> {
        let text = Config::read(&self.path)?;
        let config = Config::parse(&self.path, &text)?;
        let fixed = fixed_sections(&text);
        let mut needs_restart: Vec<String> = self
            .fixed
            .iter()
            .filter(|(k, v)| fixed.get(k.as_str()) != Some(v))
            .map(|(k, _)| k.clone())
            .chain(
                fixed
                    .keys()
                    .filter(|k| !self.fixed.contains_key(k.as_str()))
                    .cloned(),
            )
            .collect();
        needs_restart.sort();
        let policy_rules = config.rules.len();
        self.policy.replace_rules(config.rules);
        Ok(Reloaded {
            policy_rules,
            needs_restart,
        })
    }
}

/// The file's top-level items minus the reloadable ones. The text has
/// parsed as a `Config` already, so it is valid TOML.
fn fixed_sections(text: &str) -> toml::Table {
    let mut table: toml::Table = toml::from_str(text).unwrap_or_default();
    for key in RELOADABLE {
        table.remove(*key);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caller::Caller;
    use crate::policy::{KeyFacts, Operation};

    const BASE: &str = "[server]\nstate_dir = '/s'\naudit_log = '/a'\n\
                        [[backend]]\nname = 'soft'\ntype = 'soft'\n";

    fn setup(text: &str) -> (tempfile::TempDir, PathBuf, Arc<Policy>, Reloader) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyd.toml");
        std::fs::write(&path, text).unwrap();
        let config = Config::parse(&path, text).unwrap();
        let policy = Arc::new(Policy::new(0, None, config.rules));
        let reloader = Reloader::new(path.clone(), text, Arc::clone(&policy));
        (dir, path, policy, reloader)
    }

    fn may_sign(policy: &Policy, uid: u32) -> bool {
        let caller = Caller {
            uid,
            gid: uid,
            groups: std::sync::Arc::from([]),
            pid: None,
        };
        policy.allows(&caller, Operation::Sign, &KeyFacts::default())
    }

    #[test]
    fn new_policy_applies_and_fixed_changes_are_named() {
        let rule = |uid: u32| format!("[[policy]]\nuids = [{uid}]\nallow = ['sign']\n");
        let (_dir, path, policy, reloader) = setup(&format!("{BASE}{}", rule(7)));
        assert!(may_sign(&policy, 7));
        std::fs::write(&path, format!("{BASE}{}", rule(8))).unwrap();
        let done = reloader.reload().unwrap();
        assert_eq!(done.policy_rules, 1);
        assert!(done.needs_restart.is_empty(), "{:?}", done.needs_restart);
        assert!(!may_sign(&policy, 7));
        assert!(may_sign(&policy, 8));

        let moved = BASE.replace("'/s'", "'/elsewhere'");
        std::fs::write(&path, format!("{moved}{}", rule(8))).unwrap();
        assert_eq!(reloader.reload().unwrap().needs_restart, ["server"]);
    }

    #[test]
    fn broken_file_keeps_the_running_policy() {
        let (_dir, path, policy, reloader) =
            setup(&format!("{BASE}[[policy]]\nuids = [7]\nallow = ['sign']\n"));
        std::fs::write(
            &path,
            format!("{BASE}[[policy]]\nuids = [8]\nallow = ['sing']\n"),
        )
        .unwrap();
        let err = reloader.reload().unwrap_err().to_string();
        assert!(err.contains("sing"), "{err}");
        std::fs::write(&path, format!("{BASE}[[policy]]\nallow = ['sign']\n")).unwrap();
        let err = reloader.reload().unwrap_err().to_string();
        assert!(err.contains("uids"), "{err}");
        std::fs::remove_file(&path).unwrap();
        assert!(reloader.reload().is_err());
        assert!(may_sign(&policy, 7));
        assert!(!may_sign(&policy, 8));
    }
}
