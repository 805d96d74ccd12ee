//! Connecting to the daemon's Unix socket, and only to a real daemon: the
//! kernel says which uid listens (`SO_PEERCRED`), and a socket served by
//! any other user gets not one byte (no request, no PIN).

use anyhow::{anyhow, Result};
use hyper_util::rt::TokioIo;
use keyd_proto::keyd::keyd_client::KeydClient;
use keyd_proto::socket::SYSTEM_RUNTIME_DIR;
use std::error::Error as StdError;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

pub(crate) type Client = KeydClient<Channel>;

/// Replies are small (keys, certificates, signatures) but leave room for a
/// long key list; requests are not limited here so the daemon's own
/// `max_message_bytes` decides and reports it.
const MAX_REPLY_BYTES: usize = 64 << 20;

/// The uids notary-keyd may run as for this user: the user itself (a
/// personal daemon), root, and the system service's user, which owns
/// `/run/notary-keyd` (only root can create it).
#[derive(Debug, Clone, Copy)]
struct TrustedUids {
    me: u32,
    service: Option<u32>,
}

impl TrustedUids {
    fn now() -> TrustedUids {
        TrustedUids {
            me: nix::unistd::geteuid().as_raw(),
            service: std::fs::symlink_metadata(SYSTEM_RUNTIME_DIR)
                .ok()
                .filter(|m| m.is_dir())
                .map(|m| m.uid()),
        }
    }

    fn allows(&self, uid: u32) -> bool {
        uid == self.me || uid == 0 || Some(uid) == self.service
    }
}

/// The process listening on the socket runs as a uid notary-keyd may not.
#[derive(Debug)]
struct UntrustedPeer {
    found: u32,
    trusted: TrustedUids,
}

impl fmt::Display for UntrustedPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let TrustedUids { me, service } = self.trusted;
        write!(
            f,
            "the process listening there runs as uid {}, but notary-keyd must run as uid {me} \
             (you), uid 0 (root)",
            self.found
        )?;
        match service {
            Some(uid) => write!(f, " or uid {uid} (owner of {SYSTEM_RUNTIME_DIR})")?,
            None => write!(f, " or the owner of {SYSTEM_RUNTIME_DIR} (absent)")?,
        }
        f.write_str("; nothing was sent to it")
    }
}

impl StdError for UntrustedPeer {}

/// Connects and asks the kernel who listens, before anything is written.
async fn open_checked(path: PathBuf, trusted: TrustedUids) -> std::io::Result<UnixStream> {
    let stream = UnixStream::connect(path).await?;
    let found = stream.peer_cred()?.uid();
    if !trusted.allows(found) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            UntrustedPeer { found, trusted },
        ));
    }
    Ok(stream)
}

/// Connects now (not lazily), so an absent daemon (or an impostor) is
/// reported before any request is built.
pub(crate) async fn connect(socket: &Path) -> Result<Client> {
    Ok(KeydClient::new(channel(socket).await?).max_decoding_message_size(MAX_REPLY_BYTES))
}

/// The checked connection itself, for the daemon's other services.
pub(crate) async fn channel(socket: &Path) -> Result<Channel> {
    let path: PathBuf = socket.to_path_buf();
    let trusted = TrustedUids::now();
    // The URI is required by tonic but unused: the connector ignores it.
    let endpoint = Endpoint::try_from("http://notary-keyd.invalid")?;
    let channel = endpoint
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(open_checked(path, trusted).await?)) }
        }))
        .await
        .map_err(|e| match untrusted_peer(&e) {
            Some(peer) => anyhow!("refusing notary-keyd at {}: {peer}", socket.display()),
            None => unreachable_error(socket, &e),
        })?;
    Ok(channel)
}

/// The peer refusal somewhere in tonic's chain of errors. An `io::Error`
/// hides the error it wraps from `source()`, so each one is opened.
fn untrusted_peer<'e>(e: &'e (dyn StdError + 'static)) -> Option<&'e UntrustedPeer> {
    let mut cause = Some(e);
    while let Some(c) = cause {
        let peer = c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<UntrustedPeer>());
        if peer.is_some() {
            return peer;
        }
        cause = c.source();
    }
    None
}

/// No daemon answers on the socket (exit code 4).
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot reach notary-keyd at {}: {cause}. Start it with `notary-keyd` (personal mode) or \
     `systemctl start notary-keyd.socket`, or point --keyd / NOTARY_KEYD_SOCKET at its socket.",
    socket.display()
)]
pub(crate) struct Unreachable {
    socket: PathBuf,
    cause: String,
}

impl Unreachable {
    pub(crate) fn new(socket: &Path, cause: String) -> Unreachable {
        Unreachable {
            socket: socket.to_path_buf(),
            cause,
        }
    }
}

fn unreachable_error(socket: &Path, e: &(dyn StdError + 'static)) -> anyhow::Error {
    Unreachable::new(socket, root_cause(e)).into()
}

/// The innermost error says what actually happened ("No such file or
/// directory", "Connection refused"); the outer ones only say "transport error".
fn root_cause(e: &(dyn StdError + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn missing_socket_gives_one_actionable_line() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("absent.sock");
        let err = connect(&socket).await.err().unwrap().to_string();
        assert!(
            err.starts_with(&format!(
                "cannot reach notary-keyd at {}: ",
                socket.display()
            )),
            "{err}"
        );
        assert!(err.contains("No such file or directory"), "{err}");
        assert!(err.contains("systemctl start notary-keyd.socket"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[tokio::test]
    async fn own_daemon_is_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("keyd.sock");
        let _listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let trusted = TrustedUids::now();
        assert!(open_checked(socket, trusted).await.is_ok());
    }

    #[test]
    fn only_me_root_and_the_service_user_are_trusted() {
        let trusted = TrustedUids {
            me: 1000,
            service: Some(998),
        };
        assert!(trusted.allows(1000) && trusted.allows(0) && trusted.allows(998));
        assert!(!trusted.allows(1001));
        let refusal = std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            UntrustedPeer {
                found: 1001,
                trusted,
            },
        );
        let peer = untrusted_peer(&refusal).unwrap().to_string();
        assert!(peer.contains("runs as uid 1001"), "{peer}");
        assert!(peer.contains("uid 1000 (you)"), "{peer}");
        assert!(
            peer.contains("uid 998 (owner of /run/notary-keyd)"),
            "{peer}"
        );
        assert!(peer.ends_with("nothing was sent to it"), "{peer}");
    }
}
