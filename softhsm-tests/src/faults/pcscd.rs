//! A pcscd of the test's own, to kill and start again without touching the
//! one the other tests share. pcscd's socket path is built in
//! (`/run/pcscd/pcscd.comm`), so it runs in a mount namespace of its own
//! with a temp dir bound over `/run/pcscd`; clients reach it through
//! `PCSCLITE_CSOCK_NAME`. One vpcd reader, on free ports outside those of
//! the shared pcscd (30000-30007). Needs root; stopped by its pid.

use crate::process::terminate;
use anyhow::{bail, Context, Result};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const VPCD_DRIVER: &str = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";
/// Where this module looks for two free consecutive ports (vpcd serves a
/// reader's second slot on the next port).
const PORTS: std::ops::Range<u16> = 30100..30900;

pub struct PrivatePcscd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// The vpcd port a virtual card connects to.
    pub port: u16,
}

impl PrivatePcscd {
    pub fn start() -> Result<PrivatePcscd> {
        if !Path::new(VPCD_DRIVER).exists() {
            bail!("{VPCD_DRIVER} is missing (apt-get install vsmartcard-vpcd)");
        }
        let dir = tempfile::tempdir()?;
        let port = free_pair()?;
        let conf = dir.path().join("reader.conf.d");
        std::fs::create_dir(&conf)?;
        std::fs::create_dir(dir.path().join("run"))?;
        // vpcd keeps its slots in library globals: a copy of its own.
        let driver = dir.path().join(format!("libifdvpcd-{port}.so"));
        std::fs::copy(VPCD_DRIVER, &driver)?;
        std::fs::write(
            conf.join(format!("vpcd-{port}")),
            format!(
                "FRIENDLYNAME \"Notary Private PCD {port}\"\nDEVICENAME /dev/null:{port}\nLIBPATH {}\nCHANNELID {port}\n",
                driver.display()
            ),
        )?;
        let mut pcscd = PrivatePcscd {
            dir,
            child: None,
            port,
        };
        pcscd.spawn()?;
        Ok(pcscd)
    }

    /// The value of `PCSCLITE_CSOCK_NAME` for its clients.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("run").join("pcscd.comm")
    }

    fn spawn(&mut self) -> Result<()> {
        let run = self.dir.path().join("run");
        // What a killed pcscd left: a new one refuses a socket that exists.
        for stale in ["pcscd.comm", "pcscd.pid"] {
            let _ = std::fs::remove_file(run.join(stale));
        }
        let log = std::fs::File::create(self.dir.path().join("pcscd.log"))?;
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(
                "mkdir -p /run/pcscd && mount --bind \"$1\" /run/pcscd && \
                 exec pcscd --foreground --config \"$2\"",
            )
            .arg("sh")
            .arg(&run)
            .arg(self.dir.path().join("reader.conf.d"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting a private pcscd (unshare, pcscd)")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                bail!("the private pcscd exited ({status}): {}", self.log());
            }
            if Instant::now() > deadline {
                bail!(
                    "the private pcscd did not listen within 20 s: {}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pcscd.log")).unwrap_or_default()
    }

    /// SIGKILL by pid: pcscd dies with every client's context and card
    /// connection.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Starts it again with the same reader.
    pub fn start_again(&mut self) -> Result<()> {
        if self.child.is_some() {
            bail!("the private pcscd still runs");
        }
        self.spawn()
    }
}

impl Drop for PrivatePcscd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = terminate(&mut child, "pcscd", Duration::from_secs(5));
        }
    }
}

/// Two consecutive ports free on every interface (vpcd listens on all).
fn free_pair() -> Result<u16> {
    for port in PORTS.step_by(2) {
        if TcpListener::bind(("0.0.0.0", port)).is_ok()
            && TcpListener::bind(("0.0.0.0", port + 1)).is_ok()
        {
            return Ok(port);
        }
    }
    bail!("no two free ports in {PORTS:?}")
}
