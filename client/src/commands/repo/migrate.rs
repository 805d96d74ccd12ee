//! `migrate GUN`: a collection made by the stock notary CLI moves under
//! notary-keyd, without a new first use for anyone who trusts it.
//!
//! The stock client's root key files go to the daemon still encrypted,
//! with their passphrase; the daemon decrypts and holds them, marked
//! imported, for one signature: the new root, which lists a root key born
//! in notary-keyd and new targets and snapshot keys, signed by the old and
//! the new root keys as notary requires. After the publish the imported
//! copies are destroyed. The stock trust dir is only read.
//!
//! A second run is safe at every point: an import of a key the daemon
//! holds returns it, and once the server's root no longer lists the stock
//! root key the run only destroys what is left of the imported copies.

use super::init::generate;
use super::rotate::{publish_next_root, replace_role_key, root_cert_key, sign_next_root};
use super::Context;
use crate::collection::signer::KeydSigner;
use crate::collection::update::{cached_root, update};
use crate::errors::KeydError;
use anyhow::{anyhow, bail, Context as _, Result};
use clap::Args;
use keyd_proto::keyd as pb;
use keyd_proto::Reason;
use notary_tuf::{PublicKey, Role, Root, SignedEnvelope};
use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, SecretString};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// The stock client's variable for its root key passphrase.
const ROOT_PASSPHRASE_ENV: &str = "NOTARY_ROOT_PASSPHRASE";

#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    /// Globally unique name of the collection, e.g. example.com/org/app.
    pub gun: String,
    /// The stock notary client's trust dir: its `private/` key files and
    /// the collection's trusted `tuf/<GUN>/metadata/root.json` (default:
    /// the trust dir, -d). Only read: once the migration is done, delete
    /// the collection's key files from its `private/` yourself.
    #[arg(long = "from", value_name = "DIR")]
    pub from: Option<PathBuf>,
    /// notary-keyd backend for the new root key; default: the daemon's
    /// `default_backend`.
    #[arg(long, value_name = "NAME")]
    pub root_backend: Option<String>,
    /// notary-keyd backend for the new targets key; default: the daemon's
    /// `default_backend`.
    #[arg(long, value_name = "NAME")]
    pub targets_backend: Option<String>,
    /// notary-keyd backend for the new snapshot key, when the stock client
    /// held the snapshot key; default: the daemon's `default_backend`.
    #[arg(long, value_name = "NAME")]
    pub snapshot_backend: Option<String>,
}

/// One root key of the stock collection and its key file.
struct StockRootKey {
    /// The root certificate's key, as root.json lists it.
    listed: PublicKey,
    /// The bare key's ID, the key file's name.
    key_id: String,
    file: PathBuf,
}

/// What the stock trust dir says about the collection.
struct StockCollection {
    root_bytes: Vec<u8>,
    root_keys: Vec<StockRootKey>,
    /// Key files of root keys the stock root lists that are not there.
    missing: Vec<String>,
    /// How many root keys must sign.
    threshold: usize,
    /// The stock client has the snapshot key file, so it signed snapshots.
    holds_snapshot: bool,
}

impl StockCollection {
    fn read(from: &Path, gun: &str) -> Result<StockCollection> {
        let root_path = from
            .join("tuf")
            .join(gun)
            .join("metadata")
            .join("root.json");
        let root_bytes = match std::fs::read(&root_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "{gun} is not in the stock trust dir {}: no {} (run the stock `notary list \
                 {gun}` there first, or give its trust dir with --from)",
                from.display(),
                root_path.display()
            ),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", root_path.display()))
            }
        };
        let not_root = || format!("{} is not a notary root", root_path.display());
        let root: Root = SignedEnvelope::parse(&root_bytes)
            .with_context(not_root)?
            .decode()
            .with_context(not_root)?;
        let private = from.join("private");
        let role = root
            .role("root")
            .ok_or_else(|| anyhow!("{} defines no root role", root_path.display()))?;
        let mut root_keys = Vec::new();
        let mut missing = Vec::new();
        for id in &role.keyids {
            let Some(listed) = root.keys.get(id) else {
                continue;
            };
            let key_id = listed.bare_key()?.key_id();
            let file = private.join(format!("{key_id}.key"));
            if file.is_file() {
                root_keys.push(StockRootKey {
                    listed: listed.clone(),
                    key_id,
                    file,
                });
            } else {
                missing.push(file.display().to_string());
            }
        }
        let threshold = usize::try_from(role.threshold).unwrap_or(usize::MAX).max(1);
        // Only a key ID (64 hex) names a file: root.json is data, not a path.
        let holds_snapshot = root.role("snapshot").is_some_and(|r| {
            r.keyids.iter().any(|id| {
                id.len() == 64
                    && id.bytes().all(|b| b.is_ascii_hexdigit())
                    && private.join(format!("{id}.key")).is_file()
            })
        });
        Ok(StockCollection {
            root_bytes,
            root_keys,
            missing,
            threshold,
            holds_snapshot,
        })
    }
}

