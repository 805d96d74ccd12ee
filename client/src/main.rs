//! `notaryctl`: the command-line client of notary-keyd.
//!
//! Every private-key operation happens inside the daemon; this binary only
//! sends requests over the daemon's Unix socket, shows progress, and checks
//! what comes back.

#![forbid(unsafe_code)]

mod attestation;
mod ceremony;
mod collection;
mod commands;
mod connect;
mod errors;
mod output;
mod pin;
mod progress;
mod remote;
mod settings;
mod trust_dir;

use clap::{Parser, Subcommand};
use commands::ceremony::CeremonyCommand;
use commands::repo::{self, delegation, init, migrate, publish, read, rotate, stage, status};
use commands::{attest, backend, certificate, key, key_transfer, sign, yubikey};
use std::path::PathBuf;
use std::process::ExitCode;

/// Manage and use Notary (TUF) signing keys held by notary-keyd.
///
/// notaryctl talks to the notary-keyd daemon over its Unix socket. The
/// private keys stay inside notary-keyd (in a hardware token or its software
/// keystore) and never reach notaryctl; the daemon decides from its policy
/// who may use which key. notaryctl checks every signature it receives.
///
/// The repository commands (init, add, publish, list, verify, delegation,
/// key rotate, …) are the notary CLI's, with its flags and client config:
/// they talk to a notary-server and sign with keys in notary-keyd.
///
/// Exit codes: 0 on success, 1 when the request failed or was refused,
/// 2 for a command-line usage error.
#[derive(Debug, Parser)]
#[command(name = "notaryctl", version)]
struct Cli {
    /// Socket of the notary-keyd to talk to.
    ///
    /// Default: $NOTARY_KEYD_SOCKET, else the personal daemon's socket
    /// ($XDG_RUNTIME_DIR/notary-keyd/keyd.sock, or
    /// ~/.local/state/notary-keyd/keyd.sock) if it exists, else the system
    /// service's /run/notary-keyd/keyd.sock. Whatever the socket, notaryctl
    /// sends nothing unless the process listening on it runs as you, as
    /// root, or as the owner of /run/notary-keyd (the system service's user).
    #[arg(long, global = true, value_name = "SOCKET", env = keyd_proto::socket::SOCKET_ENV)]
    keyd: Option<PathBuf>,

    /// URL of the notary server (default: the config's remote_server.url,
    /// else https://notary.docker.io).
    #[arg(short = 's', long = "server", global = true, value_name = "URL")]
    server: Option<String>,

    /// Trust dir holding cached metadata and staged changes (default: the
    /// config's trust_dir, else ~/.notary).
    #[arg(short = 'd', long = "trustDir", global = true, value_name = "DIR")]
    trust_dir: Option<PathBuf>,

    /// notary client config (JSON: trust_dir, remote_server, trust_pinning);
    /// default ~/.notary/config.json if it exists.
    #[arg(short = 'c', long = "configFile", global = true, value_name = "FILE")]
    config_file: Option<PathBuf>,

    /// CA certificate(s) (PEM) that the notary server's TLS certificate chains to.
    #[arg(long = "tlscacert", global = true, value_name = "FILE")]
    tls_ca: Option<PathBuf>,

    /// Client certificate (PEM) for mutual TLS with the notary server.
    #[arg(long = "tlscert", global = true, value_name = "FILE")]
    tls_cert: Option<PathBuf>,

    /// Key of --tlscert (PEM) for mutual TLS with the notary server.
    #[arg(long = "tlskey", global = true, value_name = "FILE")]
    tls_key: Option<PathBuf>,

    /// Debug output: -v plus one line per request to the notary server.
    #[arg(short = 'D', long = "debug", global = true)]
    debug: bool,

    /// Verbose output.
    #[arg(short = 'v', long = "verbose", global = true)]
    verbose: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the daemon's key backends (tokens and the software keystore).
    #[command(subcommand)]
    Backend(BackendCommand),

    /// List, inspect, generate, delete keys; unlock and lock tokens.
    #[command(subcommand)]
    Key(KeyCommand),

    /// Sign the canonical bytes of a TUF `signed` object with a key.
    ///
    /// Prints the notary signature object as one JSON line:
    /// {"keyid":"…","method":"ecdsa","sig":"<base64>"}. The signature is
    /// verified against the key's public key before it is printed.
    ///
    /// Example: notaryctl sign --key 3f2a… --role targets --gun example.com/app signed.json
    Sign(sign::SignArgs),

