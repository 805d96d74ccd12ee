//! Connecting to the daemon's Unix socket.

use anyhow::{anyhow, Result};
use hyper_util::rt::TokioIo;
use keyd_proto::keyd::keyd_client::KeydClient;
use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

pub(crate) type Client = KeydClient<Channel>;

/// Replies are small (keys, certificates, signatures) but leave room for a
/// long key list; requests are not limited here so the daemon's own
/// `max_message_bytes` decides and reports it.
const MAX_REPLY_BYTES: usize = 64 << 20;

/// Connects now (not lazily), so an absent daemon is reported before any
/// request is built.
pub(crate) async fn connect(socket: &Path) -> Result<Client> {
    let path: PathBuf = socket.to_path_buf();
    // The URI is required by tonic but unused: the connector ignores it.
    let endpoint = Endpoint::try_from("http://notary-keyd.invalid")?;
    let channel = endpoint
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await
        .map_err(|e| unreachable_error(socket, &e))?;
    Ok(KeydClient::new(channel).max_decoding_message_size(MAX_REPLY_BYTES))
}

fn unreachable_error(socket: &Path, e: &(dyn StdError + 'static)) -> anyhow::Error {
    anyhow!(
        "cannot reach notary-keyd at {}: {}. Start it with `notary-keyd` (personal mode) or \
         `systemctl start notary-keyd.socket`, or point --keyd / NOTARY_KEYD_SOCKET at its socket.",
        socket.display(),
        root_cause(e)
    )
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
}
