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
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;

/// notary-keyd keeps Notary (TUF) signing keys in hardware and signs
/// metadata for callers its policy allows.
///
/// Four backends hold the keys: PKCS#11 tokens (HSMs), YubiKey PIV slots,
/// the host's TPM 2.0 and a software keystore; `--version` lists those
/// compiled into this build.
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
    #[command(subcommand)]
    command: Option<Command>,
    /// TOML configuration (see docs/notary-keyd.example.toml).
    #[arg(long, short = 'c', value_name = "PATH", global = true)]
    config: Option<PathBuf>,
    /// Listen on this socket instead of the configured one.
    #[arg(long, value_name = "PATH", env = "NOTARY_KEYD_SOCKET")]
    socket: Option<PathBuf>,
    /// Check the configuration and exit: its syntax and settings, and that
    /// the PIN and passphrase files, PKCS#11 modules, signer-API
    /// certificates and keys, state dir and audit log are there and usable
    /// by this user. Each problem is printed as FILE:LINE:COLUMN: what is
    /// wrong; exit status 0 when there is none.
    #[arg(long)]
    check_config: bool,
    /// Personal mode: encrypt the software keystore with the passphrase in
    /// this file (owned by you, mode 0600 or 0400; a trailing newline is
    /// not part of it). A keystore that is encrypted needs it on every
    /// start; one that already holds unencrypted keys refuses it. With
    /// --config, set `passphrase` in the [[backend]] section instead.
    #[arg(
        long,
        value_name = "PATH",
        env = "NOTARY_KEYD_PASSPHRASE_FILE",
        conflicts_with = "config",
        global = true
    )]
    passphrase_file: Option<PathBuf>,
    /// Print a minimal configuration to start from, and exit.
    #[arg(long, conflicts_with_all = ["config", "check_config"])]
    print_config: bool,
    /// Run as root even with a config file (by default refused: the daemon
    /// should run as its own user, like the systemd unit's notary-keyd).
    #[arg(long)]
    allow_root: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check the audit log offline, or begin a new chain.
    #[command(subcommand)]
    Audit(audit::cli::AuditCommand),
    /// Work on a software keystore offline (encrypt it in place).
    #[command(subcommand)]
    Keystore(crate::keystore_cli::KeystoreCommand),
}

/// Runs a command that works on files and needs no daemon (`audit …`,
/// `keystore …`); `None` when `args` asks for the daemon.
pub async fn offline_command(args: &Args) -> Option<std::process::ExitCode> {
    match args.command.as_ref()? {
        Command::Audit(command) => {
            let config = || {
                let (config, _) = load_config(args)?;
                let audit = config.audit().map_err(anyhow::Error::msg)?;
                Ok((audit, config.server.state_dir))
            };
            Some(audit::cli::run(command, &config))
        }
        Command::Keystore(command) => {
            let config = || Ok(load_config(args)?.0);
            Some(crate::keystore_cli::run(command, &config).await)
        }
    }
}

/// The configuration `--config` names, or personal mode's.
fn load_config(args: &Args) -> Result<(Config, Option<String>)> {
    Ok(match args.config.as_deref() {
        Some(path) => {
            let text = Config::read(path)?;
            (Config::parse(path, &text)?, Some(text))
        }
        None => (
            Config::personal(args.passphrase_file.clone()).map_err(anyhow::Error::msg)?,
            None,
        ),
    })
}

/// A configured backend, opened.
struct Opened {
    name: String,
    backend: Arc<dyn keyd_backends::KeyBackend>,
    pin_cache: crate::device::PinCache,
}

/// Opens the configured backends; also returns the names of those that
/// could not be opened at all.
fn open_backends(config: &Config) -> (Vec<Opened>, Vec<String>) {
    let mut failed = Vec::new();
    let opened = config
        .backends
        .iter()
        .filter_map(|b| match b.open(&config.server.state_dir) {
            Ok(backend) => {
                if let keyd_backends::Availability::Unavailable(reason) = backend.availability() {
                    tracing::warn!(backend = %b.name, %reason, "backend unavailable");
                }
                Some(Opened {
                    name: b.name.clone(),
                    backend,
                    pin_cache: b.pin_cache.clone(),
                })
            }
            Err(reason) => {
                tracing::error!(backend = %b.name, %reason, "backend cannot be opened");
                failed.push(b.name.clone());
                None
            }
        })
        .collect();
    (opened, failed)
}

