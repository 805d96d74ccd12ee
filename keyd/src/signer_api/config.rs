//! The `[signer_api]` section: where the listener is, its TLS material, who
//! may call it and where its keys go.

use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignerApiConfig {
    /// TCP address, for example `127.0.0.1:7899`.
    pub listen: SocketAddr,
    /// Server certificate (PEM, with its chain) and its private key.
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// Client certificates must chain to this CA (PEM); others are refused
    /// during the handshake.
    pub client_ca: PathBuf,
    /// Backend for keys that `CreateKey` makes (default: the daemon's
    /// default backend).
    pub backend: Option<String>,
    /// Certificate subjects allowed to call: a client certificate's CN or
    /// one of its DNS/URI SANs must be in this list.
    pub allowed_clients: Vec<String>,
    /// Client name -> other clients whose keys it may also use (both
    /// names from `allowed_clients`). Default: each client reaches only
    /// the keys it created.
    #[serde(default)]
    pub shares: HashMap<String, Vec<String>>,
    /// Longest a device operation may take before the call fails with
    /// DEADLINE_EXCEEDED (default 10 s).
    #[serde(default = "default_device_timeout")]
    pub device_timeout_seconds: u64,
    /// Most signer-API keys kept in `backend`; `CreateKey` fails with
    /// RESOURCE_EXHAUSTED beyond it. Default: no limit.
    pub max_keys: Option<usize>,
    /// Most connections open at once, TLS handshakes included; more are
    /// closed as they arrive (and logged). notary-server needs one.
    /// Default 64.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_device_timeout() -> u64 {
    10
}

fn default_max_connections() -> usize {
    64
}

impl SignerApiConfig {
    pub(crate) fn validate(&self, backends: &HashSet<&str>) -> Result<(), String> {
        if self.allowed_clients.iter().all(|c| c.trim().is_empty()) {
            return Err("[signer_api] allowed_clients is empty: nobody could call it".into());
        }
        let allowed = |name: &String| self.allowed_clients.iter().any(|c| c.trim() == name);
        for (client, others) in &self.shares {
            if let Some(unknown) = std::iter::once(client).chain(others).find(|n| !allowed(n)) {
                return Err(format!(
                    "[signer_api] shares names {unknown:?}, which is not in allowed_clients"
                ));
            }
        }
        if let Some(b) = &self.backend {
            if !backends.contains(b.as_str()) {
                return Err(format!(
                    "[signer_api] backend {b:?} is not a configured backend"
                ));
            }
        }
        if self.device_timeout_seconds == 0 {
            return Err("[signer_api] device_timeout_seconds must be at least 1".into());
        }
        if self.max_connections == 0 {
            return Err("[signer_api] max_connections must be at least 1".into());
        }
        if self.max_keys == Some(0) {
            return Err("[signer_api] max_keys = 0 would refuse every CreateKey".into());
        }
        Ok(())
    }

    pub(crate) fn device_timeout(&self) -> Duration {
        Duration::from_secs(self.device_timeout_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> SignerApiConfig {
        toml::from_str(&format!(
            "listen = \"127.0.0.1:7899\"\ntls_cert = \"c\"\ntls_key = \"k\"\nclient_ca = \"ca\"\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn each_bad_setting_is_named() {
        let backends: HashSet<&str> = ["hsm"].into();
        let ok = parse("allowed_clients = [\"notary-server\"]\nbackend = \"hsm\"");
        ok.validate(&backends).unwrap();
        assert_eq!(ok.device_timeout(), Duration::from_secs(10));
        for (extra, needle) in [
            ("allowed_clients = []", "allowed_clients is empty"),
            ("allowed_clients = [\" \"]", "allowed_clients is empty"),
            (
                "allowed_clients = [\"a\"]\nbackend = \"tpm\"",
                "\"tpm\" is not a configured backend",
            ),
            (
                "allowed_clients = [\"a\"]\ndevice_timeout_seconds = 0",
                "device_timeout_seconds",
            ),
            ("allowed_clients = [\"a\"]\nmax_keys = 0", "max_keys = 0"),
            (
                "allowed_clients = [\"a\"]\nmax_connections = 0",
                "max_connections must be at least 1",
            ),
            (
                "allowed_clients = [\"a\"]\nshares = { a = [\"b\"] }",
                "shares names \"b\"",
            ),
        ] {
            let err = parse(extra).validate(&backends).unwrap_err();
            assert!(err.contains(needle), "{extra}: {err}");
        }
        let unknown = toml::from_str::<SignerApiConfig>(
            "listen = \"127.0.0.1:1\"\ntls_cert = \"c\"\ntls_key = \"k\"\nclient_ca = \"ca\"\nallowed_clients = [\"a\"]\nallowed_client = [\"b\"]",
        )
        .unwrap_err();
        assert!(unknown.to_string().contains("allowed_client"), "{unknown}");
        let bad_addr = toml::from_str::<SignerApiConfig>(
            "listen = \"localhost\"\ntls_cert = \"c\"\ntls_key = \"k\"\nclient_ca = \"ca\"\nallowed_clients = [\"a\"]",
        )
        .unwrap_err();
        assert!(bad_addr.to_string().contains("listen"), "{bad_addr}");
    }
}
