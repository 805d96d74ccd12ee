//! What `--check-config` checks beyond the file's own consistency: that
//! what the settings name exists and this user can use it. Each problem
//! names its setting, so it can be placed in the file.

use crate::backends::BackendType;
use crate::check::location::{KeyPath, Problem};
use crate::config::Config;
use crate::pin_source::PinSource;
use crate::signer_api::SignerApiConfig;
use nix::unistd::{access, AccessFlags};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;

/// Every problem found; empty when the daemon should start.
pub(crate) fn preflight(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Err(message) = writable_dir(&config.server.state_dir) {
        problems.push(Problem::new(
            KeyPath::root().key("server").key("state_dir"),
            format!("state_dir {}: {message}", config.server.state_dir.display()),
        ));
    }
    if let Ok(audit) = config.audit() {
        if let Err(message) = writable_dir(&audit.dir) {
            problems.push(Problem::new(
                KeyPath::root().key("audit").key("dir"),
                format!("audit dir {}: {message}", audit.dir.display()),
            ));
        }
    }
    for (i, backend) in config.backends.iter().enumerate() {
        let at = KeyPath::root().key("backend").index(i);
        for (field, source) in backend.secret_sources() {
            // A systemd credential exists only inside the unit
            // ($CREDENTIALS_DIRECTORY): outside it there is nothing to check.
            if matches!(source, PinSource::Credential { .. })
                && std::env::var_os("CREDENTIALS_DIRECTORY").is_none()
            {
                continue;
            }
            // Reading is the check: it applies the owner and mode rules of
            // the start, and the value is dropped (wiped) at once.
            if let Err(error) = source.resolve() {
                problems.push(Problem::new(
                    at.clone().key(field),
                    format!("backend {:?}: `{field}`: {error}", backend.name),
                ));
            }
        }
        if let (BackendType::Pkcs11, Some(module)) = (backend.kind, &backend.module) {
            if let Err(message) = readable_file(module) {
                problems.push(Problem::new(
                    at.clone().key("module"),
                    format!(
                        "backend {:?}: module {}: {message}",
                        backend.name,
                        module.display()
                    ),
                ));
            }
        }
    }
    if let Some(api) = &config.signer_api {
        problems.extend(signer_api_files(api));
    }
    problems
}

fn signer_api_files(api: &SignerApiConfig) -> Vec<Problem> {
    let at = |key: &str| KeyPath::root().key("signer_api").key(key);
    let mut problems = Vec::new();
    let certs = match certificates(&api.tls_cert) {
        Ok(certs) => Some(certs),
        Err(message) => {
            problems.push(Problem::new(at("tls_cert"), message));
            None
        }
    };
    match (PrivateKeyDer::from_pem_file(&api.tls_key), certs) {
        (Err(error), _) => problems.push(Problem::new(
            at("tls_key"),
            format!(
                "tls_key {}: not a PEM private key: {error}",
                api.tls_key.display()
            ),
        )),
        (Ok(key), Some(certs)) => {
            if let Err(message) = key_matches(certs, &key) {
                problems.push(Problem::new(
                    at("tls_key"),
                    format!(
                        "tls_key {} and tls_cert {}: {message}",
                        api.tls_key.display(),
                        api.tls_cert.display()
                    ),
                ));
            }
        }
        (Ok(_), None) => {}
    }
    if let Err(message) = certificates(&api.client_ca) {
        problems.push(Problem::new(at("client_ca"), message));
    }
    problems
}

/// The certificates of a PEM file: at least one, each parsed.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let fail = |error: String| format!("{}: {error}", path.display());
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| fail(e.to_string()))?;
    if certs.is_empty() {
        return Err(fail("no PEM certificate in it".into()));
    }
    for cert in &certs {
        use x509_cert::der::Decode;
        x509_cert::Certificate::from_der(cert.as_ref())
            .map_err(|e| fail(format!("a certificate does not parse: {e}")))?;
    }
    Ok(certs)
}

