//! What the test crate's HTTPS servers (hostile-notary, faulty-front)
//! share: a TLS server config from PEM files, and telling the harness
//! which port they bound.

use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use std::path::Path;
use std::sync::Arc;

/// TLS 1.2/1.3 with `cert` (PEM chain) and `key`; no client certificates.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading {}", cert.display()))?;
    let key =
        PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading {}", key.display()))?;
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}

/// Writes `port` to `dir/port`, renamed into place so the harness never
/// reads half a number.
pub fn announce_port(dir: &Path, port: u16) -> Result<()> {
    let tmp = dir.join("port.tmp");
    std::fs::write(&tmp, format!("{port}\n"))?;
    std::fs::rename(&tmp, dir.join("port"))?;
    Ok(())
}
