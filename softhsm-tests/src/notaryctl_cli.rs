//! `notaryctl` as a notary client in tests: its own trust dir, a notary
//! server (URL + CA) and a notary-keyd socket.

use crate::daemon::bin_path;
use crate::notary_stack::CliOutput;
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Notaryctl {
    dir: tempfile::TempDir,
    pub trust_dir: PathBuf,
    pub server_url: String,
    pub ca_cert: PathBuf,
    pub socket: PathBuf,
}

impl Notaryctl {
    pub fn new(server_url: &str, ca_cert: &Path, socket: &Path) -> Result<Notaryctl> {
        let dir = tempfile::tempdir()?;
        Ok(Notaryctl {
            trust_dir: dir.path().join("trust"),
            dir,
            server_url: server_url.to_string(),
            ca_cert: ca_cert.to_path_buf(),
            socket: socket.to_path_buf(),
        })
    }

    /// A scratch folder for target files and configs.
    pub fn work_dir(&self) -> &Path {
        self.dir.path()
    }

    /// `notaryctl --keyd S -s URL --tlscacert CA -d TRUST ARGS`.
    pub fn run(&self, args: &[&str]) -> Result<CliOutput> {
        self.run_with(&[], args)
    }

    /// As [`run`](Self::run) with extra leading flags (e.g. `-c config.json`).
    pub fn run_with(&self, flags: &[&str], args: &[&str]) -> Result<CliOutput> {
        self.run_env(&[], flags, args)
    }

    /// As [`run_with`](Self::run_with) with extra environment variables
    /// (e.g. `NOTARY_KEYD_PIN` for a command that signs with a locked token).
    pub fn run_env(
        &self,
        env: &[(&str, &str)],
        flags: &[&str],
        args: &[&str],
    ) -> Result<CliOutput> {
        let out = self
            .command(Command::new(bin_path("notaryctl")?), env, flags, args)
            .stdin(Stdio::null())
            .output()?;
        Ok(CliOutput {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// `command` (notaryctl itself, or a wrapper such as `unshare -n
    /// notaryctl`) with this client's flags, environment and working dir.
    pub fn command(
        &self,
        mut command: Command,
        env: &[(&str, &str)],
        flags: &[&str],
        args: &[&str],
    ) -> Command {
        command
            .arg("--keyd")
            .arg(&self.socket)
            .arg("-s")
            .arg(&self.server_url)
            .arg("--tlscacert")
            .arg(&self.ca_cert)
            .arg("-d")
            .arg(&self.trust_dir)
            .args(flags)
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("NOTARY_KEYD_SOCKET")
            .env("HOME", self.dir.path())
            .envs(env.iter().copied());
        command
    }
}
