//! The Unix-socket listener and the gRPC server around the service.

use crate::audit::rpc::AuditService;
use crate::limits::{ServerLimits, UidCounts};
use crate::peer::{self, PeerStream};
use crate::request_limit::RequestsPerUid;
use crate::service::KeydService;
use crate::warn_throttle::WarnThrottle;
use keyd_proto::keyd::audit_server::AuditServer;
use keyd_proto::keyd::keyd_server::KeydServer;
use keyd_proto::socket::{check_private_dir, personal_socket, UntrustedDir};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Server;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ListenError {
    #[error("another notary-keyd is already listening on {0}")]
    InUse(String),
    #[error("{path} exists and is not a socket; refusing to replace it")]
    NotASocket { path: String },
    #[error("cannot listen on {path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("socket group {0:?} does not exist")]
    NoGroup(String),
    #[error(transparent)]
    UntrustedDir(#[from] UntrustedDir),
}

/// Binds the socket: creates a private parent directory if needed, removes a
/// stale socket left by a crash (but never a live one or a non-socket), and
/// sets mode 0660 with an optional group (0600 without one). The personal
/// socket's directory must be this user's alone (`check_private_dir`):
/// clients look for the daemon there, so whoever else could write it could
/// listen in the daemon's place.
pub(crate) fn bind(path: &Path, group: Option<&str>) -> Result<UnixListener, ListenError> {
    let io = |error: std::io::Error| ListenError::Io {
        path: path.display().to_string(),
        error,
    };
    if let Some(dir) = path.parent() {
        if std::fs::symlink_metadata(dir).is_err() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io)?;
        }
        if personal_socket().as_deref() == Some(path) {
            check_private_dir(dir, nix::unistd::geteuid().as_raw())?;
        }
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(ListenError::NotASocket {
                path: path.display().to_string(),
            });
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ListenError::InUse(path.display().to_string()));
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    let listener = UnixListener::bind(path).map_err(io)?;
    let mode = match group {
        Some(name) => {
            let gid = nix::unistd::Group::from_name(name)
                .ok()
                .flatten()
                .ok_or_else(|| ListenError::NoGroup(name.to_string()))?
                .gid;
            nix::unistd::chown(path, None, Some(gid)).map_err(|e| io(e.into()))?;
            0o660
        }
        None => 0o600,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io)?;
    Ok(listener)
}

/// Serves until `shutdown` resolves, then stops accepting and lets in-flight
/// requests finish.
pub(crate) async fn serve(
    listener: UnixListener,
    service: KeydService,
    audit: AuditService,
    max_message_bytes: usize,
    limits: &ServerLimits,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<KeydServer<KeydService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(keyd_proto::FILE_DESCRIPTOR_SET)
        .build_v1();
    let keyd = KeydServer::new(service)
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes);
    let mut builder = Server::builder()
        .max_concurrent_streams(limits.max_streams_per_connection)
        .http2_keepalive_interval(Some(Duration::from_secs(limits.keepalive_interval_seconds)))
        .http2_keepalive_timeout(Some(Duration::from_secs(limits.keepalive_timeout_seconds)))
        .layer(RequestsPerUid::new(limits.max_requests_per_uid));
    let router = builder
        .add_service(health_service)
        .add_service(keyd)
        .add_service(AuditServer::new(audit));
    let router = match reflection {
        Ok(r) => router.add_service(r),
        Err(e) => {
            tracing::warn!(error = %e, "gRPC reflection unavailable");
            router
        }
    };
    let counts = UidCounts::new(limits.max_connections_per_uid);
    let warnings = WarnThrottle::<u32>::new();
    let incoming =
        tokio_stream::StreamExt::filter_map(UnixListenerStream::new(listener), move |accepted| {
            match accepted.and_then(peer::accept) {
                Ok(stream) => admit(&counts, &warnings, stream).map(Ok),
                Err(e) => Some(Err(e)),
            }
        });
    router
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}

/// The connection, holding a slot of its uid's, or `None` (it is closed)
/// when that uid already has `max_connections_per_uid` open; the warning
/// for that is logged at most once a second per uid.
fn admit(
    counts: &UidCounts,
    warnings: &WarnThrottle<u32>,
    stream: PeerStream,
) -> Option<PeerStream> {
    let Some(uid) = stream.info().uid() else {
        return Some(stream);
    };
    match counts.take(uid) {
        Some(slot) => Some(stream.holding(Some(slot))),
        None => {
            if let Some(held_back) = warnings.admit(uid) {
                tracing::warn!(
                    uid,
                    held_back,
                    "connection closed: the uid has [server.limits] max_connections_per_uid connections open"
                );
            }
            None
        }
    }
}
