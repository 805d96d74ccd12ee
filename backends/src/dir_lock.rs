//! `<dir>/.lock`: at most one process works in a directory at a time (the
//! software keystore, the audit log). The lock is an `flock` on a file of
//! its own, so it goes with the process however it ends.

use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Held while the directory is in use; dropping it lets go.
pub struct DirLock(#[allow(dead_code)] Flock<File>);

#[derive(Debug)]
pub enum LockError {
    /// The lock file could not be opened or created.
    Open { path: PathBuf, error: io::Error },
    /// Another process holds it.
    Held,
}

/// Takes `dir`'s lock without waiting.
pub fn lock_dir(dir: &Path) -> Result<DirLock, LockError> {
    let path = dir.join(".lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|error| LockError::Open { path, error })?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock)
        .map(DirLock)
        .map_err(|_| LockError::Held)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_dir(dir.path()).unwrap();
        assert!(matches!(lock_dir(dir.path()), Err(LockError::Held)));
        drop(first);
        lock_dir(dir.path()).unwrap();
        let missing = dir.path().join("missing");
        assert!(matches!(lock_dir(&missing), Err(LockError::Open { .. })));
    }
}
