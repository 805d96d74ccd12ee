//! A real `faulty-front` process in front of a notary-server: told what to
//! fail by a rule file, killed and started again on the same port.

use crate::notary_stack::{NotaryServer, Pki};
use crate::process::{start_server, terminate};
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

pub struct FaultyFront {
    child: Option<Child>,
    dir: tempfile::TempDir,
    command: Vec<std::ffi::OsString>,
    pub port: u16,
    pub url: String,
}

impl FaultyFront {
    /// Starts it in front of `server`, with a certificate from `pki`
    /// (which issued the server's too, so clients trust both alike).
    pub fn start(pki: &Pki, server: &NotaryServer) -> Result<FaultyFront> {
        let tls = pki.issue("faulty-front", "serverAuth")?;
        let dir = tempfile::tempdir()?;
        let command = vec![
            "--cert".into(),
            tls.cert.into_os_string(),
            "--key".into(),
            tls.key.into_os_string(),
            "--upstream".into(),
            server.addr.to_string().into(),
            "--upstream-ca".into(),
            pki.ca_cert.clone().into_os_string(),
            "--dir".into(),
            dir.path().as_os_str().to_owned(),
        ];
        let mut front = FaultyFront {
            child: None,
            dir,
            command,
            port: 0,
            url: String::new(),
        };
        front.spawn(0)?;
        Ok(front)
    }

    fn spawn(&mut self, port: u16) -> Result<()> {
        let mut args = self.command.clone();
        args.extend(["--port".into(), port.to_string().into()]);
        let log = self.dir.path().join("front.log");
        let (child, port) = start_server("faulty-front", &args, self.dir.path(), &log)?;
        self.child = Some(child);
        self.port = port;
        self.url = format!("https://127.0.0.1:{port}");
        Ok(())
    }

    /// Replaces the rule file (`METHOD PATH-SUFFIX ACTION` lines; empty:
    /// forward everything). Takes effect from the next request.
    pub fn fail(&self, rules: &str) -> Result<()> {
        let tmp = self.dir.path().join("rule.tmp");
        std::fs::write(&tmp, rules)?;
        std::fs::rename(&tmp, self.dir.path().join("rule"))?;
        Ok(())
    }

    /// `requests.log`: one `METHOD PATH WHAT` line per request.
    pub fn requests(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("requests.log")).unwrap_or_default()
    }

    /// Waits until a `hold` rule holds a request; returns it (`METHOD PATH`).
    pub fn wait_held(&self, limit: Duration) -> Result<String> {
        let held: PathBuf = self.dir.path().join("held");
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(text) = std::fs::read_to_string(&held) {
                if text.ends_with('\n') {
                    return Ok(text.trim().to_string());
                }
            }
            if Instant::now() > deadline {
                bail!("no request held within {limit:?}:\n{}", self.requests());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL by pid: the server dies in the middle of what it does.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        let _ = std::fs::remove_file(self.dir.path().join("held"));
        Ok(())
    }

    /// Starts it again on the same port.
    pub fn start_again(&mut self) -> Result<()> {
        if self.child.is_some() {
            bail!("faulty-front still runs");
        }
        self.spawn(self.port)
    }
}

impl Drop for FaultyFront {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = terminate(&mut child, "faulty-front", Duration::from_secs(5));
        }
    }
}
