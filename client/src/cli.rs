//! notaryctl's command line: the clap tree (also the source of the man
//! pages and shell completions, see `docgen/`).
//!
//! Options come in three groups, each under its own help heading: the
//! global ones (`--keyd`, `-D`, `-v`) that every command takes; the client
//! config (`-d`, `-c`) of the commands that read the trust dir; and the
//! notary server's (`-s`, `--tls*`) of the commands that talk to it. As in
//! notary, the last two may also come before the command.

use crate::commands::ceremony::CeremonyCommand;
use crate::commands::repo::{delegation, init, migrate, publish, read, rotate, stage, status};
use crate::commands::{
    attest, audit, backend, certificate, daemon, key, key_transfer, sign, yubikey,
};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Manage and use Notary (TUF) signing keys held by notary-keyd.
///
/// notaryctl talks to the notary-keyd daemon over its Unix socket. The
/// private keys stay inside notary-keyd (in a hardware token or its software
/// keystore) and never reach notaryctl; the daemon decides from its policy
/// who may use which key. notaryctl checks every signature it receives.
///
/// The repository commands (init, add, publish, list, verify, delegation,
/// key rotate, …) are the notary CLI's, with its flags and client config:
/// they talk to a notary-server and sign with keys in notary-keyd. Where
/// notaryctl differs from notary, the command's help says so.
#[derive(Debug, Parser)]
#[command(
    name = "notaryctl",
    version,
    after_long_help = EXIT_CODES,
    after_help = "Exit codes: 0 ok, 1 failed or refused, 2 usage, 3 not trusted, 4 notary-keyd unreachable (--help says more)."
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalOptions,

    #[command(flatten)]
    pub(crate) config: ConfigOptions,

    #[command(flatten)]
    pub(crate) server: ServerOptions,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The exit codes, as `--help` and the man page state them.
const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the request failed or was refused (by notary-keyd, its policy, a
     token, or the notary server)
  2  command-line usage error
  3  not trusted: `verify` content that does not match its signed target,
     or a target no trusted role lists
  4  notary-keyd cannot be reached, or the connection to it was lost";

/// Options of every command.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Global options")]
pub(crate) struct GlobalOptions {
    /// Socket of the notary-keyd to talk to.
    ///
    /// Default: $NOTARY_KEYD_SOCKET, else the personal daemon's socket
    /// ($XDG_RUNTIME_DIR/notary-keyd/keyd.sock, or
    /// ~/.local/state/notary-keyd/keyd.sock) if it exists, else the system
    /// service's /run/notary-keyd/keyd.sock. Whatever the socket, notaryctl
    /// sends nothing unless the process listening on it runs as you, as
    /// root, or as the owner of /run/notary-keyd (the system service's user).
    #[arg(long, global = true, value_name = "SOCKET", env = keyd_proto::socket::SOCKET_ENV)]
    pub keyd: Option<PathBuf>,

    /// Debug output: -v plus one line per request to the notary server.
    #[arg(short = 'D', long = "debug", global = true)]
    pub debug: bool,

    /// Verbose output: what was uploaded, which keys were skipped.
    #[arg(short = 'v', long = "verbose", global = true)]
    pub verbose: bool,
}

/// Where the client config and trust dir are (notary's `-c` and `-d`).
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Client config options")]
pub(crate) struct ConfigOptions {
    /// Trust dir holding cached metadata and staged changes (default: the
    /// config's trust_dir, else ~/.notary).
    #[arg(short = 'd', long = "trustDir", value_name = "DIR")]
    pub trust_dir: Option<PathBuf>,

    /// notary client config (JSON: trust_dir, remote_server, trust_pinning);
    /// default ~/.notary/config.json if it exists.
    #[arg(short = 'c', long = "configFile", value_name = "FILE")]
    pub config_file: Option<PathBuf>,
}

/// How to reach the notary server (notary's `-s` and `--tls*`).
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Notary server options")]
pub(crate) struct ServerOptions {
    /// URL of the notary server (default: the config's remote_server.url,
    /// else https://notary.docker.io).
    #[arg(short = 's', long = "server", value_name = "URL")]
    pub server: Option<String>,

