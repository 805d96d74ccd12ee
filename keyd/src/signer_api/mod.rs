//! notary-signer's gRPC API for a stock notary-server: `proto.KeyManagement`,
//! `proto.Signer` and `grpc.health.v1`, on TCP with mutual TLS (rustls,
//! TLS 1.2 and 1.3, HTTP/2). Off unless `[signer_api]` is configured.
//!
//! The server keeps its timestamp (and optionally snapshot) keys here. Keys
//! made through this API are bound to the (GUN, role) they were made for;
//! only they are visible through it, each only to the client that made it
//! (`client`), and they sign only metadata of their role. Signing goes through the same device queue and audit log as the
//! Unix-socket API; the caller recorded is the client certificate's subject.

mod client;
mod config;
mod health;
mod keys;
mod sign;
mod store;

pub(crate) use config::SignerApiConfig;

use crate::audit::{now_rfc3339, AuditLog, AuditRecord};
use crate::limits::ServerLimits;
use crate::registry::{KeyEntry, Registry};
use crate::served::Served;
use crate::signing::SigningCore;
use crate::status::refusal;
use crate::warn_throttle::WarnThrottle;
use client::{AllowedClients, Client};
use health::SignerHealth;
use keyd_proto::signer as pb;
use keyd_proto::Reason;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use store::ApiKeyStore;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Status};

#[derive(Clone)]
pub(crate) struct SignerApi {
    registry: Arc<Registry>,
    audit: AuditLog,
    signing: SigningCore,
    store: Arc<ApiKeyStore>,
    allowed: AllowedClients,
    backend: String,
    device_timeout: Duration,
    max_keys: Option<usize>,
    /// CreateKey runs one at a time, so two requests for the same (GUN,
    /// role) cannot both mint a key.
    create_lock: Arc<tokio::sync::Mutex<()>>,
    health: Arc<SignerHealth>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum StartError {
    #[error("[signer_api] cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("[signer_api] TLS setup failed: {0}")]
    Tls(tonic::transport::Error),
    #[error("[signer_api] cannot listen on {addr}: {error}")]
    Listen { addr: String, error: std::io::Error },
    #[error("[signer_api] cannot start its server thread: {0}")]
    Thread(std::io::Error),
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

fn read(path: &Path) -> Result<Vec<u8>, StartError> {
    std::fs::read(path).map_err(|error| StartError::Read {
        path: path.display().to_string(),
        error,
    })
}

/// Loads the TLS material, binds the listener and serves until `shutdown`
/// resolves. Errors in the configuration surface here, before serving.
pub(crate) async fn start(
    config: &SignerApiConfig,
    state_dir: &Path,
    signing: SigningCore,
    keys: (Arc<Registry>, AuditLog, &str),
    max_message_bytes: usize,
    limits: &ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<tokio::sync::oneshot::Receiver<()>, StartError> {
    // Our copy of the private key is wiped; tonic keeps its own for rustls.
    let tls_key = secrecy::zeroize::Zeroizing::new(read(&config.tls_key)?);
    let identity = Identity::from_pem(read(&config.tls_cert)?, tls_key.as_slice());
    let tls = ServerTlsConfig::new()
        .identity(identity)
        .client_ca_root(Certificate::from_pem(read(&config.client_ca)?))
        .client_auth_optional(false)
        .timeout(Duration::from_secs(10));
    // A notary-server that died or hung gives its connection back, as a
    // Unix-socket client does (an unauthenticated peer is cut off by the
    // TLS handshake timeout above).
    let mut builder = Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(limits.keepalive_interval_seconds)))
        .http2_keepalive_timeout(Some(Duration::from_secs(limits.keepalive_timeout_seconds)))
        .tls_config(tls)
        .map_err(StartError::Tls)?;
    let listen_error = |error| StartError::Listen {
        addr: config.listen.to_string(),
        error,
    };
    // Bound here, so a port in use fails the start; served on the API's own
    // thread (`serve_on_own_thread`).
    let listener = std::net::TcpListener::bind(config.listen).map_err(listen_error)?;
    listener.set_nonblocking(true).map_err(listen_error)?;
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let api = SignerApi::new(config, state_dir, signing, keys, reporter).await?;
    api.health.watch();
    let health_service = tonic::service::interceptor::InterceptedService::new(
        health_service,
        api.allowed.interceptor(),
    );
    let (key_management, signer) = api.services(max_message_bytes);
    let router = builder
        .add_service(health_service)
        .add_service(key_management)
        .add_service(signer);
    tracing::info!(listen = %config.listen, "signer API listening (mutual TLS)");
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let warnings = WarnThrottle::new();
    serve_on_own_thread(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let incoming = tokio_stream::StreamExt::filter_map(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            move |accepted| match accepted.and_then(|stream| admit(&permits, &warnings, stream)) {
                Ok(served) => served.map(Ok),
                Err(e) => Some(Err(e)),
            },
        );
        router
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
            .map_err(std::io::Error::other)
    })
    .map_err(StartError::Thread)
}

