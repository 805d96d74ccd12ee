//! The daemon's TOML configuration, and the zero-config personal mode.
//! Backend- and policy-specific sections are typed where they are consumed
//! (`backends::BackendConfig`, `policy::PolicyRule`).

use crate::audit::AuditConfig;
use crate::backends::{BackendConfig, BackendType};
use crate::check::location::{locate, KeyPath, LineColumn, Problem};
use crate::limits::ServerLimits;
use crate::metrics::MetricsConfig;
use crate::pin_source::PinSource;
use crate::policy::{self, PolicyRule, Rule};
use crate::signer_api::SignerApiConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    #[serde(default)]
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
    /// The audit log; `[server] audit_log` is the older way to name it.
    audit: Option<AuditConfig>,
    /// The Prometheus endpoint; off when absent.
    pub metrics: Option<MetricsConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerConfig {
    pub socket: Option<PathBuf>,
    /// Group that owns the socket (mode 0660), so its members may connect.
    pub socket_group: Option<String>,
    /// Keys' bindings and the software keystore (default
    /// `/var/lib/notary-keyd`, the unit's StateDirectory).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Before `[audit]`: the log's file; its directory becomes `[audit] dir`.
    audit_log: Option<PathBuf>,
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

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/notary-keyd")
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            socket: None,
            socket_group: None,
            state_dir: default_state_dir(),
            audit_log: None,
            default_backend: None,
            max_message_bytes: default_max_message_bytes(),
            limits: ServerLimits::default(),
        }
    }
}

/// A minimal configuration to start from (`--print-config`).
pub(crate) const STARTER: &str = include_str!("starter-config.toml");

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("cannot read config {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Only toml's message: its full text quotes the line, which may hold
    /// a secret typed where a PIN source belongs.
    #[error("{}:{at}: {message}", path.display())]
    Parse {
        path: PathBuf,
        at: LineColumn,
        message: String,
    },
    #[error("{}:{at}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        at: LineColumn,
        message: String,
    },
}

