//! The notary CLI's repository commands (`init`, `add`, `publish`, `list`,
//! …) with the same names, arguments and flags, keys in notary-keyd.

pub(crate) mod delegation;
pub(crate) mod init;
pub(crate) mod migrate;
pub(crate) mod publish;
pub(crate) mod read;
pub(crate) mod rotate;
pub(crate) mod stage;
pub(crate) mod status;

use crate::collection::signer::KeydSigner;
use crate::connect;
use crate::remote::Remote;
use crate::settings::Settings;
use crate::trust_dir::{GunDir, TrustDir};
use anyhow::Result;
use std::path::PathBuf;

/// What every repository command needs: the settings and the daemon socket.
pub(crate) struct Context {
    pub settings: Settings,
    pub keyd_socket: PathBuf,
    pub verbose: bool,
    /// `-D`: also trace every request to the notary server.
    pub debug: bool,
}

impl Context {
    pub(crate) fn gun_dir(&self, gun: &str) -> Result<GunDir> {
        TrustDir::new(self.settings.trust_dir.clone()).gun(gun)
    }

    pub(crate) fn remote(&self, gun: &str) -> Result<Remote> {
        Ok(Remote::new(
            &self.settings.server,
            &self.settings.tls,
            self.settings.timeouts,
            gun,
            self.debug,
        )?)
    }

    /// Connects to notary-keyd; only commands that sign need it.
    pub(crate) async fn signer(&self, gun: &str) -> Result<KeydSigner> {
        let client = connect::connect(&self.keyd_socket).await?;
        Ok(KeydSigner::new(client, gun))
    }

    pub(crate) fn note(&self, line: impl AsRef<str>) {
        if self.verbose {
            eprintln!("{}", line.as_ref());
        }
    }
}
