//! A throwaway Debian 12 with systemd as PID 1: the cached root
//! (`root.rs`) booted by `systemd-nspawn -b --register=no --keep-unit` on a
//! volatile overlay (every write lands in memory and is gone at the end),
//! commands run inside with `nsenter`, and the container powered off (by
//! the nspawn's pid; the leader's pid if that does not end it) on drop.
//!
//! Machines that cannot boot one (not root, no systemd-nspawn or
//! debootstrap) fail the tests with a SKIPPED line naming the reason,
//! unless `NOTARY_KEYD_ALLOW_NO_CONTAINER=1` lets them skip: a missing
//! container must never look like a pass by accident.

mod operator;
mod root;
mod sources;

pub use operator::{repo, source_binds, SOCKET, SOURCE};
use root::debian_root;

use crate::process::output_within;
use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Set to `1` to let container tests skip on a machine that cannot boot one.
pub const ALLOW_SKIP: &str = "NOTARY_KEYD_ALLOW_NO_CONTAINER";

/// The longest a command inside may run before it is killed and fails.
const COMMAND_LIMIT: Duration = Duration::from_secs(180);

/// Why this machine cannot boot a container, if it cannot.
fn cannot_boot() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("systemd-nspawn and debootstrap need root".into());
    }
    for (tool, package) in [
        ("systemd-nspawn", "systemd-container"),
        ("debootstrap", "debootstrap"),
        ("nsenter", "util-linux"),
        ("setpriv", "util-linux"),
    ] {
        let found = ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
            .iter()
            .any(|d| Path::new(d).join(tool).exists());
        if !found {
            return Some(format!("{tool} is missing (package {package})"));
        }
    }
    None
}

/// `Ok(true)`: boot containers. `Ok(false)`: this machine cannot, and
/// `$NOTARY_KEYD_ALLOW_NO_CONTAINER=1` says to skip (printed as SKIPPED).
/// An error otherwise, so a machine without containers fails loudly.
pub fn can_boot(test: &str) -> Result<bool> {
    let Some(reason) = cannot_boot() else {
        return Ok(true);
    };
    // Written to the stream itself: libtest would hide an eprintln! of a
    // test that passes, and a skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED {test}: cannot boot a systemd container: {reason} ***\n"
    );
    if std::env::var(ALLOW_SKIP).is_ok_and(|v| v == "1") {
        return Ok(false);
    }
    bail!("cannot boot a systemd container: {reason}; set {ALLOW_SKIP}=1 to skip these tests")
}

/// A host directory visible inside the container.
pub struct Bind {
    pub host: PathBuf,
    pub inside: String,
    pub read_only: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// Only a loopback of its own (`--private-network`).
    Private,
    /// The host's network namespace, for a service the host must reach.
    Host,
}

pub struct Container {
    nspawn: Option<Child>,
    leader: Pid,
    console: PathBuf,
    _dir: tempfile::TempDir,
}

static BOOTED: AtomicUsize = AtomicUsize::new(0);

impl Container {
    /// Boots the cached root and waits until systemd reports the system
    /// running (or degraded: the failed units are printed).
    pub fn boot(binds: &[Bind], network: Network) -> Result<Container> {
        let root = debian_root()?;
        let dir = tempfile::tempdir()?;
        let console = dir.path().join("console.log");
        let log = std::fs::File::create(&console)?;
        // Unique per container: nspawn keeps per-machine state under /run.
        let machine = format!(
            "nkt-{}-{}",
            std::process::id(),
            BOOTED.fetch_add(1, Ordering::SeqCst)
        );
        let mut cmd = Command::new("setpriv");
        // If the test process dies without dropping us, nspawn still gets
        // SIGTERM and powers the container off.
        cmd.args(["--pdeathsig", "SIGTERM", "--", "systemd-nspawn", "--quiet"])
            .arg("--directory")
            .arg(&root)
            .args([
                "--boot",
                "--register=no",
                "--keep-unit",
                "--volatile=overlay",
            ])
            .arg(format!("--machine={machine}"));
        if network == Network::Private {
            cmd.arg("--private-network");
        }
        for bind in binds {
            let flag = if bind.read_only {
                "--bind-ro"
            } else {
                "--bind"
            };
            cmd.arg(format!("{flag}={}:{}", bind.host.display(), bind.inside));
        }
        let nspawn = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting systemd-nspawn")?;
        let nspawn_pid = Pid::from_raw(i32::try_from(nspawn.id())?);
        let mut container = Container {
            nspawn: Some(nspawn),
            leader: nspawn_pid,
            console,
            _dir: dir,
        };
        container.leader = container.find_leader(nspawn_pid)?;
        container.wait_running()?;
        Ok(container)
    }

