//! Bringing a collection up to date: from the trusted root (cached, or
//! bootstrapped by pinning/TOFU) through root rotations, timestamp, snapshot,
//! targets and delegations, each checked against its parent. The cache is
//! written only after everything verified, so bad data from the server
//! never replaces good cached metadata.

use super::floor::{floor, Floor, RoleKeys};
use crate::remote::{Remote, RemoteError, ROOT_LIMIT, SIGNED_LENGTH_LIMIT, TIMESTAMP_LIMIT};
use crate::trust_dir::GunDir;
use anyhow::{anyhow, bail, Context, Result};
use notary_tuf::metadata::RootRole;
use notary_tuf::trust::{
    delegated_roles, root_signing_keys, validate_root, verify_signed, Checked, Expected,
    RoleTargets, TrustError, TrustPinning,
};
use notary_tuf::{FileMeta, Role, Root, SignedEnvelope, Snapshot, Targets, Timestamp};
use std::collections::VecDeque;

/// One verified metadata file and the exact bytes it came in.
#[derive(Clone, Debug)]
pub(crate) struct Fetched<T> {
    pub checked: Checked<T>,
    pub bytes: Vec<u8>,
}

/// A collection verified from its trusted root.
#[derive(Debug)]
pub(crate) struct Repo {
    pub root: Fetched<Root>,
    pub timestamp: Fetched<Timestamp>,
    pub snapshot: Fetched<Snapshot>,
    /// `targets` first, then delegations in the order they are walked.
    pub roles: Vec<(RoleTargets, Vec<u8>)>,
}

/// Why there is no remote collection to update from.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Missing {
    #[error("{gun} does not exist on the notary server {url} (nothing published yet)")]
    NotOnServer { gun: String, url: String },
}

