//! Everything the TPM thread does: keep the connection (and say why there
//! is none), and generate, load, sign and certify keys through it.

use super::blobs::{BlobDir, KeyBlob};
use super::connection::Connection;
use super::errors::{classify, Failure};
use super::{public, templates, TpmConfig, SCHEME};
use crate::{
    Algorithm, Availability, BackendError, BackendKey, DeviceInfo, KeyAttestation, KeySpec, KeyUri,
    TriesLeft,
};
use notary_tuf::SignatureMethod;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::structures::{Auth, Data, Digest, HashScheme, Public, SignatureScheme};
use tss_esapi::traits::{Marshall, UnMarshall};

/// What the backend's non-blocking getters read; the TPM thread writes it.
#[derive(Clone)]
pub(super) struct Status {
    pub availability: Availability,
    pub device: DeviceInfo,
}

struct StoredKey {
    blob: KeyBlob,
    public: Public,
    info: BackendKey,
}

enum Link {
    Up(Connection),
    /// Not connected; try again on the next request or idle tick.
    Down,
    /// Not connected and not to be retried: an auth value the operator
    /// configured was refused, and trying again would count toward lockout.
    Refused(String),
}

pub(super) struct Engine {
    name: String,
    config: TpmConfig,
    blobs: BlobDir,
    keys: BTreeMap<String, StoredKey>,
    link: Link,
    status: Arc<RwLock<Status>>,
}

/// A secret as a TPM auth value. SHA-256 keys take at most 32 bytes.
pub(super) fn auth_value(what: &str, secret: &SecretString) -> Result<Auth, String> {
    let bytes = secret.expose_secret().as_bytes();
    if bytes.len() > 32 {
        return Err(format!(
            "{what} is {} bytes; TPM auth values are at most 32 bytes",
            bytes.len()
        ));
    }
    Auth::try_from(bytes.to_vec()).map_err(|e| format!("{what}: {e}"))
}

impl Engine {
    pub(super) fn open(
        name: &str,
        config: TpmConfig,
        status: Arc<RwLock<Status>>,
    ) -> Result<Engine, BackendError> {
        for (what, secret) in [
            ("owner_auth", &config.owner_auth),
            ("key_auth", &config.key_auth),
        ] {
            if let Some(s) = secret {
                auth_value(what, s).map_err(BackendError::Device)?;
            }
        }
        let blobs = BlobDir::open(&config.dir)?;
        let mut keys = BTreeMap::new();
        for (id, blob) in blobs.read_all()? {
            let unusable = |e: String| {
                BackendError::Storage(format!(
                    "TPM key blob {id} in {}: {e}",
                    blobs.path().display()
                ))
            };
            let public = Public::unmarshall(&blob.public).map_err(|e| unusable(e.to_string()))?;
            let (algorithm, key) = public::notary_public(&public).map_err(unusable)?;
            let info = BackendKey {
                uri: KeyUri::new(SCHEME).with("id", &id),
                public: key,
                algorithm,
                label: blob.label.clone(),
            };
            keys.insert(id, StoredKey { blob, public, info });
        }
        let mut engine = Engine {
            name: name.to_string(),
            config,
            blobs,
            keys,
            link: Link::Down,
            status,
        };
        // The outcome is recorded in the status and logged.
        let _ = engine.connection();
        Ok(engine)
    }

    fn set_availability(&self, availability: Availability) {
        let mut status = self.status.write().unwrap_or_else(PoisonError::into_inner);
        status.availability = availability;
    }

    fn go_down(&mut self, reason: String, retry: bool) -> BackendError {
        tracing::warn!(backend = %self.name, "TPM backend unavailable: {reason}");
        self.link = if retry {
            Link::Down
        } else {
            Link::Refused(reason.clone())
        };
        self.set_availability(Availability::Unavailable(reason.clone()));
        BackendError::Unavailable(reason)
    }

