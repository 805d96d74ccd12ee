//! Accepted Unix-socket connections with their peer's identity as the
//! kernel recorded it at connect time: SO_PEERCRED (uid, primary gid, pid)
//! and SO_PEERGROUPS (supplementary groups). Both are read once per
//! connection, from the socket, so nothing the caller says counts and a
//! process that exits cannot be mistaken for another with its pid.

use crate::limits::UidSlot;
use crate::served::Served;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use tokio::net::unix::UCred;
use tokio::net::UnixStream;

/// What the kernel says about the process at the other end.
#[derive(Clone, Debug)]
pub(crate) struct PeerInfo {
    pub cred: Option<UCred>,
    /// Supplementary groups (without the primary one unless the process
    /// also lists it there).
    pub groups: Arc<[u32]>,
}

impl PeerInfo {
    pub(crate) fn uid(&self) -> Option<u32> {
        self.cred.map(|c| c.uid())
    }
}

/// A Unix-socket connection to serve, carrying its `PeerInfo` for every
/// request on it and, once admitted, its place among its uid's open
/// connections.
pub(crate) type PeerStream = Served<UnixStream, PeerInfo, Option<UidSlot>>;

/// Reads the peer's identity; a connection whose groups cannot be read is
/// refused rather than served with fewer groups than it has.
pub(crate) fn accept(stream: UnixStream) -> io::Result<PeerStream> {
    let cred = stream.peer_cred().ok();
    let groups = peer_groups(&stream)?.into();
    Ok(Served::new(stream, PeerInfo { cred, groups }, None))
}

/// SO_PEERGROUPS (Linux 4.13+). libc does not export the option on every
/// architecture, so its value is spelled out: 59, except on SPARC.
#[cfg(not(target_arch = "sparc64"))]
const SO_PEERGROUPS: nix::libc::c_int = 59;
#[cfg(target_arch = "sparc64")]
const SO_PEERGROUPS: nix::libc::c_int = 0x3d;

fn peer_groups(stream: &UnixStream) -> io::Result<Vec<u32>> {
    const GID: usize = std::mem::size_of::<nix::libc::gid_t>();
    let mut groups: Vec<nix::libc::gid_t> = vec![0; 32];
    loop {
        let mut len = nix::libc::socklen_t::try_from(groups.len() * GID)
            .map_err(|_| io::Error::other("too many groups"))?;
        // SAFETY: `groups` is a live, writable buffer of exactly `len` bytes
        // and `len` is a valid socklen_t the kernel may update; the fd is
        // open for the whole call because `stream` is borrowed.
        let rc = unsafe {
            nix::libc::getsockopt(
                stream.as_raw_fd(),
                nix::libc::SOL_SOCKET,
                SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let len = usize::try_from(len).unwrap_or(0) / GID;
        if rc == 0 {
            groups.truncate(len);
            return Ok(groups);
        }
        let error = io::Error::last_os_error();
        // ERANGE: the kernel wrote how much room the list needs.
        if error.raw_os_error() == Some(nix::libc::ERANGE) && len > groups.len() {
            groups.resize(len, 0);
            continue;
        }
        return Err(error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_this_process_as_the_peer() {
        let (a, _b) = UnixStream::pair().unwrap();
        let peer = accept(a).unwrap();
        let cred = peer.info().cred.expect("SO_PEERCRED on a socketpair");
        assert_eq!(cred.uid(), nix::unistd::getuid().as_raw());
        let mut ours: Vec<u32> = nix::unistd::getgroups()
            .unwrap()
            .into_iter()
            .map(|g| g.as_raw())
            .collect();
        let mut seen = peer.info().groups.to_vec();
        ours.sort_unstable();
        seen.sort_unstable();
        assert_eq!(seen, ours);
    }
}
