//! A small tmpfs of its own, to fill a filesystem to the last byte without
//! touching the machine's. Needs root; unmounted when the guard drops.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `kib` KiB (mode 0700) on a fresh temp dir.
    pub fn mount(kib: u64) -> Result<Tmpfs> {
        let dir = tempfile::tempdir()?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={kib}k,mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .context("running mount")?;
        if !out.status.success() {
            bail!(
                "cannot mount a tmpfs (root needed): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(Tmpfs { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills every free byte with a file (`filler`), down to writes of one
    /// byte, and returns its path. Space inside pages other files already
    /// hold stays theirs (tmpfs counts whole pages).
    pub fn fill(&self) -> Result<PathBuf> {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path)?;
        let mut chunk = 64 << 10;
        while chunk > 0 {
            match file.write(&vec![0u8; chunk]) {
                Ok(0) => chunk /= 2,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => chunk /= 2,
                Err(e) => return Err(e).context("filling the tmpfs"),
            }
        }
        file.sync_all().ok();
        Ok(path)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let path = self.dir.path().to_path_buf();
        let unmounted = Command::new("umount")
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still in use (a process that held a file there has not gone
            // yet): detach it now, the kernel frees it when released.
            let _ = Command::new("umount").arg("-l").arg(&path).status();
        }
    }
}