/// Runs the API's server on a thread of its own with a single-threaded
/// runtime; resolves when it has stopped.
///
/// notary-server sends every request on one HTTP/2 connection, whose
/// framing runs in one task anyway; on the daemon's shared runtime each of
/// its requests also crossed between the two workers (keyd-bench
/// --signer-api: about 5 µs more daemon CPU per signature at 16 streams,
/// 20 µs at one). A software key signs in place on this thread and other
/// devices on its blocking pool, and a flood on the Unix socket does not
/// delay notary-server's requests (nor the reverse).
fn serve_on_own_thread(
    serve: impl Future<Output = std::io::Result<()>> + Send + 'static,
) -> std::io::Result<tokio::sync::oneshot::Receiver<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (stopped, done) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("signer-api".into())
        .spawn(move || {
            if let Err(e) = runtime.block_on(serve) {
                tracing::error!(error = %e, "signer API stopped");
            }
            let _ = stopped.send(());
        })?;
    Ok(done)
}

/// A signer-API connection: tonic's TLS layer reads the peer's
/// certificates from it, and it holds one of the listener's permits.
type TcpServed = Served<TcpStream, TcpConnectInfo, OwnedSemaphorePermit>;

/// The connection, holding a permit, or `None` (it is closed at once) when
/// `[signer_api] max_connections` are open. The bound covers connections
/// still in their TLS handshake, which the handshake timeout ends, so
/// whoever can reach the port cannot use up the daemon's file descriptors
/// (nor, with the warning logged at most once a second, its journal).
fn admit(
    permits: &Arc<Semaphore>,
    warnings: &WarnThrottle<()>,
    stream: TcpStream,
) -> std::io::Result<Option<TcpServed>> {
    let Ok(permit) = Arc::clone(permits).try_acquire_owned() else {
        if let Some(held_back) = warnings.admit(()) {
            tracing::warn!(
                peer = ?stream.peer_addr().ok(),
                held_back,
                "signer API connection closed: [signer_api] max_connections are open"
            );
        }
        return Ok(None);
    };
    // Small request/response pairs: without TCP_NODELAY, Nagle's algorithm
    // meets the peer's delayed ACK and a reply can wait ~40 ms (measured:
    // p99 of 44 ms at 16 streams). tonic sets it only on listeners it binds.
    stream.set_nodelay(true)?;
    let info = stream.connect_info();
    Ok(Some(Served::new(stream, info, permit)))
}

type Services = (
    pb::key_management_server::KeyManagementServer<SignerApi>,
    pb::signer_server::SignerServer<SignerApi>,
);

impl SignerApi {
    /// The API over the daemon's registry, signing core and audit log, with
    /// its key store opened and its health published to `reporter`.
    pub(crate) async fn new(
        config: &SignerApiConfig,
        state_dir: &Path,
        signing: SigningCore,
        keys: (Arc<Registry>, AuditLog, &str),
        reporter: tonic_health::server::HealthReporter,
    ) -> Result<SignerApi, StartError> {
        let (registry, audit, default_backend) = keys;
        let backend = config
            .backend
            .clone()
            .unwrap_or_else(|| default_backend.to_string());
        let health = SignerHealth::new(reporter, registry.device(&backend).cloned()).await;
        Ok(SignerApi {
            health,
            backend,
            store: Arc::new(ApiKeyStore::open(state_dir)?),
            allowed: AllowedClients::new(&config.allowed_clients, &config.shares),
            device_timeout: config.device_timeout(),
            max_keys: config.max_keys,
            create_lock: Arc::new(tokio::sync::Mutex::new(())),
            registry,
            audit,
            signing,
        })
    }

    /// `proto.KeyManagement` and `proto.Signer`, taking requests of at
    /// most `max_message_bytes`.
    pub(crate) fn services(self, max_message_bytes: usize) -> Services {
        (
            pb::key_management_server::KeyManagementServer::new(self.clone())
                .max_decoding_message_size(max_message_bytes),
            pb::signer_server::SignerServer::new(self).max_decoding_message_size(max_message_bytes),
        )
    }
}

