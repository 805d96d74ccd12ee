//! Who is calling: the Unix socket's peer credentials, read by the kernel at
//! connect time (SO_PEERCRED). Nothing the caller says about itself counts.

use tonic::transport::server::UdsConnectInfo;
use tonic::{Request, Status};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    /// Informational only: pids are reused, so policy never uses it.
    pub pid: Option<i32>,
}

impl Caller {
    pub fn of<T>(request: &Request<T>) -> Result<Caller, Status> {
        let cred = request
            .extensions()
            .get::<UdsConnectInfo>()
            .and_then(|info| info.peer_cred)
            .ok_or_else(|| {
                Status::permission_denied("caller identity unavailable (not a Unix socket peer)")
            })?;
        Ok(Caller {
            uid: cred.uid(),
            gid: cred.gid(),
            pid: cred.pid(),
        })
    }
}
