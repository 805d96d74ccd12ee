//! State under the trust dir: `tuf/<gun>/metadata/<role>.json` (metadata
//! that passed verification, or that we signed at init) and
//! `tuf/<gun>/changelist/` (staged changes). Every write goes to a temp file
//! in the same folder, is synced, then renamed over the old file, so a crash
//! or Ctrl-C leaves either the old or the new content, never half of one.

mod atomic;
mod changelist;

pub(crate) use atomic::{write_atomic, AtomicFile};
pub(crate) use changelist::{Change, ChangeAction, ChangeKind, Changelist, DelegationEdit};

use anyhow::{bail, Context, Result};
use notary_tuf::Role;
use std::path::{Component, Path, PathBuf};

/// Longest GUN accepted (notary-server stores GUNs in a 255-character column).
const MAX_GUN_LEN: usize = 255;

pub(crate) struct TrustDir {
    root: PathBuf,
}

/// The local state of one collection.
pub(crate) struct GunDir {
    dir: PathBuf,
    pub gun: String,
}

impl TrustDir {
    pub(crate) fn new(root: PathBuf) -> TrustDir {
        TrustDir { root }
    }

    /// Every collection with a cached root under the trust dir.
    pub(crate) fn guns(&self) -> Result<Vec<GunDir>> {
        let tuf = self.root.join("tuf");
        let mut found = Vec::new();
        let mut pending = vec![tuf.clone()];
        while let Some(dir) = pending.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
            };
            for entry in entries {
                let path = entry?.path();
                if !path.is_dir() {
                    continue;
                }
                if path.ends_with("metadata") && path.join("root.json").is_file() {
                    let gun = dir.strip_prefix(&tuf).unwrap_or(&dir).to_string_lossy();
                    if let Ok(gun_dir) = self.gun(&gun) {
                        found.push(gun_dir);
                    }
                } else {
                    pending.push(path);
                }
            }
        }
        found.sort_by(|a, b| a.gun.cmp(&b.gun));
        Ok(found)
    }

    pub(crate) fn gun(&self, gun: &str) -> Result<GunDir> {
        check_gun(gun)?;
        let tuf = self.root.join("tuf");
        let dir = tuf.join(gun);
        stays_under(&dir, &tuf)?;
        Ok(GunDir {
            dir,
            gun: gun.to_string(),
        })
    }
}

impl GunDir {
    /// `metadata/<role>.json`; only a validated [`Role`] names a file, and
    /// the result is checked to stay in `metadata/` all the same.
    fn metadata_path(&self, role: &Role) -> Result<PathBuf> {
        let metadata = self.dir.join("metadata");
        let path = metadata.join(format!("{}.json", role.name()));
        stays_under(&path, &metadata)?;
        Ok(path)
    }

    /// Cached metadata of `role`, if any.
    pub(crate) fn read_cached(&self, role: &Role) -> Result<Option<Vec<u8>>> {
        let path = self.metadata_path(role)?;
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Replaces the cached metadata of `role`; only for verified bytes.
    /// An unchanged file is left alone (no rewrite, no fsync).
    pub(crate) fn write_cached(&self, role: &Role, bytes: &[u8]) -> Result<()> {
        let path = self.metadata_path(role)?;
        if std::fs::read(&path).is_ok_and(|old| old == bytes) {
            return Ok(());
        }
        write_atomic(&path, bytes)
    }

    /// Forgets every cached metadata file (staged changes are kept).
    pub(crate) fn remove_cache(&self) -> Result<()> {
        let dir = self.dir.join("metadata");
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot remove {}", dir.display())),
        }
    }

    pub(crate) fn changelist(&self) -> Changelist {
        Changelist::new(self.dir.join("changelist"))
    }
}

/// A GUN becomes a path under the trust dir and a segment of the server's
/// URLs, so refuse what could escape the one or change the other: it must
/// be a clean relative path (no empty, `.` or `..` segment, no trailing
/// `/`) of printable characters other than `*`, `\`, `?`, `#`, `%` and
/// spaces, at most 255 bytes.
pub(crate) fn check_gun(gun: &str) -> Result<()> {
    if gun.is_empty() {
        bail!("the GUN is empty");
    }
    let bad = |why: &str| -> Result<()> {
        bail!("invalid GUN {gun:?}: {why}; it must look like example.com/org/app")
    };
    if gun.len() > MAX_GUN_LEN {
        return bad("it is longer than 255 bytes");
    }
    if let Some(c) = gun
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || "*\\?#%".contains(*c))
    {
        return bad(&format!("it contains {c:?}"));
    }
    if gun.starts_with('/')
        || gun
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return bad("it is not a clean relative path (empty, '.' or '..' segment)");
    }
    Ok(())
}

/// `path` is `base` followed by plain names only (no `..`, no root, no
/// prefix), so it cannot name anything outside `base`.
fn stays_under(path: &Path, base: &Path) -> Result<()> {
    let escapes = match path.strip_prefix(base) {
        Ok(rest) => {
            rest.as_os_str().is_empty()
                || !rest.components().all(|c| matches!(c, Component::Normal(_)))
        }
        Err(_) => true,
    };
    if escapes {
        bail!(
            "refusing the path {}: it is not inside {}",
            path.display(),
            base.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guns_that_escape_or_bend_urls_are_refused() {
        let long = "a".repeat(256);
        for bad in [
            "", "/abs", "a/../b", "a//b", "a/", "a/*", "./a", "..", "a/..", "a\\b", "a b", "a\nb",
            "a?b", "a#b", "a%2e", "a\0b", &long,
        ] {
            assert!(check_gun(bad).is_err(), "{bad:?}");
        }
        check_gun("example.com/org/app").unwrap();
        check_gun("localhost:5000/app_1-x.y").unwrap();
        check_gun(&long[..255]).unwrap();
    }

    #[test]
    fn cache_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let gun = TrustDir::new(dir.path().into()).gun("a.com/b").unwrap();
        assert!(gun.read_cached(&Role::Root).unwrap().is_none());
        let releases = Role::parse("targets/releases").unwrap();
        gun.write_cached(&releases, b"x").unwrap();
        assert_eq!(gun.read_cached(&releases).unwrap().unwrap(), b"x");
        assert!(dir
            .path()
            .join("tuf/a.com/b/metadata/targets/releases.json")
            .is_file());
        gun.remove_cache().unwrap();
        assert!(gun.read_cached(&releases).unwrap().is_none());
    }

    #[test]
    fn guns_are_found_by_their_cached_root() {
        let dir = tempfile::tempdir().unwrap();
        let trust = TrustDir::new(dir.path().into());
        for gun in ["a.com/x", "a.com/x/y", "b.org/z"] {
            trust
                .gun(gun)
                .unwrap()
                .write_cached(&Role::Root, b"{}")
                .unwrap();
        }
        std::fs::create_dir_all(dir.path().join("tuf/c.net/changelist")).unwrap();
        let guns: Vec<String> = trust.guns().unwrap().into_iter().map(|g| g.gun).collect();
        assert_eq!(guns, ["a.com/x", "a.com/x/y", "b.org/z"]);
    }

    #[test]
    fn paths_must_stay_under_their_base() {
        let base = Path::new("/t/tuf/a.com/b/metadata");
        stays_under(&base.join("targets/releases.json"), base).unwrap();
        for escape in [
            "targets/../../../../config.json",
            "/etc/passwd",
            "../x.json",
            "",
        ] {
            let err = stays_under(&base.join(escape), base).unwrap_err();
            assert!(err.to_string().contains("is not inside"), "{escape}: {err}");
        }
        assert!(Role::parse("targets/../../../../config").is_err());
    }
}
