//! Where a repository command finds its server, TLS files, trust dir and
//! trust pinning: flags first, then notary's client `config.json`, then
//! notary's defaults. Relative paths in the config are relative to its folder.
//! The config may also set notaryctl's timeouts for the server
//! (`remote_server.connect_timeout`, `read_timeout`, `request_timeout`, in
//! seconds); the stock notary client ignores those keys.

use crate::remote::{Timeouts, TlsFiles};
use anyhow::{bail, Context, Result};
use notary_tuf::trust::TrustPinning;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// notary's default server, used when neither a flag nor the config names one.
const DEFAULT_SERVER: &str = "https://notary.docker.io";

/// The global flags that decide the settings (as notary spells them).
#[derive(Debug, Default, Clone)]
pub(crate) struct Flags {
    pub server: Option<String>,
    pub trust_dir: Option<PathBuf>,
    pub config_file: Option<PathBuf>,
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    trust_dir: Option<PathBuf>,
    #[serde(default)]
    remote_server: RemoteServer,
    #[serde(default)]
    trust_pinning: TrustPinning,
}

#[derive(Debug, Default, Deserialize)]
struct RemoteServer {
    url: Option<String>,
    root_ca: Option<PathBuf>,
    tls_client_cert: Option<PathBuf>,
    tls_client_key: Option<PathBuf>,
    connect_timeout: Option<f64>,
    read_timeout: Option<f64>,
    request_timeout: Option<f64>,
}

impl RemoteServer {
    fn timeouts(&self) -> Result<Timeouts> {
        let default = Timeouts::default();
        let seconds = |name: &str, value: Option<f64>, default| -> Result<Duration> {
            match value {
                None => Ok(default),
                Some(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => {
                    Ok(Duration::from_secs_f64(s))
                }
                Some(s) => bail!(
                    "remote_server.{name} is {s}; it must be a number of seconds above 0 and at \
                     most 86400"
                ),
            }
        };
        Ok(Timeouts {
            connect: seconds("connect_timeout", self.connect_timeout, default.connect)?,
            read: seconds("read_timeout", self.read_timeout, default.read)?,
            request: seconds("request_timeout", self.request_timeout, default.request)?,
        })
    }
}

#[derive(Debug)]
pub(crate) struct Settings {
    pub trust_dir: PathBuf,
    pub server: String,
    pub tls: TlsFiles,
    pub timeouts: Timeouts,
    /// Pinning with each `ca` entry's file replaced by its PEM text.
    pub pinning: TrustPinning,
}

impl Settings {
    pub(crate) fn load(flags: &Flags) -> Result<Settings> {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        let default_dir = home.join(".notary");
        let (config, config_dir) = match &flags.config_file {
            Some(path) => (read_config(path)?, parent(path)),
            None => {
                let path = default_dir.join("config.json");
                if path.exists() {
                    (read_config(&path)?, default_dir.clone())
                } else {
                    (ConfigFile::default(), default_dir.clone())
                }
            }
        };
        let rel = |p: &Path| -> PathBuf { config_dir.join(expand_home(p, &home)) };
        let trust_dir = flags
            .trust_dir
            .clone()
            .or_else(|| config.trust_dir.as_deref().map(rel))
            .unwrap_or(default_dir);
        let server = flags
            .server
            .clone()
            .or(config.remote_server.url.clone())
            .unwrap_or_else(|| DEFAULT_SERVER.to_string());
        let remote = &config.remote_server;
        let tls = TlsFiles {
            ca: flags
                .tls_ca
                .clone()
                .or_else(|| remote.root_ca.as_deref().map(rel)),
            cert: flags
                .tls_cert
                .clone()
                .or_else(|| remote.tls_client_cert.as_deref().map(rel)),
            key: flags
                .tls_key
                .clone()
                .or_else(|| remote.tls_client_key.as_deref().map(rel)),
        };
        let timeouts = remote.timeouts()?;
        let mut pinning = config.trust_pinning;
        for (prefix, file) in pinning.ca.iter_mut() {
            let path = rel(Path::new(file.as_str()));
            *file = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "trust_pinning.ca[{prefix:?}]: cannot read the CA bundle {}",
                    path.display()
                )
            })?;
        }
        Ok(Settings {
            trust_dir,
            server,
            tls,
            timeouts,
            pinning,
        })
    }
}

