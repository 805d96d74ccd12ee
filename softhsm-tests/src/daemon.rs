//! The real notary-keyd binary on a temp socket, stopped by pid on drop.

use crate::process::terminate;
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
    pub audit_log: PathBuf,
    pub state_dir: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
    /// The (uid, gid) the daemon runs as, when not this process's.
    user: Option<(u32, u32)>,
}

impl Daemon {
    /// Writes a config from `[server]` defaults in a temp dir plus `rest`
    /// (backend and policy sections) and starts the daemon with `env`.
    pub fn start(rest: &str, env: &[(&str, &str)]) -> Result<Daemon> {
        Self::start_auditing_to(None, rest, env)
    }

    /// As [`start`](Self::start), with the daemon running as `uid`:`gid`
    /// (this process must be root), owning its temp dir. Whatever else it
    /// needs (a token, PIN files) the test hands over itself; callers
    /// other than `uid` need a `[[policy]]` rule.
    pub fn start_as(uid: u32, gid: u32, rest: &str, env: &[(&str, &str)]) -> Result<Daemon> {
        let mut daemon = Self::configure(None, rest, env)?;
        std::os::unix::fs::chown(daemon.dir.path(), Some(uid), Some(gid))?;
        daemon.user = Some((uid, gid));
        daemon.spawn()?;
        Ok(daemon)
    }

    /// The (uid, gid) the daemon runs as, if not this process's.
    pub fn user(&self) -> Option<(u32, u32)> {
        self.user
    }

    /// As [`start`](Self::start), with the audit log at `audit_log` when
    /// given (on a filesystem a test fills, say) instead of the temp dir.
    pub fn start_auditing_to(
        audit_log: Option<&Path>,
        rest: &str,
        env: &[(&str, &str)],
    ) -> Result<Daemon> {
        let mut daemon = Self::configure(audit_log, rest, env)?;
        daemon.spawn()?;
        Ok(daemon)
    }

    fn configure(audit_log: Option<&Path>, rest: &str, env: &[(&str, &str)]) -> Result<Daemon> {
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("keyd.sock");
        let state_dir = dir.path().join("state");
        let audit_log = audit_log.map_or_else(|| dir.path().join("audit.jsonl"), Path::to_path_buf);
        let config = dir.path().join("keyd.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nsocket = \"{}\"\nstate_dir = \"{}\"\naudit_log = \"{}\"\n\n{rest}",
                socket.display(),
                state_dir.display(),
                audit_log.display()
            ),
        )?;
        Ok(Daemon {
            child: None,
            log: dir.path().join("keyd.log"),
            dir,
            socket,
            config,
            audit_log,
            state_dir,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            user: None,
        })
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

    pub fn audit_lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.audit_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// SIGTERM by pid, then wait; SIGKILL after 10 s.
    pub fn stop(&mut self) -> Result<()> {
        match self.child.take() {
            Some(mut child) => terminate(&mut child, "notary-keyd", Duration::from_secs(10)),
            None => Ok(()),
        }
    }

    /// Restarts with the socket owned by `group` (mode 0660) and the temp
    /// dir traversable, so callers of that group run through setpriv reach
    /// the socket and meet the policy.
    pub fn open_to_group(&mut self, group: &str) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let text = std::fs::read_to_string(&self.config)?;
        std::fs::write(
            &self.config,
            text.replacen(
                "[server]\n",
                &format!("[server]\nsocket_group = {group:?}\n"),
                1,
            ),
        )?;
        std::fs::set_permissions(self.dir.path(), std::fs::Permissions::from_mode(0o711))?;
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

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
