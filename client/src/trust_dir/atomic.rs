//! Whole-file replacement that survives crashes: temp file, fsync, rename,
//! fsync of the folder.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", file.tmp.path().display()))?;
    file.commit()
}

/// A file written in pieces that replaces `path` only on [`commit`]; dropped
/// before that, it leaves `path` as it was.
///
/// [`commit`]: AtomicFile::commit
pub(crate) struct AtomicFile {
    path: PathBuf,
    dir: PathBuf,
    tmp: NamedTempFile,
}

impl AtomicFile {
    pub(crate) fn create(path: &Path) -> Result<AtomicFile> {
        let dir = path
            .parent()
            .with_context(|| format!("{} has no parent folder", path.display()))?;
        create_private_dir(dir)?;
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(dir)
            .with_context(|| format!("cannot create a temp file in {}", dir.display()))?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
            tmp,
        })
    }

    /// Syncs the content and puts it in place.
    pub(crate) fn commit(self) -> Result<()> {
        let AtomicFile { path, dir, tmp } = self;
        tmp.as_file()
            .sync_all()
            .with_context(|| format!("cannot write {}", tmp.path().display()))?;
        tmp.persist(&path)
            .with_context(|| format!("cannot replace {}", path.display()))?;
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync {}", dir.display()))?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tmp.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tmp.flush()
    }
}

/// The trust dir holds what this user trusts: only they may change it.
fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_changes_until_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        std::fs::write(&path, b"old").unwrap();
        let mut file = AtomicFile::create(&path).unwrap();
        file.write_all(b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        drop(file);
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let mut file = AtomicFile::create(&path).unwrap();
        file.write_all(b"new").unwrap();
        file.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
    }
}
