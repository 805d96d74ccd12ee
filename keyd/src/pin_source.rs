//! Where a PIN or passphrase comes from. Values are read into `SecretString`
//! at once and never logged; the daemon never falls back to a default PIN.

use secrecy::SecretString;
use serde::Deserialize;
use std::path::PathBuf;

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
}

impl PinSource {
    /// Reads the secret. `Ok(None)` means "prompt": a client supplies it.
    pub(crate) fn resolve(&self) -> Result<Option<SecretString>, PinSourceError> {
        let (text, origin) = match self {
            PinSource::Prompt(_) => return Ok(None),
            PinSource::File { file } => (read_file(file)?, file.display().to_string()),
            PinSource::Env { env } => (
                std::env::var(env).map_err(|_| PinSourceError::Env(env.clone()))?,
                format!("${env}"),
            ),
            PinSource::Credential { credential } => {
                let dir = std::env::var_os("CREDENTIALS_DIRECTORY")
                    .ok_or_else(|| PinSourceError::NoCredentialsDirectory(credential.clone()))?;
                let path = PathBuf::from(dir).join(credential);
                (read_file(&path)?, format!("credential {credential}"))
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

fn read_file(path: &PathBuf) -> Result<String, PinSourceError> {
    std::fs::read_to_string(path).map_err(|error| PinSourceError::File {
        path: path.clone(),
        error,
    })
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

    #[test]
    fn file_pin_is_trimmed_and_empty_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, "4321\n").unwrap();
        let pin = PinSource::File { file: path.clone() }
            .resolve()
            .unwrap()
            .unwrap();
        assert_eq!(pin.expose_secret(), "4321");
        std::fs::write(&path, "\n").unwrap();
        assert!(PinSource::File { file: path }.resolve().is_err());
    }
}
