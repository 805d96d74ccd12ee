//! The audit key: an ECDSA P-256 key that signs checkpoints and nothing
//! else. It is made on the first start in the backend `[audit] key_backend`
//! names (by default a TPM, else an HSM whose PIN the daemon reads itself,
//! else the software keystore, else a keystore of the log's own), and
//! `<state_dir>/audit-key.json` remembers where; its public half is kept
//! as PEM beside it, where `audit verify` finds it.
//!
//! Every request reaches a key through its backend, so the backend that
//! holds the audit key is wrapped in [`Guarded`]: it leaves the key out of
//! the backend's list, so no request finds it, whoever asks, and refuses
//! signing, deleting and certificates for it should one name it anyway.
//! Only the checkpointer holds the unwrapped backend.

use crate::backends::{BackendConfig, BackendType};
use crate::device::Device;
use crate::pin_source::PinSource;
use anyhow::{bail, Context, Result};
use keyd_backends::import::KeyImport;
use keyd_backends::soft::{SoftBackend, SoftConfig};
use keyd_backends::{
    Algorithm, Availability, BackendError, BackendKey, CertificateStore, DeviceInfo, KeyAttest,
    KeyBackend, KeyOriginReport, KeySpec, KeyUri, TokenLogin,
};
use notary_tuf::{KeyType, PublicKey};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `<state_dir>/audit-key.pem`.
pub(crate) fn public_path(state_dir: &Path) -> PathBuf {
    state_dir.join("audit-key.pem")
}

fn record_path(state_dir: &Path) -> PathBuf {
    state_dir.join("audit-key.json")
}

/// Where the keystore of the log's own lives, when no backend fits.
fn own_keystore(state_dir: &Path) -> PathBuf {
    state_dir.join("audit-keystore")
}

/// Name of the keystore of the log's own in `audit-key.json`.
const OWN: &str = "(audit keystore)";

const LABEL: &str = "notary-keyd audit key (signs checkpoints only)";

/// An audit public key from PEM (`PUBLIC KEY`, DER SubjectPublicKeyInfo).
pub(crate) fn read_public(path: &Path) -> Result<PublicKey> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let blocks = notary_tuf::pem::parse_blocks(&text)
        .with_context(|| format!("{} is not PEM", path.display()))?;
    let Some(block) = blocks.into_iter().find(|b| b.label == "PUBLIC KEY") else {
        bail!("{} holds no PUBLIC KEY block", path.display());
    };
    Ok(PublicKey::new(KeyType::Ecdsa, block.der))
}

pub(crate) fn public_pem(key: &PublicKey) -> String {
    notary_tuf::pem::encode("PUBLIC KEY", key.public_bytes())
}

/// What `audit-key.json` says.
#[derive(Serialize, Deserialize)]
struct KeyRecord {
    backend: String,
    key_id: String,
}

/// Where a new audit key goes when `[audit] key_backend` says nothing:
/// among the backends that opened, the first TPM, else the first PKCS#11
/// token with a PIN the daemon reads itself (a prompted PIN leaves it
/// locked until a person comes), else the first software keystore; `None`:
/// a keystore of the log's own.
pub(crate) fn choose(backends: &[&BackendConfig]) -> Option<String> {
    let first = |fits: &dyn Fn(&BackendConfig) -> bool| {
        backends.iter().find(|b| fits(b)).map(|b| b.name.clone())
    };
    first(&|b| b.kind == BackendType::Tpm)
        .or_else(|| {
            first(&|b| b.kind == BackendType::Pkcs11 && !matches!(b.pin, Some(PinSource::Prompt)))
        })
        .or_else(|| first(&|b| b.kind == BackendType::Soft))
}

/// The audit key, found or made, and the backend that holds it.
pub(crate) struct AuditKey {
    pub(crate) backend: String,
    pub(crate) key: BackendKey,
    pub(crate) key_id: String,
    /// The backend itself, not guarded: only checkpoints sign with it.
    signer: Arc<dyn KeyBackend>,
}

