//! Files holding a test PIN or auth value. notary-keyd and notaryctl refuse
//! a secret file anyone but its owner may read, so tests write them 0600.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes `text` to `path` with mode 0600.
pub fn write_secret(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}