    /// CA certificate(s) (PEM) that the notary server's TLS certificate
    /// chains to (default: the config's remote_server.root_ca, else
    /// $SSL_CERT_FILE, else the system's CA store).
    #[arg(long = "tlscacert", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// Client certificate (PEM) for mutual TLS with the notary server.
    #[arg(long = "tlscert", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// Key of --tlscert (PEM) for mutual TLS with the notary server.
    #[arg(long = "tlskey", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
}

/// A command that reads the trust dir but never the server.
#[derive(Debug, Args)]
pub(crate) struct Local<T: Args> {
    #[command(flatten)]
    pub args: T,
    #[command(flatten)]
    pub config: ConfigOptions,
}

/// A command that talks to the notary server.
#[derive(Debug, Args)]
pub(crate) struct Online<T: Args> {
    #[command(flatten)]
    pub args: T,
    #[command(flatten)]
    pub config: ConfigOptions,
    #[command(flatten)]
    pub server: ServerOptions,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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
    Init(Online<init::InitArgs>),

    /// Stage a target (a file's length and hashes) for the next publish.
    ///
    /// Example: notaryctl add example.com/app v1.0 ./app.tar.gz -p
    Add(Online<stage::AddArgs>),

    /// Stage a target by its size and hashes, without the file.
    ///
    /// Example: notaryctl addhash example.com/app v1.0 1024 --sha256 9f86…
    #[command(name = "addhash")]
    AddHash(Online<stage::AddHashArgs>),

    /// Stage the removal of a target.
    Remove(Online<stage::RemoveArgs>),

    /// Sign the staged changes with notary-keyd and upload them.
    Publish(Online<publish::PublishArgs>),

    /// List the targets of a collection, verified from its trusted root.
    List(Online<read::ListArgs>),

    /// Show one target's sha256 digest and size.
    Lookup(Online<read::LookupArgs>),

    /// Check content (stdin or -i) against a target; print it if it matches.
    ///
    /// Exits 3 when the content does not match or no trusted role lists the
    /// target.
    ///
    /// Example: notaryctl verify example.com/app v1.0 -i app.tar.gz -q
    Verify(Online<read::VerifyArgs>),

    /// Show the staged (unpublished) changes.
    Status(Local<status::StatusArgs>),

    /// Drop staged changes: --all, or -n N per change.
    Reset(Local<status::ResetArgs>),

    /// Forget a collection's local trust data (and with --remote, the server's).
    Delete(Online<status::DeleteArgs>),

    /// Stage re-signing roles unchanged (e.g. after a key change).
    Witness(Online<delegation::WitnessArgs>),

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
    Migrate(Online<migrate::MigrateArgs>),

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
    /// status and verify (anywhere), publish (online). The client config
    /// and server options go before the step: `notaryctl ceremony -s URL
    /// publish BUNDLE`.
    Ceremony(CeremonyGroup),

    /// The daemon's audit log: its public key and where its chain stands.
    #[command(subcommand)]
    Audit(AuditCommand),

    /// The daemon itself: what it runs and what its backends are doing.
    #[command(subcommand)]
    Daemon(DaemonCommand),

    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    ///
    /// Example: notaryctl completion bash > /etc/bash_completion.d/notaryctl
    Completion(CompletionArgs),

    /// Print notaryctl's version.
    Version,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Print the audit public key that signs the log's checkpoints (PEM,
    /// after its key ID, algorithm and backend).
    ///
    /// Save it to check a copy of the log elsewhere:
    /// notaryctl audit key --pem > audit-key.pem; notary-keyd audit verify --key audit-key.pem DIR
    Key(audit::KeyArgs),
    /// Show the chain's head (sequence number and hash), the current
    /// segment and the last signed checkpoint.
    Status(audit::StatusArgs),
}

/// `notaryctl ceremony`: its steps, and the options of the online ones.
#[derive(Debug, Args)]
pub(crate) struct CeremonyGroup {
    #[command(subcommand)]
    pub command: CeremonyCommand,
    #[command(flatten)]
    pub config: ConfigOptions,
    #[command(flatten)]
    pub server: ServerOptions,
}

#[derive(Debug, Args)]
pub(crate) struct CompletionArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DelegationCommand {
    /// Stage a delegation role (or more keys/paths for it).
    ///
    /// Example: notaryctl delegation add example.com/app targets/releases --key 3f2a… --all-paths -p
    Add(Online<delegation::AddArgs>),
    /// Stage removing a delegation role, or some of its keys or paths.
    ///
    /// With no key IDs and no paths the whole role goes: that asks first
    /// (on a terminal) or needs -y.
    ///
    /// Example: notaryctl delegation remove example.com/app targets/releases --key 3f2a… -p
    Remove(Online<delegation::RemoveArgs>),
    /// List the delegation roles of a collection.
    List(Online<delegation::ListArgs>),
    /// Stage removing keys from every delegation.
    Purge(Online<delegation::PurgeArgs>),
}

