//! `notary-keyd audit …`: the offline commands on a log's files.

use super::{key, verify, AuditConfig};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum AuditCommand {
    /// Check the audit log's chain and checkpoints, offline.
    ///
    /// Reads segment files (copies will do; nothing is written) and checks
    /// that every line follows the one before it (sequence number and
    /// hash, across segments), that no segment is missing, that no line is
    /// torn, and that every checkpoint is signed by the audit key and signs
    /// the head that is in the log. Prints the verdict, the record count,
    /// the time range, the last checkpoint and any request whose outcome
    /// was never recorded (a crash while a device worked: a signature may
    /// exist). Exits 0 when the log is intact, 1 naming the first bad
    /// record, 2 when it cannot check (no key, unreadable config).
    Verify(VerifyArgs),

    /// Begin a new chain, keeping the old segments as they are.
    ///
    /// For a log whose end cannot be read (the daemon refuses to start on
    /// it, naming the line): the new segment's header records your reason
    /// and how the previous segment ended; `audit verify` reports the new
    /// chain. Run it as the daemon's user while the daemon is stopped.
    NewChain(NewChainArgs),
}

#[derive(clap::Args, Debug)]
pub(crate) struct VerifyArgs {
    /// Segment files (audit-NNNNNN.jsonl), or directories of them.
    /// Default: the configured log directory (--config, or personal mode's).
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// The audit public key (PEM, as `notaryctl audit key` prints it);
    /// repeat it for keys the log was signed with before. Default: the
    /// configured state directory's audit-key.pem.
    #[arg(long = "key", value_name = "FILE")]
    keys: Vec<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub(crate) struct NewChainArgs {
    /// Why the chain is not continued; recorded in the new segment.
    #[arg(long, value_name = "TEXT")]
    reason: String,
}

/// The daemon's configuration, loaded only when a command needs it.
pub(crate) type LoadConfig<'a> = &'a dyn Fn() -> Result<(AuditConfig, PathBuf)>;

/// Runs `command`; `config` gives the audit settings and the state dir.
pub(crate) fn run(command: &AuditCommand, config: LoadConfig<'_>) -> ExitCode {
    let outcome = match command {
        AuditCommand::Verify(args) => verify_command(args, config),
        AuditCommand::NewChain(args) => new_chain_command(args, config),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("notary-keyd audit: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn verify_command(args: &VerifyArgs, config: LoadConfig<'_>) -> Result<ExitCode> {
    let (paths, key_files) = if !args.paths.is_empty() && !args.keys.is_empty() {
        (args.paths.clone(), args.keys.clone())
    } else {
        let (audit, state_dir) = config()?;
        let paths = if args.paths.is_empty() {
            vec![audit.dir]
        } else {
            args.paths.clone()
        };
        let keys = if args.keys.is_empty() {
            vec![key::public_path(&state_dir)]
        } else {
            args.keys.clone()
        };
        (paths, keys)
    };
    let keys = key_files
        .iter()
        .map(|p| key::read_public(p))
        .collect::<Result<Vec<_>>>()
        .context("no audit public key to check checkpoints with (pass --key FILE)")?;
    let report = verify::verify(&paths, &keys);
    println!("{report}");
    Ok(if report.intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn new_chain_command(args: &NewChainArgs, config: LoadConfig<'_>) -> Result<ExitCode> {
    if args.reason.trim().is_empty() {
        bail!("--reason must say why the chain is not continued");
    }
    let (audit, _) = config()?;
    let path = super::new_chain(&audit.dir, audit.max_size.0, &args.reason)?;
    println!(
        "new chain begun in {}; the daemon continues it at its next start",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}