/// Finds or makes the audit key and opens the devices, the one that holds
/// the key guarded. Without its key the log still chains every record;
/// each checkpoint then records why it is unsigned.
async fn open_devices(
    config: &Config,
    audit_config: &audit::AuditConfig,
    opened: Vec<Opened>,
) -> (Vec<Arc<Device>>, Result<Arc<audit::AuditKey>, String>) {
    let opened_configs: Vec<_> = config
        .backends
        .iter()
        .filter(|b| opened.iter().any(|o| o.name == b.name))
        .collect();
    let raw: Vec<_> = opened
        .iter()
        .map(|o| (o.name.clone(), Arc::clone(&o.backend)))
        .collect();
    let audit_key = audit::AuditKey::ensure(
        &config.server.state_dir,
        audit_config.key_backend.as_deref(),
        audit::key::choose(&opened_configs),
        &raw,
    )
    .await
    .map(Arc::new)
    .map_err(|e| {
        tracing::error!(error = %format!("{e:#}"), "no audit key: checkpoints cannot be signed");
        format!("{e:#}")
    });
    let devices = opened
        .into_iter()
        .map(|o| {
            let backend = match &audit_key {
                Ok(key) => key.guard(&o.name, o.backend),
                Err(_) => o.backend,
            };
            Arc::new(Device::new(o.name, backend, o.pin_cache))
        })
        .collect();
    (devices, audit_key)
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

/// What both APIs serve from, opened by [`open_service`].
pub(crate) struct ServiceParts {
    /// The state store, audit log, backends and their keys, and policy.
    pub(crate) service: service::KeydService,
    /// The backends that could not be opened at all.
    pub(crate) failed: Arc<[String]>,
    /// The audit key, or why there is none.
    pub(crate) audit_key: Result<Arc<audit::AuditKey>, String>,
    /// Signs the audit chain's head now and then; finished at stop.
    pub(crate) checkpoints: audit::Checkpointer,
}

/// Opens what both APIs serve from, with `uid` as the daemon's own user.
pub(crate) async fn open_service(config: &Config, uid: u32) -> Result<ServiceParts> {
    std::fs::create_dir_all(&config.server.state_dir).with_context(|| {
        format!(
            "cannot create state dir {}",
            config.server.state_dir.display()
        )
    })?;
    let state = state::StateStore::open(&config.server.state_dir)?;
    let audit_config = config.audit().map_err(anyhow::Error::msg)?;
    if let Some(file) = config.legacy_audit_log() {
        tracing::warn!(
            audit_log = %file.display(),
            dir = %audit_config.dir.display(),
            "[server] audit_log is read as [audit] dir: the log is written in segments \
             (audit-NNNNNN.jsonl) in that directory, and the file itself, if any, is left as it is; \
             move the setting to an [audit] table"
        );
    }
    let audit = audit::AuditLog::open(&audit_config).await?;
    let head = audit.snapshot();
    tracing::info!(
        dir = %audit_config.dir.display(),
        segment = %head.segment.display(),
        seq = head.head.seq,
        "audit log open"
    );
    let (opened, failed) = open_backends(config);
    let failed: Arc<[String]> = failed.into();
    if opened.is_empty() {
        bail!("no backend could be opened; see the errors above");
    }
    let (devices, audit_key) = open_devices(config, &audit_config, opened).await;
    let checkpoints = audit::Checkpointer::start(
        audit.clone(),
        audit_key.clone(),
        &devices,
        std::time::Duration::from_secs(audit_config.checkpoint_seconds),
    );
    let registry = Arc::new(registry::Registry::new(
        devices,
        state,
        config.server.limits.key_rescan_interval(),
    ));
    registry.refresh("start").await;
    let policy = Arc::new(policy::Policy::new(
        uid,
        policy::Directory::user_name(&policy::Nss, uid),
        config.rules.clone(),
    ));
    let service = service::KeydService {
        signing: signing::SigningCore::new(Arc::clone(&registry), audit.clone()),
        registry,
        policy,
        audit,
        default_backend: config.default_backend().to_string(),
        daemon: Arc::new(crate::daemon_info::DaemonInfo::new(Arc::clone(&failed))),
    };
    Ok(ServiceParts {
        service,
        failed,
        audit_key,
        checkpoints,
    })
}

/// Runs the daemon until it is told to stop.
pub async fn run(args: Args) -> Result<()> {
    if args.print_config {
        print!("{}", crate::config::STARTER);
        return Ok(());
    }
    logging::init();
    // No core dumps and no ptrace by other processes of the same uid: the
    // software keystore holds decrypted keys in memory, and ring's P-256
    // key copy is not wiped when freed.
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        tracing::warn!(error = %e, "cannot mark the process non-dumpable");
    }
    let uid = nix::unistd::geteuid().as_raw();
    let (config, text) = load_config(&args)?;
    if args.check_config {
        let file = args.config.as_deref().zip(text.as_deref());
        let problems = crate::check::report(&config, file);
        if problems > 0 {
            bail!("the configuration has {problems} problem(s), listed above");
        }
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

    let ServiceParts {
        service,
        failed,
        audit_key,
        checkpoints,
    } = open_service(&config, uid).await?;
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
                    &config.server.limits,
                    async move {
                        let _ = stop.changed().await;
                    },
                )
                .await?,
            )
        }
        None => None,
    };
    let _metrics = match &config.metrics {
        Some(metrics) => Some(
            crate::metrics::endpoint::start(
                metrics,
                config.server.socket_group.as_deref(),
                crate::metrics::endpoint::Source {
                    registry: Arc::clone(&registry),
                    failed: Arc::clone(&failed),
                },
            )
            .await?,
        ),
        None => None,
    };
    // Bound last: a client that can connect to the socket finds the signer
    // API and the metrics endpoint listening too.
    let (listener, own_socket) = listen(&socket, config.server.socket_group.as_deref())?;
    let status = {
        let registry = Arc::clone(&registry);
        Box::new(move || systemd::status::summary(&registry, &failed))
    };
    let summary = status();
    tracing::info!(status = %summary, "notary-keyd ready");
    notifier.ready(&summary);
    let audit_service = audit::rpc::AuditService {
        log: service.audit.clone(),
        key: audit_key,
        policy: Arc::clone(&policy),
    };
    if let Some(path) = &args.config {
        let _ = service.daemon.config_path.set(path.clone());
    }
    let lifecycle = lifecycle::Lifecycle {
        signals,
        daemon: Arc::clone(&service.daemon),
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
        audit_service,
        config.server.max_message_bytes,
        &config.server.limits,
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
    checkpoints.finish().await;
    tracing::info!("stopped");
    Ok(())
}
