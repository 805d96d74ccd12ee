//! `delegation add|remove|list|purge` and `witness`. Delegation keys are
//! X.509 certificate files (as in notary) or keys already in notary-keyd
//! (`--key KEYID`).

use super::publish::publish_and_report;
use super::Context;
use crate::collection::update::update;
use crate::commands::sign::public_key;
use crate::errors::KeydError;
use crate::trust_dir::{Change, ChangeAction, ChangeKind, DelegationEdit};
use anyhow::{bail, Context as _, Result};
use clap::Args;
use keyd_proto::keyd as pb;
use notary_tuf::{PublicKey, Role};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    /// Globally unique name of the collection, e.g. example.com/org/app.
    pub gun: String,
    /// Delegation role, e.g. targets/releases (lowercase).
    pub role: String,
    /// PEM certificate files whose keys may sign the role.
    #[arg(value_name = "CERTFILE")]
    pub certs: Vec<PathBuf>,
    /// A key in notary-keyd (key ID or URI) that may sign the role; repeatable.
    #[arg(long = "key", value_name = "KEYID")]
    pub keys: Vec<String>,
    /// Path prefixes the role may sign; repeatable.
    #[arg(long = "paths", value_name = "PATH", value_delimiter = ',')]
    pub paths: Vec<String>,
    /// The role may sign any path.
    #[arg(long, conflicts_with = "paths")]
    pub all_paths: bool,
    /// Publish right away.
    #[arg(short = 'p', long)]
    pub publish: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RemoveArgs {
    /// Globally unique name of the collection, e.g. example.com/org/app.
    pub gun: String,
    /// Delegation role, e.g. targets/releases.
    pub role: String,
    /// Key IDs to remove from the role; with none (and no paths) the whole role goes.
    #[arg(value_name = "KEYID")]
    pub key_ids: Vec<String>,
    #[arg(long = "paths", value_name = "PATH", value_delimiter = ',')]
    pub paths: Vec<String>,
    /// Remove every path of the role.
    #[arg(long)]
    pub all_paths: bool,
    #[arg(short = 'p', long)]
    pub publish: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Globally unique name of the collection, e.g. example.com/org/app.
    pub gun: String,
}

#[derive(Debug, Args)]
pub(crate) struct PurgeArgs {
    /// Globally unique name of the collection, e.g. example.com/org/app.
    pub gun: String,
    /// Key ID to remove from every delegation; repeatable.
    #[arg(long = "key", value_name = "KEYID", required = true)]
    pub keys: Vec<String>,
    #[arg(short = 'p', long)]
    pub publish: bool,
}

#[derive(Debug, Args)]
pub(crate) struct WitnessArgs {
    /// Globally unique name of the collection, e.g. example.com/org/app.
    pub gun: String,
    /// Roles to re-sign unchanged at the next publish.
    #[arg(required = true, value_name = "ROLE")]
    pub roles: Vec<String>,
    #[arg(short = 'p', long)]
    pub publish: bool,
}

fn delegation_role(role: &str) -> Result<()> {
    match Role::parse(role)? {
        Role::Delegation(_) => Ok(()),
        other => bail!("{other} is not a delegation role; delegations are named targets/<name>"),
    }
}

fn change(
    action: ChangeAction,
    kind: ChangeKind,
    role: &str,
    edit: Option<DelegationEdit>,
) -> Change {
    Change {
        action,
        kind,
        role: role.to_string(),
        path: String::new(),
        meta: None,
        delegation: edit,
    }
}

pub(crate) async fn add(ctx: &Context, args: &AddArgs) -> Result<()> {
    delegation_role(&args.role)?;
    let mut keys = Vec::new();
    for path in &args.certs {
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        keys.push(
            PublicKey::from_certificate_pem(&pem)
                .with_context(|| format!("{} is not a usable certificate", path.display()))?,
        );
    }
    if !args.keys.is_empty() {
        let mut client = crate::connect::connect(&ctx.keyd_socket).await?;
        for name in &args.keys {
            let key = client
                .get_key(pb::GetKeyRequest { key: name.clone() })
                .await
                .map_err(KeydError::from)?
                .into_inner();
            keys.push(public_key(&key)?);
        }
    }
    let add_paths = if args.all_paths {
        vec![String::new()]
    } else {
        args.paths.clone()
    };
    if keys.is_empty() && add_paths.is_empty() {
        bail!("give at least one CERTFILE or --key, or paths (--paths/--all-paths) to add");
    }
    let ids: Vec<String> = keys.iter().map(PublicKey::key_id).collect();
    let edit = DelegationEdit {
        add_keys: keys,
        add_paths,
        ..Default::default()
    };
    let changes = [change(
        ChangeAction::Create,
        ChangeKind::Delegation,
        &args.role,
        Some(edit),
    )];
    ctx.gun_dir(&args.gun)?.changelist().add(&changes)?;
    println!(
        "Addition of delegation role {} with keys [{}] to repository \"{}\" staged for next publish.",
        args.role,
        ids.join(", "),
        args.gun
    );
    finish(ctx, &args.gun, args.publish).await
}

