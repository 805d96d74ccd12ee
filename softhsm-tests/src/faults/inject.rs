//! A crash at an exact point: strace attaches to the running daemon and
//! sends it SIGKILL as one of its threads enters a given system call on a
//! given path (`-e inject=…:signal=KILL`). No hook in the daemon is
//! needed, and strace's log shows where it died. Needs root: the daemon
//! makes itself undumpable, so only CAP_SYS_PTRACE may trace it.

use crate::process::terminate;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One system call of a crash-safe write (`write_atomic`: temp file
/// `.<name>.tmp<pid>` beside the target, written, flushed, renamed onto
/// the target, then the directory flushed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteStep {
    /// The temp file exists, empty; its data is being written.
    WriteTemp,
    /// The temp file holds the data; it is being flushed.
    FlushTemp,
    /// The temp file is whole; it is being renamed onto the target.
    Rename,
    /// The target holds the new data; its directory is being flushed.
    FlushDir,
}

impl WriteStep {
    pub const ALL: [WriteStep; 4] = [
        WriteStep::WriteTemp,
        WriteStep::FlushTemp,
        WriteStep::Rename,
        WriteStep::FlushDir,
    ];

    fn syscalls(self) -> &'static [&'static str] {
        match self {
            WriteStep::WriteTemp => &["write", "pwrite64", "writev"],
            WriteStep::FlushTemp | WriteStep::FlushDir => &["fsync", "fdatasync"],
            WriteStep::Rename => &["rename", "renameat", "renameat2"],
        }
    }
}

/// strace attached to a daemon, armed to kill it; detached (by stopping
/// strace, by its pid) when dropped if it has not fired.
pub struct KillAt {
    child: Option<Child>,
    syscalls: &'static [&'static str],
    what: String,
    _dir: tempfile::TempDir,
    log: PathBuf,
}

impl KillAt {
    /// Kills daemon `pid` at `step` of the `nth` crash-safe write of
    /// `target` by this process. strace counts per thread: give the daemon
    /// one async worker (`TOKIO_WORKER_THREADS=1`) for `nth` > 1, so the
    /// count follows the order of its requests.
    pub fn write_of(pid: u32, target: &Path, step: WriteStep, nth: u32) -> Result<KillAt> {
        let dir = target.parent().context("target has no directory")?;
        let name = target
            .file_name()
            .context("target has no file name")?
            .to_string_lossy();
        // strace matches rename(2) by its first path only: the temp file.
        let path = match step {
            WriteStep::FlushDir => dir.to_path_buf(),
            _ => dir.join(format!(".{name}.tmp{pid}")),
        };
        Self::attach(
            pid,
            step.syscalls(),
            &path,
            nth,
            format!("{step:?} #{nth} of {}", target.display()),
        )
    }

    fn attach(
        pid: u32,
        syscalls: &'static [&'static str],
        path: &Path,
        nth: u32,
        what: String,
    ) -> Result<KillAt> {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("strace.log");
        let set = syscalls.join(",");
        let child = Command::new("strace")
            .args(["-f", "-qq", "-o"])
            .arg(&log)
            .args(["-e", &format!("trace={set}"), "-e", "signal=none", "-e"])
            .arg(format!("inject={set}:signal=KILL:when={nth}"))
            .arg("-P")
            .arg(path)
            .arg("-p")
            .arg(pid.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting strace (apt-get install strace; scripts/test-all.sh does)")?;
        let mut kill = KillAt {
            child: Some(child),
            syscalls,
            what,
            _dir: dir,
            log,
        };
        kill.wait_attached(pid)?;
        Ok(kill)
    }

    /// Until every thread of `pid` is traced (strace attaches them one by one).
    fn wait_attached(&mut self, pid: u32) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if all_traced(pid)? {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    let mut err = String::new();
                    if let Some(mut e) = child.stderr.take() {
                        use std::io::Read;
                        let _ = e.read_to_string(&mut err);
                    }
                    self.child = None;
                    bail!("strace exited ({status}) before attaching: {err}");
                }
            }
            if Instant::now() > deadline {
                bail!("strace did not attach to every thread of {pid} within 20 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// strace's log: the calls it saw; the one SIGKILL came in never returns.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails unless SIGKILL ended the daemon (`status`) inside one of the
    /// calls (strace shows such a call as never returning, `= ?`).
    pub fn check_killed_there(&self, status: std::process::ExitStatus) -> Result<()> {
        use std::os::unix::process::ExitStatusExt;
        let log = self.log();
        let died_inside = log.lines().any(|line| {
            let call = line.split_whitespace().nth(1).unwrap_or("");
            self.syscalls
                .iter()
                .any(|s| call.starts_with(&format!("{s}(")))
                && (line.ends_with("= ?") || line.ends_with("<unfinished ...>"))
        });
        if status.signal() != Some(nix::libc::SIGKILL) || !died_inside {
            bail!(
                "the daemon was not killed at {} (it ended: {status}); strace log:\n{log}",
                self.what
            );
        }
        Ok(())
    }
}

impl std::fmt::Debug for KillAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)
    }
}

impl Drop for KillAt {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM makes strace detach and leave the daemon running.
            let _ = terminate(&mut child, "strace", Duration::from_secs(5));
        }
    }
}

fn all_traced(pid: u32) -> Result<bool> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))?;
    for task in tasks {
        let status = std::fs::read_to_string(task?.path().join("status")).unwrap_or_default();
        let traced = status
            .lines()
            .find_map(|l| l.strip_prefix("TracerPid:"))
            .is_some_and(|t| t.trim() != "0");
        if !traced {
            return Ok(false);
        }
    }
    Ok(true)
}
