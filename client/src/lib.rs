//! `notaryctl`: the command-line client of notary-keyd.
//!
//! Every private-key operation happens inside the daemon; this client only
//! sends requests over the daemon's Unix socket, shows progress, and checks
//! what comes back. A library with a thin `main.rs`, so that `docgen` can
//! make the man pages and completions from the same clap tree.

#![forbid(unsafe_code)]

mod attestation;
mod ceremony;
mod cli;
mod collection;
mod commands;
mod connect;
mod errors;
mod exit;
mod meter;
mod output;
mod pin;
mod progress;
mod remote;
mod settings;
mod trust_dir;

pub use cli::command;

use anyhow::Result;
use clap::{Args, Parser};
use cli::{
    AuditCommand, BackendCommand, CertCommand, Cli, Command, ConfigOptions, DaemonCommand,
    DelegationCommand, KeyCommand, Local, Online, ServerOptions, YubikeyCommand,
};
use commands::repo::{self, delegation, init, migrate, publish, read, rotate, stage, status};
use commands::{attest, audit, backend, certificate, daemon, key, key_transfer, sign, yubikey};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Runs notaryctl with the process's arguments; one line on stderr and a
/// distinct exit code on failure (see [`EXIT_CODES`]).
pub async fn main() -> ExitCode {
    pin::take_env_pin();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("notaryctl: {e:#}");
            exit::code_for(&e)
        }
    }
}

/// The settings flags: the command's own, else those given before it.
fn flags(cli: &Cli, config: &ConfigOptions, server: Option<&ServerOptions>) -> settings::Flags {
    let server = server.unwrap_or(&cli.server);
    let pick = |own: &Option<PathBuf>, top: &Option<PathBuf>| own.clone().or_else(|| top.clone());
    settings::Flags {
        server: server.server.clone().or_else(|| cli.server.server.clone()),
        trust_dir: pick(&config.trust_dir, &cli.config.trust_dir),
        config_file: pick(&config.config_file, &cli.config.config_file),
        tls_ca: pick(&server.tls_ca, &cli.server.tls_ca),
        tls_cert: pick(&server.tls_cert, &cli.server.tls_cert),
        tls_key: pick(&server.tls_key, &cli.server.tls_key),
    }
}

fn context(
    cli: &Cli,
    socket: &Path,
    config: &ConfigOptions,
    server: Option<&ServerOptions>,
) -> Result<repo::Context> {
    Ok(repo::Context {
        settings: settings::Settings::load(&flags(cli, config, server))?,
        keyd_socket: socket.to_path_buf(),
        verbose: cli.global.verbose || cli.global.debug,
        debug: cli.global.debug,
    })
}

fn online<T: Args>(cli: &Cli, socket: &Path, c: &Online<T>) -> Result<repo::Context> {
    context(cli, socket, &c.config, Some(&c.server))
}

fn local<T: Args>(cli: &Cli, socket: &Path, c: &Local<T>) -> Result<repo::Context> {
    context(cli, socket, &c.config, None)
}

/// The repository commands; `None` for the others.
async fn run_repo(cli: &Cli, socket: &Path) -> Option<Result<()>> {
    let result = match &cli.command {
        Command::Init(c) => async { init::run(&online(cli, socket, c)?, &c.args).await }.await,
        Command::Add(c) => async { stage::add(&online(cli, socket, c)?, &c.args).await }.await,
        Command::AddHash(c) => {
            async { stage::add_hash(&online(cli, socket, c)?, &c.args).await }.await
        }
        Command::Remove(c) => {
            async { stage::remove(&online(cli, socket, c)?, &c.args).await }.await
        }
        Command::Publish(c) => {
            async { publish::run(&online(cli, socket, c)?, &c.args).await }.await
        }
        Command::List(c) => async { read::list(&online(cli, socket, c)?, &c.args).await }.await,
        Command::Lookup(c) => async { read::lookup(&online(cli, socket, c)?, &c.args).await }.await,
        Command::Verify(c) => async { read::verify(&online(cli, socket, c)?, &c.args).await }.await,
        Command::Status(c) => local(cli, socket, c).and_then(|x| status::status(&x, &c.args)),
        Command::Reset(c) => local(cli, socket, c).and_then(|x| status::reset(&x, &c.args)),
        Command::Delete(c) => {
            async { status::delete(&online(cli, socket, c)?, &c.args).await }.await
        }
        Command::Key(KeyCommand::Rotate(c)) => {
            async { rotate::run(&online(cli, socket, c)?, &c.args).await }.await
        }
        Command::Migrate(c) => {
            async { migrate::run(&online(cli, socket, c)?, &c.args).await }.await
        }
        Command::Witness(c) => {
            async { delegation::witness(&online(cli, socket, c)?, &c.args).await }.await
        }
        Command::Ceremony(group) => {
            async {
                let ctx = context(cli, socket, &group.config, Some(&group.server))?;
                commands::ceremony::run(&ctx, &group.command).await
            }
            .await
        }
        Command::Delegation(cmd) => {
            async {
                match cmd {
                    DelegationCommand::Add(c) => {
                        delegation::add(&online(cli, socket, c)?, &c.args).await
                    }
                    DelegationCommand::Remove(c) => {
                        delegation::remove(&online(cli, socket, c)?, &c.args).await
                    }
                    DelegationCommand::List(c) => {
                        delegation::list(&online(cli, socket, c)?, &c.args).await
                    }
                    DelegationCommand::Purge(c) => {
                        delegation::purge(&online(cli, socket, c)?, &c.args).await
                    }
                }
            }
            .await
        }
        _ => return None,
    };
    Some(result)
}

