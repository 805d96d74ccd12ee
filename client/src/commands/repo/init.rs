//! `init GUN`: root key and certificate, targets and snapshot keys in
//! notary-keyd, the timestamp key (and with --server-managed-snapshot the
//! snapshot key) from the server; signs root v1 and keeps it as the trusted
//! root until the first publish uploads it.

use super::publish::publish_and_report;
use super::Context;
use crate::collection::expiry::{expires_in_years, ROOT_YEARS};
use crate::collection::update::now;
use crate::commands::certificate::issue_checked;
use crate::commands::key::generate_with_pin;
use crate::commands::key_named;
use crate::commands::sign::public_key;
use crate::connect::Client;
use crate::errors::Reply;
use crate::remote::ROOT_LIMIT;
use anyhow::{anyhow, bail, Context as _, Result};
use clap::Args;
use keyd_proto::convert::role_fields;
use keyd_proto::keyd as pb;
use notary_tuf::metadata::RootRole;
use notary_tuf::rootcert::check_root_cert;
use notary_tuf::trust::{validate_root, TrustPinning};
use notary_tuf::{MetadataType, PublicKey, Role, Root, SignedEnvelope};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Globally unique name of the collection, e.g. example.com/org/app.
    pub gun: String,
    /// Root key in notary-keyd (key ID or key URI); default: the first root
    /// key notary-keyd lists, else a new one on the default backend.
    #[arg(long, value_name = "KEYID|URI")]
    pub rootkey: Option<String>,
    /// Use this certificate (PEM, CN = GUN, for the root key) instead of
    /// having notary-keyd issue one.
    #[arg(long, value_name = "FILE")]
    pub rootcert: Option<PathBuf>,
    /// Let the server hold the snapshot key.
    #[arg(long)]
    pub server_managed_snapshot: bool,
    /// notary-keyd backend for the keys init makes (a new root key, the
    /// targets and snapshot keys), as `notaryctl backend list` names them;
    /// default: the daemon's `default_backend`.
    #[arg(long, value_name = "NAME")]
    pub backend: Option<String>,
    /// Publish right away.
    #[arg(short = 'p', long)]
    pub publish: bool,
}

pub(crate) async fn run(ctx: &Context, args: &InitArgs) -> Result<()> {
    let dir = ctx.gun_dir(&args.gun)?;
    if dir.read_cached(&Role::Root)?.is_some() {
        bail!(
            "{} already has a trusted root in {}; `notaryctl delete {}` forgets it first",
            args.gun,
            ctx.settings.trust_dir.display(),
            args.gun
        );
    }
    let mut remote = ctx.remote(&args.gun)?;
    if remote.get_meta("root", ROOT_LIMIT).await?.is_some() {
        bail!(
            "{} already exists on the notary server {}; `notaryctl list {}` trusts it, and its \
             owners can add you as a delegation",
            args.gun,
            remote.url(),
            args.gun
        );
    }
    let mut signer = ctx.signer(&args.gun).await?;
    let backend = args.backend.as_deref();
    let root_key = root_key(signer.client(), args.rootkey.as_deref(), backend).await?;
    let pem = match &args.rootcert {
        Some(path) => attach_cert(signer.client(), &root_key, &args.gun, path).await?,
        None => {
            issue_checked(signer.client(), &root_key, &args.gun, 0, None)
                .await?
                .certificate_pem
        }
    };
    let root_cert = PublicKey::from_certificate_pem(&pem)?;
    let timestamp = remote.get_key("timestamp").await?;
    let targets = generate(signer.client(), "targets", &args.gun, backend).await?;
    let snapshot = if args.server_managed_snapshot {
        remote.get_key("snapshot").await?
    } else {
        generate(signer.client(), "snapshot", &args.gun, backend).await?
    };
    let mut keys = BTreeMap::new();
    let mut roles = BTreeMap::new();
    for (role, key) in [
        ("root", &root_cert),
        ("targets", &targets),
        ("snapshot", &snapshot),
        ("timestamp", &timestamp),
    ] {
        keys.insert(key.key_id(), key.clone());
        roles.insert(
            role.to_string(),
            RootRole {
                keyids: vec![key.key_id()],
                threshold: 1,
            },
        );
    }
    let root = Root {
        kind: MetadataType::Root,
        consistent_snapshot: false,
        expires: expires_in_years(ROOT_YEARS),
        keys,
        roles,
        version: 1,
    };
    let mut envelope = SignedEnvelope::from_metadata(&root)?;
    signer
        .sign_with(
            &mut envelope,
            "root",
            &root_cert.key_id(),
            &root_cert,
            &root_key,
        )
        .await?;
    let bytes = envelope.to_bytes();
    // What we upload must pass the checks every client applies.
    validate_root(None, &bytes, &args.gun, &TrustPinning::default(), now())
        .context("the new root does not verify")?;
    dir.write_cached(&Role::Root, &bytes)?;
    eprintln!(
        "Root key {} (certificate {}), targets key {}, snapshot key {}{}",
        root_key.key_id,
        root_cert.key_id(),
        targets.key_id(),
        snapshot.key_id(),
        if args.server_managed_snapshot {
            " (server)"
        } else {
            ""
        }
    );
    if args.publish {
        publish_and_report(ctx, &args.gun, &mut remote, &mut signer).await?;
    }
    Ok(())
}

