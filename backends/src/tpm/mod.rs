//! TPM 2.0 backend (tss-esapi): keys bound to the host's TPM.
//!
//! Keys are created under a storage key in the owner hierarchy, which is
//! derived again from the owner seed at every connection. Their public and
//! wrapped private areas live as files in the daemon's state directory (see
//! `blobs`), so no NV space is used. One context lives on its own thread
//! (`worker`) with one salted HMAC session reused for every command. A TPM
//! that goes away makes the backend Unavailable with the reason, and the
//! thread reconnects on its own; an auth value the TPM refuses is never
//! tried again.
//!
//! Ed25519 is refused: TPM 2.0 has no EdDSA.

mod blobs;
mod connection;
mod engine;
mod errors;
mod public;
mod templates;
mod worker;

use crate::{
    Algorithm, Availability, BackendError, BackendKey, DeviceInfo, KeyAttest, KeyAttestation,
    KeyBackend, KeySpec, KeyUri,
};
use engine::{Engine, Status};
use secrecy::SecretString;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use worker::Worker;

const SCHEME: &str = "tpm";

/// The default TCTI: the kernel's resource manager, which lets other TPM
/// users share the device.
pub const DEFAULT_TCTI: &str = "device:/dev/tpmrm0";

pub struct TpmConfig {
    /// TCTI name and config, e.g. `device:/dev/tpmrm0`,
    /// `swtpm:host=127.0.0.1,port=2321`, `tabrmd`.
    pub tcti: String,
    /// Directory for the key blobs.
    pub dir: PathBuf,
    /// Owner hierarchy auth, if the owner set one.
    pub owner_auth: Option<SecretString>,
    /// Auth value given to keys this backend creates (and used to sign).
    pub key_auth: Option<SecretString>,
    /// Also make each new key persistent, at the first free owner handle
    /// from this one (0x81000000..=0x817FFFFF). `None`: blobs only.
    pub persist_from: Option<u32>,
}

impl fmt::Debug for TpmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |s: &Option<SecretString>| s.as_ref().map(|_| "[redacted]");
        f.debug_struct("TpmConfig")
            .field("tcti", &self.tcti)
            .field("dir", &self.dir)
            .field("owner_auth", &redacted(&self.owner_auth))
            .field("key_auth", &redacted(&self.key_auth))
            .field("persist_from", &self.persist_from)
            .finish()
    }
}

pub struct TpmBackend {
    status: Arc<RwLock<Status>>,
    worker: Worker,
}

impl TpmBackend {
    /// Opens the key directory and tries the TPM once. An unreachable TPM
    /// gives a backend that reports itself unavailable (and keeps trying);
    /// an unreadable key directory or an unusable auth value is an error.
    pub fn open(name: &str, config: TpmConfig) -> Result<TpmBackend, BackendError> {
        let status = Arc::new(RwLock::new(Status {
            availability: Availability::Unavailable("not connected yet".into()),
            device: DeviceInfo {
                manufacturer: String::new(),
                model: "TPM 2.0".into(),
                label: config.tcti.clone(),
                serial: String::new(),
            },
        }));
        let engine = Engine::open(name, config, Arc::clone(&status))?;
        let worker = Worker::spawn(name, engine)?;
        Ok(TpmBackend { status, worker })
    }

    fn status(&self) -> Status {
        self.status
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl KeyBackend for TpmBackend {
    fn kind(&self) -> &'static str {
        "tpm"
    }

    fn availability(&self) -> Availability {
        self.status().availability
    }

    fn device_info(&self) -> DeviceInfo {
        self.status().device
    }

    fn algorithms(&self) -> Vec<Algorithm> {
        templates::ALGORITHMS.to_vec()
    }

    fn list(&self) -> Result<Vec<BackendKey>, BackendError> {
        self.worker.call(|e| Ok(e.list()))
    }

    fn generate(&self, spec: &KeySpec) -> Result<BackendKey, BackendError> {
        let spec = spec.clone();
        self.worker.call(move |e| e.generate(&spec))
    }

    fn sign(&self, uri: &KeyUri, payload: &[u8]) -> Result<Vec<u8>, BackendError> {
        let (uri, payload) = (uri.clone(), payload.to_vec());
        self.worker.call(move |e| e.sign(&uri, &payload))
    }

    fn delete(&self, uri: &KeyUri) -> Result<(), BackendError> {
        let uri = uri.clone();
        self.worker.call(move |e| e.delete(&uri))
    }

    fn attestation(&self) -> Option<&dyn KeyAttest> {
        Some(self)
    }
}

impl KeyAttest for TpmBackend {
    fn attest(&self, uri: &KeyUri, nonce: &[u8]) -> Result<KeyAttestation, BackendError> {
        let (uri, nonce) = (uri.clone(), nonce.to_vec());
        self.worker.call(move |e| e.attest(&uri, &nonce))
    }
}
