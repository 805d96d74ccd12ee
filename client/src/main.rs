//! `notaryctl`: the command-line client of notary-keyd.
//!
//! Every private-key operation happens inside the daemon; this binary only
//! sends requests over the daemon's Unix socket, shows progress, and checks
//! what comes back.

mod commands;
mod connect;
mod errors;
mod output;
mod pin;
mod progress;

use clap::{Parser, Subcommand};
use commands::{attest, backend, certificate, key, sign, yubikey};
use std::path::PathBuf;
use std::process::ExitCode;

/// Manage and use Notary (TUF) signing keys held by notary-keyd.
///
/// notaryctl talks to the notary-keyd daemon over its Unix socket. The
/// private keys stay inside notary-keyd (in a hardware token or its software
/// keystore) and never reach notaryctl; the daemon decides from its policy
/// who may use which key. notaryctl checks every signature it receives.
///
/// Exit codes: 0 on success, 1 when the request failed or was refused,
/// 2 for a command-line usage error.
#[derive(Debug, Parser)]
#[command(name = "notaryctl", version)]
struct Cli {
    /// Socket of the notary-keyd to talk to.
    ///
    /// Default: $NOTARY_KEYD_SOCKET, else the personal daemon's socket
    /// ($XDG_RUNTIME_DIR/notary-keyd/keyd.sock, or /tmp/notary-keyd-UID/keyd.sock)
    /// if it exists, else the system service's /run/notary-keyd/keyd.sock.
    #[arg(long, global = true, value_name = "SOCKET", env = keyd_proto::socket::SOCKET_ENV)]
    keyd: Option<PathBuf>,

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

    /// Set up YubiKeys, show their state, release them for other programs.
    #[command(subcommand)]
    Yubikey(YubikeyCommand),
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
    /// The PIN comes from --pin-file, else $NOTARY_KEYD_PIN, else a prompt on
    /// the terminal (not echoed).
    ///
    /// Example: notaryctl key unlock --backend hsm
    Unlock(key::UnlockArgs),

    /// Log a backend's token out; the daemon forgets any cached PIN.
    Lock(key::LockArgs),

    /// Show, attach or issue the X.509 certificate stored beside a key.
    #[command(subcommand)]
    Cert(CertCommand),

    /// Print a YubiKey key's attestation: the slot's attestation
    /// certificate, then the YubiKey's attestation intermediate (PEM).
    ///
    /// Proves the key was generated on the device; verify the chain against
    /// Yubico's PIV root CA.
    ///
    /// Example: notaryctl key attest 3f2a… > attestation.pem
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

async fn run(cli: Cli) -> anyhow::Result<()> {
    let socket = cli
        .keyd
        .unwrap_or_else(|| keyd_proto::socket::client_socket(nix::unistd::geteuid().as_raw()));
    // Refusals that need no daemon come first, so they work without one.
    if let Command::Key(KeyCommand::Delete(args)) = &cli.command {
        key::check_delete(args)?;
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
            KeyCommand::Cert(CertCommand::Show(args)) => {
                certificate::show(&mut client, &args).await
            }
            KeyCommand::Cert(CertCommand::Attach(args)) => {
                certificate::attach(&mut client, &args).await
            }
            KeyCommand::Cert(CertCommand::IssueRoot(args)) => {
                certificate::issue_root(&mut client, &args).await
            }
            KeyCommand::Attest(args) => attest::run(&mut client, &args).await,
        },
        Command::Yubikey(cmd) => match cmd {
            YubikeyCommand::Setup(args) => yubikey::setup(&mut client, &args).await,
            YubikeyCommand::Status(args) => yubikey::status(&mut client, &args).await,
            YubikeyCommand::Release(args) => yubikey::release(&mut client, &args).await,
        },
        Command::Sign(args) => sign::run(&mut client, &args).await,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
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
