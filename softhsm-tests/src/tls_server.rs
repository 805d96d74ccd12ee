//! What the test crate's HTTPS servers (hostile-notary, faulty-front)
//! share: their `--cert`/`--key` options and a TLS server config from
//! them, their request log, and telling the harness which port they bound.

use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The certificate and key a test server presents.
#[derive(clap::Args)]
pub struct TlsFiles {
    /// TLS certificate (PEM chain) presented to clients.
    #[arg(long)]
    pub cert: PathBuf,
    /// Its private key (PEM).
    #[arg(long)]
    pub key: PathBuf,
}

impl TlsFiles {
    /// TLS 1.2/1.3 with these files; no client certificates.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>> {
        let (cert, key) = (&self.cert, &self.key);
        let certs = CertificateDer::pem_file_iter(cert)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .with_context(|| format!("reading {}", cert.display()))?;
        let key = PrivateKeyDer::from_pem_file(key)
            .with_context(|| format!("reading {}", key.display()))?;
        let config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_single_cert(certs, key)?;
        Ok(Arc::new(config))
    }
}

/// `dir/requests.log`, opened for appending, for one line per request.
pub fn request_log(dir: &Path) -> Result<Mutex<File>> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("requests.log"))?;
    Ok(Mutex::new(file))
}

/// Writes `port` to `dir/port`, renamed into place so the harness never
/// reads half a number.
pub fn announce_port(dir: &Path, port: u16) -> Result<()> {
    let tmp = dir.join("port.tmp");
    std::fs::write(&tmp, format!("{port}\n"))?;
    std::fs::rename(&tmp, dir.join("port"))?;
    Ok(())
}