    /// Create a trusted collection: root key and certificate, targets and
    /// snapshot keys in notary-keyd, timestamp key from the server.
    ///
    /// Example: notaryctl -s https://notary.example:4443 init example.com/app -p
    Init(init::InitArgs),

    /// Stage a target (a file's length and hashes) for the next publish.
    ///
    /// Example: notaryctl add example.com/app v1.0 ./app.tar.gz
    Add(stage::AddArgs),

    /// Stage a target by its size and hashes, without the file.
    #[command(name = "addhash")]
    AddHash(stage::AddHashArgs),

    /// Stage the removal of a target.
    Remove(stage::RemoveArgs),

    /// Sign the staged changes with notary-keyd and upload them.
    Publish(publish::PublishArgs),

    /// List the targets of a collection, verified from its trusted root.
    List(read::ListArgs),

    /// Show one target's sha256 digest and size.
    Lookup(read::LookupArgs),

    /// Check content (stdin or -i) against a target; print it if it matches.
    ///
    /// Example: notaryctl verify example.com/app v1.0 -i app.tar.gz -q
    Verify(read::VerifyArgs),

    /// Show the staged (unpublished) changes.
    Status(status::StatusArgs),

    /// Drop staged changes: --all, or -n N per change.
    Reset(status::ResetArgs),

    /// Forget a collection's local trust data (and with --remote, the server's).
    Delete(status::DeleteArgs),

    /// Stage re-signing roles unchanged (e.g. after a key change).
    Witness(delegation::WitnessArgs),

    /// Move a collection made by the stock notary CLI under notary-keyd.
    ///
    /// The stock client's root key file goes to notary-keyd still
    /// encrypted, with its passphrase ($NOTARY_ROOT_PASSPHRASE, else a
    /// prompt); notary-keyd holds it for this one signature. The root is
    /// rotated to a key born in notary-keyd (signed by the old and the new
    /// root key, so clients that trust the old root follow), targets and
    /// snapshot get new keys, the result is published, and the imported
    /// copy is destroyed. The stock trust dir is never changed: delete its
    /// key files yourself afterwards. Running it again after an
    /// interruption is safe.
    ///
    /// Example: notaryctl migrate example.com/app --root-backend hsm
    Migrate(migrate::MigrateArgs),

    /// Add, remove, list and purge delegation roles and their keys.
    #[command(subcommand)]
    Delegation(DelegationCommand),

    /// Set up YubiKeys, show their state, release them for other programs.
    #[command(subcommand)]
    Yubikey(YubikeyCommand),

    /// Offline root-key ceremonies: an M-of-N root on hardware tokens,
    /// signed holder by holder on an air-gapped machine (docs/ceremonies.md).
    ///
    /// In order: plan (online), enroll each holder and sign (offline),
    /// status and verify (anywhere), publish (online).
    #[command(subcommand)]
    Ceremony(CeremonyCommand),
}

#[derive(Debug, Subcommand)]
enum DelegationCommand {
    /// Stage a delegation role (or more keys/paths for it).
    ///
    /// Example: notaryctl delegation add example.com/app targets/releases --key 3f2a… --all-paths -p
    Add(delegation::AddArgs),
    /// Stage removing a delegation role, or some of its keys or paths.
    Remove(delegation::RemoveArgs),
    /// List the delegation roles of a collection.
    List(delegation::ListArgs),
    /// Stage removing keys from every delegation.
    Purge(delegation::PurgeArgs),
}

#[derive(Debug, Subcommand)]
enum YubikeyCommand {
    /// Replace a YubiKey's factory PIN, PUK and management key.
    ///
    /// Asks for the current PIN and PUK and the new ones (or reads them from
    /// the --*-file options), lists what will change and asks you to type the
    /// serial to confirm. The management key becomes a random one stored on
    /// the YubiKey, readable only with the PIN; notary-keyd never uses a
    /// factory PIN, PUK or management key by itself. A YubiKey set up
    /// already is refused unless --force.
    ///
    /// Example: notaryctl yubikey setup --serial 12345678
    Setup(yubikey::SetupArgs),

    /// Show serial, firmware, PIN/PUK tries left and the slots holding keys
    /// with their PIN and touch policies.
    ///
    /// Example: notaryctl yubikey status --serial 12345678
    Status(yubikey::StatusArgs),

