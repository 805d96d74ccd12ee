//! `list`, `lookup`, `verify`: reading a collection verified from its
//! trusted root (offline from the verified cache when the server is down).

use super::Context;
use crate::ceremony::renewal;
use crate::collection::update::{update, Repo};
use crate::exit::NotTrusted;
use crate::output;
use crate::trust_dir::AtomicFile;
use anyhow::{Context as _, Result};
use clap::Args;
use notary_tuf::trust::path_allowed;
use notary_tuf::FileMeta;
use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Globally unique name of the collection, e.g. example.com/org/app.
    pub gun: String,
    /// Only targets of these roles.
    #[arg(short = 'r', long = "roles", value_name = "ROLE")]
    pub roles: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct LookupArgs {
    /// Globally unique name of the collection, e.g. example.com/org/app.
    pub gun: String,
    /// Target name.
    pub target: String,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// Globally unique name of the collection, e.g. example.com/org/app.
    pub gun: String,
    /// Target name.
    pub target: String,
    /// Read the content from FILE instead of stdin.
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Write the verified content to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Do not write the content anywhere; only the exit code tells.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// Every target a role may vouch for, the first role in walk order winning.
fn all_targets<'a>(repo: &'a Repo, only: &[String]) -> BTreeMap<&'a str, (&'a FileMeta, &'a str)> {
    let mut out = BTreeMap::new();
    for (role, _) in &repo.roles {
        if !only.is_empty() && !only.iter().any(|r| r == role.role.name()) {
            continue;
        }
        for (name, meta) in role.allowed() {
            out.entry(name.as_str()).or_insert((meta, role.role.name()));
        }
    }
    out
}

/// The target as the first role (in walk order) that may sign it lists it.
fn find<'a>(repo: &'a Repo, target: &str) -> Option<(&'a FileMeta, &'a str)> {
    repo.roles.iter().find_map(|(role, _)| {
        let meta = role.targets.targets.get(target)?;
        path_allowed(&role.restrictions, target).then_some((meta, role.role.name()))
    })
}

async fn fetch(ctx: &Context, gun: &str) -> Result<Repo> {
    let dir = ctx.gun_dir(gun)?;
    let mut remote = ctx.remote(gun)?;
    update(&mut remote, &dir, &ctx.settings.pinning, true).await
}

fn sha256_hex(meta: &FileMeta) -> String {
    meta.hashes
        .get("sha256")
        .map(hex::encode)
        .unwrap_or_default()
}

pub(crate) async fn list(ctx: &Context, args: &ListArgs) -> Result<()> {
    let repo = fetch(ctx, &args.gun).await?;
    renewal::warn(&args.gun, &repo.root.checked.metadata);
    let targets = all_targets(&repo, &args.roles);
    if targets.is_empty() {
        println!("\nNo targets present in this repository.\n");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = targets
        .into_iter()
        .map(|(name, (meta, role))| {
            vec![
                name.to_string(),
                sha256_hex(meta),
                meta.length.to_string(),
                role.to_string(),
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(&["NAME", "DIGEST", "SIZE (BYTES)", "ROLE"], &rows)
    );
    Ok(())
}

pub(crate) async fn lookup(ctx: &Context, args: &LookupArgs) -> Result<()> {
    let repo = fetch(ctx, &args.gun).await?;
    let (meta, _) = find(&repo, &args.target).ok_or_else(|| not_found(&args.gun, &args.target))?;
    println!(
        "{} sha256:{} {}",
        args.target,
        sha256_hex(meta),
        meta.length
    );
    Ok(())
}

fn not_found(gun: &str, target: &str) -> anyhow::Error {
    NotTrusted(format!("{gun} has no trusted target named {target:?}")).into()
}

pub(crate) async fn verify(ctx: &Context, args: &VerifyArgs) -> Result<()> {
    let (got, copy) = take_content(args)?;
    let repo = fetch(ctx, &args.gun).await?;
    let (meta, role) =
        find(&repo, &args.target).ok_or_else(|| not_found(&args.gun, &args.target))?;
    meta.check_against(&got).map_err(|e| {
        NotTrusted(format!(
            "the content does not match target {:?} of {} (signed by {role}): {e}",
            args.target, args.gun
        ))
    })?;
    match copy {
        None => {}
        Some(Copy::Output(file)) => file.commit()?,
        Some(Copy::Stdout(mut file)) => {
            file.rewind()?;
            std::io::copy(&mut file, &mut std::io::stdout().lock())
                .context("cannot write the content to stdout")?;
        }
    }
    Ok(())
}

/// Where verified content goes once it has been checked.
enum Copy {
    /// `-o FILE`, put in place only after the check.
    Output(AtomicFile),
    /// stdout, from an unnamed temp file.
    Stdout(std::fs::File),
}

/// Measures the content as it is read (a piece at a time, so any size
/// costs the same memory), keeping a copy only when it is to be written out.
fn take_content(args: &VerifyArgs) -> Result<(FileMeta, Option<Copy>)> {
    let (input, name): (Box<dyn Read>, String) = match &args.input {
        Some(path) => (
            Box::new(
                std::fs::File::open(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
            ),
            path.display().to_string(),
        ),
        None => (Box::new(std::io::stdin().lock()), "stdin".to_string()),
    };
    let cannot = || format!("cannot read the content from {name}");
    if args.quiet {
        return Ok((FileMeta::for_reader(input).with_context(cannot)?, None));
    }
    let mut copy = match &args.output {
        Some(path) => Copy::Output(AtomicFile::create(path)?),
        None => Copy::Stdout(tempfile::tempfile().context("cannot create a temp file")?),
    };
    let sink: &mut dyn Write = match &mut copy {
        Copy::Output(file) => file,
        Copy::Stdout(file) => file,
    };
    let meta = FileMeta::for_reader(Tee { input, sink }).with_context(cannot)?;
    Ok((meta, Some(copy)))
}

/// A reader that also writes what it reads to `sink`.
struct Tee<'a, R> {
    input: R,
    sink: &'a mut dyn Write,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.input.read(buf)?;
        self.sink.write_all(&buf[..n])?;
        Ok(n)
    }
}
