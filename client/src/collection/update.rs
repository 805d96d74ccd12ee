//! Bringing a collection up to date: from the trusted root (cached, or
//! bootstrapped by pinning/TOFU) through root rotations, timestamp, snapshot,
//! targets and delegations, each checked against its parent. The cache is
//! written only after everything verified, so bad data from the server
//! never replaces good cached metadata.

use crate::remote::{Remote, RemoteError, ROOT_LIMIT, TIMESTAMP_LIMIT};
use crate::trust_dir::GunDir;
use anyhow::{anyhow, bail, Context, Result};
use notary_tuf::metadata::Metadata;
use notary_tuf::trust::{
    delegated_roles, root_signing_keys, validate_root, verify_signed, Checked, Expected,
    RoleTargets, TrustPinning,
};
use notary_tuf::{FileMeta, Root, SignedEnvelope, Snapshot, Targets, Timestamp};
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
        role: &str,
        meta: Option<&FileMeta>,
        limit: usize,
    ) -> Result<Option<Vec<u8>>> {
        match self {
            Source::Remote(remote) => {
                let sha256 = meta.and_then(|m| m.hashes.get("sha256"));
                let limit = meta.map_or(limit, |m| usize::try_from(m.length).unwrap_or(usize::MAX));
                Ok(match sha256 {
                    Some(hash) => remote.get_meta_by_hash(role, hash, limit).await?,
                    None => remote.get_meta(role, limit).await?,
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
    let Some(bytes) = dir.read_cached("root")? else {
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
        Err(e) if allow_offline && is_offline(&e) && dir.read_cached("timestamp")?.is_some() => {
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
    let Some(root_bytes) = source.get("root", None, ROOT_LIMIT).await? else {
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

    let cached_version = |role: &str| -> Option<u64> { cached_version(dir, role) };
    let ts_role = root_signing_keys(r, "timestamp")?;
    let ts_bytes = source
        .get("timestamp", None, TIMESTAMP_LIMIT)
        .await?
        .ok_or_else(|| anyhow!("the server has a root for {gun} but no timestamp"))?;
    let timestamp: Checked<Timestamp> = verify_signed(
        &ts_bytes,
        &Expected {
            role: "timestamp",
            keys: &r.keys,
            keyids: &ts_role.keyids,
            threshold: ts_role.threshold,
            meta: None,
            trusted_version: cached_version("timestamp"),
            now,
        },
    )?;
    let snap_meta = timestamp
        .metadata
        .snapshot_meta()
        .cloned()
        .ok_or_else(|| anyhow!("the timestamp of {gun} lists no snapshot"))?;
    let snap_role = root_signing_keys(r, "snapshot")?;
    let snap_bytes = fetch(&mut source, "snapshot", &snap_meta).await?;
    let snapshot: Checked<Snapshot> = verify_signed(
        &snap_bytes,
        &Expected {
            role: "snapshot",
            keys: &r.keys,
            keyids: &snap_role.keyids,
            threshold: snap_role.threshold,
            meta: Some(("timestamp", &snap_meta)),
            trusted_version: cached_version("snapshot"),
            now,
        },
    )?;
    let meta = &snapshot.metadata.meta;
    let targets_meta = meta
        .get("targets")
        .ok_or_else(|| anyhow!("the snapshot of {gun} lists no targets"))?;
    let targets_role = root_signing_keys(r, "targets")?;
    let targets_bytes = fetch(&mut source, "targets", targets_meta).await?;
    let targets: Checked<Targets> = verify_signed(
        &targets_bytes,
        &Expected {
            role: "targets",
            keys: &r.keys,
            keyids: &targets_role.keyids,
            threshold: targets_role.threshold,
            meta: Some(("snapshot", targets_meta)),
            trusted_version: cached_version("targets"),
            now,
        },
    )?;
    let mut roles = vec![(
        RoleTargets {
            role: "targets".into(),
            targets: targets.metadata,
            restrictions: Vec::new(),
        },
        targets_bytes,
    )];
    let mut queue: VecDeque<usize> = VecDeque::from([0]);
    while let Some(parent) = queue.pop_front() {
        for d in delegated_roles(&roles[parent].0) {
            // A delegation with nothing published yet has no file.
            let Some(m) = meta.get(&d.name) else { continue };
            let bytes = fetch(&mut source, &d.name, m).await?;
            let checked: Checked<Targets> = verify_signed(
                &bytes,
                &Expected {
                    role: &d.name,
                    keys: &d.keys,
                    keyids: &d.keyids,
                    threshold: d.threshold,
                    meta: Some(("snapshot", m)),
                    trusted_version: cached_version(&d.name),
                    now,
                },
            )?;
            roles.push((
                RoleTargets {
                    role: d.name,
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

async fn fetch(source: &mut Source<'_>, role: &str, meta: &FileMeta) -> Result<Vec<u8>> {
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
        let checked = validate_root(Some(&current.checked.metadata), &latest, gun, pinning, now)?;
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

fn cached_version(dir: &GunDir, role: &str) -> Option<u64> {
    let bytes = dir.read_cached(role).ok()??;
    let env = SignedEnvelope::parse(&bytes).ok()?;
    match role {
        "timestamp" => env.decode::<Timestamp>().ok().map(|m| m.version()),
        "snapshot" => env.decode::<Snapshot>().ok().map(|m| m.version()),
        _ => env.decode::<Targets>().ok().map(|m| m.version()),
    }
}

fn cache(dir: &GunDir, repo: &Repo) -> Result<()> {
    dir.write_cached("root", &repo.root.bytes)?;
    dir.write_cached("timestamp", &repo.timestamp.bytes)?;
    dir.write_cached("snapshot", &repo.snapshot.bytes)?;
    for (role, bytes) in &repo.roles {
        dir.write_cached(&role.role, bytes)?;
    }
    Ok(())
}
