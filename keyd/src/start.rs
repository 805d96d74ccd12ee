//! Start-up and the serving life of the daemon: read the configuration,
//! open the backends, bind the socket (or take systemd's), serve until a
//! signal says stop.

use crate::config::Config;
use crate::device::Device;
use crate::systemd::notify::Notifier;
use crate::{
    audit, lifecycle, logging, policy, registry, reload, root, server, service, signer_api,
    signing, state, systemd,
};
use anyhow::{bail, Context, Result};
use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;

/// notary-keyd keeps Notary (TUF) signing keys in PKCS#11 tokens or its
/// software keystore and signs metadata for callers its policy allows.
///
/// With no --config it runs in personal mode: a software keystore under
/// $XDG_DATA_HOME/notary-keyd (or ~/.local/share/notary-keyd), listening on
/// $XDG_RUNTIME_DIR/notary-keyd/keyd.sock (or ~/.local/state/notary-keyd/keyd.sock),
/// usable only by the user who started it. Talk to it with `notaryctl`.
///
/// Under systemd it takes its socket from socket activation, reports
/// readiness, status and watchdog pings, and reloads on SIGHUP (see
/// docs/operations.md).
#[derive(Parser, Debug)]
#[command(name = "notary-keyd", version, about, long_about)]
pub struct Args {
    /// TOML configuration (see docs/notary-keyd.example.toml).
    #[arg(long, short = 'c', value_name = "PATH")]
    config: Option<PathBuf>,
    /// Listen on this socket instead of the configured one.
    #[arg(long, value_name = "PATH", env = "NOTARY_KEYD_SOCKET")]
    socket: Option<PathBuf>,
    /// Check the configuration and exit (0 when valid).
    #[arg(long)]
    check_config: bool,
    /// Run as root even with a config file (by default refused: the daemon
    /// should run as its own user, like the systemd unit's notary-keyd).
    #[arg(long)]
    allow_root: bool,
}

/// Opens the configured backends; also returns the names of those that
/// could not be opened at all.
fn open_devices(config: &Config) -> (Vec<Arc<Device>>, Vec<String>) {
    let mut failed = Vec::new();
    let devices = config
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
                failed.push(b.name.clone());
                None
            }
        })
        .collect();
    (devices, failed)
}

/// The socket systemd passed, or our own bound one (then also its path,
/// to remove at exit).
fn listen(
    socket: &std::path::Path,
    group: Option<&str>,
) -> Result<(tokio::net::UnixListener, Option<PathBuf>)> {
    if let Some(listener) = systemd::activation::take_listener(systemd::API_SOCKET_NAME)? {
        tracing::info!("listening on the socket passed by systemd (socket activation)");
        return Ok((tokio::net::UnixListener::from_std(listener)?, None));
    }
    let listener = server::bind(socket, group)?;
    tracing::info!(socket = %socket.display(), "listening");
    Ok((listener, Some(socket.to_path_buf())))
}

/// Opens what both APIs serve from: the state store, the audit log, the
/// backends and their keys, and the policy with `uid` as the daemon's own
/// user. Also returns the names of the backends that could not be opened.
pub(crate) async fn open_service(
    config: &Config,
    uid: u32,
) -> Result<(service::KeydService, Vec<String>)> {
    std::fs::create_dir_all(&config.server.state_dir).with_context(|| {
        format!(
            "cannot create state dir {}",
            config.server.state_dir.display()
        )
    })?;
    let state = state::StateStore::open(&config.server.state_dir)?;
    let audit = audit::AuditLog::open(&config.server.audit_log)?;
    let (devices, failed) = open_devices(config);
    if devices.is_empty() {
        bail!("no backend could be opened; see the errors above");
    }
    let registry = Arc::new(registry::Registry::new(devices, state));
    registry.refresh().await;
    let service = service::KeydService {
        policy: Arc::new(policy::Policy::new(uid, config.policies.clone())),
        signing: signing::SigningCore::new(Arc::clone(&registry), audit.clone()),
        registry,
        audit,
        default_backend: config.default_backend().to_string(),
    };
    Ok((service, failed))
}

/// Runs the daemon until it is told to stop.
pub async fn run(args: Args) -> Result<()> {
    logging::init();
    // No core dumps and no ptrace by other processes of the same uid: the
    // software keystore holds decrypted keys in memory, and ring's P-256
    // key copy is not wiped when freed.
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        tracing::warn!(error = %e, "cannot mark the process non-dumpable");
    }
    let uid = nix::unistd::geteuid().as_raw();
    let (config, text) = match &args.config {
        Some(path) => {
            let text = Config::read(path)?;
            (Config::parse(path, &text)?, Some(text))
        }
        None => (Config::personal().map_err(anyhow::Error::msg)?, None),
    };
    if args.check_config {
        println!("configuration is valid");
        return Ok(());
    }
    root::check(uid, args.config.is_some(), args.allow_root)?;
    let signals = lifecycle::Signals::install().context("cannot handle signals")?;
    let notifier = Arc::new(Notifier::from_env());
    notifier.status("opening backends");
    if args.config.is_none() {
        tracing::info!("no --config: personal mode (software keystore, only uid {uid} allowed)");
    }
    let socket = args
        .socket
        .clone()
        .or_else(|| config.server.socket.clone())
        .unwrap_or_else(|| PathBuf::from(keyd_proto::socket::SYSTEM_SOCKET));

    let (service, failed) = open_service(&config, uid).await?;
    let registry = Arc::clone(&service.registry);
    let policy = Arc::clone(&service.policy);
    // One stop for both listeners: the lifecycle (signals) ends the socket
    // server, and that stop is passed on to the signer API.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    let signer_api = match &config.signer_api {
        Some(api) => {
            let mut stop = stop_rx.clone();
            Some(
                signer_api::start(
                    api,
                    &config.server.state_dir,
                    service.signing.clone(),
                    (
                        Arc::clone(&registry),
                        service.audit.clone(),
                        config.default_backend(),
                    ),
                    config.server.max_message_bytes,
                    async move {
                        let _ = stop.changed().await;
                    },
                )
                .await?,
            )
        }
        None => None,
    };
    // Bound last: a client that can connect to the socket finds the signer
    // API listening too.
    let (listener, own_socket) = listen(&socket, config.server.socket_group.as_deref())?;
    let status = {
        let registry = Arc::clone(&registry);
        Box::new(move || systemd::status::summary(&registry, &failed))
    };
    let summary = status();
    tracing::info!(status = %summary, "notary-keyd ready");
    notifier.ready(&summary);
    let lifecycle = lifecycle::Lifecycle {
        signals,
        reloader: args
            .config
            .zip(text)
            .map(|(path, text)| reload::Reloader::new(path, &text, policy)),
        notifier,
        status,
        registry: Arc::clone(&registry),
    };
    server::serve(
        listener,
        service,
        config.server.max_message_bytes,
        async move {
            lifecycle.run_until_stopped().await;
            let _ = stop_tx.send(());
        },
    )
    .await?;
    drop(stop_rx);
    if let Some(task) = signer_api {
        let _ = task.await;
    }
    if let Some(path) = own_socket {
        let _ = std::fs::remove_file(&path);
    }
    tracing::info!("stopped");
    Ok(())
}
