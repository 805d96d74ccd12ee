//! State under the trust dir: `tuf/<gun>/metadata/<role>.json` (metadata
//! that passed verification, or that we signed at init) and
//! `tuf/<gun>/changelist/` (staged changes). Every write goes to a temp file
//! in the same folder, is synced, then renamed over the old file, so a crash
//! or Ctrl-C leaves either the old or the new content, never half of one.

mod atomic;
mod changelist;

pub(crate) use atomic::write_atomic;
pub(crate) use changelist::{Change, ChangeAction, ChangeKind, Changelist, DelegationEdit};

use anyhow::{bail, Context, Result};
use std::path::PathBuf;

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

    pub(crate) fn gun(&self, gun: &str) -> Result<GunDir> {
        check_gun(gun)?;
        Ok(GunDir {
            dir: self.root.join("tuf").join(gun),
            gun: gun.to_string(),
        })
    }
}

impl GunDir {
    fn metadata_path(&self, role: &str) -> PathBuf {
        self.dir.join("metadata").join(format!("{role}.json"))
    }

    /// Cached metadata of `role`, if any.
    pub(crate) fn read_cached(&self, role: &str) -> Result<Option<Vec<u8>>> {
        let path = self.metadata_path(role);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Replaces the cached metadata of `role`; only for verified bytes.
    /// An unchanged file is left alone (no rewrite, no fsync).
    pub(crate) fn write_cached(&self, role: &str, bytes: &[u8]) -> Result<()> {
        let path = self.metadata_path(role);
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

/// A GUN becomes a path under the trust dir, so refuse what could escape it.
pub(crate) fn check_gun(gun: &str) -> Result<()> {
    if gun.is_empty() {
        bail!("the GUN is empty");
    }
    if gun.starts_with('/')
        || gun.contains('*')
        || gun.contains('\0')
        || gun
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        bail!("invalid GUN {gun:?}: it must be a clean path like example.com/org/app (no '*', no empty, '.' or '..' segments)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guns_that_escape_are_refused() {
        for bad in ["", "/abs", "a/../b", "a//b", "a/", "a/*", "./a"] {
            assert!(check_gun(bad).is_err(), "{bad}");
        }
        check_gun("example.com/org/app").unwrap();
    }

    #[test]
    fn cache_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let gun = TrustDir::new(dir.path().into()).gun("a.com/b").unwrap();
        assert!(gun.read_cached("root").unwrap().is_none());
        gun.write_cached("targets/releases", b"x").unwrap();
        assert_eq!(gun.read_cached("targets/releases").unwrap().unwrap(), b"x");
        gun.remove_cache().unwrap();
        assert!(gun.read_cached("targets/releases").unwrap().is_none());
    }
}
