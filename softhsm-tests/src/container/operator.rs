//! What an operator does in a booted container: install notary-keyd the
//! way docs/operations.md says (its "Install" commands, run as written),
//! add people to the group, call `notaryctl` as one of them, and read the
//! service's state from systemd.

use super::{Bind, Container};
use crate::bin_path;
use anyhow::{bail, Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

/// Where the source checkout (units, docs, example config) appears inside.
pub const SOURCE: &str = "/usr/src/notary-keyd";
/// Where the freshly built binaries (the test's profile) appear inside.
const BUILT: &str = "/usr/src/notary-keyd-bin";
/// The API socket the socket unit creates.
pub const SOCKET: &str = "/run/notary-keyd/keyd.sock";
/// What `sign_as` signs: a canonical Targets `signed` object.
const TARGETS: &str = r#"{"_type":"Targets","delegations":{"keys":{},"roles":[]},"expires":"2030-01-01T00:00:00Z","targets":{},"version":1}"#;

/// The workspace checkout (this crate's parent directory).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The checkout and the build dir, read-only, for `install_as_documented`.
pub fn source_binds() -> Result<Vec<Bind>> {
    let daemon = bin_path("notary-keyd")?;
    bin_path("notaryctl")?;
    let built = daemon.parent().context("binary without a directory")?;
    Ok(vec![
        Bind {
            host: repo(),
            inside: SOURCE.into(),
            read_only: true,
        },
        Bind {
            host: built.to_path_buf(),
            inside: BUILT.into(),
            read_only: true,
        },
    ])
}

/// The shell commands docs/operations.md's "Install" section gives for a
/// source checkout, with the build step left out (the test brings its own
/// build) and `target/release/` pointing at that build.
fn documented_install() -> Result<String> {
    let docs = std::fs::read_to_string(repo().join("docs/operations.md"))?;
    let section = docs
        .split_once("\n### Install\n")
        .and_then(|(_, rest)| rest.split_once("From a source checkout"))
        .context(
            "docs/operations.md has no \"### Install\" section with \"From a source checkout\"",
        )?
        .1;
    let block = section
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("\n```"))
        .context("the Install section has no ```sh block")?
        .0;
    let lines: Vec<String> = block
        .lines()
        .filter(|l| !l.trim_start().starts_with("cargo "))
        .map(|l| l.replace("target/release/", &format!("{BUILT}/")))
        .collect();
    if !lines.iter().any(|l| l.contains("systemctl enable")) {
        bail!("the Install block enables nothing:\n{block}");
    }
    Ok(lines.join("\n"))
}

impl Container {
    /// Runs the documented install commands in the source checkout.
    /// The example config's `[[policy]]` rules name their callers (users
    /// `ci` and `release-manager`, group `release`), so the host has them
    /// first, as one that installs the example unedited would.
    pub fn install_as_documented(&self) -> Result<()> {
        self.sh_ok(
            "groupadd --system release && useradd --system --no-create-home ci \
             && useradd --system --no-create-home release-manager",
        )?;
        let script = format!("set -eux\ncd {SOURCE}\n{}", documented_install()?);
        self.sh_ok(&script)
            .context("installing as docs/operations.md says")?;
        Ok(())
    }

    /// Writes a file inside (root-owned) with `mode`.
    pub fn write(&self, inside: &str, contents: &str, mode: u32) -> Result<()> {
        let path = self.path(inside);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, contents).with_context(|| format!("writing {inside}"))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
        Ok(())
    }

    pub fn read(&self, inside: &str) -> Result<String> {
        std::fs::read_to_string(self.path(inside)).with_context(|| format!("reading {inside}"))
    }

    /// Runs `script` as `user` with their groups, as after a fresh login.
    pub fn as_user(&self, user: &str, script: &str) -> Result<Output> {
        let quoted = script.replace('\'', r"'\''");
        self.sh(&format!(
            "cd /home/{user} && exec setpriv --reuid={user} --regid={user} --init-groups \
             env HOME=/home/{user} USER={user} /bin/sh -c '{quoted}'"
        ))
    }

    /// A user with a home; `group` adds them to it as the docs say, and
    /// `targets.json` in the home is what `sign_as` signs.
    pub fn add_user(&self, name: &str, group: Option<&str>) -> Result<()> {
        self.sh_ok(&format!("useradd --create-home --shell /bin/sh {name}"))?;
        if let Some(group) = group {
            self.sh_ok(&format!("usermod -aG {group} {name}"))?;
        }
        self.write(&format!("/home/{name}/targets.json"), TARGETS, 0o644)
    }

    /// `notaryctl key generate ARGS` as `user`; returns the key ID.
    pub fn generate_as(&self, user: &str, args: &str) -> Result<String> {
        let out = self.notaryctl_ok(user, &format!("key generate {args}"))?;
        out.lines()
            .last()
            .map(str::to_string)
            .context("key generate printed no key ID")
    }

    /// Signs `targets.json` as `user` (notaryctl verifies the signature
    /// before it prints it); returns the signature object.
    pub fn sign_as(&self, user: &str, key: &str) -> Result<serde_json::Value> {
        let out = self.notaryctl_ok(user, &format!("sign --key {key} targets.json"))?;
        let sig: serde_json::Value = serde_json::from_str(out.trim())
            .with_context(|| format!("sign printed no signature: {out}"))?;
        if sig["keyid"] != key {
            bail!("signed with another key: {sig}");
        }
        Ok(sig)
    }

    /// `notaryctl ARGS` as `user`; must succeed; returns stdout.
    pub fn notaryctl_ok(&self, user: &str, args: &str) -> Result<String> {
        let out = self.as_user(user, &format!("notaryctl {args}"))?;
        if !out.status.success() {
            bail!(
                "`notaryctl {args}` as {user} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `systemctl show -P PROPERTY UNIT`.
    pub fn unit_property(&self, unit: &str, property: &str) -> Result<String> {
        Ok(self
            .sh_ok(&format!("systemctl show -P {property} {unit}"))?
            .trim()
            .to_string())
    }

    /// Waits until `unit`'s `property` satisfies `ok` (failing after `limit`
    /// with the last value and the unit's journal).
    pub fn wait_unit(
        &self,
        unit: &str,
        property: &str,
        limit: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let deadline = Instant::now() + limit;
        loop {
            let value = self.unit_property(unit, property)?;
            if ok(&value) {
                return Ok(value);
            }
            if Instant::now() > deadline {
                bail!(
                    "{unit} {property} is still {value:?} after {limit:?}; journal:\n{}",
                    self.journal(unit)?
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The unit's journal, short form, for failure messages and checks.
    pub fn journal(&self, unit: &str) -> Result<String> {
        self.sh_ok(&format!("journalctl --no-pager -q -o short -u {unit}"))
    }

    /// The gid of a group inside.
    pub fn gid(&self, group: &str) -> Result<u32> {
        let line = self.sh_ok(&format!("getent group {group}"))?;
        line.split(':')
            .nth(2)
            .and_then(|g| g.parse().ok())
            .with_context(|| format!("no gid in {line:?}"))
    }
}
