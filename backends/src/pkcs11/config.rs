//! What the daemon's config says about one PKCS#11 backend.

use secrecy::SecretString;
use std::fmt;
use std::path::PathBuf;

/// How the token is found. Never by slot number: slot IDs change between
/// runs (SoftHSM derives them from the serial, readers renumber on replug).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSelector {
    Label(String),
    Serial(String),
}

impl fmt::Display for TokenSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSelector::Label(label) => write!(f, "token labelled {label:?}"),
            TokenSelector::Serial(serial) => write!(f, "token with serial {serial:?}"),
        }
    }
}

#[derive(Clone)]
pub struct Pkcs11Config {
    /// Path of the vendor's PKCS#11 library.
    pub module: PathBuf,
    pub token: TokenSelector,
    /// User PIN to log in with at start. `None` = prompt mode: the token stays
    /// locked until a client unlocks it through `TokenLogin::login`.
    pub pin: Option<SecretString>,
    /// Size of the worker session pool, and so the backend's concurrency.
    pub max_sessions: usize,
}

impl Pkcs11Config {
    /// A config with the default pool size (`default_max_sessions`).
    pub fn new(
        module: impl Into<PathBuf>,
        token: TokenSelector,
        pin: Option<SecretString>,
    ) -> Self {
        Self {
            module: module.into(),
            token,
            pin,
            max_sessions: default_max_sessions(),
        }
    }
}

/// Two worker sessions per core, at least four. A hardware token does the
/// work itself, so more sessions than cores hide its latency; for SoftHSM,
/// which signs on our CPUs, keyd-bench measured RSA-3072 at 16 clients going
/// from 0.58–0.69 of direct throughput with one session per core (2) to
/// 0.75–0.86 with 4 or 16 (docs/benchmarks.md).
pub fn default_max_sessions() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (2 * cores).max(4)
}

impl fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("token", &self.token)
            .field("pin", &self.pin.as_ref().map(|_| "[redacted]"))
            .field("max_sessions", &self.max_sessions)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_pin() {
        let config = Pkcs11Config::new(
            "/usr/lib/softhsm/libsofthsm2.so",
            TokenSelector::Label("notary".into()),
            Some(SecretString::from("123456")),
        );
        let text = format!("{config:?}");
        assert!(text.contains("[redacted]"));
        assert!(!text.contains("123456"));
        assert!(config.max_sessions >= 1);
    }
}