impl AuditKey {
    /// Finds the audit key in `backends` (opened, not yet guarded), or
    /// makes it on the first start: in `configured` (`[audit]
    /// key_backend`), else in `preferred` (see [`choose`]), else in a
    /// keystore of the log's own. Once made, `audit-key.json` says where
    /// it is. Fails when the key it names is gone, or its backend is not
    /// open, or the configuration names another backend.
    pub(crate) async fn ensure(
        state_dir: &Path,
        configured: Option<&str>,
        preferred: Option<String>,
        backends: &[(String, Arc<dyn KeyBackend>)],
    ) -> Result<AuditKey> {
        let record_file = record_path(state_dir);
        let known: Option<KeyRecord> = match std::fs::read(&record_file) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is malformed; restore it from a backup",
                    record_file.display()
                )
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).context(format!("cannot read {}", record_file.display())),
        };
        let chosen = match (&known, configured) {
            (Some(record), Some(name)) if record.backend != name => bail!(
                "the audit key {} is in backend {:?}, but [audit] key_backend = {name:?}; \
                 set it to {:?}, or move {} aside to make a new audit key",
                record.key_id,
                record.backend,
                record.backend,
                record_file.display()
            ),
            (Some(record), _) => (record.backend != OWN).then(|| record.backend.clone()),
            (None, Some(name)) => Some(name.to_string()),
            (None, None) => preferred,
        };
        let (backend, signer): (String, Arc<dyn KeyBackend>) = match &chosen {
            Some(name) => {
                let Some((_, b)) = backends.iter().find(|(n, _)| n == name) else {
                    bail!("the audit key's backend {name:?} is not open (see the errors above)");
                };
                (name.clone(), Arc::clone(b))
            }
            None => {
                let dir = own_keystore(state_dir);
                let soft = SoftBackend::open(SoftConfig {
                    dir,
                    passphrase: None,
                })
                .context("cannot open the audit keystore")?;
                (OWN.to_string(), Arc::new(soft))
            }
        };
        let lister = Arc::clone(&signer);
        let listed = tokio::task::spawn_blocking(move || lister.list())
            .await
            .context("listing the audit key's backend")?;
        let key = match known {
            Some(record) => {
                let keys = listed.with_context(|| {
                    format!("cannot list backend {backend:?}, which holds the audit key")
                })?;
                let Some(key) = keys
                    .into_iter()
                    .find(|k| k.public.key_id() == record.key_id)
                else {
                    bail!(
                        "the audit key {} is no longer in backend {backend:?}; if it is lost, move {} \
                         aside to make a new one (old checkpoints then verify only with the old \
                         public key, {})",
                        record.key_id,
                        record_file.display(),
                        public_path(state_dir).display()
                    );
                };
                key
            }
            None => {
                let maker = Arc::clone(&signer);
                let key = tokio::task::spawn_blocking(move || {
                    maker.generate(&KeySpec {
                        algorithm: Algorithm::EcdsaP256,
                        label: LABEL.into(),
                    })
                })
                .await
                .context("making the audit key")?
                .with_context(|| format!("cannot make the audit key in backend {backend:?}"))?;
                let key_id = key.public.key_id();
                keyd_backends::atomic_file::write_atomic(
                    &public_path(state_dir),
                    public_pem(&key.public).as_bytes(),
                    0o644,
                )
                .context("cannot store the audit public key")?;
                let record = serde_json::to_vec_pretty(&KeyRecord {
                    backend: backend.clone(),
                    key_id: key_id.clone(),
                })
                .context("encoding audit-key.json")?;
                keyd_backends::atomic_file::write_atomic(&record_file, &record, 0o600)
                    .context("cannot store audit-key.json")?;
                tracing::info!(key_id = %key_id, backend = %backend, "made the audit key");
                key
            }
        };
        Ok(AuditKey {
            key_id: key.public.key_id(),
            backend,
            key,
            signer,
        })
    }

    /// `backend` as requests may use it: guarded if it holds this key.
    pub(crate) fn guard(&self, name: &str, backend: Arc<dyn KeyBackend>) -> Arc<dyn KeyBackend> {
        if name == self.backend {
            Arc::new(Guarded {
                inner: backend,
                uri: self.key.uri.clone(),
                key_id: self.key_id.clone(),
            })
        } else {
            backend
        }
    }

    /// Signs a checkpoint: on the key's device queue, so it waits its turn
    /// like any request and never uses a login someone's request brought;
    /// for the log's own keystore, in place.
    pub(crate) async fn sign(
        &self,
        device: Option<&Device>,
        message: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        let signer = Arc::clone(&self.signer);
        let uri = self.key.uri.clone();
        let run = async move {
            tokio::task::spawn_blocking(move || signer.sign(&uri, &message))
                .await
                .map_err(|e| crate::device::DeviceError::Worker(e.to_string()))?
                .map_err(crate::device::DeviceError::from)
        };
        match device {
            Some(d) => d.queued(None, |_| {}, run).await,
            None => run.await,
        }
        .map_err(|e| e.to_string())
    }
}

/// A backend that holds the audit key: everything as the backend does,
/// except that the audit key is not listed, signs nothing, is never
/// deleted and gets no certificate, whoever asks.
struct Guarded {
    inner: Arc<dyn KeyBackend>,
    uri: KeyUri,
    key_id: String,
}

impl Guarded {
    /// To requests the audit key does not exist, as `list` says.
    fn refuse_audit_key(&self, uri: &KeyUri) -> Result<(), BackendError> {
        if *uri == self.uri {
            return Err(BackendError::KeyNotFound(format!(
                "{} (notary-keyd's audit key, for checkpoints only)",
                self.key_id
            )));
        }
        Ok(())
    }
}