/// True when every root key of `root` is a notary-keyd key and none is a
/// stock one: the migration was published (by this or an earlier run).
async fn migrated(signer: &mut KeydSigner, stock: &StockCollection, root: &Root) -> Result<bool> {
    let Some(role) = root.role("root") else {
        return Ok(false);
    };
    for id in &role.keyids {
        let Some(listed) = root.keys.get(id) else {
            return Ok(false);
        };
        let stock_key = stock.root_keys.iter().any(|k| k.listed.key_id() == *id);
        if stock_key || signer.find(listed).await?.is_none() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The stock root passphrase: the stock client's variable, else a prompt.
fn root_passphrase() -> Result<SecretString> {
    if let Some(pass) = std::env::var(ROOT_PASSPHRASE_ENV)
        .ok()
        .filter(|p| !p.is_empty())
    {
        return Ok(SecretString::from(pass));
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "the stock root key's passphrase is needed: set {ROOT_PASSPHRASE_ENV} or run \
             notaryctl migrate on a terminal"
        );
    }
    let mut typed = rpassword::prompt_password("Passphrase of the stock notary root key: ")
        .context("cannot read the passphrase from the terminal")?;
    let pass = SecretString::from(typed.trim_end_matches(['\r', '\n']).to_string());
    typed.zeroize();
    Ok(pass)
}

async fn import(
    signer: &mut KeydSigner,
    gun: &str,
    key: &StockRootKey,
    passphrase: &SecretString,
) -> Result<()> {
    let key_file =
        std::fs::read(&key.file).with_context(|| format!("cannot read {}", key.file.display()))?;
    let certificate_pem = String::from_utf8(key.listed.public_bytes().to_vec())
        .context("root.json lists a certificate that is not text")?;
    signer
        .client()
        .import_for_migration(pb::ImportForMigrationRequest {
            gun: gun.into(),
            key_file,
            passphrase: passphrase.expose_secret().to_string(),
            certificate_pem,
        })
        .await
        .map_err(|status| {
            anyhow::Error::from(KeydError::from(status))
                .context(format!("importing {}", key.file.display()))
        })?;
    println!(
        "Imported stock root key {} into notary-keyd for this migration",
        key.key_id
    );
    Ok(())
}

/// Destroys the daemon's imported copies of the stock root keys.
async fn destroy_imported(signer: &mut KeydSigner, stock: &StockCollection) -> Result<()> {
    for key in &stock.root_keys {
        let request = pb::DeleteKeyRequest {
            key_id: key.key_id.clone(),
            confirm_key_id: key.key_id.clone(),
        };
        match signer.client().delete_key(request).await {
            Ok(_) => println!(
                "Destroyed notary-keyd's imported copy of root key {}",
                key.key_id
            ),
            Err(status) if Reason::of(&status) == Some(Reason::KeyNotFound) => {}
            Err(status) => return Err(KeydError::from(status).into()),
        }
    }
    Ok(())
}

pub(crate) async fn run(ctx: &Context, args: &MigrateArgs) -> Result<()> {
    let gun = args.gun.as_str();
    let from = args.from.as_ref().unwrap_or(&ctx.settings.trust_dir);
    let stock = StockCollection::read(from, gun)?;
    let dir = ctx.gun_dir(gun)?;
    // The root the stock client trusts becomes notaryctl's trusted root,
    // so no one trusts anything on first use.
    if cached_root(&dir)?.is_none() {
        dir.write_cached(&Role::Root, &stock.root_bytes)?;
    }
    let mut remote = ctx.remote(gun)?;
    let mut signer = ctx.signer(gun).await?;
    let repo = update(&mut remote, &dir, &ctx.settings.pinning, false).await?;
    let old_root = repo.root.checked.metadata;
    if migrated(&mut signer, &stock, &old_root).await? {
        println!(
            "{gun} is under notary-keyd already: notary-keyd holds the keys of its root \
             (version {})",
            old_root.version
        );
        return destroy_imported(&mut signer, &stock).await;
    }

    if stock.root_keys.len() < stock.threshold {
        bail!(
            "the stock trust dir lacks the root key file(s) of {gun}: {} not found; nothing \
             was imported",
            stock.missing.join(", ")
        );
    }
    let passphrase = root_passphrase()?;
    for key in &stock.root_keys {
        import(&mut signer, gun, key, &passphrase).await?;
    }
    drop(passphrase);

    let (new_root_key, new_root_bare_id) =
        root_cert_key(signer.client(), gun, None, args.root_backend.as_deref()).await?;
    let mut root = replace_role_key(&old_root, "root", &new_root_key);
    let targets = generate(
        signer.client(),
        "targets",
        gun,
        args.targets_backend.as_deref(),
    )
    .await?;
    root = replace_role_key(&root, "targets", &targets);
    let snapshot = match stock.holds_snapshot {
        true => {
            let key = generate(
                signer.client(),
                "snapshot",
                gun,
                args.snapshot_backend.as_deref(),
            )
            .await?;
            root = replace_role_key(&root, "snapshot", &key);
            Some(key)
        }
        false => None,
    };
    let next = sign_next_root(&mut signer, root, &old_root, &[]).await?;
    publish_next_root(ctx, &mut remote, &dir, &mut signer, next, true).await?;
    println!(
        "Published root version {} of {gun}, signed by the stock and the new root keys",
        old_root.version + 1
    );
    println!(
        "  root key:     {new_root_bare_id} (certificate {})",
        new_root_key.key_id()
    );
    println!("  targets key:  {}", targets.key_id());
    match &snapshot {
        Some(key) => println!("  snapshot key: {}", key.key_id()),
        None => println!("  snapshot key: held by the server, unchanged"),
    }
    destroy_imported(&mut signer, &stock).await?;
    println!(
        "The stock key files in {} are no longer used; delete them when you are ready",
        from.join("private").display()
    );
    Ok(())
}