    /// Let other programs (ykman, gpg) use the YubiKey now; notary-keyd
    /// opens it again when it next needs it (like SIGHUP to the daemon).
    /// A "PIN once" login is lost.
    Release(yubikey::ReleaseArgs),
}

#[derive(Debug, Subcommand)]
enum BackendCommand {
    /// List the configured backends: type, availability, device, keys, login state.
    List(backend::ListArgs),
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// List the keys you may see, like `notary key list`.
    ///
    /// Example: notaryctl key list --role targets --gun example.com/app
    List(key::ListArgs),

    /// Show one key, named by key ID, x509 key ID or key URI.
    Info(key::InfoArgs),

    /// Generate a key inside a backend; the private key never leaves it.
    ///
    /// Prints a summary on stderr and the new key ID as the last line of stdout.
    ///
    /// Example: notaryctl key generate --backend hsm --role targets --gun example.com/app
    Generate(key::GenerateArgs),

    /// Delete a key from its backend. Irreversible: needs --yes.
    ///
    /// Example: notaryctl key delete 3f2a… --yes
    Delete(key::DeleteArgs),

    /// Log a backend's token in with its user PIN.
    ///
    /// The PIN comes from --pin-file, else $NOTARY_KEYD_PIN_FILE, else $NOTARY_KEYD_PIN, else a prompt on
    /// the terminal (not echoed).
    ///
    /// Example: notaryctl key unlock --backend hsm
    Unlock(key::UnlockArgs),

    /// Log a backend's token out; the daemon forgets any cached PIN.
    Lock(key::LockArgs),

    /// Rotate a collection's root, targets, snapshot or timestamp key and
    /// publish the new root (signed by the old and the new root keys).
    ///
    /// Example: notaryctl key rotate example.com/app snapshot -r
    Rotate(rotate::RotateArgs),

    /// Refused: private keys never leave notary-keyd (explains what to do instead).
    Export(key_transfer::ExportArgs),

    /// Refused: notaryctl never reads private key files (explains what to do instead).
    Import(key_transfer::ImportArgs),

    /// Show, attach or issue the X.509 certificate stored beside a key.
    #[command(subcommand)]
    Cert(CertCommand),

    /// The device's evidence that it holds a key, checked here first.
    ///
    /// TPM keys: the TPM certifies the key (TPM2_Certify) with its
    /// attestation key; the signature, the nonce and the certified object
    /// are checked, and a JSON summary with the attestation key's
    /// fingerprint is printed (compare it with the host's enrolment record);
    /// --out saves the statement for checking elsewhere. YubiKey keys: the
    /// slot's attestation certificate, then the YubiKey's attestation
    /// intermediate (PEM), proving the key was generated on the device;
    /// verify the chain against Yubico's PIV root CA.
    ///
    /// Example: notaryctl key attest 3f2a… --out ./attestation
    Attest(attest::AttestArgs),
}

#[derive(Debug, Subcommand)]
enum CertCommand {
    /// Print the PEM certificate stored beside a key.
    Show(certificate::ShowArgs),

    /// Store a PEM certificate beside a key; its public key must be the key's.
    ///
    /// Prints the resulting x509 key ID (what root.json lists) on stdout.
    ///
    /// Example: notaryctl key cert attach 3f2a… root.crt
    Attach(certificate::AttachArgs),

    /// Have the daemon make and self-sign a notary root certificate for a key.
    ///
    /// CN = the GUN, 10 years unless --days says otherwise. The certificate is
    /// stored beside the key and printed as PEM on stdout.
    ///
    /// Example: notaryctl key cert issue-root 3f2a… --gun example.com/app
    IssueRoot(certificate::IssueRootArgs),
}

fn repo_context(cli: &Cli, socket: PathBuf) -> anyhow::Result<repo::Context> {
    let flags = settings::Flags {
        server: cli.server.clone(),
        trust_dir: cli.trust_dir.clone(),
        config_file: cli.config_file.clone(),
        tls_ca: cli.tls_ca.clone(),
        tls_cert: cli.tls_cert.clone(),
        tls_key: cli.tls_key.clone(),
    };
    Ok(repo::Context {
        settings: settings::Settings::load(&flags)?,
        keyd_socket: socket,
        verbose: cli.verbose || cli.debug,
        debug: cli.debug,
    })
}

