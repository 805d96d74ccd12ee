//! Who is calling: the Unix socket's peer credentials and groups, read by
//! the kernel at connect time (SO_PEERCRED, SO_PEERGROUPS; see peer.rs).
//! Nothing the caller says about itself counts.

use crate::peer::PeerInfo;
use std::sync::Arc;
use tonic::{Request, Status};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Caller {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: a user added to a group (`usermod -aG`) is a
    /// member for `gids` rules, as for the socket file's group permission.
    pub groups: Arc<[u32]>,
    /// Informational only: pids are reused, so policy never uses it.
    pub pid: Option<i32>,
}

impl Caller {
    pub(crate) fn of<T>(request: &Request<T>) -> Result<Caller, Status> {
        let info = request.extensions().get::<PeerInfo>();
        let (cred, groups) = info
            .and_then(|info| info.cred.map(|cred| (cred, Arc::clone(&info.groups))))
            .ok_or_else(|| {
                Status::permission_denied("caller identity unavailable (not a Unix socket peer)")
            })?;
        Ok(Caller {
            uid: cred.uid(),
            gid: cred.gid(),
            groups,
            pid: cred.pid(),
        })
    }

    /// In group `gid`, as primary or supplementary group.
    pub(crate) fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }
}