impl ConfigError {
    /// `problem`, placed in `text` (read from `path`).
    pub(crate) fn at(path: &Path, text: &str, problem: Problem) -> ConfigError {
        ConfigError::Invalid {
            path: path.to_path_buf(),
            at: locate(text, &problem.at),
            message: problem.message,
        }
    }
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
            at: LineColumn::of_offset(text, error.span().map_or(0, |span| span.start)),
            message: error.message().trim_end().to_string(),
        })?;
        config
            .validate()
            .map_err(|problem| ConfigError::at(path, text, problem))?;
        config.rules = policy::resolve_all(&config.policies, &policy::Nss).map_err(|message| {
            ConfigError::at(
                path,
                text,
                Problem::new(KeyPath::root().key("policy"), message),
            )
        })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), Problem> {
        if self.backends.is_empty() {
            return Err(Problem::new(KeyPath::root(), "no [[backend]] configured"));
        }
        self.server
            .limits
            .validate()
            .map_err(|e| Problem::new(KeyPath::root().key("server").key("limits"), e))?;
        let mut names = std::collections::HashSet::new();
        // Each software keystore locks its directory: a second one on the
        // same directory could never open.
        let mut soft_dirs: std::collections::HashMap<PathBuf, &str> = Default::default();
        for (i, b) in self.backends.iter().enumerate() {
            let at = KeyPath::root().key("backend").index(i);
            b.validate().map_err(|problem| problem.within(&at))?;
            if !names.insert(b.name.as_str()) {
                return Err(Problem::new(
                    at.key("name"),
                    format!("backend name {:?} is used twice", b.name),
                ));
            }
            if b.kind == BackendType::Soft {
                let dir = b.soft_dir(&self.server.state_dir);
                if let Some(first) = soft_dirs.insert(dir.clone(), &b.name) {
                    return Err(Problem::new(
                        at.key("name"),
                        format!(
                            "software keystores {first:?} and {:?} both use {}: give one its own \
                             `dir`",
                            b.name,
                            dir.display()
                        ),
                    ));
                }
            }
        }
        if let Some(d) = &self.server.default_backend {
            if !names.contains(d.as_str()) {
                return Err(Problem::new(
                    KeyPath::root().key("server").key("default_backend"),
                    format!("default_backend {d:?} is not a configured backend"),
                ));
            }
        }
        for (i, p) in self.policies.iter().enumerate() {
            p.validate().map_err(|e| {
                Problem::new(
                    KeyPath::root().key("policy").index(i),
                    format!("[[policy]] #{}: {e}", i + 1),
                )
            })?;
        }
        if let Some(api) = &self.signer_api {
            api.validate(&names)
                .map_err(|e| Problem::new(KeyPath::root().key("signer_api"), e))?;
        }
        if let Some(metrics) = &self.metrics {
            metrics
                .validate()
                .map_err(|e| Problem::new(KeyPath::root().key("metrics"), e))?;
        }
        let kinds: Vec<(&str, BackendType)> = self
            .backends
            .iter()
            .map(|b| (b.name.as_str(), b.kind))
            .collect();
        self.audit()
            .and_then(|audit| audit.validate(&kinds))
            .map_err(|e| Problem::new(KeyPath::root().key("audit"), e))
    }

    /// The audit log's settings: `[audit]`, or the older `[server]
    /// audit_log = FILE`, read as `[audit] dir = FILE's directory`; with
    /// neither, `/var/log/notary-keyd` (the unit's LogsDirectory).
    pub(crate) fn audit(&self) -> Result<AuditConfig, String> {
        match (&self.audit, &self.server.audit_log) {
            (Some(a), None) => Ok(a.clone()),
            (None, Some(file)) => AuditConfig::from_legacy_path(file),
            (Some(_), Some(_)) => {
                Err("both [audit] and [server] audit_log are set; keep only [audit]".into())
            }
            (None, None) => Ok(AuditConfig::in_dir(PathBuf::from("/var/log/notary-keyd"))),
        }
    }

    /// `[server] audit_log` as it was written, for the message that says
    /// how it is read now.
    pub(crate) fn legacy_audit_log(&self) -> Option<&Path> {
        self.server.audit_log.as_deref()
    }

    /// Personal mode: software keystore under `$XDG_DATA_HOME/notary-keyd`
    /// (or `~/.local/share/notary-keyd`), socket from `personal_socket`,
    /// only this user allowed; the keystore encrypted with the passphrase
    /// in `passphrase_file`, if given.
    pub(crate) fn personal(passphrase_file: Option<PathBuf>) -> Result<Config, String> {
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
                audit_log: None,
                state_dir: data.clone(),
                ..ServerConfig::default()
            },
            backends: vec![BackendConfig::personal_soft(
                passphrase_file.map(|file| PinSource::File { file }),
            )],
            policies: Vec::new(),
            rules: Vec::new(),
            signer_api: None,
            audit: Some(AuditConfig {
                // Personal logs are small: no need for large segments.
                max_size: crate::audit::config::ByteSize(8 << 20),
                ..AuditConfig::in_dir(data.join("audit"))
            }),
            metrics: None,
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
    fn the_audit_log_is_named_once() {
        let base = "[server]\nstate_dir='/x'\n[[backend]]\nname='soft'\ntype='soft'\n";
        let legacy: Config =
            toml::from_str(&base.replace("'/x'\n", "'/x'\naudit_log='/l/a.jsonl'\n")).unwrap();
        assert_eq!(legacy.audit().unwrap().dir, Path::new("/l"));
        let both: Config = toml::from_str(&format!(
            "{}\n[audit]\ndir='/l'\n",
            base.replace("'/x'\n", "'/x'\naudit_log='/l/a.jsonl'\n")
        ))
        .unwrap();
        assert!(both.validate().unwrap_err().message.contains("both"));
        let none: Config = toml::from_str(base).unwrap();
        assert_eq!(none.audit().unwrap().dir, Path::new("/var/log/notary-keyd"));
        let new: Config =
            toml::from_str(&format!("{base}[audit]\ndir='/l'\nmax_size='1M'\nkeep=4\n")).unwrap();
        new.validate().unwrap();
        assert_eq!(new.audit().unwrap().keep, 4);
    }

    #[test]
    fn rejects_unknown_fields_and_bad_defaults() {
        let bad = "[server]\nstate_dir='/x'\naudit_log='/y'\nsokcet='/z'\n";
        let err = toml::from_str::<Config>(bad).unwrap_err().to_string();
        assert!(err.contains("sokcet"), "{err}");
        let text = "[server]\nstate_dir='/x'\naudit_log='/y'\ndefault_backend='nope'\n\
                    [[backend]]\nname='soft'\ntype='soft'\n";
        let config: Config = toml::from_str(text).unwrap();
        assert!(config.validate().unwrap_err().message.contains("nope"));
    }

    fn error_of(text: &str) -> String {
        Config::parse(Path::new("/etc/k.toml"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn errors_name_the_file_line_and_column() {
        let semantic =
            "[server]\ndefault_backend = 'nope'\n[[backend]]\nname = 'soft'\ntype = 'soft'\n";
        let err = error_of(semantic);
        assert!(
            err.starts_with("/etc/k.toml:2:19: default_backend \"nope\""),
            "{err}"
        );
        let twice =
            "[[backend]]\nname = 'a'\ntype = 'soft'\n[[backend]]\nname = 'a'\ntype = 'yubikey'\n";
        assert!(
            error_of(twice).starts_with("/etc/k.toml:5:8: "),
            "{}",
            error_of(twice)
        );
        let shared =
            "[[backend]]\nname = 'a'\ntype = 'soft'\n[[backend]]\nname = 'b'\ntype = 'soft'\n";
        assert!(
            error_of(shared).contains("software keystores \"a\" and \"b\" both use"),
            "{}",
            error_of(shared)
        );
        let apart = format!("{shared}dir = '/var/lib/notary-keyd/b'\n");
        assert!(Config::parse(Path::new("/etc/k.toml"), &apart).is_ok());
        let field = "[[backend]]\nname = 'p'\ntype = 'pkcs11'\nmodule = '/m.so'\ntoken = 't'\n\
                     pin = { env = 'P' }\nsessions = 2\ntcti = 'x'\n";
        assert!(
            error_of(field).starts_with("/etc/k.toml:8:8: "),
            "{}",
            error_of(field)
        );
        let syntax = "[[backend]]\nname = 'p'\ntype = 'soft'\npin = \"123456\"\n";
        let err = error_of(syntax);
        assert!(err.starts_with("/etc/k.toml:4:7: "), "{err}");
        assert!(!err.contains("123456"), "{err}");
    }

    #[test]
    fn a_minimal_config_needs_no_server_section() {
        let config =
            Config::parse(Path::new("k.toml"), "[[backend]]\nname='s'\ntype='soft'\n").unwrap();
        assert_eq!(config.server.state_dir, Path::new("/var/lib/notary-keyd"));
        assert_eq!(
            config.audit().unwrap().dir,
            Path::new("/var/log/notary-keyd")
        );
        Config::parse(Path::new("starter"), STARTER).unwrap();
    }
}
