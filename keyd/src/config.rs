//! The daemon's TOML configuration, and the zero-config personal mode.
//! Backend- and policy-specific sections are typed where they are consumed
//! (`backends::BackendConfig`, `policy::PolicyRule`).

use crate::backends::BackendConfig;
use crate::limits::ServerLimits;
use crate::policy::{self, PolicyRule, Rule};
use crate::signer_api::SignerApiConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    pub server: ServerConfig,
    #[serde(default, rename = "backend")]
    pub backends: Vec<BackendConfig>,
    #[serde(default, rename = "policy")]
    pub policies: Vec<PolicyRule>,
    /// `policies` with their user and group names resolved (`parse`).
    #[serde(skip)]
    pub rules: Vec<Rule>,
    /// notary-signer's API for a notary-server; off when absent.
    pub signer_api: Option<SignerApiConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerConfig {
    pub socket: Option<PathBuf>,
    /// Group that owns the socket (mode 0660), so its members may connect.
    pub socket_group: Option<String>,
    pub state_dir: PathBuf,
    pub audit_log: PathBuf,
    /// Backend for new keys when a request names none; default: the first.
    pub default_backend: Option<String>,
    /// Largest request accepted, in bytes.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// What one caller may cost the daemon.
    #[serde(default)]
    pub limits: ServerLimits,
}

fn default_max_message_bytes() -> usize {
    16 * 1024 * 1024
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("cannot read config {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("config {path} is invalid: {error}")]
    Parse {
        path: PathBuf,
        error: toml::de::Error,
    },
    #[error("config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Config {
    pub(crate) fn read(path: &Path) -> Result<String, ConfigError> {
        std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        })
    }

    /// Parses and validates `text`, read from `path` (named in errors).
    pub(crate) fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: path.to_path_buf(),
            error,
        })?;
        let invalid = |message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        config.validate().map_err(invalid)?;
        config.rules = policy::resolve_all(&config.policies, &policy::Nss).map_err(invalid)?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if self.backends.is_empty() {
            return Err("no [[backend]] configured".into());
        }
        self.server.limits.validate()?;
        let mut names = std::collections::HashSet::new();
        for b in &self.backends {
            b.validate()?;
            if !names.insert(b.name.as_str()) {
                return Err(format!("backend name {:?} is used twice", b.name));
            }
        }
        if let Some(d) = &self.server.default_backend {
            if !names.contains(d.as_str()) {
                return Err(format!("default_backend {d:?} is not a configured backend"));
            }
        }
        for (i, p) in self.policies.iter().enumerate() {
            p.validate()
                .map_err(|e| format!("[[policy]] #{}: {e}", i + 1))?;
        }
        if let Some(api) = &self.signer_api {
            api.validate(&names)?;
        }
        Ok(())
    }

    /// Personal mode: software keystore under `$XDG_DATA_HOME/notary-keyd`
    /// (or `~/.local/share/notary-keyd`), socket from `personal_socket`,
    /// only this user allowed.
    pub(crate) fn personal() -> Result<Config, String> {
        let data = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            Some(d) => PathBuf::from(d),
            None => {
                let home = std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .ok_or("neither XDG_DATA_HOME nor HOME is set; pass --config")?;
                PathBuf::from(home).join(".local").join("share")
            }
        }
        .join("notary-keyd");
        let socket = keyd_proto::socket::personal_socket()
            .ok_or("neither XDG_RUNTIME_DIR, XDG_STATE_HOME nor HOME is set: no place for the personal socket")?;
        Ok(Config {
            server: ServerConfig {
                socket: Some(socket),
                socket_group: None,
                audit_log: data.join("audit.jsonl"),
                state_dir: data,
                default_backend: None,
                max_message_bytes: default_max_message_bytes(),
                limits: ServerLimits::default(),
            },
            backends: vec![BackendConfig::personal_soft()],
            policies: Vec::new(),
            rules: Vec::new(),
            signer_api: None,
        })
    }

    pub(crate) fn default_backend(&self) -> &str {
        self.server
            .default_backend
            .as_deref()
            .or_else(|| self.backends.first().map(|b| b.name.as_str()))
            .unwrap_or("soft")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_in_docs_parses() {
        let text = include_str!("../../docs/notary-keyd.example.toml");
        let config: Config = toml::from_str(text).unwrap();
        config.validate().unwrap();
        assert_eq!(config.default_backend(), "hsm");
        assert!(config.policies.len() >= 2);
        let api = config.signer_api.expect("example shows [signer_api]");
        assert_eq!(api.allowed_clients, ["notary-server"]);
        assert_eq!(api.max_keys, Some(16));
    }

    /// The shipped rules, as a host with their users and group resolves
    /// them: CI signs its targets keys but not the root key of its own GUN
    /// (review finding 2), the root rule does.
    #[test]
    fn example_policy_keeps_ci_away_from_root() {
        use crate::caller::Caller;
        use crate::policy::tests::Fixed;
        use crate::policy::{KeyFacts, Operation, Policy};
        use notary_tuf::metadata::{Gun, Role};
        let text = include_str!("../../docs/notary-keyd.example.toml");
        let config: Config = toml::from_str(text).unwrap();
        let names = Fixed {
            users: &[("ci", 1001), ("release-manager", 1002)],
            groups: &[("release", 990)],
        };
        let rules = policy::resolve_all(&config.policies, &names).unwrap();
        let policy = Policy::new(0, None, rules);
        let who = |uid: u32| Caller {
            uid,
            gid: 100,
            groups: std::sync::Arc::from([]),
            pid: None,
        };
        let app = Gun::parse("example.com/app").unwrap();
        let evil = Gun::parse("example.com/app-evil").unwrap();
        let key = |role: &'static Role, gun: &Gun| -> bool {
            let facts = KeyFacts {
                role: Some(role),
                gun: Some(gun),
                backend: "hsm",
                ..KeyFacts::default()
            };
            policy.allows(&who(1001), Operation::Sign, &facts)
        };
        assert!(key(&Role::Targets, &app));
        assert!(!key(&Role::Root, &app), "CI must not sign root");
        assert!(!key(&Role::Targets, &evil), "a sibling GUN is not CI's");
        let root = KeyFacts {
            role: Some(&Role::Root),
            gun: Some(&app),
            backend: "hsm",
            ..KeyFacts::default()
        };
        assert!(policy.allows(&who(1002), Operation::Sign, &root));
        let unbound = KeyFacts::backend("hsm");
        for uid in [990, 1001, 1002] {
            assert!(!policy.allows(&who(uid), Operation::Sign, &unbound));
        }
    }

    #[test]
    fn rejects_unknown_fields_and_bad_defaults() {
        let bad = "[server]\nstate_dir='/x'\naudit_log='/y'\nsokcet='/z'\n";
        let err = toml::from_str::<Config>(bad).unwrap_err().to_string();
        assert!(err.contains("sokcet"), "{err}");
        let text = "[server]\nstate_dir='/x'\naudit_log='/y'\ndefault_backend='nope'\n\
                    [[backend]]\nname='soft'\ntype='soft'\n";
        let config: Config = toml::from_str(text).unwrap();
        assert!(config.validate().unwrap_err().contains("nope"));
    }
}