    /// The connection, opening it if it is down and may be retried.
    fn connection(&mut self) -> Result<&mut Connection, BackendError> {
        match &self.link {
            Link::Up(_) => {}
            Link::Refused(reason) => return Err(BackendError::Unavailable(reason.clone())),
            Link::Down => {
                let owner_auth = match &self.config.owner_auth {
                    Some(s) => Some(auth_value("owner_auth", s).map_err(BackendError::Device)?),
                    None => None,
                };
                match Connection::open(&self.config.tcti, owner_auth) {
                    Ok(mut conn) => {
                        let vendor = conn.vendor();
                        tracing::info!(backend = %self.name, tcti = %self.config.tcti, %vendor, "TPM connected");
                        {
                            let mut status =
                                self.status.write().unwrap_or_else(PoisonError::into_inner);
                            status.availability = Availability::Available;
                            status.device.manufacturer = vendor;
                        }
                        self.link = Link::Up(conn);
                    }
                    Err(e) => {
                        let tcti = self.config.tcti.clone();
                        return Err(match classify(&e) {
                            Failure::AuthRejected { .. } => self.go_down(
                                "the TPM rejected the configured owner_auth for the owner \
                                 hierarchy; fix owner_auth and restart notary-keyd (not retried)"
                                    .into(),
                                false,
                            ),
                            Failure::Gone(m) | Failure::Other(m) => {
                                self.go_down(format!("TPM unavailable at {tcti}: {m}"), true)
                            }
                            Failure::Lockout => self.go_down(
                                format!("TPM at {tcti} is in dictionary-attack lockout"),
                                true,
                            ),
                        });
                    }
                }
            }
        }
        match &mut self.link {
            Link::Up(conn) => Ok(conn),
            _ => Err(BackendError::Unavailable("TPM not connected".into())),
        }
    }

    /// Called by the idle TPM thread: brings a lost TPM back on its own.
    pub(super) fn reconnect_if_down(&mut self) {
        if matches!(self.link, Link::Down) {
            let _ = self.connection();
        }
    }

    /// Maps a failed TPM command, dropping the connection when the TPM is
    /// gone or refused an auth value.
    fn fail(&mut self, e: &tss_esapi::Error, what: &str) -> BackendError {
        match classify(e) {
            Failure::Gone(m) => {
                let reason = format!("TPM unavailable at {}: {m}", self.config.tcti);
                self.go_down(reason, true)
            }
            Failure::AuthRejected { counted } => {
                let da = match &mut self.link {
                    Link::Up(conn) => conn.da_state().ok(),
                    _ => None,
                };
                let tries_left =
                    da.map_or(TriesLeft::Unknown, |d| TriesLeft::Exactly(d.tries_left()));
                let counted = if counted {
                    "it counts toward the TPM's dictionary-attack lockout"
                } else {
                    "it does not count toward lockout"
                };
                let _ = self.go_down(
                    format!(
                        "the TPM rejected the configured key_auth of backend {:?}; fix key_auth \
                         and restart notary-keyd (not retried: each try {counted})",
                        self.name
                    ),
                    false,
                );
                BackendError::WrongAuth {
                    detail: format!(
                        "{what}: the TPM rejected the key's auth value (key_auth); \
                         not retried, {counted}"
                    ),
                    tries_left,
                }
            }
            Failure::Lockout => {
                let message = match &mut self.link {
                    Link::Up(conn) => conn.da_state().map(|d| d.lockout_message()),
                    _ => Err(tss_esapi::Error::WrapperError(
                        tss_esapi::WrapperErrorKind::InternalError,
                    )),
                };
                BackendError::Lockout(format!(
                    "{what}: {}",
                    message.unwrap_or_else(|_| {
                        "the TPM is in dictionary-attack lockout".to_string()
                    })
                ))
            }
            Failure::Other(m) => BackendError::Device(format!("{what}: {m}")),
        }
    }

    fn key_auth(&self) -> Result<Option<Auth>, BackendError> {
        match &self.config.key_auth {
            Some(s) => auth_value("key_auth", s)
                .map(Some)
                .map_err(BackendError::Device),
            None => Ok(None),
        }
    }

    fn id_of(uri: &KeyUri) -> Result<&str, BackendError> {
        if uri.scheme() != SCHEME {
            return Err(BackendError::InvalidUri {
                uri: uri.to_string(),
                reason: "not a tpm: key URI".into(),
            });
        }
        uri.require("id")
    }

