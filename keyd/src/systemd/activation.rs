//! Socket activation (sd_listen_fds(3)): systemd binds the socket and passes
//! it as an inherited file descriptor (3, 4, … per `$LISTEN_FDS`, named by
//! `$LISTEN_FDNAMES`), so clients can connect before the daemon is up and
//! across restarts.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const FIRST_FD: RawFd = 3;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ActivationError {
    #[error("${var} is {value:?}, not a number")]
    BadNumber { var: &'static str, value: String },
    #[error("systemd passed {count} sockets named {names:?} and none is named {wanted:?} (set FileDescriptorName={wanted} in the .socket unit)")]
    NoSuchName {
        count: usize,
        names: Vec<String>,
        wanted: String,
    },
    #[error("passed descriptor {fd} ({name:?}) is not a Unix socket: {reason}")]
    NotUnixSocket {
        fd: RawFd,
        name: String,
        reason: String,
    },
}

/// Takes the listening socket named `name` that systemd passed to this
/// process. When exactly one socket was passed it is used whatever its name
/// (`systemd-socket-activate` without `--fdname`, or a unit without
/// `FileDescriptorName=`). `Ok(None)`: not socket-activated.
pub(crate) fn take_listener(name: &str) -> Result<Option<UnixListener>, ActivationError> {
    let Some(passed) = passed_fds()? else {
        return Ok(None);
    };
    let index = match passed.iter().position(|n| n == name) {
        Some(i) => i,
        None if passed.len() == 1 => 0,
        None => {
            return Err(ActivationError::NoSuchName {
                count: passed.len(),
                names: passed,
                wanted: name.to_string(),
            })
        }
    };
    let fd = RawFd::try_from(index)
        .ok()
        .and_then(|i| FIRST_FD.checked_add(i))
        .ok_or_else(|| ActivationError::BadNumber {
            var: "LISTEN_FDS",
            value: passed.len().to_string(),
        })?;
    let bad = |reason: String| ActivationError::NotUnixSocket {
        fd,
        name: passed[index].clone(),
        reason,
    };
    // Check the descriptor is open and a socket before anything owns it.
    let stat = nix::sys::stat::fstat(fd).map_err(|e| bad(e.to_string()))?;
    let kind = nix::sys::stat::SFlag::from_bits_truncate(stat.st_mode);
    if !kind.contains(nix::sys::stat::SFlag::S_IFSOCK) {
        return Err(bad("not a socket".into()));
    }
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(|e| bad(e.to_string()))?;
    // SAFETY: `fd` was passed to this very process by the service manager
    // ($LISTEN_PID is our pid), fstat shows it is open, and nothing else in
    // the daemon opens or owns descriptors by number: this is its only owner.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let listener = UnixListener::from(owned);
    // Fails for a socket of another address family.
    listener.local_addr().map_err(|e| bad(e.to_string()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| bad(e.to_string()))?;
    Ok(Some(listener))
}

/// Names of the descriptors passed to this process, or `None` when the
/// variables are absent or meant for another process (`$LISTEN_PID`).
fn passed_fds() -> Result<Option<Vec<String>>, ActivationError> {
    let Ok(pid) = std::env::var("LISTEN_PID") else {
        return Ok(None);
    };
    let pid: u32 = number("LISTEN_PID", &pid)?;
    if pid != std::process::id() {
        return Ok(None);
    }
    let count: usize = match std::env::var("LISTEN_FDS") {
        Ok(v) => number("LISTEN_FDS", &v)?,
        Err(_) => return Ok(None),
    };
    if count == 0 {
        return Ok(None);
    }
    let names = std::env::var("LISTEN_FDNAMES").unwrap_or_default();
    Ok(Some(names_for(count, &names)))
}

fn number<T: std::str::FromStr>(var: &'static str, value: &str) -> Result<T, ActivationError> {
    value.parse().map_err(|_| ActivationError::BadNumber {
        var,
        value: value.to_string(),
    })
}

/// One name per descriptor; missing names are "unknown", as in libsystemd.
fn names_for(count: usize, names: &str) -> Vec<String> {
    let mut given = names.split(':').filter(|_| !names.is_empty());
    (0..count)
        .map(|_| given.next().unwrap_or("unknown").to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_padded_with_unknown() {
        assert_eq!(names_for(2, "keyd:signer"), ["keyd", "signer"]);
        assert_eq!(names_for(2, ""), ["unknown", "unknown"]);
        assert_eq!(names_for(1, "keyd:extra"), ["keyd"]);
    }
}