    /// The container's PID 1 as the host sees it: nspawn's child.
    fn find_leader(&mut self, nspawn: Pid) -> Result<Pid> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(pid) = child_of(nspawn)? {
                return Ok(pid);
            }
            if let Some(child) = self.nspawn.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.nspawn = None;
                    bail!("systemd-nspawn exited ({status}):\n{}", self.console_text());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "systemd-nspawn started no container in 60 s:\n{}",
                    self.console_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_running(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            // Fails while the container's systemd has no bus yet.
            let out = self.sh("systemctl is-system-running --wait")?;
            match text(&out.stdout).trim() {
                "running" => return Ok(()),
                "degraded" => {
                    let failed = self.sh("systemctl --failed --no-legend")?;
                    eprintln!(
                        "container is degraded; failed units:\n{}",
                        text(&failed.stdout)
                    );
                    return Ok(());
                }
                _ if Instant::now() > deadline => bail!(
                    "the container's systemd did not settle in 120 s: {}{}\nconsole:\n{}",
                    text(&out.stdout),
                    text(&out.stderr),
                    self.console_text()
                ),
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    pub fn leader(&self) -> Pid {
        self.leader
    }

    /// Runs `script` with `/bin/sh` inside, as root, in a clean environment.
    pub fn sh(&self, script: &str) -> Result<Output> {
        output_within(
            Command::new("nsenter")
                .arg("--target")
                .arg(self.leader.to_string())
                .args(["-m", "-u", "-i", "-n", "-p", "-r", "-w", "--", "env", "-i"])
                .args([
                    "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                    "LANG=C.UTF-8",
                    "SYSTEMD_COLORS=0",
                    "SYSTEMD_PAGER=",
                    "/bin/sh",
                    "-c",
                    script,
                ]),
            COMMAND_LIMIT,
        )
        .with_context(|| format!("running in the container: {script}"))
    }

    /// `sh` that must succeed; returns its stdout, or fails with all output.
    pub fn sh_ok(&self, script: &str) -> Result<String> {
        let out = self.sh(script)?;
        if !out.status.success() {
            bail!(
                "in the container, `{script}` failed ({}):\n{}{}",
                out.status,
                text(&out.stdout),
                text(&out.stderr)
            );
        }
        Ok(text(&out.stdout))
    }

    /// A path inside the container as the host reaches it (through the
    /// leader's root), e.g. to connect to a socket or write a file.
    pub fn path(&self, inside: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.leader)).join(inside.trim_start_matches('/'))
    }

    /// What systemd and the container printed on its console.
    pub fn console_text(&self) -> String {
        std::fs::read_to_string(&self.console).unwrap_or_default()
    }

    /// Powers off: SIGTERM to nspawn (an orderly shutdown), then SIGKILL to
    /// the leader (which ends every process inside) and nspawn.
    fn stop(&mut self) -> Result<()> {
        let Some(mut nspawn) = self.nspawn.take() else {
            return Ok(());
        };
        let pid = Pid::from_raw(i32::try_from(nspawn.id())?);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while nspawn.try_wait()?.is_none() {
            if Instant::now() > deadline {
                if self.leader != pid {
                    let _ = kill(self.leader, Signal::SIGKILL);
                }
                let _ = nspawn.kill();
                nspawn.wait()?;
                bail!("the container ignored its poweroff for 30 s; killed");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("stopping the container: {e}");
        }
    }
}

/// The `systemd` process whose parent is `parent`, from /proc (nspawn's
/// helper children are named `systemd-nspawn` until one becomes init).
fn child_of(parent: Pid) -> Result<Option<Pid>> {
    for entry in std::fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "PID (COMM) STATE PPID …"; COMM may hold spaces and parentheses.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map(|(_, c)| c);
        let ppid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(parent.as_raw()) && comm == Some("systemd") {
            return Ok(Some(Pid::from_raw(pid)));
        }
    }
    Ok(None)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