    pub(super) fn list(&self) -> Vec<BackendKey> {
        self.keys.values().map(|k| k.info.clone()).collect()
    }

    pub(super) fn generate(&mut self, spec: &KeySpec) -> Result<BackendKey, BackendError> {
        let Some(template) = templates::signing_key(spec.algorithm) else {
            return Err(BackendError::UnsupportedAlgorithm(format!(
                "{}: a TPM 2.0 cannot create it (TPM 2.0 has no {}); use ecdsa p256/p384 or rsa 2048/3072",
                spec.algorithm,
                if spec.algorithm == Algorithm::Ed25519 { "EdDSA" } else { "RSA-4096 in common TPMs" }
            )));
        };
        let template = template.map_err(|e| BackendError::Device(e.to_string()))?;
        let auth = self.key_auth()?;
        let created = self.connection()?.create(template, auth);
        let (public, private) = created.map_err(|e| self.fail(&e, "creating a TPM key"))?;
        let (algorithm, key) = public::notary_public(&public).map_err(BackendError::Device)?;
        let id = new_key_id()?;
        let persistent_handle = match self.config.persist_from {
            Some(from) => Some(self.make_persistent(&id, &public, private.value(), from)?),
            None => None,
        };
        let blob = KeyBlob {
            label: spec.label.clone(),
            public: public
                .marshall()
                .map_err(|e| BackendError::Device(e.to_string()))?,
            private: private.value().to_vec(),
            persistent_handle,
        };
        self.blobs.write(&id, &blob)?;
        let info = BackendKey {
            uri: KeyUri::new(SCHEME).with("id", &id),
            public: key,
            algorithm,
            label: spec.label.clone(),
        };
        self.keys.insert(
            id,
            StoredKey {
                blob,
                public,
                info: info.clone(),
            },
        );
        Ok(info)
    }

    /// Loads the key a URI names; returns its handle and facts.
    fn load(
        &mut self,
        uri: &KeyUri,
    ) -> Result<(tss_esapi::handles::KeyHandle, BackendKey), BackendError> {
        let id = Self::id_of(uri)?.to_string();
        let (public, private, at, info) = match self.keys.get(&id) {
            Some(k) => (
                k.public.clone(),
                k.blob.private.clone(),
                k.blob.persistent_handle,
                k.info.clone(),
            ),
            None => return Err(BackendError::KeyNotFound(uri.to_string())),
        };
        let auth = self.key_auth()?;
        let conn = self.connection()?;
        let loaded = match at {
            Some(at) => match conn.open_persistent(&id, at, auth) {
                Ok((handle, found)) if found == public => Ok(handle),
                Ok(_) => {
                    conn.forget(&id);
                    return Err(BackendError::Device(format!(
                        "persistent handle {at:#x} no longer holds TPM key {id} \
                         (evicted or replaced outside notary-keyd)"
                    )));
                }
                Err(e) => Err(e),
            },
            None => conn.load(&id, &public, &private, auth),
        };
        match loaded {
            Ok(handle) => Ok((handle, info)),
            Err(e) => Err(match self.fail(&e, &format!("loading TPM key {id}")) {
                BackendError::Device(m) => BackendError::Device(format!(
                    "{m} (the key does not load under this TPM's storage key: \
                     was the TPM cleared, or the blob copied from another machine?)"
                )),
                other => other,
            }),
        }
    }

    /// Also keeps a new key at a persistent handle from `from` (operator's
    /// choice: no load per use, at the cost of TPM NV space).
    fn make_persistent(
        &mut self,
        id: &str,
        public: &Public,
        private: &[u8],
        from: u32,
    ) -> Result<u32, BackendError> {
        let auth = self.key_auth()?;
        let conn = self.connection()?;
        let made = conn
            .load(id, public, private, auth)
            .and_then(|handle| conn.persist(handle, from));
        conn.forget(id);
        made.map_err(|e| self.fail(&e, "making the new key persistent"))
    }