/// The named root key, else the first root key listed (in `backend`, if
/// given), else a new one.
async fn root_key(
    client: &mut Client,
    named: Option<&str>,
    backend: Option<&str>,
) -> Result<pb::Key> {
    if let Some(name) = named {
        return named_root_key(client, name).await;
    }
    let listed = client
        .list_keys(pb::ListKeysRequest {
            role: pb::KeyRole::Root as i32,
            backend: backend.unwrap_or_default().into(),
            ..Default::default()
        })
        .await
        .reply()?;
    if let Some(key) = listed.keys.into_iter().find(|k| k.keytype == "ecdsa") {
        eprintln!("Using root key {} from backend {}", key.key_id, key.backend);
        return Ok(key);
    }
    new_root_key(client, backend).await
}

/// A root key named by key ID or URI; it must be ECDSA for a root certificate.
pub(super) async fn named_root_key(client: &mut Client, name: &str) -> Result<pb::Key> {
    let key = key_named(client, name).await?;
    if key.keytype != "ecdsa" {
        bail!(
            "root key {name} is {}; notary root certificates need an ECDSA key",
            key.keytype
        );
    }
    Ok(key)
}

/// A new ECDSA root key on `backend` (default: the daemon's default).
pub(super) async fn new_root_key(client: &mut Client, backend: Option<&str>) -> Result<pb::Key> {
    let key = generate_with_pin(
        client,
        pb::GenerateKeyRequest {
            algorithm: pb::Algorithm::EcdsaP256 as i32,
            role: pb::KeyRole::Root as i32,
            backend: backend.unwrap_or_default().into(),
            ..Default::default()
        },
        None,
    )
    .await?;
    eprintln!(
        "Generated root key {} in backend {}",
        key.key_id, key.backend
    );
    Ok(key)
}

/// A new ECDSA key bound to `role` and `gun` on `backend` (default: the
/// daemon's default), as its public key object.
pub(super) async fn generate(
    client: &mut Client,
    role: &str,
    gun: &str,
    backend: Option<&str>,
) -> Result<PublicKey> {
    let (role_kind, delegation) = role_fields(Some(&Role::parse(role)?));
    let key = generate_with_pin(
        client,
        pb::GenerateKeyRequest {
            algorithm: pb::Algorithm::EcdsaP256 as i32,
            role: role_kind,
            delegation,
            gun: gun.into(),
            backend: backend.unwrap_or_default().into(),
            ..Default::default()
        },
        None,
    )
    .await?;
    public_key(&key)
}

/// Checks a given root certificate and stores it beside the key.
async fn attach_cert(
    client: &mut Client,
    key: &pb::Key,
    gun: &str,
    path: &PathBuf,
) -> Result<String> {
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --rootcert {}", path.display()))?;
    check_root_cert(&pem, gun, now())
        .map_err(|e| anyhow!("--rootcert {} is not usable for {gun}: {e}", path.display()))?;
    let cert = client
        .attach_certificate(pb::AttachCertificateRequest {
            key_id: key.key_id.clone(),
            certificate_pem: pem.clone(),
        })
        .await
        .reply()?;
    if cert.key_id != key.key_id {
        bail!(
            "--rootcert {} is not for root key {}",
            path.display(),
            key.key_id
        );
    }
    Ok(pem)
}
