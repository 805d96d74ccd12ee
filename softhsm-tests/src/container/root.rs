//! The Debian 12 root the containers boot: `debootstrap --variant=minbase`
//! with systemd, cached between runs under `/var/cache/notary-keyd-tests/`
//! (or `$NOTARY_KEYD_TEST_CACHE`) and keyed by its package list. It is built
//! in a scratch directory and renamed into place when complete, under a
//! lock, so an interrupted build is never booted and concurrent tests build
//! it once. Containers boot it with a volatile overlay: it stays pristine.

use super::sources::host_mirror;
use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

pub(super) const SUITE: &str = "bookworm";

/// systemd as PID 1 and the system bus systemctl talks over.
const BOOT: &[&str] = &["systemd", "systemd-sysv", "dbus"];

/// What docs/operations.md ("Install") tells an operator to install, and
/// what the package depends on: procps for the unit's `ExecReload=/bin/kill`
/// (a minbase system lacks it) and the full build's shared libraries.
pub(super) const DOCUMENTED: &[&str] = &[
    "procps",
    "libpcsclite1",
    "libtss2-esys-3.0.2-0",
    "libtss2-tctildr0",
];

/// Only for the tests: a SoftHSM2 token for the softhsm.conf drop-in.
const TEST_ONLY: &[&str] = &["softhsm2"];

/// Bumped when the steps below change what a root with the same packages holds.
const RECIPE: &str = "1";

fn packages() -> Vec<&'static str> {
    let mut all: Vec<&str> = BOOT
        .iter()
        .chain(DOCUMENTED)
        .chain(TEST_ONLY)
        .copied()
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

fn cache_dir() -> PathBuf {
    std::env::var_os("NOTARY_KEYD_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/notary-keyd-tests"))
}

/// The cached root, built first if this package list has none yet.
pub(super) fn debian_root() -> Result<PathBuf> {
    let packages = packages();
    let key = Sha256::digest(format!("{RECIPE} {SUITE} minbase {}", packages.join(",")));
    let name = format!("debian12-{}", &hex::encode(key)[..16]);
    let cache = cache_dir();
    std::fs::create_dir_all(&cache)
        .with_context(|| format!("cannot create the container cache {}", cache.display()))?;
    let root = cache.join(&name);
    let lock = std::fs::File::create(cache.join("build.lock"))?;
    let _lock = Flock::lock(lock, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .context("cannot lock the container cache")?;
    if root.is_dir() {
        return Ok(root);
    }
    // Whatever an interrupted build left; we hold the lock, so no build is running.
    for entry in std::fs::read_dir(&cache)? {
        let path = entry?.path();
        let stale = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(".build-"));
        if stale {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    let scratch = cache.join(format!(".build-{name}"));
    let started = Instant::now();
    debootstrap(&scratch, &packages)?;
    // The downloaded .debs are installed; they would only take space.
    let archives = scratch.join("var/cache/apt/archives");
    for entry in std::fs::read_dir(&archives)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "deb") {
            std::fs::remove_file(path)?;
        }
    }
    std::fs::rename(&scratch, &root)?;
    eprintln!(
        "container root: debootstrap of Debian 12 ({} packages asked for) took {:.0} s; cached at {}",
        packages.len(),
        started.elapsed().as_secs_f64(),
        root.display()
    );
    Ok(root)
}

fn debootstrap(target: &Path, packages: &[&str]) -> Result<()> {
    let mirror = host_mirror(SUITE)?;
    eprintln!(
        "container root: building with debootstrap from {} (once per package list)",
        mirror.uri
    );
    let mut cmd = Command::new("debootstrap");
    cmd.arg("--variant=minbase")
        .arg(format!("--include={}", packages.join(",")));
    if let Some(keyring) = &mirror.keyring {
        cmd.arg(format!("--keyring={}", keyring.display()));
    }
    let out = cmd
        .arg(SUITE)
        .arg(target)
        .arg(&mirror.uri)
        .output()
        .context("running debootstrap (package debootstrap)")?;
    if !out.status.success() {
        let log =
            std::fs::read_to_string(target.join("debootstrap/debootstrap.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        bail!(
            "debootstrap from {} failed ({}):\n{}\n{}\n…debootstrap.log:\n{}",
            mirror.uri,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(())
}
