//! `key export` and `key import`, as notary names them, refused: private
//! keys stay inside notary-keyd, and notaryctl never reads a private key file.

use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Key IDs to export (as notary accepts them).
    #[arg(long = "key", value_name = "KEYID")]
    pub keys: Vec<String>,
    /// GUNs whose keys to export.
    #[arg(long = "gun", value_name = "GUN")]
    pub guns: Vec<String>,
    /// File to write the export to.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// PEM files with private keys.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Role to import the keys for.
    #[arg(short = 'r', long)]
    pub role: Option<String>,
    /// GUN to import the keys for.
    #[arg(short = 'g', long)]
    pub gun: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PasswdArgs {
    /// Key ID whose passphrase notary would change.
    #[arg(value_name = "KEYID")]
    pub key_id: String,
}

pub(crate) fn export(_: &ExportArgs) -> Result<()> {
    bail!(
        "key export is refused: notary-keyd never lets a private key leave its backend (the \
         token or the daemon's keystore), so there is nothing to export. Public halves: \
         `notaryctl key info KEYID`, `notaryctl key cert show KEYID`; to move signing \
         elsewhere, create a key there and `notaryctl key rotate`"
    )
}

pub(crate) fn import(args: &ImportArgs) -> Result<()> {
    bail!(
        "key import is refused: notaryctl never reads private key files ({} not read), so a \
         key that existed outside notary-keyd cannot be trusted to be held only by it. \
         Generate the key inside notary-keyd with `notaryctl key generate`, then \
         `notaryctl key rotate` or `notaryctl delegation add --key`",
        args.files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

pub(crate) fn passwd(args: &PasswdArgs) -> Result<()> {
    bail!(
        "key passwd is refused: key {} has no passphrase of its own in notary-keyd. A token \
         key is protected by the token's PIN (change it with the token's tools, e.g. \
         `pkcs11-tool --change-pin` or `ykman piv access change-pin` after `notaryctl yubikey \
         release`); the software keystore by the daemon's configured passphrase",
        args.key_id
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_refuse_and_say_why() {
        let err = export(&ExportArgs {
            keys: vec!["ab".into()],
            guns: vec![],
            output: None,
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("key export is refused: notary-keyd never lets a private key leave"),
            "{err}"
        );
        let err = import(&ImportArgs {
            files: vec!["k.pem".into()],
            role: None,
            gun: None,
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("(k.pem not read)"), "{err}");
    }
}
