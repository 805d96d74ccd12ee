//! The real notary-keyd binary on a temp socket, stopped by pid on drop.

use crate::process::terminate;
use crate::test_daemon::TestDaemon;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Path of a workspace binary next to the running test or bench executable
/// (`target/<profile>/NAME`). Build them first: `cargo build --bins`.
pub fn bin_path(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().context("no exe dir")?.to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    if !path.exists() {
        bail!(
            "{} not found: run `cargo build --bins` (same profile) first",
            path.display()
        );
    }
    Ok(path)
}

pub struct Daemon {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub config: PathBuf,
    /// The audit log's directory of segments.
    pub audit_dir: PathBuf,
    pub state_dir: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
    /// The (uid, gid) the daemon runs as, when not this process's.
    user: Option<(u32, u32)>,
    /// What it was started with, to write the config again from.
    spec: TestDaemon,
}

impl Daemon {
    /// Writes `config`'s TOML in a temp dir and starts the daemon on it
    /// (as `config`'s user, when it names one).
    pub(crate) fn launch(spec: TestDaemon) -> Result<Daemon> {
        let dir = tempfile::tempdir()?;
        let user = spec.user();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
        }
        let layout = spec.layout(dir.path());
        let mut daemon = Daemon {
            child: None,
            log: dir.path().join("keyd.log"),
            socket: layout.socket,
            config: layout.config,
            audit_dir: layout.audit_dir,
            state_dir: layout.state_dir,
            dir,
            env: spec.env_vars().to_vec(),
            user,
            spec,
        };
        daemon.write_config()?;
        daemon.spawn()?;
        Ok(daemon)
    }

    /// Writes the config file from the spec; opens the temp dir to others
    /// when the socket is shared with a group.
    fn write_config(&self) -> Result<()> {
        self.spec.write(&self.spec.layout(self.dir.path()))?;
        if self.spec.shares_socket() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(self.dir.path(), std::fs::Permissions::from_mode(0o711))?;
        }
        Ok(())
    }

    /// The (uid, gid) the daemon runs as, if not this process's.
    pub fn user(&self) -> Option<(u32, u32)> {
        self.user
    }

    fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut cmd = Command::new(bin_path("notary-keyd")?);
        cmd.arg("--config")
            .arg(&self.config)
            .env_remove("NOTARY_KEYD_SOCKET")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some((uid, gid)) = self.user {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(gid);
        }
        // CI runs as root; the daemon refuses root with a config file
        // unless told otherwise.
        if nix::unistd::geteuid().is_root() && self.user.is_none() {
            cmd.arg("--allow-root");
        }
        let child = cmd.spawn().context("starting notary-keyd")?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    bail!(
                        "notary-keyd exited ({status}) before listening:\n{}",
                        self.log_text()
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "notary-keyd did not listen within 20 s:\n{}",
            self.log_text()
        )
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether the process this harness started is still alive (it has not
    /// exited, crashed or been killed since).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every segment's text, oldest first (free space included).
    pub fn audit_text(&self) -> String {
        audit_text(&self.audit_dir)
    }

    /// The audit log's segment files, oldest first.
    pub fn audit_segments(&self) -> Vec<PathBuf> {
        audit_segments(&self.audit_dir)
    }

    /// `notary-keyd audit verify` over the log with the daemon's audit key:
    /// its report when the log is intact, an error with it otherwise (a
    /// torn or broken record, a gap, a bad checkpoint).
    pub fn audit_verify(&self) -> Result<String> {
        let out = std::process::Command::new(bin_path("notary-keyd")?)
            .args(["audit", "verify", "--key"])
            .arg(self.state_dir.join("audit-key.pem"))
            .arg(&self.audit_dir)
            .output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        anyhow::ensure!(out.status.success(), "audit verify: {text}");
        Ok(text)
    }

    /// Every line of the audit log, oldest first: the records of requests
    /// and the log's own (segment headers, starts, checkpoints).
    pub fn audit_chain(&self) -> Vec<serde_json::Value> {
        audit_chain(&self.audit_dir)
    }

    /// The decisions, oldest first: one line per request with its result
    /// (a request's outcome, or a decision made in one record), without the
    /// request records written while it was pending.
    ///
    /// A signature's outcome is appended after its reply, so while the
    /// daemon runs this waits (up to 5 s) until every request it sees has
    /// its outcome: a test that just got its reply reads the decision.
    pub fn audit_lines(&self) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut lines = self.audit_chain();
        while self.running() && has_open_request(&lines) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            lines = self.audit_chain();
        }
        lines.retain(|l| l.get("operation").is_some() && l["kind"] != "request");
        lines
    }

    /// Whether the daemon's process is alive (not exited, not a zombie).
    fn running(&self) -> bool {
        self.child.as_ref().is_some_and(|c| {
            std::fs::read_to_string(format!("/proc/{}/stat", c.id()))
                .ok()
                .and_then(|stat| {
                    let state = stat.rsplit_once(") ")?.1.chars().next()?;
                    Some(state != 'Z' && state != 'X')
                })
                .unwrap_or(false)
        })
    }

    /// SIGTERM by pid, then wait; SIGKILL after 10 s.
    pub fn stop(&mut self) -> Result<()> {
        match self.child.take() {
            Some(mut child) => terminate(&mut child, "notary-keyd", Duration::from_secs(10)),
            None => Ok(()),
        }
    }

    /// Restarts with [`TestDaemon::socket_group`], for a test that first
    /// works as its own user and then calls as others.
    pub fn open_to_group(&mut self, group: &str) -> Result<()> {
        self.spec = self.spec.clone().socket_group(group);
        self.write_config()?;
        self.restart()
    }

    /// SIGKILL by pid, as a crash would end it: no cleanup, no last write.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Waits for the daemon to end by itself (a fault injected into it
    /// killed it) and returns how it ended; fails after `limit`, leaving it
    /// running.
    pub fn wait_exit(&mut self, limit: Duration) -> Result<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        let Some(child) = self.child.as_mut() else {
            bail!("notary-keyd is not running");
        };
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "notary-keyd still runs after {limit:?}:\n{}",
            self.log_text()
        )
    }

    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.spawn()
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }
}

/// The segment files of the audit log in `dir`, oldest first.
fn audit_segments(dir: &Path) -> Vec<PathBuf> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("audit-") && n.ends_with(".jsonl"))
                })
                .collect()
        })
        .unwrap_or_default();
    segments.sort();
    segments
}

fn audit_text(dir: &Path) -> String {
    audit_segments(dir)
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect()
}

/// Every line of the audit log in `dir`, oldest first, for a log that no
/// [`Daemon`] of the test writes (personal mode, an offline command).
pub fn audit_chain(dir: &Path) -> Vec<serde_json::Value> {
    audit_text(dir)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Whether a request record in `chain` has no outcome yet.
fn has_open_request(chain: &[serde_json::Value]) -> bool {
    let answered: std::collections::HashSet<u64> = chain
        .iter()
        .filter(|l| l["kind"] == "outcome")
        .filter_map(|l| l["request"].as_u64())
        .collect();
    chain
        .iter()
        .filter(|l| l["kind"] == "request")
        .filter_map(|l| l["seq"].as_u64())
        .any(|seq| !answered.contains(&seq))
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