/// Where metadata comes from: the server, or the cache when it is offline.
enum Source<'a> {
    Remote(&'a mut Remote),
    Cache(&'a GunDir),
}

impl Source<'_> {
    async fn get(
        &mut self,
        role: &Role,
        meta: Option<&FileMeta>,
        limit: usize,
    ) -> Result<Option<Vec<u8>>> {
        match self {
            Source::Remote(remote) => {
                let sha256 = meta.and_then(|m| m.hashes.get("sha256"));
                // The signed length caps the download, within a fixed maximum:
                // the keys that sign lengths are often the server's own.
                let limit = match meta {
                    Some(m) if m.length > SIGNED_LENGTH_LIMIT as u64 => bail!(
                        "{role} is listed with a length of {} bytes, more than the {} bytes \
                         notaryctl downloads for one metadata file; refused",
                        m.length,
                        SIGNED_LENGTH_LIMIT
                    ),
                    Some(m) => usize::try_from(m.length).unwrap_or(SIGNED_LENGTH_LIMIT),
                    None => limit,
                };
                Ok(match sha256 {
                    Some(hash) => remote.get_meta_by_hash(role.name(), hash, limit).await?,
                    None => remote.get_meta(role.name(), limit).await?,
                })
            }
            Source::Cache(dir) => dir.read_cached(role),
        }
    }

    async fn root_version(&mut self, version: u64) -> Result<Option<Vec<u8>>> {
        match self {
            Source::Remote(remote) => Ok(remote.get_root_version(version).await?),
            Source::Cache(_) => Ok(None),
        }
    }
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The cached root, trusted as it is (it passed verification, or we made it).
pub(crate) fn cached_root(dir: &GunDir) -> Result<Option<Fetched<Root>>> {
    let Some(bytes) = dir.read_cached(&Role::Root)? else {
        return Ok(None);
    };
    let envelope = SignedEnvelope::parse(&bytes)
        .with_context(|| format!("the cached root of {} is unreadable", dir.gun))?;
    let metadata = envelope
        .decode()
        .with_context(|| format!("the cached root of {} is unreadable", dir.gun))?;
    Ok(Some(Fetched {
        checked: Checked { metadata, envelope },
        bytes,
    }))
}

/// Updates from the server and caches the result. When the server cannot be
/// reached and `allow_offline`, verifies the cached copy instead (with a
/// warning), as the stock client does for reads.
pub(crate) async fn update(
    remote: &mut Remote,
    dir: &GunDir,
    pinning: &TrustPinning,
    allow_offline: bool,
) -> Result<Repo> {
    let now = now();
    match verify_from(Source::Remote(remote), dir, pinning, now).await {
        Ok(repo) => {
            cache(dir, &repo)?;
            Ok(repo)
        }
        Err(e)
            if allow_offline && is_offline(&e) && dir.read_cached(&Role::Timestamp)?.is_some() =>
        {
            eprintln!("warning: {e:#}; using the cached metadata of {}", dir.gun);
            verify_from(Source::Cache(dir), dir, pinning, now).await
        }
        Err(e) => Err(e),
    }
}

fn is_offline(e: &anyhow::Error) -> bool {
    e.downcast_ref::<RemoteError>()
        .is_some_and(RemoteError::is_offline)
}

async fn verify_from(
    mut source: Source<'_>,
    dir: &GunDir,
    pinning: &TrustPinning,
    now: i64,
) -> Result<Repo> {
    let gun = dir.gun.as_str();
    let trusted = cached_root(dir)?;
    if let (None, Source::Remote(remote)) = (&trusted, &source) {
        if remote.is_plain_http() {
            eprintln!(
                "warning: trusting {gun} for the first time over plain http:// ({}): anyone on \
                 the network path can swap its root; use https:// or pin its root with \
                 trust_pinning",
                remote.url()
            );
        }
    }
    let Some(root_bytes) = source.get(&Role::Root, None, ROOT_LIMIT).await? else {
        let url = match &source {
            Source::Remote(r) => r.url().to_string(),
            Source::Cache(_) => "cache".into(),
        };
        return Err(Missing::NotOnServer {
            gun: gun.into(),
            url,
        }
        .into());
    };
    let root = trust_root(&mut source, trusted, root_bytes, gun, pinning, now).await?;
    let r = &root.checked.metadata;

    let ts_role = root_signing_keys(r, "timestamp")?;
    let snap_role = root_signing_keys(r, "snapshot")?;
    let (ts_floor, snap_floor) = timestamp_and_snapshot_floors(dir, r, ts_role, snap_role)?;
    let ts_bytes = source
        .get(&Role::Timestamp, None, TIMESTAMP_LIMIT)
        .await?
        .ok_or_else(|| anyhow!("the server has a root for {gun} but no timestamp"))?;
    let timestamp: Checked<Timestamp> = verify_signed(
        &ts_bytes,
        &Expected::from_root(r, "timestamp", now)?.above(ts_floor),
    )?;
    let snap_meta = timestamp
        .metadata
        .snapshot_meta()
        .cloned()
        .ok_or_else(|| anyhow!("the timestamp of {gun} lists no snapshot"))?;
    let snap_bytes = fetch(&mut source, &Role::Snapshot, &snap_meta).await?;
    let snapshot: Checked<Snapshot> = verify_signed(
        &snap_bytes,
        &Expected::from_root(r, "snapshot", now)?
            .listed_by("timestamp", &snap_meta)
            .above(snap_floor),
    )?;
    let meta = &snapshot.metadata.meta;
    // As notary's builder: the root in use must be the one the snapshot
    // describes, so a server cannot pair an old root with new metadata.
    let root_meta = meta
        .get("root")
        .ok_or_else(|| anyhow!("the snapshot of {gun} lists no root"))?;
    root_meta
        .check(&root.bytes)
        .map_err(|source| TrustError::Mismatch {
            role: "root".into(),
            parent: "snapshot",
            source,
        })?;
    let targets_meta = meta
        .get("targets")
        .ok_or_else(|| anyhow!("the snapshot of {gun} lists no targets"))?;
    let targets_role = root_signing_keys(r, "targets")?;
    let targets_keys = RoleKeys::of(r, targets_role);
    let targets_bytes = fetch(&mut source, &Role::Targets, targets_meta).await?;
    let targets_floor = floor::<Targets>(dir, &Role::Targets, &targets_keys)?.version();
    let targets: Checked<Targets> = verify_signed(
        &targets_bytes,
        &Expected::from_root(r, "targets", now)?
            .listed_by("snapshot", targets_meta)
            .above(targets_floor),
    )?;
    let mut roles = vec![(
        RoleTargets {
            role: Role::Targets,
            targets: targets.metadata,
            restrictions: Vec::new(),
        },
        targets_bytes,
    )];
    let mut queue: VecDeque<usize> = VecDeque::from([0]);
    while let Some(parent) = queue.pop_front() {
        for d in delegated_roles(&roles[parent].0)? {
            // A delegation with nothing published yet has no file.
            let Some(m) = meta.get(d.role.name()) else {
                continue;
            };
            let bytes = fetch(&mut source, &d.role, m).await?;
            let keys = RoleKeys {
                keys: &d.keys,
                keyids: &d.keyids,
                threshold: d.threshold,
            };
            let trusted_version = floor::<Targets>(dir, &d.role, &keys)?.version();
            let checked: Checked<Targets> = verify_signed(
                &bytes,
                &Expected::delegated(&d, now)
                    .listed_by("snapshot", m)
                    .above(trusted_version),
            )?;
            roles.push((
                RoleTargets {
                    role: d.role,
                    targets: checked.metadata,
                    restrictions: d.restrictions,
                },
                bytes,
            ));
            queue.push_back(roles.len() - 1);
        }
    }
    Ok(Repo {
        root,
        timestamp: Fetched {
            checked: timestamp,
            bytes: ts_bytes,
        },
        snapshot: Fetched {
            checked: snapshot,
            bytes: snap_bytes,
        },
        roles,
    })
}

async fn fetch(source: &mut Source<'_>, role: &Role, meta: &FileMeta) -> Result<Vec<u8>> {
    source
        .get(role, Some(meta), 0)
        .await?
        .ok_or_else(|| anyhow!("the server lists {role} but does not serve it"))
}

/// The root to verify everything else with: the cached one followed through
/// each newer version the server has, or a first root checked by pinning.
async fn trust_root(
    source: &mut Source<'_>,
    trusted: Option<Fetched<Root>>,
    latest: Vec<u8>,
    gun: &str,
    pinning: &TrustPinning,
    now: i64,
) -> Result<Fetched<Root>> {
    let Some(mut current) = trusted else {
        let checked = validate_root(None, &latest, gun, pinning, now)?;
        return Ok(Fetched {
            checked,
            bytes: latest,
        });
    };
    if latest == current.bytes {
        notary_tuf::trust::check_fresh("root", &current.checked.metadata, None, now)?;
        return Ok(current);
    }
    let latest_version = SignedEnvelope::parse(&latest)
        .ok()
        .and_then(|e| e.decode::<Root>().ok())
        .map(|r| r.version)
        .unwrap_or(0);
    let from = current.checked.metadata.version;
    if latest_version <= from {
        // Same or older version with other bytes: validated (and refused as a
        // rollback if older) against the trusted root.
        let checked = validate_root(Some(&current.checked.metadata), &latest, gun, pinning, now)
            .map_err(|e| match latest_version == from {
                true => anyhow!(
                    "the server's root of {gun} (version {from}) is not the root this machine \
                     trusts: someone published {gun} with other keys after your `notaryctl \
                     init`, or the server's data was replaced. If that is expected, \
                     `notaryctl delete {gun}` forgets the local root and staged changes (see \
                     `notaryctl status {gun}` first) and `notaryctl list {gun}` then trusts the \
                     server's; otherwise trust neither until you know why ({e})"
                ),
                false => e.into(),
            })?;
        return Ok(Fetched {
            checked,
            bytes: latest,
        });
    }
    for version in from + 1..=latest_version {
        let bytes = if version == latest_version {
            latest.clone()
        } else {
            source.root_version(version).await?.ok_or_else(|| {
                anyhow!("the server does not serve root version {version} of {gun}")
            })?
        };
        let checked = validate_root(Some(&current.checked.metadata), &bytes, gun, pinning, now)
            .with_context(|| format!("root version {version} of {gun} is refused"))?;
        if checked.metadata.version != version {
            bail!(
                "the server's root version {version} of {gun} says it is version {}",
                checked.metadata.version
            );
        }
        current = Fetched { checked, bytes };
    }
    Ok(current)
}

/// The timestamp and snapshot floors under `root`. If either role's keys
/// changed since its copy was cached, both start over (TUF 5.3.11).
fn timestamp_and_snapshot_floors(
    dir: &GunDir,
    root: &Root,
    ts_role: &RootRole,
    snap_role: &RootRole,
) -> Result<(Option<u64>, Option<u64>)> {
    let ts = floor::<Timestamp>(dir, &Role::Timestamp, &RoleKeys::of(root, ts_role))?;
    let snap = floor::<Snapshot>(dir, &Role::Snapshot, &RoleKeys::of(root, snap_role))?;
    if ts == Floor::KeysChanged || snap == Floor::KeysChanged {
        eprintln!(
            "note: the timestamp or snapshot key of {} changed since the cached copies were \
             made; their rollback floors start over from what the server has now",
            dir.gun
        );
        return Ok((None, None));
    }
    Ok((ts.version(), snap.version()))
}

fn cache(dir: &GunDir, repo: &Repo) -> Result<()> {
    dir.write_cached(&Role::Root, &repo.root.bytes)?;
    dir.write_cached(&Role::Timestamp, &repo.timestamp.bytes)?;
    dir.write_cached(&Role::Snapshot, &repo.snapshot.bytes)?;
    for (role, bytes) in &repo.roles {
        dir.write_cached(&role.role, bytes)?;
    }
    Ok(())
}
