//! `key rotate GUN ROLE`: a new key for a role, published in a new root
//! version. The new root is signed by the old root keys and the new ones, so
//! clients that trusted the old root follow the rotation.

use super::init::{generate, named_root_key, new_root_key};
use super::Context;
use crate::collection::expiry::{expires_in_years, ROOT_YEARS};
use crate::collection::publish::publish;
use crate::collection::signer::KeydSigner;
use crate::collection::update::update;
use crate::commands::certificate::issue_checked;
use crate::commands::key_named;
use crate::commands::sign::public_key;
use crate::remote::Remote;
use crate::trust_dir::{Change, ChangeAction, ChangeKind, GunDir};
use anyhow::{anyhow, bail, Result};
use clap::Args;
use notary_tuf::metadata::RootRole;
use notary_tuf::{PublicKey, Root, SignedEnvelope};
use std::collections::BTreeSet;

#[derive(Debug, Args)]
pub(crate) struct RotateArgs {
    /// Globally unique name of the collection, e.g. example.com/org/app.
    pub gun: String,
    /// root, targets, snapshot or timestamp.
    pub role: String,
    /// Let the server hold the new key (required for timestamp; optional for snapshot).
    #[arg(short = 'r', long = "server-managed")]
    pub server_managed: bool,
    /// Rotate to this key in notary-keyd (key ID or URI) instead of a new one.
    #[arg(short = 'k', long = "key", value_name = "KEYID")]
    pub key: Option<String>,
    /// notary-keyd backend for the new key; default: the daemon's
    /// `default_backend`.
    #[arg(long, value_name = "NAME")]
    pub backend: Option<String>,
    /// Also sign the new root with the root keys of this many older root
    /// versions (for clients that trust an older root).
    #[arg(short = 'l', long, value_name = "N", default_value_t = 0)]
    pub legacy: u64,
}

pub(crate) async fn run(ctx: &Context, args: &RotateArgs) -> Result<()> {
    let role = args.role.as_str();
    match (role, args.server_managed) {
        ("timestamp", false) => bail!("the timestamp key is always held by the server: use -r"),
        ("root" | "targets", true) => {
            bail!("the {role} key cannot be held by the server; rotate it without -r")
        }
        ("root" | "targets" | "snapshot" | "timestamp", _) => {}
        _ => bail!("{role} has no key of its own to rotate: use root, targets, snapshot or timestamp (delegation keys change with `notaryctl delegation`)"),
    }
    if args.server_managed && (args.key.is_some() || args.backend.is_some()) {
        bail!("-r excludes --key and --backend: the server makes its own key");
    }
    if args.key.is_some() && args.backend.is_some() {
        bail!("--key names an existing key; --backend is only for a new one");
    }
    let dir = ctx.gun_dir(&args.gun)?;
    let mut remote = ctx.remote(&args.gun)?;
    let mut signer = ctx.signer(&args.gun).await?;
    let repo = update(&mut remote, &dir, &ctx.settings.pinning, false).await?;
    let old_root = repo.root.checked.metadata;
    let mut new_key_text = None;
    let new_key = if args.server_managed {
        remote.rotate_key(role).await?
    } else if role == "root" {
        let (cert_key, bare_id) = root_cert_key(
            signer.client(),
            &args.gun,
            args.key.as_deref(),
            args.backend.as_deref(),
        )
        .await?;
        new_key_text = Some(format!("{bare_id} (certificate {})", cert_key.key_id()));
        cert_key
    } else {
        match &args.key {
            Some(name) => keyd_public(signer.client(), name).await?,
            None => generate(signer.client(), role, &args.gun, args.backend.as_deref()).await?,
        }
    };
    let mut legacy = Vec::new();
    for version in legacy_versions(old_root.version, args.legacy) {
        if let Some(bytes) = remote.get_root_version(version).await? {
            legacy.push(SignedEnvelope::parse(&bytes)?.decode::<Root>()?);
        }
    }
    let root = replace_role_key(&old_root, role, &new_key);
    let next = sign_next_root(&mut signer, root, &old_root, &legacy).await?;
    publish_next_root(ctx, &mut remote, &dir, &mut signer, next, role == "targets").await?;
    println!(
        "Successfully rotated {role} key for repository {} to {}",
        args.gun,
        new_key_text.unwrap_or_else(|| new_key.key_id())
    );
    Ok(())
}

fn legacy_versions(current: u64, legacy: u64) -> impl Iterator<Item = u64> {
    current.saturating_sub(legacy).max(1)..current
}

/// `old` with `role`'s keys replaced by `new_key`; keys no role uses are dropped.
pub(super) fn replace_role_key(old: &Root, role: &str, new_key: &PublicKey) -> Root {
    let mut root = old.clone();
    root.roles.insert(
        role.to_string(),
        RootRole {
            keyids: vec![new_key.key_id()],
            threshold: 1,
        },
    );
    root.keys.insert(new_key.key_id(), new_key.clone());
    let used: BTreeSet<String> = root
        .roles
        .values()
        .flat_map(|r| r.keyids.iter().cloned())
        .collect();
    root.keys.retain(|id, _| used.contains(id));
    root
}

