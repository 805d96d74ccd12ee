//! Running as root. With a config file the daemon is a system service, and
//! it belongs under its own unprivileged user (the unit's
//! `User=notary-keyd`): then a flaw in it or in a vendor's PKCS#11 module
//! does not own the host, and its keys and state are not root's files.

#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to run as root with a config file: notary-keyd should run as its own \
     unprivileged user (the systemd unit uses User=notary-keyd), so that a flaw in it or \
     in a PKCS#11 module does not compromise the host; pass --allow-root to run as root anyway"
)]
pub(crate) struct RootRefused;

/// Personal (zero-config) mode only warns, so a newcomer who happens to be
/// root can still try the daemon.
pub(crate) fn check(euid: u32, config_file: bool, allow_root: bool) -> Result<(), RootRefused> {
    if euid != 0 {
        return Ok(());
    }
    if !config_file {
        tracing::warn!(
            "running as root in personal mode: the keystore belongs to root; \
             prefer running notary-keyd as your own user"
        );
        return Ok(());
    }
    if !allow_root {
        return Err(RootRefused);
    }
    tracing::warn!("running as root because --allow-root was given");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_needs_the_flag_only_with_a_config_file() {
        assert!(check(1000, true, false).is_ok());
        assert!(check(0, false, false).is_ok());
        assert!(check(0, true, true).is_ok());
        let err = check(0, true, false).unwrap_err().to_string();
        assert!(err.contains("--allow-root"), "{err}");
    }
}
