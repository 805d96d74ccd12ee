//! The Debian package (scripts/build-deb.sh) in a Debian 12 container with
//! systemd as PID 1: `apt-get install ./notary-keyd_*.deb` enables and starts
//! the socket, a user added to the group signs through it, `apt-get remove`
//! leaves the keys and the audit log, a reinstall (with policy-rc.d saying
//! "no" first) serves the same keys, and purge keeps them with a note.
//!
//! The package is built once per run: `$NOTARY_KEYD_DEB` names one already
//! built (scripts/test-all.sh does that), else this test runs the script.
//! A machine that cannot boot a container fails this test with a SKIPPED
//! line unless NOTARY_KEYD_ALLOW_NO_CONTAINER=1.

use anyhow::{bail, ensure, Context, Result};
use softhsm_tests::container::{can_boot, repo, Bind, Container, Network};
use std::path::PathBuf;
use std::process::Command;

const DEB_DIR: &str = "/usr/src/notary-keyd-deb";

fn package() -> Result<PathBuf> {
    if let Some(deb) = std::env::var_os("NOTARY_KEYD_DEB") {
        return Ok(PathBuf::from(deb));
    }
    let mut build = Command::new(repo().join("scripts/build-deb.sh"));
    // Without the variables cargo sets for this test: build scripts that
    // watch them (ring's CARGO_MANIFEST_DIR) would make this release build
    // and one from a shell rebuild each other's crates.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name == "CARGO"
            || name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || name == "CARGO_CRATE_NAME"
            || name == "LD_LIBRARY_PATH"
        {
            build.env_remove(name.as_ref());
        }
    }
    let out = build.output().context("running scripts/build-deb.sh")?;
    if !out.status.success() {
        bail!(
            "scripts/build-deb.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let deb = stdout
        .lines()
        .last()
        .context("build-deb.sh printed no path")?;
    Ok(repo().join(deb))
}

fn apt(c: &Container, args: &str) -> Result<String> {
    c.sh_ok(&format!(
        "DEBIAN_FRONTEND=noninteractive apt-get -y --no-install-recommends {args} 2>&1"
    ))
}

fn state(c: &Container, unit: &str) -> Result<(String, String)> {
    let enabled = c.sh(&format!("systemctl is-enabled {unit}"))?;
    Ok((
        String::from_utf8_lossy(&enabled.stdout).trim().to_string(),
        c.unit_property(unit, "ActiveState")?,
    ))
}

#[test]
fn installs_serves_the_group_and_keeps_keys_across_remove_and_reinstall() -> Result<()> {
    if !can_boot("installs_serves_the_group_and_keeps_keys_across_remove_and_reinstall")? {
        return Ok(());
    }
    let deb = package()?;
    let name = deb
        .file_name()
        .and_then(|n| n.to_str())
        .context("package path without a file name")?
        .to_string();
    let dir = deb.parent().context("package path without a directory")?;
    let c = Container::boot(
        &[Bind {
            host: dir.to_path_buf(),
            inside: DEB_DIR.into(),
            read_only: true,
        }],
        Network::Private,
    )?;
    let install = format!("install {DEB_DIR}/{name}");

    // Install: everything it depends on is in the root (no network here).
    apt(&c, &install).context("apt-get install ./notary-keyd_*.deb")?;
    ensure!(
        state(&c, "notary-keyd.socket")? == ("enabled".into(), "active".into()),
        "after install the socket must be enabled and listening: {:?}",
        state(&c, "notary-keyd.socket")?
    );
    ensure!(
        c.unit_property("notary-keyd.service", "ActiveState")? == "inactive",
        "the daemon must wait for its first client"
    );

    // Man pages and completions where man and the shells look.
    for file in [
        "/usr/share/man/man1/notaryctl.1.gz",
        "/usr/share/man/man1/notaryctl-key.1.gz",
        "/usr/share/man/man1/notaryctl-delegation.1.gz",
        "/usr/share/man/man8/notary-keyd.8.gz",
        "/usr/share/man/man5/notary-keyd.toml.5.gz",
        "/usr/share/bash-completion/completions/notaryctl",
        "/usr/share/bash-completion/completions/notary-keyd",
        "/usr/share/zsh/vendor-completions/_notaryctl",
        "/usr/share/fish/vendor_completions.d/notaryctl.fish",
    ] {
        c.sh_ok(&format!("test -s {file}"))
            .with_context(|| format!("the package lacks {file}"))?;
    }
    let page = c.sh_ok("zcat /usr/share/man/man5/notary-keyd.toml.5.gz")?;
    ensure!(
        page.contains("socket_group"),
        "notary-keyd.toml(5) does not describe the options:\n{page}"
    );

    // The operator's steps: a user in the group, a policy rule for it.
    c.add_user("alice", Some("notary-keyd"))?;
    let gid = c.gid("notary-keyd")?;
    let config = c.read("/etc/notary-keyd/keyd.toml")?;
    c.write(
        "/etc/notary-keyd/keyd.toml",
        &format!(
            "{config}\n[[policy]]\ngids = [{gid}]\nallow = [\"list\", \"generate\", \"sign\"]\n\
             keys = [\"role:targets\"]\n"
        ),
        0o644,
    )?;
    let key = c.generate_as("alice", "--role targets --gun example.com/deb")?;
    c.sign_as("alice", &key)
        .context("a member of notary-keyd signs through the package's socket")?;

    // Remove: the units and binaries go; keys and the audit log stay.
    apt(&c, "remove notary-keyd").context("apt-get remove")?;
    ensure!(
        c.sh("test -e /usr/bin/notary-keyd")?.status.code() == Some(1),
        "notary-keyd is still installed after remove"
    );
    let (_, socket) = state(&c, "notary-keyd.socket")?;
    ensure!(socket == "inactive", "after remove the socket is {socket}");
    let keys = c.sh_ok("ls /var/lib/notary-keyd/soft")?;
    ensure!(
        !keys.trim().is_empty(),
        "remove deleted the software keystore's keys"
    );
    let audit = c.read("/var/log/notary-keyd/audit-000001.jsonl")?;
    ensure!(audit.contains(&key), "remove lost the audit log:\n{audit}");

    // Reinstall with policy-rc.d refusing starts: enabled, not started.
    c.write("/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n", 0o755)?;
    apt(&c, &install).context("reinstall under policy-rc.d")?;
    ensure!(
        state(&c, "notary-keyd.socket")? == ("enabled".into(), "inactive".into()),
        "policy-rc.d said no, yet the package started the socket: {:?}",
        state(&c, "notary-keyd.socket")?
    );
    c.sh_ok("rm /usr/sbin/policy-rc.d && systemctl start notary-keyd.socket")?;
    ensure!(
        c.read("/etc/notary-keyd/keyd.toml")?.contains("[[policy]]"),
        "the reinstall replaced the edited conffile"
    );
    c.sign_as("alice", &key)
        .context("after remove and reinstall the same key signs")?;

    // Purge: still nothing of the keys is deleted, and it says so.
    let purged = apt(&c, "purge notary-keyd").context("apt-get purge")?;
    ensure!(
        purged.contains("kept /var/lib/notary-keyd"),
        "purge must say that it kept the keys:\n{purged}"
    );
    c.sh_ok(
        "test -n \"$(ls /var/lib/notary-keyd/soft)\" && grep -q '\"kind\":\"segment\"' /var/log/notary-keyd/audit-000001.jsonl",
    )
    .context("purge deleted keys or the audit log")?;
    Ok(())
}
