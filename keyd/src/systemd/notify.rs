//! sd_notify(3) without libsystemd: one datagram per state change to the
//! socket systemd names in `$NOTIFY_SOCKET`. Without that variable every
//! call does nothing, so the daemon behaves the same when run by hand.

use std::io::ErrorKind;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

pub(crate) struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET`: a path, or `@name` for an abstract socket.
    pub(crate) fn from_env() -> Notifier {
        let Some(value) = std::env::var_os("NOTIFY_SOCKET") else {
            return Notifier { target: None };
        };
        match connect(value.as_encoded_bytes()) {
            Ok(target) => Notifier {
                target: Some(target),
            },
            Err(e) => {
                tracing::warn!(notify_socket = ?value, error = %e, "cannot use $NOTIFY_SOCKET; systemd will not hear from this daemon");
                Notifier { target: None }
            }
        }
    }

    /// Startup is done: the config is loaded and the backends are opened.
    pub(crate) fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    pub(crate) fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }

    /// A reload starts; `ready` ends it. systemd matches the two by the
    /// monotonic timestamp (required by `Type=notify-reload`).
    pub(crate) fn reloading(&self) {
        let usec = monotonic_usec();
        self.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={usec}\nSTATUS=reloading configuration"
        ));
    }

    pub(crate) fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping: finishing in-flight requests");
    }

    pub(crate) fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    /// How often to send `WATCHDOG=1`: half the `WatchdogSec=` systemd asked
    /// for, or `None` when no watchdog is set for this process.
    pub(crate) fn watchdog_interval() -> Option<Duration> {
        if let Ok(pid) = std::env::var("WATCHDOG_PID") {
            if pid.parse::<u32>().ok() != Some(std::process::id()) {
                return None;
            }
        }
        let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
        (usec > 0).then(|| Duration::from_micros(usec / 2))
    }

    /// Waits at most `SEND_TIMEOUT` for room in systemd's queue, as
    /// libsystemd does without a limit: a lost READY=1 would fail the start.
    fn send(&self, message: &str) {
        let Some((socket, addr)) = &self.target else {
            return;
        };
        if let Err(e) = socket.send_to_addr(message.as_bytes(), addr) {
            tracing::warn!(error = %e, "cannot notify systemd");
        }
    }
}

/// Longest a notification may hold up the serving loop.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

fn connect(value: &[u8]) -> std::io::Result<(UnixDatagram, SocketAddr)> {
    let addr = match value.split_first() {
        Some((b'@', name)) => SocketAddr::from_abstract_name(name)?,
        Some((b'/', _)) => {
            SocketAddr::from_pathname(std::path::Path::new(std::ffi::OsStr::from_bytes(value)))?
        }
        _ => {
            return Err(std::io::Error::new(
                ErrorKind::Unsupported,
                "only path and abstract (@) notify sockets are supported",
            ))
        }
    };
    let socket = UnixDatagram::unbound()?;
    socket.set_write_timeout(Some(SEND_TIMEOUT))?;
    Ok((socket, addr))
}

/// `STATUS=` is one line; a newline would start a new assignment.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// CLOCK_MONOTONIC in microseconds, the clock systemd compares against.
fn monotonic_usec() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(t) => {
            let secs = u64::try_from(t.tv_sec()).unwrap_or(0);
            let nanos = u64::try_from(t.tv_nsec()).unwrap_or(0);
            secs * 1_000_000 + nanos / 1_000
        }
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_datagrams_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier {
            target: Some(connect(path.as_os_str().as_bytes()).unwrap()),
        };
        notifier.ready("2 backends\nup");
        notifier.reloading();
        let mut buf = [0u8; 256];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=2 backends up");
        let n = listener.recv(&mut buf).unwrap();
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(text.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{text}");
        let usec: u64 = text.lines().nth(1).unwrap()[15..].parse().unwrap();
        assert!(usec > 0);
    }

    #[test]
    fn abstract_and_relative_addresses() {
        assert!(connect(b"@notary-keyd-test").is_ok());
        assert!(connect(b"relative/path").is_err());
        assert!(connect(b"").is_err());
    }
}
