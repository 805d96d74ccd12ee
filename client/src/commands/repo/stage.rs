//! `add`, `addhash`, `remove`: staging target changes locally (no server,
//! no keys), as `notary add` does; `publish` sends them.

use super::publish::publish_if;
use super::Context;
use crate::collection::apply::parent_of;
use crate::meter::Meter;
use crate::trust_dir::{Change, ChangeAction, ChangeKind, GunDir};
use anyhow::{bail, Context as _, Result};
use clap::Args;
use notary_tuf::{FileMeta, Role, SignedEnvelope, Targets};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    /// Globally unique name of the collection, e.g. example.com/org/app.
    pub gun: String,
    /// Target name.
    #[arg(required_unless_present = "from_file")]
    pub target: Option<String>,
    /// File whose length and sha256/sha512 are recorded.
    #[arg(required_unless_present = "from_file")]
    pub file: Option<PathBuf>,
    /// Delegation role(s) to add the target to (default: targets).
    #[arg(short = 'r', long = "roles", value_name = "ROLE")]
    pub roles: Vec<String>,
    /// JSON file whose content becomes the target's `custom` field.
    #[arg(long, value_name = "FILE")]
    pub custom: Option<PathBuf>,
    /// Stage many targets in one run: each line `TARGET FILE` (separated by
    /// whitespace; `#` starts a comment). All are staged or none.
    #[arg(long, value_name = "MANIFEST", conflicts_with_all = ["target", "file", "custom"])]
    pub from_file: Option<PathBuf>,
    /// Publish right away (also what was staged before), as `publish` does.
    #[arg(short = 'p', long)]
    pub publish: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AddHashArgs {
    /// Globally unique name of the collection, e.g. example.com/org/app.
    pub gun: String,
    /// Target name.
    pub target: String,
    /// Length of the target in bytes.
    pub size: u64,
    /// Hex SHA-256 of the target.
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,
    /// Hex SHA-512 of the target.
    #[arg(long, value_name = "HEX")]
    pub sha512: Option<String>,
    /// Delegation role(s) to add the target to (default: targets).
    #[arg(short = 'r', long = "roles", value_name = "ROLE")]
    pub roles: Vec<String>,
    /// JSON file whose content becomes the target's `custom` field.
    #[arg(long, value_name = "FILE")]
    pub custom: Option<PathBuf>,
    /// Publish right away (also what was staged before), as `publish` does.
    #[arg(short = 'p', long)]
    pub publish: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RemoveArgs {
    /// Globally unique name of the collection, e.g. example.com/org/app.
    pub gun: String,
    /// Target name.
    pub target: String,
    /// Delegation role(s) to remove the target from (default: targets).
    #[arg(short = 'r', long = "roles", value_name = "ROLE")]
    pub roles: Vec<String>,
    /// Publish right away (also what was staged before), as `publish` does.
    #[arg(short = 'p', long)]
    pub publish: bool,
}

pub(crate) async fn add(ctx: &Context, args: &AddArgs) -> Result<()> {
    let roles = roles(&args.roles)?;
    let mut changes = Vec::new();
    let entries = match (&args.from_file, &args.target, &args.file) {
        (Some(manifest), _, _) => read_manifest(manifest)?,
        (None, Some(target), Some(file)) => vec![(target.clone(), file.clone())],
        _ => bail!("give TARGET and FILE, or --from-file MANIFEST"),
    };
    let custom = read_custom(args.custom.as_deref())?;
    let metas = match entries.as_slice() {
        [(_, file)] => vec![measure(file, true)?],
        _ => measure_all(&entries)?,
    };
    for ((target, _), mut meta) in entries.iter().zip(metas) {
        meta.custom = custom.clone();
        push_creates(&mut changes, &roles, target, meta);
    }
    stage(ctx, &args.gun, &changes)?;
    match entries.as_slice() {
        [(target, _)] => println!(
            "Addition of target \"{target}\" to repository \"{}\" staged for next publish.",
            args.gun
        ),
        _ => println!(
            "Addition of {} targets to repository \"{}\" staged for next publish.",
            entries.len(),
            args.gun
        ),
    }
    publish_if(ctx, &args.gun, args.publish).await
}

/// Length and hashes of a file, read in pieces (constant memory); with
/// `show`, a progress line on a terminal while it is read.
fn measure(file: &Path, show: bool) -> Result<FileMeta> {
    let cannot = || format!("cannot read {}", file.display());
    let handle = std::fs::File::open(file).with_context(cannot)?;
    let size = handle.metadata().with_context(cannot)?.len();
    let meta = if show {
        let meter = Meter::bytes(size, format!("Hashing {}", file.display()));
        FileMeta::for_reader(meter.reader(handle))
    } else {
        FileMeta::for_reader(handle)
    };
    meta.with_context(cannot)
}

/// The files of a manifest, hashed on every core (each file read in
/// pieces), in the manifest's order; the first file that cannot be read
/// fails the whole batch, so nothing is staged.
fn measure_all(entries: &[(String, PathBuf)]) -> Result<Vec<FileMeta>> {
    let meter = Meter::items(entries.len() as u64, "Hashing targets".into());
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(entries.len());
    let mut measured: Vec<(usize, Result<FileMeta>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((_, file)) = entries.get(i) else {
                            return done;
                        };
                        done.push((i, measure(file, false)));
                        meter.advance(1);
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    if measured.len() != entries.len() {
        bail!("a hashing thread failed");
    }
    measured.sort_by_key(|(i, _)| *i);
    measured.into_iter().map(|(_, meta)| meta).collect()
}

pub(crate) async fn add_hash(ctx: &Context, args: &AddHashArgs) -> Result<()> {
    let roles = roles(&args.roles)?;
    let mut hashes = BTreeMap::new();
    for (name, hex_text, len) in [("sha256", &args.sha256, 32), ("sha512", &args.sha512, 64)] {
        if let Some(text) = hex_text {
            let digest = hex::decode(text)
                .ok()
                .filter(|d| d.len() == len)
                .with_context(|| format!("--{name} must be {} hex digits", len * 2))?;
            hashes.insert(name.to_string(), digest);
        }
    }
    if hashes.is_empty() {
        bail!("addhash needs at least one of --sha256 and --sha512");
    }
    let meta = FileMeta {
        hashes,
        length: args.size,
        custom: read_custom(args.custom.as_deref())?,
    };
    let mut changes = Vec::new();
    push_creates(&mut changes, &roles, &args.target, meta);
    stage(ctx, &args.gun, &changes)?;
    println!(
        "Addition of target \"{}\" by {} hash to repository \"{}\" staged for next publish.",
        args.target,
        if args.sha256.is_some() {
            "sha256"
        } else {
            "sha512"
        },
        args.gun
    );
    publish_if(ctx, &args.gun, args.publish).await
}

pub(crate) async fn remove(ctx: &Context, args: &RemoveArgs) -> Result<()> {
    let changes: Vec<Change> = roles(&args.roles)?
        .into_iter()
        .map(|role| Change {
            action: ChangeAction::Delete,
            kind: ChangeKind::Target,
            role,
            path: args.target.clone(),
            meta: None,
            delegation: None,
        })
        .collect();
    stage(ctx, &args.gun, &changes)?;
    println!(
        "Removal of {} from {} staged for next publish.",
        args.target, args.gun
    );
    publish_if(ctx, &args.gun, args.publish).await
}

/// Stages `changes`; warns when this trust dir holds nothing of `gun`, or
/// of a delegation they name, as a mistyped name would otherwise surface
/// only at publish.
fn stage(ctx: &Context, gun: &str, changes: &[Change]) -> Result<()> {
    let dir = ctx.gun_dir(gun)?;
    dir.changelist().add(changes)?;
    if matches!(dir.read_cached(&Role::Root), Ok(None)) {
        eprintln!(
            "note: nothing of {gun} is trusted here yet: publish takes it from the server, or \
             asks for `notaryctl init {gun}` if the server has none; check the name if you \
             meant an existing collection"
        );
        return Ok(());
    }
    for role in unknown_delegations(&dir, changes) {
        eprintln!(
            "note: {role} is not a delegation of {gun} as last seen here, and no staged \
             change adds it: publish will refuse it unless the server has it; check the name, \
             or stage `notaryctl delegation add {gun} {role} …` first"
        );
    }
    Ok(())
}

/// The delegation roles `changes` put targets in that the cached metadata
/// of their parent does not list and no staged change creates. A role
/// whose parent is not cached is not judged (it is fetched at publish).
fn unknown_delegations(dir: &GunDir, changes: &[Change]) -> BTreeSet<String> {
    let staged: BTreeSet<String> = dir
        .changelist()
        .list()
        .unwrap_or_default()
        .into_iter()
        .flat_map(|s| s.changes)
        .filter(|c| c.kind == ChangeKind::Delegation && c.action == ChangeAction::Create)
        .map(|c| c.role)
        .collect();
    let listed_by_parent = |role: &str| -> Option<bool> {
        let parent = Role::parse(parent_of(role)?).ok()?;
        let bytes = dir.read_cached(&parent).ok()??;
        let targets: Targets = SignedEnvelope::parse(&bytes).ok()?.decode().ok()?;
        Some(targets.delegations.roles.iter().any(|d| d.name == role))
    };
    // Each role once: a manifest stages many targets for the same one.
    let named: BTreeSet<&str> = changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Target && c.role != "targets")
        .map(|c| c.role.as_str())
        .collect();
    named
        .into_iter()
        .filter(|role| !staged.contains(*role) && listed_by_parent(role) == Some(false))
        .map(str::to_string)
        .collect()
}

fn push_creates(changes: &mut Vec<Change>, roles: &[String], target: &str, meta: FileMeta) {
    for role in roles {
        changes.push(Change {
            action: ChangeAction::Create,
            kind: ChangeKind::Target,
            role: role.clone(),
            path: target.to_string(),
            meta: Some(meta.clone()),
            delegation: None,
        });
    }
}

/// `--roles`, checked; `targets` when none is given.
pub(crate) fn roles(given: &[String]) -> Result<Vec<String>> {
    if given.is_empty() {
        return Ok(vec!["targets".into()]);
    }
    given
        .iter()
        .map(|r| match Role::parse(r)? {
            Role::Targets | Role::Delegation(_) => Ok(r.clone()),
            other => {
                bail!("targets cannot be added to the {other} role; use targets or targets/<name>")
            }
        })
        .collect()
}

fn read_custom(path: Option<&Path>) -> Result<Option<serde_json::Value>> {
    let Some(path) = path else { return Ok(None) };
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value = serde_json::from_slice(&bytes)
        .with_context(|| format!("--custom {} is not valid JSON", path.display()))?;
    Ok(Some(value))
}

/// `TARGET FILE` lines; relative FILEs are relative to the manifest.
fn read_manifest(path: &Path) -> Result<Vec<(String, PathBuf)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the manifest {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(target), Some(file), None) = (fields.next(), fields.next(), fields.next()) else {
            bail!("{}:{}: expected `TARGET FILE`", path.display(), n + 1);
        };
        entries.push((target.to_string(), base.join(file)));
    }
    if entries.is_empty() {
        bail!("the manifest {} lists no targets", path.display());
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_lines_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("m.txt");
        std::fs::write(&m, "# c\n\nv1 a.bin\nv2  sub/b.bin\n").unwrap();
        let e = read_manifest(&m).unwrap();
        assert_eq!(e[1], ("v2".to_string(), dir.path().join("sub/b.bin")));
        std::fs::write(&m, "v1\n").unwrap();
        assert!(read_manifest(&m)
            .unwrap_err()
            .to_string()
            .contains(":1: expected"));
    }

    #[test]
    fn roles_default_and_refusals() {
        assert_eq!(roles(&[]).unwrap(), ["targets"]);
        assert!(roles(&["snapshot".into()]).is_err());
        assert!(roles(&["targets/Bad".into()]).is_err());
        assert_eq!(roles(&["targets/rel".into()]).unwrap(), ["targets/rel"]);
    }
}
