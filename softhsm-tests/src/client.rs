//! A gRPC client to the daemon's socket.

use anyhow::{bail, Result};
use hyper_util::rt::TokioIo;
use keyd_proto::keyd as pb;
use keyd_proto::keyd::keyd_client::KeydClient;
use std::path::{Path, PathBuf};
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

pub async fn connect(socket: &Path) -> Result<KeydClient<Channel>> {
    let channel = channel(socket).await?;
    Ok(KeydClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20))
}

/// A raw channel, for other services on the socket (health, reflection).
pub async fn channel(socket: &Path) -> Result<Channel> {
    let path: PathBuf = socket.to_path_buf();
    let channel = Endpoint::try_from("http://keyd.invalid")?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await?;
    Ok(channel)
}

/// Sends `request` and reads the stream's progress events until the result.
pub async fn sign_request(
    client: &mut KeydClient<Channel>,
    request: pb::SignRequest,
) -> Result<pb::SignResult> {
    let mut stream = client.sign(request).await?.into_inner();
    while let Some(event) = stream.message().await? {
        if let Some(pb::sign_event::Event::Result(result)) = event.event {
            return Ok(result);
        }
    }
    bail!("Sign stream ended without a result")
}