impl SignerApi {
    /// A record of `operation` on `key_id` (already bounded, as `KeyRef`
    /// makes it); the caller's subject comes with `client`.
    fn record(&self, operation: &str, key_id: &str) -> AuditRecord {
        AuditRecord {
            time: now_rfc3339(),
            operation: operation.to_string(),
            key_id: key_id.to_string(),
            ..Default::default()
        }
    }

    /// The allowed caller, or the refusal, audited with `record`.
    async fn client<T>(
        &self,
        request: &Request<T>,
        record: &AuditRecord,
    ) -> Result<Client, Status> {
        match self.allowed.identify(request) {
            Ok(c) => Ok(c),
            Err(refusal) => {
                let mut record = record.clone();
                record.client = refusal.subject;
                self.audit.begin(record).close(Err(refusal.status)).await
            }
        }
    }

    /// Runs device work under the configured deadline.
    async fn on_device<T>(
        &self,
        work: impl Future<Output = Result<T, Status>>,
    ) -> Result<T, Status> {
        with_deadline(self.device_timeout, work).await
    }

    /// Device work on the API's backend whose outcome says whether that
    /// backend can sign (see `health`).
    async fn on_signing_device<T>(
        &self,
        work: impl Future<Output = Result<T, Status>>,
    ) -> Result<T, Status> {
        let outcome = self.on_device(work).await;
        self.health.observe(&outcome).await;
        outcome
    }

    /// Records, before the key is first looked up or signs with, that it may
    /// now be in published metadata, so a crash cannot make it look unused
    /// (and be handed out again by CreateKey).
    fn mark_used(&self, key_id: &str, api_key: &store::ApiKey) -> Result<(), Status> {
        if api_key.used {
            return Ok(());
        }
        self.store
            .mark_used(key_id)
            .map_err(|e| refusal(Reason::StateError, e.to_string()))
    }

    /// A key this API made that `client` reaches (see `client`); another
    /// client's key is as unknown as a key that does not exist.
    fn reached(&self, client: &Client, key_id: &str) -> Option<store::ApiKey> {
        self.store
            .get(key_id)
            .filter(|k| self.allowed.reaches(client, k))
    }

    /// A key `client` reaches and the device still holds.
    async fn api_key(
        &self,
        client: &Client,
        key_id: &str,
        not_found: impl Fn(&str) -> Status,
    ) -> Result<(store::ApiKey, Arc<KeyEntry>), Status> {
        let not_found = || not_found(key_id);
        let api_key = self.reached(client, key_id).ok_or_else(not_found)?;
        let registry = Arc::clone(&self.registry);
        let id = key_id.to_string();
        let entry = self
            .on_device(async move { Ok(registry.find(&id).await) })
            .await?
            .ok_or_else(not_found)?;
        Ok((api_key, entry))
    }
}

/// The refusal for a signing key this API does not have.
fn not_found(key_id: &str) -> Status {
    refusal(
        Reason::KeyNotFound,
        format!("signing key not found: {key_id}"),
    )
}

/// `work`'s result, or DEADLINE_EXCEEDED once `limit` has passed: a stuck
/// device gives notary-server an error it reports instead of a hung publish.
/// (A blocking device call that overran finishes on its worker thread; its
/// result is dropped.)
async fn with_deadline<T>(
    limit: Duration,
    work: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
        Err(refusal(
            Reason::DeviceTimeout,
            format!(
                "backend did not answer within {limit:?} ([signer_api] device_timeout_seconds)"
            ),
        ))
    })
}

fn key_info(entry: &KeyEntry) -> pb::KeyInfo {
    pb::KeyInfo {
        key_id: Some(pb::KeyId {
            id: entry.key_id.clone(),
        }),
        algorithm: Some(pb::Algorithm {
            algorithm: entry.key.public.keytype().as_str().to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn device_work_past_the_deadline_fails_with_deadline_exceeded() {
        let stuck = std::future::pending::<Result<(), Status>>();
        let err = with_deadline(Duration::from_millis(50), stuck)
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::DeadlineExceeded);
        assert_eq!(Reason::of(&err), Some(Reason::DeviceTimeout));
        assert!(err.message().contains("device_timeout_seconds"), "{err:?}");
        let quick = async { Ok::<_, Status>(7) };
        assert_eq!(
            with_deadline(Duration::from_secs(5), quick).await.unwrap(),
            7
        );
    }
}
