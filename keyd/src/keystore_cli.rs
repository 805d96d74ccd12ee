//! `notary-keyd keystore …`: offline commands on a software keystore.

use crate::audit::{now_rfc3339, AuditLog, AuditRecord, OpenError};
use crate::backends::{BackendConfig, BackendType};
use crate::config::Config;
use anyhow::{anyhow, bail, Context, Result};
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum KeystoreCommand {
    /// Encrypt a software keystore's unencrypted keys in place, keeping
    /// every key, its ID, label, certificate and import mark.
    ///
    /// It encrypts with the passphrase the daemon will start with: the
    /// backend's `passphrase` source in --config (set it first), or
    /// --passphrase-file in personal mode. Run it as the daemon's user
    /// while the daemon is stopped (it refuses a keystore that is open).
    /// A `credential` source is read from $CREDENTIALS_DIRECTORY, so run
    /// it with the unit's credential, e.g. `systemd-run --pipe --wait
    /// -p User=notary-keyd -p LoadCredential=NAME:PATH notary-keyd -c
    /// CONFIG keystore encrypt`.
    ///
    /// The audit log records the run and its outcome (operation
    /// `keystore-encrypt`), so it must not be in use either.
    ///
    /// If it is interrupted, every key stays usable with the passphrase;
    /// run it again with the same one to finish. The unencrypted bytes
    /// may remain in the disk's free blocks: where that matters, make new
    /// keys and rotate to them instead.
    Encrypt(EncryptArgs),
}

#[derive(clap::Args, Debug)]
pub(crate) struct EncryptArgs {
    /// The `[[backend]]` to encrypt, a `type = "soft"` one; needed when the
    /// configuration has more than one.
    #[arg(long, value_name = "NAME")]
    backend: Option<String>,
}

/// Runs `command` on the backends of `config`, loaded only when needed.
pub(crate) async fn run(
    command: &KeystoreCommand,
    config: &dyn Fn() -> Result<Config>,
) -> ExitCode {
    let outcome = match command {
        KeystoreCommand::Encrypt(args) => encrypt(args, config).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("notary-keyd keystore: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn encrypt(args: &EncryptArgs, config: &dyn Fn() -> Result<Config>) -> Result<()> {
    let config = config()?;
    let backend = chosen_soft_backend(&config.backends, args.backend.as_deref())?;
    let passphrase = match &backend.passphrase {
        None => bail!(
            "backend {:?} has no passphrase source: set `passphrase = {{ file = \"PATH\" }}` \
             (or env, or credential) in its [[backend]] section, or give --passphrase-file \
             in personal mode",
            backend.name
        ),
        Some(source) => source
            .resolve()
            .with_context(|| format!("backend {:?}: reading its passphrase", backend.name))?
            .with_context(|| {
                format!(
                    "backend {:?}: the software keystore has no prompt; give its passphrase \
                     as a file, env or credential",
                    backend.name
                )
            })?,
    };
    let dir = backend.soft_dir(&config.server.state_dir);
    // The daemon records every change to its keys; so does this command,
    // in the same chain. The log is opened first: a keystore is not
    // changed without a record of it.
    let audit_config = config.audit().map_err(anyhow::Error::msg)?;
    let log = AuditLog::open(&audit_config).await.map_err(|e| match e {
        OpenError::Locked(_) => anyhow!("{e}: is a notary-keyd running on it? Stop it first"),
        e => anyhow::Error::new(e).context(format!(
            "opening the audit log in {}",
            audit_config.dir.display()
        )),
    })?;
    let outcome = keyd_backends::soft::encrypt_in_place(&dir, &passphrase)
        .with_context(|| format!("backend {:?}", backend.name));
    let record = AuditRecord {
        time: now_rfc3339(),
        uid: Some(nix::unistd::getuid().as_raw()),
        gid: Some(nix::unistd::getgid().as_raw()),
        pid: i32::try_from(std::process::id()).ok(),
        operation: "keystore-encrypt".into(),
        backend: backend.name.clone(),
        allowed: true,
        result: match &outcome {
            Ok(_) => "ok".into(),
            Err(e) => format!("{e:#}"),
        },
        ..AuditRecord::default()
    };
    log.record(record)
        .await
        .context("recording the encryption in the audit log")?;
    let done = outcome?;
    println!(
        "encrypted {} key(s) in {} ({} already encrypted); start notary-keyd with this \
         passphrase configured",
        done.sealed,
        dir.display(),
        done.already_sealed
    );
    Ok(())
}

/// The soft backend `name` names, or the only one.
fn chosen_soft_backend<'a>(
    backends: &'a [BackendConfig],
    name: Option<&str>,
) -> Result<&'a BackendConfig> {
    let mut soft = backends.iter().filter(|b| b.kind == BackendType::Soft);
    match name {
        Some(name) => match backends.iter().find(|b| b.name == name) {
            Some(b) if b.kind == BackendType::Soft => Ok(b),
            Some(b) => bail!(
                "backend {name:?} is of type \"{}\", not a software keystore",
                b.kind.as_str()
            ),
            None => bail!("the configuration has no backend {name:?}"),
        },
        None => match (soft.next(), soft.next()) {
            (Some(only), None) => Ok(only),
            (None, _) => bail!("the configuration has no software keystore (type = \"soft\")"),
            (Some(_), Some(_)) => {
                bail!("the configuration has several software keystores: name one with --backend")
            }
        },
    }
}
