//! Files that hold a PIN or passphrase, for the daemon and notaryctl
//! alike: such a file must belong to its reader (or root) and be closed to
//! everyone else, or another local user may have read the secret already.
//! The check is made on the opened file, so the file checked is the file
//! read.

use std::fmt;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Who besides the owner may have access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Nobody (mode 0600 or stricter): PIN files people write.
    OwnerOnly,
    /// Group read as well (0640, 0440): systemd credentials. systemd writes
    /// them 0400 and grants the service user read through an ACL, whose
    /// mask shows as group read; the directory they are in is the
    /// service's alone.
    GroupRead,
}

impl Access {
    fn forbidden_bits(self) -> u32 {
        match self {
            Access::OwnerOnly => 0o077,
            Access::GroupRead => 0o037,
        }
    }
}

#[derive(Debug)]
pub struct ExposedSecretFile {
    pub path: PathBuf,
    pub owner: u32,
    pub mode: u32,
    pub reader: u32,
    pub access: Access,
}

impl fmt::Display for ExposedSecretFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let allowed = match self.access {
            Access::OwnerOnly => "no one else may read or write it (chmod 600)",
            Access::GroupRead => "only its group may also read it (chmod 440)",
        };
        write!(
            f,
            "refusing to read a secret from {}: it is owned by uid {} with mode {:04o}, \
             but must be owned by uid {} (the reader) or root, and {allowed}",
            self.path.display(),
            self.owner,
            self.mode,
            self.reader
        )
    }
}

impl std::error::Error for ExposedSecretFile {}

/// Checks the metadata of the opened file (found at `path`) before a
/// secret is read from it by `reader` (the effective uid).
pub fn check_secret_file(
    opened: &Metadata,
    path: &Path,
    reader: u32,
    access: Access,
) -> Result<(), ExposedSecretFile> {
    let mode = opened.mode() & 0o7777;
    let owner_ok = opened.uid() == reader || opened.uid() == 0;
    if owner_ok && mode & access.forbidden_bits() == 0 {
        return Ok(());
    }
    Err(ExposedSecretFile {
        path: path.to_path_buf(),
        owner: opened.uid(),
        mode,
        reader,
        access,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn file_with_mode(dir: &Path, mode: u32) -> (PathBuf, Metadata) {
        let path = dir.join(format!("pin-{mode:o}"));
        std::fs::write(&path, "1234\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let opened = std::fs::File::open(&path).unwrap().metadata().unwrap();
        (path, opened)
    }

    #[test]
    fn modes_and_owners() {
        let dir = tempfile::tempdir().unwrap();
        let me = std::fs::metadata(dir.path()).unwrap().uid();
        for (mode, access, ok) in [
            (0o600, Access::OwnerOnly, true),
            (0o400, Access::OwnerOnly, true),
            (0o640, Access::OwnerOnly, false),
            (0o644, Access::OwnerOnly, false),
            (0o440, Access::GroupRead, true),
            (0o400, Access::GroupRead, true),
            (0o460, Access::GroupRead, false),
            (0o444, Access::GroupRead, false),
        ] {
            let (path, file) = file_with_mode(dir.path(), mode);
            let result = check_secret_file(&file, &path, me, access);
            assert_eq!(result.is_ok(), ok, "{mode:o} {access:?}");
        }
        let (path, file) = file_with_mode(dir.path(), 0o644);
        let err = check_secret_file(&file, &path, me, Access::OwnerOnly)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(
            err.contains(&format!("owned by uid {me} with mode 0644")),
            "{err}"
        );
        assert!(err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn another_users_file_is_refused_unless_root_owns_it() {
        let dir = tempfile::tempdir().unwrap();
        let owner = std::fs::metadata(dir.path()).unwrap().uid();
        let (path, file) = file_with_mode(dir.path(), 0o600);
        let stranger = owner.wrapping_add(1000);
        let result = check_secret_file(&file, &path, stranger, Access::OwnerOnly);
        // A root-owned file is fine for any reader.
        assert_eq!(result.is_ok(), owner == 0);
    }
}
