//! The audit key: an ECDSA P-256 key that signs checkpoints and nothing
//! else. Its public half is kept as PEM in the state directory, where
//! `audit verify` finds it.

use anyhow::{bail, Context, Result};
use notary_tuf::{KeyType, PublicKey};
use std::path::{Path, PathBuf};

/// `<state_dir>/audit-key.pem`.
pub fn public_path(state_dir: &Path) -> PathBuf {
    state_dir.join("audit-key.pem")
}

/// An audit public key from PEM (`PUBLIC KEY`, DER SubjectPublicKeyInfo).
pub fn read_public(path: &Path) -> Result<PublicKey> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let blocks = notary_tuf::pem::parse_blocks(&text)
        .with_context(|| format!("{} is not PEM", path.display()))?;
    let Some(block) = blocks.into_iter().find(|b| b.label == "PUBLIC KEY") else {
        bail!("{} holds no PUBLIC KEY block", path.display());
    };
    Ok(PublicKey::new(KeyType::Ecdsa, block.der))
}

pub fn public_pem(key: &PublicKey) -> String {
    notary_tuf::pem::encode("PUBLIC KEY", key.public_bytes())
}
