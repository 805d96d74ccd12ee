//! `ceremony plan GUN --out BUNDLE` (online): gathers what the offline
//! steps cannot fetch (the server's timestamp and snapshot keys, the
//! targets key in notary-keyd, or the trusted root a rotation replaces),
//! writes the plan and starts the transcript.

use super::bundle::{attestation_root_file, Bundle, PLAN, PREVIOUS_ROOT, REHEARSAL, TRANSCRIPT};
use super::clock;
use super::digest::Digest;
use super::enroll::print_head;
use super::keyd::Keyd;
use super::plan::{
    FileRef, HeldBy, Holder, Holding, Kind, OnlineKeys, Plan, PreviousRoot, Retired, RoleKey,
};
use super::transcript::{Action, Step, Transcript};
use crate::collection::update::update;
use crate::commands::repo::Context;
use crate::remote::ROOT_LIMIT;
use anyhow::{anyhow, bail, Context as _, Result};
use keyd_proto::convert::role_of;
use notary_tuf::metadata::{format_expires, parse_expires, Role};
use notary_tuf::{PublicKey, Root};
use std::path::PathBuf;

/// Days of certificate validity beyond the root's expiry, so a holder
/// who enrolls weeks after the plan still has a certificate that outlives
/// the root.
const CERTIFICATE_MARGIN_DAYS: i64 = 31;

/// What the orchestrator asks for.
#[derive(Debug, clap::Args)]
pub(crate) struct PlanArgs {
    /// Globally unique name of the collection, e.g. example.com/org/app.
    pub gun: String,
    /// Directory of the new bundle (created; must be empty if it exists).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// A holder and the device their root key is made on:
    /// NAME=yubikey:serial=N[;slot=9c], NAME=pkcs11:token=LABEL,
    /// NAME=pkcs11:serial=SERIAL, NAME=tpm:ak=SHA256 (the TPM whose
    /// attestation key `notaryctl key attest` fingerprints so) or
    /// NAME=backend:BACKEND (a notary-keyd backend by name, e.g. the
    /// software keystore in a rehearsal). In a rotation, NAME=keep:KEYID
    /// keeps a key of the current root. Repeat for each holder.
    #[arg(long = "holder", value_name = "NAME=DEVICE", required = true)]
    pub holders: Vec<String>,
    /// Rotation only: a key of the current root that the new root drops,
    /// and whose holder it was (NAME=KEYID). Every current root key must be
    /// kept or retired.
    #[arg(long = "retire", value_name = "NAME=KEYID")]
    pub retire: Vec<String>,
    /// Signatures the new root needs (M of the N holders).
    #[arg(long, value_name = "M")]
    pub threshold: u32,
    /// When the new root expires (RFC 3339, e.g. 2036-01-01T00:00:00Z)
    /// [default: --root-days from now].
    #[arg(long, value_name = "TIME", conflicts_with = "root_days")]
    pub root_expires: Option<String>,
    /// Days until the new root expires.
    #[arg(long, value_name = "DAYS", default_value_t = 3650)]
    pub root_days: u32,
    /// Validity of the holders' root certificates in days [default: until
    /// the root expires, plus a month].
    #[arg(long, value_name = "DAYS")]
    pub certificate_days: Option<u32>,
    /// New collection: the targets key, a notary-keyd key ID on this
    /// machine (publish signs targets with it).
    #[arg(long, value_name = "KEYID")]
    pub targets_key: Option<String>,
    /// New collection: a notary-keyd key ID for the snapshot [default: the
    /// server's snapshot key].
    #[arg(long, value_name = "KEYID")]
    pub snapshot_key: Option<String>,
    /// Refuse every holder whose device cannot attest its key.
    #[arg(long)]
    pub require_attestation: bool,
    /// A PEM file of attestation roots to accept (e.g. Yubico's PIV root
    /// CA); copied into the bundle. Repeatable.
    #[arg(long = "attestation-root", value_name = "PEMFILE")]
    pub attestation_roots: Vec<PathBuf>,
    /// Stamp the bundle REHEARSAL: the whole flow works, publish refuses it.
    #[arg(long)]
    pub rehearsal: bool,
    /// Rotate the root of an existing collection this machine trusts.
    #[arg(long)]
    pub rotate: bool,
}