/// The repository commands; `None` for the key-management commands.
async fn run_repo(cli: &Cli, socket: &std::path::Path) -> Option<anyhow::Result<()>> {
    let ctx = || repo_context(cli, socket.to_path_buf());
    let result = match &cli.command {
        Command::Init(args) => async { init::run(&ctx()?, args).await }.await,
        Command::Add(args) => ctx().and_then(|c| stage::add(&c, args)),
        Command::AddHash(args) => ctx().and_then(|c| stage::add_hash(&c, args)),
        Command::Remove(args) => ctx().and_then(|c| stage::remove(&c, args)),
        Command::Publish(args) => async { publish::run(&ctx()?, args).await }.await,
        Command::List(args) => async { read::list(&ctx()?, args).await }.await,
        Command::Lookup(args) => async { read::lookup(&ctx()?, args).await }.await,
        Command::Verify(args) => async { read::verify(&ctx()?, args).await }.await,
        Command::Status(args) => ctx().and_then(|c| status::status(&c, args)),
        Command::Reset(args) => ctx().and_then(|c| status::reset(&c, args)),
        Command::Delete(args) => async { status::delete(&ctx()?, args).await }.await,
        Command::Key(KeyCommand::Rotate(args)) => async { rotate::run(&ctx()?, args).await }.await,
        Command::Migrate(args) => async { migrate::run(&ctx()?, args).await }.await,
        Command::Witness(args) => async { delegation::witness(&ctx()?, args).await }.await,
        Command::Ceremony(cmd) => async { commands::ceremony::run(&ctx()?, cmd).await }.await,
        Command::Delegation(cmd) => {
            async {
                let ctx = ctx()?;
                match cmd {
                    DelegationCommand::Add(args) => delegation::add(&ctx, args).await,
                    DelegationCommand::Remove(args) => delegation::remove(&ctx, args).await,
                    DelegationCommand::List(args) => delegation::list(&ctx, args).await,
                    DelegationCommand::Purge(args) => delegation::purge(&ctx, args).await,
                }
            }
            .await
        }
        _ => return None,
    };
    Some(result)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let socket = match cli.keyd.clone() {
        Some(socket) => socket,
        None => keyd_proto::socket::client_socket(nix::unistd::geteuid().as_raw())?,
    };
    if let Some(result) = run_repo(&cli, &socket).await {
        return result;
    }
    // Refusals that need no daemon come first, so they work without one.
    match &cli.command {
        Command::Key(KeyCommand::Delete(args)) => key::check_delete(args)?,
        Command::Key(KeyCommand::Export(args)) => return key_transfer::export(args),
        Command::Key(KeyCommand::Import(args)) => return key_transfer::import(args),
        _ => {}
    }
    let mut client = connect::connect(&socket).await?;
    match cli.command {
        Command::Backend(BackendCommand::List(args)) => backend::list(&mut client, &args).await,
        Command::Key(cmd) => match cmd {
            KeyCommand::List(args) => key::list(&mut client, &args).await,
            KeyCommand::Info(args) => key::info(&mut client, &args).await,
            KeyCommand::Generate(args) => key::generate(&mut client, &args).await,
            KeyCommand::Delete(args) => key::delete(&mut client, &args).await,
            KeyCommand::Unlock(args) => key::unlock(&mut client, &args).await,
            KeyCommand::Lock(args) => key::lock(&mut client, &args).await,
            KeyCommand::Attest(args) => attest::run(&mut client, &args).await,
            KeyCommand::Rotate(_) | KeyCommand::Export(_) | KeyCommand::Import(_) => {
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
        _ => unreachable!("repository commands are handled by run_repo"),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    pin::take_env_pin();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("notaryctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn arg_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_a_sign_command() {
        let cli = Cli::try_parse_from([
            "notaryctl",
            "--keyd",
            "/tmp/k.sock",
            "sign",
            "--key",
            "ab",
            "--role",
            "targets",
            "-",
        ])
        .unwrap();
        assert_eq!(
            cli.keyd.as_deref(),
            Some(std::path::Path::new("/tmp/k.sock"))
        );
        let Command::Sign(args) = cli.command else {
            panic!("not sign")
        };
        assert_eq!(args.key, "ab");
        assert_eq!(args.file, "-");
    }

    #[test]
    fn key_generate_defaults_to_ecdsa() {
        let cli = Cli::try_parse_from(["notaryctl", "key", "generate"]).unwrap();
        let Command::Key(KeyCommand::Generate(args)) = cli.command else {
            panic!("not generate")
        };
        assert_eq!(args.algorithm, key::AlgorithmArg::Ecdsa);
    }
}
