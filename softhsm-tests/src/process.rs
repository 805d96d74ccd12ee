//! Stopping a child process this harness started: by its pid, politely
//! first, so the tests never touch a process they did not start.

use anyhow::{bail, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::process::Child;
use std::time::{Duration, Instant};

/// SIGTERM by pid, then waits; SIGKILL after `grace`.
pub fn terminate(child: &mut Child, name: &str, grace: Duration) -> Result<()> {
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