/// Commands that need no daemon; `None` for the others.
fn run_offline(cli: &Cli) -> Option<Result<()>> {
    Some(match &cli.command {
        Command::Key(KeyCommand::Export(args)) => key_transfer::export(args),
        Command::Key(KeyCommand::Import(args)) => key_transfer::import(args),
        Command::Key(KeyCommand::Passwd(args)) => key_transfer::passwd(args),
        Command::Completion(args) => {
            clap_complete::generate(
                args.shell,
                &mut command(),
                "notaryctl",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Version => {
            println!("notaryctl {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        _ => return None,
    })
}

async fn run(cli: Cli) -> Result<()> {
    if let Some(result) = run_offline(&cli) {
        return result;
    }
    let socket = match cli.global.keyd.clone() {
        Some(socket) => socket,
        None => keyd_proto::socket::client_socket(nix::unistd::geteuid().as_raw())?,
    };
    if let Some(result) = run_repo(&cli, &socket).await {
        return result;
    }
    if let Command::Key(KeyCommand::Delete(c)) = &cli.command {
        return key::delete(&local(&cli, &socket, c)?, &c.args).await;
    }
    if let Command::Audit(cmd) = &cli.command {
        let channel = connect::channel(&socket).await?;
        return match cmd {
            AuditCommand::Key(args) => audit::key(channel, args).await,
            AuditCommand::Status(args) => audit::status(channel, args).await,
        };
    }
    let mut client = connect::connect(&socket).await?;
    match cli.command {
        Command::Backend(BackendCommand::List(args)) => backend::list(&mut client, &args).await,
        Command::Daemon(DaemonCommand::Status(args)) => {
            daemon::status(&mut client, &socket, &args).await
        }
        Command::Key(cmd) => match cmd {
            KeyCommand::List(args) => key::list(&mut client, &args).await,
            KeyCommand::Info(args) => key::info(&mut client, &args).await,
            KeyCommand::Generate(args) => key::generate(&mut client, &args).await,
            KeyCommand::Unlock(args) => key::unlock(&mut client, &args).await,
            KeyCommand::Lock(args) => key::lock(&mut client, &args).await,
            KeyCommand::Attest(args) => attest::run(&mut client, &args).await,
            KeyCommand::Rotate(_)
            | KeyCommand::Delete(_)
            | KeyCommand::Export(_)
            | KeyCommand::Import(_)
            | KeyCommand::Passwd(_) => {
                unreachable!("handled before connecting")
            }
            KeyCommand::Cert(CertCommand::Show(args)) => {
                certificate::show(&mut client, &args).await
            }
            KeyCommand::Cert(CertCommand::Attach(args)) => {
                certificate::attach(&mut client, &args).await
            }
            KeyCommand::Cert(CertCommand::IssueRoot(args)) => {
                certificate::issue_root(&mut client, &args).await
            }
        },
        Command::Yubikey(cmd) => match cmd {
            YubikeyCommand::Setup(args) => yubikey::setup(&mut client, &args).await,
            YubikeyCommand::Status(args) => yubikey::status(&mut client, &args).await,
            YubikeyCommand::Release(args) => yubikey::release(&mut client, &args).await,
        },
        Command::Sign(args) => sign::run(&mut client, &args).await,
        _ => unreachable!("repository and offline commands are handled above"),
    }
}
