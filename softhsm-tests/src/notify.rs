//! A real `$NOTIFY_SOCKET`: a datagram socket in a temp dir that receives
//! what the daemon tells systemd (READY=1, STATUS=, WATCHDOG=1, …).

use anyhow::{bail, Result};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Safety net for a daemon that never sends what a test waits for; tests
/// wait for messages, never for time.
const GIVE_UP: Duration = Duration::from_secs(60);

pub struct NotifyListener {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
    socket: UnixDatagram,
}

impl NotifyListener {
    pub fn new() -> Result<NotifyListener> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path)?;
        Ok(NotifyListener {
            _dir: dir,
            path,
            socket,
        })
    }

    /// The `NOTIFY_SOCKET` value for the daemon's environment.
    pub fn env(&self) -> (&'static str, String) {
        ("NOTIFY_SOCKET", self.path.display().to_string())
    }

    /// Receives messages until one satisfies `done`; returns all of them,
    /// that one last.
    pub fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> Result<Vec<String>> {
        let deadline = Instant::now() + GIVE_UP;
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("no {what} notification within {GIVE_UP:?}; got {seen:?}");
            }
            self.socket.set_read_timeout(Some(left))?;
            match self.socket.recv(&mut buf) {
                Ok(n) => {
                    let message = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let hit = done(&message);
                    seen.push(message);
                    if hit {
                        return Ok(seen);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Messages already received, without waiting.
    pub fn pending(&self) -> Result<Vec<String>> {
        self.socket.set_nonblocking(true)?;
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = self.socket.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        self.socket.set_nonblocking(false)?;
        Ok(seen)
    }
}

/// The value of `KEY=` in a notification, if present.
pub fn field<'a>(message: &'a str, key: &str) -> Option<&'a str> {
    message
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}