fn key_matches(certs: Vec<CertificateDer<'static>>, key: &PrivateKeyDer<'_>) -> Result<(), String> {
    let signing = rustls::crypto::ring::sign::any_supported_type(key)
        .map_err(|e| format!("the key cannot be used for TLS: {e}"))?;
    rustls::sign::CertifiedKey::new(certs, signing)
        .keys_match()
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                "the key is not the certificate's (the first certificate must be the server's)"
                    .to_string()
            }
            other => other.to_string(),
        })
}

fn readable_file(path: &Path) -> Result<(), String> {
    let metadata = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !metadata.is_file() {
        return Err("not a file".into());
    }
    std::fs::File::open(path).map_err(|e| e.to_string())?;
    Ok(())
}

/// A directory this user can write, or can create.
fn writable_dir(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(metadata) if !metadata.is_dir() => Err("not a directory".into()),
        Ok(_) => access(path, AccessFlags::W_OK | AccessFlags::X_OK)
            .map_err(|e| format!("not writable by this user: {e}")),
        Err(_) => creatable(path),
    }
}

/// Whether the nearest directory above `path` that exists lets this user
/// create what is missing.
fn creatable(path: &Path) -> Result<(), String> {
    let Some(existing) = path.ancestors().skip(1).find(|dir| dir.exists()) else {
        return Err("no existing directory above it".into());
    };
    if !existing.is_dir() {
        return Err(format!("{} is not a directory", existing.display()));
    }
    access(existing, AccessFlags::W_OK | AccessFlags::X_OK).map_err(|e| {
        format!(
            "missing, and this user cannot create it in {}: {e}",
            existing.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn config(dir: &Path, backend: &str) -> Config {
        let text = format!(
            "[server]\nstate_dir = '{0}/state'\n[audit]\ndir = '{0}/log/audit'\n{backend}",
            dir.display()
        );
        Config::parse(Path::new("t.toml"), &text).unwrap()
    }

    fn messages(config: &Config) -> Vec<String> {
        preflight(config).into_iter().map(|p| p.message).collect()
    }

    #[test]
    fn a_usable_configuration_has_no_problem() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path(), "[[backend]]\nname='s'\ntype='soft'\n");
        assert_eq!(messages(&c), Vec::<String>::new());
    }

    #[test]
    fn secret_files_modules_and_paths_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let pin = dir.path().join("hsm.pin");
        std::fs::write(&pin, "1234\n").unwrap();
        std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o644)).unwrap();
        let backend = format!(
            "[[backend]]\nname='hsm'\ntype='pkcs11'\nmodule='{0}/nope.so'\ntoken='t'\n\
             pin={{ file='{0}/hsm.pin' }}\n\
             [[backend]]\nname='s'\ntype='soft'\npassphrase={{ file='{0}/missing' }}\n",
            dir.path().display()
        );
        let c = config(dir.path(), &backend);
        let found = preflight(&c);
        let at: Vec<_> = found.iter().map(|p| p.at.clone()).collect();
        let b = |i, key| KeyPath::root().key("backend").index(i).key(key);
        assert_eq!(
            at,
            [b(0, "pin"), b(0, "module"), b(1, "passphrase")],
            "{found:?}"
        );
        assert!(found[0].message.contains("hsm.pin"), "{}", found[0].message);
        assert!(!found[0].message.contains("1234"), "{}", found[0].message);
        assert!(found[1].message.contains("nope.so"), "{}", found[1].message);

        // A state dir and audit dir the user cannot create (a file is in
        // the way).
        std::fs::write(dir.path().join("state"), "").unwrap();
        std::fs::write(dir.path().join("log"), "").unwrap();
        let c = config(dir.path(), "[[backend]]\nname='s'\ntype='soft'\n");
        let found = messages(&c);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("not a directory"), "{found:?}");
        assert!(found[1].contains("log is not a directory"), "{found:?}");
    }
}
