//! Where a token PIN comes from: --pin-file, else $NOTARY_KEYD_PIN_FILE,
//! else $NOTARY_KEYD_PIN, else a prompt on the terminal. The file variable
//! serves every command, including the repository commands (init, publish,
//! key rotate, delegation … -p) that have no --pin-file, without putting the
//! PIN itself in the environment. PINs live only in `SecretString`. A PIN
//! file must be the user's (or root's) and closed to everyone else, and
//! $NOTARY_KEYD_PIN is taken out of the environment at start-up.

use anyhow::{bail, Context, Result};
use keyd_proto::secret_file::{check_secret_file, Access};
use secrecy::zeroize::{Zeroize, Zeroizing};
use secrecy::SecretString;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub(crate) const PIN_ENV: &str = "NOTARY_KEYD_PIN";
pub(crate) const PIN_FILE_ENV: &str = "NOTARY_KEYD_PIN_FILE";

#[derive(Debug)]
pub(crate) enum PinSource {
    File(PathBuf),
    Env(SecretString),
    Prompt,
}

/// Picks the source by precedence: file, then environment, then terminal.
fn choose(
    pin_file: Option<&Path>,
    env: Option<SecretString>,
    interactive: bool,
) -> Option<PinSource> {
    if let Some(path) = pin_file {
        return Some(PinSource::File(path.to_path_buf()));
    }
    if let Some(pin) = env {
        return Some(PinSource::Env(pin));
    }
    interactive.then_some(PinSource::Prompt)
}

/// `$NOTARY_KEYD_PIN` as it was at start-up (see `take_env_pin`).
static ENV_PIN: OnceLock<Option<SecretString>> = OnceLock::new();

/// Moves `$NOTARY_KEYD_PIN` out of the environment, so no process
/// notaryctl starts inherits it. Called first thing in `main`, while the
/// process has a single thread (changing the environment is not safe
/// while another thread may read it).
pub(crate) fn take_env_pin() {
    let pin = std::env::var(PIN_ENV)
        .ok()
        .filter(|v| !v.is_empty())
        .map(SecretString::from);
    std::env::remove_var(PIN_ENV);
    let _ = ENV_PIN.set(pin);
}

fn env_pin() -> Option<SecretString> {
    ENV_PIN.get().cloned().flatten()
}

/// A prompt only when stdin is a terminal: a process run from a script or a
/// test may still have a controlling tty, and must not hang on it.
fn interactive() -> bool {
    std::io::stdin().is_terminal()
}

fn env_pin_file() -> Option<PathBuf> {
    std::env::var_os(PIN_FILE_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The PIN source available now, if any.
pub(crate) fn source(pin_file: Option<&Path>) -> Option<PinSource> {
    let file = pin_file.map(Path::to_path_buf).or_else(env_pin_file);
    choose(file.as_deref(), env_pin(), interactive())
}

/// Reads the PIN for `backend` from a source.
pub(crate) fn read(source: PinSource, backend: &str) -> Result<SecretString> {
    match source {
        PinSource::File(path) => read_file(&path),
        PinSource::Env(pin) => Ok(pin),
        PinSource::Prompt => {
            let mut typed = rpassword::prompt_password(format!("PIN for backend {backend}: "))
                .context("cannot read the PIN from the terminal")?;
            let pin = SecretString::from(typed.trim_end_matches(['\r', '\n']).to_string());
            typed.zeroize();
            non_empty(pin, "the PIN typed is empty")
        }
    }
}

/// The PIN for `backend`, or a refusal saying how to provide one.
pub(crate) fn require(pin_file: Option<&Path>, backend: &str) -> Result<SecretString> {
    match source(pin_file) {
        Some(src) => read(src, backend),
        None => bail!(
            "backend {backend} needs a PIN and there is no terminal to ask for it: \
             pass --pin-file FILE or set {PIN_FILE_ENV} (a file) or {PIN_ENV}"
        ),
    }
}

/// The file's first line; a trailing newline is not part of the PIN. The
/// owner and mode are checked on the opened file, so it is the file read.
fn read_file(path: &Path) -> Result<SecretString> {
    let cannot = || format!("cannot read the PIN file {}", path.display());
    let mut file = std::fs::File::open(path).with_context(cannot)?;
    let opened = file.metadata().with_context(cannot)?;
    check_secret_file(
        &opened,
        path,
        nix::unistd::geteuid().as_raw(),
        Access::OwnerOnly,
    )?;
    // Sized up front so the buffer does not move (and leave copies) as it grows.
    let size = usize::try_from(opened.len()).unwrap_or(0);
    let mut text = Zeroizing::new(String::with_capacity(size.saturating_add(1)));
    file.read_to_string(&mut text).with_context(cannot)?;
    let pin = SecretString::from(text.lines().next().unwrap_or("").to_string());
    non_empty(pin, &format!("the PIN file {} is empty", path.display()))
}

/// The secret as a request message carries it: the one plain copy of a
/// PIN notaryctl makes, for the one attempt that sends it (see
/// `with_pin_retry`). prost's field is a `String` that the message takes
/// into tonic, where it is encoded and freed without being wiped.
pub(crate) fn for_request(secret: &SecretString) -> String {
    use secrecy::ExposeSecret;
    secret.expose_secret().to_owned()
}

fn non_empty(pin: SecretString, why: &str) -> Result<SecretString> {
    use secrecy::ExposeSecret;
    if pin.expose_secret().is_empty() {
        bail!("{why}");
    }
    Ok(pin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::os::unix::fs::PermissionsExt;

    fn write_with_mode(path: &Path, text: &str, mode: u32) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn file_wins_over_env_and_terminal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        write_with_mode(&path, "from-file\n", 0o600);
        let src = choose(Some(&path), Some(SecretString::from("from-env")), true).unwrap();
        assert!(matches!(src, PinSource::File(_)));
        assert_eq!(read(src, "hsm").unwrap().expose_secret(), "from-file");
    }

    #[test]
    fn env_wins_over_terminal() {
        let src = choose(None, Some(SecretString::from("from-env")), true).unwrap();
        assert_eq!(read(src, "hsm").unwrap().expose_secret(), "from-env");
    }

    #[test]
    fn terminal_only_when_interactive() {
        assert!(matches!(choose(None, None, true), Some(PinSource::Prompt)));
        assert!(choose(None, None, false).is_none());
    }

    #[test]
    fn pin_file_must_hold_a_pin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        write_with_mode(&path, "\n", 0o600);
        let err = read(PinSource::File(path.clone()), "hsm")
            .unwrap_err()
            .to_string();
        assert!(err.contains("is empty"), "{err}");
        let err = read(PinSource::File(dir.path().join("absent")), "hsm")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read the PIN file"), "{err}");
        write_with_mode(&path, "1234\r\n", 0o600);
        assert_eq!(
            read(PinSource::File(path), "hsm").unwrap().expose_secret(),
            "1234"
        );
    }

    #[test]
    fn a_pin_file_others_may_read_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        write_with_mode(&path, "1234\n", 0o644);
        let err = read(PinSource::File(path.clone()), "hsm")
            .unwrap_err()
            .to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("mode 0644"), "{err}");
        assert!(err.contains("chmod 600"), "{err}");
        assert!(!err.contains("1234"), "{err}");
    }

    #[test]
    fn debug_never_shows_the_pin() {
        let src = PinSource::Env(SecretString::from("s3cret"));
        assert!(!format!("{src:?}").contains("s3cret"));
    }
}
