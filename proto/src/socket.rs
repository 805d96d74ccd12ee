//! Where the daemon listens by default, so the daemon and its clients agree
//! without configuration, and which directories may hold a personal socket.
//!
//! The personal socket lives only in directories no other user can create:
//! `$XDG_RUNTIME_DIR` (made by the login manager, mode 0700) or, without
//! one, the user's own `$XDG_STATE_HOME` (`~/.local/state`). A shared
//! directory such as `/tmp` is never used: another user could create the
//! directory first and listen there in the daemon's place.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Environment variable naming the socket for both the daemon and clients.
pub const SOCKET_ENV: &str = "NOTARY_KEYD_SOCKET";

/// The system service's socket (systemd `notary-keyd.socket`).
pub const SYSTEM_SOCKET: &str = "/run/notary-keyd/keyd.sock";

/// The system service's runtime directory; its owner is the service's user.
pub const SYSTEM_RUNTIME_DIR: &str = "/run/notary-keyd";

const PERSONAL_DIR: &str = "notary-keyd";
const SOCKET_NAME: &str = "keyd.sock";

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The personal (zero-config) socket: `$XDG_RUNTIME_DIR/notary-keyd/keyd.sock`,
/// else `$XDG_STATE_HOME/notary-keyd/keyd.sock`, else
/// `~/.local/state/notary-keyd/keyd.sock`; `None` when none of these
/// variables is set.
pub fn personal_socket() -> Option<PathBuf> {
    let base = env_path("XDG_RUNTIME_DIR")
        .or_else(|| env_path("XDG_STATE_HOME"))
        .or_else(|| env_path("HOME").map(|home| home.join(".local").join("state")))?;
    Some(base.join(PERSONAL_DIR).join(SOCKET_NAME))
}

/// The socket a client should use: `$NOTARY_KEYD_SOCKET`, else the personal
/// socket if it exists in a directory that passes [`check_private_dir`],
/// else the system socket. A personal directory that exists but fails the
/// check is an error, not a reason to look elsewhere: it means someone
/// else may be listening there.
pub fn client_socket(uid: u32) -> Result<PathBuf, UntrustedDir> {
    if let Some(path) = env_path(SOCKET_ENV) {
        return Ok(path);
    }
    if let Some(personal) = personal_socket() {
        if let Some(dir) = personal.parent() {
            if std::fs::symlink_metadata(dir).is_ok() {
                check_private_dir(dir, uid)?;
                if std::fs::symlink_metadata(&personal).is_ok() {
                    return Ok(personal);
                }
            }
        }
    }
    Ok(PathBuf::from(SYSTEM_SOCKET))
}

/// A directory that must not hold a personal socket, and why.
#[derive(Debug)]
pub struct UntrustedDir {
    pub path: PathBuf,
    pub problem: DirProblem,
}

#[derive(Debug)]
pub enum DirProblem {
    /// It exists but is not a directory (a symlink, a file, …).
    NotADirectory,
    /// Someone else owns it, or others may enter or write it.
    Exposed {
        owner: u32,
        mode: u32,
        uid: u32,
    },
    Unreadable(std::io::Error),
}

impl fmt::Display for UntrustedDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.problem {
            DirProblem::NotADirectory => write!(
                f,
                "refusing the personal socket directory {path}: it is not a directory \
                 (a symlink or another file); remove it"
            ),
            DirProblem::Exposed { owner, mode, uid } => write!(
                f,
                "refusing the personal socket directory {path}: it is owned by uid {owner} \
                 with mode {mode:04o}, but must be owned by uid {uid} with mode 0700, \
                 or another user could listen there in notary-keyd's place; remove it"
            ),
            DirProblem::Unreadable(e) => {
                write!(f, "cannot check the personal socket directory {path}: {e}")
            }
        }
    }
}

impl std::error::Error for UntrustedDir {}

/// Checks that `dir` (not followed if it is a symlink) is a directory owned
/// by `uid` that nobody else may enter, list or write (mode 0700 or
/// stricter).
pub fn check_private_dir(dir: &Path, uid: u32) -> Result<(), UntrustedDir> {
    let untrusted = |problem| UntrustedDir {
        path: dir.to_path_buf(),
        problem,
    };
    let meta = std::fs::symlink_metadata(dir).map_err(|e| untrusted(DirProblem::Unreadable(e)))?;
    if !meta.file_type().is_dir() {
        return Err(untrusted(DirProblem::NotADirectory));
    }
    let mode = meta.mode() & 0o7777;
    if meta.uid() != uid || mode & 0o077 != 0 {
        return Err(untrusted(DirProblem::Exposed {
            owner: meta.uid(),
            mode,
            uid,
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn uid_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().uid()
    }

    #[test]
    fn private_dir_passes_and_exposed_ones_are_named() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("notary-keyd");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let me = uid_of(&dir);
        check_private_dir(&dir, me).unwrap();

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711)).unwrap();
        let err = check_private_dir(&dir, me).unwrap_err().to_string();
        assert!(err.contains(&dir.display().to_string()), "{err}");
        assert!(
            err.contains(&format!("owned by uid {me} with mode 0711")),
            "{err}"
        );

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let other = me.wrapping_add(1);
        let err = check_private_dir(&dir, other).unwrap_err().to_string();
        assert!(
            err.contains(&format!("must be owned by uid {other}")),
            "{err}"
        );
    }

    #[test]
    fn a_symlink_to_a_private_dir_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let real = base.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = check_private_dir(&link, uid_of(&real))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a directory"), "{err}");
    }
}
