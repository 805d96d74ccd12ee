//! `status`, `reset`, `delete`: the local staging area and cache.

use super::Context;
use crate::output;
use crate::trust_dir::{ChangeAction, ChangeKind};
use anyhow::{bail, Result};
use clap::Args;

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Globally unique name of the collection, e.g. example.com/org/app.
    pub gun: String,
}

#[derive(Debug, Args)]
pub(crate) struct ResetArgs {
    /// Globally unique name of the collection, e.g. example.com/org/app.
    pub gun: String,
    /// Drop every staged change.
    #[arg(long)]
    pub all: bool,
    /// Drop the change with this number (as `status` shows it); repeatable.
    #[arg(short = 'n', long = "number", value_name = "N")]
    pub numbers: Vec<usize>,
}

#[derive(Debug, Args)]
pub(crate) struct DeleteArgs {
    /// Globally unique name of the collection, e.g. example.com/org/app.
    pub gun: String,
    /// Also delete the collection's metadata on the server.
    #[arg(long)]
    pub remote: bool,
}

pub(crate) fn status(ctx: &Context, args: &StatusArgs) -> Result<()> {
    let staged = ctx.gun_dir(&args.gun)?.changelist().list()?;
    let changes: Vec<_> = staged.iter().flat_map(|s| s.changes.iter()).collect();
    if changes.is_empty() {
        println!("No unpublished changes for {}", args.gun);
        return Ok(());
    }
    println!("Unpublished changes for {}:\n", args.gun);
    let rows: Vec<Vec<String>> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let action = match c.action {
                ChangeAction::Create => "create",
                ChangeAction::Delete => "delete",
            };
            let kind = match c.kind {
                ChangeKind::Target => "target",
                ChangeKind::Delegation => "delegation",
                ChangeKind::Witness => "witness",
            };
            vec![
                i.to_string(),
                action.to_string(),
                c.role.clone(),
                kind.to_string(),
                c.path.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(&["#", "ACTION", "SCOPE", "TYPE", "PATH"], &rows)
    );
    Ok(())
}

pub(crate) fn reset(ctx: &Context, args: &ResetArgs) -> Result<()> {
    if !args.all && args.numbers.is_empty() {
        bail!("say what to reset: --all, or -n N for each change number `notaryctl status` shows");
    }
    let changelist = ctx.gun_dir(&args.gun)?.changelist();
    let staged = changelist.list()?;
    if args.all {
        let files: Vec<_> = staged.iter().map(|s| s.file.clone()).collect();
        changelist.remove(&files)?;
        return reset_done(&args.gun);
    }
    let total: usize = staged.iter().map(|s| s.changes.len()).sum();
    if let Some(bad) = args.numbers.iter().find(|n| **n >= total) {
        bail!(
            "there is no staged change number {bad} ({total} staged); see `notaryctl status {}`",
            args.gun
        );
    }
    let mut index = 0;
    for file in &staged {
        let keep: Vec<_> = file
            .changes
            .iter()
            .enumerate()
            .filter(|(i, _)| !args.numbers.contains(&(index + i)))
            .map(|(_, c)| c.clone())
            .collect();
        if keep.len() != file.changes.len() {
            changelist.rewrite(file, &keep)?;
        }
        index += file.changes.len();
    }
    reset_done(&args.gun)
}

fn reset_done(gun: &str) -> Result<()> {
    println!("Successfully reset specified changes for repository {gun}");
    Ok(())
}

pub(crate) async fn delete(ctx: &Context, args: &DeleteArgs) -> Result<()> {
    let dir = ctx.gun_dir(&args.gun)?;
    if args.remote {
        ctx.remote(&args.gun)?.delete().await?;
        println!("Deleted trust data of {} on the server", args.gun);
    }
    dir.remove_cache()?;
    let changelist = dir.changelist();
    let files: Vec<_> = changelist.list()?.iter().map(|s| s.file.clone()).collect();
    changelist.remove(&files)?;
    println!(
        "Deleted local trust data of {} (keys stay in notary-keyd)",
        args.gun
    );
    Ok(())
}