fn read_config(path: &Path) -> Result<ConfigFile> {
    let text = std::fs::read(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    let invalid = || {
        format!(
            "the config file {} is not valid notary client config",
            path.display()
        )
    };
    let value: serde_json::Value = serde_json::from_slice(&text).with_context(invalid)?;
    for warning in unknown_keys(&value) {
        eprintln!("warning: {}: {warning}", path.display());
    }
    serde_json::from_value(value).with_context(invalid)
}

/// The keys the client config may hold, per object ("" is the top level).
const KNOWN_KEYS: [(&str, &[&str]); 3] = [
    ("", &["trust_dir", "remote_server", "trust_pinning"]),
    (
        "remote_server",
        &[
            "url",
            "root_ca",
            "tls_client_cert",
            "tls_client_key",
            "connect_timeout",
            "read_timeout",
            "request_timeout",
            "skipTLSVerify",
        ],
    ),
    ("trust_pinning", &["certs", "ca", "disable_tofu"]),
];

/// Like notary, notaryctl ignores keys it does not know; unlike notary, it
/// says so, because a typo there silently means another server or no CA.
fn unknown_keys(config: &serde_json::Value) -> Vec<String> {
    let mut warnings = Vec::new();
    for (section, known) in KNOWN_KEYS {
        let object = match section {
            "" => config.as_object(),
            name => config.get(name).and_then(|v| v.as_object()),
        };
        let prefix = match section {
            "" => String::new(),
            name => format!("{name}."),
        };
        for key in object.into_iter().flat_map(|o| o.keys()) {
            if key == "skipTLSVerify" && section == "remote_server" {
                warnings.push(format!(
                    "{prefix}{key} is ignored: notaryctl always verifies the server's certificate \
                     (give its CA with --tlscacert or remote_server.root_ca)"
                ));
            } else if !known.contains(&key.as_str()) {
                let hint = known
                    .iter()
                    .map(|k| (strsim::levenshtein(k, key), k))
                    .filter(|(distance, _)| *distance <= 3)
                    .min()
                    .map(|(_, k)| format!(" (did you mean {prefix}{k}?)"))
                    .unwrap_or_default();
                warnings.push(format!("unknown key {prefix}{key} is ignored{hint}"));
            }
        }
    }
    warnings
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn expand_home(path: &Path, home: &Path) -> PathBuf {
    match path.strip_prefix("~") {
        Ok(rest) => home.join(rest),
        Err(_) => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named_with_a_suggestion() {
        let config = serde_json::json!({
            "remote_sever": {"url": "https://x"},
            "trust_dir": "t",
            "remote_server": {"rootca": "ca.crt", "url": "https://y", "skipTLSVerify": true},
            "trust_pinning": {"disable_tofu": true, "zzzzzzzzz": 1},
        });
        let warnings = unknown_keys(&config);
        assert_eq!(
            warnings,
            [
                "unknown key remote_sever is ignored (did you mean remote_server?)",
                "unknown key remote_server.rootca is ignored (did you mean remote_server.root_ca?)",
                "remote_server.skipTLSVerify is ignored: notaryctl always verifies the server's \
                 certificate (give its CA with --tlscacert or remote_server.root_ca)",
                "unknown key trust_pinning.zzzzzzzzz is ignored",
            ]
        );
        assert!(unknown_keys(&serde_json::json!({"trust_dir": "t"})).is_empty());
    }

    #[test]
    fn flags_beat_config_and_paths_are_relative_to_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "PEM").unwrap();
        let config = dir.path().join("config.json");
        std::fs::write(
            &config,
            r#"{"trust_dir":"trust","remote_server":{"url":"https://a:1","root_ca":"root.crt"},
               "trust_pinning":{"certs":{"g":["id"]},"ca":{"g/":"ca.pem"},"disable_tofu":true}}"#,
        )
        .unwrap();
        let mut flags = Flags {
            config_file: Some(config.clone()),
            ..Flags::default()
        };
        let s = Settings::load(&flags).unwrap();
        assert_eq!(s.trust_dir, dir.path().join("trust"));
        assert_eq!(s.server, "https://a:1");
        assert_eq!(
            s.tls.ca.as_deref(),
            Some(dir.path().join("root.crt").as_path())
        );
        assert_eq!(s.pinning.ca["g/"], "PEM");
        assert!(s.pinning.disable_tofu);
        flags.server = Some("https://b:2".into());
        flags.trust_dir = Some("/x".into());
        let s = Settings::load(&flags).unwrap();
        assert_eq!(s.server, "https://b:2");
        assert_eq!(s.trust_dir, PathBuf::from("/x"));

        assert_eq!(s.timeouts, Timeouts::default());

        std::fs::write(
            &config,
            r#"{"remote_server":{"connect_timeout":2,"read_timeout":0.5,"request_timeout":3}}"#,
        )
        .unwrap();
        let t = Settings::load(&flags).unwrap().timeouts;
        assert_eq!(
            (t.connect, t.read, t.request),
            (
                Duration::from_secs(2),
                Duration::from_millis(500),
                Duration::from_secs(3)
            )
        );
        for bad in ["0", "-1", "1e9"] {
            std::fs::write(
                &config,
                format!(r#"{{"remote_server":{{"read_timeout":{bad}}}}}"#),
            )
            .unwrap();
            let err = format!("{:#}", Settings::load(&flags).unwrap_err());
            assert!(err.contains("remote_server.read_timeout"), "{err}");
        }

        std::fs::write(&config, "{not json").unwrap();
        let err = format!("{:#}", Settings::load(&flags).unwrap_err());
        assert!(err.contains("is not valid notary client config"), "{err}");
    }
}
