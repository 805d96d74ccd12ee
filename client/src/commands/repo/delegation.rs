//! `delegation add|remove|list|purge` and `witness`. Delegation keys are
//! X.509 certificate files (as in notary) or keys already in notary-keyd
//! (`--key KEYID`).

use super::publish::publish_if;
use super::Context;
use crate::collection::update::update;
use crate::commands::key_named;
use crate::commands::sign::public_key;
use crate::output;
use crate::trust_dir::{Change, ChangeAction, ChangeKind, DelegationEdit};
use anyhow::{bail, Context as _, Result};
use clap::Args;
use keyd_proto::convert::role_name;
use keyd_proto::keyd as pb;
use notary_tuf::{PublicKey, Role};
use std::io::IsTerminal;
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
    /// Publish right away (also what was staged before).
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
    /// A key ID to remove from the role, as `delegation add --key` names
    /// it; repeatable, and the same as a KEYID argument.
    #[arg(long = "key", value_name = "KEYID")]
    pub keys: Vec<String>,
    /// Path prefixes to remove from the role; repeatable or comma-separated.
    #[arg(long = "paths", value_name = "PATH", value_delimiter = ',')]
    pub paths: Vec<String>,
    /// Remove every path of the role.
    #[arg(long)]
    pub all_paths: bool,
    /// Remove the whole role without asking (when no key or path is named).
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Publish right away (also what was staged before).
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
    /// Publish right away (also what was staged before).
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
    /// Publish right away (also what was staged before).
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
            let key = key_named(&mut client, name).await?;
            check_binding(&key, &args.gun, &args.role)?;
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
    publish_if(ctx, &args.gun, args.publish).await
}

/// A key bound to another role or GUN could never sign `role` of `gun`:
/// notary-keyd would refuse every signature the delegation needs.
fn check_binding(key: &pb::Key, gun: &str, role: &str) -> Result<()> {
    let bound_role = role_name(key.role, &key.delegation);
    let wrong_role = !bound_role.is_empty() && bound_role != role;
    let wrong_gun = !key.gun.is_empty() && key.gun != gun;
    if wrong_role || wrong_gun {
        let binding = match (bound_role.as_str(), key.gun.as_str()) {
            (r, "") => format!("role {r:?}"),
            ("", g) => format!("GUN {g:?}"),
            (r, g) => format!("role {r:?} of GUN {g:?}"),
        };
        bail!(
            "key {} is bound to {binding}, so notary-keyd would never let it sign {role} of \
             {gun}; use a key made for the delegation: notaryctl key generate --role {role} \
             --gun {gun}",
            key.key_id
        );
    }
    Ok(())
}

pub(crate) async fn remove(ctx: &Context, args: &RemoveArgs) -> Result<()> {
    delegation_role(&args.role)?;
    let keys: Vec<String> = args.key_ids.iter().chain(&args.keys).cloned().collect();
    let whole = keys.is_empty() && args.paths.is_empty() && !args.all_paths;
    if whole && !args.yes {
        confirm_whole_removal(&args.gun, &args.role)?;
    }
    let edit = DelegationEdit {
        remove_keys: keys.clone(),
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
    let what = if whole {
        "(all its keys and paths)".to_string()
    } else {
        let mut parts = Vec::new();
        if !keys.is_empty() {
            parts.push(format!("keys [{}]", keys.join(", ")));
        }
        if args.all_paths {
            parts.push("all paths".to_string());
        } else if !args.paths.is_empty() {
            parts.push(format!("paths [{}]", args.paths.join(", ")));
        }
        format!("with {}", parts.join(" and "))
    };
    println!(
        "Removal of delegation role {} {what} from repository \"{}\" staged for next publish.",
        args.role, args.gun
    );
    publish_if(ctx, &args.gun, args.publish).await
}

/// Removing a whole role asks first, as notary does; without a terminal
/// to ask on, only -y says yes.
fn confirm_whole_removal(gun: &str, role: &str) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "not removing delegation role {role} of {gun}: removing a whole role (all its keys \
             and paths) needs a yes; re-run with -y, or name the keys (--key) or paths \
             (--paths) to remove"
        );
    }
    eprint!("Remove all data (keys and paths) of delegation {role} of {gun}? (yes/no) ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => bail!("not removing delegation role {role} of {gun}: you did not say yes"),
    }
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
    publish_if(ctx, &args.gun, args.publish).await
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
    let mut rows = Vec::new();
    for role in roles {
        let paths = if role.paths.iter().any(String::is_empty) {
            "\"\" <all paths>".to_string()
        } else {
            role.paths.join(",")
        };
        let first = role.keyids.first().cloned().unwrap_or_default();
        rows.push(vec![
            role.name.clone(),
            paths,
            first,
            role.threshold.to_string(),
        ]);
        for id in role.keyids.iter().skip(1) {
            rows.push(vec![
                String::new(),
                String::new(),
                id.clone(),
                String::new(),
            ]);
        }
    }
    print!(
        "{}",
        output::table(&["ROLE", "PATHS", "KEY IDS", "THRESHOLD"], &rows)
    );
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
    publish_if(ctx, &args.gun, args.publish).await
}
