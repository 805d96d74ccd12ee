//! Crash-safe file writes: write a temp file in the same directory, fsync it,
//! rename over the target, fsync the directory. A crash leaves either the old
//! or the new content, never a torn file; the temp file it may leave behind
//! is removed by [`remove_leftovers`] when the directory is next opened.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

const TEMP_MARK: &str = ".tmp";

/// Atomically replaces `path` with `data`, created with `mode` (e.g. 0o600).
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no parent"))?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}{TEMP_MARK}{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The pid in a temp file name `write_atomic` makes (`.<name>.tmp<pid>`).
fn writer_pid(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?;
    let (name, pid) = rest.rsplit_once(TEMP_MARK)?;
    if name.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Removes the temp files of writes a crash cut short in `dir` (those of
/// a process that no longer runs, or of this one, which has not started
/// writing when it opens its directories). They were never renamed into
/// place, so nothing refers to them, but one may hold a copy of a key.
/// Returns what was removed; each removal, and a directory that cannot be
/// cleaned, is logged (neither stops the caller: the files are inert).
pub fn remove_leftovers(dir: &Path) -> Vec<std::path::PathBuf> {
    match try_remove_leftovers(dir) {
        Ok(removed) => {
            for path in &removed {
                tracing::warn!(file = %path.display(), "removed the temp file of a write cut short by a crash");
            }
            removed
        }
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot look for temp files of writes cut short by a crash");
            Vec::new()
        }
    }
}

fn try_remove_leftovers(dir: &Path) -> io::Result<Vec<std::path::PathBuf>> {
    let me = std::process::id();
    let mut removed = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Some(pid) = entry.file_name().to_str().and_then(writer_pid) else {
            continue;
        };
        if pid != me && Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if entry.file_type()?.is_file() {
            fs::remove_file(entry.path())?;
            removed.push(entry.path());
        }
    }
    if !removed.is_empty() {
        File::open(dir)?.sync_all()?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_content_with_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"one", 0o600).unwrap();
        write_atomic(&path, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // No temp files left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn leftovers_of_dead_writers_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        write_atomic(&p.join("keys.json"), b"{}", 0o600).unwrap();
        // pid_max is at most 2^22, so this writer cannot be alive.
        let dead = p.join(".keys.json.tmp4294967295");
        fs::write(&dead, b"{half").unwrap();
        let mine = p.join(format!(".keys.json.tmp{}", std::process::id()));
        fs::write(&mine, b"{half").unwrap();
        // pid 1 runs; its write may still be under way.
        let live = p.join(".keys.json.tmp1");
        fs::write(&live, b"{").unwrap();
        for other in [".hidden", ".x.tmp", "a.tmp12", ".tmp12", ".y.tmp12z"] {
            fs::write(p.join(other), b"").unwrap();
        }
        let mut removed = remove_leftovers(p);
        removed.sort();
        let mut expected = vec![dead, mine];
        expected.sort();
        assert_eq!(removed, expected);
        assert!(live.exists());
        assert_eq!(fs::read(p.join("keys.json")).unwrap(), b"{}");
        assert_eq!(fs::read_dir(p).unwrap().count(), 7);
    }
}