impl KeyBackend for Guarded {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn availability(&self) -> Availability {
        self.inner.availability()
    }
    fn device_info(&self) -> DeviceInfo {
        self.inner.device_info()
    }
    fn algorithms(&self) -> Vec<Algorithm> {
        self.inner.algorithms()
    }
    fn concurrency(&self) -> usize {
        self.inner.concurrency()
    }
    fn signs_in_place(&self, algorithm: Algorithm) -> bool {
        self.inner.signs_in_place(algorithm)
    }
    fn list(&self) -> Result<Vec<BackendKey>, BackendError> {
        let mut keys = self.inner.list()?;
        keys.retain(|k| k.uri != self.uri);
        Ok(keys)
    }
    fn generate(&self, spec: &KeySpec) -> Result<BackendKey, BackendError> {
        self.inner.generate(spec)
    }
    fn sign(&self, uri: &KeyUri, payload: &[u8]) -> Result<Vec<u8>, BackendError> {
        self.refuse_audit_key(uri)?;
        self.inner.sign(uri, payload)
    }
    fn delete(&self, uri: &KeyUri) -> Result<(), BackendError> {
        self.refuse_audit_key(uri)?;
        self.inner.delete(uri)
    }
    fn certificates(&self) -> Option<&dyn CertificateStore> {
        self.inner
            .certificates()
            .map(|_| self as &dyn CertificateStore)
    }
    fn token_login(&self) -> Option<&dyn TokenLogin> {
        self.inner.token_login()
    }
    fn piv(&self) -> Option<&dyn keyd_backends::piv::PivAdmin> {
        self.inner.piv()
    }
    fn attestation(&self) -> Option<&dyn KeyAttest> {
        self.inner.attestation()
    }
    // Every optional capability passes through: a default `None` here
    // would make the backend look unable to do it (a PKCS#11 token could
    // no longer report its keys' origin to a ceremony).
    fn key_origin(&self) -> Option<&dyn KeyOriginReport> {
        self.inner.key_origin()
    }
    fn imports(&self) -> Option<&dyn KeyImport> {
        self.inner.imports()
    }
}

impl CertificateStore for Guarded {
    fn put_certificate(&self, uri: &KeyUri, der: &[u8]) -> Result<(), BackendError> {
        self.refuse_audit_key(uri)?;
        match self.inner.certificates() {
            Some(store) => store.put_certificate(uri, der),
            None => Err(BackendError::NotSupported("certificates")),
        }
    }
    fn certificate(&self, uri: &KeyUri) -> Result<Option<Vec<u8>>, BackendError> {
        match self.inner.certificates() {
            Some(store) => store.certificate(uri),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_guarded_backend_hides_and_refuses_the_audit_key() {
        let state = tempfile::tempdir().unwrap();
        let soft: Arc<dyn KeyBackend> = Arc::new(
            SoftBackend::open(SoftConfig {
                dir: state.path().join("soft"),
                passphrase: None,
            })
            .unwrap(),
        );
        let other = soft
            .generate(&KeySpec {
                algorithm: Algorithm::Ed25519,
                label: "other".into(),
            })
            .unwrap();
        let backends = vec![("soft".to_string(), Arc::clone(&soft))];
        let key = AuditKey::ensure(state.path(), None, Some("soft".into()), &backends)
            .await
            .unwrap();
        let guarded = key.guard("soft", Arc::clone(&soft));
        let listed = guarded.list().unwrap();
        assert_eq!(listed, vec![other.clone()], "only the other key is listed");
        let refused = guarded.sign(&key.key.uri, b"x").unwrap_err().to_string();
        assert!(refused.contains("no key"), "{refused}");
        assert!(guarded.delete(&key.key.uri).is_err());
        let certs = guarded.certificates().unwrap();
        assert!(certs.put_certificate(&key.key.uri, b"der").is_err());
        guarded.sign(&other.uri, b"x").unwrap();
        // Checkpoints sign, and a second start finds the same key.
        let sig = key.sign(None, b"checkpoint".to_vec()).await.unwrap();
        notary_tuf::verify(
            &key.key.public,
            notary_tuf::SignatureMethod::Ecdsa,
            b"checkpoint",
            &sig,
        )
        .unwrap();
        let again = AuditKey::ensure(state.path(), None, None, &backends)
            .await
            .unwrap();
        assert_eq!(again.key_id, key.key_id);
        assert_eq!(
            read_public(&public_path(state.path())).unwrap(),
            key.key.public
        );
        // Pointed elsewhere, the start is refused rather than a new key made.
        let err = AuditKey::ensure(state.path(), Some("hsm"), None, &backends)
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("key_backend"), "{err}");
    }
}
