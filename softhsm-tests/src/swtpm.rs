//! A real swtpm (TPM 2.0 simulator) in socket mode on free loopback ports
//! with its state in a temp dir, stopped by its pid when the guard drops.

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Swtpm {
    child: Option<Child>,
    state: tempfile::TempDir,
    /// Command port; the control port is `port + 1` (the swtpm TCTI's rule).
    pub port: u16,
}

/// Two consecutive free loopback ports (command, control).
fn free_port_pair() -> Result<u16> {
    for _ in 0..64 {
        let first = TcpListener::bind("127.0.0.1:0")?;
        let port = first.local_addr()?.port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no two consecutive free loopback ports")
}

impl Swtpm {
    /// Starts a fresh TPM (new state dir).
    pub fn start() -> Result<Swtpm> {
        let mut tpm = Swtpm {
            child: None,
            state: tempfile::tempdir()?,
            port: free_port_pair()?,
        };
        // The ports are free when chosen but bound only by swtpm, so a
        // test running alongside can take one first: a swtpm that exits
        // at once is tried again on other ports.
        for _ in 0..2 {
            match tpm.spawn() {
                Ok(()) => return Ok(tpm),
                Err(_) if tpm.child.is_none() => tpm.port = free_port_pair()?,
                Err(e) => return Err(e),
            }
        }
        tpm.spawn()?;
        Ok(tpm)
    }

    /// The TCTI string for tss-esapi and tpm2-tools.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// A `[[backend]]` section for this TPM, with key auth read from `key_auth`.
    pub fn backend_toml(&self, name: &str, key_auth: &Path) -> String {
        format!(
            "[[backend]]\nname = \"{name}\"\ntype = \"tpm\"\ntcti = \"{}\"\nkey_auth = {{ file = \"{}\" }}\n",
            self.tcti(),
            key_auth.display()
        )
    }

    /// Writes `auth` to a key-auth file (mode 0600) in this TPM's temp
    /// dir, for [`backend_toml`](Self::backend_toml).
    pub fn key_auth_file(&self, auth: &str) -> Result<PathBuf> {
        let path = self.state.path().join("key.auth");
        crate::write_secret(&path, &format!("{auth}\n"))?;
        Ok(path)
    }

    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn spawn(&mut self) -> Result<()> {
        let dir = self.state.path().display().to_string();
        let log = self.state.path().join("swtpm.log");
        let child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--tpmstate"])
            .arg(format!("dir={dir}"))
            .arg("--server")
            .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", self.port))
            .arg("--ctrl")
            .arg(format!(
                "type=tcp,port={},bindaddr=127.0.0.1",
                self.port + 1
            ))
            .args(["--flags", "not-need-init,startup-clear", "--log"])
            .arg(format!("file={},level=1", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting swtpm (apt-get install swtpm)")?;
        self.child = Some(child);
        // Ready when the control port accepts; the command port is left
        // alone because swtpm serves one command connection at a time.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port + 1)).is_ok() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    bail!("swtpm exited ({status}) before listening");
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        bail!("swtpm did not listen within 10 s")
    }

    /// Stops swtpm by pid with `signal` and waits for it.
    pub fn stop_with(&mut self, signal: Signal) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            let pid = Pid::from_raw(i32::try_from(child.id())?);
            let _ = kill(pid, signal);
            child.wait()?;
        }
        Ok(())
    }

    /// Kills it (SIGKILL): the TPM vanishes mid-run.
    pub fn kill(&mut self) -> Result<()> {
        self.stop_with(Signal::SIGKILL)
    }

    /// Starts it again on the same ports with the same state.
    pub fn start_again(&mut self) -> Result<()> {
        if self.child.is_some() {
            bail!("swtpm is still running");
        }
        self.spawn()
    }

    /// Runs a tpm2-tools command against this TPM; returns its stdout.
    pub fn tool(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(args[0])
            .args(&args[1..])
            .env("TPM2TOOLS_TCTI", self.tcti())
            .env("TSS2_LOG", "all+NONE")
            .output()
            .with_context(|| format!("running {} (apt-get install tpm2-tools)", args[0]))?;
        if !out.status.success() {
            bail!(
                "{} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.stop_with(Signal::SIGTERM);
    }
}