/// `root` made the version after `old_root` (expiring in [`ROOT_YEARS`]) and
/// signed by every root key notary-keyd holds of it, of `old_root` and of
/// `older` (earlier roots that clients may still trust), with its bytes:
/// what [`publish_next_root`] takes.
pub(super) async fn sign_next_root(
    signer: &mut KeydSigner,
    mut root: Root,
    old_root: &Root,
    older: &[Root],
) -> Result<(Root, Vec<u8>)> {
    root.version = old_root.version + 1;
    root.expires = expires_in_years(ROOT_YEARS);
    let mut envelope = SignedEnvelope::from_metadata(&root)?;
    let mut signed = BTreeSet::new();
    for signing_root in [&root, old_root].into_iter().chain(older) {
        sign_with_root_keys(signer, &mut envelope, signing_root, &mut signed).await?;
    }
    let bytes = envelope.to_bytes();
    Ok((root, bytes))
}

/// Publishes `next` (from [`sign_next_root`]); a root that names a new
/// targets key goes out with targets signed by that key.
pub(super) async fn publish_next_root(
    ctx: &Context,
    remote: &mut Remote,
    dir: &GunDir,
    signer: &mut KeydSigner,
    next: (Root, Vec<u8>),
    new_targets_key: bool,
) -> Result<()> {
    if new_targets_key {
        stage_targets_witness(dir)?;
    }
    publish(remote, dir, signer, &ctx.settings.pinning, Some(next)).await?;
    Ok(())
}

/// Signs with every root key of `root` that notary-keyd holds and that has
/// not signed yet.
async fn sign_with_root_keys(
    signer: &mut KeydSigner,
    envelope: &mut SignedEnvelope,
    root: &Root,
    signed: &mut BTreeSet<String>,
) -> Result<()> {
    let role = root
        .role("root")
        .ok_or_else(|| anyhow!("root v{} defines no root role", root.version))?;
    for id in &role.keyids {
        if signed.contains(id) {
            continue;
        }
        let Some(listed) = root.keys.get(id) else {
            continue;
        };
        if let Some(key) = signer.find(listed).await? {
            signer.sign_with(envelope, "root", id, listed, &key).await?;
            signed.insert(id.clone());
        }
    }
    Ok(())
}

/// The new root key's certificate key (a named or new key, certified for
/// the GUN) and the bare key's ID.
pub(super) async fn root_cert_key(
    client: &mut crate::connect::Client,
    gun: &str,
    named: Option<&str>,
    backend: Option<&str>,
) -> Result<(PublicKey, String)> {
    let key = match named {
        Some(name) => named_root_key(client, name).await?,
        None => new_root_key(client, backend).await?,
    };
    let cert = issue_checked(client, &key, gun, 0, None).await?;
    Ok((
        PublicKey::from_certificate_pem(&cert.certificate_pem)?,
        key.key_id,
    ))
}

async fn keyd_public(client: &mut crate::connect::Client, name: &str) -> Result<PublicKey> {
    let key = key_named(client, name).await?;
    public_key(&key)
}

/// Stages re-signing targets: a root that names a new targets key must be
/// published in the same update as targets signed by it.
fn stage_targets_witness(dir: &GunDir) -> Result<()> {
    dir.changelist().add(&[Change {
        action: ChangeAction::Create,
        kind: ChangeKind::Witness,
        role: "targets".into(),
        path: String::new(),
        meta: None,
        delegation: None,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use notary_tuf::{KeyType, MetadataType};
    use std::collections::BTreeMap;

    fn key(byte: u8) -> PublicKey {
        PublicKey::new(KeyType::Ed25519, vec![byte; 32])
    }

    #[test]
    fn new_key_replaces_the_role_and_unused_keys_go() {
        let (a, b, c) = (key(1), key(2), key(3));
        let role = |k: &PublicKey| RootRole {
            keyids: vec![k.key_id()],
            threshold: 1,
        };
        let old = Root {
            kind: MetadataType::Root,
            consistent_snapshot: false,
            expires: String::new(),
            keys: BTreeMap::from([(a.key_id(), a.clone()), (b.key_id(), b.clone())]),
            roles: BTreeMap::from([
                ("targets".to_string(), role(&a)),
                ("snapshot".to_string(), role(&b)),
            ]),
            version: 4,
        };
        let new = replace_role_key(&old, "targets", &c);
        assert_eq!(new.roles["targets"].keyids, [c.key_id()]);
        assert!(!new.keys.contains_key(&a.key_id()));
        assert!(new.keys.contains_key(&b.key_id()));
        assert_eq!(new.version, 4, "the caller bumps the version");
    }

    #[test]
    fn legacy_versions_stay_above_zero() {
        assert_eq!(legacy_versions(5, 2).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(legacy_versions(2, 9).collect::<Vec<_>>(), [1]);
        assert!(legacy_versions(5, 0).next().is_none());
    }
}