/// Publishes right away for `-p`.
async fn finish(ctx: &Context, gun: &str, publish: bool) -> Result<()> {
    if publish {
        let mut remote = ctx.remote(gun)?;
        let mut signer = ctx.signer(gun).await?;
        publish_and_report(ctx, gun, &mut remote, &mut signer).await?;
    }
    Ok(())
}

pub(crate) async fn remove(ctx: &Context, args: &RemoveArgs) -> Result<()> {
    delegation_role(&args.role)?;
    let edit = DelegationEdit {
        remove_keys: args.key_ids.clone(),
        remove_paths: args.paths.clone(),
        clear_all_paths: args.all_paths,
        ..Default::default()
    };
    let changes = [change(
        ChangeAction::Delete,
        ChangeKind::Delegation,
        &args.role,
        Some(edit),
    )];
    ctx.gun_dir(&args.gun)?.changelist().add(&changes)?;
    println!(
        "Removal of delegation role {} from repository \"{}\" staged for next publish.",
        args.role, args.gun
    );
    finish(ctx, &args.gun, args.publish).await
}

pub(crate) async fn purge(ctx: &Context, args: &PurgeArgs) -> Result<()> {
    let edit = DelegationEdit {
        remove_keys: args.keys.clone(),
        ..Default::default()
    };
    let changes = [change(
        ChangeAction::Delete,
        ChangeKind::Delegation,
        "targets/*",
        Some(edit),
    )];
    ctx.gun_dir(&args.gun)?.changelist().add(&changes)?;
    println!(
        "Removal of keys {} from every delegation of \"{}\" staged for next publish.",
        args.keys.join(", "),
        args.gun
    );
    finish(ctx, &args.gun, args.publish).await
}

pub(crate) async fn list(ctx: &Context, args: &ListArgs) -> Result<()> {
    let dir = ctx.gun_dir(&args.gun)?;
    let mut remote = ctx.remote(&args.gun)?;
    let repo = update(&mut remote, &dir, &ctx.settings.pinning, true).await?;
    let roles: Vec<_> = repo
        .roles
        .iter()
        .flat_map(|(r, _)| r.targets.delegations.roles.iter())
        .collect();
    if roles.is_empty() {
        println!("\nNo delegations present in this repository.\n");
        return Ok(());
    }
    println!("{:<24} {:<24} {:<66} THRESHOLD", "ROLE", "PATHS", "KEY IDS");
    println!("{:<24} {:<24} {:<66} ---------", "----", "-----", "-------");
    for role in roles {
        let paths = if role.paths.iter().any(String::is_empty) {
            "\"\" <all paths>".to_string()
        } else {
            role.paths.join(",")
        };
        let first = role.keyids.first().map(String::as_str).unwrap_or("");
        println!(
            "{:<24} {:<24} {:<66} {}",
            role.name, paths, first, role.threshold
        );
        for id in role.keyids.iter().skip(1) {
            println!("{:<24} {:<24} {id}", "", "");
        }
    }
    Ok(())
}

pub(crate) async fn witness(ctx: &Context, args: &WitnessArgs) -> Result<()> {
    let mut changes = Vec::new();
    for role in &args.roles {
        match Role::parse(role)? {
            Role::Targets | Role::Delegation(_) => {}
            other => bail!("only targets and delegation roles can be witnessed, not {other}"),
        }
        changes.push(change(
            ChangeAction::Create,
            ChangeKind::Witness,
            role,
            None,
        ));
    }
    ctx.gun_dir(&args.gun)?.changelist().add(&changes)?;
    println!(
        "Witnessing of {} staged for next publish.",
        args.roles.join(", ")
    );
    finish(ctx, &args.gun, args.publish).await
}