    pub(super) fn sign(&mut self, uri: &KeyUri, payload: &[u8]) -> Result<Vec<u8>, BackendError> {
        let (handle, info) = self.load(uri)?;
        let digest = Digest::try_from(Sha256::digest(payload).to_vec())
            .map_err(|e| BackendError::Device(e.to_string()))?;
        let hash_scheme = HashScheme::new(HashingAlgorithm::Sha256);
        let scheme = match info.algorithm.rsa_bits() {
            Some(_) => SignatureScheme::RsaPss { hash_scheme },
            None => SignatureScheme::EcDsa { hash_scheme },
        };
        let signed = self.connection()?.sign(handle, digest, scheme);
        let signature = signed.map_err(|e| self.fail(&e, &format!("signing with {uri}")))?;
        let sig =
            public::notary_signature(info.algorithm, &signature).map_err(BackendError::Device)?;
        if info.algorithm.rsa_bits().is_some() {
            // Notary verifies RSA-PSS with a salt as long as the hash (32).
            // TPMs before spec 1.38 may use the longest salt instead; such a
            // signature would be rejected by every notary client, so refuse
            // it here with the reason rather than hand it out.
            notary_tuf::verify(&info.public, SignatureMethod::RsaPss, payload, &sig).map_err(|_| {
                BackendError::Device(
                    "this TPM's RSA-PSS signature does not verify with salt length 32, \
                     which notary requires (the TPM uses another salt length); use ECDSA keys on this TPM"
                        .into(),
                )
            })?;
        }
        Ok(sig)
    }

    pub(super) fn delete(&mut self, uri: &KeyUri) -> Result<(), BackendError> {
        let id = Self::id_of(uri)?.to_string();
        if !self.keys.contains_key(&id) {
            return Err(BackendError::KeyNotFound(uri.to_string()));
        }
        if let Some(at) = self.keys.get(&id).and_then(|k| k.blob.persistent_handle) {
            let evicted = self.connection()?.evict(at);
            evicted.map_err(|e| self.fail(&e, &format!("evicting {uri} from handle {at:#x}")))?;
        }
        if let Link::Up(conn) = &mut self.link {
            conn.forget(&id);
        }
        self.blobs.remove(&id)?;
        self.keys.remove(&id);
        Ok(())
    }

    pub(super) fn attest(
        &mut self,
        uri: &KeyUri,
        nonce: &[u8],
    ) -> Result<KeyAttestation, BackendError> {
        let (handle, _) = self.load(uri)?;
        let nonce = Data::try_from(nonce.to_vec()).map_err(|_| {
            BackendError::Device("the attestation nonce is at most 64 bytes".into())
        })?;
        let certified = self.connection()?.certify(handle, nonce);
        let (attest, signature, ak_public) =
            certified.map_err(|e| self.fail(&e, &format!("certifying {uri}")))?;
        let id = Self::id_of(uri)?;
        let key_public = self
            .keys
            .get(id)
            .map(|k| k.blob.public.clone())
            .ok_or_else(|| BackendError::KeyNotFound(uri.to_string()))?;
        let device = |e: String| BackendError::Device(format!("attestation: {e}"));
        let (_, ak) = public::notary_public(&ak_public).map_err(device)?;
        let raw = public::notary_signature(Algorithm::EcdsaP256, &signature).map_err(device)?;
        Ok(KeyAttestation {
            format: "tpm2-certify",
            attest: attest.marshall().map_err(|e| device(e.to_string()))?,
            signature: notary_tuf::signature::ecdsa_raw_to_der(&raw)
                .map_err(|e| device(e.to_string()))?,
            signer_spki: ak.public_bytes().to_vec(),
            key_public_area: key_public,
        })
    }
}

fn new_key_id() -> Result<String, BackendError> {
    use rand_core::RngCore;
    let mut bytes = [0u8; 16];
    rand_core::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| BackendError::Device(format!("no randomness for a key ID: {e}")))?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_values_longer_than_a_sha256_digest_are_refused() {
        assert!(auth_value("key_auth", &SecretString::from("x".repeat(32))).is_ok());
        let err = auth_value("key_auth", &SecretString::from("x".repeat(33))).unwrap_err();
        assert_eq!(
            err,
            "key_auth is 33 bytes; TPM auth values are at most 32 bytes"
        );
    }
}
