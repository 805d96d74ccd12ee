//! Stopping a child process this harness started: by its pid, politely
//! first, so the tests never touch a process they did not start.

use crate::daemon::bin_path;
use anyhow::{bail, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Starts `bin`, one of this crate's HTTPS servers (hostile-notary,
/// faulty-front), with `args`, its output appended to `log`, and waits
/// until it has written its port to `dir/port`. Fails with its log if it
/// exits or takes longer than 20 s.
pub(crate) fn start_server(
    bin: &str,
    args: &[OsString],
    dir: &Path,
    log: &Path,
) -> Result<(Child, u16)> {
    let port_file = dir.join("port");
    let _ = std::fs::remove_file(&port_file);
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let mut child = Command::new(bin_path(bin)?)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()?;
    let read_log = || std::fs::read_to_string(log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !port_file.exists() {
        if let Some(status) = child.try_wait()? {
            bail!("{bin} exited ({status}): {}", read_log());
        }
        if Instant::now() > deadline {
            let _ = terminate(&mut child, bin, Duration::from_secs(5));
            bail!("{bin} did not start: {}", read_log());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let port = std::fs::read_to_string(&port_file)?.trim().parse()?;
    Ok((child, port))
}

/// SIGTERM by pid, then waits; SIGKILL after `grace`.
pub(crate) fn terminate(child: &mut Child, name: &str, grace: Duration) -> Result<()> {
    let pid = Pid::from_raw(i32::try_from(child.id())?);
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    loop {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{name} ignored SIGTERM for {grace:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a command that is expected to exit by itself and returns its
/// output; if it is still running after `limit` (a daemon that started when
/// it should have refused), kills it by pid and fails instead of hanging.
pub fn output_within(command: &mut Command, limit: Duration) -> Result<Output> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("still running after {limit:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    if let Some(mut out) = child.stdout.take() {
        out.read_to_end(&mut stdout)?;
    }
    if let Some(mut err) = child.stderr.take() {
        err.read_to_end(&mut stderr)?;
    }
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}