pub(crate) async fn prepare(ctx: &Context, req: &PlanArgs) -> Result<()> {
    let (now, created) = clock::now();
    let root_expires = match &req.root_expires {
        Some(text) => {
            parse_expires(text)?;
            text.clone()
        }
        None => format_expires(now + i64::from(req.root_days) * 86_400, 0),
    };
    let certificate_days = match req.certificate_days {
        Some(days) => days,
        None => {
            let until_expiry = (parse_expires(&root_expires)? - now).max(0) / 86_400 + 1;
            u32::try_from(until_expiry + CERTIFICATE_MARGIN_DAYS)
                .map_err(|_| anyhow!("root_expires {root_expires} is too far away"))?
        }
    };
    let holders = req
        .holders
        .iter()
        .map(|spec| parse_holder(spec))
        .collect::<Result<Vec<_>>>()?;
    let retired = req
        .retire
        .iter()
        .map(|spec| {
            let (name, key) = split_pair(spec, "--retire")?;
            Ok(Retired {
                name: name.into(),
                key: key.into(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut remote = ctx.remote(&req.gun)?;
    let (kind, previous) = if req.rotate {
        if req.targets_key.is_some() || req.snapshot_key.is_some() {
            bail!("a rotation keeps the targets, snapshot and timestamp keys of the root it replaces: leave out --targets-key and --snapshot-key");
        }
        let dir = ctx.gun_dir(&req.gun)?;
        if dir.read_cached(&Role::Root)?.is_none() {
            bail!(
                "this machine does not trust a root of {} yet: a rotation starts from the root \
                 you trust (`notaryctl list {}` trusts and caches it)",
                req.gun,
                req.gun
            );
        }
        let repo = update(&mut remote, &dir, &ctx.settings.pinning, false)
            .await
            .context("bringing the trusted root up to date")?;
        let bytes = repo.root.bytes;
        let root = repo.root.checked.metadata;
        let previous = PreviousRoot {
            file: PREVIOUS_ROOT.into(),
            sha256: Digest::of(&bytes),
            version: root.version,
        };
        (Kind::Rotation(previous), Some((root, bytes)))
    } else {
        if remote.get_meta("root", ROOT_LIMIT).await?.is_some() {
            bail!(
                "{} exists on the notary server already; rotate its root with --rotate",
                req.gun
            );
        }
        (
            Kind::NewCollection(online_keys(ctx, req, &mut remote).await?),
            None,
        )
    };
    let version = previous.as_ref().map_or(1, |(root, _)| root.version + 1);
    let mut holders = holders;
    let mut retired = retired;
    if let Some((root, _)) = &previous {
        for h in &mut holders {
            if let Holding::Keep(id) = &mut h.holding {
                *id = listed_id(root, id);
            }
        }
        for r in &mut retired {
            r.key = listed_id(root, &r.key);
        }
    }
    let bundle = Bundle::create(&req.out)?;
    let mut attestation_roots = Vec::new();
    for (i, path) in req.attestation_roots.iter().enumerate() {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read --attestation-root {}", path.display()))?;
        let certs = notary_tuf::pem::parse_blocks(&bytes)
            .map(|b| b.iter().filter(|b| b.label == "CERTIFICATE").count())
            .unwrap_or(0);
        if certs == 0 {
            bail!(
                "--attestation-root {} holds no PEM certificate",
                path.display()
            );
        }
        let base = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "root.pem".into());
        let file = attestation_root_file(i + 1, &sanitize(&base));
        bundle.write(&file, &bytes)?;
        attestation_roots.push(FileRef {
            file,
            sha256: Digest::of(&bytes),
        });
    }
    let plan = Plan {
        gun: req.gun.clone(),
        rehearsal: req.rehearsal,
        version,
        threshold: req.threshold,
        root_expires,
        certificate_days,
        require_attestation: req.require_attestation,
        created,
        holders,
        retired,
        attestation_roots,
        kind,
    };
    let text = plan.to_toml()?;
    // What is written must read back as exactly this plan, checks and all.
    let plan = Plan::parse(&text)?;
    if plan.require_attestation && plan.attestation_roots.is_empty() {
        bail!("--require-attestation needs at least one --attestation-root to check against");
    }
    if let Some((root, bytes)) = &previous {
        plan.check_previous_root(root, now)?;
        bundle.write(PREVIOUS_ROOT, bytes)?;
    }
    bundle.write(PLAN, text.as_bytes())?;
    if plan.rehearsal {
        bundle.write(
            REHEARSAL,
            b"This bundle is a rehearsal: its root must never be published, and\n\
              `notaryctl ceremony publish` refuses it.\n",
        )?;
    }
    let digest = Digest::of(text.as_bytes());
    let mut transcript = Transcript::default();
    transcript.append(
        "orchestrator",
        Step {
            action: Action::PlanAccepted,
            inputs: digest,
            outputs: digest,
            detail: format!(
                "{}; holders {}",
                plan.summary(),
                plan.holders
                    .iter()
                    .map(|h| h.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        plan.created.clone(),
    );
    bundle.write(TRANSCRIPT, &transcript.to_bytes())?;
    for warning in plan.warnings() {
        eprintln!("warning: {warning}");
    }
    println!("{text}");
    println!(
        "Wrote the plan to {}. Its SHA-256, for the witness to read aloud: {digest}\n{}",
        bundle.dir().display(),
        digest.aloud()
    );
    print_head(&transcript.head());
    Ok(())
}

/// The targets key (notary-keyd), the snapshot key (notary-keyd or the
/// server) and the server's timestamp key of a new collection.
async fn online_keys(
    ctx: &Context,
    req: &PlanArgs,
    remote: &mut crate::remote::Remote,
) -> Result<OnlineKeys> {
    let Some(targets) = &req.targets_key else {
        bail!("a new collection needs --targets-key: a notary-keyd key (`notaryctl key generate --role targets --gun {}`)", req.gun);
    };
    let mut keyd = Keyd::connect(&ctx.keyd_socket).await?;
    let targets = online_key(&mut keyd, targets, Role::Targets, &req.gun).await?;
    let snapshot = match &req.snapshot_key {
        Some(id) => online_key(&mut keyd, id, Role::Snapshot, &req.gun).await?,
        None => RoleKey::new(&remote.get_key("snapshot").await?, HeldBy::Server),
    };
    let timestamp = RoleKey::new(&remote.get_key("timestamp").await?, HeldBy::Server);
    Ok(OnlineKeys {
        targets,
        snapshot,
        timestamp,
    })
}

async fn online_key(keyd: &mut Keyd, name: &str, role: Role, gun: &str) -> Result<RoleKey> {
    let (key, public): (_, PublicKey) = keyd.named_key(name).await?;
    let bound = role_of(key.role, &key.delegation).map_err(|e| {
        anyhow!(
            "notary-keyd sent key {} with a role it cannot mean: {e}",
            key.key_id
        )
    })?;
    if let Some(bound) = bound.filter(|b| *b != role) {
        bail!("key {} is bound to role {bound}, not {role}", key.key_id);
    }
    if !key.gun.is_empty() && key.gun != gun {
        bail!("key {} is bound to GUN {}, not {gun}", key.key_id, key.gun);
    }
    Ok(RoleKey::new(&public, HeldBy::NotaryKeyd))
}

fn split_pair<'a>(spec: &'a str, flag: &str) -> Result<(&'a str, &'a str)> {
    spec.split_once('=')
        .filter(|(name, value)| !name.is_empty() && !value.is_empty())
        .ok_or_else(|| anyhow!("{flag} {spec:?}: expected NAME=VALUE"))
}

fn parse_holder(spec: &str) -> Result<Holder> {
    let (name, value) = split_pair(spec, "--holder")?;
    let holding = match value.strip_prefix("keep:") {
        Some(id) => Holding::Keep(id.to_string()),
        None => Holding::Enroll(value.parse().map_err(|e| anyhow!("--holder {name}: {e}"))?),
    };
    Ok(Holder {
        name: name.to_string(),
        holding,
    })
}

/// A file name safe inside the bundle.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_string()
}

/// The previous root's listed ID for a key named by its listed or bare ID.
fn listed_id(previous: &Root, id: &str) -> String {
    let role = previous
        .role("root")
        .map(|r| r.keyids.as_slice())
        .unwrap_or_default();
    role.iter()
        .find(|listed| {
            *listed == id
                || previous
                    .keys
                    .get(*listed)
                    .and_then(|k| k.bare_key().ok())
                    .is_some_and(|b| b.key_id() == id)
        })
        .cloned()
        .unwrap_or_else(|| id.to_string())
}
