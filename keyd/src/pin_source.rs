//! Where a PIN or passphrase comes from. Values are read into `SecretString`
//! at once and never logged; the daemon never falls back to a default PIN.
//! Files must be the daemon user's (or root's) and closed to others
//! (`keyd_proto::secret_file`); a variable is removed from the environment
//! once read.

use keyd_proto::secret_file::{check_secret_file, Access, ExposedSecretFile};
use secrecy::zeroize::{Zeroize, Zeroizing};
use secrecy::SecretString;
use serde::Deserialize;
use std::io::Read;
use std::path::{Path, PathBuf};

/// `pin = { file = "…" }`, `{ env = "NAME" }`, `{ credential = "NAME" }`
/// (from `$CREDENTIALS_DIRECTORY`), or `"prompt"` (a client unlocks it).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub(crate) enum PinSource {
    File { file: PathBuf },
    Env { env: String },
    Credential { credential: String },
    Prompt(PromptWord),
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PromptWord {
    Prompt,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum PinSourceError {
    #[error("cannot read PIN file {path}: {error}")]
    File {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("environment variable {0} is not set (or not UTF-8)")]
    Env(String),
    #[error("credential {0:?} requested but $CREDENTIALS_DIRECTORY is not set (not started by systemd with LoadCredential=?)")]
    NoCredentialsDirectory(String),
    #[error("PIN from {0} is empty")]
    Empty(String),
    #[error(transparent)]
    Exposed(#[from] ExposedSecretFile),
}

impl PinSource {
    /// Reads the secret. `Ok(None)` means "prompt": a client supplies it.
    pub(crate) fn resolve(&self) -> Result<Option<SecretString>, PinSourceError> {
        let (text, origin) = match self {
            PinSource::Prompt(_) => return Ok(None),
            PinSource::File { file } => (
                read_file(file, Access::OwnerOnly)?,
                file.display().to_string(),
            ),
            PinSource::Env { env } => (take_env(env)?, format!("${env}")),
            PinSource::Credential { credential } => {
                let dir = std::env::var_os("CREDENTIALS_DIRECTORY")
                    .ok_or_else(|| PinSourceError::NoCredentialsDirectory(credential.clone()))?;
                let path = PathBuf::from(dir).join(credential);
                (
                    read_file(&path, Access::GroupRead)?,
                    format!("credential {credential}"),
                )
            }
        };
        // A trailing newline from `echo` or an editor is not part of the PIN.
        let trimmed = text.trim_end_matches(['\n', '\r']);
        if trimmed.is_empty() {
            return Err(PinSourceError::Empty(origin));
        }
        Ok(Some(SecretString::from(trimmed.to_string())))
    }
}

/// Reads a secret from a file whose owner and mode pass the check (made
/// on the opened file, so it is the file read).
fn read_file(path: &Path, access: Access) -> Result<Zeroizing<String>, PinSourceError> {
    let failed = |error| PinSourceError::File {
        path: path.to_path_buf(),
        error,
    };
    let mut file = std::fs::File::open(path).map_err(failed)?;
    let opened = file.metadata().map_err(failed)?;
    check_secret_file(&opened, path, nix::unistd::geteuid().as_raw(), access)?;
    // Sized up front so the buffer does not move (and leave copies) as it grows.
    let size = usize::try_from(opened.len()).unwrap_or(0);
    let mut text = Zeroizing::new(String::with_capacity(size.saturating_add(1)));
    file.read_to_string(&mut text).map_err(failed)?;
    Ok(text)
}

/// Reads the variable and removes it from the environment, so no child
/// process inherits it. Its value is overwritten first where the process
/// keeps it: `unsetenv` only drops the pointer, and the initial
/// environment's bytes (what `/proc/PID/environ` shows) would stay.
fn take_env(name: &str) -> Result<Zeroizing<String>, PinSourceError> {
    let value =
        Zeroizing::new(std::env::var(name).map_err(|_| PinSourceError::Env(name.to_string()))?);
    wipe_env_value(name);
    std::env::remove_var(name);
    Ok(value)
}

fn wipe_env_value(name: &str) {
    let Ok(c_name) = std::ffi::CString::new(name) else {
        return;
    };
    // SAFETY: no safe interface writes to the environment's own memory.
    // getenv returns NULL or a pointer to the NUL-terminated value inside
    // the environment block, which is writable process memory (the
    // initial stack area, or the copy setenv made); strlen stays within
    // it. The bytes are overwritten in place with NULs, so the entry stays
    // a well-formed (now empty) string until remove_var drops it. PIN
    // sources are resolved while the backends open at start-up, before
    // any other thread reads the environment.
    unsafe {
        let value = nix::libc::getenv(c_name.as_ptr());
        if !value.is_null() {
            let len = nix::libc::strlen(value);
            std::slice::from_raw_parts_mut(value.cast::<u8>(), len).zeroize();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[derive(Deserialize)]
    struct Wrap {
        pin: PinSource,
    }

    fn parse(s: &str) -> PinSource {
        toml::from_str::<Wrap>(s).unwrap().pin
    }

    #[test]
    fn parses_every_form() {
        assert!(matches!(
            parse(r#"pin = { file = "/x" }"#),
            PinSource::File { .. }
        ));
        assert!(matches!(
            parse(r#"pin = { env = "X" }"#),
            PinSource::Env { .. }
        ));
        assert!(matches!(
            parse(r#"pin = { credential = "hsm.pin" }"#),
            PinSource::Credential { .. }
        ));
        assert!(matches!(parse(r#"pin = "prompt""#), PinSource::Prompt(_)));
        assert!(toml::from_str::<Wrap>(r#"pin = "123456""#).is_err());
    }

    fn write_with_mode(path: &Path, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn file_pin_is_trimmed_and_empty_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        write_with_mode(&path, "4321\n", 0o600);
        let pin = PinSource::File { file: path.clone() }
            .resolve()
            .unwrap()
            .unwrap();
        assert_eq!(pin.expose_secret(), "4321");
        write_with_mode(&path, "\n", 0o600);
        assert!(PinSource::File { file: path }.resolve().is_err());
    }

    #[test]
    fn a_pin_file_others_may_read_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        write_with_mode(&path, "4321\n", 0o644);
        let err = PinSource::File { file: path.clone() }
            .resolve()
            .unwrap_err();
        assert!(matches!(err, PinSourceError::Exposed(_)), "{err:?}");
        let err = err.to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("mode 0644"), "{err}");
        assert!(!err.contains("4321"), "{err}");
    }
}