#[derive(Debug, Subcommand)]
pub(crate) enum YubikeyCommand {
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
pub(crate) enum DaemonCommand {
    /// Show the daemon's version, uptime, config file, the last reload
    /// (sections that wait for a restart, a failure), audit records
    /// written, and per backend its state, keys, queue, signatures and
    /// failures since start, PIN failures and mean signing time: the
    /// figures its metrics endpoint gives a scraper.
    ///
    /// Needs the daemon's list permission, as `backend list`.
    Status(daemon::StatusArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum BackendCommand {
    /// List the configured backends: type, availability, device, keys, login state.
    List(backend::ListArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// List the keys you may see, like `notary key list`.
    ///
    /// Example: notaryctl key list --role targets --gun example.com/app
    List(key::ListArgs),

    /// Show one key, named by key ID, x509 key ID or key URI.
    Info(key::InfoArgs),

    /// Generate a key inside a backend; the private key never leaves it.
    ///
    /// Prints a summary on stderr and the new key ID as the last line of stdout.
    /// Unlike notary, a key without --role is bound to no role (notary
    /// assumes root), and there is no --output: the private key stays in
    /// notary-keyd.
    ///
    /// Example: notaryctl key generate ecdsa --backend hsm --role targets --gun example.com/app
    Generate(key::GenerateArgs),

    /// Delete a key from its backend (alias: remove). Irreversible.
    ///
    /// Asks first on a terminal; elsewhere needs --yes. A key bound to a
    /// role or GUN, or named by a collection in the trust dir, also needs
    /// --force.
    ///
    /// Example: notaryctl key delete 3f2a… --yes
    #[command(visible_alias = "remove")]
    Delete(Local<key::DeleteArgs>),

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
    Rotate(Online<rotate::RotateArgs>),

    /// Refused: private keys never leave notary-keyd (explains what to do instead).
    Export(key_transfer::ExportArgs),

    /// Refused: notaryctl never reads private key files (explains what to do instead).
    Import(key_transfer::ImportArgs),

    /// Refused: keys in notary-keyd have no passphrase of their own
    /// (explains what protects them instead).
    Passwd(key_transfer::PasswdArgs),

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
pub(crate) enum CertCommand {
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

/// The clap tree, for parsing, completions and man pages.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn arg_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every command and every option a person can see says what it is.
    #[test]
    fn nothing_is_left_without_help() {
        fn walk(cmd: &clap::Command, path: &str, empty: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            if cmd
                .get_about()
                .is_none_or(|a| a.to_string().trim().is_empty())
            {
                empty.push(format!("{path}: no about"));
            }
            for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg
                    .get_help()
                    .is_none_or(|h| h.to_string().trim().is_empty())
                {
                    empty.push(format!("{path} {id}: no help"));
                }
            }
            for sub in cmd.get_subcommands().filter(|c| !c.is_hide_set()) {
                if sub.get_name() != "help" {
                    walk(sub, &path, empty);
                }
            }
        }
        let mut empty = Vec::new();
        walk(&Cli::command(), "", &mut empty);
        assert!(empty.is_empty(), "help missing:\n{}", empty.join("\n"));
    }

    /// The server and TLS options appear only where a server is contacted.
    #[test]
    fn server_options_only_on_online_commands() {
        let mut root = Cli::command();
        root.build();
        let has = |path: &[&str], id: &str| {
            let mut cmd = &root;
            for name in path {
                cmd = cmd.find_subcommand(name).unwrap();
            }
            cmd.get_arguments().any(|a| a.get_id() == id)
        };
        for offline in [
            &["key", "generate"][..],
            &["sign"],
            &["backend", "list"],
            &["status"],
        ] {
            assert!(!has(offline, "server"), "{offline:?} shows --server");
            assert!(!has(offline, "tls_ca"), "{offline:?} shows --tlscacert");
            assert!(has(offline, "keyd"), "{offline:?} lacks --keyd");
        }
        assert!(has(&["status"], "trust_dir"));
        for online in [
            &["add"][..],
            &["publish"],
            &["delegation", "remove"],
            &["key", "rotate"],
        ] {
            assert!(has(online, "server") && has(online, "tls_ca"), "{online:?}");
        }
    }

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("notaryctl").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    #[test]
    fn server_options_before_or_after_the_command() {
        let cli = parse(&["-s", "https://a:1", "-d", "/t", "list", "g/x"]);
        assert_eq!(cli.server.server.as_deref(), Some("https://a:1"));
        assert_eq!(
            cli.config.trust_dir.as_deref(),
            Some(std::path::Path::new("/t"))
        );
        let cli = parse(&["list", "g/x", "-s", "https://b:2", "--tlscacert", "ca.crt"]);
        let Command::List(list) = cli.command else {
            panic!("not list")
        };
        assert_eq!(list.server.server.as_deref(), Some("https://b:2"));
        assert!(
            Cli::try_parse_from(["notaryctl", "key", "generate", "-s", "https://a:1"]).is_err()
        );
    }

    #[test]
    fn parses_a_sign_command() {
        let cli = parse(&[
            "--keyd",
            "/tmp/k.sock",
            "sign",
            "--key",
            "ab",
            "--role",
            "targets",
            "-",
        ]);
        assert_eq!(
            cli.global.keyd.as_deref(),
            Some(std::path::Path::new("/tmp/k.sock"))
        );
        let Command::Sign(args) = cli.command else {
            panic!("not sign")
        };
        assert_eq!(args.key, "ab");
        assert_eq!(args.file, "-");
    }

    /// What scripts written for the stock notary CLI pass.
    #[test]
    fn notary_spellings_parse() {
        for args in [
            &["add", "g/x", "t", "f", "-p"][..],
            &["add", "g/x", "t", "f", "--publish", "-r", "targets/r"],
            &["addhash", "g/x", "t", "3", "--sha256", "ab", "-p"],
            &["remove", "g/x", "t", "-p"],
            &["delegation", "remove", "g/x", "targets/r", "-y"],
            &[
                "delegation",
                "remove",
                "g/x",
                "targets/r",
                "abcd",
                "--yes",
                "-p",
            ],
            &["delegation", "remove", "g/x", "targets/r", "--key", "abcd"],
            &[
                "delegation",
                "add",
                "g/x",
                "targets/r",
                "c.crt",
                "--all-paths",
                "-p",
            ],
            &["delegation", "purge", "g/x", "--key", "ab"],
            &["key", "remove", "abcd"],
            &["key", "generate", "ecdsa", "--role", "targets"],
            &["key", "generate", "ed25519", "-r", "targets"],
            &["key", "rotate", "g/x", "snapshot", "-r"],
            &["key", "rotate", "g/x", "root", "-l", "2", "-k", "ab"],
            &["key", "passwd", "abcd"],
            &["key", "import", "k.pem", "-g", "g/x", "-r", "targets"],
            &["key", "export", "--key", "ab", "-o", "out.pem"],
            &["version"],
            &["completion", "bash"],
            &["reset", "g/x", "--all"],
            &["reset", "g/x", "-n", "0", "-n", "1"],
            &["verify", "g/x", "t", "-i", "f", "-o", "o", "-q"],
            &["witness", "g/x", "targets", "-p"],
            &["init", "g/x", "-p", "--rootkey", "ab"],
            &["delete", "g/x", "--remote"],
            &["-D", "-v", "list", "g/x", "-r", "targets/r"],
        ] {
            parse(args);
        }
    }

    #[test]
    fn key_generate_takes_the_algorithm_either_way() {
        let algorithm = |args: &[&str]| match parse(args).command {
            Command::Key(KeyCommand::Generate(g)) => g.algorithm(),
            _ => panic!("not generate"),
        };
        assert_eq!(algorithm(&["key", "generate"]), key::AlgorithmArg::Ecdsa);
        assert_eq!(
            algorithm(&["key", "generate", "rsa"]),
            key::AlgorithmArg::Rsa
        );
        assert_eq!(
            algorithm(&["key", "generate", "--algorithm", "ed25519"]),
            key::AlgorithmArg::Ed25519
        );
        assert!(
            Cli::try_parse_from(["notaryctl", "key", "generate", "rsa", "--algorithm", "rsa"])
                .is_err()
        );
    }
}
