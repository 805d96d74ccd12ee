//! notary-keyd: keeps Notary signing keys in hardware and signs for
//! authorised callers over a Unix socket.

mod audit;
mod backends;
mod caller;
mod config;
mod device;
mod pin_source;
mod policy;
mod registry;
mod server;
mod service;
mod state;

use anyhow::{bail, Context, Result};
use clap::Parser;
use config::Config;
use device::Device;
use std::path::PathBuf;
use std::sync::Arc;

/// notary-keyd keeps Notary (TUF) signing keys in PKCS#11 tokens or its
/// software keystore and signs metadata for callers its policy allows.
///
/// With no --config it runs in personal mode: a software keystore under
/// $XDG_DATA_HOME/notary-keyd (or ~/.local/share/notary-keyd), listening on
/// $XDG_RUNTIME_DIR/notary-keyd/keyd.sock (or /tmp/notary-keyd-UID/keyd.sock),
/// usable only by the user who started it. Talk to it with `notaryctl`.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Args {
    /// TOML configuration (see docs/notary-keyd.example.toml).
    #[arg(long, short = 'c', value_name = "PATH")]
    config: Option<PathBuf>,
    /// Listen on this socket instead of the configured one.
    #[arg(long, value_name = "PATH", env = "NOTARY_KEYD_SOCKET")]
    socket: Option<PathBuf>,
    /// Check the configuration and exit (0 when valid).
    #[arg(long)]
    check_config: bool,
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: finishing in-flight requests, then exiting"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: finishing in-flight requests, then exiting"),
    }
}

/// SIGHUP releases the devices the daemon holds open (YubiKeys) so other
/// programs can use them; the daemon re-opens them when it next needs them.
async fn release_on_sighup(registry: Arc<registry::Registry>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch SIGHUP");
            return;
        }
    };
    while hup.recv().await.is_some() {
        service::yubikey::release_all(registry.devices()).await;
    }
}

fn open_devices(config: &Config) -> Vec<Arc<Device>> {
    config
        .backends
        .iter()
        .filter_map(|b| match b.open(&config.server.state_dir) {
            Ok(backend) => {
                if let keyd_backends::Availability::Unavailable(reason) = backend.availability() {
                    tracing::warn!(backend = %b.name, %reason, "backend unavailable");
                }
                Some(Arc::new(Device::new(
                    b.name.clone(),
                    backend,
                    b.pin_cache.clone(),
                )))
            }
            Err(reason) => {
                tracing::error!(backend = %b.name, %reason, "backend cannot be opened");
                None
            }
        })
        .collect()
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    init_logging();
    let uid = nix::unistd::geteuid().as_raw();
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::personal(uid).map_err(anyhow::Error::msg)?,
    };
    if args.check_config {
        println!("configuration is valid");
        return Ok(());
    }
    if args.config.is_none() {
        tracing::info!("no --config: personal mode (software keystore, only uid {uid} allowed)");
    }
    let socket = args
        .socket
        .clone()
        .or_else(|| config.server.socket.clone())
        .unwrap_or_else(|| PathBuf::from(keyd_proto::socket::SYSTEM_SOCKET));

    std::fs::create_dir_all(&config.server.state_dir).with_context(|| {
        format!(
            "cannot create state dir {}",
            config.server.state_dir.display()
        )
    })?;
    let state = state::StateStore::open(&config.server.state_dir)?;
    let audit = audit::AuditLog::open(&config.server.audit_log)?;
    let devices = open_devices(&config);
    if devices.is_empty() {
        bail!("no backend could be opened; see the errors above");
    }
    let registry = Arc::new(registry::Registry::new(devices, state));
    registry.refresh().await;
    let service = service::KeydService {
        registry: Arc::clone(&registry),
        policy: Arc::new(policy::Policy::new(uid, config.policies.clone())),
        audit,
        default_backend: config.default_backend().to_string(),
    };
    tokio::spawn(release_on_sighup(Arc::clone(&registry)));
    let listener = server::bind(&socket, config.server.socket_group.as_deref())?;
    tracing::info!(
        socket = %socket.display(),
        backends = registry.devices().len(),
        keys = registry.all().len(),
        "notary-keyd ready"
    );
    server::serve(
        listener,
        service,
        config.server.max_message_bytes,
        shutdown_signal(),
    )
    .await?;
    let _ = std::fs::remove_file(&socket);
    tracing::info!("stopped");
    Ok(())
}
